"""The role x route matrix for the pages (the checks: :mod:`matrix`; web.md §2, §9)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from matrix import Callers, Route, callers, check_every_caller, check_other_site, other_site_routes, routes

API = False
__all__ = ["callers"]  # the fixture, imported for pytest to find


@pytest.mark.parametrize("route", routes(API), ids=lambda r: r.id)
def test_every_caller_gets_what_the_permission_table_gives_its_role(
    route: Route, callers: Callers, web_db: Any
) -> None:
    problems = callers.run(check_every_caller(route, callers, web_db))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("route", other_site_routes(API), ids=lambda r: r.id)
def test_another_sites_patient_is_not_found(route: Route, callers: Callers, web_db: Any) -> None:
    """Reads and writes alike are 404: the patient's site is checked before the body (existence is not leaked)."""
    problems = callers.run(check_other_site(route, callers, web_db))
    assert not problems, "\n".join(problems)
