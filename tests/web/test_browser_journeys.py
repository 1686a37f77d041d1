"""Browser journeys (web.md §3, §8, §9; issue 11): real headless Chromium (Debian's package, through
``browser.launch``) against the app served by uvicorn on loopback, signing in through the login form.

1. every account of the test world signs in and sees only what its role may (the menu, the patient list, 403 and
   404 pages);
2. a data manager raises a query on a record, a coordinator answers it in the inbox and the data manager closes it;
3. two people edit the same record: the second save is refused (409) and shows the other person's value and name;
4. a locked record refuses edits with who locked it and when (423) until the data manager unlocks it;
5. the header's language switch turns the page into Chinese (``<html lang="zh-Hans">``; each menu label and
   header button is its msgstr in ``locales/zh_Hans/.../messages.po`` as that file is at test time, or stays
   English while its msgstr is empty), the choice is kept on the account, and switching back restores English.

Every key step leaves a screenshot in ``browser.artifacts_dir()/<test name>/NN-step.png``, and axe-core runs on
every distinct page of the module (a page kind, by route, state and language, is checked the first time a journey
reaches it); a serious or critical violation fails the journey with the rule ids and the selectors.

One browser per module, and one live server and one database per backend: every journey runs on SQLite and on
PostgreSQL.
The browser contexts bypass the Content-Security-Policy only so that axe-core can be injected (an inline script
the app's CSP refuses, as it should); the CSP itself is tested by the page and security tests. ``expect``
waits up to 15 s (not Playwright's 5 s): the suite runs on two cores beside other workers.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from playwright.sync_api import Page, expect

sys.path.insert(0, str(Path(__file__).parent))
import journey as jr
import world
from journey import Journey, main_text, submit

from abscopal.domain import Role

ZH_PO = Path(__file__).resolve().parents[2] / "src/abscopal/web/locales/zh_Hans/LC_MESSAGES/messages.po"
DATE_TIME = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}"

#: The menu's links and their English labels (what each role may open: web.md §2).
NAV_LABELS = {
    "/": "Dashboard",
    "/patients": "Patients",
    "/queries": "Queries",
    "/audit": "Audit trail",
    "/report": "Trial report",
    "/exports": "Exports",
    "/imports/dicom": "DICOM RT import",
    "/admin/users": "Users",
    "/admin/sites": "Sites",
    "/profile": "Profile",
}
GUARDED = ["/patients", "/queries", "/audit", "/admin/users", "/admin/sites"]
AUDIT_READERS = frozenset({Role.INVESTIGATOR, Role.DATA_MANAGER, Role.MONITOR, Role.ADMIN})
EXPORTERS = frozenset({Role.DATA_MANAGER, Role.STATISTICIAN})
DICOM_IMPORTERS = frozenset({Role.DATA_MANAGER, Role.RADONC})


def expected_nav(username: str) -> set[str]:
    role = world.USERS[username]
    if role is Role.ADMIN:
        return {"/", "/audit", "/admin/users", "/admin/sites", "/profile"}
    if role is Role.PATIENT:
        return {"/", "/patients", "/profile"}
    return (
        {"/", "/patients", "/queries", "/profile"}
        | ({"/audit"} if role in AUDIT_READERS else set())
        | ({"/report", "/exports"} if role in EXPORTERS else set())
        | ({"/imports/dicom"} if role in DICOM_IMPORTERS else set())
    )


# --- fixtures: one database, one server, one browser for the module (tests/web/journey.py)

LOGIN_STEPS = True  # each sign-in's login page is a step: a screenshot and axe-core on it
browser_db, live_url, chromium = jr.browser_db, jr.live_url, jr.chromium
axe_checked, journey = jr.axe_checked, jr.journey


def nav_links(page: Page) -> dict[str, str]:
    pairs = page.locator("header nav a").evaluate_all("els => els.map(a => [a.getAttribute('href'), a.innerText])")
    return {str(href): str(text) for href, text in pairs}


def listed_sites(page: Page) -> set[str]:
    """The site column of the patient list."""
    return set(page.locator("#patient-table tbody tr td:nth-of-type(1)").all_inner_texts())


def assert_refusal(page: Page, status: int) -> None:
    """The error page: its status in the heading and a sentence saying why."""
    expect(page.locator("main h1")).to_contain_text(str(status))
    sentence = page.locator("main .error p").first.inner_text().strip()
    assert len(sentence.split()) >= 3, f"the {status} page gives no sentence: {sentence!r}"


def record_link(page: Page, section: str, label: str | None = None) -> str:
    """The href of a record in a section of the patient page (the first, or the one labelled ``label``)."""
    links = page.locator(f"section#{section} table a")
    link = links.get_by_text(label, exact=True) if label else links.first
    href = link.get_attribute("href")
    assert href, f"no record in section {section}"
    return href


# --- 1. each role sees only what it may


#: The accounts signed in on PostgreSQL too (every account on SQLite): the menu and the guards are the permission
#: table's, not the store's; these cover a writer, the other site, the patient and the administrator.
PG_ACCOUNTS = frozenset({"datamanager", "coordinator2", "radonc", "patient", "admin"})


@pytest.mark.parametrize("username", list(world.USERS))
def test_each_account_signs_in_through_the_form_and_sees_only_what_its_role_may(
    journey: Journey, username: str, browser_db: Any
) -> None:
    if browser_db.backend != "sqlite" and username not in PG_ACCOUNTS:
        pytest.skip(f"on PostgreSQL the accounts {', '.join(sorted(PG_ACCOUNTS))} sign in (every account on SQLite)")
    role = world.USERS[username]
    page = journey.sign_in(username)
    variant = "admin" if role is Role.ADMIN else "patient" if role is Role.PATIENT else "staff"
    journey.snap(page, "dashboard", variant=variant)
    nav = nav_links(page)
    assert set(nav) == expected_nav(username), nav

    if role is Role.PATIENT:
        assert nav["/patients"] == "My questionnaires"
        page.locator("header nav").get_by_role("link", name="My questionnaires").click()
        expect(page).to_have_url(f"{journey.base_url}/patients/{world.SUBJECT_OF[username]}")
        expect(page.locator("main h1")).to_have_text("My questionnaires")
        assert page.locator("main section.resource").evaluate_all("els => els.map(e => e.id)") == ["questionnaires"]
        journey.snap(page, "own-questionnaires", variant="own", full_page=False)
        journey.open(page, "/queries")  # no inbox for a patient: its own questionnaires instead
        expect(page).to_have_url(f"{journey.base_url}/patients/{world.SUBJECT_OF[username]}")
    for href in sorted(set(nav) - {"/"}):
        if role is Role.PATIENT and href == "/patients":
            continue
        journey.open(page, href)
        assert page.locator("header nav a[aria-current=page]").get_attribute("href") == href
        journey.snap(page, href.strip("/").replace("/", "-"), variant="list" if href == "/patients" else "")
        if href == "/patients":
            sites = listed_sites(page)
            if username in world.ALL_SITES:
                assert sites == {world.QFS, world.JNC}, sites
            else:
                assert sites == {world.SITE_OF[username]}, sites

    for href in GUARDED:
        if href in nav or (role is Role.PATIENT and href == "/queries"):
            continue
        journey.open(page, href, status=403)
        assert_refusal(page, 403)
        journey.snap(page, f"refused{href.replace('/', '-')}", variant="403")

    if role is Role.ADMIN:
        journey.open(page, f"/patients/{world.JNC_PATIENT}", status=403)
        assert_refusal(page, 403)
        journey.snap(page, "refused-patient", variant="403")
    elif username in world.ALL_SITES:
        journey.open(page, f"/patients/{world.JNC_PATIENT}")
        expect(page.locator("main h1")).to_contain_text(world.JNC_PATIENT)
        journey.snap(page, "other-site-patient", variant="pseudonymised")
    else:
        other = world.QFS_PATIENT if world.SITE_OF[username] == world.JNC else world.JNC_PATIENT
        journey.open(page, f"/patients/{other}", status=404)
        assert_refusal(page, 404)
        journey.snap(page, "other-site-patient", variant="404")
    journey.assert_accessible()


# --- 2. the query lifecycle across three people's sessions


def test_a_data_manager_raises_a_query_a_coordinator_answers_it_and_the_data_manager_closes_it(
    journey: Journey,
) -> None:
    question = "The source notes say grade 3, the CRF grade 2: which is right?"
    answer = "Grade 3: the CRF is corrected from the discharge letter."
    dm = journey.sign_in("datamanager")
    journey.open(dm, f"/patients/{world.QFS_PATIENT}")
    journey.snap(dm, "patient", variant="staff", full_page=False)  # a long page: its top is enough
    record = record_link(dm, "adverse-events")
    journey.open(dm, record)
    journey.snap(dm, "record", variant="adverse-events")
    dm.select_option("#query-field", "grade")
    dm.fill("#query-text", question)
    assert submit(dm, "form[action$='/query']", "Raise the query") == 200
    expect(dm.locator("main .notice")).to_have_text("The query was raised.")
    row = dm.locator("section[aria-labelledby=queries-h] tbody tr", has_text=question)
    expect(row).to_contain_text("open")
    expect(row).to_contain_text("datamanager")
    journey.snap(dm, "query-raised", variant="with-query")

    coordinator = journey.sign_in("coordinator")
    journey.open(coordinator, "/queries")
    row = coordinator.locator("table.inbox tbody tr", has_text=question)
    expect(row.locator(".badge")).to_have_text("open")
    journey.snap(coordinator, "inbox-open", variant="answer")
    row.get_by_label("Your answer").fill(answer)
    row.get_by_role("button", name="Answer").click()  # htmx swaps the row
    row = coordinator.locator("table.inbox tbody tr", has_text=question)
    expect(row.locator(".badge")).to_have_text("answered")
    expect(row).to_contain_text("Answer by coordinator:")
    expect(row).to_contain_text(answer)
    journey.snap(coordinator, "inbox-answered", variant="answered")

    journey.open(dm, "/queries")
    row = dm.locator("table.inbox tbody tr", has_text=question)
    expect(row.locator(".badge")).to_have_text("answered")
    journey.snap(dm, "inbox-to-close", variant="close")
    row.get_by_role("button", name="Close").click()
    row = dm.locator("table.inbox tbody tr", has_text=question)
    expect(row.locator(".badge")).to_have_text("closed")
    journey.snap(dm, "inbox-closed", variant="closed")

    journey.open(dm, "/queries?status=closed")
    row = dm.locator("table.inbox tbody tr", has_text=question)
    expect(row.locator(".badge")).to_have_text("closed")
    expect(row).to_contain_text(answer)
    journey.open(dm, record)
    queries = dm.locator("section[aria-labelledby=queries-h]")
    expect(queries).to_contain_text("No open queries on this record.")
    expect(queries).not_to_contain_text(question)
    journey.snap(dm, "record-after", variant="adverse-events")
    journey.open(coordinator, "/queries")
    expect(coordinator.locator("main")).not_to_contain_text(question)  # nothing left for the coordinator
    journey.assert_accessible()


# --- 3. two people edit the same record


def test_the_second_of_two_people_editing_a_record_is_refused_and_sees_the_first_ones_change(
    journey: Journey,
) -> None:
    investigator = journey.sign_in("investigator")
    radiologist = journey.sign_in("radiologist")
    journey.open(investigator, f"/patients/{world.QFS_PATIENT}")
    record = record_link(investigator, "lesions", "L02")
    for page in (investigator, radiologist):
        journey.open(page, f"{record}/edit")
        expect(page.locator("main h1")).to_contain_text("Edit")
    journey.snap(investigator, "investigator-edit", variant="lesions")
    journey.snap(radiologist, "radiologist-edit", variant="lesions")

    investigator.fill("#f-location", "left upper lobe, apical segment")
    investigator.fill("#f-reason", "location from the CT report")
    assert submit(investigator, "form.record-form", "Save") == 200
    expect(investigator).to_have_url(f"{journey.base_url}{record}?notice=saved")
    expect(investigator.locator("main .notice")).to_have_text("Saved.")
    expect(investigator.locator("main dl.fields")).to_contain_text("left upper lobe, apical segment")
    journey.snap(investigator, "investigator-saved", variant="lesions")

    radiologist.fill("#f-location", "right lower lobe")
    radiologist.fill("#f-reason", "my correction")
    assert submit(radiologist, "form.record-form", "Save") == 409
    conflict = radiologist.locator("section.conflict")
    expect(conflict).to_be_visible()
    row = conflict.locator("tbody tr", has_text="location")
    expect(row.locator("td").nth(0)).to_have_text("investigator")
    expect(row.locator("td").nth(1)).to_have_text(re.compile(r"\d{4}-\d{2}-\d{2}"))
    expect(row.locator("td.theirs")).to_have_text("left upper lobe, apical segment")
    expect(row.locator("td.yours")).to_have_text("right lower lobe")
    expect(radiologist.locator("main [role=alert]").first).to_contain_text("investigator")
    journey.snap(radiologist, "radiologist-refused-409", variant="conflict")

    journey.open(radiologist, record)
    fields = radiologist.locator("main dl.fields")
    expect(fields).to_contain_text("left upper lobe, apical segment")
    expect(fields).not_to_contain_text("right lower lobe")  # never a silent overwrite
    journey.snap(radiologist, "record-unchanged", variant="lesions")
    journey.assert_accessible()


# --- 4. a locked record


def test_a_locked_record_refuses_an_edit_with_who_locked_it_and_when_until_it_is_unlocked(journey: Journey) -> None:
    reason = "cleaned for the interim analysis"
    dm = journey.sign_in("datamanager")
    investigator = journey.sign_in("investigator")
    journey.open(dm, f"/patients/{world.QFS_PATIENT}")
    record = record_link(dm, "io-cycles", "C1")
    journey.open(dm, record)
    journey.snap(dm, "record", variant="io-cycles")
    dm.fill("#lock-reason", reason)
    assert submit(dm, "form[action$='/lock']", "Lock this record") == 200
    expect(dm.locator("main .notice")).to_have_text("Locked.")
    expect(dm.locator("main .locked-note")).to_have_text(re.compile(rf"Locked by datamanager at {DATE_TIME}.*{reason}"))
    journey.snap(dm, "locked", variant="locked")

    journey.open(investigator, f"{record}/edit")
    alert = investigator.locator("main p.error[role=alert]")
    expect(alert).to_contain_text("This record is locked")
    expect(alert).to_contain_text(re.compile(rf"datamanager at {DATE_TIME}"))
    journey.snap(investigator, "edit-locked", variant="locked")
    investigator.fill("#f-route", "subcutaneous")
    investigator.fill("#f-reason", "route corrected from the infusion record")
    assert submit(investigator, "form.record-form", "Save") == 423
    refusal = investigator.locator("main div.error[role=alert]")
    expect(refusal).to_contain_text(re.compile(rf"datamanager at {DATE_TIME}"))
    journey.snap(investigator, "save-refused-423", variant="423")
    journey.open(investigator, record)
    expect(investigator.locator("main dl.fields")).not_to_contain_text("subcutaneous")

    journey.open(dm, record)
    dm.fill("#unlock-reason", "reopened: a correction from the source")
    assert submit(dm, "form[action$='/unlock']", "Unlock") == 200
    expect(dm.locator("main .notice")).to_have_text("Unlocked.")
    expect(dm.locator("main .locked-note")).to_have_count(0)
    journey.snap(dm, "unlocked", variant="io-cycles")

    journey.open(investigator, f"{record}/edit")
    expect(investigator.locator("main [role=alert]")).to_have_count(0)
    investigator.fill("#f-route", "subcutaneous")
    investigator.fill("#f-reason", "route corrected from the infusion record")
    assert submit(investigator, "form.record-form", "Save") == 200
    expect(investigator.locator("main .notice")).to_have_text("Saved.")
    expect(investigator.locator("main dl.fields")).to_contain_text("subcutaneous")
    journey.snap(investigator, "saved-after-unlock", variant="io-cycles")
    journey.assert_accessible()


# --- 5. the language switch


def zh_catalog() -> dict[str, str]:
    """The zh_Hans translations as the catalog holds them now (non-empty, not fuzzy: what the app compiles)."""
    with ZH_PO.open("rb") as f:
        catalog = read_po(f, locale="zh_Hans")
    return {str(m.id): str(m.string) for m in catalog if m.id and isinstance(m.id, str) and m.string and not m.fuzzy}


def test_switching_to_chinese_in_the_header_changes_the_page_language_and_its_labels(journey: Journey) -> None:
    from abscopal.web import i18n, templating

    translated = zh_catalog()
    # the live server runs in this process: let it compile the catalog as it is on disk now (another engineer
    # may be translating it while the suite runs), so that the page and `translated` agree
    i18n.translations.cache_clear()
    templating.environment.cache_clear()

    page = journey.sign_in("pi")
    csrf = page.locator("meta[name=csrf-token]").get_attribute("content") or ""
    assert page.evaluate("document.documentElement.lang") == "en"
    journey.snap(page, "english", variant="staff")
    restored = False
    try:
        page.select_option("#language-switch", label="中文（简体）")
        status = submit(page, "header form[action='/language']", "Switch")
        assert status == 200, f"{status} after switching to Chinese:\n{main_text(page)}"
        expect(page).to_have_url(f"{journey.base_url}/")  # the switch comes back to the same page
        expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
        expect(page.locator("#language-switch")).to_have_value("zh_Hans")
        nav = nav_links(page)
        assert set(nav) == expected_nav("pi")
        for href, label in nav.items():  # a translated label is in Chinese; one not translated yet stays English
            assert label == translated.get(NAV_LABELS[href], NAV_LABELS[href]), (href, label)
        header = page.locator("header")
        for english in ("Sign out", "Switch"):
            expect(header.get_by_role("button", name=translated.get(english, english), exact=True)).to_be_visible()
        journey.snap(page, "chinese", variant="staff")

        journey.open(page, "/patients")  # the choice is saved on the account: the next page is Chinese too
        expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
        expect(page.locator("main h1")).to_have_text(translated.get("Patients", "Patients"))
        journey.snap(page, "chinese-patients", variant="list")

        journey.open(page, "/profile")
        page.select_option("#language-switch", "en")
        assert submit(page, "header form[action='/language']", translated.get("Switch", "Switch")) == 200
        restored = True
        expect(page).to_have_url(f"{journey.base_url}/profile")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("header nav")).to_contain_text("Patients")
        journey.snap(page, "english-again", variant="")
    finally:
        if not restored:  # leave the account in English for the module's other journeys, whatever failed
            page.request.post("/language", form={"csrf_token": csrf, "language": "en", "next": "/"})
    journey.assert_accessible()


def test_choosing_a_language_in_the_header_does_not_search_the_patient_list(journey: Journey) -> None:
    page = journey.sign_in("monitor")
    journey.open(page, "/patients")
    searches: list[str] = []
    page.on("request", lambda r: searches.append(r.url) if "/patients?" in r.url else None)
    page.select_option("#language-switch", label="中文（简体）")  # chosen, not yet submitted
    page.wait_for_timeout(600)  # htmx sends at once; give it time
    journey.snap(page, "language-chosen", variant="list")
    assert searches == [], searches
    assert page.evaluate("location.pathname + location.search") == "/patients"
    journey.assert_accessible()
