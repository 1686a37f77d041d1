"""Browser journeys of the adverse-event log and the ePRO pages (issue 12 items 7 and 8), in Debian's Chromium
against the app served by uvicorn, signing in through the login form as the person who does the work:

1. an investigator records an adverse event: searches the CTCAE v5.0 dictionary (htmx), picks the term, sees each
   grade's definition (equal to the dictionary's) and picks one, marks it serious; the log shows it with the SAE
   report clock; the log and the form in Chinese;
2. the patient, on a 360 x 740 phone viewport, answers QLQ-C30 then QLQ-LC13 one item per screen: no horizontal
   scroll and every answer control at least 44 px high on every screen; a reload part-way resumes at the next
   item (each answer was stored as it was given); the scale scores at the end equal the QoL engine's for the
   stored answers; the question and score screens in Chinese;
3. a coordinator opens the ePRO start page and a paper form's transcription, in English and Chinese.

Screenshots: ``browser.artifacts_dir()/<test>/NN-step.png``; axe-core runs on every distinct page (route, variant,
language) and a serious or critical violation fails the journey. One browser per module, one live server per
backend (SQLite and PostgreSQL).
"""

from __future__ import annotations

import html
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, ViewportSize, expect

sys.path.insert(0, str(Path(__file__).parent))
import journey as jr
import world
from journey import Journey, switch_language

from abscopal.qol import score_answers
from abscopal.safety.ctcae import GRADES, load_ctcae
from abscopal.store.unit_of_work import UnitOfWork

# the shared journey fixtures, found by pytest in this module's namespace
browser_db, live_url, chromium = jr.browser_db, jr.live_url, jr.chromium
axe_checked, journey = jr.axe_checked, jr.journey
LOGIN_STEPS = True  # each sign-in's login page is a step (screenshot and axe-core); not the phone's

S = world.QFS_PATIENT
PHONE: ViewportSize = {"width": 360, "height": 740}
#: A phone-sized, touch browser context.
ON_PHONE: dict[str, Any] = {"viewport": PHONE, "has_touch": True, "is_mobile": True}


# --- 1. an investigator records an AE, picking the grade from the definitions


def test_an_investigator_records_an_ae_picking_a_grade_from_the_definitions(journey: Journey, browser_db: Any) -> None:
    term = load_ctcae().get("Pneumonitis")
    page = journey.sign_in("investigator")
    journey.open(page, f"/patients/{S}/ae-log")
    journey.snap(page, "ae-log")
    page.get_by_role("link", name="Record an adverse event").click()
    expect(page.locator("main h1")).to_have_text("Record an adverse event")
    page.fill("#ctcae-q", "pneumonitis")  # htmx searches as the user types
    pick = page.locator("#ctcae-results button.term-pick", has_text=term.term).first
    expect(pick).to_be_visible()
    journey.snap(page, "ae-search")
    pick.click()
    legend = page.locator("#ae-grades legend")
    expect(legend).to_contain_text(term.term)
    shown = page.locator("#ae-grades li.grade .definition").all_inner_texts()
    assert shown == [term.describe(g) if term.defines(g) else "—" for g in GRADES]
    page.locator("#ae-grades label", has_text="Grade 2").click()
    expect(page.locator("#ae-grades input[name=grade][value='2']")).to_be_checked()
    page.fill("#f-onset_date", "2026-11-25")
    page.check("#f-serious_hospitalisation")
    page.fill("#f-awareness_at", "2026-11-30T09:30")
    page.select_option("#f-attribution_cfrt", "probable")
    page.select_option("#f-attribution_io", "possible")
    page.select_option("#f-outcome", "recovering")
    journey.snap(page, "ae-grade-picked", variant="grades")
    with page.expect_navigation():
        page.locator("form.ae-form").get_by_role("button", name="Save").click()
    expect(page.locator("main .notice")).to_have_text("The adverse event was recorded.")
    with UnitOfWork(browser_db.engine, "test", "read") as uow:
        stored = [s for s in uow.adverse_events.for_subject(S) if s.value.onset_date.isoformat() == "2026-11-25"]
    assert len(stored) == 1 and stored[0].value.grade == 2 and stored[0].value.term == term.term
    row = page.locator(f"#ae-{stored[0].id}")
    expect(row).to_contain_text("SAE")
    expect(row.locator(".sae-clock")).to_contain_text("2026-12-01 09:30+08:00")
    journey.snap(page, "ae-recorded", variant="with-sae")

    switch_language(page, "zh_Hans", check=True)
    journey.snap(page, "ae-log-zh", variant="with-sae")
    journey.open(page, f"/patients/{S}/ae-log/{stored[0].id}/edit")
    expect(page.locator("#ae-grades input[name=grade][value='2']")).to_be_checked()
    journey.snap(page, "ae-edit-zh", variant="grades")
    switch_language(page, "en", check=True)
    journey.snap(page, "ae-edit", variant="grades")
    journey.assert_accessible()


