"""Server-side sessions and personal API tokens (web.md §6).

The browser holds a random session token in an ``HttpOnly`` cookie; the database holds only its SHA-256, so a
copy of the database opens no session. A session ends after ``idle`` without a request (30 minutes by default)
or ``absolute`` after login (12 hours), at logout, or when the account is locked or disabled. Each session has
its own CSRF token, sent back by forms (a hidden field) and htmx (a header) on every unsafe method. Personal API
tokens are shown once, stored hashed, carry the owner's roles and sites, and can expire and be revoked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Executable, Row, bindparam, insert, select, update

from abscopal.errors import NotFound, ValidationError
from abscopal.store.ids import new_id
from abscopal.store.tables import ENTITIES, accounts, api_tokens, memberships, web_sessions
from abscopal.web.accounts import ACCOUNT_COLUMNS, utcnow

patients = ENTITIES["patients"].table

TOKEN_PREFIX = "abs_"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


@dataclass(frozen=True)
class Timeouts:
    idle: dt.timedelta = dt.timedelta(minutes=30)
    absolute: dt.timedelta = dt.timedelta(hours=12)
    touch_every: dt.timedelta = dt.timedelta(seconds=30)  # how stale last_seen may get before it is written


@dataclass(frozen=True)
class Session:
    token_hash: str
    username: str
    csrf_token: str
    created_at: dt.datetime
    last_seen_at: dt.datetime


def start_session(conn: Connection, username: str, now: dt.datetime | None = None) -> tuple[str, Session]:
    """A new session for ``username``: (the cookie's token, the stored session)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session = Session(digest(token), username, secrets.token_urlsafe(32), now, now)
    conn.execute(
        insert(web_sessions).values(
            token_hash=session.token_hash, username=username, csrf_token=session.csrf_token, created_at=now,
            last_seen_at=now,
        )
    )  # fmt: skip
    return token, session


def resolve_session(
    conn: Connection, token: str, timeouts: Timeouts, now: dt.datetime | None = None,
    writes: list[Executable] | None = None,
) -> tuple[Session | None, str | None]:  # fmt: skip
    """The live session of ``token`` (touched), or (None, why it ended) — ended sessions stay ended.

    With ``writes``, the updates (touch, end) are appended there for the caller to run in a write transaction, so
    that reading a session never takes SQLite's write lock unless something must be written.
    """
    row = conn.execute(_SESSION, {"token_hash": digest(token)}).first()
    return session_from_row(conn, row, timeouts, now, writes)


def session_from_row(
    conn: Connection, row: Any, timeouts: Timeouts, now: dt.datetime | None = None,
    writes: list[Executable] | None = None,
) -> tuple[Session | None, str | None]:  # fmt: skip
    """:func:`resolve_session` from the session's row as read (``web_sessions``' columns; None: no such session)."""
    if row is None:
        return None, "unknown"
    if row.ended_at is not None:
        return None, str(row.ended_why or "ended")
    now = now or utcnow()
    pending: list[Executable] = []
    created, seen = _utc(row.created_at), _utc(row.last_seen_at)
    why = None
    if now - created > timeouts.absolute:
        why = "expired"
    elif now - seen > timeouts.idle:
        why = "idle"
    if why is not None:
        pending.append(
            update(web_sessions)
            .where(web_sessions.c.token_hash == row.token_hash, web_sessions.c.ended_at.is_(None))
            .values(ended_at=now, ended_why=why)
        )
    elif now - seen > timeouts.touch_every:
        pending.append(update(web_sessions).where(web_sessions.c.token_hash == row.token_hash).values(last_seen_at=now))
    _run(conn, pending, writes)
    if why is not None:
        return None, why
    return Session(row.token_hash, row.username, row.csrf_token, created, seen), None


#: The session look-up, built once: every request makes it (see ``accounts._ACCOUNT``).
_SESSION = select(web_sessions).where(web_sessions.c.token_hash == bindparam("token_hash"))

#: The site of a live patient (``:subject_id``), the site check every patient route makes first (web.md §2).
PATIENT_SITE = select(patients.c.site_code).where(
    patients.c.subject_id == bindparam("subject_id"), patients.c.removed_reason.is_(None)
)

#: A browser request's one round trip: its session, the session's account with a row per membership, and the site
#: of the patient its path names (``subject_id``; None when it names none, or an unknown or removed patient).
BROWSER_REQUEST = (
    select(
        *web_sessions.c,
        *ACCOUNT_COLUMNS,
        PATIENT_SITE.scalar_subquery().label("patient_site"),
    )
    .select_from(
        web_sessions.outerjoin(accounts, accounts.c.username == web_sessions.c.username).outerjoin(
            memberships, memberships.c.username == accounts.c.username
        )
    )
    .where(web_sessions.c.token_hash == bindparam("token_hash"))
    .order_by(memberships.c.site_code)
)


def _run(conn: Connection, statements: list[Executable], writes: list[Executable] | None) -> None:
    if writes is not None:
        writes.extend(statements)
        return
    for statement in statements:
        conn.execute(statement)


def end_session(conn: Connection, token_hash: str, why: str = "logout") -> None:
    conn.execute(
        update(web_sessions)
        .where(web_sessions.c.token_hash == token_hash, web_sessions.c.ended_at.is_(None))
        .values(ended_at=utcnow(), ended_why=why)
    )


# --- personal API tokens


@dataclass(frozen=True)
class ApiToken:
    id: str
    username: str
    name: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None

    @property
    def live(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > utcnow())


def _token(r: Row[Any]) -> ApiToken:
    return ApiToken(
        r.id, r.username, r.name, _utc(r.created_at), _utc(r.expires_at) if r.expires_at else None,
        _utc(r.revoked_at) if r.revoked_at else None, _utc(r.last_used_at) if r.last_used_at else None,
    )  # fmt: skip


def create_token(
    conn: Connection, username: str, name: str, expires_at: dt.datetime | None = None
) -> tuple[str, ApiToken]:
    """A new token for ``username``: (the secret, shown once; the stored token)."""
    label = name.strip()
    if not label or len(label) > 100:
        raise ValidationError("name", "a token needs a name of 1-100 characters (what it is for)")
    now = utcnow()
    if expires_at is not None and _utc(expires_at) <= now:
        raise ValidationError("expires_at", "the expiry must be in the future")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = new_id()
    conn.execute(
        insert(api_tokens).values(
            id=token_id, username=username, name=label, token_hash=digest(secret), created_at=now,
            expires_at=_utc(expires_at) if expires_at else None,
        )
    )  # fmt: skip
    return secret, ApiToken(token_id, username, label, now, expires_at, None, None)


def tokens_of(conn: Connection, username: str) -> list[ApiToken]:
    rows = conn.execute(
        select(api_tokens).where(api_tokens.c.username == username).order_by(api_tokens.c.created_at.desc())
    ).all()
    return [_token(r) for r in rows]


def revoke_token(conn: Connection, username: str, token_id: str) -> ApiToken:
    row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id, api_tokens.c.username == username)).first()
    if row is None:
        raise NotFound(f"No token {token_id!r} of yours")
    if row.revoked_at is None:
        conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=utcnow()))
    return _token(conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).one())


def resolve_token(
    conn: Connection, secret: str, writes: list[Executable] | None = None
) -> tuple[str | None, str | None]:
    """(the owner's username, None) for a live token, else (None, why not)."""
    row = conn.execute(select(api_tokens).where(api_tokens.c.token_hash == digest(secret))).first()
    if row is None:
        return None, "unknown token"
    if row.revoked_at is not None:
        return None, "the token was revoked"
    now = utcnow()
    if row.expires_at is not None and _utc(row.expires_at) <= now:
        return None, "the token has expired"
    disabled = conn.execute(select(accounts.c.disabled).where(accounts.c.username == row.username)).scalar_one()
    if disabled:
        return None, "the token's account is disabled"
    if row.last_used_at is None or now - _utc(row.last_used_at) > dt.timedelta(minutes=1):
        _run(conn, [update(api_tokens).where(api_tokens.c.id == row.id).values(last_used_at=now)], writes)
    return str(row.username), None
