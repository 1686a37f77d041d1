"""Browser journeys of the adjudication, casebook and report pages (issue 12 items 2 and 10), in Debian's Chromium
against the app served on loopback, each person signing in through the login form:

1. adjudicate with two DCPs: a coordinator proposes the engine's classification; once made a deputy chief physician
   the proposer's own signature is refused with its sentence; dcp1 signs, dcp1's second signature is refused; dcp2
   signs and the adjudication is complete (enrolment no longer refused for it);
2. the PI signs the casebook with the password typed again and the data manager locks it;
3. the statistician generates the report, watches its progress and downloads the HTML and the PDF;
4. the data manager exports SDTM and the ODM snapshot from the exports page and downloads both (read back with
   pyreadstat and the published ODM 1.3.2 XSD);
5. the radiation oncologist uploads a DICOM RT Plan of 3 Gy x 10 (made with pydicom), checks it (the major
   ``cfrt.prescription`` deviation shown, nothing written), imports it and finds the course on the patient's
   radiotherapy page.

Each page of the area is checked with axe-core in English and in Chinese (zero serious or critical violations) and
each key step leaves a screenshot in ``browser.artifacts_dir()/<test>/NN-step.png``. One browser for the module,
one live server and database per backend (SQLite, PostgreSQL). Test data that is not this area's work (a new
patient at screening, a user who changes role) is set up through the JSON API, as a script would.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

import pyreadstat
import xmlschema
from odmlib.schema_manager import get_schema_path
from playwright.sync_api import Page, expect

sys.path.insert(0, str(Path(__file__).parent))
import journey as jr
import world
from journey import API, Journey, in_chinese, submit

# the shared journey fixtures, found by pytest in this module's namespace
browser_db, live_url, chromium = jr.browser_db, jr.live_url, jr.chromium
axe_checked, journey = jr.axe_checked, jr.journey

NEW = "QFS-900301"
REPORT_TITLE = "Journey interim report"
RT_PATIENT, RT_HOSPITAL_ID = "QFS-900302", "H-900302"

_spec = importlib.util.spec_from_file_location(
    "abscopal_test_fixtures_dicom_rt_journey", Path(__file__).parents[1] / "fixtures" / "dicom_rt.py"
)
assert _spec is not None and _spec.loader is not None
dicom_files = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = dicom_files
_spec.loader.exec_module(dicom_files)


def screening_patient(j: Journey) -> None:
    """A new QFS patient at screening with the enrolled patient's screening and prior immunotherapy (API set-up)."""
    api, csrf = j.api("coordinator")
    source = api.get(f"{API}/patients/{world.QFS_PATIENT}").json()["data"]
    patient = {k: v for k, v in source.items() if k != "subject_id"}
    patient.update(status="screening", enrolment_date=None, death_date=None, death_cause=None,
                   withdrawal_date=None, new_therapy_date=None, last_contact_date=None, hospital_id=None)  # fmt: skip
    assert api.post(f"{API}/patients?subject_id={NEW}", data=patient, headers=csrf).status == 201
    for slug in ("screening", "io-history"):
        first = api.get(f"{API}/patients/{world.QFS_PATIENT}/{slug}").json()[0]["data"]
        body = {k: v for k, v in first.items() if k != "subject_id"}
        assert api.post(f"{API}/patients/{NEW}/{slug}", data=body, headers=csrf).status == 201


def sign_adjudication(page: Page) -> int:
    page.fill("#adj-password", world.PASSWORD)
    return submit(page, "#sign-form", "Sign as adjudicated")


# --- 1. adjudication with two deputy chief physicians


