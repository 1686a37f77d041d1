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

One test per route (and backend) calls it as every caller in turn and lists every cell that disagrees with the
table, naming the caller: a route's fourteen calls cost one pytest item, not fourteen. The calls go straight to
the ASGI app on one event loop (:class:`Callers`).
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import httpx
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
T = TypeVar("T")


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


async def call(c: httpx.AsyncClient, route: Route, path: str) -> httpx.Response:
    if route.method in ("GET", "HEAD", "OPTIONS"):
        return await c.request(route.method, path)
    if route.api:
        return await c.request(route.method, path, json={})
    return await c.request(
        route.method, path, content=b"", headers={"content-type": "application/x-www-form-urlencoded"}
    )


class Callers:
    """The matrix's callers: one signed-in ``httpx.AsyncClient`` per account of the world, and anonymous ones, over
    the app in this process (httpx's ``ASGITransport``) on one event loop for the module (``asyncio.Runner``).

    Why not ``TestClient``: it starts a thread and an event loop for every request, which is half of a refused
    call's cost; the matrix makes some 4,300 calls per backend. The app is the same ASGI app either way.
    """

    def __init__(self, app: Any) -> None:
        self.runner = asyncio.Runner()
        self.transport = httpx.ASGITransport(app=app)
        self._signed_in: dict[str, httpx.AsyncClient] = {}
        self._made: list[httpx.AsyncClient] = []

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coroutine)

    def _new(self) -> httpx.AsyncClient:
        c = httpx.AsyncClient(transport=self.transport, base_url="http://testserver", follow_redirects=False)
        self._made.append(c)
        return c

    def anonymous(self) -> httpx.AsyncClient:
        return self._new()

    async def sign_in(self, username: str) -> httpx.AsyncClient:
        """A new client signed in through ``POST /api/v1/login``, its CSRF header set."""
        c = self._new()
        response = await c.post("/api/v1/login", json={"username": username, "password": world.PASSWORD})
        if response.status_code != 200:
            raise AssertionError(f"login as {username} failed: {describe(response)}")
        c.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        return c

    async def client_for(self, caller: str, route: Route) -> httpx.AsyncClient:
        """Anonymous; a session of its own for a route that ends it; else the caller's shared session."""
        if caller == ANONYMOUS:
            return self.anonymous()
        if ENDS_SESSION.search(route.path):
            return await self.sign_in(caller)
        if caller not in self._signed_in:
            self._signed_in[caller] = await self.sign_in(caller)
        return self._signed_in[caller]

    def close(self) -> None:
        async def close_all() -> None:
            for c in self._made:
                await c.aclose()

        self.run(close_all())
        self.runner.close()


def describe(response: Any) -> str:
    return f"{response.status_code} {response.headers.get('content-type', '')} {response.text[:300]}"


# --- cases


def patient_routes(api: bool | None = None) -> list[Route]:
    return [r for r in routes(api) if "subject_id" in r.params]


def other_site_callers(route: Route) -> list[tuple[str, str]]:
    """(caller, the other site's patient) for every account whose role may use ``route`` and who sees one site."""
    if route.action == PUBLIC:
        return []
    return [
        (caller, world.QFS_PATIENT if world.SITE_OF[caller] == world.JNC else world.JNC_PATIENT)
        for caller, role in world.USERS.items()
        if caller not in world.ALL_SITES and allowed(route, role)
    ]


def other_site_routes(api: bool) -> list[Route]:
    """The patient routes some single-site role may use: the ones the site-scoping check has callers for."""
    return [r for r in patient_routes(api) if other_site_callers(r)]


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