# --- 2. the patient completes the questionnaire on the phone and the scores appear


def _check_phone_layout(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"horizontal scroll: scrollWidth {width}"
    heights = page.locator(".epro-option").evaluate_all("els => els.map(e => e.getBoundingClientRect().height)")
    assert heights and min(heights) >= 44, heights


def test_a_patient_completes_the_questionnaire_on_the_phone_viewport_and_the_score_appears(
    journey: Journey, browser_db: Any
) -> None:
    page = journey.sign_in("patient", login_step=False, **ON_PHONE)
    journey.open(page, "/epro")
    expect(page).to_have_url(f"{journey.base_url}/patients/{S}/epro")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    journey.snap(page, "epro-overview", variant="phone")
    heading = page.locator("#next-h").inner_text()
    visit = heading.rsplit(" ", 1)[-1]
    page.locator("main a.epro-button.primary").click()
    expect(page.locator(".epro-question")).to_be_visible()
    journey.snap(page, "epro-first-question", variant="phone")

    answered = 0
    resumed = False
    while page.locator(".epro-question").count():
        number = int(page.locator(".epro-question input[name=item]").get_attribute("value") or "0")
        _check_phone_layout(page)
        options = page.locator(".epro-option")
        options.nth(answered % options.count()).click()  # touch the answer: it is stored at once
        answered += 1
        expect(page.locator(f".epro-question input[name=item][value='{number}']")).to_have_count(0)
        if answered == 5 and not resumed:  # the connection drops: reopening resumes at the next item
            resumed = True
            page.goto(f"/patients/{S}/epro/{visit}")
            expect(page.locator(".epro-question input[name=item]")).to_have_value(str(number + 1))
            journey.snap(page, "epro-resumed", variant="phone")
        if number == 30:
            journey.snap(page, "epro-lc13-starts", variant="phone")
    assert answered == 43
    expect(page.locator("main h1")).to_contain_text("the questionnaire is complete")
    with UnitOfWork(browser_db.engine, "test", "read") as uow:
        stored = [s.value for s in uow.answers.for_subject(S) if s.value.visit == visit]
    assert len(stored) == 43
    expected = {s.scale: "—" if s.score is None else f"{s.score:.1f}" for s in score_answers(stored)}
    rows = page.locator(".epro-scores tr[data-scale]")
    shown = dict(
        zip(
            rows.evaluate_all("els => els.map(e => e.dataset.scale)"),
            page.locator(".epro-scores td.score").all_inner_texts(),
            strict=True,
        )
    )
    assert shown == expected
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    journey.snap(page, "epro-scores", variant="phone-complete")

    switch_language(page, "zh_Hans", check=True)
    journey.snap(page, "epro-scores-zh", variant="phone-complete")
    journey.open(page, f"/patients/{S}/epro/{visit}?item=1")
    _check_phone_layout(page)
    journey.snap(page, "epro-question-zh", variant="phone")
    journey.open(page, f"/patients/{S}/epro")
    journey.snap(page, "epro-overview-zh", variant="phone")
    switch_language(page, "en", check=True)
    journey.assert_accessible()


# --- 3. the coordinator's pages: the start page and the transcription of a paper form


def test_a_coordinator_opens_the_transcription_of_a_paper_form(journey: Journey) -> None:
    page = journey.sign_in("coordinator")
    journey.open(page, "/epro")
    journey.snap(page, "epro-start", variant="staff")
    journey.open(page, f"/patients/{S}/epro")
    journey.snap(page, "epro-overview", variant="staff")
    page.locator("main a", has_text="Transcribe a paper form").first.click()
    expect(page.locator("main h1")).to_have_text("Transcribe a paper form")
    with page.expect_navigation():
        page.locator("form.epro-transcribe").get_by_role("button", name="Save the transcription").click()
    expect(page.locator("#f-reason-error")).to_contain_text("behalf")
    journey.snap(page, "transcribe-refused", variant="refused")
    switch_language(page, "zh_Hans", check=True)
    journey.open(page, f"/patients/{S}/epro/transcribe")
    journey.snap(page, "transcribe-zh")
    journey.open(page, "/epro")
    journey.snap(page, "epro-start-zh", variant="staff")
    switch_language(page, "en", check=True)
    assert html.unescape(page.locator("main h1").inner_text()) == "Questionnaires"
    journey.assert_accessible()
