"""DICOM RT import (interop.md §6): plans and treatment records made with pydicom, and pydicom's bundled files.

Expected values are hand-worked: 60 Gy / 30 = 2 Gy per fraction; 8 Gy / 5 = 1.6 Gy; 30 Gy / 10 = 3 Gy (outside
CFRT's 1.8-2.0 Gy/f and 40-60 Gy: a major cfrt.prescription deviation); rtplan.dcm's 30.826203 Gy / 30 =
1.0275401 Gy (radiotherapy.md §3 table). A delivered fraction's dose is d x delivered MU / specified MU.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from abscopal import domain as d
from abscopal.errors import InputFileError, NotFound, ValidationError
from abscopal.interop import dicom_rt
from abscopal.store.database import make_engine
from abscopal.store.migrate import upgrade
from abscopal.store.tables import audit_head, audit_log, metadata
from abscopal.store.unit_of_work import UnitOfWork

_spec = importlib.util.spec_from_file_location(
    "abscopal_test_fixtures_dicom_rt", Path(__file__).parents[2] / "fixtures" / "dicom_rt.py"
)
assert _spec is not None and _spec.loader is not None
files = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = files
_spec.loader.exec_module(files)

USER = "dr.wang"
HOSPITAL_ID = "QFS-0042"
PERSON = files.Person(HOSPITAL_ID, "19690502", "F")
AT = dt.datetime(2024, 6, 3, 9, tzinfo=dt.UTC)
MONDAY = dt.date(2024, 3, 4)


def _seed(engine: Engine) -> None:
    with UnitOfWork(engine, "setup", "test set-up") as uow:
        uow.sites.add(d.Site("JN", "Qianfoshan Hospital"))
        uow.users.add(d.User(USER, "Dr Wang", d.Role.RADONC, "JN"))
        uow.users.add(d.User("crc.zhao", "Zhao", d.Role.COORDINATOR, "JN"))
        uow.patients.add(
            d.Patient(
                "S-001", "JN", d.Sex.FEMALE, dt.date(1969, 5, 2), "1.0", status=d.PatientStatus.ENROLLED,
                enrolment_date=dt.date(2024, 3, 1), hospital_id=HOSPITAL_ID,
            )
        )  # fmt: skip
        for lesion_id, role, label, primary in (
            ("L01", d.RtRole.CONVENTIONAL, "GTV_lung", True),
            ("L02", d.RtRole.LOW_DOSE, "LN_4R", False),
            ("L03", d.RtRole.OBSERVATION, "liver_1", False),
        ):
            uow.lesions.add(
                d.Lesion("S-001", lesion_id, "lung", "RUL", False, True, 35.0, role, is_primary=primary, label=label)
            )
        uow.commit()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'rt.sqlite'}")
    upgrade(engine)
    _seed(engine)
    return engine


def _state(engine: Engine) -> dict[str, Any]:
    """Every table's row count and the audit head: equal before and after means nothing was written."""
    with engine.connect() as conn:
        counts = {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in metadata.sorted_tables
        }
        head = [tuple(r) for r in conn.execute(select(audit_head))]
        last = conn.execute(select(func.max(audit_log.c.seq))).scalar_one()
    return {"counts": counts, "head": head, "last": last}


def _cfrt_plan(tmp: Path, name: str = "CFRT-L01", dose: float = 60.0, n: int = 30, **kw: Any) -> Path:
    per = dose / n
    path: Path = files.plan(
        tmp / f"{name}.dcm", kw.pop("person", PERSON), name=name,
        targets=[files.Target(1, "GTV_lung", dose)], fractions=n, beams=[(per / 2, 110.0), (per / 2, 90.0)], **kw,
    )  # fmt: skip
    return path


def _ldrt_plan(tmp: Path) -> Path:
    path: Path = files.plan(
        tmp / "LDRT-L02.dcm", PERSON, name="LDRT-L02", targets=[files.Target(1, "nodes", 8.0, roi_number=3)],
        fractions=5, beams=[(1.6, 180.0)], structure_set_uid=files.uid("structure-set", "SS-1"),
    )  # fmt: skip
    return path


