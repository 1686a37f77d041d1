"""One typed repository per kind of record, owned by a unit of work: ``uow.lesions.update(id, lesion, version=3)``.

A stored record is a :class:`Stored` (surrogate id, version, the domain object). Adds check the natural key
(a duplicate is refused with the key named) and the patient (an unknown one is refused); updates diff every
field and every child (added, changed, removed children each get their own audit records) and are refused when
stale; removals are logical (``removed_reason``), never a ``DELETE``. :meth:`RecordRepository.add_many` adds
a batch (a questionnaire's items) with the checks, rows and audit records of one ``add`` after the other, in a
few statements for the whole batch.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import bindparam, or_, select
from sqlalchemy.exc import SQLAlchemyError

from abscopal.errors import DuplicateRecord, MissingParent, NotFound, RecordLocked, ValidationError
from abscopal.store.audit import ROW, Change
from abscopal.store.codec import canonical, codec, insert_rows
from abscopal.store.database import database_error
from abscopal.store.ids import new_id
from abscopal.store.mapping import dict_rows
from abscopal.store.tables import ENTITIES

if TYPE_CHECKING:
    from abscopal.store.unit_of_work import UnitOfWork

T = TypeVar("T")

_CHUNK = 500  # keys or ids per IN list of a batch's queries (well under SQLite's and PostgreSQL's bind limits)
_REFUSALS = (ValidationError, DuplicateRecord, MissingParent, RecordLocked)


def batch_duplicate(entity: str, key: dict[str, Any]) -> DuplicateRecord:
    """The refusal of a batch holding one natural key twice (the real and the fake repositories say the same)."""
    return DuplicateRecord(f"Nothing was saved: two {entity} records of the batch have {_describe_key(entity, key)}")


@dataclass(frozen=True)
class Stored(Generic[T]):
    """A record as stored: its id (never changes), its version (for optimistic concurrency) and its value."""

    id: str
    version: int
    value: T
    removed_reason: str | None = None

    @property
    def etag(self) -> str:
        """The HTTP entity tag of this version (web.md §7)."""
        return f'W/"{self.id}.{self.version}"'


@functools.cache
def _statement(entity: str, kind: str, columns: tuple[str, ...] = (), nulls: tuple[str, ...] = ()) -> Any:
    """A repository's statement, built once per shape and run with its values bound (``p0``, ``p1``, … in
    ``columns`` order; ``nulls`` are the key columns asked to be NULL): building a SQLAlchemy statement and its
    cache key cost more than running it, and a use case runs a few per record (an import, thousands)."""
    table = ENTITIES[entity].table
    live = table.c.removed_reason.is_(None)
    key = [table.c[c] == bindparam(f"p{i}") for i, c in enumerate(columns)] + [table.c[c].is_(None) for c in nulls]
    if kind == "find":  # the live record with this natural key
        return select(table).where(live, *key).limit(1)
    if kind == "duplicate":  # the id of a live record with this natural key
        return select(table.c.id).where(live, *key).limit(1)
    if kind == "duplicate_other":  # ... other than the record being changed
        return select(table.c.id).where(live, *key, table.c.id != bindparam("own")).limit(1)
    if kind == "exists":  # any record (live or not) with these values: a referenced patient
        return select(table.c.id).where(*key)
    if kind == "subject":  # a patient's live records, oldest first
        return select(table).where(table.c.subject_id == bindparam("p0"), live).order_by(table.c.id)
    if kind == "id":  # one record by its id, live or not
        return select(table).where(table.c.id == bindparam("p0"))
    if kind == "ids":  # records by id
        return select(table).where(table.c.id.in_(bindparam("ids", expanding=True)))
    if kind == "subjects":  # the patients among these subject ids
        return select(table.c.subject_id).where(table.c.subject_id.in_(bindparam("ids", expanding=True)))
    raise ValueError(kind)  # pragma: no cover - a programming error


def _keyed(entity: str, kind: str, key: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The cached statement matching ``key`` (column -> value; None asks IS NULL) and its bound values."""
    columns = tuple(k for k, v in key.items() if v is not None)
    nulls = tuple(k for k, v in key.items() if v is None)
    return _statement(entity, kind, columns, nulls), {f"p{i}": key[c] for i, c in enumerate(columns)}


