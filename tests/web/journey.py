"""Shared machinery of the browser journeys: a database per backend (a copy of the web test world), the app served
on loopback, Debian's Chromium, and a :class:`Journey` that signs in through the login form, numbers screenshots
and runs axe-core once per page kind and language.

A journey module imports the fixtures into its namespace (pytest finds them there)::

    sys.path.insert(0, str(Path(__file__).parent))
    import journey as jr

    browser_db, live_url, chromium = jr.browser_db, jr.live_url, jr.chromium
    axe_checked, journey = jr.axe_checked, jr.journey
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

sys.path.insert(0, str(Path(__file__).parent))
import browser
import live_server
import world

TIMEOUT_MS = 15_000


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def browser_db(request: pytest.FixtureRequest, _web_templates: Any) -> Iterator[Any]:
    """A fresh copy of the web test world for this module, on each backend."""
    if request.param == "postgresql" and _web_templates.server is None:
        pytest.skip("PostgreSQL not available (ABSCOPAL_TEST_POSTGRES=0); `make test` installs and starts it")
    db = _web_templates.copy(request.param)
    yield db
    _web_templates.drop(db)


@pytest.fixture(scope="module")
def live_url(browser_db: Any) -> Iterator[str]:
    from abscopal.web.app import create_app

    app: FastAPI = create_app(browser_db.url)
    try:
        with live_server.serve(app) as url:
            yield url
    finally:
        app.state.web.engine.dispose()
        app.state.web.read_engine.dispose()


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
    return {}


def describe(violation: dict[str, Any]) -> str:
    targets = ["/".join(str(t) for t in node.get("target", [])) for node in violation.get("nodes", [])]
    return f"{violation['id']} [{violation.get('impact')}] at {', '.join(targets)} — {violation.get('help', '')}"


@dataclass
class Journey:
    """One test's numbered screenshots, browser contexts and axe-core findings (per page kind and language)."""

    name: str
    browser: Browser
    base_url: str
    checked: dict[tuple[str, str, str], list[str]]
    folder: Path = field(init=False)
    step: int = 0
    findings: list[str] = field(default_factory=list)
    contexts: list[BrowserContext] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.folder = browser.artifacts_dir() / self.name
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob("*.png"):
            old.unlink()

    def sign_in(self, username: str, **context: Any) -> Page:
        ctx = self.browser.new_context(base_url=self.base_url, bypass_csp=True, locale="en-GB", **context)
        ctx.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(ctx)
        page = ctx.new_page()
        page.goto("/login")
        page.fill("#username", username)
        page.fill("#password", world.PASSWORD)
        with page.expect_navigation():
            page.locator("main form").get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{self.base_url}/")
        return page

    def open(self, page: Page, path: str, *, status: int = 200) -> None:
        response = page.goto(path)
        assert response is not None and response.status == status, f"{path}: {response and response.status}"

    def snap(self, page: Page, label: str, *, variant: str = "") -> None:
        """A numbered screenshot, and axe-core the first time this kind of page is seen in this language."""
        self.step += 1
        page.screenshot(path=self.folder / f"{self.step:02d}-{label}.png", full_page=True)
        path, lang = page.evaluate("[location.pathname, document.documentElement.lang]")
        key = (re.sub(r"/patients/[A-Z]{2,5}-\d+", "/patients/{subject}", path), variant, lang)
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
    request: pytest.FixtureRequest, chromium: Browser, live_url: str, axe_checked: dict[tuple[str, str, str], list[str]]
) -> Iterator[Journey]:
    j = Journey(request.node.name, chromium, live_url, axe_checked)
    yield j
    j.close()


def switch_language(page: Page, language: str) -> None:
    """The header's language switch (the choice is kept on the account)."""
    page.select_option("#language-switch", language)
    with page.expect_navigation():
        page.locator("header form[action='/language'] button").click()
