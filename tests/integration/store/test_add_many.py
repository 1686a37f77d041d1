"""``RecordRepository.add_many``: a batch is stored with the checks, rows and audit records of one ``add`` after
the other (who, when, why; the chain verifies), and a refused batch writes nothing and names the record."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from abscopal import domain as d
from abscopal.errors import DuplicateRecord, MissingParent, RecordLocked, ValidationError
from abscopal.store.audit import verify
from abscopal.store.audit_key import load_key
from abscopal.store.tables import audit_log
from abscopal.store.unit_of_work import UnitOfWork

sys.path.insert(0, str(Path(__file__).parents[1]))
from audit_trails import audit_trail, last_seq

AT = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
DAY = dt.date(2024, 4, 12)
C30 = d.Instrument.QLQ_C30


def _answer(subject: str, item: int, visit: str = "week_6", answer: int | None = 2) -> d.QuestionnaireAnswer:
    return d.QuestionnaireAnswer(subject, visit, C30, item, answer, DAY)


def _assessment(subject: str, day: int, lesions: int) -> d.TumourAssessment:
    kids = tuple(
        d.LesionMeasurement(f"L{n}", d.LesionClass.TARGET, "lung", False, 20.0 + n) for n in range(1, lesions + 1)
    )
    return d.TumourAssessment(subject, dt.date(2024, 4, day), kids)


def _seed(engine: Engine, *subjects: str, signed: bool = False) -> None:
    """The site and the patients; with ``signed``, each patient's casebook signed (an add voids it)."""
    with UnitOfWork(engine, user="coordinator1", reason="registration") as uow:
        uow.sites.add(d.Site("JN", "Qianfoshan Hospital"))
        for s in subjects:
            patient = uow.patients.add(d.Patient(s, "JN", d.Sex.FEMALE, dt.date(1961, 5, 2), "1.0"))
            if signed:
                uow.signatures.add(d.RecordSignature("patients", patient.id, s, "pi", "Dr PI", "approved", AT, "h"))
        uow.commit()


def _verify(engine: Engine) -> Any:
    with engine.connect() as conn:
        return verify(conn, load_key(engine.url, create=False))


def _refused(engine: Engine, error: type[Exception], match: str, batch: Sequence[Any], repo: str = "answers") -> None:
    """The batch is refused with ``error`` matching ``match`` and nothing of it is stored, even when the unit of
    work commits after the refusal."""
    before = last_seq(engine)
    with UnitOfWork(engine, user="coordinator1", reason="batch") as uow:
        stored = getattr(uow, repo).all()
        with pytest.raises(error, match=match):
            getattr(uow, repo).add_many(batch)
        uow.commit()  # what the refused batch left behind, if anything, would be committed here
    with UnitOfWork(engine, user="coordinator1", reason="batch") as uow:
        assert getattr(uow, repo).all() == stored
    assert last_seq(engine) == before


def test_a_batch_writes_the_same_audit_records_as_one_add_after_another(engine: Engine) -> None:
    _seed(engine, "S001", "S002", signed=True)
    start = last_seq(engine)
    answers = [_answer("S001", i) for i in (1, 2, 3)] + [_answer("S001", 4, answer=None)]
    with UnitOfWork(engine, user="patient1", reason="answered by the patient (ePRO)") as uow:
        for a in answers:
            uow.answers.add(a)
        uow.assessments.add(_assessment("S001", 1, 2))
        uow.assessments.add(_assessment("S001", 2, 1))
        uow.commit()
    middle = last_seq(engine)
    with UnitOfWork(engine, user="patient1", reason="answered by the patient (ePRO)") as uow:
        uow.answers.add_many([dataclasses.replace(a, subject_id="S002") for a in answers])
        uow.assessments.add_many([_assessment("S002", 1, 2), _assessment("S002", 2, 1)])
        uow.commit()
    one_by_one = audit_trail(engine, start, middle)
    batch = audit_trail(engine, middle, rename=("S002", "S001"))
    # four answers, the casebook signature voided after the first, two assessments and their measurements
    assert [(r[1], r[3]) for r in one_by_one] == [
        ("questionnaire_answers", "*"), ("record_signatures", "removed_reason"), ("questionnaire_answers", "*"),
        ("questionnaire_answers", "*"), ("questionnaire_answers", "*"), ("tumour_assessments", "*"),
        ("lesion_measurements", "*rows"), ("tumour_assessments", "*"), ("lesion_measurements", "*"),
    ]  # fmt: skip
    assert batch == one_by_one


