"""The unit of work: one transaction in which trial data, its versions and its audit records are written together.

Every change to trial data goes through here (cosmicpython's unit of work). The unit of work owns one typed
repository per kind of record (``uow.patients``, ``uow.lesions``, …, :mod:`abscopal.store.records`); nothing is
saved until :meth:`UnitOfWork.commit`, and leaving the ``with`` block without committing rolls everything back,
so a failed import writes nothing and a crash loses nothing that was committed.

Writes are optimistic: an update or a removal carries the version it was based on, and a stale one raises
:class:`~abscopal.errors.ConflictError` naming who changed which fields since. A locked record (or a record of a
locked patient) refuses every change with :class:`~abscopal.errors.RecordLocked`. A change clears the record's
SDV mark and voids its e-signatures and its patient's casebook signature, each audited (web.md §3, §5).
"""

from __future__ import annotations

import contextlib
import functools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from abscopal import domain as d
from abscopal.errors import (
    SOME_DETAILS,
    AbscopalError,
    ConcurrentChange,
    ConflictError,
    RecordLocked,
    ValidationError,
)
from abscopal.store.audit import ROW, ROWS, VERSION, AuditWriter, Change
from abscopal.store.audit_key import load_key
from abscopal.store.codec import canonical, codec, insert_rows
from abscopal.store.database import database_error
from abscopal.store.ids import new_ids
from abscopal.store.mapping import dict_rows, from_row
from abscopal.store.records import RecordRepository, Stored
from abscopal.store.tables import DATA_MANAGEMENT, ENTITIES, ENTITY_BY_CLASS, REPOSITORY_NAMES, audit_log

_BATCH = 5_000


@functools.cache
def _marks_statement(entity: str, with_patient: bool, *, ids_only: bool = False) -> Any:
    """The live locks, SDV marks or signatures of a record (``:entity``, ``:record_id``) and, ``with_patient``, of
    its patient's casebook (``:subject_id``): built once, as every write of every use case asks it (building a
    SQLAlchemy statement costs more than running it)."""
    table = ENTITIES[entity].table
    own = and_(table.c.entity == bindparam("entity"), table.c.record_id == bindparam("record_id"))
    if with_patient:
        own = or_(own, and_(table.c.entity == "patients", table.c.subject_id == bindparam("subject_id")))
    query = select(table.c.id, table.c.version) if ids_only else select(table)
    query = query.where(table.c.removed_reason.is_(None)).where(own)
    return query if ids_only else query.limit(1)


@functools.cache
def _casebook_signatures() -> Any:
    """The live casebook signature(s) of a patient (``:subject_id``): a record added to it voids them."""
    sig = ENTITIES["record_signatures"].table
    return select(sig.c.id, sig.c.version).where(
        sig.c.entity == "patients", sig.c.subject_id == bindparam("subject_id"), sig.c.removed_reason.is_(None)
    )