def test_two_deputy_chief_physicians_adjudicate_and_the_proposers_signature_is_refused(journey: Journey) -> None:
    j = journey
    page_path = f"/patients/{NEW}/adjudication"
    screening_patient(j)
    admin, admin_csrf = j.api("admin")
    new_user = {"username": "proposer", "full_name": "Test Proposer", "password": world.PASSWORD,
                "memberships": [{"site": world.QFS, "role": "coordinator"}]}  # fmt: skip
    assert admin.post(f"{API}/users", data=new_user, headers=admin_csrf).status == 201

    proposer = j.sign_in("proposer")
    j.open(proposer, page_path)
    expect(proposer.locator("#rule-reasons li").first).to_be_visible()
    expect(proposer.locator(".cb-refused")).to_contain_text("Enrolment is refused until both")
    j.snap(proposer, "proposal", variant="unproposed")
    in_chinese(j, proposer, "proposal", variant="unproposed")
    assert proposer.locator("#classification").input_value() == "primary"  # the engine's class is chosen
    assert submit(proposer, "#propose-form", "Propose") == 200
    expect(proposer.locator("main .notice").first).to_contain_text("The adjudication was proposed.")
    expect(proposer.locator("#signature-count")).to_have_text("0 of the 2 required")
    j.snap(proposer, "proposed", variant="proposed")

    dcp = {"memberships": [{"site": world.QFS, "role": "deputy_chief_physician"}], "reason": "now a deputy chief"}
    assert admin.put(f"{API}/users/proposer/memberships", data=dcp, headers=admin_csrf).ok
    as_dcp = j.sign_in("proposer")
    j.open(as_dcp, page_path)
    expect(as_dcp.locator("#sign-form")).to_be_visible()
    assert sign_adjudication(as_dcp) == 403
    expect(as_dcp.locator("#adj-password-error")).to_contain_text("proposed this adjudication")
    j.snap(as_dcp, "proposer-refused", variant="refused")

    dcp1 = j.sign_in("dcp1")
    j.open(dcp1, page_path)
    assert sign_adjudication(dcp1) == 200
    expect(dcp1.locator("#signature-count")).to_have_text("1 of the 2 required")
    expect(dcp1.locator(".cb-signatures")).to_contain_text("Signed by Test Dcp1 (dcp1), meaning “adjudicated”")
    j.snap(dcp1, "first-signature", variant="half-signed")
    assert sign_adjudication(dcp1) == 403
    expect(dcp1.locator("#adj-password-error")).to_contain_text("already signed")
    j.snap(dcp1, "second-signature-refused", variant="refused")

    dcp2 = j.sign_in("dcp2")
    j.open(dcp2, page_path)
    assert sign_adjudication(dcp2) == 200
    expect(dcp2.locator(".cb-complete")).to_contain_text("The adjudication is complete")
    expect(dcp2.locator(".cb-refused")).to_have_count(0)
    expect(dcp2.locator(".cb-signatures li")).to_have_count(2)
    reasons = " ".join(dcp2.locator("#enrolment-reasons li").all_inner_texts())
    assert "signature" not in reasons and "adjudicat" not in reasons, reasons
    j.snap(dcp2, "complete", variant="complete")
    in_chinese(j, dcp2, "complete", variant="complete")
    j.assert_accessible()


# --- 2. the PI signs the casebook and the data manager locks it


