"""Use cases end to end on the real database (SQLite and PostgreSQL): what they commit is stored and audited."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, func, select

from abscopal import domain as d
from abscopal.errors import ConflictError
from abscopal.services import assessments, lesions, locking, queries
from abscopal.services.common import Actor, StaffRole
from abscopal.store.tables import audit_log
from abscopal.store.unit_of_work import UnitOfWork

AT = dt.datetime(2024, 6, 3, 9, tzinfo=dt.UTC)
SITE = frozenset({"JN"})
RADIOLOGIST = Actor("dr.zhou", "Dr Zhou", StaffRole.RADIOLOGIST, SITE)
INVESTIGATOR = Actor("dr.li", "Dr Li", StaffRole.INVESTIGATOR, SITE, pi=True)
COORDINATOR = Actor("crc.zhao", "Zhao", StaffRole.COORDINATOR, SITE)
DATA_MANAGER = Actor("dm.qian", "Qian", StaffRole.DATA_MANAGER, SITE)


def _seed(engine: Engine) -> None:
    with UnitOfWork(engine, "setup", "test set-up") as uow:
        uow.sites.add(d.Site("JN", "Qianfoshan Hospital"))
        uow.patients.add(d.Patient("S-001", "JN", d.Sex.FEMALE, dt.date(1969, 5, 2), "1.0"))
        uow.commit()


def _assessment(day: dt.date, mm: float, response: d.InvestigatorResponse | None = None) -> d.TumourAssessment:
    return d.TumourAssessment(
        "S-001", day, (d.LesionMeasurement("L1", d.LesionClass.TARGET, "lung", False, mm),), response
    )


@pytest.mark.postgres
def test_a_discrepant_response_and_its_query_are_committed_and_answered(engine: Engine) -> None:
    _seed(engine)
    with UnitOfWork(engine, RADIOLOGIST.username, "baseline CT") as uow:
        assessments.record_assessment(uow, RADIOLOGIST, _assessment(dt.date(2024, 3, 1), 40.0), at=AT)
    with UnitOfWork(engine, INVESTIGATOR.username, "week 6 CT") as uow:
        result = assessments.record_assessment(
            uow, INVESTIGATOR, _assessment(dt.date(2024, 4, 12), 10.0, d.InvestigatorResponse.ICPD), at=AT
        )
    assert result.query is not None
    with UnitOfWork(engine, COORDINATOR.username, "query answered") as uow:
        answered = queries.answer_query(
            uow, COORDINATOR, result.query.id, version=1, answer="typo: iPR intended", at=AT
        )
    with UnitOfWork(engine, "reader", "read") as uow:
        stored = uow.queries.get(answered.id)
        assert (stored.value.status, stored.value.answered_by, stored.version) == (
            d.QueryStatus.ANSWERED,
            COORDINATOR.username,
            2,
        )
        assert len(uow.assessments.for_subject("S-001")) == 2
    with engine.connect() as conn:
        users = set(conn.execute(select(audit_log.c.username)).scalars())
    assert {RADIOLOGIST.username, INVESTIGATOR.username, COORDINATOR.username} <= users


@pytest.mark.postgres
def test_a_stale_edit_through_the_service_is_a_conflict_and_changes_nothing(engine: Engine) -> None:
    _seed(engine)
    lesion = d.Lesion("S-001", "L1", "lung", "RUL", False, True, 30.0, d.RtRole.NONE)
    with UnitOfWork(engine, RADIOLOGIST.username, "baseline") as uow:
        first = lesions.record_lesion(uow, RADIOLOGIST, lesion, at=AT)
    with UnitOfWork(engine, RADIOLOGIST.username, "remeasured") as uow:
        lesions.record_lesion(
            uow, RADIOLOGIST, d.Lesion("S-001", "L1", "lung", "RUL", False, True, 32.0, d.RtRole.NONE),
            record_id=first.id, version=1, at=AT,
        )  # fmt: skip
    with engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
    with UnitOfWork(engine, INVESTIGATOR.username, "late edit") as uow, pytest.raises(ConflictError):
        lesions.record_lesion(uow, INVESTIGATOR, lesion, record_id=first.id, version=1, at=AT)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_log)).scalar_one() == before


@pytest.mark.postgres
def test_a_locked_patient_refuses_a_service_edit_until_unlocked_with_a_reason(engine: Engine) -> None:
    from abscopal.errors import RecordLocked

    _seed(engine)
    lesion = d.Lesion("S-001", "L1", "lung", "RUL", False, True, 30.0, d.RtRole.NONE)
    with UnitOfWork(engine, RADIOLOGIST.username, "baseline") as uow:
        first = lesions.record_lesion(uow, RADIOLOGIST, lesion, at=AT)
    with UnitOfWork(engine, DATA_MANAGER.username, "interim lock") as uow:
        lock = locking.lock_patient(uow, DATA_MANAGER, "S-001", reason="interim analysis", at=AT)
    edit = d.Lesion("S-001", "L1", "lung", "RUL", False, True, 31.0, d.RtRole.NONE)
    with UnitOfWork(engine, RADIOLOGIST.username, "edit") as uow, pytest.raises(RecordLocked, match=r"dm\.qian"):
        lesions.record_lesion(uow, RADIOLOGIST, edit, record_id=first.id, version=1, at=AT)
    with UnitOfWork(engine, DATA_MANAGER.username, "unlock") as uow:
        locking.unlock(uow, DATA_MANAGER, lock.id, version=lock.version, reason="analysis done")
    with UnitOfWork(engine, RADIOLOGIST.username, "edit") as uow:
        assert lesions.record_lesion(uow, RADIOLOGIST, edit, record_id=first.id, version=1, at=AT).version == 2