class UnitOfWork:
    """``with UnitOfWork(engine, user="alice", reason="baseline CT") as uow: uow.lesions.add(lesion); uow.commit()``."""

    sites: RecordRepository[d.Site]
    users: RecordRepository[d.User]
    patients: RecordRepository[d.Patient]
    screenings: RecordRepository[d.Screening]
    immunotherapy_histories: RecordRepository[d.ImmunotherapyHistory]
    immunotherapy_cycles: RecordRepository[d.ImmunotherapyCycle]
    adjudications: RecordRepository[d.Adjudication]
    lesions: RecordRepository[d.Lesion]
    radiotherapy_courses: RecordRepository[d.RadiotherapyCourse]
    fractions: RecordRepository[d.Fraction]
    deviations: RecordRepository[d.ProtocolDeviation]
    assessments: RecordRepository[d.TumourAssessment]
    adverse_events: RecordRepository[d.AdverseEvent]
    answers: RecordRepository[d.QuestionnaireAnswer]
    queries: RecordRepository[d.DataQuery]
    locks: RecordRepository[d.RecordLock]
    sdv_marks: RecordRepository[d.SdvMark]
    signatures: RecordRepository[d.RecordSignature]

    def __init__(self, engine: Engine, user: str, reason: str) -> None:
        if not user or not user.strip():
            raise ValidationError("user", "every change to trial data needs the user who made it")
        if not reason or not reason.strip():
            raise ValidationError("reason", "every change to trial data needs a reason")
        self.engine = engine
        self.user = user
        self.reason = reason
        self._conn: Connection | None = None
        self._audit: AuditWriter | None = None
        self._key: bytes | None = None
        self.committed = False
        self._held = 0  # > 0 inside one_transaction(): use cases' commits wait for the outermost commit
        for attribute, entity in REPOSITORY_NAMES.items():
            setattr(self, attribute, RecordRepository(self, entity))

    # --- transaction

    def __enter__(self) -> UnitOfWork:
        try:
            self._key = load_key(self.engine.url, create=False)
            self._conn = self.engine.connect()
            self._conn.begin()
        except AbscopalError:
            self._close()
            raise
        except SQLAlchemyError as exc:
            self._close()
            raise database_error(exc) from None
        self._audit = AuditWriter(self._conn, self.user, self.reason, self._key)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._conn is not None:
                self._conn.rollback()  # nothing left uncommitted survives the block
        finally:
            self._close()

    @contextlib.contextmanager
    def one_transaction(self) -> Iterator[None]:
        """Run many use cases as one all-or-nothing transaction (an import): their ``commit()`` calls wait.

        ``with uow.one_transaction(): ...use cases...`` then ``uow.commit()`` once everything succeeded; an error
        inside leaves nothing to commit (leaving the unit of work rolls back).
        """
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1

    def commit(self) -> None:
        """Chain the audit records and commit; on failure nothing is saved and the error is a sentence.

        Inside :meth:`one_transaction` it does nothing: the import commits once, at its end.
        """
        if self._held:
            return
        try:
            assert self._audit is not None
            self._audit.flush()
            self.connection.commit()
        except AbscopalError:
            self.connection.rollback()
            raise
        except SQLAlchemyError as exc:
            self.connection.rollback()
            raise database_error(exc) from None
        self.committed = True
        self.connection.begin()

    def rollback(self) -> None:
        self.connection.rollback()
        assert self._key is not None
        self._audit = AuditWriter(self.connection, self.user, self.reason, self._key)
        self.connection.begin()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def connection(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("the unit of work is not open (use it in a with block)")
        return self._conn

    @property
    def audit(self) -> AuditWriter:
        assert self._audit is not None
        return self._audit

    def execute(self, statement: Any) -> Any:
        try:
            return self.connection.execute(statement)
        except SQLAlchemyError as exc:
            raise database_error(exc) from None

    # --- bulk inserts (imports, the synthetic cohort)

    def add_all(self, objects: Iterable[Any], reason: str | None = None) -> int:
        """Insert domain objects (any mix of types, children included) without per-row checks; return rows written.

        A single row gets an audit record of its own; many rows of one table get one record per batch
        (field ``*rows``) holding every row's id and values, so bulk imports stay fast and still replayable.
        """
        by_class: dict[type[Any], list[Any]] = defaultdict(list)
        for obj in objects:
            by_class[type(obj)].append(obj)
        by_table: dict[str, list[tuple[str, tuple[Any, ...]]]] = defaultdict(list)
        for cls, objs in by_class.items():
            entity = ENTITY_BY_CLASS.get(cls)
            if entity is None:
                raise ValidationError(cls.__name__, "is not a kind of trial data the store knows")
            e = ENTITIES[entity]
            values_of = codec(entity).values
            ids = new_ids(len(objs))
            by_table[entity].extend((i, values_of(obj)) for i, obj in zip(ids, objs, strict=True))
            for field_name, child_entity in e.children.items():
                child_values = codec(child_entity).values
                kids = [(i, child) for i, obj in zip(ids, objs, strict=True) for child in getattr(obj, field_name)]
                child_ids = new_ids(len(kids))
                by_table[child_entity].extend(
                    (ci, (pid, *child_values(child))) for ci, (pid, child) in zip(child_ids, kids, strict=True)
                )
        total = 0
        for entity in ENTITIES:  # parents before children, in schema order (foreign keys are on)
            rows = by_table.get(entity)
            if rows:
                self.insert_rows(entity, rows, reason)
                total += len(rows)
        return total

    def insert_rows(self, entity: str, rows: Sequence[tuple[str, tuple[Any, ...]]], reason: str | None) -> None:
        """Insert (id, state values) rows of one table at version 1, with their audit records."""
        c = codec(entity)
        e = ENTITIES[entity]
        state_cols = c.state_columns
        columns = ("id", "version", "removed_reason", *state_cols)
        for i in range(0, len(rows), _BATCH):
            batch = rows[i : i + _BATCH]
            try:
                insert_rows(self.connection, e.table, columns, [(k, 1, None, *v) for k, v in batch])
            except SQLAlchemyError as exc:
                raise database_error(exc) from None
            if len(batch) == 1:
                key, values = batch[0]
                state = canonical(dict(zip(state_cols, values, strict=True)))
                self.audit.add([Change(entity, key, ROW, None, state, version=1)], reason)
            else:  # {"columns": [...], "rows": {id: [values]}}: one record, every row replayable
                ids = [k for k, _ in batch]
                payload = canonical({"columns": state_cols, "rows": dict(batch)})
                first, last = min(ids), max(ids)
                self.audit.add(
                    [Change(entity, first, ROWS, None, payload, version=1, key_first=first, key_last=last)], reason
                )

    # --- single-record writes, used by the repositories

    def current_row(self, entity: str, record_id: str, *, for_update: bool = False) -> Mapping[str, Any] | None:
        e = ENTITIES[entity]
        query = select(e.table).where(e.table.c.id == record_id)
        if for_update and self.connection.dialect.name == "postgresql":
            query = query.with_for_update()
        row = self.execute(query).mappings().first()
        return None if row is None else dict(row)

    def _run(self, statement: Any, values: Mapping[str, Any]) -> Any:
        """A cached statement (:func:`_marks_statement`) with its values bound."""
        try:
            return self.connection.execute(statement, values)
        except SQLAlchemyError as exc:
            raise database_error(exc) from None

    def check_unlocked(self, entity: str, record_id: str, subject_id: str | None) -> None:
        """Refuse a change to a locked record or to any record of a locked patient, saying who locked it."""
        if entity in DATA_MANAGEMENT or entity == "data_queries":
            return
        values = {"entity": entity, "record_id": record_id, "subject_id": subject_id}
        lock = self._run(_marks_statement("record_locks", subject_id is not None), values).first()
        if lock is not None:
            raise RecordLocked.by(lock.entity, lock.subject_id, lock.locked_by, lock.locked_at, lock.reason)

    def conflict(self, entity: str, record_id: str, based_on: int, current: int) -> ConflictError:
        """The typed conflict for a stale write, naming who changed what since ``based_on``."""
        rows = self.execute(
            select(audit_log.c.username, audit_log.c.at, audit_log.c.field, audit_log.c.new_value)
            .where(audit_log.c.entity == entity)
            .where(audit_log.c.entity_key == record_id)
            .where(audit_log.c.version > based_on)
            .order_by(audit_log.c.seq)
        ).all()
        changes = [
            ConcurrentChange(r.username, f"{r.at:%Y-%m-%d %H:%M:%S} UTC", r.field, r.new_value)
            for r in rows
            if r.field != VERSION
        ] or [ConcurrentChange(r.username, f"{r.at:%Y-%m-%d %H:%M:%S} UTC", SOME_DETAILS) for r in rows]
        return ConflictError(entity, record_id, based_on, current, changes)

    def after_change(self, entity: str, record_id: str, subject_id: str | None, version: int) -> None:
        """Clear the record's SDV mark and void its signatures and its patient's casebook signature (audited)."""
        if entity in DATA_MANAGEMENT or entity == "data_queries":
            return
        # version 1 is an insert: a record added to a signed casebook voids its signature as a change does
        why = (
            f"a record was added to the casebook ({entity})"
            if version == 1
            else f"the {entity} record changed (now version {version})"
        )
        values = {"entity": entity, "record_id": record_id, "subject_id": subject_id}
        if version == 1:  # a new record has no SDV mark nor signature of its own: only its casebook's
            if subject_id is not None:
                for row in self._run(_casebook_signatures(), values).all():
                    self.mark_removed("record_signatures", row.id, int(row.version), f"signature voided: {why}")
            return
        for row in self._run(_marks_statement("sdv_marks", False, ids_only=True), values).all():
            self.mark_removed("sdv_marks", row.id, int(row.version), f"SDV cleared: {why}")
        signatures = _marks_statement("record_signatures", subject_id is not None, ids_only=True)
        for row in self._run(signatures, values).all():
            self.mark_removed("record_signatures", row.id, int(row.version), f"signature voided: {why}")

    def mark_removed(self, entity: str, record_id: str, version: int, reason: str) -> None:
        """Set ``removed_reason`` (a logical removal) and the new version, with its audit record."""
        table = ENTITIES[entity].table
        result = self.execute(
            update(table)
            .where(table.c.id == record_id)
            .where(table.c.version == version)
            .values(removed_reason=reason, version=version + 1)
        )
        if result.rowcount != 1:
            raise self.conflict(entity, record_id, version, version + 1)
        self.audit.add([Change(entity, record_id, "removed_reason", canonical(None), canonical(reason), version + 1)])

    def update_fields(
        self, entity: str, record_id: str, version: int, changes: Mapping[str, tuple[Any, Any]], reason: str | None
    ) -> int:
        """Write changed columns (name -> (old, new)) at ``version + 1`` if the row is still at ``version``."""
        table = ENTITIES[entity].table
        new_version = version + 1
        result = self.execute(
            update(table)
            .where(table.c.id == record_id)
            .where(table.c.version == version)
            .values(**{n: new for n, (_, new) in changes.items()}, version=new_version)
        )
        if result.rowcount != 1:
            now = self.current_row(entity, record_id)
            raise self.conflict(entity, record_id, version, int(now["version"]) if now else version)
        self.audit.add(
            [
                Change(entity, record_id, n, canonical(old), canonical(new), new_version)
                for n, (old, new) in changes.items()
            ]
            or [Change(entity, record_id, VERSION, canonical(version), canonical(new_version), new_version)],
            reason,
        )
        return new_version

    def load_many(self, entity: str, rows: Sequence[Mapping[str, Any]]) -> list[Stored[Any]]:
        """Rows of one table as domain objects, their live children read in one query per child table (not one
        per row: a patient's assessments and their measurements in two queries)."""
        e = ENTITIES[entity]
        if not e.children or len(rows) < 2:
            return [self.load(entity, r) for r in rows]
        kids: dict[str, dict[str, list[Any]]] = {}
        ids = [r["id"] for r in rows]
        for field_name, child_entity in e.children.items():
            ce = ENTITIES[child_entity]
            assert ce.parent_column is not None
            grouped: dict[str, list[Any]] = {}
            for k in dict_rows(
                self.execute(
                    select(ce.table)
                    .where(ce.table.c[ce.parent_column].in_(ids))
                    .where(ce.table.c.removed_reason.is_(None))
                    .order_by(ce.table.c.id)
                )
            ):
                grouped.setdefault(str(k[ce.parent_column]), []).append(from_row(ce.cls, k))
            kids[field_name] = grouped
        return [
            Stored(
                str(r["id"]), int(r["version"]),
                from_row(e.cls, r, **{f: tuple(g.get(str(r["id"]), ())) for f, g in kids.items()}),
                r["removed_reason"],
            )
            for r in rows
        ]  # fmt: skip

    def load(self, entity: str, row: Mapping[str, Any]) -> Stored[Any]:
        """A stored row (and its live children) as a domain object with its id and version."""
        e = ENTITIES[entity]
        extra: dict[str, Any] = {}
        for field_name, child_entity in e.children.items():
            ce = ENTITIES[child_entity]
            assert ce.parent_column is not None
            kids = dict_rows(
                self.execute(
                    select(ce.table)
                    .where(ce.table.c[ce.parent_column] == row["id"])
                    .where(ce.table.c.removed_reason.is_(None))
                    .order_by(ce.table.c.id)
                )
            )
            extra[field_name] = tuple(from_row(ce.cls, k) for k in kids)
        return Stored(str(row["id"]), int(row["version"]), from_row(e.cls, row, **extra), row["removed_reason"])
