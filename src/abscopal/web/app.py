"""The web application: FastAPI serving the JSON API under ``/api/v1`` and the server-rendered pages (web.md).

``create_app(url)`` builds it over one database; ``abscopal serve`` and ``abscopal demo`` run it with uvicorn.
Every route declares its action (:mod:`abscopal.web.context`), every error is a sentence
(:mod:`abscopal.web.problems`), and every response carries the security headers of web.md §6.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from abscopal import __version__
from abscopal.protocol.model import ProtocolFile
from abscopal.store.database import make_engine, require_schema
from abscopal.web import problems
from abscopal.web.context import WebState
from abscopal.web.sessions import Timeouts
from abscopal.web.templating import DEFAULT_TIME_ZONE

STATIC = Path(__file__).parent / "static"
API = "/api/v1"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
OPENAPI_TAGS = [
    {"name": "session", "description": "Sign in and out, the signed-in account, personal API tokens"},
    {"name": "admin", "description": "Sites, users and their roles (administrators)"},
    {"name": "patients", "description": "Patients at your sites, and every record of one patient"},
    {"name": "records", "description": "Per-patient trial records: read, create, edit with If-Match, remove"},
    {"name": "integrity", "description": "Signatures, SDV marks, locks, data queries and the audit trail"},
    {"name": "derived", "description": "What the engines derive: eligibility, RT checks, response, schedule"},
    {"name": "trial", "description": "Trial-level outputs: report and exports"},
]


def create_app(
    database_url: str,
    *,
    timeouts: Timeouts | None = None,
    secure_cookies: bool | None = None,
    protocols: ProtocolFile | None = None,
    demo: bool = False,
    time_zone: str = DEFAULT_TIME_ZONE,
) -> FastAPI:
    """The application over the database at ``database_url`` (its schema must be current)."""
    engine = make_engine(database_url)
    require_schema(engine)
    read_engine = make_engine(database_url, read_only=True)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()
        read_engine.dispose()

    app = FastAPI(
        lifespan=lifespan,
        title="Abscopal",
        version=__version__,
        description="The NCT05906329 trial's data: every page of the web application has its API here.",
        openapi_url=f"{API}/openapi.json",
        docs_url=None,  # Swagger UI loads from a CDN: our own page at /api/v1/docs lists the operations instead
        redoc_url=None,
        openapi_tags=OPENAPI_TAGS,
    )
    app.state.web = WebState(
        engine=engine, read_engine=read_engine, timeouts=timeouts or Timeouts(), secure_cookies=secure_cookies,
        protocols=protocols, default_time_zone=time_zone, demo=demo,
    )  # fmt: skip
    problems.install(app)

    @app.middleware("http")
    async def _headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        cid = problems.correlation_id(request)
        try:
            response = await call_next(request)
        except Exception:  # a bug below: answer here so that the 500 carries the headers too
            problems.log.exception("unhandled error %s on %s %s", cid, request.method, request.url.path)
            response = problems.server_error(request)
        response.headers["X-Request-ID"] = cid
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        if request.url.scheme == "https":
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    from abscopal.web.api import ROUTERS as API_ROUTERS
    from abscopal.web.pages import ROUTERS as PAGE_ROUTERS

    for router in API_ROUTERS:
        app.include_router(router, prefix=API, responses=problems.PROBLEM_RESPONSES)
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    return app
