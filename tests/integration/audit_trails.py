"""Helpers the integration tests share (imported with ``sys.path``, as tests/web does): the audit chain's head, and
an audit trail read so that two runs compare."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Engine, func, select

from abscopal.store.tables import audit_log

Trail = list[tuple[Any, ...]]


def last_seq(engine: Engine) -> int:
    """The audit chain's last sequence number (0 when empty): what a test reads before and after a write."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(audit_log.c.seq), 0))).scalar_one())


def audit_trail(engine: Engine, after: int, upto: int | None = None, rename: tuple[str, str] | None = None) -> Trail:
    """The audit records after ``after`` (up to ``upto``): who, what, old and new value, why, version and a bulk
    record's id range; record ids numbered in order of appearance (they differ between runs) and ``rename``'s
    first subject written as its second, so that two patients' trails compare."""
    query = select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq)
    if upto is not None:
        query = query.where(audit_log.c.seq <= upto)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    names: dict[str, str] = {}

    def named(text: str | None) -> str | None:
        if text is None:
            return None
        text = re.sub(r"[0-9a-f]{32}", lambda m: names.setdefault(m.group(0), f"<id{len(names)}>"), text)
        return text if rename is None else text.replace(*rename)

    return [
        (r.username, r.entity, named(r.entity_key), r.field, named(r.old_value), named(r.new_value), r.reason,
         r.version, named(r.key_first), named(r.key_last))
        for r in rows
    ]  # fmt: skip
