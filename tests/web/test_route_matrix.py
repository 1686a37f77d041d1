"""The role x route matrix, generated from the permission table (web.md §2, §9).

The routes are read at collection time from an app over a throwaway SQLite database, so the matrix grows by
itself as routes are added. For every route and every account of the test world (and an anonymous caller):

- a route's declared action is an :class:`Action`: a role outside ``PERMISSIONS[action]`` gets 403, a role
  inside it anything but 403 (and never a 5xx);
- ``PUBLIC``: never 401 or 403; ``SIGNED_IN``: never 403 for a signed-in account;
- anonymous: every route that is not ``PUBLIC`` is 401 (API) or a 303 to ``/login`` (pages);
- another site's patient is 404 for every role allowed by the route's action (the statistician and the
  administrator, who see every site, excepted);
- every refusal is written to the audit trail as a ``security`` record ``refused``.

Each call sends an empty JSON body ``{}`` (pages: an empty form) with the caller's CSRF header, and fills the
path: ``{subject_id}`` is ``world.QFS_PATIENT``, a ``{..._id}`` after a resource's segment an existing record of
that kind for that patient (``0`` when there is none).
"""

from __future__ import annotations

import re
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).parent))
import world

from abscopal.domain import Role
from abscopal.services.common import PERMISSIONS, Action
from abscopal.store.tables import ENTITIES, audit_log
from abscopal.web.context import PUBLIC, SIGNED_IN, declared_action

ANONYMOUS = "anonymous"
CALLERS = [*world.USERS, ANONYMOUS]
PARAM = re.compile(r"{(\w+)(?::[^}]*)?}")
#: Routes that end the caller's session: called with a session of their own, not the module's shared one.
ENDS_SESSION = re.compile(r"/logout$")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    action: Action | str | None
    api: bool

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def params(self) -> list[str]:
        return PARAM.findall(self.path)


@dataclass(frozen=True)
class AppRoutes:
    apis: list[Any]  # fastapi.routing.RouteContext of every APIRoute (its effective path, with the prefix)
    others: list[Any]  # every other route (the /static mount, FastAPI's own OpenAPI document)
    openapi_url: str | None


@cache
def _app_routes() -> AppRoutes:
    """Every route of an app over a throwaway, migrated SQLite database (built once per process).

    FastAPI >= 0.165 keeps included routers as ``_IncludedRouter`` entries in ``app.routes``: the effective
    routes (with their prefixes) come from ``fastapi.routing.iter_route_contexts``.
    """
    from abscopal.store.audit_key import load_key
    from abscopal.store.database import make_engine
    from abscopal.store.migrate import upgrade
    from abscopal.web.app import create_app

    folder = Path(tempfile.mkdtemp(prefix="abscopal-route-matrix-"))
    url = f"sqlite:///{folder / 'routes.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    load_key(engine.url, create=True)
    engine.dispose()
    app = create_app(url)
    contexts = list(iter_route_contexts(app.routes))
    app.state.web.engine.dispose()
    app.state.web.read_engine.dispose()
    return AppRoutes(
        [c for c in contexts if isinstance(c.original_route, APIRoute)],
        [c for c in contexts if not isinstance(c.original_route, APIRoute)],
        app.openapi_url,
    )


@cache
def routes() -> list[Route]:
    found = []
    for r in _app_routes().apis:
        for method in sorted(r.methods):
            found.append(Route(method, r.path, declared_action(r), r.path.startswith("/api/")))
    return sorted(found, key=lambda r: (r.path, r.method))


def allowed(route: Route, role: Role) -> bool:
    if isinstance(route.action, Action):
        return role in PERMISSIONS[route.action]
    return True


# --- filling a route's path


_SLUG_ENTITY = {
    "screening": "screenings",
    "io-history": "immunotherapy_histories",
    "io-cycles": "immunotherapy_cycles",
    "rt-courses": "radiotherapy_courses",
    "assessments": "tumour_assessments",
    "questionnaires": "questionnaire_answers",
    "deviations": "protocol_deviations",
    "queries": "data_queries",
    "signatures": "record_signatures",
    "locks": "record_locks",
    "sdv": "sdv_marks",
}


