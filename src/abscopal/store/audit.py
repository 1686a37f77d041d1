"""The append-only audit trail (who, when, entity, record id, field, old value, new value, reason), HMAC-chained.

Each record's hash is HMAC-SHA256, under a key kept outside the database (:mod:`abscopal.store.audit_key`), over
its content and the previous record's hash: editing, deleting, inserting or reordering a record breaks the chain,
and recomputing the chain needs the key. The head row (created by the migration) holds the last sequence number
and hash under its own MAC, so a truncated tail, an emptied table or a missing head is a finding too; a signed
checkpoint kept outside the database (:func:`checkpoint`) also catches a rollback to an older, consistent state.
Records written before schema 0002 (``seq <= audit_head.legacy_seq``) keep their plain SHA-256 chain; the first
keyed record, or the head's MAC, anchors their last hash. Replaying the trail gives every trial-data row as it
should be, so :func:`verify` also finds a row edited, deleted or inserted behind the trail's back, and names it.
(21 CFR Part 11 §11.10(e); ICH E6(R3) 4.2: attributable, dated, explained changes that do not obscure the original.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, func, select, update

from abscopal.errors import StoreError
from abscopal.store.audit_key import key_id, load_key, mac
from abscopal.store.codec import canonical, codec, insert_rows
from abscopal.store.tables import ENTITIES, audit_head, audit_log

GENESIS = "0" * 64
ROW = "*"  # the ``field`` of a record that inserts one whole row (or, before schema 0002, deletes one)
ROWS = "*rows"  # the ``field`` of a record inserting many rows: {"columns": [...], "rows": {id: [...]}}
VERSION = "version"  # the ``field`` of a record that only moves a parent's version (a child changed)
SCHEMA = "schema"  # the ``entity`` of a record that notes a schema migration (no row)
_LEGACY_COLUMNS = {"adjudication_key": "adjudication_id", "assessment_key": "assessment_id"}


def legacy_hash(
    seq: int, at: dt.datetime, username: str, entity: str, entity_key: str, field: str,
    old_value: str | None, new_value: str | None, reason: str, prev_hash: str,
) -> str:  # fmt: skip
    """The plain SHA-256 chain of schema 0001 (kept to verify records written before the key existed)."""
    payload = canonical([seq, at, username, entity, entity_key, field, old_value, new_value, reason, prev_hash])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def record_mac(
    key: bytes, seq: int, at: dt.datetime, username: str, entity: str, entity_key: str, field: str,
    old_value: str | None, new_value: str | None, reason: str, prev_hash: str, version: int | None,
) -> str:  # fmt: skip
    """HMAC-SHA256 of one audit record and the previous record's hash."""
    payload = canonical(
        [seq, at, username, entity, entity_key, field, old_value, new_value, reason, prev_hash, version]
    )
    return mac(key, payload.encode("utf-8"))


def head_mac(key: bytes, last_seq: int, last_hash: str, legacy_seq: int, kid: str) -> str:
    """The head row's MAC: the trail's length and last hash cannot be rewound without the key."""
    return mac(key, canonical(["audit_head", last_seq, last_hash, legacy_seq, kid]).encode("utf-8"))


@dataclass(frozen=True)
class Change:
    """One change to trial data before it is chained (``field``: a column, ``*`` one row, ``*rows`` many)."""

    entity: str
    entity_key: str
    field: str
    old_value: str | None
    new_value: str | None
    version: int | None = None
    key_first: str | None = None
    key_last: str | None = None


_AUDIT_COLUMNS = tuple(c.name for c in audit_log.columns)


def now_utc() -> dt.datetime:
    """The audit clock: UTC, microseconds (both databases store them)."""
    return dt.datetime.now(dt.UTC)


