"""Browser journey of the dashboard, the lists behind its numbers and the patient page's schedule (issue 12 item 9):
real headless Chromium (Debian's package) against the app on loopback, signing in through the login form.

1. a monitor reads the dashboard; a radiation oncologist's prescription outside the protocol (entered on the
   radiotherapy page's API twin, the services) raises a deviation that the dashboard counts at once and its list
   shows; the overdue-visits number opens its list, a row opens the patient's schedule;
2. the same pages in Chinese.

axe-core runs on every kind of page reached, in English and Chinese (zero serious/critical); screenshots are saved
in ``browser.artifacts_dir()/<test>/NN-step.png``.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

sys.path.insert(0, str(Path(__file__).parent))
import journey as jr
import world
from journey import Journey, switch_language

from abscopal import domain as d
from abscopal.store.unit_of_work import UnitOfWork

# the shared journey fixtures, found by pytest in this module's namespace
browser_db, live_url, chromium = jr.browser_db, jr.live_url, jr.chromium
axe_checked, journey = jr.axe_checked, jr.journey


def _count(page: Any, href: str) -> int:
    text = page.locator(f'main a[href="{href}"]').first.inner_text()
    return int(re.sub(r"\D", "", text))


def test_a_new_deviation_shows_on_the_dashboard_and_each_number_opens_its_list(
    journey: Journey, browser_db: Any
) -> None:
    page = journey.sign_in("monitor")
    expect(page.locator("main h1")).to_have_text("Dashboard")
    journey.snap(page, "dashboard")
    before = _count(page, "/worklist/deviations")
    with UnitOfWork(browser_db.engine, "radonc", "journey: a prescription below the protocol's dose") as uow:
        uow.deviations.add(
            d.ProtocolDeviation(world.QFS_PATIENT, d.DeviationCheck.CFRT_PRESCRIPTION, d.DeviationClass.MAJOR,
                                "36 Gy", "total dose 36 Gy below the protocol's 40-60 Gy", date=dt.date(2024, 5, 6))
        )  # fmt: skip
        uow.commit()
    page.reload()
    assert _count(page, "/worklist/deviations") == before + 1
    page.locator('main a[href="/worklist/deviations"]').first.click()
    expect(page.locator("main h1")).to_have_text("Protocol deviations")
    expect(page.locator("main table")).to_contain_text("total dose 36 Gy below the protocol's 40-60 Gy")
    journey.snap(page, "deviations")

    journey.open(page, "/")
    overdue = _count(page, "/worklist/visits?status=overdue")
    page.locator('main a[href="/worklist/visits?status=overdue"]').first.click()
    expect(page.locator("main h1")).to_have_text("Overdue visits")
    assert page.locator("main table tbody tr").count() == min(overdue, 200)
    journey.snap(page, "overdue-visits")
    page.locator("main table tbody tr th a").first.click()
    expect(page.locator("#schedule-h")).to_have_text("Schedule")
    expect(page.locator("#schedule svg.timeline")).to_be_visible()
    journey.snap(page, "patient-schedule")
    journey.open(page, "/worklist/saes")
    journey.snap(page, "saes")
    journey.open(page, "/worklist/visits?status=due")
    journey.snap(page, "due-visits")
    journey.assert_accessible()


def test_the_dashboard_and_its_lists_in_chinese(journey: Journey) -> None:
    jr.skip_chinese_on_postgresql(journey)
    page = journey.sign_in("coordinator")
    switch_language(page, "zh_Hans")
    try:
        expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
        expect(page.locator("#visits-h")).to_have_text("访视")
        journey.snap(page, "dashboard-zh")
        for path, label in (
            ("/worklist/visits?status=overdue", "overdue-zh"),
            ("/worklist/deviations", "deviations-zh"),
            ("/worklist/saes", "saes-zh"),
            (f"/patients/{world.QFS_PATIENT}", "patient-zh"),
        ):
            journey.open(page, path)
            journey.snap(page, label)
    finally:
        switch_language(page, "en")
    journey.assert_accessible()
