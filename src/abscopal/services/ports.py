"""What a use case needs from a unit of work: typed repositories, the user it writes as, and ``commit``.

Both :class:`abscopal.store.unit_of_work.UnitOfWork` (SQLite / PostgreSQL) and
:class:`abscopal.store.fake_unit_of_work.FakeUnitOfWork` (in memory, for fast service tests) satisfy these
protocols structurally (cosmicpython's ``AbstractUnitOfWork``), so the services never import the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from abscopal import domain as d
from abscopal.errors import ConflictError, ValidationError
from abscopal.store.records import Stored
from abscopal.store.tables import ENTITIES, ENTITY_REPOSITORY

T = TypeVar("T")


class Records(Protocol[T]):
    """One kind of record: the API of :class:`abscopal.store.records.RecordRepository`."""

    entity: str

    def get(self, record_id: str, *, include_removed: bool = False) -> Stored[T]: ...

    def find(self, **natural_key: Any) -> Stored[T] | None: ...

    def for_subject(self, subject_id: str) -> list[Stored[T]]: ...

    def all(self, limit: int | None = None) -> list[Stored[T]]: ...

    def add(self, obj: T, reason: str | None = None) -> Stored[T]: ...

    def add_many(self, objs: Sequence[T], reason: str | None = None) -> list[Stored[T]]: ...

    def update(self, record_id: str, obj: T, *, version: int, reason: str | None = None) -> Stored[T]: ...

    def remove(self, record_id: str, *, version: int, reason: str) -> None: ...


class UnitOfWorkLike(Protocol):
    """One transaction: its repositories, the user and reason it audits, and an explicit commit."""

    user: str
    reason: str

    @property
    def sites(self) -> Records[d.Site]: ...

    @property
    def users(self) -> Records[d.User]: ...

    @property
    def patients(self) -> Records[d.Patient]: ...

    @property
    def screenings(self) -> Records[d.Screening]: ...

    @property
    def immunotherapy_histories(self) -> Records[d.ImmunotherapyHistory]: ...

    @property
    def immunotherapy_cycles(self) -> Records[d.ImmunotherapyCycle]: ...

    @property
    def adjudications(self) -> Records[d.Adjudication]: ...

    @property
    def lesions(self) -> Records[d.Lesion]: ...

    @property
    def radiotherapy_courses(self) -> Records[d.RadiotherapyCourse]: ...

    @property
    def fractions(self) -> Records[d.Fraction]: ...

    @property
    def deviations(self) -> Records[d.ProtocolDeviation]: ...

    @property
    def assessments(self) -> Records[d.TumourAssessment]: ...

    @property
    def adverse_events(self) -> Records[d.AdverseEvent]: ...

    @property
    def answers(self) -> Records[d.QuestionnaireAnswer]: ...

    @property
    def queries(self) -> Records[d.DataQuery]: ...

    @property
    def locks(self) -> Records[d.RecordLock]: ...

    @property
    def sdv_marks(self) -> Records[d.SdvMark]: ...

    @property
    def signatures(self) -> Records[d.RecordSignature]: ...

    def commit(self) -> None: ...

    def one_transaction(self) -> AbstractContextManager[None]: ...

    def conflict(self, entity: str, record_id: str, based_on: int, current: int) -> ConflictError: ...


#: The store's entity (table) name of each repository attribute: locks, SDV marks, signatures and queries name a
#: record by its entity and id (``("tumour_assessments", "0190…")``). A test keeps this equal to the store's map.
REPOSITORY_OF_ENTITY: dict[str, str] = ENTITY_REPOSITORY


def patient_record(uow: UnitOfWorkLike, entity: str, record_id: str) -> tuple[Stored[Any], str]:
    """A patient's record and its subject id, for use cases about one record (lock, SDV, signature); a kind of
    record that belongs to no patient (sites, users) is a ValidationError naming it."""
    records = records_of(uow, entity)
    if "subject_id" not in ENTITIES[entity].table.c:
        raise ValidationError("entity", f"{entity} records belong to no patient: only a patient's records qualify")
    record = records.get(record_id)
    return record, str(record.value.subject_id)


def records_of(uow: UnitOfWorkLike, entity: str) -> Records[Any]:
    """The repository holding ``entity`` records; an unknown entity is a ValidationError naming it."""
    attribute = REPOSITORY_OF_ENTITY.get(entity)
    if attribute is None:
        known = ", ".join(sorted(REPOSITORY_OF_ENTITY))
        raise ValidationError("entity", f"{entity!r} is not a kind of trial record (known: {known})")
    repository: Records[Any] = getattr(uow, attribute)
    return repository
