"""The exports page and the DICOM RT import page (issue 13 item 7: the data manager and the statistician export, the
data manager and the radiation oncologist import DICOM RT, from the browser).

The exports are read back with independent readers (pyreadstat for XPT, xmlschema with odmlib's published ODM 1.3.2
XSD); the DICOM files are made with pydicom by tests/fixtures/dicom_rt.py. Expected doses are hand-worked: 30 Gy / 10
fractions = 3 Gy per fraction, outside CFRT's 1.8-2.0 Gy and 40-60 Gy (a major ``cfrt.prescription`` deviation,
radiotherapy.md §2); 60 Gy / 30 = 2 Gy, within it; a record delivering 200 of 200 MU delivers the full 2 Gy.
"""

from __future__ import annotations

import datetime as dt
import html
import importlib.util
import io
import re
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pyreadstat
import xmlschema
from odmlib.schema_manager import get_schema_path
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).parent))
import world

from abscopal import domain as d
from abscopal.store.tables import audit_log, metadata
from abscopal.store.unit_of_work import UnitOfWork

_spec = importlib.util.spec_from_file_location(
    "abscopal_test_fixtures_dicom_rt_web", Path(__file__).parents[1] / "fixtures" / "dicom_rt.py"
)
assert _spec is not None and _spec.loader is not None
files = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = files
_spec.loader.exec_module(files)

SUBJECT = "QFS-000900"
HOSPITAL_ID = "H-0900"
PERSON = files.Person(HOSPITAL_ID, "19690502", "F")
MONDAY = dt.date(2024, 3, 4)


def text_of(response: Any) -> str:
    main = str(response.text).split('<main id="main">', 1)[-1]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", main)))


def wait_done(c: Any, job_id: str, timeout: float = 120) -> str:
    """Poll the job's row as htmx does until it stops polling; the row's final HTML."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fragment = c.get(f"/exports/jobs/{job_id}", headers={"HX-Request": "true"})
        assert fragment.status_code == 200, fragment.text
        if "hx-trigger" not in fragment.text:
            return str(fragment.text)
        time.sleep(0.3)
    raise AssertionError(f"the export job {job_id} did not finish in {timeout} s")


def newest_job(page: Any) -> str:
    found = re.search(r'id="job-([0-9a-f]{32})"', page.text)
    assert found, text_of(page)[:1500]
    return found.group(1)


def state(engine: Any) -> dict[str, int]:
    """Every table's row count: equal before and after means nothing was written."""
    with engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in metadata.sorted_tables}


# --- exports


def test_the_exports_page_has_an_empty_state_that_says_what_to_do(client: world.Clients) -> None:
    page = client.session("datamanager").get("/exports")
    assert page.status_code == 200
    assert "You have not exported anything since the server started." in text_of(page)
    assert 'id="sdtm-form"' in page.text and 'id="odm-form"' in page.text


def test_the_statistician_is_offered_sdtm_but_not_the_odm_snapshot(client: world.Clients) -> None:
    page = client.session("statistician").get("/exports")
    assert 'id="sdtm-form"' in page.text and 'id="odm-form"' not in page.text
    assert 'value="day"' not in page.text  # the birth date as a year only
    assert "is not given to the statistician" in text_of(page)


def test_an_odm_export_posted_by_the_statistician_is_refused_with_the_reason(client: world.Clients) -> None:
    r = client.session("statistician").post("/exports/odm", data={})
    assert r.status_code == 422
    assert "holds direct identifiers" in text_of(r)


def test_a_statisticians_full_birth_date_request_is_refused_beside_the_field(client: world.Clients) -> None:
    r = client.session("statistician").post(
        "/exports/sdtm", data={"cutoff": "2026-06-30", "formats": "xpt", "birth_date": "day"}
    )
    assert r.status_code == 422
    found = re.search(r'<p class="field-error" id="sdtm-birth-error">([^<]+)</p>', r.text)
    assert found and found.group(1) == "Your export is pseudonymised: the birth date is exported as a year only."


def test_an_sdtm_export_without_a_format_or_with_a_bad_cutoff_names_both_fields(client: world.Clients) -> None:
    r = client.session("datamanager").post("/exports/sdtm", data={"cutoff": "30/06/2026"})
    assert r.status_code == 422
    assert 'id="sdtm-cutoff-error"' in r.text and 'id="sdtm-formats-error"' in r.text


