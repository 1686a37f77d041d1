"""Every change to trial data is audited in the same transaction, and tampering is detected and named."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import Engine, func, select, text

from abscopal import domain as d
from abscopal.errors import StoreError, ValidationError
from abscopal.store.audit import verify
from abscopal.store.repository import Repository
from abscopal.store.tables import audit_log
from abscopal.store.unit_of_work import UnitOfWork

PATIENT = d.Patient("S001", "JN", d.Sex.FEMALE, dt.date(1961, 5, 2), "1.0")
SCREENING = d.Screening(
    "S001", dt.date(2023, 3, 1), ecog=1, labs={"neutrophils": d.LabValue(2.1, "10^9/L")}, brain_metastases=False
)
ASSESSMENT = d.TumourAssessment(
    "S001",
    dt.date(2023, 4, 12),
    (
        d.LesionMeasurement("L1", d.LesionClass.TARGET, "lung", False, 31.0, rt_role=d.RtRole.CONVENTIONAL),
        d.LesionMeasurement("L2", d.LesionClass.NON_TARGET, "bone", False, None, d.LesionStatus.PRESENT),
    ),
)


def _seed(engine: Engine) -> None:
    with UnitOfWork(engine, user="coordinator1", reason="screening visit") as uow:
        uow.add_all([d.Site("JN", "Qianfoshan Hospital"), PATIENT, SCREENING, ASSESSMENT])


def _audit_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())


def test_inserted_records_read_back_equal(engine: Engine) -> None:
    _seed(engine)
    with engine.connect() as conn:
        repo = Repository(conn)
        assert repo.patient("S001") == PATIENT
        assert repo.all(d.Screening) == [SCREENING]
        assert repo.for_subject(d.TumourAssessment, "S001") == [ASSESSMENT]


def test_each_inserted_row_gets_one_audit_record_with_who_and_why(engine: Engine) -> None:
    _seed(engine)
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log).order_by(audit_log.c.seq)).all()
    # site, patient, screening, assessment: one record each; the assessment's two measurements: one batch
    assert [(r.entity, r.field) for r in rows] == [
        ("sites", "*"), ("patients", "*"), ("screenings", "*"), ("tumour_assessments", "*"),
        ("lesion_measurements", "*rows"),
    ]  # fmt: skip
    assert {r.username for r in rows} == {"coordinator1"}
    assert {r.reason for r in rows} == {"screening visit"}
    assert [r.seq for r in rows] == list(range(1, 6))


def test_update_audits_each_changed_field_with_old_and_new_value(engine: Engine) -> None:
    _seed(engine)
    changed = dataclasses.replace(SCREENING, ecog=0, brain_metastases=True)
    with UnitOfWork(engine, user="dm1", reason="source data verification") as uow:
        fields = uow.update(changed)
    assert sorted(fields) == ["brain_metastases", "ecog"]
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.field == "ecog")).all()
    assert [(r.old_value, r.new_value, r.username, r.reason) for r in rows] == [
        ("1", "0", "dm1", "source data verification")
    ]


def test_update_without_change_writes_no_audit_record(engine: Engine) -> None:
    _seed(engine)
    before = _audit_count(engine)
    with UnitOfWork(engine, user="dm1", reason="re-save") as uow:
        assert uow.update(SCREENING) == []
    assert _audit_count(engine) == before


def test_a_failed_transaction_writes_neither_data_nor_audit(engine: Engine) -> None:
    _seed(engine)
    before = _audit_count(engine)
    with pytest.raises(RuntimeError), UnitOfWork(engine, user="dm1", reason="import") as uow:
        uow.add(d.Patient("S002", "JN", d.Sex.MALE, dt.date(1970, 1, 1), "1.0"))
        raise RuntimeError("crash in the middle of an import")
    assert _audit_count(engine) == before
    with engine.connect() as conn:
        assert [p.subject_id for p in Repository(conn).all(d.Patient)] == ["S001"]


def test_duplicate_record_is_refused_with_a_sentence_and_nothing_written(engine: Engine) -> None:
    _seed(engine)
    before = _audit_count(engine)
    with pytest.raises(StoreError, match="already exists"), UnitOfWork(engine, user="dm1", reason="import") as uow:
        uow.add(d.Patient("S009", "JN", d.Sex.MALE, dt.date(1970, 1, 1), "1.0"))
        uow.add(PATIENT)
    assert _audit_count(engine) == before


def test_record_for_unknown_patient_is_refused(engine: Engine) -> None:
    _seed(engine)
    lesion = d.Lesion("NOPE", "L1", "lung", "RUL", False, True, 20.0, d.RtRole.OBSERVATION)
    with pytest.raises(StoreError, match="does not exist"), UnitOfWork(engine, user="dm1", reason="x") as uow:
        uow.add(lesion)


def test_a_change_without_reason_is_refused() -> None:
    with pytest.raises(ValidationError, match="reason"):
        UnitOfWork(None, user="dm1", reason=" ")  # type: ignore[arg-type]


def test_untouched_database_verifies_clean(engine: Engine) -> None:
    _seed(engine)
    with UnitOfWork(engine, user="dm1", reason="correction") as uow:
        uow.update(dataclasses.replace(PATIENT, status=d.PatientStatus.ENROLLED))
    with engine.connect() as conn:
        report = verify(conn)
    assert report.ok, report.findings
    assert report.records == 6
    assert report.rows == 6


def test_verify_names_a_data_row_edited_outside_the_trail(engine: Engine) -> None:
    _seed(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE screenings SET ecog = 0 WHERE subject_id = 'S001'"))
    with engine.connect() as conn:
        report = verify(conn)
    assert [(f.kind, f.entity, f.entity_key) for f in report.findings] == [("edited", "screenings", "S001")]
    assert "field 'ecog' is 0 but the audit trail says 1" in report.findings[0].message


def test_verify_names_a_data_row_deleted_outside_the_trail(engine: Engine) -> None:
    _seed(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM lesion_measurements WHERE lesion_id = 'L2'"))
    with engine.connect() as conn:
        report = verify(conn)
    assert [(f.kind, f.entity, f.entity_key) for f in report.findings] == [
        ("deleted", "lesion_measurements", "S001/2023-04-12/L2")
    ]


def test_verify_names_a_row_inserted_outside_the_trail(engine: Engine) -> None:
    _seed(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO sites (code, name, country) VALUES ('BJ', 'Beijing', 'CN')"))
    with engine.connect() as conn:
        report = verify(conn)
    assert [(f.kind, f.entity, f.entity_key) for f in report.findings] == [("unaudited", "sites", "BJ")]


def test_verify_names_an_edited_audit_record(engine: Engine) -> None:
    _seed(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET username = 'someone_else' WHERE seq = 3"))
    with engine.connect() as conn:
        report = verify(conn)
    assert len(report.findings) == 1
    assert report.findings[0].kind == "chain"
    assert "audit record 3" in report.findings[0].message
    assert "edited" in report.findings[0].message


def test_verify_names_a_deleted_audit_record(engine: Engine) -> None:
    _seed(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    with engine.connect() as conn:
        report = verify(conn)
    assert report.findings[0].kind == "chain"
    assert "audit record(s) 2 deleted" in report.findings[0].message


def test_verify_notices_the_last_audit_records_deleted(engine: Engine) -> None:
    _seed(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq >= 5"))
    with engine.connect() as conn:
        report = verify(conn)
    assert report.findings[0].kind == "chain"
    assert "ends at record 4" in report.findings[0].message


def test_audit_chain_continues_across_transactions(engine: Engine) -> None:
    _seed(engine)
    with UnitOfWork(engine, user="rad1", reason="week 6 CT") as uow:
        uow.add(dataclasses.replace(ASSESSMENT, assessment_date=dt.date(2023, 5, 24)))
    with engine.connect() as conn:
        seqs = [r.seq for r in conn.execute(select(audit_log.c.seq).order_by(audit_log.c.seq))]
        assert seqs == list(range(1, 8))
        assert verify(conn).ok


def test_delete_is_audited_with_the_removed_values(engine: Engine) -> None:
    _seed(engine)
    with UnitOfWork(engine, user="dm1", reason="entered on the wrong patient") as uow:
        uow.delete(ASSESSMENT)
    with engine.connect() as conn:
        removed = conn.execute(select(audit_log).where(audit_log.c.new_value.is_(None))).all()
        assert {r.entity for r in removed} == {"tumour_assessments", "lesion_measurements"}
        assert all(r.old_value for r in removed)
        assert verify(conn).ok


def test_history_of_a_row_from_a_bulk_insert_shows_its_own_values_then_its_changes(engine: Engine) -> None:
    from abscopal.store.audit import history

    _seed(engine)
    with UnitOfWork(engine, user="rad1", reason="re-read") as uow:
        m = ASSESSMENT.measurements[0]
        uow.update(dataclasses.replace(ASSESSMENT, investigator_response="PR"))
        assert m.diameter_mm == 31.0
    with engine.connect() as conn:
        measurement = history(conn, "lesion_measurements", "S001/2023-04-12/L1")
        assessment = history(conn, "tumour_assessments", "S001/2023-04-12")
    assert len(measurement) == 1
    assert '"diameter_mm":31.0' in (measurement[0].new_value or "")
    assert '"lesion_id":"L2"' not in (measurement[0].new_value or "")
    assert [(h.field, h.new_value, h.username) for h in assessment[1:]] == [("investigator_response", '"PR"', "rad1")]