class AuditWriter:
    """Collects changes during a transaction; :meth:`flush` chains and writes them, locking the head only then."""

    def __init__(self, conn: Connection, username: str, reason: str, key: bytes) -> None:
        if not username.strip():
            raise ValueError("an audited change needs a user")
        if not reason.strip():
            raise ValueError("an audited change needs a reason")
        self.conn = conn
        self.username = username
        self.reason = reason
        self.key = key
        self._pending: list[tuple[Change, str]] = []

    def add(self, changes: Iterable[Change], reason: str | None = None) -> None:
        why = reason or self.reason
        self._pending.extend((c, why) for c in changes)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> int:
        """Append the pending records to the chain (head locked from here to the commit); return how many."""
        if not self._pending:
            return 0
        query = select(audit_head).where(audit_head.c.id == 1)
        if self.conn.dialect.name == "postgresql":
            query = query.with_for_update()
        head = self.conn.execute(query).first()
        if head is None:
            raise StoreError(
                "The audit trail has no head row, so nothing can be written; the database was damaged or not "
                "created by `abscopal db upgrade` (run `abscopal audit verify`)"
            )
        kid = key_id(self.key)
        if head.key_id is not None and head.key_id != kid:
            raise StoreError(
                "The audit key does not belong to this database (its fingerprint differs), so nothing was written; "
                "restore the database's key file or ABSCOPAL_AUDIT_KEY"
            )
        seq, last_hash = int(head.last_seq), str(head.last_hash)
        at = now_utc()
        rows: list[tuple[Any, ...]] = []
        for c, why in self._pending:
            seq += 1
            h = record_mac(
                self.key, seq, at, self.username, c.entity, c.entity_key, c.field, c.old_value, c.new_value, why,
                last_hash, c.version,
            )  # fmt: skip
            rows.append(
                (seq, at, self.username, c.entity, c.entity_key, c.field, c.old_value, c.new_value, why,
                 last_hash, h, c.version, c.key_first, c.key_last)
            )  # fmt: skip
            last_hash = h
        insert_rows(self.conn, audit_log, _AUDIT_COLUMNS, rows)
        legacy = int(head.legacy_seq or 0)
        self.conn.execute(
            update(audit_head)
            .where(audit_head.c.id == 1)
            .values(last_seq=seq, last_hash=last_hash, key_id=kid, mac=head_mac(self.key, seq, last_hash, legacy, kid))
        )
        written = len(self._pending)
        self._pending = []
        return written


# --- verification


@dataclass(frozen=True)
class Finding:
    """One thing wrong with the trail or the data, as a sentence that names the record."""

    kind: str  # "head" | "key" | "chain" | "checkpoint" | "edited" | "deleted" | "unaudited"
    entity: str
    entity_key: str
    message: str


@dataclass(frozen=True)
class VerifyReport:
    records: int
    rows: int
    findings: tuple[Finding, ...]  # the first ``limit`` findings
    total: int = 0  # every finding, shown or not
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.total == 0 and not self.findings

    @property
    def not_shown(self) -> int:
        return max(0, self.total - len(self.findings))


