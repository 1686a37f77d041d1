"""The newcomer's journey (issue 12's "Done when"): one new patient carried from screening to a locked casebook and
the trial report, in Debian's Chromium against the app served on loopback, on a fresh database of each backend.
Every step is done in the browser by the person whose work it is, signing in through the login form:

1. the coordinator registers a new patient, enters the prior immunotherapy and fills the screening form until the
   live checklist shows every criterion met except IN10 (immunotherapy resistance, read from the adjudication);
2. the coordinator proposes the resistance adjudication; dcp1 and dcp2 sign it with their passwords;
3. the investigator enrols the patient;
4. the radiologist records the baseline lesions; the radiation oncologist assigns the RT roles (one conventional,
   two low-dose, one measurable observation lesion) and prescribes the courses (CFRT 2 Gy x 30, LDRT 1.6 Gy x 4),
   seeing BED/EQD2 as they are typed;
5. the radiation oncologist enters a fraction, the coordinator an immunotherapy cycle;
6. the radiologist enters the baseline and a follow-up assessment in the grid; the investigator enters their
   response;
7. the investigator records a serious AE picking the grade from the CTCAE definitions; the dashboard shows its
   24-hour clock;
8. the administrator creates the patient's own account (Subject ID field); the patient answers QLQ-C30 and
   QLQ-LC13 on a 360 x 740 phone viewport and sees the scores;
9. the PI signs the casebook, the data manager locks it, the statistician generates and downloads the report.

The numbers checked are the engines' for the stored records (the checklist, the resistance class, BED/EQD2, the
sum and the iRECIST response, the grade definitions, the QoL scores). axe-core runs on every kind of page reached
(zero serious or critical violations). Screenshots, 1280 x 800 viewport (the phone's 360 x 740), are saved in
``browser.artifacts_dir()/<test>/NN-step.png``, with a Chinese one (``-zh``) of each main page; docs/user-guide.md
and docs/user-guide.zh-Hans.md use them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect

sys.path.insert(0, str(Path(__file__).parent))
import journey as jr
import world
from journey import Journey, main_text, submit

from abscopal.protocol import eligibility, resistance
from abscopal.protocol import radiotherapy as rt
from abscopal.protocol.model import load_bundled
from abscopal.qol import score_answers
from abscopal.response import Criteria, SubjectFacts, derive_subject
from abscopal.safety.ctcae import GRADES, load_ctcae
from abscopal.services.common import protocol_of
from abscopal.store.unit_of_work import UnitOfWork

PROTOCOL = load_bundled().current
SUBJECT = "QFS-700001"
SCREEN = f"/patients/{SUBJECT}/screen"
ADJUDICATION = f"/patients/{SUBJECT}/adjudication"
ENROL = f"/patients/{SUBJECT}/enrol"
PLAN = f"/patients/{SUBJECT}/radiotherapy"
TREATMENT = f"/patients/{SUBJECT}/treatment"
GRID = f"/patients/{SUBJECT}/assessment-grid"
CASEBOOK = f"/patients/{SUBJECT}/casebook"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 360, "height": 740}
PATIENT_USER = "patient700001"
REPORT_TITLE = "Newcomer journey report"

#: The baseline lesions: id -> (organ, location, node, measurable, diameter mm, class, primary).
LESIONS = {
    "L01": ("lung", "right upper lobe", False, True, 42, "target", True),
    "L02": ("liver", "segment VI", False, True, 25, "target", False),
    "L03": ("bone", "T10 vertebra", False, False, None, "non_target", False),
    "L04": ("lymph_node", "subcarinal station 7", True, True, 18, "target", False),
}
ROLES = {"L01": "conventional", "L02": "low_dose", "L03": "low_dose", "L04": "observation"}
FOLLOW_UP = {"L01": 28, "L02": 18, "L04": 12}  # sum 58 against 85 at baseline: -31.8 %, a partial response


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo(world.TIME_ZONE)).date()


def timeline() -> dict[str, dt.date]:
    """The journey's dates, backdated so that the follow-up falls seven weeks after the first treatment day (a
    Monday about eight weeks ago); nothing may be dated in the future."""
    start = today() - dt.timedelta(weeks=8)
    start -= dt.timedelta(days=start.weekday())
    return {
        "io_start": start - dt.timedelta(days=400), "progression": start - dt.timedelta(days=60),
        "confirmed": start - dt.timedelta(days=20), "io_last": start - dt.timedelta(days=30),
        "screening": start - dt.timedelta(days=7), "baseline": start - dt.timedelta(days=5),
        "enrolment": start - dt.timedelta(days=3), "start": start,
        "follow_up": start + dt.timedelta(weeks=7), "ae_onset": start + dt.timedelta(days=16),
    }  # fmt: skip


# --- fixtures: a fresh database per backend, its live server, one browser for the module


@pytest.fixture
def live_url(fresh_web_db: Any) -> Iterator[str]:
    if fresh_web_db.backend != "sqlite":
        # the whole path on one store: each of its steps runs on PostgreSQL in the area journeys (make test's time)
        pytest.skip("the newcomer journey runs on SQLite; every step of it runs on PostgreSQL in the area journeys")
    with jr.served(fresh_web_db.url) as url:
        yield url


chromium = jr.chromium  # one browser for the module (tests/web/journey.py)


class Newcomer(Journey):
    """The platform journeys' helper with a 1280 x 800 viewport, viewport-sized screenshots (the guide uses them)
    and one login screenshot only."""

    def context(self, **options: Any) -> BrowserContext:
        return super().context(**({"viewport": DESKTOP} | options))

    def phone(self) -> BrowserContext:
        return super().context(viewport=PHONE, has_touch=True, is_mobile=True)

    def sign_in(
        self, username: str, *, login_step: bool | None = None, phone: bool = False, **context_options: Any
    ) -> Page:
        """Signed in through the form; the login page is a step the first time only (unless ``login_step``)."""
        page = (self.phone() if phone else self.context(**context_options)).new_page()
        self.open(page, "/login")
        page.fill("#username", username)
        page.fill("#password", world.PASSWORD)
        if self.step == 0 if login_step is None else login_step:
            self.snap(page, "login", variant="login")
        with page.expect_navigation():
            page.locator("main form").get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{self.base_url}/")
        return page

    def snap(self, page: Page, label: str, *, variant: str = "", full_page: bool = False) -> None:
        super().snap(page, label, variant=variant, full_page=full_page)

    def at(self, page: Page, selector: str) -> None:
        """Scroll ``selector`` to the top of the viewport (what the next screenshot should show)."""
        page.locator(selector).first.evaluate("el => el.scrollIntoView({block: 'start'})")

    def in_chinese(self, page: Page, label: str, *, selector: str | None = None, variant: str = "") -> None:
        """The header's language switch to Chinese, a screenshot (axe-core on it too), and back to English."""
        switch_language(page, "zh_Hans")
        if selector:
            self.at(page, selector)
        self.snap(page, f"{label}-zh", variant=variant)
        switch_language(page, "en")


