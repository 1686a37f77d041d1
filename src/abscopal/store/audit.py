"""The append-only, hash-chained audit trail (who, when, entity, field, old value, new value, reason).

Each record's hash is SHA-256 over its content and the previous record's hash, so editing or deleting an
audit record breaks the chain. Replaying the trail gives every trial-data row as it should be, so
:func:`verify` also finds a data row edited, deleted or inserted behind the trail's back, and names it.
(21 CFR Part 11 / ICH E6(R2) 4.9: changes attributable, dated, explained, without obscuring the original.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, select, update

from abscopal.store.codec import canonical, codec, insert_rows
from abscopal.store.tables import ENTITIES, audit_head, audit_log

GENESIS = "0" * 64
ROW = "*"  # the ``field`` of a record that inserts or deletes one whole row
ROWS = "*rows"  # the ``field`` of a record inserting many rows: {"columns": [...], "rows": {key: [...]}}


def record_hash(
    seq: int,
    at: dt.datetime,
    username: str,
    entity: str,
    entity_key: str,
    field: str,
    old_value: str | None,
    new_value: str | None,
    reason: str,
    prev_hash: str,
) -> str:
    payload = canonical([seq, at, username, entity, entity_key, field, old_value, new_value, reason, prev_hash])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Change:
    """One change to trial data before it is chained (``field``: a column, ``*`` one row, ``*rows`` many)."""

    entity: str
    entity_key: str
    field: str
    old_value: str | None
    new_value: str | None


_AUDIT_COLUMNS = tuple(c.name for c in audit_log.columns)


class AuditWriter:
    """Appends chained records inside the caller's transaction; locks the chain head first (PostgreSQL)."""

    def __init__(self, conn: Connection, username: str, reason: str) -> None:
        if not username.strip():
            raise ValueError("an audited change needs a user")
        if not reason.strip():
            raise ValueError("an audited change needs a reason")
        self.conn = conn
        self.username = username
        self.reason = reason
        self.at = dt.datetime.now(dt.UTC)
        query = select(audit_head.c.last_seq, audit_head.c.last_hash).where(audit_head.c.id == 1)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        head = conn.execute(query).first()
        if head is None:
            conn.execute(audit_head.insert().values(id=1, last_seq=0, last_hash=GENESIS))
            self.seq, self.last_hash = 0, GENESIS
        else:
            self.seq, self.last_hash = int(head.last_seq), str(head.last_hash)
        self._pending: list[tuple[Any, ...]] = []

    def add(self, changes: Iterable[Change], reason: str | None = None) -> None:
        why = reason or self.reason
        for c in changes:
            self.seq += 1
            h = record_hash(
                self.seq, self.at, self.username, c.entity, c.entity_key, c.field, c.old_value, c.new_value,
                why, self.last_hash,
            )  # fmt: skip
            self._pending.append(
                (self.seq, self.at, self.username, c.entity, c.entity_key, c.field, c.old_value, c.new_value, why,
                 self.last_hash, h)
            )  # fmt: skip
            self.last_hash = h
        if len(self._pending) >= 20_000:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            insert_rows(self.conn, audit_log, _AUDIT_COLUMNS, self._pending)
            self._pending = []
        self.conn.execute(
            update(audit_head).where(audit_head.c.id == 1).values(last_seq=self.seq, last_hash=self.last_hash)
        )


# --- verification


@dataclass(frozen=True)
class Finding:
    """One thing wrong with the trail or the data, as a sentence that names the record."""

    kind: str  # "chain" | "edited" | "deleted" | "unaudited"
    entity: str
    entity_key: str
    message: str


@dataclass(frozen=True)
class VerifyReport:
    records: int
    rows: int
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.findings


def _iter_audit(conn: Connection, entity: str | None = None) -> Iterator[Any]:
    query = select(audit_log).order_by(audit_log.c.seq)
    if entity is not None:
        query = query.where(audit_log.c.entity == entity)
    yield from conn.execution_options(yield_per=20_000).execute(query)


def verify_chain(conn: Connection) -> tuple[int, list[Finding]]:
    """Check seq continuity and every hash; the first break is reported (later ones follow from it)."""
    prev_hash, expected_seq, count = GENESIS, 1, 0
    for r in _iter_audit(conn):
        count += 1
        where = f"audit record {r.seq} ({r.entity} {r.entity_key!r}, field {r.field!r}, {r.at:%Y-%m-%d %H:%M})"
        if r.seq != expected_seq:
            missing = f"{expected_seq}" if r.seq == expected_seq + 1 else f"{expected_seq}-{r.seq - 1}"
            return count, [
                Finding("chain", r.entity, r.entity_key, f"audit record(s) {missing} deleted before {where}")
            ]
        if r.prev_hash != prev_hash:
            return count, [Finding("chain", r.entity, r.entity_key, f"{where} does not follow the record before it")]
        at = r.at.astimezone(dt.UTC) if r.at.tzinfo else r.at.replace(tzinfo=dt.UTC)
        h = record_hash(
            r.seq, at, r.username, r.entity, r.entity_key, r.field, r.old_value, r.new_value, r.reason, r.prev_hash
        )
        if h != r.hash:
            return count, [Finding("chain", r.entity, r.entity_key, f"{where} was edited after it was written")]
        prev_hash, expected_seq = r.hash, expected_seq + 1
    head = conn.execute(select(audit_head.c.last_seq, audit_head.c.last_hash)).first()
    last_seq = expected_seq - 1
    if head is not None and (head.last_seq != last_seq or head.last_hash != prev_hash):
        return count, [
            Finding("chain", "audit_log", str(head.last_seq), f"the trail ends at record {last_seq} but its head says "
                    f"{head.last_seq}: the last record(s) were deleted")
        ]  # fmt: skip
    return count, []