class _Findings:
    """Counts every finding, keeps the first ``limit`` as sentences."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.shown: list[Finding] = []
        self.by_kind: Counter[str] = Counter()

    def add(self, finding: Finding) -> None:
        self.by_kind[finding.kind] += 1
        if len(self.shown) < self.limit:
            self.shown.append(finding)

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())


def _iter_audit(conn: Connection, entity: str | None = None) -> Iterator[Any]:
    query = select(audit_log).order_by(audit_log.c.seq)
    if entity is not None:
        query = query.where(audit_log.c.entity == entity)
    yield from conn.execute(
        query.execution_options(yield_per=20_000)
    )  # per statement: the caller's connection keeps its options


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _where(r: Any) -> str:
    return f"audit record {r.seq} ({r.entity} {r.entity_key!r}, field {r.field!r}, {r.at:%Y-%m-%d %H:%M})"


def verify_chain(conn: Connection, key: bytes, out: _Findings) -> tuple[int, int, str]:
    """Check the head, the sequence, every link and every MAC; return (records, last seq, last hash)."""
    head = conn.execute(select(audit_head).where(audit_head.c.id == 1)).first()
    legacy = int(head.legacy_seq or 0) if head is not None else 0
    if head is None:
        out.add(Finding("head", "audit_head", "1", "the audit trail's head row is missing (deleted outside Abscopal)"))
    else:
        kid = key_id(key)
        if head.key_id is not None and head.key_id != kid:
            out.add(Finding("key", "audit_head", "1", "the audit key given is not the key this trail was written with"))
        elif head.mac is None or head.mac != head_mac(key, int(head.last_seq), str(head.last_hash), legacy, kid):
            out.add(Finding("head", "audit_head", "1", "the audit trail's head row was altered outside Abscopal"))
    prev_hash, expected_seq, count = GENESIS, 1, 0
    for r in _iter_audit(conn):
        count += 1
        if r.seq != expected_seq:
            if r.seq > expected_seq:
                missing = f"{expected_seq}" if r.seq == expected_seq + 1 else f"{expected_seq}-{r.seq - 1}"
                out.add(
                    Finding("chain", r.entity, r.entity_key, f"audit record(s) {missing} deleted before {_where(r)}")
                )
            expected_seq = r.seq
        if r.prev_hash != prev_hash:
            out.add(Finding("chain", r.entity, r.entity_key, f"{_where(r)} does not follow the record before it"))
        at = _utc(r.at)
        if r.seq <= legacy:
            h = legacy_hash(
                r.seq, at, r.username, r.entity, r.entity_key, r.field, r.old_value, r.new_value, r.reason, r.prev_hash
            )
        else:
            h = record_mac(
                key, r.seq, at, r.username, r.entity, r.entity_key, r.field, r.old_value, r.new_value, r.reason,
                r.prev_hash, r.version,
            )  # fmt: skip
        if h != r.hash:
            how = "was edited after it was written" if r.seq <= legacy else "was edited or forged without the key"
            out.add(Finding("chain", r.entity, r.entity_key, f"{_where(r)} {how}"))
        prev_hash, expected_seq = r.hash, expected_seq + 1
    last_seq = expected_seq - 1
    if head is not None and (int(head.last_seq) != last_seq or head.last_hash != prev_hash):
        if int(head.last_seq) > last_seq:
            what = "the last record(s) were deleted" if count else "every record was deleted"
        else:
            what = "records were added outside Abscopal"
        message = f"the trail ends at record {last_seq} but its head says {head.last_seq}: {what}"
        out.add(Finding("chain", "audit_log", str(head.last_seq), message))
    return count, last_seq, prev_hash


def _digest(state: Any) -> bytes:
    return hashlib.blake2b(orjson.dumps(state, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


def _legacy_state(state: dict[str, Any]) -> dict[str, Any]:
    for old, new in _LEGACY_COLUMNS.items():
        if old in state:
            state[new] = state.pop(old)
    return state


def _replay_lists(
    conn: Connection, entity: str, only: set[str] | None = None, *, changed_later: set[str] | None = None
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """Replay one table's trail: the columns (all but ``id``) and id -> expected values in that order.

    Lists, not dicts, so that a large table's replay fits in memory; with ``changed_later`` (the ids that have
    field records), a row inserted and never changed is kept as its digest at once. A column added by a later
    migration is NULL in rows inserted before it existed; 0001's column names are read under their new names.
    """
    columns = codec(entity).columns[1:]
    pos = {c: i for i, c in enumerate(columns)}
    n, vpos = len(columns), pos["version"]
    expected: dict[str, Any] = {}  # a list of values, or its digest (bytes) once final
    for r in _iter_audit(conn, entity):
        version = 1 if r.version is None else int(r.version)
        if r.field == ROWS:
            batch = orjson.loads(r.new_value)
            idx = [pos.get(_LEGACY_COLUMNS.get(c, c), -1) for c in batch["columns"]]
            for key, values in batch["rows"].items():
                if only is None or key in only:
                    state: list[Any] = [None] * n
                    for i, v in zip(idx, values, strict=True):
                        if i >= 0:
                            state[i] = v
                    state[vpos] = version
                    if changed_later is not None and key not in changed_later:
                        expected[key] = _digest(tuple(state))
                    else:
                        expected[key] = state
        elif only is not None and r.entity_key not in only:
            continue
        elif r.field == ROW:
            if r.new_value is None:
                expected.pop(r.entity_key, None)  # a physical delete, as schema 0001 did
                continue
            state = [None] * n
            for k, v in _legacy_state(orjson.loads(r.new_value)).items():
                i = pos.get(k, -1)
                if i >= 0:
                    state[i] = v
            state[vpos] = version
            expected[r.entity_key] = state
        else:
            state = expected.get(r.entity_key)  # type: ignore[assignment]
            if state is None:
                state = [None] * n
                state[vpos] = 1
                expected[r.entity_key] = state
            i = pos.get(r.field, -1)
            if r.field != VERSION and i >= 0:
                state[i] = None if r.new_value is None else orjson.loads(r.new_value)
            if r.version is not None:
                state[vpos] = version
    return columns, expected


def _replay(conn: Connection, entity: str, only: set[str] | None = None) -> dict[str, Any]:
    """Replay one table's trail: id -> expected state (a dict of every column but ``id``)."""
    columns, lists = _replay_lists(conn, entity, only)
    return {k: dict(zip(columns, v, strict=True)) for k, v in lists.items()}