@pytest.fixture
def journey(request: pytest.FixtureRequest, chromium: Browser, live_url: str) -> Iterator[Newcomer]:
    j = Newcomer(request.node.name, chromium, live_url, {})
    yield j
    j.close()


# --- helpers


def switch_language(page: Page, language: str) -> None:
    page.select_option("#language-switch", language)
    with page.expect_navigation():
        page.locator("header form[action='/language'] button").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans" if language == "zh_Hans" else "en")


def fill(page: Page, values: dict[str, str]) -> None:
    for selector, value in values.items():
        control = page.locator(selector)
        if control.evaluate("el => el.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)


def status_of(page: Page, criterion: str) -> Any:
    return page.locator(f'#scr-checklist tr[data-criterion="{criterion}"] .scr-status')


def screening_values(days: dict[str, dt.date]) -> dict[str, str]:
    """Control id -> value of a screening that meets every criterion the form holds (IN10 is the adjudication's)."""
    return {
        "#f-screening_date": days["screening"].isoformat(), "#f-consent_date": days["screening"].isoformat(),
        "#f-ecog": "1", "#f-life_expectancy_months": "12", "#f-diet": "normal", "#f-severe_allergy_history": "no",
        "#f-histology": "adenocarcinoma", "#f-histology_confirmed_by": "histology", "#f-lesion_count": "4",
        "#f-metastatic_organ_count": "3", "#f-has_measurable_disease": "yes",
        "#f-no_standard_treatment_option": "yes", "#f-refuses_cooperation": "no",
        "#f-other_trial_within_3_months": "no", "#f-brain_metastases": "no",
        "#f-investigator_judges_unsuitable": "no", "#f-severe_infection": "no", "#f-serious_comorbidity": "no",
        "#f-prior_immune_related_toxicity": "no", "#f-prior_radiotherapy": "no",
        "#lab-haemoglobin-value": "12.8", "#lab-haemoglobin-unit": "g/dL", "#lab-haemoglobin-uln": "16",
        "#lab-wbc-value": "6.1", "#lab-wbc-uln": "10", "#lab-neutrophils-value": "3.9", "#lab-neutrophils-uln": "7",
        "#lab-platelets-value": "210", "#lab-platelets-uln": "350", "#lab-ast-value": "30", "#lab-ast-uln": "40",
        "#lab-alt-value": "28", "#lab-alt-uln": "40", "#lab-alp-value": "90", "#lab-alp-uln": "120",
    }  # fmt: skip


def read(db: Any) -> UnitOfWork:
    """A read of the database (only to compute the engines' expected values for what the pages show)."""
    return UnitOfWork(db.engine, "test", "read")


def engine_checklist(db: Any) -> eligibility.Checklist:
    from abscopal.services import adjudication as adjudication_service

    with read(db) as uow:
        stored = uow.screenings.find(subject_id=SUBJECT)
        assert stored is not None, "the screening was not saved"
        screening = stored.value
        adj = adjudication_service.current_adjudication(uow, SUBJECT)
    datum = resistance.resistance_confirmed(adj.value if adj else None, PROTOCOL.resistance)
    return eligibility.evaluate(
        dataclasses.replace(screening, immunotherapy_resistance_confirmed=datum),
        PROTOCOL.eligibility,
        PROTOCOL.version.number,
    )


def assert_checklist_is_the_engines(page: Page, checklist: eligibility.Checklist) -> None:
    ids = page.locator("#scr-checklist tr[data-criterion]").evaluate_all(
        "rows => rows.map(r => r.getAttribute('data-criterion'))"
    )
    assert ids == [r.criterion_id for r in checklist.results]
    reasons = page.locator("#scr-checklist td.scr-reason").all_inner_texts()
    assert [x.strip() for x in reasons] == [r.reason for r in checklist.results]


def cells(page: Page, css: str) -> list[str]:
    return [" ".join(t.split()) for t in page.locator(f"#assessment-grid td.{css}").all_inner_texts()]


def derived_irecist(db: Any) -> Any:
    with read(db) as uow:
        found = uow.patients.find(subject_id=SUBJECT)
        assert found is not None, f"{SUBJECT} was not registered"
        patient = found.value
        assessments = [s.value for s in uow.assessments.for_subject(SUBJECT)]
        fractions = [s.value for s in uow.fractions.for_subject(SUBJECT)]
        cycles = [s.value for s in uow.immunotherapy_cycles.for_subject(SUBJECT)]
    facts = SubjectFacts(
        SUBJECT, rt.first_study_treatment(fractions, cycles, patient.enrolment_date), patient.death_date,
        patient.new_therapy_date,
    )  # fmt: skip
    return derive_subject(assessments, facts, protocol_of(patient, None).response, Criteria.IRECIST)


# --- the journey


def test_a_newcomer_carries_a_new_patient_from_screening_to_a_locked_casebook_and_the_report(
    journey: Newcomer, fresh_web_db: Any
) -> None:
    j, db, days = journey, fresh_web_db, timeline()

    # 1. the coordinator registers the patient, enters the prior immunotherapy and fills in the screening
    coordinator = j.sign_in("coordinator")
    j.snap(coordinator, "dashboard-coordinator")
    j.open(coordinator, "/screening/new")
    coordinator.fill("#f-subject_id", SUBJECT)
    coordinator.select_option("#f-sex", "F")
    coordinator.fill("#f-birth_date", "1966-04-12")
    j.snap(coordinator, "register")
    j.in_chinese(coordinator, "register")
    coordinator.fill("#f-subject_id", SUBJECT)
    coordinator.select_option("#f-sex", "F")
    coordinator.fill("#f-birth_date", "1966-04-12")
    assert submit(coordinator, "form.scr-register", "Register and start screening") == 200, main_text(coordinator)
    expect(coordinator).to_have_url(f"{j.base_url}{SCREEN}?notice=registered")
    expect(coordinator.locator("main .notice")).to_be_visible()
    expect(coordinator.locator("#scr-checklist .scr-verdict")).to_have_class("scr-verdict incomplete")
    j.snap(coordinator, "screening-empty")

    coordinator.get_by_role("link", name="Enter a prior immunotherapy").click()
    expect(coordinator.locator("#f-agent")).to_be_visible()
    j.in_chinese(coordinator, "prior-immunotherapy")
    coordinator.fill("#f-agent", "pembrolizumab")
    coordinator.fill("#f-start_date", days["io_start"].isoformat())
    coordinator.fill("#f-last_dose_date", days["io_last"].isoformat())
    coordinator.select_option("#f-best_response", "PR")
    coordinator.fill("#f-progression_date", days["progression"].isoformat())
    coordinator.fill("#f-progression_confirmed_date", days["confirmed"].isoformat())
    j.snap(coordinator, "prior-immunotherapy")
    assert submit(coordinator, "main form.record-form", "Save") == 200, main_text(coordinator)

    j.open(coordinator, SCREEN)
    with read(db) as uow:
        history = uow.immunotherapy_histories.for_subject(SUBJECT)[0].value
    engine_class = resistance.classify(history, PROTOCOL.resistance).classification
    expect(coordinator.locator("section.scr-history strong")).to_have_text(engine_class.value)
    fill(coordinator, screening_values(days))
    expect(status_of(coordinator, "IN3")).to_have_text("met")
    converted = coordinator.locator("#scr-checklist .scr-compared tr.scr-converted").filter(has_text="Haemoglobin")
    expect(converted).to_contain_text("128 g/L")  # 12.8 g/dL as the rule compared it
    expect(status_of(coordinator, "IN10")).to_have_text("unknown")
    rows = coordinator.locator("#scr-checklist tr[data-criterion]")
    expect(rows.locator(".scr-status.unknown")).to_have_count(1)  # IN10 only: every other criterion is decided
    # and every one is met, but the two that ask for complete data (IN8, EX1): they name IN10 as what is missing
    bad = rows.filter(has=coordinator.locator(".scr-status.bad"))
    assert bad.evaluate_all("rows => rows.map(r => r.dataset.criterion)") == ["IN8", "EX1"]
    for reason in bad.locator("td.scr-reason").all_inner_texts():
        assert re.fullmatch(r"(Clinical data|Key information) missing for IN10: (not met|met)", reason.strip()), reason
    j.at(coordinator, "#scr-checklist")
    j.snap(coordinator, "screening-checklist")
    assert submit(coordinator, "form.scr-form", "Save the screening") == 200, main_text(coordinator)
    expect(coordinator.locator("main .notice")).to_be_visible()
    checklist = engine_checklist(db)
    assert checklist.unknown == ["IN10"] and checklist.failed == ["IN8", "EX1"]
    assert_checklist_is_the_engines(coordinator, checklist)
    j.snap(coordinator, "screening-saved")
    j.in_chinese(coordinator, "screening", selector="#scr-checklist")

    # 2. the coordinator proposes the adjudication; two deputy chief physicians sign it
    j.open(coordinator, ADJUDICATION)
    expect(coordinator.locator(".cb-refused")).to_contain_text("Enrolment is refused until both")
    assert coordinator.locator("#classification").input_value() == engine_class.value
    j.snap(coordinator, "adjudication-proposal", variant="unproposed")
    j.in_chinese(coordinator, "adjudication-proposal", variant="unproposed")
    assert submit(coordinator, "#propose-form", "Propose") == 200, main_text(coordinator)
    expect(coordinator.locator("main .notice").first).to_contain_text("The adjudication was proposed.")
    expect(coordinator.locator("#signature-count")).to_have_text("0 of the 2 required")
    j.snap(coordinator, "adjudication-proposed", variant="proposed")

    for signer, count in (("dcp1", 1), ("dcp2", 2)):
        dcp = j.sign_in(signer)
        j.open(dcp, ADJUDICATION)
        dcp.fill("#adj-password", world.PASSWORD)
        assert submit(dcp, "#sign-form", "Sign as adjudicated") == 200, main_text(dcp)
        expect(dcp.locator("#signature-count")).to_have_text(f"{count} of the 2 required")
        j.snap(dcp, f"adjudication-signed-{signer}", variant=f"signed-{count}")
    expect(dcp.locator(".cb-complete")).to_contain_text("The adjudication is complete")
    expect(dcp.locator(".cb-refused")).to_have_count(0)
    j.in_chinese(dcp, "adjudication-complete", variant="signed-2")

    # 3. the investigator enrols the patient
    investigator = j.sign_in("investigator")
    j.open(investigator, ENROL)
    expect(investigator.locator("#scr-checklist .scr-verdict")).to_have_class("scr-verdict eligible")
    assert_checklist_is_the_engines(investigator, engine_checklist(db))
    investigator.fill("#f-on", days["enrolment"].isoformat())
    j.snap(investigator, "enrol")
    j.in_chinese(investigator, "enrol")
    investigator.fill("#f-on", days["enrolment"].isoformat())
    assert submit(investigator, "form.scr-enrol", "Enrol the patient") == 200, main_text(investigator)
    in_force = load_bundled().version_on(days["enrolment"]).version.number
    expect(investigator.locator("main .scr-enrolled")).to_contain_text(f"under protocol version {in_force}")
    j.snap(investigator, "enrolled", variant="enrolled")

    # 4. the radiologist records the baseline lesions; the radiation oncologist sets the roles and the courses
    radiologist = j.sign_in("radiologist")
    j.open(radiologist, PLAN)
    for lesion_id, (organ, location, node, measurable, size, lesion_class, primary) in LESIONS.items():
        form = radiologist.locator("#lesion-form")
        form.locator("#lesion-lesion_id").fill(lesion_id)
        form.locator("#lesion-organ").fill(organ)
        form.locator("#lesion-location").fill(location)
        form.locator("#lesion-is_node").set_checked(node)
        form.locator("#lesion-measurable").set_checked(measurable)
        form.locator("#lesion-baseline_diameter_mm").fill("" if size is None else str(size))
        form.locator("#lesion-lesion_class").select_option(lesion_class)
        form.locator("#lesion-is_primary").set_checked(primary)
        if lesion_id == "L04":
            j.at(radiologist, "#lesion-form")
            j.snap(radiologist, "lesion-form")
        assert submit(radiologist, "#lesion-form", "Add the lesion") == 200, main_text(radiologist)
        expect(radiologist.locator("main .notice")).to_contain_text("The lesion was saved.")
    expect(radiologist.locator("#lesions tbody tr")).to_have_count(len(LESIONS))
    j.at(radiologist, "#lesions")
    j.snap(radiologist, "lesions-recorded", variant="notice")
    j.in_chinese(radiologist, "lesions-recorded", selector="#lesions")

    radonc = j.sign_in("radonc")
    j.open(radonc, PLAN)
    for lesion_id, role in ROLES.items():
        radonc.select_option(f"#role-{lesion_id}", role)
    expect(radonc.locator("#role-rules .rt-summary")).to_contain_text("Every role rule is met.")
    if radonc.locator("#roles-reason").count():
        radonc.fill("#roles-reason", "plan agreed at the multidisciplinary meeting")
    j.at(radonc, "#roles")
    j.snap(radonc, "roles-live-check", variant="live")
    assert submit(radonc, "#roles-form", "Save the RT roles") == 200, main_text(radonc)
    expect(radonc.locator("main .notice")).to_contain_text("The RT roles were saved.")

    alpha_beta = PROTOCOL.radiotherapy.radiobiology.alpha_beta_tumour_gy
    for lesion_id, dose, fractions in (("L01", 2.0, 30), ("L02", 1.6, 4), ("L03", 1.6, 4)):
        course = radonc.locator("#course-form")
        course.locator("#course-lesion_id").select_option(lesion_id)
        course.locator("#course-dose_per_fraction_gy").fill(f"{dose:g}")
        course.locator("#course-fractions").fill(str(fractions))
        course.locator("#course-start_date").fill(days["start"].isoformat())
        check = radonc.locator("#course-check")
        expect(check.locator("[data-value='total']")).to_have_text(f"{dose * fractions:.2f} Gy")
        expect(check.locator("[data-value='bed']")).to_have_text(f"{rt.bed(dose, fractions, alpha_beta):.2f} Gy")
        expect(check.locator("[data-value='eqd2']")).to_have_text(f"{rt.eqd2(dose, fractions, alpha_beta):.2f} Gy")
        expect(check.locator(".rt-summary")).to_contain_text("Within the protocol's regimen.")
        if lesion_id == "L01":
            j.at(radonc, "#course-form")
            j.snap(radonc, "course-cfrt-live-check", variant="course")
        assert submit(radonc, "#course-form", "Save the prescription") == 200, main_text(radonc)
        expect(radonc.locator("main .notice")).to_contain_text("The prescription was saved.")
    expect(radonc.locator("#rt-doses tr[data-lesion='L01'] [data-value='prescribed']")).to_have_text("60.00")
    expect(radonc.locator("#rt-doses tr[data-lesion='L02'] [data-value='prescribed']")).to_have_text("6.40")
    j.at(radonc, "#courses")
    j.snap(radonc, "courses-saved", variant="notice")
    j.in_chinese(radonc, "plan", selector="#roles")

    # 5. the radiation oncologist enters a fraction, the coordinator an immunotherapy cycle
    j.open(radonc, TREATMENT)
    form = radonc.locator("#fraction-form")
    form.locator("#fraction-lesion_id").select_option("L01")
    form.locator("#fraction-fraction_number").fill("1")
    form.locator("#fraction-date").fill(days["start"].isoformat())
    form.locator("#fraction-dose_gy").fill("2")
    form.locator("#fraction-status").select_option("delivered")
    assert submit(radonc, "#fraction-form", "Save the fraction") == 200, main_text(radonc)
    expect(radonc.locator("main .notice")).to_contain_text("The fraction was saved")
    expect(radonc.locator("#fraction-table")).to_contain_text(days["start"].isoformat())
    j.at(radonc, "main h1")
    j.snap(radonc, "fraction-saved", variant="notice")
    j.in_chinese(radonc, "treatment")

    j.open(coordinator, TREATMENT)
    cycle = coordinator.locator("#cycle-form")
    cycle.locator("#cycle-date").fill(days["start"].isoformat())
    if cycle.locator("#cycle-agent").evaluate("el => el.tagName") == "SELECT":
        cycle.locator("#cycle-agent").select_option(index=1)
    elif not cycle.locator("#cycle-agent").input_value():
        cycle.locator("#cycle-agent").fill("sintilimab")
    cycle.locator("#cycle-dose").fill("200")
    cycle.locator("#cycle-dose_unit").fill("mg")
    assert submit(coordinator, "#cycle-form", "Save the cycle") == 200, main_text(coordinator)
    expect(coordinator.locator("main .notice")).to_contain_text("The immunotherapy cycle was saved.")
    expect(coordinator.locator("#cycle-table")).to_contain_text(days["start"].isoformat())
    j.at(coordinator, "#cycle-table")
    j.snap(coordinator, "cycle-saved", variant="coordinator")

    # 6. the radiologist enters the baseline and the follow-up in the grid; the investigator their response
    j.open(radiologist, GRID)
    for day, sizes in ((days["baseline"], {k: v[4] for k, v in LESIONS.items()}), (days["follow_up"], FOLLOW_UP)):
        radiologist.fill("#n-assessment_date", day.isoformat())
        radiologist.select_option("#n-method", "CT")
        for lesion_id, (*_, lesion_class, _primary) in LESIONS.items():
            if lesion_class == "target":
                radiologist.fill(f"#n-m-{lesion_id}-d", str(sizes[lesion_id]))
            else:
                radiologist.select_option(f"#n-m-{lesion_id}-s", "present")
        if day == days["follow_up"]:
            j.snap(radiologist, "grid-follow-up-typed", variant="entry")
        assert submit(radiologist, "table#assessment-grid tfoot", "Enter the assessment") == 200, main_text(radiologist)
        expect(radiologist.locator("main .notice")).to_have_text("The assessment was entered.")
    irecist = derived_irecist(db)
    last = irecist.timepoints[-1]
    assert str(last.overall) == "iPR", last
    assert cells(radiologist, "sum") == [f"{t.sum_mm:g}" for t in irecist.timepoints] == ["85", "58"]
    assert re.sub(r" \(.*", "", cells(radiologist, "irecist")[-1]) == "iPR"
    j.at(radiologist, "#assessment-grid td.sum")
    j.snap(radiologist, "grid-derived-response", variant="entry")

    j.open(investigator, GRID)
    with read(db) as uow:
        follow_up = max(uow.assessments.for_subject(SUBJECT), key=lambda s: s.value.assessment_date)
    investigator.locator(f"form#r-{follow_up.id} select").select_option("iPR")
    assert submit(investigator, f"form#r-{follow_up.id}", "Save the response") == 200, main_text(investigator)
    expect(investigator.locator("main .notice")).to_have_text("The investigator's response was saved.")
    j.at(investigator, "#assessment-grid td.sum")
    j.snap(investigator, "grid-investigator-response", variant="respond")
    j.in_chinese(investigator, "grid", selector="#assessment-grid td.sum", variant="respond")

    # 7. the investigator records a serious AE, picking the grade from the definitions; the dashboard's SAE clock
    term = load_ctcae().get("Pneumonitis")
    j.open(investigator, f"/patients/{SUBJECT}/ae-log")
    investigator.get_by_role("link", name="Record an adverse event").click()
    expect(investigator.locator("main h1")).to_have_text("Record an adverse event")
    investigator.fill("#ctcae-q", "pneumonitis")
    pick = investigator.locator("#ctcae-results button.term-pick", has_text=term.term).first
    expect(pick).to_be_visible()
    pick.click()
    expect(investigator.locator("#ae-grades legend")).to_contain_text(term.term)
    shown = investigator.locator("#ae-grades li.grade .definition").all_inner_texts()
    assert shown == [term.describe(g) if term.defines(g) else "—" for g in GRADES]
    investigator.locator("#ae-grades label", has_text="Grade 2").click()
    expect(investigator.locator("#ae-grades input[name=grade][value='2']")).to_be_checked()
    aware = dt.datetime.now(ZoneInfo(world.TIME_ZONE)).replace(second=0, microsecond=0) - dt.timedelta(hours=2)
    investigator.fill("#f-onset_date", days["ae_onset"].isoformat())
    investigator.check("#f-serious_hospitalisation")
    investigator.fill("#f-awareness_at", aware.strftime("%Y-%m-%dT%H:%M"))
    investigator.select_option("#f-attribution_cfrt", "probable")
    investigator.select_option("#f-attribution_io", "possible")
    investigator.select_option("#f-outcome", "recovering")
    j.at(investigator, "#ae-grades")
    j.snap(investigator, "ae-grade-definitions", variant="grades")
    with investigator.expect_navigation():
        investigator.locator("form.ae-form").get_by_role("button", name="Save").click()
    expect(investigator.locator("main .notice")).to_have_text("The adverse event was recorded.")
    with read(db) as uow:
        (ae,) = uow.adverse_events.for_subject(SUBJECT)
    assert ae.value.grade == 2 and ae.value.term == term.term
    due = (aware + dt.timedelta(hours=24)).strftime("%Y-%m-%d %H:%M")
    expect(investigator.locator(f"#ae-{ae.id} .sae-clock")).to_contain_text(due)
    j.snap(investigator, "ae-recorded", variant="with-sae")
    switch_language(investigator, "zh_Hans")
    j.snap(investigator, "ae-recorded-zh", variant="with-sae")
    j.open(investigator, f"/patients/{SUBJECT}/ae-log/{ae.id}/edit")
    j.at(investigator, "#ae-grades")
    j.snap(investigator, "ae-grade-definitions-zh", variant="grades")
    switch_language(investigator, "en")
    j.open(investigator, "/")
    sae = investigator.locator("section[aria-labelledby=sae-h]")
    expect(sae.locator("p.big")).to_have_text("1")
    expect(sae).to_contain_text(f"{SUBJECT} · {term.term} · due by {due}")
    j.snap(investigator, "dashboard-sae-clock", variant="with-sae")
    j.in_chinese(investigator, "dashboard", variant="with-sae")

    # 8. the administrator creates the patient's account; the patient answers the questionnaires on the phone
    admin = j.sign_in("admin")
    j.open(admin, "/admin/users/new")
    j.in_chinese(admin, "admin-new-patient-account")
    admin.fill("#n-username", PATIENT_USER)
    admin.fill("#n-full_name", "Journey Patient")
    admin.fill("#n-password", world.PASSWORD)
    admin.fill("#n-subject_id", SUBJECT)
    admin.select_option("#n-site", world.QFS)
    admin.select_option("#n-role", "patient")
    j.snap(admin, "admin-new-patient-account")
    assert submit(admin, "main form", "Create the account") == 200, main_text(admin)
    expect(admin).to_have_url(f"{j.base_url}/admin/users/{PATIENT_USER}?notice=created")
    expect(admin.locator("main .notice")).to_be_visible()

    phone = j.sign_in(PATIENT_USER, phone=True)
    j.open(phone, "/epro")
    expect(phone).to_have_url(f"{j.base_url}/patients/{SUBJECT}/epro")
    j.snap(phone, "epro-overview", variant="phone")
    visit = phone.locator("#next-h").inner_text().rsplit(" ", 1)[-1]
    phone.locator("main a.epro-button.primary").click()
    expect(phone.locator(".epro-question")).to_be_visible()
    j.snap(phone, "epro-question", variant="phone")
    j.in_chinese(phone, "epro-question", variant="phone")
    answered = 0
    while phone.locator(".epro-question").count():
        number = int(phone.locator(".epro-question input[name=item]").get_attribute("value") or "0")
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        options = phone.locator(".epro-option")
        heights = options.evaluate_all("els => els.map(e => e.getBoundingClientRect().height)")
        assert heights and min(heights) >= 44, heights
        options.nth(answered % options.count()).click()
        answered += 1
        expect(phone.locator(f".epro-question input[name=item][value='{number}']")).to_have_count(0)
    assert answered == 43  # QLQ-C30 (30 items) and QLQ-LC13 (13)
    expect(phone.locator("main h1")).to_contain_text("the questionnaire is complete")
    with read(db) as uow:
        answers = [s.value for s in uow.answers.for_subject(SUBJECT) if s.value.visit == visit]
    expected = {s.scale: "—" if s.score is None else f"{s.score:.1f}" for s in score_answers(answers)}
    rows = phone.locator(".epro-scores tr[data-scale]")
    scales = rows.evaluate_all("els => els.map(e => e.dataset.scale)")
    assert dict(zip(scales, phone.locator(".epro-scores td.score").all_inner_texts(), strict=True)) == expected
    j.snap(phone, "epro-scores", variant="phone-complete")
    j.in_chinese(phone, "epro-scores", variant="phone-complete")

    # 9. the PI signs the casebook, the data manager locks it, the statistician downloads the report
    pi = j.sign_in("pi")
    j.open(pi, CASEBOOK)
    expect(pi.locator("#casebook-signatures")).to_contain_text("The casebook has not been signed.")
    j.snap(pi, "casebook", variant="unsigned")
    j.in_chinese(pi, "casebook", variant="unsigned")
    pi.select_option("#cb-meaning", "approved")
    pi.fill("#cb-password", world.PASSWORD)
    assert submit(pi, "#casebook-sign-form", "Sign the casebook") == 200, main_text(pi)
    expect(pi.locator("main .notice").first).to_have_text("You signed the casebook.")
    expect(pi.locator("#casebook-signatures .signature")).to_contain_text("Signed by Test Pi (pi), meaning “approved”")
    j.snap(pi, "casebook-signed", variant="signed")

    dm = j.sign_in("datamanager")
    j.open(dm, CASEBOOK)
    dm.fill("#cb-lock-reason", "casebook complete and signed")
    assert submit(dm, "#casebook-lock-form", "Lock the casebook") == 200, main_text(dm)
    expect(dm.locator("main .notice").first).to_contain_text("The casebook is locked")
    expect(dm.locator("#casebook-lock")).to_contain_text("Locked by datamanager")
    j.snap(dm, "casebook-locked", variant="locked")
    j.in_chinese(dm, "casebook-locked", variant="locked")

    stat = j.sign_in("statistician")
    j.open(stat, "/report")
    stat.fill("#report-cutoff", today().isoformat())
    stat.fill("#report-title", REPORT_TITLE)
    j.snap(stat, "report-form", variant="empty")
    assert submit(stat, "#report-form", "Generate the report") == 200, main_text(stat)
    expect(stat.locator("main .notice").first).to_have_text("The report is being generated.")
    job = stat.locator("#report-jobs li.cb-job").first
    j.snap(stat, "report-running", variant="running")
    expect(job).to_have_attribute("data-status", "done", timeout=240_000)  # htmx polls the job's fragment
    j.snap(stat, "report-done", variant="done")
    with stat.expect_download() as html_download:
        job.get_by_role("link", name="Download HTML").click()
    text = Path(html_download.value.path()).read_text(encoding="utf-8")
    assert f"<title>{REPORT_TITLE}" in text
    with stat.expect_download() as pdf_download:
        job.get_by_role("link", name="Download PDF").click()
    assert Path(pdf_download.value.path()).read_bytes().startswith(b"%PDF-")
    j.in_chinese(stat, "report-done", variant="done")
    j.assert_accessible()
