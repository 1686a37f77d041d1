"""The web application: FastAPI serving the JSON API under ``/api/v1`` and the server-rendered pages (web.md).

``create_app(url)`` builds it over one database; ``abscopal serve`` and ``abscopal demo`` run it with uvicorn.
Every route declares its action (:mod:`abscopal.web.context`), every error is a sentence
(:mod:`abscopal.web.problems`), and every response carries the security headers of web.md §6.
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from abscopal import __version__
from abscopal.domain import DEFAULT_TIME_ZONE
from abscopal.protocol.model import ProtocolFile
from abscopal.store.database import make_engine, require_schema
from abscopal.web import problems
from abscopal.web.context import WebState
from abscopal.web.sessions import Timeouts

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


class SecurityHeaders:
    """Pure ASGI middleware (no per-request task, unlike ``@app.middleware``): the headers of web.md §6 on every
    response, errors included, and the 500 answer for a bug below (logged with its correlation id)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request = Request(scope)
        cid = problems.correlation_id(request)
        https = scope.get("scheme") == "https"
        static = str(scope.get("path", "")).startswith("/static/")
        sent = False

        async def send_with_headers(message: Message) -> None:
            nonlocal sent
            if message["type"] == "http.response.start":
                sent = True
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = cid
                headers["Content-Security-Policy"] = CSP
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"
                headers["X-Frame-Options"] = "DENY"
                headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
                if https:
                    headers["Strict-Transport-Security"] = "max-age=31536000"
                if not static and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:  # a bug below: answer here so that the 500 carries the headers too
            problems.log.exception("unhandled error %s on %s %s", cid, request.method, request.url.path)
            if sent:
                raise
            await problems.server_error(request)(scope, receive, send_with_headers)


#: The collector's thresholds in a server process: a young generation of 10,000 objects instead of 700, so that
#: the objects one request makes and drops are rarely scanned (bench/web_load.py; docs/benchmarks.md).
SERVING_GC_THRESHOLDS = (10_000, 20, 10)


def tune_collector() -> None:
    """Move every object alive now out of the cyclic garbage collector's reach (``gc.freeze``: modules, templates,
    caches, the dashboard's figures) and raise its young-generation threshold. A full collection of a server's
    ~300,000 long-lived objects took ~200 ms, during which every request of the worker waited; frozen objects are
    still freed by reference counting when dropped, only never scanned for cycles."""
    gc.set_threshold(*SERVING_GC_THRESHOLDS)
    gc.freeze()


def create_app(
    database_url: str,
    *,
    timeouts: Timeouts | None = None,
    secure_cookies: bool | None = None,
    protocols: ProtocolFile | None = None,
    demo: bool = False,
    time_zone: str = DEFAULT_TIME_ZONE,
    threads: int | None = None,
    serving: bool = False,
) -> FastAPI:
    """The application over the database at ``database_url`` (its schema must be current); ``threads`` caps the
    requests it runs at once (the routes run in anyio's thread pool; default 40): the others wait in line.
    ``serving`` (a server process, not a test) tunes the process's garbage collector: :func:`tune_collector`."""
    engine = make_engine(database_url)
    require_schema(engine)
    read_engine = make_engine(database_url, read_only=True)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if threads is not None:
            anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        if serving:
            tune_collector()
        yield
        app.state.web.overview.close()
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
    app.state.web.overview.freeze = serving
    if engine.url.get_backend_name() != "sqlite" or engine.url.database not in (None, "", ":memory:"):
        app.state.web.overview.database_url = database_url  # a child process can open it: slow refreshes run there
    problems.install(app)

    app.add_middleware(SecurityHeaders)

    from abscopal.web.api import ROUTERS as API_ROUTERS
    from abscopal.web.pages import ROUTERS as PAGE_ROUTERS

    for router in API_ROUTERS:
        app.include_router(router, prefix=API, responses=problems.PROBLEM_RESPONSES)
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    return app
