"""``record_questionnaire`` on the real database: its items are written as one batch, with exactly the audit
records one add (and one update) per item wrote, in item order, and in a bounded number of statements."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from abscopal import domain as d
from abscopal.errors import RecordLocked
from abscopal.services import questionnaires
from abscopal.services.common import Actor, StaffRole
from abscopal.store.audit import verify
from abscopal.store.audit_key import load_key
from abscopal.store.unit_of_work import UnitOfWork

sys.path.insert(0, str(Path(__file__).parents[1]))
from audit_trails import audit_trail, last_seq

AT = dt.datetime(2024, 6, 3, 9, tzinfo=dt.UTC)
DAY = dt.date(2024, 4, 12)
C30 = d.Instrument.QLQ_C30
COORDINATOR = Actor("crc.zhao", "Zhao", StaffRole.COORDINATOR, frozenset({"JN"}))
WHY = "paper form transcribed"


def _seed(engine: Engine) -> None:
    """Two patients, each with item 3 of the week 6 QLQ-C30 already stored."""
    with UnitOfWork(engine, "setup", "test set-up") as uow:
        uow.sites.add(d.Site("JN", "Qianfoshan Hospital"))
        for s in ("S-001", "S-002"):
            uow.patients.add(d.Patient(s, "JN", d.Sex.FEMALE, dt.date(1969, 5, 2), "1.0"))
            uow.answers.add(d.QuestionnaireAnswer(s, "week_6", C30, 3, 1, DAY))
        uow.commit()


def _one_per_item(uow: UnitOfWork, subject: str, answers: dict[int, int | None], versions: dict[int, int]) -> None:
    """What record_questionnaire wrote before the batch: one find and one add (or update) per item, in order."""
    for number, answer in sorted(answers.items()):
        record = d.QuestionnaireAnswer(subject, "week_6", C30, number, answer, DAY)
        found = uow.answers.find(subject_id=subject, visit="week_6", instrument=C30, item=number)
        if found is None:
            uow.answers.add(record)
        elif found.value != record:
            uow.answers.update(found.id, record, version=versions[number])
    uow.commit()


@pytest.mark.postgres
def test_a_questionnaire_writes_the_audit_records_of_one_add_or_update_per_item_in_item_order(engine: Engine) -> None:
    _seed(engine)
    answers: dict[int, int | None] = {5: 2, 1: 2, 3: 4, 2: None, 4: 3}  # item 3 changes: added, updated, added
    start = last_seq(engine)
    with UnitOfWork(engine, COORDINATOR.username, WHY) as uow:
        _one_per_item(uow, "S-002", answers, {3: 1})
    middle = last_seq(engine)
    with UnitOfWork(engine, COORDINATOR.username, WHY) as uow:
        result = questionnaires.record_questionnaire(
            uow, COORDINATOR, "S-001", "week_6", C30, answers, completed_on=DAY, versions={3: 1},
            on_behalf_reason=WHY, at=AT,
        )  # fmt: skip
    before, batch = audit_trail(engine, start, middle, rename=("S-002", "S-001")), audit_trail(engine, middle)
    assert [(r[3], r[7]) for r in before] == [("*", 1), ("*", 1), ("answer", 2), ("*", 1), ("*", 1)]
    assert batch == before
    assert sorted((s.value.item, s.value.answer, s.version) for s in result.answers) == [
        (1, 2, 1), (2, None, 1), (3, 4, 2), (4, 3, 1), (5, 2, 1)
    ]  # fmt: skip
    with UnitOfWork(engine, "reader", "read") as uow:
        stored = uow.answers.for_subject("S-001")
    assert list(result.answers) == stored  # the visit's stored items as stored, oldest first
    with engine.connect() as conn:
        assert verify(conn, load_key(engine.url, create=False)).ok


@pytest.mark.postgres
def test_a_thirty_item_questionnaire_takes_a_bounded_number_of_statements(engine: Engine) -> None:
    _seed(engine)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    with UnitOfWork(engine, COORDINATOR.username, WHY) as uow:
        event.listen(engine, "before_cursor_execute", count)
        try:
            questionnaires.record_questionnaire(
                uow, COORDINATOR, "S-001", "baseline", C30, {i: 1 for i in range(1, 31)}, completed_on=DAY,
                on_behalf_reason=WHY, at=AT,
            )  # fmt: skip
        finally:
            event.remove(engine, "before_cursor_execute", count)
    # patient, site, the visit's answers; the batch's key, patient and lock checks, the insert, the casebook's
    # signatures, the read-back; at the commit the audit head, the audit records, the head (one add per item
    # took about 180)
    assert len(statements) <= 16, statements


@pytest.mark.postgres
def test_a_questionnaire_for_a_locked_patient_is_refused_as_locked_even_with_a_bad_later_item(engine: Engine) -> None:
    _seed(engine)
    with UnitOfWork(engine, "dm.qian", "interim lock") as uow:
        patient = uow.patients.find(subject_id="S-001")
        assert patient is not None
        uow.locks.add(d.RecordLock("patients", patient.id, "S-001", "dm.qian", AT, "interim analysis"))
        uow.commit()
    before = last_seq(engine)
    with UnitOfWork(engine, COORDINATOR.username, WHY) as uow, pytest.raises(RecordLocked, match=r"dm\.qian"):
        # item 1 is written (refused: locked) before item 2's answer 9 is checked, as when each was written in turn
        questionnaires.record_questionnaire(
            uow, COORDINATOR, "S-001", "week_6", C30, {1: 1, 2: 9}, completed_on=DAY, on_behalf_reason=WHY, at=AT
        )
    assert last_seq(engine) == before
