"""Shared machinery of the browser journeys: a database per backend (a copy of the web test world), the app served
on loopback, Debian's Chromium, and a :class:`Journey` that signs in through the login form (or the JSON API),
numbers screenshots and runs axe-core once per page kind and language.

A journey module imports the fixtures into its namespace (pytest finds them there)::

    sys.path.insert(0, str(Path(__file__).parent))
    import journey as jr

    browser_db, live_url, chromium = jr.browser_db, jr.live_url, jr.chromium
    axe_checked, journey = jr.axe_checked, jr.journey

A module that sets ``LOGIN_STEPS = True`` makes each sign-in's login page a step of its journeys (a screenshot,
``NN-<username>-login.png``, and axe-core on it), as :mod:`test_browser_journeys` does.

The browser contexts bypass the Content-Security-Policy only so that axe-core can be injected; ``expect`` waits up
to 15 s (the suite runs on two cores beside other workers).

Every journey runs on both backends; to keep ``make test`` under 20 minutes on two cores, the PostgreSQL half does
less of what does not depend on the database: its screenshots are the viewport (the SQLite half's are the full
page), :func:`in_chinese` leaves the Chinese pass to the SQLite half (the catalogs and templates are the same; the
language switch itself is tested on both backends in ``test_browser_journeys``), and axe-core checks each page kind
once per module (shared by the two halves).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from playwright.sync_api import APIRequestContext, Browser, BrowserContext, Page, expect, sync_playwright

sys.path.insert(0, str(Path(__file__).parent))
import browser
import live_server
import world

TIMEOUT_MS = 15_000
API = "/api/v1"
ERROR_PAGES = frozenset({"403", "404", "500"})
HTML_LANG = {"en": "en", "zh_Hans": "zh-Hans"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def browser_db(request: pytest.FixtureRequest, _web_templates: Any) -> Iterator[Any]:
    """A fresh copy of the web test world for this module, on each backend."""
    if request.param == "postgresql" and _web_templates.server is None:
        pytest.skip("PostgreSQL not available (ABSCOPAL_TEST_POSTGRES=0); `make test` installs and starts it")
    db = _web_templates.copy(request.param)
    yield db
    _web_templates.drop(db)


@contextmanager
def served(database_url: str) -> Iterator[str]:
    """The app over ``database_url`` served by uvicorn on loopback; its base URL."""
    from abscopal.web.app import create_app

    app: FastAPI = create_app(database_url)
    try:
        with live_server.serve(app) as url:
            yield url
    finally:
        app.state.web.engine.dispose()
        app.state.web.read_engine.dispose()


@pytest.fixture(scope="module")
def live_url(browser_db: Any) -> Iterator[str]:
    with served(browser_db.url) as url:
        yield url


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        instance = browser.launch(playwright)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="module")
def axe_checked() -> dict[tuple[str, str, str], list[str]]:
    """The page kinds axe-core has checked in this module, with what it found on each."""
    return {}


def describe(violation: dict[str, Any]) -> str:
    targets = ["/".join(str(t) for t in node.get("target", [])) for node in violation.get("nodes", [])]
    return f"{violation['id']} [{violation.get('impact')}] at {', '.join(targets)} — {violation.get('help', '')}"


def normalised(path: str) -> str:
    """A page's route with its ids left out (a subject id, a record's 32-hex id)."""
    path = re.sub(r"/patients/[A-Z]{2,5}-\d+", "/patients/{subject}", path)
    return re.sub(r"/[0-9a-f]{32}", "/{id}", path)


def main_text(page: Page) -> str:
    """The page's main text, for an assertion's message."""
    try:
        return page.locator("main").inner_text(timeout=2_000)[:1500]
    except Exception:  # the message is for a failing assertion: never hide that failure behind another
        return page.content()[:1500]


@dataclass
class Journey:
    """One test's numbered screenshots, browser contexts and axe-core findings (per page kind and language)."""

    name: str
    browser: Browser
    base_url: str
    checked: dict[tuple[str, str, str], list[str]]
    login_steps: bool = False
    backend: str = "sqlite"
    folder: Path = field(init=False)
    step: int = 0
    findings: list[str] = field(default_factory=list)
    contexts: list[BrowserContext] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.folder = browser.artifacts_dir() / self.name
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob("*.png"):
            old.unlink()

    def context(self, **options: Any) -> BrowserContext:
        """A new browser context on the live app (``options``: Playwright's, e.g. a phone's viewport and touch)."""
        ctx = self.browser.new_context(base_url=self.base_url, bypass_csp=True, locale="en-GB", **options)
        ctx.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(ctx)
        return ctx

    def sign_in(self, username: str, *, login_step: bool | None = None, **context_options: Any) -> Page:
        """A new browser context signed in as ``username`` through the login form, on the dashboard.

        ``login_step`` (the journey's ``login_steps`` unless given): the login page is a step of the journey.
        """
        page = self.context(**context_options).new_page()
        if self.login_steps if login_step is None else login_step:
            self.open(page, "/login")
            self.snap(page, f"{username}-login", variant="login")
        else:
            page.goto("/login")
        page.fill("#username", username)
        page.fill("#password", world.PASSWORD)
        with page.expect_navigation():
            page.locator("main form").get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{self.base_url}/")
        return page

    def api(self, username: str) -> tuple[APIRequestContext, dict[str, str]]:
        """A JSON API client signed in as ``username`` and the CSRF header its writes send."""
        request = self.context().request
        r = request.post(f"{API}/login", data={"username": username, "password": world.PASSWORD})
        assert r.ok, r.text()
        return request, {"X-CSRF-Token": str(r.json()["csrf_token"])}

    def open(self, page: Page, path: str, *, status: int = 200) -> None:
        response = page.goto(path)
        assert response is not None, path
        assert response.status == status, f"{path}: {response.status}, expected {status}\n{main_text(page)}"

    def snap(self, page: Page, label: str, *, variant: str = "", full_page: bool = True) -> None:
        """A numbered screenshot, and axe-core the first time this kind of page is seen in this language.

        A page kind is its route (ids left out), the ``variant`` the journey names (a state of the page with other
        markup: a conflict, a lock, an error page...) and the language; the error pages are one kind each.
        """
        self.step += 1
        full_page = full_page and self.backend == "sqlite"  # PostgreSQL: the viewport (the module's docstring)
        page.screenshot(path=self.folder / f"{self.step:02d}-{label}.png", full_page=full_page)
        path, lang = page.evaluate("[location.pathname, document.documentElement.lang]")
        key = ("(error page)" if variant in ERROR_PAGES else normalised(path), variant, lang)
        if key not in self.checked:
            self.checked[key] = [describe(v) for v in browser.serious_or_critical(browser.run_axe(page))]
            self.findings += [f"{path} ({variant or 'default'}, {lang}): {f}" for f in self.checked[key]]

    def assert_accessible(self) -> None:
        assert not self.findings, "serious/critical axe-core violations:\n" + "\n".join(self.findings)

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()