def _entity_of(slug: str) -> str | None:
    try:
        from abscopal.web.records import RESOURCES

        resources = RESOURCES.values() if isinstance(RESOURCES, dict) else RESOURCES
        for res in resources:
            if getattr(res, "slug", None) == slug:
                return str(res.entity)
    except ImportError:  # the per-patient records module is not there (yet)
        pass
    for name in (_SLUG_ENTITY.get(slug), slug.replace("-", "_"), slug.replace("-", "_") + "s"):
        if name and name in ENTITIES:
            return name
    return None


_ids: dict[tuple[str, str, str], str] = {}


def record_id(db: Any, entity: str | None, subject_id: str) -> str:
    """An existing record of ``entity`` for ``subject_id`` (any when the kind has no subject), else ``0``."""
    if entity is None:
        return "0"
    key = (db.url, entity, subject_id)
    if key not in _ids:
        table = ENTITIES[entity].table
        query = select(table.c.id).where(table.c.removed_reason.is_(None))
        if "subject_id" in table.c:
            query = query.where(table.c.subject_id == subject_id)
        with db.engine.connect() as conn:
            found = conn.execute(query.order_by(table.c.id).limit(1)).scalar_one_or_none()
        _ids[key] = str(found) if found is not None else "0"
    return _ids[key]


def fill(route: Route, db: Any, subject_id: str = world.QFS_PATIENT) -> str:
    segments = route.path.split("/")
    out = []
    for i, segment in enumerate(segments):
        m = PARAM.fullmatch(segment)
        if m is None:
            out.append(segment)
        elif m.group(1) == "subject_id":
            out.append(subject_id)
        elif m.group(1).endswith("id") and i > 0:
            out.append(record_id(db, _entity_of(segments[i - 1]), subject_id))
        else:
            out.append("0")
    return "/".join(out)


def call(c: Any, route: Route, path: str) -> Any:
    if route.method in ("GET", "HEAD", "OPTIONS"):
        return c.request(route.method, path)
    if route.api:
        return c.request(route.method, path, json={})
    return c.request(route.method, path, content=b"", headers={"content-type": "application/x-www-form-urlencoded"})


def client_for(clients: world.Clients, caller: str, route: Route) -> Any:
    if caller == ANONYMOUS:
        return clients.anonymous()
    if ENDS_SESSION.search(route.path):
        return clients.session(caller)
    return clients.shared(caller)


def _describe(response: Any) -> str:
    return f"{response.status_code} {response.headers.get('content-type', '')} {response.text[:300]}"


# --- the tests


def test_every_route_declares_an_action() -> None:
    found = _app_routes()
    missing = [f"{sorted(r.methods)} {r.path}" for r in found.apis if declared_action(r) is None]
    assert not missing, "routes that declare no action (Depends(requires(...))): " + ", ".join(missing)
    exempt = {"/static", found.openapi_url}  # the static files, FastAPI's own OpenAPI document (public)
    others = [r.path for r in found.others if r.path not in exempt]
    assert not others, f"routes the action check cannot see (not FastAPI APIRoutes): {others}"


def test_the_matrix_covers_the_permission_tables_read_and_session_routes() -> None:
    """A guard against a matrix that silently became empty (e.g. the route list failed to load)."""
    ids = {r.id for r in routes()}
    assert {"POST /api/v1/login", "GET /api/v1/me", "GET /"} <= ids


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", routes(), ids=lambda r: r.id)
def test_role_route_matrix(route: Route, caller: str, client: world.Clients, web_db: Any) -> None:
    c = client_for(client, caller, route)
    path = fill(route, web_db)
    if route.id == "POST /login":  # the sign-in form has its own CSRF (a cookie beside a hidden field)
        form = client.anonymous().get("/login")
        token = form.cookies.get("abscopal_login_csrf")
        c.cookies.set("abscopal_login_csrf", token, path="/login")
        response = c.post(path, data={"csrf_token": token})
    else:
        response = call(c, route, path)
    status = response.status_code
    assert status < 500, f"{route.id} as {caller}: {_describe(response)}"
    if caller == ANONYMOUS:
        if route.action == PUBLIC:
            assert status not in (401, 403), _describe(response)
        elif route.api:
            assert status == 401, _describe(response)
            assert response.headers["content-type"].startswith("application/problem+json")
        else:
            assert status == 303, _describe(response)
            assert response.headers["location"].startswith("/login?next="), response.headers["location"]
        return
    role = world.USERS[caller]
    assert status != 401, f"{route.id} as {caller}: {_describe(response)}"
    if route.action == PUBLIC:
        assert status not in (401, 403), _describe(response)
    elif route.action == SIGNED_IN:
        assert status != 403, _describe(response)
    elif allowed(route, role):
        assert status != 403, f"{route.id} as {caller} ({role.value}, allowed): {_describe(response)}"
    else:
        assert status == 403, f"{route.id} as {caller} ({role.value}, refused): {_describe(response)}"
        if route.api:
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["detail"]