def test_an_sdtm_export_from_the_page_downloads_a_zip_that_pyreadstat_reads(
    client: world.Clients, web_db: Any, tmp_path: Path
) -> None:
    stat = client.session("statistician")
    started = stat.post("/exports/sdtm", data={"cutoff": "2026-06-30", "formats": ["xpt", "csv"]})
    assert started.status_code == 303 and started.headers["location"] == "/exports?notice=sdtm"
    page = stat.get(started.headers["location"])
    assert "The SDTM export has started." in text_of(page)
    job_id = newest_job(page)
    final = wait_done(stat, job_id)
    assert 'data-status="done"' in final, final
    got = stat.get(f"/exports/jobs/{job_id}/download")
    assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(got.content)) as zf:
        names = set(zf.namelist())
        assert {"dm.xpt", "dm.csv", "define.xml"} <= names
        dm_xpt = zf.read("dm.xpt")
    path = tmp_path / "dm.xpt"
    path.write_bytes(dm_xpt)
    frame, meta = pyreadstat.read_xport(str(path))
    assert meta.table_name == "DM"
    assert any(u.endswith(f"-{world.QFS_PATIENT}") for u in frame["USUBJID"])
    births = [b for b in frame["BRTHDTC"] if b]
    assert births and all(re.fullmatch(r"\d{4}", b) for b in births)  # the statistician's: a year only
    with web_db.engine.connect() as conn:
        exported = conn.execute(
            select(audit_log.c.new_value).where(
                audit_log.c.entity == "security", audit_log.c.entity_key == "statistician",
                audit_log.c.field == "exported",
            )
        ).scalars().all()  # fmt: skip
    assert any("SDTM export requested (cut-off 2026-06-30, xpt, csv" in str(v) for v in exported)


def test_an_odm_export_from_the_page_validates_against_the_published_schema(client: world.Clients) -> None:
    dm = client.session("datamanager")
    started = dm.post("/exports/odm", data={"strict": "on"})
    assert started.status_code == 303
    job_id = newest_job(dm.get("/exports"))
    assert 'data-status="done"' in wait_done(dm, job_id)
    got = dm.get(f"/exports/jobs/{job_id}/download")
    assert got.status_code == 200 and got.content.startswith(b"<?xml")
    schema = xmlschema.XMLSchema(get_schema_path("odm", "1.3.2"))
    assert list(schema.iter_errors(io.BytesIO(got.content))) == []


def test_another_users_export_is_not_found(client: world.Clients) -> None:
    dm = client.session("datamanager")
    dm.post("/exports/odm", data={})
    job_id = newest_job(dm.get("/exports"))
    stat = client.session("statistician")
    assert job_id not in stat.get("/exports").text
    assert stat.get(f"/exports/jobs/{job_id}", headers={"HX-Request": "true"}).status_code == 404
    assert stat.get(f"/exports/jobs/{job_id}/download").status_code == 404


def test_roles_without_the_export_right_cannot_open_the_exports_page(client: world.Clients) -> None:
    for username in ("investigator", "monitor", "radonc", "admin"):
        assert client.session(username).get("/exports").status_code == 403


# --- DICOM RT import


def seed_patient(engine: Any) -> None:
    """An enrolled patient at the first site with a hospital ID and two lesions (the ROI names of the plans)."""
    with UnitOfWork(engine, "setup", "test set-up: a patient for the DICOM import page") as uow:
        uow.patients.add(
            d.Patient(
                SUBJECT, world.QFS, d.Sex.FEMALE, dt.date(1969, 5, 2), "1.0", status=d.PatientStatus.ENROLLED,
                enrolment_date=dt.date(2024, 3, 1), hospital_id=HOSPITAL_ID,
            )
        )  # fmt: skip
        for lesion_id, role, label, primary in (
            ("L01", d.RtRole.CONVENTIONAL, "GTV_lung", True),
            ("L02", d.RtRole.OBSERVATION, "liver_1", False),
        ):
            uow.lesions.add(
                d.Lesion(SUBJECT, lesion_id, "lung", "RUL", False, True, 35.0, role, is_primary=primary, label=label)
            )
        uow.commit()