def _describe_key(entity: str, values: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v!s}" for k, v in values.items())


class RecordRepository(Generic[T]):
    """Reads and audited writes of one table inside a unit of work."""

    def __init__(self, uow: UnitOfWork, entity: str) -> None:
        self.uow = uow
        self.entity = entity
        self.e = ENTITIES[entity]
        self.table = self.e.table

    def _run(self, statement: Any, values: Mapping[str, Any]) -> Any:
        try:
            return self.uow.connection.execute(statement, values)
        except SQLAlchemyError as exc:
            raise database_error(exc) from None

    # --- reads

    def get(self, record_id: str, *, include_removed: bool = False) -> Stored[T]:
        """The record with this id, or :class:`NotFound` (also for a removed one, unless asked)."""
        found = self._run(_statement(self.entity, "id"), {"p0": record_id}).mappings().first()
        row = None if found is None else dict(found)
        if row is None or (row["removed_reason"] is not None and not include_removed):
            raise NotFound.record(self.entity, record_id)
        return self.uow.load(self.entity, row)

    def find(self, **natural_key: Any) -> Stored[T] | None:
        """The live record with this natural key (``uow.lesions.find(subject_id="S1", lesion_id="L1")``)."""
        if set(natural_key) != set(self.e.natural_key):
            raise ValidationError(self.entity, f"find() needs exactly {', '.join(self.e.natural_key)}")
        row = self._run(*_keyed(self.entity, "find", natural_key)).mappings().first()
        return None if row is None else self.uow.load(self.entity, dict(row))

    def for_subject(self, subject_id: str) -> list[Stored[T]]:
        """The live records of one patient, oldest first."""
        rows = dict_rows(self._run(_statement(self.entity, "subject"), {"p0": subject_id}))
        return self.uow.load_many(self.entity, rows)

    def all(self, limit: int | None = None) -> list[Stored[T]]:
        """Every live record of the table, oldest first."""
        query = select(self.table).where(self.table.c.removed_reason.is_(None)).order_by(self.table.c.id)
        if limit is not None:
            query = query.limit(limit)
        return [self.uow.load(self.entity, dict(r)) for r in self.uow.execute(query).mappings()]

    # --- writes

    def _natural(self, values: dict[str, Any]) -> dict[str, Any]:
        return {k: values[k] for k in self.e.natural_key}

    def _refuse_duplicate(
        self, values: dict[str, Any], parent_id: str | None = None, own_id: str | None = None
    ) -> None:
        key = self._natural({**values, **({self.e.parent_column: parent_id} if self.e.parent_column else {})})
        statement, values = _keyed(self.entity, "duplicate" if own_id is None else "duplicate_other", key)
        found = self._run(statement, values if own_id is None else {**values, "own": own_id}).scalar()
        if found is not None:
            shown = {k: v for k, v in key.items() if k != self.e.parent_column}
            raise DuplicateRecord(
                f"Nothing was saved: a {self.entity} record with {_describe_key(self.entity, shown)} already exists "
                f"(id {found})"
            )

    def _refuse_unknown_patient(self, values: dict[str, Any]) -> None:
        subject = values.get("subject_id")
        if subject is None or self.entity == "patients":
            return
        if self._run(_statement("patients", "exists", ("subject_id",)), {"p0": subject}).first() is None:
            raise MissingParent(f"Nothing was saved: there is no patient {subject!r} for this {self.entity} record")

    def add(self, obj: T, reason: str | None = None) -> Stored[T]:
        """Insert one record (and its children) at version 1; refuse a duplicate natural key or unknown patient."""
        c = codec(self.entity)
        if type(obj) is not self.e.cls:
            raise ValidationError(self.entity, f"expects a {self.e.cls.__name__}, not a {type(obj).__name__}")
        values = dict(zip(c.field_columns, c.values(obj), strict=True))
        self._refuse_duplicate(values)
        self._refuse_unknown_patient(values)
        subject = values.get("subject_id")
        if subject is not None:  # a locked patient takes no new trial data (queries, SDV, signatures still may)
            self.uow.check_unlocked(self.entity, "", subject)
        record_id = new_id()
        self.uow.insert_rows(self.entity, [(record_id, c.values(obj))], reason)
        for field_name, child_entity in self.e.children.items():
            kids = list(getattr(obj, field_name))
            self._refuse_duplicate_children(child_entity, kids)
            if kids:
                cc = codec(child_entity)
                self.uow.insert_rows(child_entity, [(new_id(), (record_id, *cc.values(k))) for k in kids], reason)
        if subject is not None and self.entity != "patients":
            self.uow.after_change(self.entity, record_id, subject, 1)  # a signed casebook gained a record
        return self.get(record_id)

    def add_many(self, objs: Sequence[T], reason: str | None = None) -> list[Stored[T]]:
        """Insert records as :meth:`add` would, one after the other, in a few statements for the whole batch.

        The same checks (type, natural key among live records and within the batch, patient, lock, children's
        keys) in one query each for the batch (the lock: one per patient), one multi-row insert per table, the
        same audit records in the same order as one ``add`` after another (each record its own ``*`` record
        with who, when and why, then its children's, and the casebook signature voided after the patient's
        first record), and the stored records, in order. When any record is refused, nothing of the batch is
        written and the error is the one ``add`` would raise for the first refused record, in its words (a key
        given twice in the batch: :func:`batch_duplicate`).
        """
        objs = list(objs)
        if not objs:
            return []
        try:
            values, suspect = self._checked_batch(objs)
        except _REFUSALS:
            self._refuse_first(objs)  # the first record add() refuses, with add()'s sentence
            raise  # pragma: no cover - _refuse_first raises whenever a batch check does
        if suspect:  # a live record has each key column's value somewhere in the batch: check key by key
            self._refuse_first(objs)
        c = codec(self.entity)
        record_ids = [new_id() for _ in objs]  # one by one, as add() makes them (children's ids come later)
        self._insert(self.entity, list(zip(record_ids, values, strict=True)))
        seen: set[Any] = set()
        for record_id, obj, v in zip(record_ids, objs, values, strict=True):
            state = canonical(dict(zip(c.state_columns, v, strict=True)))
            self.uow.audit.add([Change(self.entity, record_id, ROW, None, state, version=1)], reason)
            for field_name, child_entity in self.e.children.items():  # rare in batches: as add() writes them
                kids = list(getattr(obj, field_name))
                if kids:
                    cc = codec(child_entity)
                    self.uow.insert_rows(child_entity, [(new_id(), (record_id, *cc.values(k))) for k in kids], reason)
            subject = getattr(obj, "subject_id", None)
            if subject is not None and self.entity != "patients" and subject not in seen:
                seen.add(subject)  # version 1 voids only the casebook's signature: once per patient is all
                self.uow.after_change(self.entity, record_id, subject, 1)
        return self._read_back(record_ids)

    def _checked_batch(self, objs: list[T]) -> tuple[list[tuple[Any, ...]], bool]:
        """Every record's column values once the batch passes add()'s checks (a refusal raises), and whether a
        live record may share a natural key with the batch (then it is checked record by record)."""
        c = codec(self.entity)
        for obj in objs:
            if type(obj) is not self.e.cls:
                raise ValidationError(self.entity, f"expects a {self.e.cls.__name__}, not a {type(obj).__name__}")
        values = [c.values(obj) for obj in objs]
        position = {name: i for i, name in enumerate(c.field_columns)}
        keys = [tuple(v[position[k]] for k in self.e.natural_key) for v in values]
        if len(set(keys)) != len(keys):
            raise DuplicateRecord(f"two {self.entity} records of the batch have the same natural key")
        suspect = self._may_be_stored(keys)
        subjects = list(dict.fromkeys(v[position["subject_id"]] for v in values)) if "subject_id" in position else []
        subjects = [s for s in subjects if s is not None]
        if subjects and self.entity != "patients":
            known: set[Any] = set()
            for i in range(0, len(subjects), _CHUNK):
                known.update(self._run(_statement("patients", "subjects"), {"ids": subjects[i : i + _CHUNK]}).scalars())
            if any(s not in known for s in subjects):
                raise MissingParent(f"a {self.entity} record of the batch has no patient")
        for subject in subjects:
            self.uow.check_unlocked(self.entity, "", subject)
        for obj in objs:
            for field_name, child_entity in self.e.children.items():
                self._refuse_duplicate_children(child_entity, list(getattr(obj, field_name)))
        return values, suspect

    def _may_be_stored(self, keys: list[tuple[Any, ...]]) -> bool:
        """False when no live record can have any of these natural keys: no live row has, in every key column,
        one of the batch's values there (one query; exact when at most one column varies, as in a
        questionnaire's items). True means "check record by record" (:meth:`_refuse_first`), never "refuse"."""
        query = select(self.table.c.id).where(self.table.c.removed_reason.is_(None))
        for n, name in enumerate(self.e.natural_key):
            column = self.table.c[name]
            given = list(dict.fromkeys(key[n] for key in keys if key[n] is not None))
            if len(given) > _CHUNK:
                return True  # a very varied batch: checked record by record rather than with huge IN lists
            either = [column == given[0]] if len(given) == 1 else [column.in_(given)] if given else []
            if any(key[n] is None for key in keys):  # a NULL key column matches IS NULL, as add() asks it
                either.append(column.is_(None))
            query = query.where(or_(*either) if len(either) > 1 else either[0])
        return self.uow.execute(query.limit(1)).first() is not None

    def _refuse_first(self, objs: list[T]) -> None:
        """Check the batch record by record as add() does, raising add()'s refusal of the first refused one."""
        c = codec(self.entity)
        seen: set[tuple[Any, ...]] = set()
        for obj in objs:
            if type(obj) is not self.e.cls:
                raise ValidationError(self.entity, f"expects a {self.e.cls.__name__}, not a {type(obj).__name__}")
            values = dict(zip(c.field_columns, c.values(obj), strict=True))
            self._refuse_duplicate(values)
            key = self._natural(values)
            if tuple(key.values()) in seen:  # add() would find the earlier record of the batch already stored
                raise batch_duplicate(self.entity, key)
            seen.add(tuple(key.values()))
            self._refuse_unknown_patient(values)
            subject = values.get("subject_id")
            if subject is not None:
                self.uow.check_unlocked(self.entity, "", subject)
            for field_name, child_entity in self.e.children.items():
                self._refuse_duplicate_children(child_entity, list(getattr(obj, field_name)))

    def _insert(self, entity: str, rows: list[tuple[str, tuple[Any, ...]]]) -> None:
        """One multi-row insert of (id, state values) at version 1; the caller writes the audit records."""
        columns = ("id", "version", "removed_reason", *codec(entity).state_columns)
        try:
            insert_rows(self.uow.connection, ENTITIES[entity].table, columns, [(k, 1, None, *v) for k, v in rows])
        except SQLAlchemyError as exc:
            raise database_error(exc) from None

    def _read_back(self, record_ids: list[str]) -> list[Stored[T]]:
        """The records just written, as get() reads them, in the order of ``record_ids``."""
        rows: dict[str, dict[str, Any]] = {}
        for i in range(0, len(record_ids), _CHUNK):
            for r in self._run(_statement(self.entity, "ids"), {"ids": record_ids[i : i + _CHUNK]}).mappings():
                rows[str(r["id"])] = dict(r)
        return self.uow.load_many(self.entity, [rows[i] for i in record_ids])

    def _refuse_duplicate_children(self, child_entity: str, kids: Sequence[Any]) -> None:
        ce = ENTITIES[child_entity]
        own = [k for k in ce.natural_key if k != ce.parent_column]
        seen: set[tuple[Any, ...]] = set()
        for kid in kids:
            ident = tuple(getattr(kid, k) for k in own)
            if ident in seen:
                same = ", ".join(f"{k} {v}" for k, v in zip(own, ident, strict=True))
                raise DuplicateRecord(f"Nothing was saved: two {child_entity} rows have {same}")
            seen.add(ident)

    def update(self, record_id: str, obj: T, *, version: int, reason: str | None = None) -> Stored[T]:
        """Store ``obj`` as the new state of the record, if it is still at ``version``; audit every change.

        Child collections are diffed by their natural key inside the parent (a measurement's lesion id, a
        signature's user): added children are inserted, changed ones updated field by field, missing ones
        removed logically. A write that changes nothing returns the record as it is, at the same version.
        """
        if type(obj) is not self.e.cls:
            raise ValidationError(self.entity, f"expects a {self.e.cls.__name__}, not a {type(obj).__name__}")
        row = self.uow.current_row(self.entity, record_id, for_update=True)
        if row is None:
            raise NotFound.record(self.entity, record_id, "change")
        if row["removed_reason"] is not None:
            raise NotFound.removed(self.entity, record_id, row["removed_reason"])
        current_version = int(row["version"])
        if current_version != version:
            raise self.uow.conflict(self.entity, record_id, version, current_version)
        subject = row.get("subject_id")
        self.uow.check_unlocked(self.entity, record_id, subject)
        c = codec(self.entity)
        current = c.state_from_db(row)
        new = dict(zip(c.field_columns, c.values(obj), strict=True))
        if self.entity == "patients" and new["subject_id"] != current["subject_id"]:
            raise ValidationError("subject_id", "is the patient's identity in every record and cannot be changed")
        changes = {n: (current.get(n), v) for n, v in new.items() if canonical(v) != canonical(current.get(n))}
        if changes:
            self._refuse_duplicate(new, own_id=record_id)
        child_changed = False
        for field_name, child_entity in self.e.children.items():
            child_changed |= self._diff_children(record_id, child_entity, list(getattr(obj, field_name)), reason)
        if not changes and not child_changed:
            return self.uow.load(self.entity, row)
        new_version = self.uow.update_fields(self.entity, record_id, version, changes, reason)
        self.uow.after_change(self.entity, record_id, subject, new_version)
        return self.get(record_id)

    def _diff_children(self, parent_id: str, child_entity: str, kids: list[Any], reason: str | None) -> bool:
        ce = ENTITIES[child_entity]
        cc = codec(child_entity)
        assert ce.parent_column is not None
        own = [k for k in ce.natural_key if k != ce.parent_column]
        self._refuse_duplicate_children(child_entity, kids)
        existing = {
            tuple(r[k] for k in own): dict(r)
            for r in self.uow.execute(
                select(ce.table)
                .where(ce.table.c[ce.parent_column] == parent_id)
                .where(ce.table.c.removed_reason.is_(None))
            ).mappings()
        }
        changed = False
        added: list[tuple[str, tuple[Any, ...]]] = []
        for kid in kids:
            values = dict(zip(cc.field_columns, cc.values(kid), strict=True))
            ident = tuple(values[k] for k in own)
            old = existing.pop(ident, None)
            if old is None:
                added.append((new_id(), (parent_id, *cc.values(kid))))
                continue
            state = cc.state_from_db(old)
            diff = {n: (state.get(n), v) for n, v in values.items() if canonical(v) != canonical(state.get(n))}
            if diff:
                self.uow.update_fields(child_entity, str(old["id"]), int(old["version"]), diff, reason)
                changed = True
        if added:
            self.uow.insert_rows(child_entity, added, reason)
            changed = True
        for old in existing.values():
            self.uow.mark_removed(child_entity, str(old["id"]), int(old["version"]), reason or self.uow.reason)
            changed = True
        return changed

    def remove(self, record_id: str, *, version: int, reason: str) -> None:
        """Remove the record logically (kept, with the reason, in the table and the trail); children with it."""
        if not reason or not reason.strip():
            raise ValidationError("reason", "removing trial data needs a reason")
        row = self.uow.current_row(self.entity, record_id, for_update=True)
        if row is None or row["removed_reason"] is not None:
            raise NotFound.record(self.entity, record_id, "remove")
        if int(row["version"]) != version:
            raise self.uow.conflict(self.entity, record_id, version, int(row["version"]))
        subject = row.get("subject_id")
        self.uow.check_unlocked(self.entity, record_id, subject)
        for child_entity in self.e.children.values():
            ce = ENTITIES[child_entity]
            assert ce.parent_column is not None
            for kid in self.uow.execute(
                select(ce.table.c.id, ce.table.c.version)
                .where(ce.table.c[ce.parent_column] == record_id)
                .where(ce.table.c.removed_reason.is_(None))
            ):
                self.uow.mark_removed(child_entity, kid.id, int(kid.version), reason)
        self.uow.mark_removed(self.entity, record_id, version, reason)
        self.uow.after_change(self.entity, record_id, subject, version + 1)

    def replace(self, record_id: str, version: int, **changes: Any) -> Stored[T]:
        """``update`` with some fields changed: ``uow.lesions.replace(id, 3, rt_role=RtRole.LOW_DOSE)``."""
        current = self.get(record_id)
        return self.update(record_id, dataclasses.replace(current.value, **changes), version=version)  # type: ignore[type-var]
