"""What a use case needs from a unit of work: typed repositories, the user it writes as, and ``commit``.

Both :class:`abscopal.store.unit_of_work.UnitOfWork` (SQLite / PostgreSQL) and
:class:`abscopal.store.fake_unit_of_work.FakeUnitOfWork` (in memory, for fast service tests) satisfy these
protocols structurally (cosmicpython's ``AbstractUnitOfWork``), so the services never import the database.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from abscopal import domain as d
from abscopal.errors import ValidationError
from abscopal.store.records import Stored
from abscopal.store.tables import ENTITY_REPOSITORY

T = TypeVar("T")


class Records(Protocol[T]):
    """One kind of record: the API of :class:`abscopal.store.records.RecordRepository`."""

    entity: str

    def get(self, record_id: str, *, include_removed: bool = False) -> Stored[T]: ...

    def find(self, **natural_key: Any) -> Stored[T] | None: ...

    def for_subject(self, subject_id: str) -> list[Stored[T]]: ...

    def all(self, limit: int | None = None) -> list[Stored[T]]: ...

    def add(self, obj: T, reason: str | None = None) -> Stored[T]: ...

    def update(self, record_id: str, obj: T, *, version: int, reason: str | None = None) -> Stored[T]: ...

    def remove(self, record_id: str, *, version: int, reason: str) -> None: ...


class UnitOfWorkLike(Protocol):
    """One transaction: its repositories, the user and reason it audits, and an explicit commit."""

    user: str
    reason: str

    sites: Records[d.Site]
    users: Records[d.User]
    patients: Records[d.Patient]
    screenings: Records[d.Screening]
    immunotherapy_histories: Records[d.ImmunotherapyHistory]
    immunotherapy_cycles: Records[d.ImmunotherapyCycle]
    adjudications: Records[d.Adjudication]
    lesions: Records[d.Lesion]
    radiotherapy_courses: Records[d.RadiotherapyCourse]
    fractions: Records[d.Fraction]
    deviations: Records[d.ProtocolDeviation]
    assessments: Records[d.TumourAssessment]
    adverse_events: Records[d.AdverseEvent]
    answers: Records[d.QuestionnaireAnswer]
    queries: Records[d.DataQuery]
    locks: Records[d.RecordLock]
    sdv_marks: Records[d.SdvMark]
    signatures: Records[d.RecordSignature]

    def commit(self) -> None: ...

    def one_transaction(self) -> AbstractContextManager[None]: ...


#: The store's entity (table) name of each repository attribute: locks, SDV marks, signatures and queries name a
#: record by its entity and id (``("tumour_assessments", "0190…")``). A test keeps this equal to the store's map.
REPOSITORY_OF_ENTITY: dict[str, str] = ENTITY_REPOSITORY


def records_of(uow: UnitOfWorkLike, entity: str) -> Records[Any]:
    """The repository holding ``entity`` records; an unknown entity is a ValidationError naming it."""
    attribute = REPOSITORY_OF_ENTITY.get(entity)
    if attribute is None:
        known = ", ".join(sorted(REPOSITORY_OF_ENTITY))
        raise ValidationError("entity", f"{entity!r} is not a kind of trial record (known: {known})")
    repository: Records[Any] = getattr(uow, attribute)
    return repository