def _records(tmp: Path, plan_path: Path, days: list[dt.date], **kw: Any) -> list[Path]:
    plan_uid = str(pydicom.dcmread(plan_path).SOPInstanceUID)
    return [
        files.record(
            tmp / f"rec-{plan_path.stem}-{i}.dcm",
            PERSON,
            name=f"{plan_path.stem}-{i}",
            plan_uid=plan_uid,
            day=day,
            fraction=i,
            beams=kw.get("beams", [(110.0, 110.0, "NORMAL"), (90.0, 90.0, "NORMAL")]),
        )
        for i, day in enumerate(days, start=1)
    ]


def _import_plan(engine: Engine, path: Path, **kw: Any) -> dicom_rt.PlanImported:
    return dicom_rt.import_plan(engine, path, user=USER, at=AT, **kw)


def _import_records(engine: Engine, paths: list[Path], **kw: Any) -> dicom_rt.RecordsImported:
    return dicom_rt.import_records(engine, paths, user=USER, at=AT, **kw)


def _stored(engine: Engine) -> tuple[list[d.RadiotherapyCourse], list[d.Fraction], list[d.ProtocolDeviation]]:
    with UnitOfWork(engine, "reader", "read") as uow:
        return (
            [s.value for s in uow.radiotherapy_courses.for_subject("S-001")],
            sorted((s.value for s in uow.fractions.for_subject("S-001")), key=lambda f: f.fraction_number),
            [s.value for s in uow.deviations.for_subject("S-001")],
        )


def _bundled(name: str) -> Path:
    """One of pydicom's bundled test files (interop.md §6 lists what each holds)."""
    found = get_testdata_file(name)
    assert isinstance(found, str), f"pydicom no longer ships {name}"
    return Path(found)


def _hospital_id(engine: Engine, hospital_id: str) -> None:
    with UnitOfWork(engine, "setup", "hospital id of a bundled file") as uow:
        p = uow.patients.find(subject_id="S-001")
        assert p is not None
        uow.patients.update(p.id, dataclasses.replace(p.value, hospital_id=hospital_id), version=p.version)
        uow.commit()


# ----------------------------------------------------------------------------- the files are real DICOM


def test_generated_files_are_part_10_dicom_that_pydicom_reads_back(tmp_path: Path) -> None:
    plan = pydicom.dcmread(_cfrt_plan(tmp_path))
    rec = pydicom.dcmread(_records(tmp_path, _cfrt_plan(tmp_path), [MONDAY])[0])
    assert plan.file_meta.MediaStorageSOPClassUID == files.RT_PLAN
    assert plan.FractionGroupSequence[0].NumberOfFractionsPlanned == 30
    assert rec.SOPClassUID == files.RT_BEAMS_RECORD
    assert rec.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == plan.SOPInstanceUID


# ----------------------------------------------------------------------------- RT Plan happy paths


@pytest.mark.postgres
def test_a_cfrt_plan_of_2_gy_in_30_becomes_the_conventional_course_with_its_uid(engine: Engine, tmp_path: Path) -> None:
    _seed(engine)
    path = _cfrt_plan(tmp_path)
    result = _import_plan(engine, path)
    courses, _, deviations = _stored(engine)
    assert len(courses) == 1
    c = courses[0]
    assert (c.lesion_id, c.role, c.dose_per_fraction_gy, c.fractions, c.start_date) == (
        "L01", d.RtRole.CONVENTIONAL, 2.0, 30, MONDAY,
    )  # fmt: skip
    assert (c.plan_uid, c.fraction_group, c.dose_reference, c.plan_label) == (
        files.uid("plan", "CFRT-L01"), 1, 1, "CFRT-L01",
    )  # fmt: skip
    assert deviations == [] and result.committed
    assert result.courses[0].bed_gy == pytest.approx(72.0)  # 60 x (1 + 2/10)


