"""Browser journey of the tumour-assessment grid (issue 12 item 6 and its journey "enter two assessments and see the
derived iRECIST response and a discrepancy query"): real headless Chromium (Debian's package) against the app served
by uvicorn on loopback, signing in through the login form as the people who do the work.

1. the radiologist enters two assessments in the grid: the first brings a new lesion (iUPD, shown awaiting
   confirmation with its window), the second confirms it (iCPD); a negative diameter is refused beside its cell;
   the numbers and responses the page shows equal the response engine's for the stored records;
2. the investigator records a response that differs from the derived one: the cell is highlighted and the data
   query raised by the service is listed under the column;
3. the investigator switches to Chinese and the grid (with its plots) is shown in Chinese.

axe-core runs on every kind of page reached, in English and Chinese (zero serious/critical); screenshots are saved
in ``browser.artifacts_dir()/<test>/NN-step.png``. One browser per module, one live server and database per backend.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

sys.path.insert(0, str(Path(__file__).parent))
import journey as jr
import world
from journey import Journey, submit

from abscopal import domain as d
from abscopal.protocol import radiotherapy as rt
from abscopal.response import Criteria, SubjectFacts, SubjectResponse, derive_subject
from abscopal.services.common import protocol_of
from abscopal.store.unit_of_work import UnitOfWork

# the shared journey fixtures, found by pytest in this module's namespace
browser_db, live_url, chromium = jr.browser_db, jr.live_url, jr.chromium
axe_checked, journey = jr.axe_checked, jr.journey
LOGIN_STEPS = True  # each sign-in's login page is a step (screenshot and axe-core)

SUBJECT = world.QFS_PATIENT  # the cohort's patient still without progression: a new lesion makes an iUPD
GRID = f"/patients/{SUBJECT}/assessment-grid"


# --- the stored records and the engine's reading of them


def stored(db: Any) -> tuple[list[d.Lesion], list[Any]]:
    with UnitOfWork(db.engine, "test", "read") as uow:
        lesions = [s.value for s in uow.lesions.for_subject(SUBJECT)]
        assessments = sorted(uow.assessments.for_subject(SUBJECT), key=lambda s: s.value.assessment_date)
    return lesions, assessments


def derived(db: Any, criteria: Criteria) -> SubjectResponse:
    with UnitOfWork(db.engine, "test", "read") as uow:
        patient = uow.patients.find(subject_id=SUBJECT)
        assert patient is not None
        assessments = [s.value for s in uow.assessments.for_subject(SUBJECT)]
        fractions = [s.value for s in uow.fractions.for_subject(SUBJECT)]
        cycles = [s.value for s in uow.immunotherapy_cycles.for_subject(SUBJECT)]
    p = patient.value
    facts = SubjectFacts(SUBJECT, rt.first_study_treatment(fractions, cycles, p.enrolment_date), p.death_date,
                         p.new_therapy_date)  # fmt: skip
    return derive_subject(assessments, facts, protocol_of(p, None).response, criteria)


def cells(page: Page, css: str) -> list[str]:
    return [" ".join(t.split()) for t in page.locator(f"#assessment-grid td.{css}").all_inner_texts()]


def fill_column(page: Page, lesions: list[d.Lesion], last: d.TumourAssessment, day: dt.date) -> None:
    """The new column: the date, CT, each target as last time, each non-target present."""
    previous = {m.lesion_id: m for m in last.measurements}
    page.fill("#n-assessment_date", day.isoformat())
    page.select_option("#n-method", "CT")
    for x in lesions:
        if x.lesion_class is d.LesionClass.TARGET:
            m = previous[x.lesion_id]
            page.fill(f"#n-m-{x.lesion_id}-d", f"{m.diameter_mm:g}")
        elif x.lesion_class is d.LesionClass.NON_TARGET:
            page.select_option(f"#n-m-{x.lesion_id}-s", "present")


def enter(page: Page) -> int:
    return submit(page, "table#assessment-grid tfoot", "Enter the assessment")


# --- the journey


def test_the_radiologist_enters_two_assessments_and_the_investigators_differing_response_raises_a_query(
    journey: Journey, browser_db: Any
) -> None:
    lesions, assessments = stored(browser_db)
    last = assessments[-1].value
    first_day = last.assessment_date + dt.timedelta(weeks=6)
    second_day = first_day + dt.timedelta(weeks=6)

    radiologist = journey.sign_in("radiologist")
    journey.open(radiologist, GRID)
    expect(radiologist.locator("main h1")).to_contain_text(SUBJECT)
    journey.snap(radiologist, "grid", variant="entry")

    # a negative diameter: refused, the sentence beside its cell, nothing saved
    fill_column(radiologist, lesions, last, first_day)
    target = next(x for x in lesions if x.lesion_class is d.LesionClass.TARGET)
    radiologist.fill(f"#n-m-{target.lesion_id}-d", "-3")
    assert enter(radiologist) == 422
    cell = radiologist.locator(f"#n-m-{target.lesion_id}-d")
    expect(cell).to_have_attribute("aria-invalid", "true")
    expect(radiologist.locator(f"#n-m-{target.lesion_id}-d-error")).to_contain_text("not plausible")
    journey.snap(radiologist, "negative-diameter-refused", variant="error")
    assert len(stored(browser_db)[1]) == len(assessments)

    # 1st assessment: a new lesion -> iUPD, awaiting confirmation with its window
    fill_column(radiologist, lesions, last, first_day)
    radiologist.fill("#n-new-organ", "liver")
    radiologist.fill("#n-new-d", "14")
    assert enter(radiologist) == 200
    expect(radiologist.locator("main .notice")).to_have_text("The assessment was entered.")
    irecist = derived(browser_db, Criteria.IRECIST)
    assert str(irecist.timepoints[-1].overall) == "iUPD"
    expect(radiologist.locator("p.pending")).to_contain_text(first_day.isoformat())
    assert cells(radiologist, "irecist")[-1].startswith("iUPD")
    journey.snap(radiologist, "iupd-awaiting-confirmation", variant="pending")

    # 2nd assessment: the new lesion grows by 6 mm -> iCPD
    lesions, assessments = stored(browser_db)
    fill_column(radiologist, lesions, assessments[-1].value, second_day)
    radiologist.fill("#n-m-N01-d", "20")
    assert enter(radiologist) == 200
    irecist = derived(browser_db, Criteria.IRECIST)
    recist = derived(browser_db, Criteria.RECIST11)
    assert str(irecist.timepoints[-1].overall) == "iCPD"
    expect(radiologist.locator("p.pending")).to_have_count(0)
    assert [re.sub(r" \(.*", "", c) for c in cells(radiologist, "irecist")] == [
        str(t.overall) if t.overall is not None else "—" for t in irecist.timepoints
    ]
    assert [c for c in cells(radiologist, "recist11")] == [
        str(t.overall) if t.overall is not None else "—" for t in recist.timepoints
    ]
    assert cells(radiologist, "sum") == [f"{t.sum_mm:g}" if t.sum_mm is not None else "—" for t in irecist.timepoints]
    journey.snap(radiologist, "icpd-confirmed", variant="entry")

    # the column in edit mode (reason and version), then left without saving
    _, assessments = stored(browser_db)
    journey.open(radiologist, f"{GRID}?edit={assessments[-1].id}")
    expect(radiologist.locator("#e-reason")).to_be_visible()
    journey.snap(radiologist, "edit-column", variant="edit")

    # the investigator's own call differs from the derived iCPD: highlighted, and the service's query listed
    investigator = journey.sign_in("investigator")
    journey.open(investigator, GRID)
    record = assessments[-1]
    form = investigator.locator(f"form#r-{record.id}")
    form.locator("select").select_option("iSD")
    assert submit(investigator, f"form#r-{record.id}", "Save the response") == 200
    expect(investigator.locator("main .notice")).to_contain_text("a data query was raised")
    column = len(assessments) - 1
    response_cell = investigator.locator("#assessment-grid td.investigator-response").nth(column)
    expect(response_cell).to_have_class(re.compile(r"\bdiscrepant\b"))
    expect(response_cell).to_contain_text("differs from the derived iCPD")
    expect(investigator.locator("#assessment-grid td.queries").nth(column)).to_contain_text(
        "Please review the investigator response"
    )
    journey.snap(investigator, "discrepancy-query", variant="respond")
    with UnitOfWork(browser_db.engine, "test", "read") as uow:
        raised = [q.value for q in uow.queries.for_subject(SUBJECT) if q.value.record_id == record.id]
    assert [q.field for q in raised] == ["investigator_response"]

    # the same grid in Chinese (axe runs on it too)
    investigator.select_option("#language-switch", label="中文（简体）")
    submit(investigator, "header form[action='/language']", "Switch")
    expect(investigator.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(investigator.locator("main h1")).to_contain_text("肿瘤评估")
    journey.snap(investigator, "grid-zh", variant="respond")
    investigator.locator("section.plots").scroll_into_view_if_needed()
    journey.snap(investigator, "plots-zh", variant="respond", full_page=False)
    csrf = investigator.locator("meta[name=csrf-token]").get_attribute("content") or ""
    investigator.request.post("/language", form={"csrf_token": csrf, "language": "en", "next": "/"})
    journey.assert_accessible()


def test_a_reader_sees_the_grid_and_its_plots_in_both_languages(journey: Journey) -> None:
    monitor = journey.sign_in("monitor")
    journey.open(monitor, GRID)
    expect(monitor.locator("figure.spider svg")).to_be_visible()
    expect(monitor.locator("form#f-new")).to_have_count(0)
    journey.snap(monitor, "grid-read-only", variant="read")
    monitor.select_option("#language-switch", label="中文（简体）")
    submit(monitor, "header form[action='/language']", "Switch")
    expect(monitor.locator("html")).to_have_attribute("lang", "zh-Hans")
    journey.snap(monitor, "grid-read-only-zh", variant="read")
    csrf = monitor.locator("meta[name=csrf-token]").get_attribute("content") or ""
    monitor.request.post("/language", form={"csrf_token": csrf, "language": "en", "next": "/"})
    journey.assert_accessible()