def test_a_batch_is_audited_with_who_when_and_why_of_each_record(engine: Engine) -> None:
    _seed(engine, "S001")
    start = last_seq(engine)
    with UnitOfWork(engine, user="crc2", reason="paper form transcribed") as uow:
        stored = uow.answers.add_many([_answer("S001", i) for i in (1, 2, 3)], reason="transcribed from paper")
        uow.commit()
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.seq > start).order_by(audit_log.c.seq)).all()
    assert [r.entity_key for r in rows] == [s.id for s in stored]
    assert {(r.username, r.reason, r.field, r.version) for r in rows} == {("crc2", "transcribed from paper", "*", 1)}
    assert all(r.at is not None for r in rows)
    assert '"item":2' in rows[1].new_value


def test_the_audit_chain_verifies_after_a_batch(engine: Engine) -> None:
    _seed(engine, "S001", signed=True)
    with UnitOfWork(engine, user="patient1", reason="ePRO") as uow:
        uow.answers.add_many([_answer("S001", i) for i in range(1, 31)])
        uow.assessments.add_many([_assessment("S001", 1, 3), _assessment("S001", 2, 1)])
        uow.commit()
    report = _verify(engine)
    assert report.ok, report.findings
    assert report.records == last_seq(engine)


def test_a_batch_returns_its_records_as_stored_in_the_order_given(engine: Engine) -> None:
    _seed(engine, "S001")
    batch = [_answer("S001", i) for i in (5, 1, 3)] + [_assessment("S001", 1, 2)]
    with UnitOfWork(engine, user="crc", reason="x") as uow:
        answers = uow.answers.add_many(batch[:3])
        [assessment] = uow.assessments.add_many(batch[3:])
        assert [s.value for s in answers] == batch[:3]
        assert [s.version for s in answers] == [1, 1, 1]
        assert [uow.answers.get(s.id) for s in answers] == answers
        assert assessment == uow.assessments.get(assessment.id)
        assert assessment.value == batch[3]


def test_an_empty_batch_writes_nothing(engine: Engine) -> None:
    _seed(engine, "S001")
    before = last_seq(engine)
    with UnitOfWork(engine, user="crc", reason="x") as uow:
        assert uow.answers.add_many([]) == []
        uow.commit()
    assert last_seq(engine) == before


def test_a_batch_with_an_item_already_stored_writes_nothing_and_names_the_item(engine: Engine) -> None:
    _seed(engine, "S001")
    with UnitOfWork(engine, user="crc", reason="x") as uow:
        stored = uow.answers.add(_answer("S001", 2))
        uow.commit()
    key = "subject_id S001, visit week_6, instrument QLQ-C30, item 2"
    _refused(
        engine, DuplicateRecord, f"a questionnaire_answers record with {key} already exists \\(id {stored.id}\\)",
        [_answer("S001", 1), _answer("S001", 2, answer=3), _answer("S001", 3)],
    )  # fmt: skip
    with UnitOfWork(engine, user="crc", reason="x") as uow:
        assert [s.value.item for s in uow.answers.all()] == [2]


def test_a_batch_with_the_same_item_twice_writes_nothing_and_names_the_item(engine: Engine) -> None:
    _seed(engine, "S001")
    _refused(
        engine, DuplicateRecord, "two questionnaire_answers records of the batch have subject_id S001, visit week_6, "
        "instrument QLQ-C30, item 2", [_answer("S001", 2), _answer("S001", 1), _answer("S001", 2, answer=4)],
    )  # fmt: skip


def test_a_batch_for_an_unknown_patient_writes_nothing_and_names_the_patient(engine: Engine) -> None:
    _seed(engine, "S001")
    _refused(engine, MissingParent, "no patient 'NOPE'", [_answer("S001", 1), _answer("NOPE", 1)])


