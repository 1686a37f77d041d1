"""The signed-in user's own page (web.md §6, §8): language, password change, personal API tokens.

A token's secret is shown once, on the page that created it; only its hash is stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from abscopal.errors import ValidationError
from abscopal.store.tables import accounts
from abscopal.web.accounts import password_matches, set_language, set_password
from abscopal.web.context import SIGNED_IN, Principal, requires, state_of
from abscopal.web.i18n import LANGUAGE_NAMES, N_, gettext
from abscopal.web.pages.records import posted_form
from abscopal.web.sessions import create_token, revoke_token, tokens_of
from abscopal.web.templating import language_of, render

router = APIRouter(include_in_schema=False)
NOTICES = {"language": N_("Your language was saved."), "password": N_("Your password was changed."),
           "revoked": N_("The token was revoked.")}  # fmt: skip


def _page(
    request: Request, principal: Principal, *, notice: str | None = None, errors: dict[str, str] | None = None,
    status: int = 200, posted: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    with state_of(request).read() as conn:
        tokens = tokens_of(conn, principal.username)
    return render(
        request, "profile.html", status_code=status, tokens=tokens, notice=notice, errors=errors or {},
        posted=posted or {}, languages=LANGUAGE_NAMES,
    )  # fmt: skip


@router.get("/profile")
def profile_page(
    request: Request, principal: Annotated[Principal, Depends(requires(SIGNED_IN))], notice: str | None = None
) -> Response:
    return _page(request, principal, notice=NOTICES.get(notice or ""))


@router.post("/profile/language")
async def change_language(request: Request, principal: Annotated[Principal, Depends(requires(SIGNED_IN))]) -> Response:
    posted = await posted_form(request)

    def run() -> Response:
        try:
            with state_of(request).write() as conn:
                set_language(conn, username=principal.username, language=posted.get("language") or "")
        except ValidationError as exc:
            return _page(request, principal, errors={"language": exc.reason}, status=422)
        response = RedirectResponse("/profile?notice=language", status_code=303)
        response.set_cookie("abscopal_lang", posted.get("language") or "en", samesite="lax", path="/")
        return response

    return await run_in_threadpool(run)


@router.post("/profile/password")
async def change_password(request: Request, principal: Annotated[Principal, Depends(requires(SIGNED_IN))]) -> Response:
    posted = await posted_form(request)

    def run() -> Response:
        current, new, again = (posted.get(k) or "" for k in ("current_password", "new_password", "new_password_again"))
        errors: dict[str, str] = {}
        with state_of(request).read() as conn:
            stored = conn.execute(
                select(accounts.c.password_hash).where(accounts.c.username == principal.username)
            ).scalar_one()
        if not password_matches(stored, current):
            errors["current_password"] = gettext(language_of(request), N_("That is not your current password."))
        if new != again:
            errors["new_password_again"] = gettext(language_of(request), N_("The two new passwords differ."))
        if not errors:
            try:
                with state_of(request).write() as conn:
                    set_password(conn, by=principal.username, username=principal.username, password=new,
                                 reason="password changed by its owner")  # fmt: skip
            except ValidationError as exc:
                errors["new_password"] = exc.reason
        if errors:
            return _page(request, principal, errors=errors, status=422)
        return RedirectResponse("/profile?notice=password", status_code=303)

    return await run_in_threadpool(run)


@router.post("/profile/tokens")
async def new_token(request: Request, principal: Annotated[Principal, Depends(requires(SIGNED_IN))]) -> Response:
    posted = await posted_form(request)

    def run() -> Response:
        name = posted.get("name") or ""
        expires_text = (posted.get("expires_on") or "").strip()
        try:
            expires = None
            if expires_text:
                try:
                    day = dt.date.fromisoformat(expires_text)
                except ValueError:
                    raise ValidationError("expires_at", f"{expires_text!r} is not a date (YYYY-MM-DD)") from None
                zone = ZoneInfo(state_of(request).time_zone_of(principal.account))
                expires = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
            with state_of(request).write() as conn:
                secret, token = create_token(conn, principal.username, name, expires)
        except ValidationError as exc:
            field = {"expires_at": "expires_on"}.get(exc.field, exc.field)
            return _page(request, principal, errors={field: exc.reason}, status=422, posted=posted)
        return render(request, "token_created.html", secret=secret, token=token)

    return await run_in_threadpool(run)


@router.post("/profile/tokens/{token_id}/revoke")
async def revoke(
    token_id: str, request: Request, principal: Annotated[Principal, Depends(requires(SIGNED_IN))]
) -> Response:
    def run() -> Response:
        with state_of(request).write() as conn:
            revoke_token(conn, principal.username, token_id)
        return RedirectResponse("/profile?notice=revoked", status_code=303)

    return await run_in_threadpool(run)
