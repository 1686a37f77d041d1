"""Every change to trial data is audited in the same transaction, and tampering is detected and named."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import Engine, func, select, text

from abscopal import domain as d
from abscopal.errors import (
    ConflictError,
    DuplicateRecord,
    MissingParent,
    NotFound,
    RecordLocked,
    ValidationError,
)
from abscopal.store.audit import history, verify
from abscopal.store.audit_key import load_key
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
LESION = d.Lesion("S001", "L1", "lung", "RUL", False, True, 31.0, d.RtRole.CONVENTIONAL)


def _seed(engine: Engine) -> dict[str, str]:
    """Site, patient, screening, assessment (with two measurements); returns their ids."""
    with UnitOfWork(engine, user="coordinator1", reason="screening visit") as uow:
        uow.sites.add(d.Site("JN", "Qianfoshan Hospital"))
        ids = {
            "patient": uow.patients.add(PATIENT).id,
            "screening": uow.screenings.add(SCREENING).id,
            "assessment": uow.assessments.add(ASSESSMENT).id,
        }
        uow.commit()
    return ids


def _verify(engine: Engine) -> object:
    with engine.connect() as conn:
        return verify(conn, load_key(engine.url, create=False))


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


def test_a_new_record_starts_at_version_one_with_an_id_that_is_not_its_natural_key(engine: Engine) -> None:
    ids = _seed(engine)
    with UnitOfWork(engine, user="dm1", reason="read") as uow:
        stored = uow.assessments.get(ids["assessment"])
    assert stored.version == 1
    assert stored.value == ASSESSMENT
    assert "S001" not in stored.id


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


def test_nothing_is_saved_without_an_explicit_commit(engine: Engine) -> None:
    with UnitOfWork(engine, user="coordinator1", reason="screening") as uow:
        uow.sites.add(d.Site("JN", "Qianfoshan Hospital"))
    assert _audit_count(engine) == 0


def test_update_audits_each_changed_field_with_old_and_new_value_and_the_new_version(engine: Engine) -> None:
    ids = _seed(engine)
    changed = dataclasses.replace(SCREENING, ecog=0, brain_metastases=True)
    with UnitOfWork(engine, user="dm1", reason="source data verification") as uow:
        stored = uow.screenings.update(ids["screening"], changed, version=1)
        uow.commit()
    assert stored.version == 2
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.field == "ecog")).all()
    assert [(r.old_value, r.new_value, r.username, r.reason, r.version) for r in rows] == [
        ("1", "0", "dm1", "source data verification", 2)
    ]


def test_update_without_change_writes_no_audit_record_and_keeps_the_version(engine: Engine) -> None:
    ids = _seed(engine)
    before = _audit_count(engine)
    with UnitOfWork(engine, user="dm1", reason="re-save") as uow:
        assert uow.screenings.update(ids["screening"], SCREENING, version=1).version == 1
        uow.commit()
    assert _audit_count(engine) == before


def test_correcting_an_assessment_date_is_an_ordinary_update(engine: Engine) -> None:
    ids = _seed(engine)
    corrected = dataclasses.replace(ASSESSMENT, assessment_date=dt.date(2023, 4, 13))
    with UnitOfWork(engine, user="rad1", reason="date typed wrong") as uow:
        uow.assessments.update(ids["assessment"], corrected, version=1)
        uow.commit()
    with engine.connect() as conn:
        assert Repository(conn).for_subject(d.TumourAssessment, "S001") == [corrected]
        dates = [h.new_value for h in history(conn, "tumour_assessments", ids["assessment"]) if h.field != "*"]
    assert dates == ['"2023-04-13"']
    assert _verify(engine).ok  # type: ignore[attr-defined]


def test_a_corrected_lesion_diameter_in_an_assessment_is_stored_and_audited(engine: Engine) -> None:
    ids = _seed(engine)
    m1, m2 = ASSESSMENT.measurements
    corrected = dataclasses.replace(ASSESSMENT, measurements=(dataclasses.replace(m1, diameter_mm=29.0), m2))
    with UnitOfWork(engine, user="rad1", reason="re-measured") as uow:
        stored = uow.assessments.update(ids["assessment"], corrected, version=1)
        uow.commit()
    assert stored.version == 2
    assert stored.value.measurements[0].diameter_mm == 29.0
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.field == "diameter_mm")).all()
    assert [(r.entity, r.old_value, r.new_value) for r in rows] == [("lesion_measurements", "31.0", "29.0")]
    assert _verify(engine).ok  # type: ignore[attr-defined]


def test_children_added_and_removed_in_an_update_are_each_audited(engine: Engine) -> None:
    ids = _seed(engine)
    m1, _ = ASSESSMENT.measurements
    new = d.LesionMeasurement("L3", d.LesionClass.NEW, "liver", False, None, d.LesionStatus.PRESENT)
    with UnitOfWork(engine, user="rad1", reason="re-read") as uow:
        stored = uow.assessments.update(
            ids["assessment"], dataclasses.replace(ASSESSMENT, measurements=(m1, new)), version=1
        )
        uow.commit()
    assert [m.lesion_id for m in stored.value.measurements] == ["L1", "L3"]
    with engine.connect() as conn:
        removed = conn.execute(select(audit_log).where(audit_log.c.field == "removed_reason")).all()
        assert [(r.entity, r.new_value) for r in removed] == [("lesion_measurements", '"re-read"')]
    assert _verify(engine).ok  # type: ignore[attr-defined]


def test_a_stale_write_is_refused_naming_who_changed_which_field(engine: Engine) -> None:
    ids = _seed(engine)
    with UnitOfWork(engine, user="dm1", reason="SDV") as uow:
        uow.screenings.update(ids["screening"], dataclasses.replace(SCREENING, ecog=2), version=1)
        uow.commit()
    with UnitOfWork(engine, user="coordinator1", reason="typo") as uow, pytest.raises(ConflictError) as err:
        uow.screenings.update(ids["screening"], dataclasses.replace(SCREENING, ecog=0), version=1)
    assert err.value.current == 2
    assert [(c.username, c.field) for c in err.value.changes] == [("dm1", "ecog")]
    assert "dm1" in str(err.value) and "ecog" in str(err.value)


def test_removal_is_logical_and_the_removed_record_is_no_longer_read(engine: Engine) -> None:
    ids = _seed(engine)
    with UnitOfWork(engine, user="dm1", reason="x") as uow:
        uow.assessments.remove(ids["assessment"], version=1, reason="entered on the wrong patient")
        uow.commit()
    with engine.connect() as conn:
        assert Repository(conn).all(d.TumourAssessment) == []
        kept = conn.execute(text("SELECT removed_reason FROM tumour_assessments")).scalars().all()
    assert kept == ["entered on the wrong patient"]
    assert _verify(engine).ok  # type: ignore[attr-defined]


def test_a_removed_record_can_be_entered_again_under_the_same_natural_key(engine: Engine) -> None:
    ids = _seed(engine)
    with UnitOfWork(engine, user="dm1", reason="re-entry") as uow:
        uow.assessments.remove(ids["assessment"], version=1, reason="wrong")
        again = uow.assessments.add(ASSESSMENT)
        uow.commit()
    assert again.id != ids["assessment"]


def test_a_failed_transaction_writes_neither_data_nor_audit(engine: Engine) -> None:
    _seed(engine)
    before = _audit_count(engine)
    with pytest.raises(RuntimeError), UnitOfWork(engine, user="dm1", reason="import") as uow:
        uow.patients.add(d.Patient("S002", "JN", d.Sex.MALE, dt.date(1970, 1, 1), "1.0"))
        raise RuntimeError("crash in the middle of an import")
    assert _audit_count(engine) == before
    with engine.connect() as conn:
        assert [p.subject_id for p in Repository(conn).all(d.Patient)] == ["S001"]


def test_duplicate_record_is_refused_with_its_natural_key_and_nothing_written(engine: Engine) -> None:
    _seed(engine)
    before = _audit_count(engine)
    with (
        pytest.raises(DuplicateRecord, match="subject_id S001 already exists"),
        UnitOfWork(engine, "dm1", "import") as uow,
    ):
        uow.patients.add(d.Patient("S009", "JN", d.Sex.MALE, dt.date(1970, 1, 1), "1.0"))
        uow.patients.add(PATIENT)
    assert _audit_count(engine) == before


def test_duplicate_in_a_bulk_load_is_a_typed_error(engine: Engine) -> None:
    _seed(engine)
    with pytest.raises(DuplicateRecord), UnitOfWork(engine, user="dm1", reason="import") as uow:
        uow.add_all([PATIENT])
        uow.commit()


def test_record_for_unknown_patient_is_refused(engine: Engine) -> None:
    _seed(engine)
    lesion = d.Lesion("NOPE", "L1", "lung", "RUL", False, True, 20.0, d.RtRole.OBSERVATION)
    with pytest.raises(MissingParent, match="no patient 'NOPE'"), UnitOfWork(engine, user="dm1", reason="x") as uow:
        uow.lesions.add(lesion)


def test_a_change_without_reason_is_refused() -> None:
    with pytest.raises(ValidationError, match="reason"):
        UnitOfWork(None, user="dm1", reason=" ")  # type: ignore[arg-type]


def test_the_subject_id_of_a_patient_cannot_change(engine: Engine) -> None:
    ids = _seed(engine)
    with pytest.raises(ValidationError, match="subject_id"), UnitOfWork(engine, user="dm1", reason="x") as uow:
        uow.patients.update(ids["patient"], dataclasses.replace(PATIENT, subject_id="S002"), version=1)


def test_a_locked_patient_refuses_every_change_saying_who_locked_it(engine: Engine) -> None:
    ids = _seed(engine)
    with UnitOfWork(engine, user="dm1", reason="database lock") as uow:
        uow.locks.add(
            d.RecordLock(
                "patients", ids["patient"], "S001", "dm1", dt.datetime(2024, 1, 2, tzinfo=dt.UTC), "final lock"
            )
        )
        uow.commit()
    with pytest.raises(RecordLocked, match="dm1"), UnitOfWork(engine, user="rad1", reason="x") as uow:
        uow.screenings.update(ids["screening"], dataclasses.replace(SCREENING, ecog=0), version=1)
    with pytest.raises(RecordLocked), UnitOfWork(engine, user="rad1", reason="x") as uow:
        uow.lesions.add(LESION)


def test_a_change_clears_the_sdv_mark_and_voids_the_signature(engine: Engine) -> None:
    ids = _seed(engine)
    at = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    with UnitOfWork(engine, user="monitor1", reason="SDV") as uow:
        uow.sdv_marks.add(d.SdvMark("screenings", ids["screening"], "S001", 1, "monitor1", at))
        uow.signatures.add(
            d.RecordSignature("screenings", ids["screening"], "S001", "pi", "Dr PI", "approved", at, "h")
        )
        uow.commit()
    with UnitOfWork(engine, user="coordinator1", reason="correction") as uow:
        uow.screenings.update(ids["screening"], dataclasses.replace(SCREENING, ecog=0), version=1)
        uow.commit()
        assert uow.sdv_marks.all() == []
        assert uow.signatures.all() == []
    with engine.connect() as conn:
        reasons = conn.execute(text("SELECT removed_reason FROM record_signatures")).scalars().all()
    assert reasons == ["signature voided: the screenings record changed (now version 2)"]


def test_a_record_added_to_a_signed_casebook_voids_the_casebook_signature_only(engine: Engine) -> None:
    ids = _seed(engine)
    at = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    with UnitOfWork(engine, user="pi", reason="casebook") as uow:
        uow.signatures.add(d.RecordSignature("patients", ids["patient"], "S001", "pi", "Dr PI", "approved", at, "h"))
        uow.signatures.add(
            d.RecordSignature("screenings", ids["screening"], "S001", "pi", "Dr PI", "approved", at, "h")
        )
        uow.commit()
    with UnitOfWork(engine, user="radiologist1", reason="baseline lesion") as uow:
        uow.lesions.add(LESION)
        uow.commit()
        assert [s.value.entity for s in uow.signatures.all()] == ["screenings"]  # the screening's own still holds
    with engine.connect() as conn:
        reasons = conn.execute(text("SELECT removed_reason FROM record_signatures WHERE entity = 'patients'")).scalars()
        assert list(reasons) == ["signature voided: a record was added to the casebook (lesions)"]


def test_missing_record_is_not_found(engine: Engine) -> None:
    _seed(engine)
    with pytest.raises(NotFound), UnitOfWork(engine, user="dm1", reason="x") as uow:
        uow.lesions.update("nope", LESION, version=1)


def test_untouched_database_verifies_clean(engine: Engine) -> None:
    ids = _seed(engine)
    with UnitOfWork(engine, user="dm1", reason="correction") as uow:
        uow.patients.update(ids["patient"], dataclasses.replace(PATIENT, status=d.PatientStatus.ENROLLED), version=1)
        uow.commit()
    report = _verify(engine)
    assert report.ok, report.findings  # type: ignore[attr-defined]
    assert report.records == 6  # type: ignore[attr-defined]
    assert report.rows == 6  # type: ignore[attr-defined]


def test_history_of_a_row_from_a_bulk_insert_shows_its_own_values_then_its_changes(engine: Engine) -> None:
    ids = _seed(engine)
    with UnitOfWork(engine, user="rad1", reason="re-read") as uow:
        read_again = dataclasses.replace(ASSESSMENT, investigator_response=d.InvestigatorResponse.PR)
        uow.assessments.update(ids["assessment"], read_again, version=1)
        m1 = next(m for m in uow.assessments.get(ids["assessment"]).value.measurements if m.lesion_id == "L1")
        assert m1.diameter_mm == 31.0
        uow.commit()
        child_ids = uow.execute(text("SELECT id, lesion_id FROM lesion_measurements")).all()
    l1 = next(i for i, lesion in child_ids if lesion == "L1")
    with engine.connect() as conn:
        measurement = history(conn, "lesion_measurements", l1)
        assessment = history(conn, "tumour_assessments", ids["assessment"])
    assert len(measurement) == 1
    assert '"diameter_mm":31.0' in (measurement[0].new_value or "")
    assert '"lesion_id":"L2"' not in (measurement[0].new_value or "")
    assert [(h.field, h.new_value, h.username) for h in assessment[1:]] == [("investigator_response", '"PR"', "rad1")]


def test_audit_chain_continues_across_transactions(engine: Engine) -> None:
    _seed(engine)
    with UnitOfWork(engine, user="rad1", reason="week 6 CT") as uow:
        uow.assessments.add(dataclasses.replace(ASSESSMENT, assessment_date=dt.date(2023, 5, 24)))
        uow.commit()
    with engine.connect() as conn:
        seqs = [r.seq for r in conn.execute(select(audit_log.c.seq).order_by(audit_log.c.seq))]
    assert seqs == list(range(1, 8))
    assert _verify(engine).ok  # type: ignore[attr-defined]


def test_commits_inside_one_transaction_wait_for_the_final_commit(engine: Engine) -> None:
    _seed(engine)
    with UnitOfWork(engine, user="dm1", reason="import") as uow:
        with uow.one_transaction():
            uow.lesions.add(LESION)
            uow.commit()  # a use case's commit: held
        assert uow.lesions.all() != []  # written in the open transaction, not committed
    assert _audit_count(engine) == 5  # left without the final commit: rolled back
    with UnitOfWork(engine, user="dm1", reason="import") as uow:
        with uow.one_transaction():
            uow.lesions.add(LESION)
            uow.commit()
        uow.commit()
    assert _audit_count(engine) == 6


def test_verify_leaves_the_callers_connection_as_it_was(engine: Engine) -> None:
    """SQLAlchemy 2's Connection.execution_options changes the connection itself: verify must not stream it."""
    ids = _seed(engine)
    with engine.connect() as conn:
        verify(conn)
        assert "yield_per" not in conn.get_execution_options()
        conn.execute(text("UPDATE sites SET name = name WHERE id = :i"), {"i": ids["patient"]})