def test_a_batch_for_a_locked_patient_writes_nothing_and_says_who_locked_it(engine: Engine) -> None:
    _seed(engine, "S001")
    with UnitOfWork(engine, user="dm1", reason="database lock") as uow:
        patient = uow.patients.find(subject_id="S001")
        assert patient is not None
        uow.locks.add(d.RecordLock("patients", patient.id, "S001", "dm1", AT, "final lock"))
        uow.commit()
    _refused(engine, RecordLocked, "patient S001 is locked \\(by dm1 at 2024-01-02 00:00 UTC: final lock\\)",
             [_answer("S001", 1), _answer("S001", 2)])  # fmt: skip


def test_a_batch_with_a_record_of_another_kind_writes_nothing_and_names_the_kind(engine: Engine) -> None:
    _seed(engine, "S001")
    lesion = d.Lesion("S001", "L1", "lung", "RUL", False, True, 31.0, d.RtRole.NONE)
    _refused(engine, ValidationError, "expects a QuestionnaireAnswer, not a Lesion", [_answer("S001", 1), lesion])


def test_a_batch_with_two_measurements_of_one_lesion_writes_nothing_and_names_the_lesion(engine: Engine) -> None:
    _seed(engine, "S001")
    twice = _assessment("S001", 2, 1)
    twice = dataclasses.replace(twice, measurements=twice.measurements * 2)
    _refused(engine, DuplicateRecord, "two lesion_measurements rows have lesion_id L1",
             [_assessment("S001", 1, 2), twice], repo="assessments")  # fmt: skip


def test_the_refusal_is_that_of_the_first_record_add_would_refuse(engine: Engine) -> None:
    _seed(engine, "S001")
    with UnitOfWork(engine, user="crc", reason="x") as uow:
        uow.answers.add(_answer("S001", 2))
        uow.commit()
    # one add after another would stop at the unknown patient first, then at the stored item
    _refused(engine, MissingParent, "no patient 'NOPE'", [_answer("NOPE", 1), _answer("S001", 2)])
    _refused(engine, DuplicateRecord, "item 2 already exists", [_answer("S001", 2), _answer("NOPE", 1)])


def test_a_batch_whose_key_columns_each_occur_in_stored_records_but_no_whole_key_is_written(engine: Engine) -> None:
    _seed(engine, "S001")
    with UnitOfWork(engine, user="crc", reason="x") as uow:
        uow.answers.add_many([_answer("S001", 1, visit="week_6"), _answer("S001", 2, visit="baseline")])
        uow.commit()
    with UnitOfWork(engine, user="crc", reason="x") as uow:
        added = uow.answers.add_many([_answer("S001", 2, visit="week_6"), _answer("S001", 1, visit="baseline")])
        uow.commit()
    assert [(s.value.visit, s.value.item, s.version) for s in added] == [("week_6", 2, 1), ("baseline", 1, 1)]
    assert _verify(engine).ok


def test_a_removed_record_can_be_entered_again_in_a_batch(engine: Engine) -> None:
    _seed(engine, "S001")
    with UnitOfWork(engine, user="crc", reason="x") as uow:
        old = uow.answers.add(_answer("S001", 1))
        uow.answers.remove(old.id, version=1, reason="entered for the wrong visit")
        uow.commit()
    with UnitOfWork(engine, user="crc", reason="x") as uow:
        [again] = uow.answers.add_many([_answer("S001", 1, answer=4)])
        uow.commit()
    assert (again.version, again.value.answer) == (1, 4)


def test_a_batch_refuses_a_stored_key_with_an_empty_key_column_as_add_does(engine: Engine) -> None:
    _seed(engine, "S001")
    deviation = d.ProtocolDeviation("S001", d.DeviationCheck.CONVENTIONAL_COUNT, d.DeviationClass.MINOR, "3", "why")
    with UnitOfWork(engine, user="crc", reason="x") as uow:
        uow.deviations.add(deviation)  # lesion_id and date empty: part of the natural key
        uow.commit()
    _refused(engine, DuplicateRecord, "lesion_id None, date None already exists", [deviation], repo="deviations")
    other = dataclasses.replace(deviation, check=d.DeviationCheck.LOW_DOSE_COUNT)
    with UnitOfWork(engine, user="crc", reason="x") as uow:
        assert [s.value for s in uow.deviations.add_many([other])] == [other]
