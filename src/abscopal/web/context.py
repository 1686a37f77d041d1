"""Who is asking, and may they: every route declares its action from the one permission table (web.md §2).

A route takes ``principal: Annotated[Principal, Depends(requires(Action.X))]`` (or :data:`PUBLIC` /
:data:`SIGNED_IN` for the login page and the profile); the dependency resolves the session cookie or the
``Authorization: Bearer`` token, checks the CSRF token on unsafe methods of a browser session, and refuses a role
the table does not allow (403, audited). Site scoping is the services' (``patient_of``: another site's patient
is 404). A test walks ``app.routes`` and fails on a route whose dependencies declare no action.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlalchemy import Connection, Engine, Executable
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from abscopal.domain import Role
from abscopal.errors import AbscopalError, NotFound, PermissionDenied, ValidationError
from abscopal.messages import N_, Message, Term
from abscopal.protocol.model import ProtocolFile
from abscopal.services.common import ACTION_CONTEXT, PERMISSIONS, Action, Actor, role_names
from abscopal.store.database import database_error
from abscopal.store.unit_of_work import UnitOfWork
from abscopal.web.accounts import EVERY_SITE, Account, account_from_rows, load_account, security_event
from abscopal.web.sessions import (
    BROWSER_REQUEST,
    PATIENT_SITE,
    Session,
    Timeouts,
    digest,
    resolve_token,
    session_from_row,
)
from abscopal.web.trial_overview import OverviewCache

SESSION_COOKIE = "abscopal_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC = "public"
SIGNED_IN = "signed in"
RouteAction = Action | str


class NotSignedIn(AbscopalError):
    """No live session or token: 401 for the API, a redirect to the login page for pages."""


class CsrfRefused(AbscopalError):
    """An unsafe request of a browser session without its CSRF token: 403."""


def page_reads(read_engine: Engine) -> Engine:
    """``read_engine`` for the reads of one page: on PostgreSQL its connections run in autocommit, so that a page's
    reads send no ``BEGIN`` and its connection's return to the pool no ``ROLLBACK`` (two round trips of ~20).

    What each statement sees is unchanged: PostgreSQL's default isolation, READ COMMITTED, takes a new snapshot
    per statement inside a transaction too (PostgreSQL manual, "Transaction Isolation"). Exports, which stream
    with server-side cursors inside a transaction, keep ``read_engine`` itself. SQLite's reads stay as they are
    (its transactions are how readers keep a consistent file).
    """
    if read_engine.dialect.name != "postgresql":
        return read_engine
    return read_engine.execution_options(isolation_level="AUTOCOMMIT")


@dataclass
class WebState:
    """What every request shares: the engines (writes; reads that never take SQLite's write lock), settings."""

    engine: Engine
    read_engine: Engine
    timeouts: Timeouts
    secure_cookies: bool | None  # None: Secure when the request arrived over HTTPS
    protocols: ProtocolFile | None
    default_time_zone: str
    demo: bool = False
    _sites: tuple[float, dict[str, str | None]] | None = None
    overview: OverviewCache = field(default_factory=OverviewCache)  # the dashboard's figures (trial_overview)
    #: The reads of a page or an API GET (:meth:`read`, :func:`reading`): ``read_engine``, in autocommit on
    #: PostgreSQL (see :func:`page_reads`).
    page_engine: Engine = field(init=False)

    def __post_init__(self) -> None:
        self.page_engine = page_reads(self.read_engine)

    def _site_zones(self, conn: Connection | None = None) -> dict[str, str | None]:
        """Every live site's code -> its time zone, re-read every 30 s (sites change rarely)."""
        now = time.monotonic()
        if self._sites is None or now - self._sites[0] > 30:
            from sqlalchemy import select

            from abscopal.store.tables import ENTITIES

            table = ENTITIES["sites"].table
            query = select(table.c.code, table.c.time_zone).where(table.c.removed_reason.is_(None))
            if conn is None:
                with self.read() as own:
                    rows = own.execute(query).all()
            else:
                rows = conn.execute(query).all()
            self._sites = (now, {str(code): zone for code, zone in rows})
        return self._sites[1]

    def site_codes(self, conn: Connection) -> tuple[str, ...]:
        """The trial's site codes (every request needs them to expand ``*``)."""
        return tuple(self._site_zones(conn))

    def time_zone_of(self, account: Account | None) -> str:
        """Where an account's times are shown: its first site's zone (web.md §8), else the trial's default."""
        if account is not None:
            zones = self._site_zones()
            for m in account.memberships:
                zone = zones.get(m.site_code)
                if zone:
                    return zone
        return self.default_time_zone

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One short write transaction; a database error becomes a sentence (busy, down: 503)."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise database_error(exc) from None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.page_engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise database_error(exc) from None


@dataclass(frozen=True)
class Principal:
    """The signed-in account and how it signed in (a browser session, or a personal token when ``session`` is None)."""

    account: Account
    session: Session | None

    @property
    def username(self) -> str:
        return self.account.username

    def actor(self, site_code: str | None = None) -> Actor:
        return self.account.actor(site_code)

    def may(self, action: Action) -> bool:
        return bool(self.account.roles & PERMISSIONS[action])


def state_of(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


def _resolve(request: Request) -> Principal | None:
    state = state_of(request)
    auth = request.headers.get("authorization", "")
    session: Session | None = None
    writes: list[Executable] = []
    subject_id = request.path_params.get("subject_id")
    with state.read() as conn:
        if auth.lower().startswith("bearer "):
            username, why = resolve_token(conn, auth[7:].strip(), writes)
            account = load_account(conn, username, state.site_codes(conn)) if username is not None else None
            if subject_id is not None:  # the patient's site, read now: no second connection later
                request.state.patient_site = _site_of(conn, subject_id)
        else:
            token = request.cookies.get(SESSION_COOKIE)
            if not token:
                return None
            # one round trip: the session, its account and memberships, the path's patient's site
            rows = conn.execute(BROWSER_REQUEST, {"token_hash": digest(token), "subject_id": subject_id}).all()
            session, why = session_from_row(conn, rows[0] if rows else None, state.timeouts, writes=writes)
            username = session.username if session is not None else None
            account = account_from_rows(rows, state.site_codes(conn)) if session is not None else None
            if subject_id is not None:
                request.state.patient_site = rows[0].patient_site if rows else None
    if writes:
        with state.write() as conn:
            for statement in writes:
                conn.execute(statement)
    if username is None:
        if session is None and not auth.lower().startswith("bearer "):
            request.state.session_ended = why
            return None
        raise NotSignedIn(f"The API token is not accepted: {why}")
    if account is None or account.disabled:
        return None
    return Principal(account, session)


def principal_of(request: Request) -> Principal | None:
    """The request's principal, resolved once per request (cached on ``request.state``)."""
    if not hasattr(request.state, "principal"):
        request.state.principal = _resolve(request)
    principal: Principal | None = request.state.principal
    return principal


async def check_csrf(request: Request, principal: Principal) -> None:
    if principal.session is None:  # a bearer token is not sent by a browser on its own: no CSRF
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, principal.session.csrf_token):
        raise CsrfRefused(
            "The form's security token is missing or out of date (CSRF protection); reload the page and try again"
        )


async def refuse_nul(request: Request) -> None:
    """Refuse a NUL character anywhere in the request (PostgreSQL text cannot hold one): 422 naming where."""
    for name, value in [*request.path_params.items(), *request.query_params.items()]:
        if "\x00" in str(value):
            raise ValidationError(name, "contains a NUL character, which no field can hold")
    if request.method in SAFE_METHODS:
        return
    kind = request.headers.get("content-type", "")
    if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # parsed once and cached: the route's Form() parameters read the same
        for name, item in form.multi_items():
            if isinstance(item, str) and "\x00" in item:
                raise ValidationError(name, "contains a NUL character, which no field can hold")
        return
    body = await request.body()
    if b"\\u0000" in body or b"\x00" in body:
        raise ValidationError("body", "contains a NUL character, which no field can hold")


def _site_of(conn: Connection, subject_id: str) -> str | None:
    site: str | None = conn.execute(PATIENT_SITE, {"subject_id": subject_id}).scalar_one_or_none()
    return site


def check_patient_scope(request: Request, principal: Principal) -> None:
    """A route naming ``{subject_id}``: another site's (or an unknown) patient is 404 before anything else runs,
    so that a write to it is refused the same way as a read (web.md §2: existence is not leaked)."""
    subject_id = request.path_params.get("subject_id")
    if subject_id is None:
        return
    if hasattr(request.state, "patient_site"):
        site = request.state.patient_site
    else:
        with state_of(request).read() as conn:
            site = _site_of(conn, subject_id)
    account = principal.account
    visible = site is not None and (
        account.subject_id == subject_id
        if account.roles == {Role.PATIENT}
        else Role.STATISTICIAN in account.roles or any(m.site_code in (site, EVERY_SITE) for m in account.memberships)
    )
    if not visible:
        raise NotFound(Message(N_("No patient {subject} at your sites"), subject=repr(subject_id)))


def refuse(request: Request, principal: Principal, action: RouteAction, sentence: str) -> PermissionDenied:
    """Audit a permission refusal and return the error to raise (web.md §6)."""
    state = state_of(request)
    with state.write() as conn:
        security_event(conn, principal.username, "refused", f"{request.method} {request.url.path}: {sentence}")
    return PermissionDenied(sentence)


def requires(action: RouteAction) -> Callable[[Request], Awaitable[Principal | None]]:
    """The dependency that declares a route's action and enforces it (``PUBLIC`` and ``SIGNED_IN`` included)."""

    async def dependency(request: Request) -> Principal | None:
        await refuse_nul(request)
        if action == PUBLIC:
            return await run_in_threadpool(principal_of, request)
        principal = await run_in_threadpool(principal_of, request)
        if principal is None:
            why = getattr(request.state, "session_ended", None)
            raise NotSignedIn(
                "Your session has ended (no request for 30 minutes, or 12 hours since you signed in); sign in again"
                if why in ("idle", "expired")
                else "Sign in first"
            )
        if request.method not in SAFE_METHODS:
            await check_csrf(request, principal)
        if isinstance(action, Action) and not principal.may(action):
            roles = role_names(principal.account.roles) if principal.account.roles else Message(N_("no role"))
            sentence = Message(
                N_("{user} ({roles}) may not do '{action}'"),
                user=principal.username,
                roles=roles,
                action=Term(action.value, ACTION_CONTEXT),
            )
            raise await run_in_threadpool(refuse, request, principal, action, sentence)
        if action != SIGNED_IN:
            if hasattr(request.state, "patient_site"):
                check_patient_scope(request, principal)  # no I/O: the site was read with the session
            else:
                await run_in_threadpool(check_patient_scope, request, principal)
        return principal

    dependency.action = action  # type: ignore[attr-defined]
    return dependency


def declared_action(route: Any) -> RouteAction | None:
    """The action a route declares through :func:`requires` (None: the route declares none, a bug)."""
    dependant = getattr(route, "dependant", None)
    stack = list(dependant.dependencies) if dependant is not None else []
    while stack:
        dep = stack.pop()
        found = getattr(dep.call, "action", None)
        if found is not None:
            return found  # type: ignore[no-any-return]
        stack.extend(dep.dependencies)
    return None


def confirm_signing_password(request: Request, principal: Principal, password: str) -> None:
    """Password re-entry at signing (21 CFR 11.200(a), web.md §5), in its own write transaction: a wrong password
    is counted (three lock the account) and that count commits before the refusal is raised."""
    from abscopal.web.accounts import LoginRefused, confirm_password

    refused: AbscopalError | None = None
    with state_of(request).write() as conn:
        try:
            confirm_password(conn, principal.username, password)
        except (ValidationError, LoginRefused) as exc:
            refused = exc  # leave the block normally, so that the counted failure (and a lock-out) commits
    if refused is not None:
        raise refused


@contextmanager
def unit_of_work(request: Request, principal: Principal, reason: str) -> Iterator[UnitOfWork]:
    """A unit of work that audits ``principal`` and ``reason`` (the services commit inside it)."""
    with UnitOfWork(state_of(request).engine, principal.username, reason) as uow:
        yield uow


@contextmanager
def reading(request: Request, principal: Principal) -> Iterator[UnitOfWork]:
    """A unit of work on the read engine (no SQLite write lock): for pages and GETs, never committed."""
    state = state_of(request)
    with UnitOfWork(state.page_engine, principal.username, "read") as uow:
        yield uow