def cfrt_plan(folder: Path, *, dose: float, n: int, name: str, person: Any = PERSON) -> Path:
    per = dose / n
    path: Path = files.plan(
        folder / f"{name}.dcm", person, name=name, targets=[files.Target(1, "GTV_lung", dose)], fractions=n,
        beams=[(per / 2, 100.0), (per / 2, 100.0)],
    )  # fmt: skip
    return path


def upload(path: Path, field: str) -> tuple[str, tuple[str, bytes, str]]:
    return field, (path.name, path.read_bytes(), "application/dicom")


def courses_of(engine: Any) -> list[d.RadiotherapyCourse]:
    with UnitOfWork(engine, "test", "read") as uow:
        return [s.value for s in uow.radiotherapy_courses.for_subject(SUBJECT)]


def test_a_plan_checked_from_the_page_shows_its_deviation_and_writes_nothing(
    fresh_client: world.Clients, fresh_web_db: Any, tmp_path: Path
) -> None:
    seed_patient(fresh_web_db.engine)
    radonc = fresh_client.session("radonc")
    before = state(fresh_web_db.engine)
    plan = cfrt_plan(tmp_path, dose=30.0, n=10, name="CFRT-3x10")
    r = radonc.post("/imports/dicom/plan", data={"mode": "check"}, files=[upload(plan, "plan")])
    assert r.status_code == 200, text_of(r)[:2000]
    shown = text_of(r)
    assert f"Check: this is what the import would record for {SUBJECT}" in shown
    assert "3 Gy × 10 = 30 Gy" in shown and "cfrt.prescription" in shown and "major" in shown
    assert state(fresh_web_db.engine) == before


def test_a_plan_imported_from_the_page_records_the_course_its_deviation_and_the_audit(
    fresh_client: world.Clients, fresh_web_db: Any, tmp_path: Path
) -> None:
    seed_patient(fresh_web_db.engine)
    plan = cfrt_plan(tmp_path, dose=30.0, n=10, name="CFRT-3x10")
    r = fresh_client.session("radonc").post(
        "/imports/dicom/plan", data={"mode": "import"}, files=[upload(plan, "plan")]
    )
    assert r.status_code == 200, text_of(r)[:2000]
    assert f"The plan was imported for {SUBJECT}" in text_of(r)
    (course,) = courses_of(fresh_web_db.engine)
    assert (course.lesion_id, course.dose_per_fraction_gy, course.fractions) == ("L01", 3.0, 10)
    with UnitOfWork(fresh_web_db.engine, "test", "read") as uow:
        deviations = [s.value for s in uow.deviations.for_subject(SUBJECT)]
    assert [(x.check.value, x.deviation_class.value) for x in deviations] == [("cfrt.prescription", "major")]
    with fresh_web_db.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.username, audit_log.c.reason).where(
                audit_log.c.entity == "radiotherapy_courses", audit_log.c.reason.like("imported from DICOM RT Plan %")
            )
        ).all()
    assert rows and all(user == "radonc" for user, _ in rows)
    assert any("imported from DICOM RT Plan" in reason and "CFRT-3x10.dcm (sha256 " in reason for _, reason in rows)


def test_a_plan_whose_birth_date_is_not_the_patients_is_refused_naming_the_element(
    fresh_client: world.Clients, fresh_web_db: Any, tmp_path: Path
) -> None:
    seed_patient(fresh_web_db.engine)
    dm = fresh_client.session("datamanager")
    before = state(fresh_web_db.engine)
    plan = cfrt_plan(tmp_path, dose=60.0, n=30, name="wrong-birth", person=files.Person(HOSPITAL_ID, "19700101", "F"))
    r = dm.post("/imports/dicom/plan", data={"mode": "import"}, files=[upload(plan, "plan")])
    assert r.status_code == 422
    shown = text_of(r)
    assert "Nothing was written" in shown and "wrong-birth.dcm was refused:" in shown
    assert f"file, PatientBirthDate: is not the birth date recorded for {SUBJECT}" in shown
    assert "/tmp/" not in shown  # the uploaded file's own name, not the server's temporary path
    assert state(fresh_web_db.engine) == before


