"""An in-memory unit of work with the repository API and the semantics services rely on (cosmicpython's fake).

Same as :class:`abscopal.store.unit_of_work.UnitOfWork` where a use case can tell: surrogate ids and versions
(1 at add, +1 per change, unchanged by a write that changes nothing), natural keys unique among live records
(:class:`DuplicateRecord`), an unknown patient or site refused (:class:`MissingParent`), a stale version refused
(:class:`ConflictError` naming who changed which fields), locked records and locked patients refused
(:class:`RecordLocked`), logical removal with a reason, SDV cleared and signatures voided on change, and
nothing kept unless :meth:`FakeUnitOfWork.commit` is called before the ``with`` block ends. Not modelled:
the audit trail, child-row versions, database errors. ``tests/integration/services/test_fake_contract.py``
runs one scenario against both and compares the outcomes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, TypeVar

from abscopal import domain as d
from abscopal.errors import (
    ConcurrentChange,
    ConflictError,
    DuplicateRecord,
    MissingParent,
    NotFound,
    RecordLocked,
    ValidationError,
)
from abscopal.store.records import Stored, batch_duplicate
from abscopal.store.tables import DATA_MANAGEMENT, ENTITIES, ENTITY_REPOSITORY, REPOSITORY_NAMES

T = TypeVar("T")

_ids = itertools.count(1)


def _new_id() -> str:
    return f"fake{next(_ids):028d}"  # increasing, like the store's time-ordered ids: "oldest first" holds


@dataclass
class _Row:
    value: Any
    version: int
    removed_reason: str | None = None
    history: list[tuple[int, str, str, tuple[str, ...]]] = field(default_factory=list)  # version, user, at, fields


@dataclass
class _State:
    rows: dict[str, dict[str, _Row]] = field(default_factory=dict)  # entity -> id -> row

    def copy(self) -> _State:
        return _State(
            {
                e: {i: dataclasses.replace(r, history=list(r.history)) for i, r in rows.items()}
                for e, rows in self.rows.items()
            }
        )


def _fields(value: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


class FakeRecords(Generic[T]):
    """One kind of record held in memory; the API of :class:`abscopal.store.records.RecordRepository`."""

    def __init__(self, uow: FakeUnitOfWork, entity: str) -> None:
        self.uow = uow
        self.entity = entity
        self.e = ENTITIES[entity]

    @property
    def _rows(self) -> dict[str, _Row]:
        return self.uow.state.rows.setdefault(self.entity, {})

    def _stored(self, record_id: str, row: _Row) -> Stored[T]:
        return Stored(record_id, row.version, row.value, row.removed_reason)

    def _live(self) -> list[tuple[str, _Row]]:
        return sorted((i, r) for i, r in self._rows.items() if r.removed_reason is None)

    # --- reads

    def get(self, record_id: str, *, include_removed: bool = False) -> Stored[T]:
        row = self._rows.get(record_id)
        if row is None or (row.removed_reason is not None and not include_removed):
            raise NotFound.record(self.entity, record_id)
        return self._stored(record_id, row)

    def find(self, **natural_key: Any) -> Stored[T] | None:
        if set(natural_key) != set(self.e.natural_key):
            raise ValidationError(self.entity, f"find() needs exactly {', '.join(self.e.natural_key)}")
        for i, r in self._live():
            if all(getattr(r.value, k) == v for k, v in natural_key.items()):
                return self._stored(i, r)
        return None

    def for_subject(self, subject_id: str) -> list[Stored[T]]:
        return [self._stored(i, r) for i, r in self._live() if r.value.subject_id == subject_id]

    def all(self, limit: int | None = None) -> list[Stored[T]]:
        found = [self._stored(i, r) for i, r in self._live()]
        return found if limit is None else found[:limit]

    # --- writes

    def _refuse_wrong_type(self, obj: Any) -> None:
        if type(obj) is not self.e.cls:
            raise ValidationError(self.entity, f"expects a {self.e.cls.__name__}, not a {type(obj).__name__}")

    def _refuse_duplicate(self, obj: Any, own_id: str | None = None) -> None:
        key = {k: getattr(obj, k) for k in self.e.natural_key}
        for i, r in self._live():
            if i != own_id and all(getattr(r.value, k) == v for k, v in key.items()):
                shown = ", ".join(f"{k} {v!s}" for k, v in key.items())
                raise DuplicateRecord(f"Nothing was saved: a {self.entity} record with {shown} already exists (id {i})")
        for field_name, child_entity in self.e.children.items():
            ce = ENTITIES[child_entity]
            own = [k for k in ce.natural_key if k != ce.parent_column]
            seen: set[tuple[Any, ...]] = set()
            for kid in getattr(obj, field_name):
                ident = tuple(getattr(kid, k) for k in own)
                if ident in seen:
                    same = ", ".join(f"{k} {v}" for k, v in zip(own, ident, strict=True))
                    raise DuplicateRecord(f"Nothing was saved: two {child_entity} rows have {same}")
                seen.add(ident)

    def _refuse_missing_parent(self, obj: Any) -> None:
        subject = getattr(obj, "subject_id", None)
        patients = self.uow.state.rows.get("patients", {}).values()
        if (
            subject is not None
            and self.entity != "patients"
            and not any(r.value.subject_id == subject for r in patients)
        ):
            raise MissingParent(f"Nothing was saved: there is no patient {subject!r} for this {self.entity} record")
        site = getattr(obj, "site_code", None)
        sites = self.uow.state.rows.get("sites", {}).values()
        if site is not None and self.entity != "sites" and not any(r.value.code == site for r in sites):
            raise MissingParent(f"Nothing was saved: there is no site {site!r} for this {self.entity} record")

    def add(self, obj: T, reason: str | None = None) -> Stored[T]:
        self._refuse_wrong_type(obj)
        self._refuse_duplicate(obj)
        self._refuse_missing_parent(obj)
        subject = getattr(obj, "subject_id", None)
        if subject is not None:
            self.uow.check_unlocked(self.entity, "", subject)
        record_id = _new_id()
        self._rows[record_id] = _Row(obj, 1, history=[(1, self.uow.user, self.uow.now(), ("*row",))])
        if subject is not None and self.entity != "patients":
            self.uow.after_change(self.entity, record_id, subject, 1)  # a signed casebook gained a record
        return self.get(record_id)

    def add_many(self, objs: Sequence[T], reason: str | None = None) -> list[Stored[T]]:
        """As the store's: add()'s checks for every record first (a key twice in the batch refused too), so a
        refused batch adds nothing and names add()'s first refused record; then one add() after another."""
        objs = list(objs)
        seen: set[tuple[Any, ...]] = set()
        for obj in objs:
            self._refuse_wrong_type(obj)
            self._refuse_duplicate(obj)
            key = {k: getattr(obj, k) for k in self.e.natural_key}
            if tuple(key.values()) in seen:
                raise batch_duplicate(self.entity, key)
            seen.add(tuple(key.values()))
            self._refuse_missing_parent(obj)
            subject = getattr(obj, "subject_id", None)
            if subject is not None:
                self.uow.check_unlocked(self.entity, "", subject)
        return [self.add(obj, reason) for obj in objs]

    def _current(self, record_id: str, version: int, doing: str) -> _Row:
        row = self._rows.get(record_id)
        if row is None:
            raise NotFound.record(self.entity, record_id, doing)
        if row.removed_reason is not None:
            raise NotFound.removed(self.entity, record_id, row.removed_reason)
        if row.version != version:
            raise self._conflict(record_id, row, version)
        return row

    def _conflict(self, record_id: str, row: _Row, based_on: int) -> ConflictError:
        changes = [
            ConcurrentChange(user, at, name) for v, user, at, names in row.history if v > based_on for name in names
        ]
        return ConflictError(self.entity, record_id, based_on, row.version, changes)

    def update(self, record_id: str, obj: T, *, version: int, reason: str | None = None) -> Stored[T]:
        self._refuse_wrong_type(obj)
        row = self._current(record_id, version, "change")
        subject = getattr(row.value, "subject_id", None)
        self.uow.check_unlocked(self.entity, record_id, subject)
        old, new = _fields(row.value), _fields(obj)
        if self.entity == "patients" and old["subject_id"] != new["subject_id"]:
            raise ValidationError("subject_id", "is the patient's identity in every record and cannot be changed")
        changed = tuple(n for n in new if new[n] != old[n])
        if not changed:
            return self._stored(record_id, row)
        self._refuse_duplicate(obj, own_id=record_id)
        self._refuse_missing_parent(obj)
        row.value = obj
        row.version += 1
        row.history.append((row.version, self.uow.user, self.uow.now(), changed))
        self.uow.after_change(self.entity, record_id, subject, row.version)
        return self.get(record_id)

    def remove(self, record_id: str, *, version: int, reason: str) -> None:
        if not reason or not reason.strip():
            raise ValidationError("reason", "removing trial data needs a reason")
        row = self._rows.get(record_id)
        if row is None or row.removed_reason is not None:
            raise NotFound.record(self.entity, record_id, "remove")
        row = self._current(record_id, version, "remove")
        subject = getattr(row.value, "subject_id", None)
        self.uow.check_unlocked(self.entity, record_id, subject)
        self.uow.mark_removed(self.entity, record_id, reason)
        self.uow.after_change(self.entity, record_id, subject, row.version)

    def replace(self, record_id: str, version: int, **changes: Any) -> Stored[T]:
        current = self.get(record_id)
        return self.update(record_id, dataclasses.replace(current.value, **changes), version=version)  # type: ignore[type-var]