def test_the_audit_reason_names_the_plan_uid_file_and_sha256(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = _cfrt_plan(tmp_path)
    result = _import_plan(sqlite_engine, path)
    with sqlite_engine.connect() as conn:
        reasons = set(conn.execute(select(audit_log.c.reason).where(audit_log.c.username == USER)).scalars())
    assert reasons == {f"imported from DICOM RT Plan {result.plan_uid} file {path.name} (sha256 {result.sha256})"}


def test_an_ldrt_plan_matches_its_target_by_the_structure_sets_roi_name(sqlite_engine: Engine, tmp_path: Path) -> None:
    ss, _ = files.structure_set(tmp_path / "ss.dcm", PERSON, name="SS-1", rois=[(1, "Body"), (3, "ln_4r")])
    _import_plan(sqlite_engine, _ldrt_plan(tmp_path), structure_set=ss)
    (course,), _, deviations = _stored(sqlite_engine)
    assert (course.lesion_id, course.role, course.dose_per_fraction_gy, course.fractions) == (
        "L02", d.RtRole.LOW_DOSE, 1.6, 5,
    )  # fmt: skip
    assert deviations == []


def test_a_3_gy_in_10_plan_on_the_conventional_lesion_records_a_major_prescription_deviation(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    _import_plan(sqlite_engine, _cfrt_plan(tmp_path, "HYPO", 30.0, 10))
    (course,), _, deviations = _stored(sqlite_engine)
    assert (course.dose_per_fraction_gy, course.fractions) == (3.0, 10)
    assert [(x.check, x.deviation_class, x.lesion_id) for x in deviations] == [
        (d.DeviationCheck.CFRT_PRESCRIPTION, d.DeviationClass.MAJOR, "L01")
    ]


def test_the_same_plan_imported_again_changes_nothing(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = _cfrt_plan(tmp_path)
    _import_plan(sqlite_engine, path)
    before = _state(sqlite_engine)
    again = _import_plan(sqlite_engine, path)
    assert again.courses[0].unchanged and not again.committed
    assert _state(sqlite_engine) == before


def test_a_plan_with_a_known_uid_but_new_content_is_refused(sqlite_engine: Engine, tmp_path: Path) -> None:
    _import_plan(sqlite_engine, _cfrt_plan(tmp_path))
    before = _state(sqlite_engine)
    changed = _cfrt_plan(tmp_path / "..", "CFRT-L01", 50.0, 25)  # same name -> same SOPInstanceUID
    with pytest.raises(InputFileError, match="imported before with different content"):
        _import_plan(sqlite_engine, changed)
    assert _state(sqlite_engine) == before


def test_start_defaults_to_the_plan_date_and_start_overrides_it(sqlite_engine: Engine, tmp_path: Path) -> None:
    _import_plan(sqlite_engine, _cfrt_plan(tmp_path), start=dt.date(2024, 3, 6))
    (course,), _, _ = _stored(sqlite_engine)
    assert course.start_date == dt.date(2024, 3, 6)


def test_a_dry_run_reports_the_course_and_writes_nothing(sqlite_engine: Engine, tmp_path: Path) -> None:
    before = _state(sqlite_engine)
    result = _import_plan(sqlite_engine, _cfrt_plan(tmp_path, "HYPO", 30.0, 10), dry_run=True)
    assert not result.committed
    assert [x.check for x in result.courses[0].deviations] == [d.DeviationCheck.CFRT_PRESCRIPTION]
    assert _state(sqlite_engine) == before


# ----------------------------------------------------------------------------- RT Plan refusals


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("person", "keyword"),
    [
        (files.Person("QFS-9999", "19690502", "F"), "PatientID"),
        (files.Person(HOSPITAL_ID, "19700101", "F"), "PatientBirthDate"),
        (files.Person(HOSPITAL_ID, "19690502", "M"), "PatientSex"),
    ],
)
def test_a_plan_whose_identity_differs_from_the_patient_is_refused_and_writes_nothing(
    engine: Engine, tmp_path: Path, person: Any, keyword: str
) -> None:
    _seed(engine)
    before = _state(engine)
    with pytest.raises(InputFileError, match=keyword) as err:
        _import_plan(engine, _cfrt_plan(tmp_path, person=person), patient="S-001")
    assert "Test^Patient" not in str(err.value) and "QFS" not in str(err.value)  # no name, no hospital id
    assert _state(engine) == before


def test_a_plan_of_an_unknown_hospital_id_names_no_patient(sqlite_engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no trial patient has this hospital ID"):
        _import_plan(sqlite_engine, _cfrt_plan(tmp_path, person=files.Person("QFS-9999")))


def test_an_unapproved_plan_is_refused_without_allow_unapproved(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = _cfrt_plan(tmp_path, approval="UNAPPROVED")
    before = _state(sqlite_engine)
    with pytest.raises(InputFileError, match="UNAPPROVED: import it with --allow-unapproved"):
        _import_plan(sqlite_engine, path)
    assert _state(sqlite_engine) == before
    _import_plan(sqlite_engine, path, allow_unapproved=True)
    assert len(_stored(sqlite_engine)[0]) == 1


def test_a_target_that_matches_no_lesion_label_is_refused(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = files.plan(
        tmp_path / "p.dcm", PERSON, name="P", targets=[files.Target(1, "PTV_bone", 60.0)], fractions=30,
        beams=[(2.0, 200.0)],
    )  # fmt: skip
    before = _state(sqlite_engine)
    with pytest.raises(InputFileError, match="target PTV_bone: no lesion is labelled so; map it with --map"):
        _import_plan(sqlite_engine, path)
    assert _state(sqlite_engine) == before


def test_a_map_to_an_unknown_lesion_is_refused(sqlite_engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="the patient has no lesion L99"):
        _import_plan(sqlite_engine, _cfrt_plan(tmp_path), mapping={"GTV_lung": "L99"})


def test_a_structure_set_the_plan_does_not_reference_is_refused(sqlite_engine: Engine, tmp_path: Path) -> None:
    ss, _ = files.structure_set(tmp_path / "ss.dcm", PERSON, name="OTHER", rois=[(3, "LN_4R")])
    with pytest.raises(InputFileError, match="ReferencedStructureSetSequence"):
        _import_plan(sqlite_engine, _ldrt_plan(tmp_path), structure_set=ss)


def test_a_proton_plan_is_refused(sqlite_engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="only photon plans are imported"):
        _import_plan(sqlite_engine, _cfrt_plan(tmp_path, radiation="PROTON"))


def test_a_file_of_another_sop_class_is_refused_naming_it(sqlite_engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"SOP class is CT Image Storage \(1\.2\.840\.10008\.5\.1\.4\.1\.1\.2\)"):
        _import_plan(sqlite_engine, files.ct_image(tmp_path / "ct.dcm", PERSON))


def test_a_file_that_is_not_dicom_is_refused_with_a_sentence(sqlite_engine: Engine, tmp_path: Path) -> None:
    junk = tmp_path / "notes.dcm"
    junk.write_text("not a plan", encoding="utf-8")
    with pytest.raises(InputFileError, match="is not a DICOM file"):
        _import_plan(sqlite_engine, junk)


def test_a_user_who_is_not_a_radiation_oncologist_or_data_manager_may_not_import(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    from abscopal.errors import PermissionDenied

    with pytest.raises(PermissionDenied, match="radiation oncologist or a data manager"):
        dicom_rt.import_plan(sqlite_engine, _cfrt_plan(tmp_path), user="crc.zhao", at=AT)


# ----------------------------------------------------------------------------- pydicom's bundled files


def test_pydicoms_rtplan_with_a_map_is_1_0275_gy_in_30_and_a_major_cfrt_deviation(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    _hospital_id(sqlite_engine, "id00001")  # rtplan.dcm's PatientID
    result = _import_plan(sqlite_engine, _bundled("rtplan.dcm"), mapping={"PTV": "L01"}, allow_unapproved=True)
    (course,), _, deviations = _stored(sqlite_engine)
    assert (course.lesion_id, round(course.dose_per_fraction_gy, 4), course.fractions) == ("L01", 1.0275, 30)
    assert course.start_date == dt.date(2003, 9, 3)
    assert [(x.check, x.deviation_class) for x in deviations] == [
        (d.DeviationCheck.CFRT_PRESCRIPTION, d.DeviationClass.MAJOR)
    ]
    assert result.courses[0].bed_gy == pytest.approx(33.9937, abs=1e-4)  # radiotherapy.md §3
    assert result.courses[0].eqd2_gy == pytest.approx(28.3281, abs=1e-4)


def test_pydicoms_rtstruct_is_read_without_a_header_but_refused_as_another_patients(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    plan = shutil.copy(_bundled("rtplan.dcm"), tmp_path / "rtplan.dcm")
    before = _state(sqlite_engine)
    with pytest.raises(InputFileError) as err:
        _import_plan(
            sqlite_engine, Path(plan), structure_set=_bundled("rtstruct.dcm"), patient="S-001",
            mapping={"PTV": "L01"}, allow_unapproved=True,
        )  # fmt: skip
    assert "PatientID" in str(err.value)
    assert _state(sqlite_engine) == before


def test_pydicoms_rtstruct_alone_is_refused_as_not_a_plan_after_a_forced_read(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="RT Structure Set Storage"):
        dicom_rt.read(_bundled("rtstruct.dcm"), [dicom_rt.RT_PLAN])
    assert dicom_rt.read(_bundled("rtstruct.dcm")).warnings  # the force=True warning


def test_pydicoms_rtdose_is_refused_as_the_wrong_sop_class(sqlite_engine: Engine) -> None:
    with pytest.raises(InputFileError, match="RT Dose Storage"):
        _import_plan(sqlite_engine, _bundled("rtdose.dcm"))


def test_pydicoms_truncated_rtplan_is_refused_with_a_sentence(sqlite_engine: Engine) -> None:
    _hospital_id(sqlite_engine, "id00001")
    before = _state(sqlite_engine)
    with pytest.raises(InputFileError, match="ApprovalStatus: is missing"):
        _import_plan(sqlite_engine, _bundled("rtplan_truncated.dcm"), mapping={"PTV": "L01"})
    assert _state(sqlite_engine) == before


# ----------------------------------------------------------------------------- treatment records


@pytest.mark.postgres
def test_treatment_records_become_delivered_fractions_with_their_uids(engine: Engine, tmp_path: Path) -> None:
    _seed(engine)
    plan = _cfrt_plan(tmp_path)
    _import_plan(engine, plan)
    records = _records(tmp_path, plan, [MONDAY, MONDAY + dt.timedelta(days=1)])
    _import_records(engine, list(reversed(records)))  # applied in date order whatever the command-line order
    _, fractions, _ = _stored(engine)
    assert [(f.fraction_number, f.date, f.dose_gy, f.status, f.meterset_ratio) for f in fractions] == [
        (1, MONDAY, 2.0, d.FractionStatus.DELIVERED, 1.0),
        (2, MONDAY + dt.timedelta(days=1), 2.0, d.FractionStatus.DELIVERED, 1.0),
    ]
    assert [f.record_uid for f in fractions] == [str(pydicom.dcmread(r).SOPInstanceUID) for r in records]


def test_an_ldrt_record_with_mu_only_in_the_control_points_is_read(sqlite_engine: Engine, tmp_path: Path) -> None:
    ss, _ = files.structure_set(tmp_path / "ss.dcm", PERSON, name="SS-1", rois=[(3, "LN_4R")])
    plan = _ldrt_plan(tmp_path)
    _import_plan(sqlite_engine, plan, structure_set=ss)
    rec = files.record(
        tmp_path / "r.dcm", PERSON, name="ldrt-1", plan_uid=files.uid("plan", "LDRT-L02"), day=MONDAY, fraction=1,
        beams=[(180.0, 180.0, "NORMAL")], control_points_only=True,
    )  # fmt: skip
    _import_records(sqlite_engine, [rec])
    _, (fraction,), _ = _stored(sqlite_engine)
    assert (fraction.lesion_id, fraction.dose_gy, fraction.status) == ("L02", 1.6, d.FractionStatus.DELIVERED)


def test_a_beam_terminated_early_is_a_partial_fraction_with_the_delivered_share(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    plan = _cfrt_plan(tmp_path)
    _import_plan(sqlite_engine, plan)
    (rec,) = _records(tmp_path, plan, [MONDAY], beams=[(110.0, 110.0, "NORMAL"), (90.0, 40.0, "MACHINE")])
    _import_records(sqlite_engine, [rec])
    _, (fraction,), deviations = _stored(sqlite_engine)
    assert fraction.status is d.FractionStatus.PARTIAL
    assert fraction.meterset_ratio == pytest.approx(150 / 200)
    assert fraction.dose_gy == pytest.approx(2.0 * 150 / 200)
    # 1.5 Gy is outside CFRT's 1.8-2.0 Gy/f: the partial fraction is proposed as a major deviation
    assert [(x.check, x.deviation_class, x.date) for x in deviations] == [
        (d.DeviationCheck.CFRT_DELIVERED_DOSE_PER_FRACTION, d.DeviationClass.MAJOR, MONDAY)
    ]


def test_a_record_already_imported_is_skipped(sqlite_engine: Engine, tmp_path: Path) -> None:
    plan = _cfrt_plan(tmp_path)
    _import_plan(sqlite_engine, plan)
    records = _records(tmp_path, plan, [MONDAY])
    _import_records(sqlite_engine, records)
    before = _state(sqlite_engine)
    again = _import_records(sqlite_engine, records)
    assert [x.skipped for x in again.fractions] == ["already imported"]
    assert _state(sqlite_engine) == before


def test_two_records_of_the_same_fraction_are_refused_naming_both_files(sqlite_engine: Engine, tmp_path: Path) -> None:
    plan = _cfrt_plan(tmp_path)
    _import_plan(sqlite_engine, plan)
    uid = files.uid("plan", "CFRT-L01")
    a = files.record(
        tmp_path / "a.dcm", PERSON, name="a", plan_uid=uid, day=MONDAY, fraction=1, beams=[(200, 200, "NORMAL")]
    )
    b = files.record(
        tmp_path / "b.dcm",
        PERSON,
        name="b",
        plan_uid=uid,
        day=MONDAY,
        fraction=1,
        beams=[(200, 200, "NORMAL")],
        time="140000",
    )
    before = _state(sqlite_engine)
    with pytest.raises(InputFileError, match=r"fraction 1 of lesion L01 is recorded twice: in b\.dcm and in a\.dcm"):
        _import_records(sqlite_engine, [a, b])
    assert _state(sqlite_engine) == before


def test_fraction_numbers_that_go_down_over_time_are_refused(sqlite_engine: Engine, tmp_path: Path) -> None:
    plan = _cfrt_plan(tmp_path)
    _import_plan(sqlite_engine, plan)
    uid = files.uid("plan", "CFRT-L01")
    beams = [(200.0, 200.0, "NORMAL")]
    first = files.record(tmp_path / "a.dcm", PERSON, name="a", plan_uid=uid, day=MONDAY, fraction=2, beams=beams)
    later = files.record(tmp_path / "b.dcm", PERSON, name="b", plan_uid=uid, day=MONDAY + dt.timedelta(days=1),
                         fraction=1, beams=beams)  # fmt: skip
    before = _state(sqlite_engine)
    with pytest.raises(InputFileError, match="fraction numbers go down over time"):
        _import_records(sqlite_engine, [first, later])
    assert _state(sqlite_engine) == before


def test_a_record_of_a_plan_never_imported_is_refused(sqlite_engine: Engine, tmp_path: Path) -> None:
    rec = files.record(
        tmp_path / "r.dcm", PERSON, name="r", plan_uid=files.uid("plan", "nowhere"), day=MONDAY, fraction=1,
        beams=[(200.0, 200.0, "NORMAL")],
    )  # fmt: skip
    with pytest.raises(InputFileError, match="has not been imported for S-001: import the plan first"):
        _import_records(sqlite_engine, [rec])


def test_a_record_of_another_patient_is_refused_and_writes_nothing(sqlite_engine: Engine, tmp_path: Path) -> None:
    plan = _cfrt_plan(tmp_path)
    _import_plan(sqlite_engine, plan)
    rec = files.record(
        tmp_path / "r.dcm", files.Person(HOSPITAL_ID, "19690502", "M"), name="r",
        plan_uid=files.uid("plan", "CFRT-L01"), day=MONDAY, fraction=1, beams=[(200.0, 200.0, "NORMAL")],
    )  # fmt: skip
    before = _state(sqlite_engine)
    with pytest.raises(InputFileError, match="PatientSex"):
        _import_records(sqlite_engine, [rec])
    assert _state(sqlite_engine) == before


def test_an_unknown_patient_given_with_patient_is_not_found(sqlite_engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        _import_plan(sqlite_engine, _cfrt_plan(tmp_path), patient="S-404")


# ----------------------------------------------------------------------------- CLI


def _cli(*args: str) -> Any:
    from abscopal.cli.imports import app

    return CliRunner().invoke(app, list(args))


def test_cli_imports_a_plan_then_its_records(sqlite_engine: Engine, tmp_path: Path) -> None:
    url = str(sqlite_engine.url)
    plan = _cfrt_plan(tmp_path)
    out = _cli("rtplan", str(plan), "--user", USER, "--database-url", url)
    assert out.exit_code == 0, out.output
    assert "2 Gy x 30 = 60 Gy" in out.output
    out = _cli("rtrecord", *map(str, _records(tmp_path, plan, [MONDAY])), "--user", USER, "--database-url", url)
    assert out.exit_code == 0, out.output
    assert len(_stored(sqlite_engine)[1]) == 1


def test_cli_dry_run_of_a_refused_plan_exits_1_with_a_sentence(sqlite_engine: Engine, tmp_path: Path) -> None:
    before = _state(sqlite_engine)
    plan = _cfrt_plan(tmp_path, approval="UNAPPROVED")
    out = _cli("rtplan", str(plan), "--dry-run", "--user", USER, "--database-url", str(sqlite_engine.url))
    assert out.exit_code == 1
    assert "--allow-unapproved" in out.output and "Traceback" not in out.output
    assert _state(sqlite_engine) == before


def test_cli_dry_run_prints_the_deviation_and_writes_nothing(sqlite_engine: Engine, tmp_path: Path) -> None:
    before = _state(sqlite_engine)
    plan = _cfrt_plan(tmp_path, "HYPO", 30.0, 10)
    out = _cli("rtplan", str(plan), "--dry-run", "--user", USER, "--database-url", str(sqlite_engine.url))
    assert out.exit_code == 0, out.output
    assert "cfrt.prescription" in out.output and "would" in out.output
    assert _state(sqlite_engine) == before


def test_an_imported_plans_deviation_is_listed_by_rt_check_of_the_patient(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """Issue 13's "Done when": the 3 Gy x 10 plan's major cfrt.prescription deviation, recorded by the import,
    is what ``abscopal rt check --patient`` lists from the store, and the engine finds it again from the
    stored course."""
    from abscopal.cli import app as main_app

    _import_plan(sqlite_engine, _cfrt_plan(tmp_path, "HYPO", 30.0, 10))
    before = _state(sqlite_engine)
    url = str(sqlite_engine.url)
    out = CliRunner().invoke(main_app, ["rt", "check", "--patient", "S-001", "--database-url", url, "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert [(x["check"], x["class"], x["lesion_id"]) for x in data["recorded_deviations"]] == [
        ("cfrt.prescription", "major", "L01")
    ]
    assert ("cfrt.prescription", "major", "L01") in [
        (x["check"], x["class"], x["lesion_id"]) for x in data["deviations"]
    ]
    table = CliRunner().invoke(main_app, ["rt", "check", "--patient", "S-001", "--database-url", url])
    assert table.exit_code == 0, table.output
    assert "Deviations recorded for S-001" in table.output and "proposed" in table.output
    assert _state(sqlite_engine) == before  # read-only


def test_rt_check_of_the_patient_judges_a_stopped_course_only_when_named_completed(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """2 Gy x 30 planned, one fraction recorded (2 Gy of 60): an ongoing course, until --completed says it ended
    (then 2 of 60 Gy is a major delivered_total deviation, radiotherapy.md §2)."""
    from abscopal.cli import app as main_app

    plan = _cfrt_plan(tmp_path)
    _import_plan(sqlite_engine, plan)
    _import_records(sqlite_engine, _records(tmp_path, plan, [MONDAY]))
    url = str(sqlite_engine.url)

    def proposed(*extra: str) -> list[tuple[str, str]]:
        out = CliRunner().invoke(
            main_app, ["rt", "check", "--patient", "S-001", "--database-url", url, "--json", *extra]
        )
        assert out.exit_code == 0, out.output
        return [(x["check"], x["class"]) for x in json.loads(out.stdout)["deviations"] if x["lesion_id"] == "L01"]

    assert ("delivered_total", "major") not in proposed()
    assert ("delivered_total", "major") in proposed("--completed", "L01")


def test_an_imported_plans_deviation_is_counted_and_listed_in_the_trial_report(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    from abscopal.analysis.deviations import DeviationCount
    from abscopal.reports.report import build_report

    _import_plan(sqlite_engine, _cfrt_plan(tmp_path, "HYPO", 30.0, 10))
    built = build_report(
        tmp_path / "report", database_url=str(sqlite_engine.url), cutoff=dt.date(2024, 12, 31), pdf=False
    )
    summary = built.analysis.deviations
    assert summary.counts == (DeviationCount("cfrt.prescription", major=1, minor=0, confirmed=0, patients=1),)
    assert (summary.enrolled, summary.patients_with_major) == (1, 1)
    html = built.html.read_text(encoding="utf-8")
    section = html[html.index('id="deviations"') : html.index('id="safety"')]
    assert "<code>cfrt.prescription</code>" in section and "<td>S-001</td><td>L01</td>" in section
    assert "1 deviation in <strong>1</strong> of 1 enrolled patients (100.0%)" in section


def test_cli_rtrecord_dry_run_writes_a_json_report_and_nothing_else(sqlite_engine: Engine, tmp_path: Path) -> None:
    url = str(sqlite_engine.url)
    plan = _cfrt_plan(tmp_path)
    assert _cli("rtplan", str(plan), "--user", USER, "--database-url", url).exit_code == 0
    before = _state(sqlite_engine)
    report = tmp_path / "report.json"
    records = [str(p) for p in _records(tmp_path, plan, [MONDAY])]
    out = _cli("rtrecord", *records, "--dry-run", "--report", str(report), "--user", USER, "--database-url", url)
    assert out.exit_code == 0, out.output
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["ok"] and data["outcome"]["fractions"][0]["fraction"]["dose_gy"] == 2.0
    assert _state(sqlite_engine) == before


def test_cli_a_refused_import_writes_its_reason_to_the_report(sqlite_engine: Engine, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    ct = files.ct_image(tmp_path / "ct.dcm", PERSON)
    out = _cli("rtplan", str(ct), "--report", str(report), "--user", USER, "--database-url", str(sqlite_engine.url))
    assert out.exit_code == 1
    data = json.loads(report.read_text(encoding="utf-8"))
    assert not data["ok"] and "CT Image Storage" in data["error"]


# ----------------------------------------------------------------------------- malformed files


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_damaged_plan_is_refused_with_a_sentence_or_imported_never_a_crash(
    sqlite_engine: Engine, tmp_path: Path, data: st.DataObject
) -> None:
    """Bytes of a valid plan overwritten, cut or dropped: a typed refusal that writes nothing, or a clean import."""
    good = _cfrt_plan(tmp_path).read_bytes()
    blob = bytearray(good)
    how = data.draw(st.sampled_from(["overwrite", "truncate", "drop"]))
    at = data.draw(st.integers(0, len(blob) - 1))
    if how == "overwrite":
        junk = data.draw(st.binary(min_size=1, max_size=8))
        blob[at : at + len(junk)] = junk
    elif how == "truncate":
        del blob[at:]
    else:
        del blob[at : at + data.draw(st.integers(1, 16))]
    bad = tmp_path / "damaged.dcm"
    bad.write_bytes(bytes(blob))
    before = _state(sqlite_engine)
    try:
        result = _import_plan(sqlite_engine, bad, patient="S-001", dry_run=True)
    except (InputFileError, ValidationError, NotFound) as exc:
        assert str(exc)
    else:
        assert not result.committed
    assert _state(sqlite_engine) == before
