"""Surrogate record ids: opaque, never reused, time-ordered so that a bulk load's ids form one contiguous range.

An id is 32 hex digits: 12 of milliseconds since the Unix epoch and 20 of a per-process counter that starts at a
random value (like UUIDv7, RFC 9562 §5.7). Ids made by one process only increase, so the rows of a bulk batch
are bounded by their first and last id, which lets ``audit history`` find a bulk-inserted row with an index.
"""

from __future__ import annotations

import secrets
import threading
import time

_lock = threading.Lock()
_state = {"ms": 0, "counter": 0}
_COUNTER_MAX = (1 << 80) - 1


def new_id() -> str:
    """A new record id, greater than every id this process made before."""
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _state["ms"]:
            _state["ms"] = ms
            _state["counter"] = secrets.randbits(72)  # leaves headroom for 2^79 ids within one millisecond
        else:
            _state["counter"] += 1
            if _state["counter"] > _COUNTER_MAX:  # pragma: no cover - 2^79 ids in a millisecond
                _state["ms"] += 1
                _state["counter"] = 0
        return f"{_state['ms']:012x}{_state['counter']:020x}"


def new_ids(n: int) -> list[str]:
    """``n`` increasing ids at once (bulk loads)."""
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _state["ms"]:
            _state["ms"] = ms
            _state["counter"] = secrets.randbits(72)
        start = _state["counter"] + 1
        _state["counter"] += n
        prefix = f"{_state['ms']:012x}"
    return [f"{prefix}{c:020x}" for c in range(start, start + n)]