class FakeUnitOfWork:
    """``with FakeUnitOfWork(user="alice") as uow: services.enrol(uow, ...)``; ``uow.committed`` says if it
    committed. One fake keeps its committed records across ``with`` blocks, like a database."""

    sites: FakeRecords[d.Site]
    users: FakeRecords[d.User]
    patients: FakeRecords[d.Patient]
    screenings: FakeRecords[d.Screening]
    immunotherapy_histories: FakeRecords[d.ImmunotherapyHistory]
    immunotherapy_cycles: FakeRecords[d.ImmunotherapyCycle]
    adjudications: FakeRecords[d.Adjudication]
    lesions: FakeRecords[d.Lesion]
    radiotherapy_courses: FakeRecords[d.RadiotherapyCourse]
    fractions: FakeRecords[d.Fraction]
    deviations: FakeRecords[d.ProtocolDeviation]
    assessments: FakeRecords[d.TumourAssessment]
    adverse_events: FakeRecords[d.AdverseEvent]
    answers: FakeRecords[d.QuestionnaireAnswer]
    queries: FakeRecords[d.DataQuery]
    locks: FakeRecords[d.RecordLock]
    sdv_marks: FakeRecords[d.SdvMark]
    signatures: FakeRecords[d.RecordSignature]

    def __init__(self, user: str = "tester", reason: str = "test") -> None:
        if not user or not user.strip():
            raise ValidationError("user", "every change to trial data needs the user who made it")
        if not reason or not reason.strip():
            raise ValidationError("reason", "every change to trial data needs a reason")
        self.user = user
        self.reason = reason
        self.committed = False
        self.commits = 0
        self._held = 0
        self._saved = _State()
        self.state = _State()
        for attribute, entity in REPOSITORY_NAMES.items():
            setattr(self, attribute, FakeRecords(self, entity))

    def as_user(self, user: str, reason: str = "test") -> FakeUnitOfWork:
        """The same (committed) records, written as another user: a second person's session."""
        other = FakeUnitOfWork(user, reason)
        other._saved = self._saved
        other.state = self._saved.copy()
        return other

    def __enter__(self) -> FakeUnitOfWork:
        self.state = self._saved.copy()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.state = self._saved.copy()  # what was not committed is gone

    @contextlib.contextmanager
    def one_transaction(self) -> Iterator[None]:
        """As the real unit of work: use cases' commits wait for the outermost commit (imports)."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1

    def conflict(self, entity: str, record_id: str, based_on: int, current: int) -> ConflictError:
        """The typed conflict naming who changed what since ``based_on`` (as the real unit of work's)."""
        repository: FakeRecords[Any] = getattr(self, ENTITY_REPOSITORY[entity])
        row = repository._rows.get(record_id)
        if row is None:
            return ConflictError(entity, record_id, based_on, current)
        return repository._conflict(record_id, row, based_on)

    def commit(self) -> None:
        if self._held:
            return
        self._saved.rows = self.state.copy().rows
        self.committed = True
        self.commits += 1

    def rollback(self) -> None:
        self.state = self._saved.copy()

    @staticmethod
    def now() -> str:
        return f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"

    # --- the store's record-life rules (unit_of_work.py)

    def check_unlocked(self, entity: str, record_id: str, subject_id: str | None) -> None:
        if entity in DATA_MANAGEMENT or entity == "data_queries":
            return
        for row in self.state.rows.get("record_locks", {}).values():
            lock: d.RecordLock = row.value
            if row.removed_reason is not None:
                continue
            own = lock.entity == entity and lock.record_id == record_id
            patient = subject_id is not None and lock.entity == "patients" and lock.subject_id == subject_id
            if own or patient:
                raise RecordLocked.by(lock.entity, lock.subject_id, lock.locked_by, lock.locked_at, lock.reason)

    def after_change(self, entity: str, record_id: str, subject_id: str | None, version: int) -> None:
        if entity in DATA_MANAGEMENT or entity == "data_queries":
            return
        # version 1 is an insert: a record added to a signed casebook voids its signature as a change does
        why = (
            f"a record was added to the casebook ({entity})"
            if version == 1
            else f"the {entity} record changed (now version {version})"
        )
        for mark_id, row in list(self.state.rows.get("sdv_marks", {}).items()):
            if row.removed_reason is None and row.value.entity == entity and row.value.record_id == record_id:
                self.mark_removed("sdv_marks", mark_id, f"SDV cleared: {why}")
        for sig_id, row in list(self.state.rows.get("record_signatures", {}).items()):
            s: d.RecordSignature = row.value
            own = s.entity == entity and s.record_id == record_id
            casebook = subject_id is not None and s.entity == "patients" and s.subject_id == subject_id
            if row.removed_reason is None and (own or casebook):
                self.mark_removed("record_signatures", sig_id, f"signature voided: {why}")

    def mark_removed(self, entity: str, record_id: str, reason: str) -> None:
        row = self.state.rows[entity][record_id]
        row.removed_reason = reason
        row.version += 1
        row.history.append((row.version, self.user, self.now(), ("removed_reason",)))