def _digest(state: Any) -> bytes:
    return hashlib.blake2b(orjson.dumps(state, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


def _replay(conn: Connection, entity: str, only: set[str] | None = None) -> dict[str, Any]:
    """Replay one table's trail: key -> expected state (a dict), or only the keys in ``only``."""
    expected: dict[str, Any] = {}
    for r in _iter_audit(conn, entity):
        if r.field == ROWS:
            batch = orjson.loads(r.new_value)
            columns = batch["columns"]
            for key, values in batch["rows"].items():
                if only is None or key in only:
                    expected[key] = dict(zip(columns, values, strict=True))
        elif only is not None and r.entity_key not in only:
            continue
        elif r.field == ROW:
            if r.new_value is None:
                expected.pop(r.entity_key, None)
            else:
                expected[r.entity_key] = orjson.loads(r.new_value)
        else:
            state = expected.setdefault(r.entity_key, {})
            state[r.field] = None if r.new_value is None else orjson.loads(r.new_value)
    return expected


def verify_data(conn: Connection, limit: int = 50) -> tuple[int, list[Finding]]:
    """Replay the trail table by table (digests only, to bound memory) and compare with the stored rows."""
    findings: list[Finding] = []
    rows = 0
    for entity, e in ENTITIES.items():
        c = codec(entity)
        expected = {k: _digest(v) for k, v in _replay(conn, entity).items()}
        edited: list[tuple[str, dict[str, Any]]] = []
        for row in conn.execution_options(yield_per=20_000).execute(select(e.table)):
            rows += 1
            mapping = row._mapping
            key = str(mapping[e.key_column])
            actual = c.state_from_db(mapping)
            want = expected.pop(key, None)
            if want is None:
                findings.append(Finding("unaudited", entity, key, f"{entity} row {key!r} is not in the audit trail"))
            elif want != _digest(actual):
                edited.append((key, actual))
        if edited:
            states = _replay(conn, entity, {k for k, _ in edited})
            for key, actual in edited:
                wanted = orjson.loads(canonical(states[key]))
                got = orjson.loads(canonical(actual))
                diff = [f for f in sorted(set(got) | set(wanted)) if got.get(f) != wanted.get(f)]
                f = diff[0] if diff else "?"
                findings.append(
                    Finding(
                        "edited", entity, key,
                        f"{entity} row {key!r} field {f!r} is {got.get(f)!r} but the audit trail says "
                        f"{wanted.get(f)!r}: edited outside the audit trail",
                    )
                )  # fmt: skip
        for key in expected:
            findings.append(
                Finding("deleted", entity, key, f"{entity} row {key!r} was deleted outside the audit trail")
            )
        if len(findings) >= limit:
            return rows, findings[:limit]
    return rows, findings


@dataclass(frozen=True)
class HistoryEntry:
    seq: int
    at: dt.datetime
    username: str
    field: str
    old_value: str | None
    new_value: str | None
    reason: str


def history(conn: Connection, entity: str, key: str) -> list[HistoryEntry]:
    """Every audited change to one record, oldest first; a bulk insert shows that row's values only."""
    key_json = orjson.dumps(key).decode()
    query = (
        select(audit_log)
        .where(audit_log.c.entity == entity)
        .where(
            (audit_log.c.entity_key == key)
            | ((audit_log.c.field == ROWS) & audit_log.c.new_value.contains(f"{key_json}:"))
        )
        .order_by(audit_log.c.seq)
    )
    out: list[HistoryEntry] = []
    for r in conn.execute(query):
        new_value = r.new_value
        field = r.field
        if r.field == ROWS:
            batch = orjson.loads(r.new_value)
            if key not in batch["rows"]:
                continue
            new_value = canonical(dict(zip(batch["columns"], batch["rows"][key], strict=True)))
            field = ROW
        out.append(HistoryEntry(r.seq, r.at, r.username, field, r.old_value, new_value, r.reason))
    return out


def verify(conn: Connection) -> VerifyReport:
    """Verify the chain, then the data against it. Used by ``abscopal audit verify``."""
    records, findings = verify_chain(conn)
    rows = 0
    if not findings:
        rows, findings = verify_data(conn)
    return VerifyReport(records, rows, tuple(findings))