# --- another site's patient


def patient_routes() -> list[Route]:
    return [r for r in routes() if "subject_id" in r.params]


def _other_site_cases() -> list[Any]:
    cases = []
    for route in patient_routes():
        for caller in world.USERS:
            if caller in world.ALL_SITES or not allowed(route, world.USERS[caller]) or route.action == PUBLIC:
                continue
            target = world.QFS_PATIENT if world.SITE_OF[caller] == world.JNC else world.JNC_PATIENT
            cases.append(pytest.param(route, caller, target, id=f"{route.id}-{caller}"))
    return cases


def test_there_are_patient_routes_to_scope() -> None:
    """The site-scoping matrix below is not empty: the API has per-patient routes."""
    assert patient_routes(), "no route has {subject_id} in its path"


NOBODY = "QFS-999999"  # no such patient


@pytest.mark.parametrize(("route", "caller", "target"), _other_site_cases())
def test_another_sites_patient_is_not_found(
    route: Route, caller: str, target: str, client: world.Clients, web_db: Any
) -> None:
    """Reads are 404; a write answers exactly as for a patient who does not exist (404, or 422 for the body).

    FastAPI validates a body before the handler's site check runs, so a write with an empty body is 422 whether
    the patient is another site's or nobody's: existence is not leaked either way.
    """
    c = client_for(client, caller, route)
    response = call(c, route, fill(route, web_db, subject_id=target))
    where = f"{route.id} as {caller} for {target}: {_describe(response)}"
    if route.api:
        assert response.headers["content-type"].startswith("application/problem+json"), where
    if route.method in ("GET", "HEAD"):
        assert response.status_code == 404, where
        return
    ghost = call(c, route, fill(route, web_db, subject_id=NOBODY))
    assert response.status_code in (404, 422), where
    assert response.status_code == ghost.status_code, f"{where}; for {NOBODY}: {_describe(ghost)}"
    if response.status_code == 422 and route.api:
        assert response.json()["errors"] == ghost.json()["errors"], where


# --- refusals are audited


def _refused_count(db: Any, username: str) -> int:
    query = select(func.count()).where(
        audit_log.c.entity == "security", audit_log.c.entity_key == username, audit_log.c.field == "refused"
    )
    with db.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _refused_case() -> tuple[Route, str] | None:
    for route in routes():
        if isinstance(route.action, Action):
            for caller, role in world.USERS.items():
                if not allowed(route, role):
                    return route, caller
    return None


def test_a_refused_call_is_audited(client: world.Clients, web_db: Any) -> None:
    case = _refused_case()
    assert case is not None, "no route refuses any role: the permission table is not enforced anywhere"
    route, caller = case
    before = _refused_count(web_db, caller)
    response = call(client.shared(caller), route, fill(route, web_db))
    assert response.status_code == 403, _describe(response)
    assert _refused_count(web_db, caller) == before + 1
    with web_db.engine.connect() as conn:
        detail = conn.execute(
            select(audit_log.c.new_value)
            .where(audit_log.c.entity == "security", audit_log.c.field == "refused")
            .order_by(audit_log.c.seq.desc())
            .limit(1)
        ).scalar_one()
    assert route.method in detail and caller in detail
