"""The audit trail as people read it (web.md §2, §8; 21 CFR Part 11 §11.10(e)): one record's history, the trail.

Pure reads over a :class:`~sqlalchemy.Connection` (the pages and the API call them alike):

- :func:`record_history` is every change to one record, oldest first, *including its child rows* (an
  assessment's lesion measurements, an adjudication's signatures), each as who, when (UTC), which field, the old
  and the new value, why and the record's version after it (:func:`abscopal.store.audit.history`).
- :func:`trail` is the whole trail, newest first, filtered (user, entity, security event, patient, time) and
  paginated by sequence number (``before_seq``).

Scoping (``sites``, for an investigator: "R (own sites)" in web.md §2; ``subject_id``, one patient's records):
the filters that are columns of ``audit_log`` (user, entity, event, time, the tables a patient's records live
in) are SQL; *whose* record each audit record names is resolved per chunk of the trail, read newest first by
``seq`` (:data:`SCAN_CHUNK` records a query, at most :data:`SCAN_CHUNKS` chunks a page), with one ``id IN (...)``
query per table on the chunk (``audit_log.entity_key`` = the table's ``id``; a child row through its parent)
and the patients' ``site_code``. This keeps a page bounded in a long trail, where one SQL statement joining
every table's rows would make the database sort the whole trail before the first page (checked with EXPLAIN on
SQLite); the price is that a scoped page may hold fewer than ``limit`` rows while ``next_before_seq`` says more
may follow. A trial-data record is shown when its row belongs to a patient of those sites, or is one of those
sites. A bulk record (``field == "*rows"``) counts as its first row's (its ``entity_key``: one index lookup, where
searching its id range for a row of a list of patients took tens of milliseconds a record); for one patient
(``subject_id``) its id range is searched (the patient's rows by index, then their ids). Its payload is never
loaded or shown in the trail (only its id range), so that another site's rows in the same batch do not leak;
each row's values are in that record's history. Security and account events, schema notes and the ``users``
table are not about a patient: they are shown only when ``sites`` is None (data managers, monitors and the
administrator see everything) and no patient is asked for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, and_, case, select, true

from abscopal.errors import ValidationError
from abscopal.messages import Message
from abscopal.store.audit import ROW, ROWS, history
from abscopal.store.tables import ENTITIES, audit_log
from abscopal.web.i18n import N_

SECURITY = "security"
MAX_LIMIT = 500
_patients = ENTITIES["patients"].table
_a = audit_log.c


def shown(value: str | None) -> str:
    """A stored (canonical JSON) value as a person reads it: a string without quotes, null as empty."""
    if value is None:
        return ""
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    if decoded is None:
        return ""
    if isinstance(decoded, str):
        return decoded
    return orjson.dumps(decoded).decode()


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class HistoryRow:
    """One audited change: ``field`` is a column, ``*`` (the whole row at insert) or ``version`` (a child changed)."""

    seq: int
    at: dt.datetime  # UTC
    username: str
    entity: str  # the record's table, or a child table (``lesion_measurements``)
    record_id: str
    field: str
    old_value: str | None  # canonical JSON, as stored
    new_value: str | None
    reason: str
    version: int | None

    @property
    def old(self) -> str:
        return shown(self.old_value)

    @property
    def new(self) -> str:
        return shown(self.new_value)


def _child_ids(conn: Connection, entity: str, record_id: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, e in ENTITIES.items():
        if e.parent == entity and e.parent_column is not None:
            ids = conn.execute(select(e.table.c.id).where(e.table.c[e.parent_column] == record_id)).scalars()
            out.extend((name, str(i)) for i in ids)
    return out


def record_history(conn: Connection, entity: str, record_id: str) -> list[HistoryRow]:
    """Every audited change to the record and to its child rows (removed ones included), oldest first.

    An unknown ``entity`` is a ValidationError naming it; a record without history gives an empty list.
    """
    if entity not in ENTITIES:
        known = ", ".join(sorted(ENTITIES))
        raise ValidationError("entity", f"{entity!r} is not a kind of trial record (known: {known})")
    rows: list[HistoryRow] = []
    for name, rid in [(entity, record_id), *_child_ids(conn, entity, record_id)]:
        for h in history(conn, name, rid):
            rows.append(HistoryRow(h.seq, _utc(h.at), h.username, name, rid, h.field, h.old_value, h.new_value,
                                   h.reason, h.version))  # fmt: skip
    rows.sort(key=lambda r: r.seq)
    return rows


# --- the trail


@dataclass(frozen=True)
class TrailRow:
    seq: int
    at: dt.datetime  # UTC
    username: str
    entity: str
    entity_key: str
    field: str
    old_value: str | None
    new_value: str | None  # a bulk record's payload is replaced by a sentence (see the module docstring)
    reason: str
    version: int | None
    subject_id: str | None = None  # the patient the record belongs to, when it is trial data

    @property
    def old(self) -> str:
        return shown(self.old_value)

    @property
    def new(self) -> str:
        return (self.new_value or "") if self.field == ROWS else shown(self.new_value)


@dataclass(frozen=True)
class TrailPage:
    rows: list[TrailRow]
    next_before_seq: int | None  # pass as ``before_seq`` for the next (older) page; None on the last page


def _subject_column(entity: str) -> tuple[Any, Any, Any] | None:
    """(table, its id column, an expression of the subject id) for a table whose rows belong to a patient."""
    e = ENTITIES[entity]
    if "subject_id" in e.table.c:
        return e.table, e.table.c.id, e.table.c.subject_id
    if e.parent is not None and e.parent_column is not None:
        parent = ENTITIES[e.parent].table
        if "subject_id" in parent.c:
            return e.table.join(parent, e.table.c[e.parent_column] == parent.c.id), e.table.c.id, parent.c.subject_id
    return None


def _scoped_entities() -> list[str]:
    """The tables whose records belong to a patient (or, for ``sites``, to a site): all a scoped view can show."""
    return [name for name in ENTITIES if name == "sites" or _subject_column(name) is not None]


class _Scope:
    """Which trial-data records a scoped view shows: of these patients (``subject_id``) and/or these sites.

    Resolved per chunk of the trail: one query per table on the chunk (ids IN …) for single records, one range
    query per bulk record, one query for the patients' sites.
    """

    def __init__(self, conn: Connection, subject_id: str | None, sites: set[str] | frozenset[str] | None) -> None:
        self.conn = conn
        self.subject_id = subject_id
        self.sites = None if sites is None else frozenset(sites)
        self._site_of: dict[str, str | None] = {}

    def _subject_ok(self, subject: str) -> bool:
        if self.subject_id is not None and subject != self.subject_id:
            return False
        if self.sites is None:
            return True
        if subject not in self._site_of:
            site = self.conn.execute(
                select(_patients.c.site_code).where(_patients.c.subject_id == subject)
            ).scalar_one_or_none()
            self._site_of[subject] = None if site is None else str(site)
        return self._site_of[subject] in self.sites

    def _site_ok(self, conn: Connection, r: Any) -> bool:
        if self.subject_id is not None or self.sites is None:
            return False
        site_table = ENTITIES["sites"].table
        query = select(site_table.c.code)
        if r.field == ROWS:
            query = query.where(site_table.c.id >= r.key_first, site_table.c.id <= r.key_last)
        else:
            query = query.where(site_table.c.id == r.entity_key)
        return any(str(code) in self.sites for code in conn.execute(query).scalars())

    def _bulk_holds_subject(self, r: Any) -> bool:
        found = _subject_column(r.entity)
        if found is None or r.key_first is None or r.key_last is None:
            return False
        source, id_column, subject = found
        query = select(id_column).select_from(source).where(subject == self.subject_id)
        query = query.where(id_column >= r.key_first, id_column <= r.key_last).limit(1)
        return self.conn.execute(query).first() is not None

    def keep(self, rows: Sequence[Any], subjects: dict[tuple[str, str], str]) -> list[Any]:
        kept = []
        for r in rows:
            if r.entity == "sites":
                ok = self._site_ok(self.conn, r)
            elif r.field == ROWS and self.subject_id is not None:
                ok = self._bulk_holds_subject(r) and (self.sites is None or self._subject_ok(self.subject_id))
            else:
                subject = subjects.get((r.entity, r.entity_key))
                ok = subject is not None and self._subject_ok(subject)
            if ok:
                kept.append(r)
        return kept


#: A scoped view (one patient, or an investigator's sites) reads the trail newest first in chunks of this many
#: records, and at most :data:`SCAN_CHUNKS` chunks per page: a page is bounded even in a long trail.
SCAN_CHUNK = 1000
SCAN_CHUNKS = 20


def _bulk_summary(key_first: str | None, key_last: str | None) -> Message:
    return Message(
        N_("rows inserted at once (ids {first} to {last}); open a record's history for its values"),
        first=str(key_first), last=str(key_last),
    )  # fmt: skip


#: The trail's columns as a page reads them: a bulk record's payload (megabytes for a cohort) is never loaded.
_COLUMNS = [c if c.name != "new_value" else case((_a.field == ROWS, None), else_=c).label("new_value")
            for c in audit_log.columns]  # fmt: skip


def _subjects_of(conn: Connection, rows: Sequence[Any]) -> dict[tuple[str, str], str]:
    """(entity, entity_key) -> subject id for one page's trial-data records (one query per table on the page)."""
    wanted: dict[str, set[str]] = {}
    for r in rows:
        if r.entity in ENTITIES:  # a bulk record: its first row's (entity_key is its first id)
            wanted.setdefault(r.entity, set()).add(r.entity_key)
    out: dict[tuple[str, str], str] = {}
    for name, keys in wanted.items():
        found = _subject_column(name)
        if found is None:
            continue
        source, id_column, subject = found
        for rid, sid in conn.execute(select(id_column, subject).select_from(source).where(id_column.in_(keys))):
            out[(name, str(rid))] = str(sid)
    return out


