"""Browser journeys of screening, the live eligibility checklist, screen failure and enrolment (issue 12 items 1
and 3; journeys "screen an eligible and an ineligible patient" and "enrol"): real headless Chromium (Debian's
package) against the app served by uvicorn on loopback, signing in through the login form as the people who do
the work.

1. a coordinator registers a new patient and screens them, watching the checklist change as fields are filled
   (ECOG 3 makes IN3 "not met", ECOG 1 makes it "met"; a haemoglobin in g/dL is shown converted to g/L); the
   saved checklist equals the eligibility engine's for the stored record; with the adjudication signed by two
   deputy chief physicians (set up through the services: the adjudication page is another area's), an
   investigator enrols the patient under the protocol version in force that day;
2. a coordinator screens an ineligible patient (age 70, brain metastases) and the investigator records the screen
   failure with the excluding criteria the page fills in;
3. an investigator's enrolment of a patient whose adjudication has one signature is refused with the reason;
4. the investigator sees the three pages in Chinese.

axe-core runs on every kind of page reached, in English and Chinese (zero serious/critical); screenshots are saved
in ``browser.artifacts_dir()/<test>/NN-step.png``. One browser per module, one live server and database per backend.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

sys.path.insert(0, str(Path(__file__).parent))
import journey as jr
import world
from journey import Journey, submit

from abscopal import domain as d
from abscopal.protocol import eligibility, resistance
from abscopal.protocol.model import load_bundled
from abscopal.services import adjudication as adjudication_service
from abscopal.services import screening as screening_service
from abscopal.services.common import Actor
from abscopal.store.unit_of_work import UnitOfWork

# the shared journey fixtures, found by pytest in this module's namespace
browser_db, live_url, chromium = jr.browser_db, jr.live_url, jr.chromium
axe_checked, journey = jr.axe_checked, jr.journey
LOGIN_STEPS = True  # each sign-in's login page is a step (screenshot and axe-core)

PROTOCOL = load_bundled().current
COORDINATOR = Actor("coordinator", "Test Coordinator", d.Role.COORDINATOR, frozenset({world.QFS}))


# --- helpers


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo(world.TIME_ZONE)).date()


def eligible_values(**overrides: str) -> dict[str, str]:
    """Control id -> value of a form that meets every criterion it holds (IN10 comes from the adjudication)."""
    values = {
        "#f-consent_date": today().isoformat(), "#f-life_expectancy_months": "12", "#f-diet": "normal",
        "#f-severe_allergy_history": "no", "#f-histology": "adenocarcinoma", "#f-histology_confirmed_by": "histology",
        "#f-lesion_count": "4", "#f-metastatic_organ_count": "2", "#f-has_measurable_disease": "yes",
        "#f-no_standard_treatment_option": "yes", "#f-refuses_cooperation": "no",
        "#f-other_trial_within_3_months": "no", "#f-brain_metastases": "no",
        "#f-investigator_judges_unsuitable": "no", "#f-severe_infection": "no", "#f-serious_comorbidity": "no",
        "#f-prior_immune_related_toxicity": "no", "#f-prior_radiotherapy": "no",
        "#lab-haemoglobin-value": "12.5", "#lab-haemoglobin-unit": "g/dL", "#lab-haemoglobin-uln": "16",
        "#lab-wbc-value": "6.1", "#lab-wbc-uln": "10", "#lab-neutrophils-value": "3.9", "#lab-neutrophils-uln": "7",
        "#lab-platelets-value": "210", "#lab-platelets-uln": "350", "#lab-ast-value": "30", "#lab-ast-uln": "40",
        "#lab-alt-value": "28", "#lab-alt-uln": "40", "#lab-alp-value": "90", "#lab-alp-uln": "120",
    }  # fmt: skip
    values.update(overrides)
    return values


def fill(page: Page, values: dict[str, str]) -> None:
    for selector, value in values.items():
        control = page.locator(selector)
        if control.evaluate("el => el.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)


def status_of(page: Page, criterion: str) -> Any:
    return page.locator(f'#scr-checklist tr[data-criterion="{criterion}"] .scr-status')


def register(journey: Journey, page: Page, subject_id: str, birth: str) -> None:
    journey.open(page, "/screening/new")
    journey.snap(page, "register")
    page.fill("#f-subject_id", subject_id)
    page.select_option("#f-sex", "M")
    page.fill("#f-birth_date", birth)
    assert submit(page, "form.scr-register", "Register and start screening") == 200
    expect(page).to_have_url(f"{journey.base_url}/patients/{subject_id}/screen?notice=registered")
    expect(page.locator("main .notice")).to_be_visible()


def stored(db: Any, subject_id: str) -> tuple[Any, Any]:
    with UnitOfWork(db.engine, "test", "read") as uow:
        patient = uow.patients.find(subject_id=subject_id)
        screening = uow.screenings.find(subject_id=subject_id)
        adj = adjudication_service.current_adjudication(uow, subject_id)
    return patient, (screening, adj)


def engine_checklist(screening: d.Screening, adj: Any) -> eligibility.Checklist:
    datum = resistance.resistance_confirmed(adj.value if adj else None, PROTOCOL.resistance)
    data = dataclasses.replace(screening, immunotherapy_resistance_confirmed=datum)
    return eligibility.evaluate(data, PROTOCOL.eligibility, PROTOCOL.version.number)


def assert_page_shows(page: Page, checklist: eligibility.Checklist) -> None:
    """The page's checklist rows are the engine's: every criterion, in order, with its reason."""
    ids = page.locator("#scr-checklist tr[data-criterion]").evaluate_all(
        "rows => rows.map(r => r.getAttribute('data-criterion'))"
    )
    assert ids == [r.criterion_id for r in checklist.results]
    reasons = page.locator("#scr-checklist td.scr-reason").all_inner_texts()
    assert [x.strip() for x in reasons] == [r.reason for r in checklist.results]


def set_up_screened(db: Any, subject_id: str, signers: tuple[str, ...]) -> None:
    """A registered, eligible-as-far-as-typed patient with an adjudication signed by ``signers`` (services)."""
    with UnitOfWork(db.engine, "coordinator", "journey set-up") as uow:
        screening_service.register_patient(
            uow, COORDINATOR, d.Patient(subject_id, world.QFS, d.Sex.FEMALE, dt.date(1968, 2, 3), "")
        )
    labs = {
        "haemoglobin": d.LabValue(125, "g/L", 160), "wbc": d.LabValue(6.1, "x10^9/L", 10),
        "neutrophils": d.LabValue(3.9, "x10^9/L", 7), "platelets": d.LabValue(210, "x10^9/L", 350),
        "ast": d.LabValue(30, "U/L", 40), "alt": d.LabValue(28, "U/L", 40), "alp": d.LabValue(90, "U/L", 120),
    }  # fmt: skip
    screening = d.Screening(
        subject_id, today(), consent_date=today(), age_years=eligibility.age_on(dt.date(1968, 2, 3), today()), ecog=0,
        life_expectancy_months=12, diet=d.DietLevel.NORMAL, severe_allergy_history=False, labs=labs,
        histology=d.Histology.SQUAMOUS, histology_confirmed_by=d.HistologyConfirmation.HISTOLOGY, lesion_count=3,
        metastatic_organ_count=1, has_measurable_disease=True, no_standard_treatment_option=True,
        refuses_cooperation=False, other_trial_within_3_months=False, brain_metastases=False,
        investigator_judges_unsuitable=False, severe_infection=False, serious_comorbidity=False,
        prior_immune_related_toxicity=False, prior_radiotherapy=False,
    )  # fmt: skip
    with UnitOfWork(db.engine, "coordinator", "journey set-up") as uow:
        screening_service.record_screening(uow, COORDINATOR, screening)
    adjudicate(db, subject_id, signers)


def adjudicate(db: Any, subject_id: str, signers: tuple[str, ...]) -> None:
    with UnitOfWork(db.engine, "coordinator", "journey set-up: adjudication proposed") as uow:
        adj = adjudication_service.propose_adjudication(uow, COORDINATOR, subject_id, d.ResistanceType.ACQUIRED)
    for username in signers:
        with UnitOfWork(db.engine, username, "journey set-up: adjudicated") as uow:
            signer = Actor(username, world.full_name(username), d.Role.DCP, frozenset({world.QFS}))
            adj = adjudication_service.sign_adjudication(uow, signer, adj.id, version=adj.version)


# --- 1. an eligible patient, screened and enrolled


def test_a_coordinator_screens_an_eligible_patient_watching_the_checklist_and_an_investigator_enrols_them(
    journey: Journey, browser_db: Any
) -> None:
    subject_id = "QFS-800001"
    page = journey.sign_in("coordinator")
    register(journey, page, subject_id, "1969-06-15")
    expect(page.locator("#scr-checklist .scr-verdict")).to_have_class("scr-verdict incomplete")
    expect(status_of(page, "IN2")).to_have_text("met")  # the age, filled in from the birth date by the engine
    journey.snap(page, "screening-empty")

    page.fill("#f-ecog", "3")
    expect(status_of(page, "IN3")).to_have_text("not met")
    expect(page.locator("#scr-checklist .scr-verdict")).to_have_class("scr-verdict ineligible")
    expect(page.locator("#scr-live")).to_contain_text("Verdict: ineligible")  # the polite live region's summary
    journey.snap(page, "ecog-3-not-met")
    page.fill("#f-ecog", "1")
    expect(status_of(page, "IN3")).not_to_have_text("not met")

    fill(page, eligible_values())
    converted = page.locator("#scr-checklist .scr-compared tr.scr-converted").filter(has_text="Haemoglobin")
    expect(converted).to_contain_text("125 g/L")  # 12.5 g/dL as the rule compared it
    expect(status_of(page, "IN6")).to_have_text("met")
    expect(status_of(page, "IN10")).to_have_text("unknown")  # resistance: not adjudicated yet
    journey.snap(page, "filled-converted")

    assert submit(page, "form.scr-form", "Save the screening") == 200
    expect(page.locator("main .notice")).to_be_visible()
    _, (screening, adj) = stored(browser_db, subject_id)
    assert screening is not None and screening.value.labs["haemoglobin"] == d.LabValue(12.5, "g/dL", 16.0)
    assert_page_shows(page, engine_checklist(screening.value, adj))
    journey.snap(page, "saved")

    adjudicate(browser_db, subject_id, ("dcp1", "dcp2"))
    inv = journey.sign_in("investigator")
    journey.open(inv, f"/patients/{subject_id}/enrol")
    expect(inv.locator("#scr-checklist .scr-verdict")).to_have_class("scr-verdict eligible")
    _, (screening, adj) = stored(browser_db, subject_id)
    assert_page_shows(inv, engine_checklist(screening.value, adj))
    journey.snap(inv, "enrol-ready")
    assert submit(inv, "form.scr-enrol", "Enrol the patient") == 200
    in_force = load_bundled().version_on(today()).version.number
    expect(inv.locator("main .scr-enrolled")).to_contain_text(f"under protocol version {in_force}")
    patient, _ = stored(browser_db, subject_id)
    assert patient.value.status is d.PatientStatus.ENROLLED and patient.value.protocol_version == in_force
    journey.snap(inv, "enrolled", variant="enrolled")
    journey.assert_accessible()


# --- 2. an ineligible patient, recorded as a screen failure


def test_a_coordinator_screens_an_ineligible_patient_and_the_investigator_records_the_screen_failure(
    journey: Journey, browser_db: Any
) -> None:
    subject_id = "QFS-800002"
    page = journey.sign_in("coordinator")
    register(journey, page, subject_id, "1950-01-20")
    expect(status_of(page, "IN2")).to_have_text("not met")  # 70 or more years old
    fill(page, eligible_values(**{"#f-ecog": "0", "#f-brain_metastases": "yes"}))
    expect(status_of(page, "EX4")).to_have_text("present: excludes")
    expect(page.locator("#scr-checklist .scr-verdict")).to_have_class("scr-verdict ineligible")
    journey.snap(page, "ineligible")
    assert submit(page, "form.scr-form", "Save the screening") == 200

    inv = journey.sign_in("investigator")
    journey.open(inv, f"/patients/{subject_id}/enrol")
    reasons = inv.locator("#f-failure_reason")
    expect(reasons).to_contain_text("IN2")
    expect(reasons).to_contain_text("EX4")
    journey.snap(inv, "screen-failure-form", variant="ineligible")
    written = reasons.input_value()
    assert submit(inv, "form.scr-fail", "Record the screen failure") == 200
    expect(inv.locator("main .notice")).to_be_visible()
    patient, (screening, _) = stored(browser_db, subject_id)
    assert patient.value.status is d.PatientStatus.SCREEN_FAILED
    assert screening.value.screen_failure_reason == written.strip()
    journey.snap(inv, "screen-failed", variant="screen-failed")
    journey.assert_accessible()


# --- 3. enrolment refused while the adjudication lacks a signature


def test_an_investigators_enrolment_is_refused_with_the_reason_while_the_adjudication_is_not_signed(
    journey: Journey, browser_db: Any
) -> None:
    subject_id = "QFS-800003"
    set_up_screened(browser_db, subject_id, ("dcp1",))
    inv = journey.sign_in("investigator")
    journey.open(inv, f"/patients/{subject_id}/enrol")
    expect(inv.locator(".scr-adj")).to_have_class("scr-adj unknown")
    assert submit(inv, "form.scr-enrol", "Enrol the patient") == 422
    refusal = inv.locator("main .error .scr-refusal")
    expect(refusal).to_contain_text("sign")
    patient, _ = stored(browser_db, subject_id)
    assert patient.value.status is d.PatientStatus.SCREENING
    journey.snap(inv, "enrol-refused", variant="refused")
    journey.assert_accessible()


# --- 4. the pages in Chinese


def test_the_screening_pages_in_chinese(journey: Journey, browser_db: Any) -> None:
    jr.skip_chinese_on_postgresql(journey)
    subject_id = "QFS-800004"
    set_up_screened(browser_db, subject_id, ())
    inv = journey.sign_in("investigator")
    journey.open(inv, "/profile")
    inv.select_option("#language-switch", label="中文（简体）")
    csrf = inv.locator('meta[name="csrf-token"]').get_attribute("content") or ""
    try:
        assert submit(inv, "header form[action='/language']", "Switch") == 200
        expect(inv.locator("html")).to_have_attribute("lang", "zh-Hans")
        journey.open(inv, "/screening/new")
        expect(inv.locator("main h1")).to_have_text("登记筛选患者")
        journey.snap(inv, "zh-register")
        journey.open(inv, f"/patients/{subject_id}/screen")
        expect(inv.locator("#scr-checklist-h")).to_have_text("入组资格核查表")
        expect(status_of(inv, "IN10")).to_have_text("未知")
        journey.snap(inv, "zh-screening")
        journey.open(inv, f"/patients/{subject_id}/enrol")
        expect(inv.locator("#enrol-h")).to_have_text("入组")
        journey.snap(inv, "zh-enrol")
    finally:
        inv.request.post("/language", form={"csrf_token": csrf, "language": "en", "next": "/"})
    journey.assert_accessible()
