"""Signing in and out through the API, the signed-in account, and personal API tokens (web.md §6, §7)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from abscopal.web.accounts import LoginRefused, authenticate, check_password_outside, security_event
from abscopal.web.context import PUBLIC, SIGNED_IN, Principal, requires, state_of
from abscopal.web.sessions import create_token, end_session, revoke_token, start_session, tokens_of
from abscopal.web.web_session import clear_session_cookie, set_session_cookie

router = APIRouter(tags=["session"])


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


class SignedIn(BaseModel):
    username: str
    full_name: str
    csrf_token: str | None = Field(None, description="Send it as X-CSRF-Token on every unsafe request")
    language: str
    memberships: list[dict[str, Any]]


def _me(principal: Principal) -> SignedIn:
    a = principal.account
    return SignedIn(
        username=a.username, full_name=a.full_name,
        csrf_token=principal.session.csrf_token if principal.session else None, language=a.language,
        memberships=[{"site": m.site_code, "role": m.role.value, "pi": m.pi} for m in a.memberships],
    )  # fmt: skip


def sign_in(request: Request, username: str, password: str) -> tuple[str, Principal]:
    """Check the password and open a session (audited either way); LoginRefused is raised after its commit."""
    state = state_of(request)
    refused: LoginRefused | None = None
    with state.read() as conn:
        ok = check_password_outside(conn, username, password)
    with state.write() as conn:
        try:
            account = authenticate(conn, username, password, password_ok=ok)
        except LoginRefused as exc:
            refused = exc
        else:
            token, session = start_session(conn, account.username)
            security_event(conn, account.username, "login", "signed in")
    if refused is not None:
        raise refused
    principal = Principal(account, session)
    request.state.principal = principal
    return token, principal


@router.post("/login", summary="Sign in: sets the session cookie and returns the CSRF token")
def api_login(
    body: Credentials, request: Request, response: Response,
    _: Annotated[Principal | None, Depends(requires(PUBLIC))],
) -> SignedIn:  # fmt: skip
    token, principal = sign_in(request, body.username, body.password)
    set_session_cookie(request, response, token)
    return _me(principal)


@router.post("/logout", status_code=204, summary="End this session")
def api_logout(
    request: Request, response: Response, principal: Annotated[Principal, Depends(requires(SIGNED_IN))]
) -> Response:
    with state_of(request).write() as conn:
        if principal.session is not None:
            end_session(conn, principal.session.token_hash)
        security_event(conn, principal.username, "logout", "signed out")
    out = Response(status_code=204)
    clear_session_cookie(out)
    return out


@router.get("/me", summary="The signed-in account, its roles and sites")
def api_me(principal: Annotated[Principal, Depends(requires(SIGNED_IN))]) -> SignedIn:
    return _me(principal)


class NewToken(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="What the token is for")
    expires_at: dt.datetime | None = Field(None, description="UTC; none: until revoked")


class TokenOut(BaseModel):
    id: str
    name: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The secret: shown once, send as `Authorization: Bearer <token>`")


@router.get("/me/tokens", summary="Your personal API tokens")
def api_tokens(request: Request, principal: Annotated[Principal, Depends(requires(SIGNED_IN))]) -> list[TokenOut]:
    with state_of(request).read() as conn:
        return [TokenOut(**t.__dict__) for t in tokens_of(conn, principal.username)]


@router.post("/me/tokens", status_code=201, summary="Create a personal API token (the secret is shown once)")
def api_create_token(
    body: NewToken, request: Request, principal: Annotated[Principal, Depends(requires(SIGNED_IN))]
) -> TokenCreated:
    with state_of(request).write() as conn:
        secret, token = create_token(conn, principal.username, body.name, body.expires_at)
        security_event(conn, principal.username, "token_created", f"API token {token.name!r} ({token.id}) created")
    return TokenCreated(token=secret, **token.__dict__)


@router.delete("/me/tokens/{token_id}", summary="Revoke one of your tokens")
def api_revoke_token(
    token_id: str, request: Request, principal: Annotated[Principal, Depends(requires(SIGNED_IN))]
) -> TokenOut:
    with state_of(request).write() as conn:
        token = revoke_token(conn, principal.username, token_id)
        security_event(conn, principal.username, "token_revoked", f"API token {token.name!r} ({token.id}) revoked")
    return TokenOut(**token.__dict__)
