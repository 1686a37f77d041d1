"""The role x route matrix for the pages (the checks: :mod:`matrix`; web.md §2, §9)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import world
from matrix import CALLERS, Route, check_other_site, check_route, other_site_cases, routes

API = False


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", routes(API), ids=lambda r: r.id)
def test_role_route_matrix(route: Route, caller: str, client: world.Clients, web_db: Any) -> None:
    check_route(route, caller, client, web_db)


@pytest.mark.parametrize(("route", "caller", "target"), other_site_cases(API))
def test_another_sites_patient_is_not_found(
    route: Route, caller: str, target: str, client: world.Clients, web_db: Any
) -> None:
    """Reads and writes alike are 404: the patient's site is checked before the body (existence is not leaked)."""
    check_other_site(route, caller, target, client, web_db)