async def check_route(route: Route, caller: str, callers: Callers, db: Any) -> list[str]:
    """One cell of the matrix: ``caller`` calls ``route`` and gets what the permission table says (else: why not)."""
    c = await callers.client_for(caller, route)
    path = fill(route, db)
    if route.id == "POST /login":  # the sign-in form has its own CSRF (a cookie beside a hidden field)
        form = await callers.anonymous().get("/login")
        token = form.cookies.get("abscopal_login_csrf")
        c.cookies.set("abscopal_login_csrf", token or "", path="/login")
        response = await c.post(path, data={"csrf_token": token or ""})
    else:
        response = await call(c, route, path)
    status = response.status_code
    where = f"{route.id} as {caller}"
    if status >= 500:
        return [f"{where}: {describe(response)}"]
    problems: list[str] = []

    def expect(condition: bool, what: str) -> None:
        if not condition:
            problems.append(f"{where}: {what}: {describe(response)}")

    if caller == ANONYMOUS:
        if route.action == PUBLIC:
            expect(status not in (401, 403), "a public route refused an anonymous caller")
        elif route.api:
            expect(status == 401, "expected 401")
            expect(response.headers.get("content-type", "").startswith("application/problem+json"), "not problem+json")
        else:
            expect(status == 303, "expected a 303 to the sign-in page")
            location = response.headers.get("location", "")
            expect(location.startswith("/login?next="), f"redirected to {location!r}, not to /login?next=")
        return problems
    role = world.USERS[caller]
    expect(status != 401, "a signed-in caller got 401")
    if route.action == PUBLIC:
        expect(status not in (401, 403), "a public route refused a signed-in caller")
    elif route.action == SIGNED_IN:
        expect(status != 403, "a route for every signed-in account refused one")
    elif allowed(route, role):
        expect(status != 403, f"{role.value} is allowed but got 403")
    else:
        expect(status == 403, f"{role.value} is refused by the permission table but got {status}")
        if route.api and status == 403:
            expect(response.headers.get("content-type", "").startswith("application/problem+json"), "not problem+json")
            expect(bool(response.json().get("detail")), "the problem has no detail")
    return problems


async def check_every_caller(route: Route, callers: Callers, db: Any) -> list[str]:
    """:func:`check_route` for every account of the world and an anonymous caller, in turn."""
    problems: list[str] = []
    for caller in CALLERS:
        problems += await check_route(route, caller, callers, db)
    return problems


async def check_other_site(route: Route, callers: Callers, db: Any) -> list[str]:
    """Another site's patient is 404 for every caller whose role may use the route (:func:`other_site_callers`)."""
    problems = []
    for caller, target in other_site_callers(route):
        c = await callers.client_for(caller, route)
        response = await call(c, route, fill(route, db, subject_id=target))
        where = f"{route.id} as {caller} for {target}: {describe(response)}"
        if response.status_code != 404:
            problems.append(f"expected 404: {where}")
        elif route.api and not response.headers.get("content-type", "").startswith("application/problem+json"):
            problems.append(f"not problem+json: {where}")
    return problems


@pytest.fixture(scope="module")
def callers(app: Any) -> Iterator[Callers]:
    """The matrix's callers over the module's app (imported by the matrix's test modules)."""
    made = Callers(app)
    yield made
    made.close()


def matrix_tests(api: bool) -> tuple[Callable[..., None], Callable[..., None]]:
    """The matrix's two tests over the API's routes (``api``) or the pages': a test module assigns them to names
    starting ``test_`` (two modules, so that xdist runs the two halves on two workers)."""

    @pytest.mark.parametrize("route", routes(api), ids=lambda r: r.id)
    def every_caller_gets_what_the_permission_table_gives_its_role(route: Route, callers: Callers, web_db: Any) -> None:
        problems = callers.run(check_every_caller(route, callers, web_db))
        assert not problems, "\n".join(problems)

    @pytest.mark.parametrize("route", other_site_routes(api), ids=lambda r: r.id)
    def another_sites_patient_is_not_found(route: Route, callers: Callers, web_db: Any) -> None:
        """Reads and writes alike are 404: the patient's site is checked before the body (existence is not leaked)."""
        problems = callers.run(check_other_site(route, callers, web_db))
        assert not problems, "\n".join(problems)

    return every_caller_gets_what_the_permission_table_gives_its_role, another_sites_patient_is_not_found