def test_a_file_that_is_not_dicom_is_refused_with_a_sentence(
    fresh_client: world.Clients, fresh_web_db: Any, tmp_path: Path
) -> None:
    radonc = fresh_client.session("radonc")
    before = state(fresh_web_db.engine)
    bogus = tmp_path / "notes.dcm"
    bogus.write_text("this is a text file", encoding="utf-8")
    r = radonc.post("/imports/dicom/plan", data={"mode": "import"}, files=[upload(bogus, "plan")])
    assert r.status_code == 422
    assert "notes.dcm was refused:" in text_of(r) and "is not a DICOM file" in text_of(r)
    assert state(fresh_web_db.engine) == before


def test_a_plan_form_without_a_file_or_with_a_bad_mapping_names_the_fields(fresh_client: world.Clients) -> None:
    r = fresh_client.session("radonc").post("/imports/dicom/plan", data={"mode": "check", "map": "PTV L01"})
    assert r.status_code == 422
    assert 'id="plan-file-error"' in r.text and 'id="plan-map-error"' in r.text


def test_treatment_records_imported_from_the_page_become_delivered_fractions(
    fresh_client: world.Clients, fresh_web_db: Any, tmp_path: Path
) -> None:
    seed_patient(fresh_web_db.engine)
    dm = fresh_client.session("datamanager")
    plan = cfrt_plan(tmp_path, dose=60.0, n=30, name="CFRT-60")
    assert dm.post("/imports/dicom/plan", data={"mode": "import"}, files=[upload(plan, "plan")]).status_code == 200
    plan_uid = files.uid("plan", "CFRT-60")
    beams = [(100.0, 100.0, "NORMAL"), (100.0, 100.0, "NORMAL")]
    records = [
        files.record(
            tmp_path / f"rec-{i}.dcm",
            PERSON,
            name=f"web-{i}",
            plan_uid=plan_uid,
            day=MONDAY + dt.timedelta(days=i - 1),
            fraction=i,
            beams=beams,
        )
        for i in (2, 1)
    ]
    r = dm.post("/imports/dicom/records", data={"mode": "import"}, files=[upload(p, "records") for p in records])
    assert r.status_code == 200, text_of(r)[:2000]
    assert f"The treatment records were imported for {SUBJECT}" in text_of(r)
    with UnitOfWork(fresh_web_db.engine, "test", "read") as uow:
        fractions = sorted((s.value for s in uow.fractions.for_subject(SUBJECT)), key=lambda f: f.fraction_number)
    tuesday = MONDAY + dt.timedelta(days=1)
    assert [(f.fraction_number, f.date, f.dose_gy) for f in fractions] == [(1, MONDAY, 2.0), (2, tuesday, 2.0)]


def test_another_sites_patient_cannot_be_named_on_the_import_page(
    fresh_client: world.Clients, fresh_web_db: Any, tmp_path: Path
) -> None:
    radonc = fresh_client.session("radonc")
    before = state(fresh_web_db.engine)
    plan = cfrt_plan(tmp_path, dose=60.0, n=30, name="other-site")
    r = radonc.post(
        "/imports/dicom/plan", data={"mode": "import", "patient": world.JNC_PATIENT}, files=[upload(plan, "plan")]
    )
    assert r.status_code == 422
    assert "Nothing was written" in text_of(r) and world.JNC_PATIENT in text_of(r)
    assert state(fresh_web_db.engine) == before


def test_roles_without_the_dicom_import_right_cannot_open_the_import_page(client: world.Clients) -> None:
    assert client.session("radonc").get("/imports/dicom").status_code == 200
    for username in ("coordinator", "investigator", "statistician", "monitor", "admin"):
        assert client.session(username).get("/imports/dicom").status_code == 403


def test_the_radiotherapy_page_links_the_importers_to_the_import_page_for_that_patient(client: world.Clients) -> None:
    link = f'href="/imports/dicom?patient={world.QFS_PATIENT}"'
    assert link in client.session("radonc").get(f"/patients/{world.QFS_PATIENT}/radiotherapy").text
    assert link not in client.session("radiologist").get(f"/patients/{world.QFS_PATIENT}/radiotherapy").text
    page = client.session("radonc").get(f"/imports/dicom?patient={world.QFS_PATIENT}")
    assert f'name="patient" value="{world.QFS_PATIENT}"' in page.text
