"""The role x route matrix, generated from the permission table (web.md §2, §9): the machinery.

The tests are in ``test_route_matrix_api.py`` (JSON API routes) and ``test_route_matrix_pages.py`` (pages), two
files so that pytest-xdist runs them on two workers at once.

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
def app_routes() -> AppRoutes:
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
def routes(api: bool | None = None) -> list[Route]:
    """Every (method, path) of the app; only the JSON API's (``api=True``) or only the pages' (``False``)."""
    found = []
    for r in app_routes().apis:
        for method in sorted(r.methods):
            found.append(Route(method, r.path, declared_action(r), r.path.startswith("/api/")))
    return sorted((r for r in found if api is None or r.api == api), key=lambda r: (r.path, r.method))


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


def describe(response: Any) -> str:
    return f"{response.status_code} {response.headers.get('content-type', '')} {response.text[:300]}"


# --- cases


def patient_routes(api: bool | None = None) -> list[Route]:
    return [r for r in routes(api) if "subject_id" in r.params]


def other_site_cases(api: bool) -> list[Any]:
    cases = []
    for route in patient_routes(api):
        for caller in world.USERS:
            if caller in world.ALL_SITES or not allowed(route, world.USERS[caller]) or route.action == PUBLIC:
                continue
            target = world.QFS_PATIENT if world.SITE_OF[caller] == world.JNC else world.JNC_PATIENT
            cases.append(pytest.param(route, caller, target, id=f"{route.id}-{caller}"))
    return cases


def refused_count(db: Any, username: str) -> int:
    query = select(func.count()).where(
        audit_log.c.entity == "security", audit_log.c.entity_key == username, audit_log.c.field == "refused"
    )
    with db.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def refused_case() -> tuple[Route, str] | None:
    for route in routes():
        if isinstance(route.action, Action):
            for caller, role in world.USERS.items():
                if not allowed(route, role):
                    return route, caller
    return None


# --- the checks


def check_route(route: Route, caller: str, client: world.Clients, web_db: Any) -> None:
    """One cell of the matrix: ``caller`` calls ``route`` and gets what the permission table says."""
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
    assert status < 500, f"{route.id} as {caller}: {describe(response)}"
    if caller == ANONYMOUS:
        if route.action == PUBLIC:
            assert status not in (401, 403), describe(response)
        elif route.api:
            assert status == 401, describe(response)
            assert response.headers["content-type"].startswith("application/problem+json")
        else:
            assert status == 303, describe(response)
            assert response.headers["location"].startswith("/login?next="), response.headers["location"]
        return
    role = world.USERS[caller]
    assert status != 401, f"{route.id} as {caller}: {describe(response)}"
    if route.action == PUBLIC:
        assert status not in (401, 403), describe(response)
    elif route.action == SIGNED_IN:
        assert status != 403, describe(response)
    elif allowed(route, role):
        assert status != 403, f"{route.id} as {caller} ({role.value}, allowed): {describe(response)}"
    else:
        assert status == 403, f"{route.id} as {caller} ({role.value}, refused): {describe(response)}"
        if route.api:
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["detail"]


def check_other_site(route: Route, caller: str, target: str, client: world.Clients, web_db: Any) -> None:
    """Another site's patient is 404 for a caller whose role may use the route."""
    c = client_for(client, caller, route)
    response = call(c, route, fill(route, web_db, subject_id=target))
    where = f"{route.id} as {caller} for {target}: {describe(response)}"
    if route.api:
        assert response.headers["content-type"].startswith("application/problem+json"), where
    assert response.status_code == 404, where