def replay_rows(conn: Connection, entity: str) -> dict[str, dict[str, Any]]:
    """Every row of one table as the audit trail says it should be (id -> column values): for tests and repair."""
    return _replay(conn, entity)


def verify_data(conn: Connection, out: _Findings) -> int:
    """Replay the trail table by table (digests only, to bound memory) and compare with the stored rows."""
    rows = 0
    for entity, e in ENTITIES.items():
        c = codec(entity)
        changed = set(
            conn.execute(
                select(audit_log.c.entity_key)
                .where(audit_log.c.entity == entity)
                .where(audit_log.c.field.not_in((ROW, ROWS)))
                .distinct()
            ).scalars()
        )
        _, expected = _replay_lists(conn, entity, changed_later=changed)
        for k, v in expected.items():  # the rows changed after their insert: digested once fully replayed
            if isinstance(v, list):
                expected[k] = _digest(tuple(v))
        edited: list[tuple[str, dict[str, Any]]] = []
        for row in conn.execute(select(e.table).execution_options(yield_per=20_000)):
            rows += 1
            key = str(row[0])
            want = expected.pop(key, None)
            if want is None:
                out.add(Finding("unaudited", entity, key, f"{entity} row {key!r} is not in the audit trail"))
            elif want != _digest(c.state_tuple(row)):
                edited.append((key, c.state_from_db(row._mapping)))
        if edited:
            states = _replay(conn, entity, {k for k, _ in edited[: out.limit]})
            for key, actual in edited:
                if key not in states:
                    out.add(Finding("edited", entity, key, f"{entity} row {key!r} was edited outside the audit trail"))
                    continue
                wanted = orjson.loads(canonical(states[key]))
                got = orjson.loads(canonical(actual))
                diff = [f for f in sorted(set(got) | set(wanted)) if got.get(f) != wanted.get(f)]
                f = diff[0] if diff else "?"
                out.add(
                    Finding(
                        "edited", entity, key,
                        f"{entity} row {key!r} field {f!r} is {got.get(f)!r} but the audit trail says "
                        f"{wanted.get(f)!r}: edited outside the audit trail",
                    )
                )  # fmt: skip
        for key in expected:
            out.add(Finding("deleted", entity, key, f"{entity} row {key!r} was deleted outside the audit trail"))
    return rows


# --- checkpoints kept outside the database


def row_counts(conn: Connection) -> dict[str, int]:
    return {
        name: int(conn.execute(select(func.count()).select_from(e.table)).scalar_one()) for name, e in ENTITIES.items()
    }


def checkpoint(conn: Connection, key: bytes) -> dict[str, Any]:
    """A signed statement of the trail's head (sequence, hash, row counts, time), to keep outside the database."""
    head = conn.execute(select(audit_head).where(audit_head.c.id == 1)).first()
    if head is None:
        raise StoreError("The audit trail has no head row; run `abscopal audit verify` to see what happened")
    body = {
        "format": "abscopal-audit-checkpoint/1",
        "seq": int(head.last_seq),
        "hash": str(head.last_hash),
        "rows": row_counts(conn),
        "at": now_utc().isoformat(),
        "key_id": key_id(key),
    }
    return {**body, "signature": mac(key, canonical(body).encode("utf-8"))}


