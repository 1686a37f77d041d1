"""The browser-test tooling works: Debian's Chromium starts under Playwright, and the vendored files are what
``src/abscopal/web/static/vendor/README.md`` says they are."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

sys.path.insert(0, str(Path(__file__).parent))
import browser

FORM = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Form</title></head>
<body>
  <main>
    <h1>Form</h1>
    <form>
      <label for="named">Patient number</label>
      <input id="named" type="text">
      <input id="unnamed" type="text">
    </form>
  </main>
</body>
</html>"""


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        instance = browser.launch(playwright)
        try:
            yield instance
        finally:
            instance.close()


def _readme_version(package: str) -> str:
    readme = (browser.VENDOR / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^\| `[^`]+` \| `{re.escape(package)}` \| ([0-9][^ |]*) \|", readme, re.MULTILINE)
    assert match, f"no version for {package} in vendor/README.md"
    return match.group(1)


def test_axe_in_chromium_reports_the_unlabelled_input_and_not_the_labelled_one(chromium: Browser) -> None:
    page = chromium.new_page()
    page.set_content(FORM)
    violations = browser.run_axe(page)
    label = [v for v in violations if v["id"] == "label"]
    assert len(label) == 1, violations
    targets = [node["target"] for node in label[0]["nodes"]]
    assert targets == [["#unnamed"]]
    assert browser.serious_or_critical(label) == label  # axe rates a missing label critical
    assert page.evaluate("axe.version") == _readme_version("axe-core")
    page.screenshot(path=browser.artifacts_dir() / "browser-setup-form.png")
    page.close()


def test_the_vendored_htmx_reports_the_version_the_vendor_readme_names(chromium: Browser) -> None:
    page = chromium.new_page()
    page.set_content("<!doctype html><html><body><button hx-get='/x'>Go</button></body></html>")
    page.add_script_tag(path=str(browser.HTMX_JS))
    assert page.evaluate("typeof htmx.ajax") == "function"
    assert page.evaluate("htmx.version") == _readme_version("htmx.org")
    page.close()
