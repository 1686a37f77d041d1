"""Helpers for the browser tests: Debian's Chromium under Playwright, the vendored axe-core, a screenshot folder.

Playwright's own browser download (``playwright install``) is never used: the tests drive Debian's ``chromium``
package, which ``make test`` installs through ``scripts/ensure-system-packages.sh``. The flags keep Chromium off
the network (this machine has none: no update checks, no sync, no QUIC) and let it run as root in a container.

Test modules import this file the way the other test folders import their helpers::

    sys.path.insert(0, str(Path(__file__).parent))
    import browser
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Playwright

REPO = Path(__file__).resolve().parents[2]
VENDOR = REPO / "src" / "abscopal" / "web" / "static" / "vendor"
AXE_JS = VENDOR / "axe.min.js"
HTMX_JS = VENDOR / "htmx.min.js"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

SERIOUS = frozenset({"serious", "critical"})


def launch(playwright: Playwright) -> Browser:
    """Start Debian's headless Chromium; a clear error if the package is not installed."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(
            f"{CHROMIUM} not found: the browser tests use Debian's chromium package. "
            "Run `make test` (it installs it via scripts/ensure-system-packages.sh), "
            "or `bash scripts/ensure-system-packages.sh`."
        )
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def run_axe(page: Page) -> list[dict[str, Any]]:
    """Inject the vendored axe-core into the page and return its violations (axe's own result objects)."""
    page.add_script_tag(path=str(AXE_JS))
    violations: list[dict[str, Any]] = page.evaluate("async () => (await axe.run()).violations")
    return violations


def serious_or_critical(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The violations axe rates ``serious`` or ``critical``."""
    return [v for v in violations if v.get("impact") in SERIOUS]


def artifacts_dir() -> Path:
    """Where the browser tests put screenshots: ``$ABSCOPAL_TEST_ARTIFACTS`` or ``<repo>/test-artifacts/``."""
    path = Path(os.environ.get("ABSCOPAL_TEST_ARTIFACTS") or REPO / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path