def check_checkpoint(conn: Connection, key: bytes, statement: dict[str, Any]) -> list[Finding]:
    """Findings when the trail no longer extends the checkpointed head (rolled back, truncated or rewritten)."""
    body = {k: v for k, v in statement.items() if k != "signature"}
    if statement.get("signature") != mac(key, canonical(body).encode("utf-8")):
        return [Finding("checkpoint", "audit_head", "-", "the checkpoint's signature is not valid under this key")]
    try:
        seq, want = int(statement["seq"]), str(statement["hash"])
    except (KeyError, TypeError, ValueError):
        return [Finding("checkpoint", "audit_head", "-", "the checkpoint has no valid seq and hash")]
    if seq == 0:
        return []
    got = conn.execute(select(audit_log.c.hash).where(audit_log.c.seq == seq)).scalar()
    head_seq = conn.execute(select(audit_head.c.last_seq)).scalar()
    if got is None or (head_seq is not None and int(head_seq) < seq):
        return [
            Finding("checkpoint", "audit_log", str(seq), f"the trail was rolled back or truncated: the checkpoint of "
                    f"{statement.get('at')} saw record {seq}, which is no longer there")
        ]  # fmt: skip
    if got != want:
        return [
            Finding("checkpoint", "audit_log", str(seq), f"audit record {seq} differs from the one the checkpoint of "
                    f"{statement.get('at')} saw: the trail was rewritten")
        ]  # fmt: skip
    return []


def verify(
    conn: Connection,
    key: bytes | None = None,
    *,
    checkpoint_statement: dict[str, Any] | None = None,
    limit: int = 50,
) -> VerifyReport:
    """Verify the head and chain, then the data against it (and a checkpoint, if given); count every finding.

    ``key`` defaults to the database's audit key (:func:`abscopal.store.audit_key.load_key`).
    """
    if key is None:
        key = load_key(conn.engine.url, create=False)
    out = _Findings(limit)
    records, _, _ = verify_chain(conn, key, out)
    if checkpoint_statement is not None:
        for f in check_checkpoint(conn, key, checkpoint_statement):
            out.add(f)
    rows = verify_data(conn, out)
    return VerifyReport(records, rows, tuple(out.shown), out.total, dict(out.by_kind))


# --- history


@dataclass(frozen=True)
class HistoryEntry:
    seq: int
    at: dt.datetime
    username: str
    field: str
    old_value: str | None
    new_value: str | None
    reason: str
    version: int | None = None


def history(conn: Connection, entity: str, record_id: str) -> list[HistoryEntry]:
    """Every audited change to one record, oldest first; a bulk insert shows that row's values only."""
    single = select(audit_log).where(audit_log.c.entity == entity).where(audit_log.c.entity_key == record_id)
    bulk = (
        select(audit_log)
        .where(audit_log.c.entity == entity)
        .where(audit_log.c.key_first <= record_id)
        .where(audit_log.c.key_last >= record_id)
        .where(audit_log.c.field == ROWS)
    )
    records = {r.seq: r for r in conn.execute(single)}
    records.update({r.seq: r for r in conn.execute(bulk)})
    out: list[HistoryEntry] = []
    for seq in sorted(records):
        r = records[seq]
        new_value, fld = r.new_value, r.field
        if r.field == ROWS:
            batch = orjson.loads(r.new_value)
            if record_id not in batch["rows"]:
                continue
            columns = [_LEGACY_COLUMNS.get(c, c) for c in batch["columns"]]
            new_value = canonical(dict(zip(columns, batch["rows"][record_id], strict=True)))
            fld = ROW
        out.append(HistoryEntry(r.seq, _utc(r.at), r.username, fld, r.old_value, new_value, r.reason, r.version))
    return out
