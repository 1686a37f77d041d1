"""Derivations shared by several SDTM builders, computed once per :class:`SdtmSource` (issue 13).

Every builder stays a pure function of its source; what two builders would both derive (the subjects'
reference dates, the visit calendar, the response engine's cohort derivation) is kept here, keyed by the source
object, and dropped with it. A cached value is never changed by a builder.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from abscopal.interop.sdtm.spec import SdtmSource

T = TypeVar("T")

_MEMO: dict[int, tuple[weakref.ref[SdtmSource], dict[Hashable, Any]]] = {}


def _forget(sid: int) -> Callable[[weakref.ref[SdtmSource]], None]:
    """The weakref callback dropping a source's entry (bound to the table: safe at interpreter exit)."""
    table = _MEMO

    def forget(_ref: weakref.ref[SdtmSource]) -> None:
        table.pop(sid, None)

    return forget


def memo(source: SdtmSource, key: Hashable, make: Callable[[], T]) -> T:
    """``make()`` the first time ``key`` is asked of ``source``, the same value after that."""
    entry = _MEMO.get(id(source))
    if entry is None or entry[0]() is not source:
        sid = id(source)
        entry = (weakref.ref(source, _forget(sid)), {})
        _MEMO[sid] = entry
    values = entry[1]
    if key not in values:
        values[key] = make()
    value: T = values[key]
    return value
