"""The role x route matrix for the JSON API (the checks: :mod:`matrix`; web.md §2, §9), and the checks of the
route list itself. The pages' matrix is in ``test_route_matrix_pages.py`` (two files: two xdist workers)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))
from matrix import (
    Callers,
    app_routes,
    call,
    callers,
    describe,
    fill,
    matrix_tests,
    patient_routes,
    refused_case,
    refused_count,
    routes,
)

from abscopal.store.tables import audit_log
from abscopal.web.context import declared_action

API = True
__all__ = ["callers"]  # the fixture, imported for pytest to find


def test_every_route_declares_an_action() -> None:
    found = app_routes()
    missing = [f"{sorted(r.methods)} {r.path}" for r in found.apis if declared_action(r) is None]
    assert not missing, "routes that declare no action (Depends(requires(...))): " + ", ".join(missing)
    exempt = {"/static", found.openapi_url}  # the static files, FastAPI's own OpenAPI document (public)
    others = [r.path for r in found.others if r.path not in exempt]
    assert not others, f"routes the action check cannot see (not FastAPI APIRoutes): {others}"


def test_the_matrix_covers_the_permission_tables_read_and_session_routes() -> None:
    """A guard against a matrix that silently became empty (e.g. the route list failed to load)."""
    ids = {r.id for r in routes()}
    assert {"POST /api/v1/login", "GET /api/v1/me", "GET /"} <= ids


def test_there_are_patient_routes_to_scope() -> None:
    """The site-scoping matrix below is not empty: the API has per-patient routes."""
    assert patient_routes(), "no route has {subject_id} in its path"


test_every_caller_gets_what_the_permission_table_gives_its_role, test_another_sites_patient_is_not_found = matrix_tests(
    api=API
)


def test_a_refused_call_is_audited(callers: Callers, web_db: Any) -> None:
    case = refused_case()
    assert case is not None, "no route refuses any role: the permission table is not enforced anywhere"
    route, caller = case
    before = refused_count(web_db, caller)

    async def refused() -> Any:
        return await call(await callers.client_for(caller, route), route, fill(route, web_db))

    response = callers.run(refused())
    assert response.status_code == 403, describe(response)
    assert refused_count(web_db, caller) == before + 1
    with web_db.engine.connect() as conn:
        detail = conn.execute(
            select(audit_log.c.new_value)
            .where(audit_log.c.entity == "security", audit_log.c.field == "refused")
            .order_by(audit_log.c.seq.desc())
            .limit(1)
        ).scalar_one()
    assert route.method in detail and caller in detail
