"""Browser journeys of the radiotherapy plan and treatment pages (issue 12 items 4-5), in Debian's Chromium against
the live app on each backend, signing in through the login form as the person who does the work:

1. a radiologist records a baseline lesion; the radiation oncologist tries an invalid role set (the live check
   shows the broken rule before saving; the save is refused naming it), saves a valid one and prescribes the new
   lesion's course, seeing BED/EQD2 as it is typed;
2. the radiation oncologist enters a low-dose fraction a week late: the week view shows the missed week and the
   interval deviation appears with its class; a coordinator enters an immunotherapy cycle;
3. both pages in Chinese.

Each step leaves ``browser.artifacts_dir()/<test>/NN-step.png``; axe-core checks every page kind in English and
Chinese (no serious or critical violation). The helpers (``Journey``) are ``journey.py``'s, shared by the journeys.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import Page, expect

sys.path.insert(0, str(Path(__file__).parent))
import journey as jr
import world
from journey import Journey, main_text, submit

from abscopal import domain as d

# the shared journey fixtures, found by pytest in this module's namespace
browser_db, live_url, chromium = jr.browser_db, jr.live_url, jr.chromium
axe_checked, journey = jr.axe_checked, jr.journey
LOGIN_STEPS = True  # each sign-in's login page is a step (screenshot and axe-core)

SUBJECT = world.QFS_PATIENT
PLAN = f"/patients/{SUBJECT}/radiotherapy"
TREATMENT = f"/patients/{SUBJECT}/treatment"


def open_page(journey: Journey, page: Page, path: str) -> None:
    journey.open(page, path)
    expect(page.locator("main h1")).to_be_visible()


def test_lesions_and_roles_are_recorded_and_an_invalid_role_set_is_refused_naming_the_rule(journey: Journey) -> None:
    radiologist = journey.sign_in("radiologist")
    open_page(journey, radiologist, PLAN)
    journey.snap(radiologist, "registry")
    form = radiologist.locator("#lesion-form")
    form.locator("#lesion-lesion_id").fill("L08")
    form.locator("#lesion-organ").fill("liver")
    form.locator("#lesion-location").fill("segment VII")
    form.locator("#lesion-measurable").check()
    form.locator("#lesion-baseline_diameter_mm").fill("18")
    form.locator("#lesion-lesion_class").select_option("target")
    assert submit(radiologist, "#lesion-form", "Add the lesion") == 200, main_text(radiologist)
    expect(radiologist.locator("main .notice")).to_contain_text("The lesion was saved.")
    expect(radiologist.locator("#lesion-L08")).to_contain_text("none")
    journey.snap(radiologist, "lesion-added", variant="notice")

    radonc = journey.sign_in("radonc")
    open_page(journey, radonc, PLAN)
    conventional = d.DeviationCheck.CONVENTIONAL_COUNT.value
    radonc.select_option("#role-L06", "conventional")  # the live check answers before anything is saved
    expect(radonc.locator(f"#role-rules li.fail[data-check='{conventional}']")).to_contain_text("2 conventional")
    journey.snap(radonc, "roles-live-check", variant="live")
    radonc.fill("#roles-reason", "re-planning after the multidisciplinary meeting")
    assert submit(radonc, "#roles-form", "Save the RT roles") == 422
    error = radonc.locator("#roles-error")
    expect(error).to_contain_text("they break the protocol's role rules")
    expect(error).to_contain_text(f"{conventional}: 2 conventional lesion(s); the protocol allows 1 to 1")
    journey.snap(radonc, "roles-refused", variant="refused")

    radonc.select_option("#role-L06", "observation")
    radonc.select_option("#role-L08", "low_dose")
    expect(radonc.locator("#role-rules .rt-summary")).to_contain_text("Every role rule is met.")
    radonc.fill("#roles-reason", "L08 added to the low-dose lesions")
    assert submit(radonc, "#roles-form", "Save the RT roles") == 200, main_text(radonc)
    expect(radonc.locator("main .notice")).to_contain_text("The RT roles were saved.")
    expect(radonc.locator("#lesion-L08")).to_contain_text("low_dose")

    course = radonc.locator("#course-form")
    course.locator("#course-lesion_id").select_option("L08")
    course.locator("#course-dose_per_fraction_gy").fill("1.6")
    course.locator("#course-fractions").fill("5")
    course.locator("#course-start_date").fill("2023-07-17")
    expect(radonc.locator("#course-check [data-value='bed']")).to_contain_text("Gy")
    expect(radonc.locator("#course-check .rt-summary")).to_contain_text("Within the protocol's regimen.")
    journey.snap(radonc, "course-live-check", variant="course")
    assert submit(radonc, "#course-form", "Save the prescription") == 200, main_text(radonc)
    expect(radonc.locator("main .notice")).to_contain_text("The prescription was saved.")
    expect(radonc.locator("#rt-doses tr[data-lesion='L08'] [data-value='prescribed']")).to_have_text("8.00")
    journey.snap(radonc, "course-saved", variant="notice")
    journey.assert_accessible()


def test_a_fraction_entered_a_week_late_shows_the_gap_and_its_deviation(journey: Journey) -> None:
    radonc = journey.sign_in("radonc")
    open_page(journey, radonc, TREATMENT)
    journey.snap(radonc, "treatment")
    form = radonc.locator("#fraction-form")
    form.locator("#fraction-lesion_id").select_option("L03")
    form.locator("#fraction-date").fill("2023-08-21")  # 14 days after fraction 5: a week without one
    form.locator("#fraction-dose_gy").fill("1.6")
    form.locator("#fraction-status").select_option("delivered")
    assert submit(radonc, "#fraction-form", "Save the fraction") == 200, main_text(radonc)
    expect(radonc.locator("main .notice")).to_contain_text("recorded automatically")
    expect(radonc.locator("#week-view tr[data-week='2023-W33']")).to_have_class("gap")
    expect(radonc.locator("#week-view tr[data-week='2023-W34']")).to_contain_text("#6 2023-08-21")
    interval = d.DeviationCheck.LDRT_INTERVAL.value
    row = radonc.locator("table.rt-deviations tr", has_text=interval).filter(has_text="L03")
    expect(row.first).to_contain_text("minor")
    journey.snap(radonc, "fraction-deviation", variant="notice")

    coordinator = journey.sign_in("coordinator")
    open_page(journey, coordinator, TREATMENT)
    cycle = coordinator.locator("#cycle-form")
    cycle.locator("#cycle-date").fill("2024-03-22")
    cycle.locator("#cycle-dose").fill("200")
    cycle.locator("#cycle-dose_unit").fill("mg")
    assert submit(coordinator, "#cycle-form", "Save the cycle") == 200, main_text(coordinator)
    expect(coordinator.locator("main .notice")).to_contain_text("The immunotherapy cycle was saved.")
    expect(coordinator.locator("#cycle-table")).to_contain_text("2024-03-22")
    journey.snap(coordinator, "cycle-saved", variant="coordinator")
    journey.assert_accessible()


def test_the_radiotherapy_and_treatment_pages_in_chinese(journey: Journey) -> None:
    jr.skip_chinese_on_postgresql(journey)
    from abscopal.web import i18n, templating

    i18n.translations.cache_clear()  # the live server runs in this process: compile the catalogs as they are now
    templating.environment.cache_clear()
    radonc = journey.sign_in("radonc")
    csrf = radonc.locator("meta[name=csrf-token]").get_attribute("content") or ""
    radonc.request.post("/language", form={"csrf_token": csrf, "language": "zh_Hans", "next": PLAN})
    try:
        open_page(journey, radonc, PLAN)
        expect(radonc.locator("html")).to_have_attribute("lang", "zh-Hans")
        expect(radonc.locator("main h1")).to_contain_text("放疗计划")
        journey.snap(radonc, "plan-zh")
        radonc.select_option("#role-L06", "low_dose")
        expect(radonc.locator("#role-rules .rt-summary")).to_contain_text("条角色规则未满足")
        journey.snap(radonc, "plan-zh-live", variant="live")
        open_page(journey, radonc, TREATMENT)
        expect(radonc.locator("main h1")).to_contain_text("治疗实施")
        journey.snap(radonc, "treatment-zh")
    finally:
        radonc.request.post("/language", form={"csrf_token": csrf, "language": "en", "next": "/"})
    journey.assert_accessible()