def trail(
    conn: Connection, *, user: str | None = None, entity: str | None = None, event: str | None = None,
    subject_id: str | None = None, since: dt.datetime | None = None, until: dt.datetime | None = None,
    limit: int = 100, before_seq: int | None = None, sites: set[str] | frozenset[str] | None = None,
) -> TrailPage:  # fmt: skip
    """One page of the audit trail, newest first (see the module docstring for ``sites``).

    ``event`` selects security events (``entity == "security"``, ``field == event``: ``login``,
    ``login_failed``, ``signed``, ``refused`` …); ``subject_id`` the records of one patient; ``since`` is
    inclusive, ``until`` exclusive (naive times are UTC).
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", f"is between 1 and {MAX_LIMIT}")
    subject_id = subject_id or None
    conditions: list[ColumnElement[bool]] = []
    if user:
        conditions.append(_a.username == user)
    if entity:
        conditions.append(_a.entity == entity)
    if event:
        conditions.extend([_a.entity == SECURITY, _a.field == event])
    if since is not None:
        conditions.append(_a.at >= _utc(since))
    if until is not None:
        conditions.append(_a.at < _utc(until))
    if before_seq is not None:
        conditions.append(_a.seq < before_seq)
    if subject_id is None and sites is None:
        query = select(*_COLUMNS).where(and_(true(), *conditions))
        found = conn.execute(query.order_by(_a.seq.desc()).limit(limit + 1)).all()
        page, more = found[:limit], len(found) > limit
        subjects = _subjects_of(conn, page)
        next_seq = int(page[-1].seq) if more and page else None
    else:
        page, subjects, next_seq = _scan(conn, conditions, limit, _Scope(conn, subject_id, sites), before_seq)
    rows = [
        TrailRow(
            int(r.seq), _utc(r.at), r.username, r.entity, r.entity_key, r.field, r.old_value,
            _bulk_summary(r.key_first, r.key_last) if r.field == ROWS else r.new_value,
            r.reason, r.version, None if r.field == ROWS else subjects.get((r.entity, r.entity_key)),
        )
        for r in page
    ]  # fmt: skip
    return TrailPage(rows, next_seq)


def _scan(
    conn: Connection, conditions: list[ColumnElement[bool]], limit: int, scope: _Scope, before_seq: int | None
) -> tuple[list[Any], dict[tuple[str, str], str], int | None]:
    """A scoped page: chunks of the trail newest first, kept by ``scope``, until the page is full or the bound hit.

    Returns the page, the subjects of its records and the ``before_seq`` of the next page (None at the trail's
    start). A page may hold fewer than ``limit`` rows while more follow (the scan bound was reached).
    """
    base = [*conditions, _a.entity.in_(_scoped_entities())]
    page: list[Any] = []
    subjects: dict[tuple[str, str], str] = {}
    cursor = before_seq
    for _ in range(SCAN_CHUNKS):
        where = [*base, _a.seq < cursor] if cursor is not None else base
        chunk = conn.execute(select(*_COLUMNS).where(and_(*where)).order_by(_a.seq.desc()).limit(SCAN_CHUNK)).all()
        if not chunk:
            return page, subjects, None
        found = _subjects_of(conn, chunk)
        for r in scope.keep(chunk, found):
            page.append(r)
            if (r.entity, r.entity_key) in found:
                subjects[(r.entity, r.entity_key)] = found[(r.entity, r.entity_key)]
            if len(page) == limit:
                return page, subjects, int(r.seq)
        cursor = int(chunk[-1].seq)
        if len(chunk) < SCAN_CHUNK:
            return page, subjects, None
    return page, subjects, cursor


__all__ = ["ROW", "ROWS", "SECURITY", "HistoryRow", "TrailPage", "TrailRow", "record_history", "shown", "trail"]
