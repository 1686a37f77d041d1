"""The login and logout pages and the language switch (web.md §6, §8)."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from abscopal.web.accounts import LoginRefused, security_event, set_language
from abscopal.web.api.session import sign_in
from abscopal.web.context import PUBLIC, SIGNED_IN, Principal, check_csrf, requires, state_of
from abscopal.web.i18n import LANGUAGE_NAMES, N_, gettext
from abscopal.web.sessions import end_session
from abscopal.web.templating import language_of, render
from abscopal.web.web_session import clear_session_cookie, secure, set_session_cookie

router = APIRouter(include_in_schema=False)
LOGIN_CSRF = "abscopal_login_csrf"


def _safe_next(target: str | None) -> str:
    """Only a path of this site (no scheme, no ``//host``): an open redirect is refused."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(request: Request, next_: str, error: str | None = None, status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", status_code=status, next=next_, error=error, login_csrf=token)
    response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", secure=secure(request), path="/login")
    return response


@router.get("/login")
def login_page(
    request: Request, principal: Annotated[Principal | None, Depends(requires(PUBLIC))], next: str | None = None
) -> Response:
    if principal is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_page(request, _safe_next(next))


@router.post("/login")
def login(
    request: Request,
    _: Annotated[Principal | None, Depends(requires(PUBLIC))],
    username: Annotated[str, Form(max_length=100)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str, Form()] = "/",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF, "")
    if not cookie or not hmac.compare_digest(cookie, csrf_token):
        expired = gettext(language_of(request), N_("The sign-in form had expired; please try again."))
        return _login_page(request, _safe_next(next), expired, 403)
    if not username.strip() or not password:
        missing = gettext(language_of(request), N_("Enter your username and password."))
        return _login_page(request, _safe_next(next), missing, 422)
    try:
        token, _principal = sign_in(request, username.strip(), password)
    except LoginRefused as exc:
        return _login_page(request, _safe_next(next), str(exc), 401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(request, response, token)
    response.delete_cookie(LOGIN_CSRF, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, principal: Annotated[Principal, Depends(requires(SIGNED_IN))]) -> Response:
    with state_of(request).write() as conn:
        if principal.session is not None:
            end_session(conn, principal.session.token_hash)
        security_event(conn, principal.username, "logout", "signed out")
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response


@router.post("/language")
async def switch_language(
    request: Request,
    principal: Annotated[Principal | None, Depends(requires(PUBLIC))],
    language: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Switch the page language: saved on the account when signed in (CSRF checked), else in a cookie."""
    if language not in LANGUAGE_NAMES:
        language = "en"
    response = RedirectResponse(_safe_next(next), status_code=303)
    if principal is not None:
        await check_csrf(request, principal)  # a public route (the login page has the switch too): checked here

        def save() -> None:
            with state_of(request).write() as conn:
                set_language(conn, username=principal.username, language=language)

        await run_in_threadpool(save)
    response.set_cookie("abscopal_lang", language, samesite="lax", secure=secure(request), path="/")
    return response