def test_the_pi_signs_the_casebook_and_the_data_manager_locks_it(journey: Journey) -> None:
    j = journey
    path = f"/patients/{world.QFS_PATIENT}/casebook"
    pi = j.sign_in("pi")
    j.open(pi, path)
    expect(pi.locator("#casebook-signatures")).to_contain_text("The casebook has not been signed.")
    j.snap(pi, "casebook", variant="unsigned")
    in_chinese(j, pi, "casebook", variant="unsigned")
    pi.select_option("#cb-meaning", "approved")
    pi.fill("#cb-password", "not my password")
    assert submit(pi, "#casebook-sign-form", "Sign the casebook") == 422
    expect(pi.locator("#cb-password-error")).to_contain_text("the password is wrong; nothing was signed")
    j.snap(pi, "wrong-password", variant="refused")
    pi.fill("#cb-password", world.PASSWORD)
    assert submit(pi, "#casebook-sign-form", "Sign the casebook") == 200
    expect(pi.locator("main .notice").first).to_have_text("You signed the casebook.")
    expect(pi.locator("#casebook-signatures .signature")).to_contain_text("Signed by Test Pi (pi), meaning “approved”")
    expect(pi.locator("#casebook-signatures code")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    j.snap(pi, "signed", variant="signed")

    dm = j.sign_in("datamanager")
    j.open(dm, path)
    expect(dm.locator("#casebook-signatures .signature")).to_be_visible()
    dm.fill("#cb-lock-reason", "casebook complete and signed")
    assert submit(dm, "#casebook-lock-form", "Lock the casebook") == 200
    expect(dm.locator("main .notice").first).to_contain_text("The casebook is locked")
    expect(dm.locator("#casebook-lock")).to_contain_text("Locked by datamanager")
    expect(dm.locator("#casebook-lock")).to_contain_text("casebook complete and signed")
    expect(dm.locator("#casebook-unlock-form")).to_be_visible()
    j.snap(dm, "locked", variant="locked")
    in_chinese(j, dm, "locked", variant="locked")

    radiologist, csrf = j.api("radiologist")
    lesion = sorted(radiologist.get(f"{API}/patients/{world.QFS_PATIENT}/lesions").json(), key=lambda r: r["id"])[0]
    data = {**{k: v for k, v in lesion["data"].items() if k != "subject_id"}, "location": "after the lock"}
    refused = radiologist.put(
        f"{API}/patients/{world.QFS_PATIENT}/lesions/{lesion['id']}",
        data={"reason": "late correction", "data": data}, headers={**csrf, "If-Match": lesion["etag"]},
    )  # fmt: skip
    assert refused.status == 423 and "is locked" in refused.json()["detail"]
    j.assert_accessible()


# --- 3. the statistician downloads the report


def test_the_statistician_generates_the_report_and_downloads_it(journey: Journey) -> None:
    j = journey
    stat = j.sign_in("statistician")
    j.open(stat, "/report")
    expect(stat.locator("#report-jobs .empty")).to_be_visible()
    j.snap(stat, "report-empty", variant="empty")
    in_chinese(j, stat, "report-empty", variant="empty")
    stat.fill("#report-cutoff", "2026-06-30")
    stat.fill("#report-title", REPORT_TITLE)
    assert submit(stat, "#report-form", "Generate the report") == 200
    expect(stat.locator("main .notice").first).to_have_text("The report is being generated.")
    job = stat.locator("#report-jobs li.cb-job").first
    j.snap(stat, "report-running", variant="running")
    expect(job).to_have_attribute("data-status", "done", timeout=120_000)  # htmx polls the job's fragment
    expect(job.get_by_role("link", name="Download PDF")).to_be_visible()
    j.snap(stat, "report-done", variant="done")

    with stat.expect_download() as pdf_download:
        job.get_by_role("link", name="Download PDF").click()
    pdf = Path(pdf_download.value.path())
    assert pdf_download.value.suggested_filename == "report.pdf" and pdf.read_bytes().startswith(b"%PDF-")
    with stat.expect_download() as html_download:
        job.get_by_role("link", name="Download HTML").click()
    text = Path(html_download.value.path()).read_text(encoding="utf-8")
    assert html_download.value.suggested_filename == "report.html" and f"<title>{REPORT_TITLE}" in text
    in_chinese(j, stat, "report-done", variant="done")
    j.assert_accessible()


# --- 4. exports


def test_the_data_manager_exports_sdtm_and_odm_from_the_page_and_downloads_both(
    journey: Journey, tmp_path: Path
) -> None:
    j = journey
    dm = j.sign_in("datamanager")
    j.open(dm, "/exports")
    expect(dm.locator("#export-jobs .empty")).to_be_visible()
    j.snap(dm, "exports-empty", variant="empty")
    in_chinese(j, dm, "exports-empty", variant="empty")
    dm.fill("#sdtm-cutoff", "2026-06-30")
    dm.locator("#sdtm-form input[name=formats][value=csv]").check()
    assert submit(dm, "#sdtm-form", "Export SDTM") == 200
    expect(dm.locator("main .notice").first).to_have_text("The SDTM export has started.")
    sdtm = dm.locator("#export-jobs li.cb-job").first
    expect(sdtm).to_have_attribute("data-status", "done", timeout=120_000)  # htmx polls the job's row
    j.snap(dm, "exports-sdtm-done", variant="done")
    with dm.expect_download() as download:
        sdtm.get_by_role("link", name="Download sdtm-2026-06-30.zip").click()
    with zipfile.ZipFile(download.value.path()) as zf:
        assert {"dm.xpt", "dm.csv", "ae.xpt", "define.xml"} <= set(zf.namelist())
        (tmp_path / "dm.xpt").write_bytes(zf.read("dm.xpt"))
    frame, meta = pyreadstat.read_xport(str(tmp_path / "dm.xpt"))
    assert meta.table_name == "DM" and any(u.endswith(f"-{world.QFS_PATIENT}") for u in frame["USUBJID"])

    dm.locator("#odm-strict").check()
    assert submit(dm, "#odm-form", "Export ODM") == 200
    odm = dm.locator("#export-jobs li.cb-job").first  # newest first
    expect(odm).to_have_attribute("data-status", "done", timeout=120_000)
    with dm.expect_download() as download:
        odm.get_by_role("link", name="Download trial.odm.xml").click()
    schema = xmlschema.XMLSchema(get_schema_path("odm", "1.3.2"))
    assert list(schema.iter_errors(download.value.path())) == []
    in_chinese(j, dm, "exports-done", variant="done")
    j.assert_accessible()


# --- 5. DICOM RT import


def rt_patient(engine: Any) -> None:
    """An enrolled QFS patient with a hospital ID and a conventional lesion labelled as the plan's target (set-up)."""
    from abscopal import domain as d
    from abscopal.store.unit_of_work import UnitOfWork

    with UnitOfWork(engine, "setup", "journey set-up: a patient for the DICOM RT import") as uow:
        uow.patients.add(
            d.Patient(
                RT_PATIENT, world.QFS, d.Sex.FEMALE, dt.date(1969, 5, 2), "1.0", status=d.PatientStatus.ENROLLED,
                enrolment_date=dt.date(2024, 3, 1), hospital_id=RT_HOSPITAL_ID,
            )
        )  # fmt: skip
        for lesion_id, role, label in (
            ("L01", d.RtRole.CONVENTIONAL, "GTV_lung"),
            ("L02", d.RtRole.OBSERVATION, "liver"),
        ):
            uow.lesions.add(
                d.Lesion(RT_PATIENT, lesion_id, "lung", "RUL", False, True, 35.0, role, is_primary=lesion_id == "L01",
                         label=label)
            )  # fmt: skip
        uow.commit()


def test_the_radiation_oncologist_checks_then_imports_a_dicom_plan_and_sees_its_deviation(
    journey: Journey, browser_db: Any, tmp_path: Path
) -> None:
    j = journey
    rt_patient(browser_db.engine)
    plan = dicom_files.plan(
        tmp_path / "HYPO-3x10.dcm", dicom_files.Person(RT_HOSPITAL_ID, "19690502", "F"), name="HYPO-3x10",
        targets=[dicom_files.Target(1, "GTV_lung", 30.0)], fractions=10, beams=[(1.5, 150.0), (1.5, 150.0)],
    )  # fmt: skip
    radonc = j.sign_in("radonc")
    j.open(radonc, f"/patients/{RT_PATIENT}/radiotherapy")
    with radonc.expect_navigation():
        radonc.get_by_role("link", name="Import the courses from a DICOM RT Plan").click()
    expect(radonc.locator("#plan-patient")).to_have_value(RT_PATIENT)
    j.snap(radonc, "dicom-empty", variant="empty")
    in_chinese(j, radonc, "dicom-empty", variant="empty")
    radonc.locator("#plan-file").set_input_files(str(plan))
    assert submit(radonc, "#plan-form", "Check") == 200
    outcome = radonc.locator("#dicom-outcome")
    expect(outcome).to_contain_text(f"Check: this is what the import would record for {RT_PATIENT}")
    expect(outcome).to_contain_text("3 Gy × 10 = 30 Gy")
    expect(outcome).to_contain_text("cfrt.prescription")
    j.snap(radonc, "dicom-checked", variant="checked")

    radonc.locator("#plan-file").set_input_files(str(plan))
    assert submit(radonc, "#plan-form", "Import") == 200
    expect(outcome).to_contain_text(f"The plan was imported for {RT_PATIENT}")
    with radonc.expect_navigation():
        outcome.get_by_role("link", name=f"Open {RT_PATIENT}'s radiotherapy page").click()
    expect(radonc.locator("table.rt-courses")).to_contain_text("HYPO-3x10")
    expect(radonc.locator("table.rt-deviations")).to_contain_text("cfrt.prescription")
    j.snap(radonc, "dicom-imported")
    j.assert_accessible()