@pytest.fixture
def journey(
    request: pytest.FixtureRequest,
    chromium: Browser,
    live_url: str,
    axe_checked: dict[tuple[str, str, str], list[str]],
    browser_db: Any,
) -> Iterator[Journey]:
    login_steps = getattr(request.module, "LOGIN_STEPS", False)
    j = Journey(request.node.name, chromium, live_url, axe_checked, login_steps, browser_db.backend)
    yield j
    j.close()


def submit(page: Page, form: str, button: str) -> int:
    """Click ``button`` in the form matched by ``form``; the status of the page the browser lands on."""
    with page.expect_navigation() as navigation:
        page.locator(form).get_by_role("button", name=button).click()
    response = navigation.value
    assert response is not None
    return response.status


def switch_language(page: Page, language: str, *, check: bool = False) -> None:
    """The header's language switch (the choice is kept on the account); ``check``: then expect ``<html lang>``."""
    page.select_option("#language-switch", language)
    with page.expect_navigation():
        page.locator("header form[action='/language'] button").click()
    if check:
        expect(page.locator("html")).to_have_attribute("lang", HTML_LANG[language])


def in_chinese(j: Journey, page: Page, label: str, variant: str = "") -> None:
    """A Chinese screenshot of the page (axe-core on it too), then back to English; SQLite only (module docstring)."""
    if j.backend != "sqlite":
        return
    switch_language(page, "zh_Hans", check=True)
    j.snap(page, f"{label}-zh", variant=variant)
    switch_language(page, "en", check=True)


def skip_chinese_on_postgresql(j: Journey) -> None:
    """A test of the pages in Chinese runs on SQLite only (the module's docstring says why)."""
    if j.backend != "sqlite":
        pytest.skip("the pages in Chinese are checked on SQLite: their catalogs do not depend on the database")
