"""The administrator's pages (web.md §1, §8): accounts (new, roles per site, disable/enable, password reset, each
change with its reason) and sites. Accounts go through :mod:`abscopal.web.accounts` (audited there), sites
through the unit of work (audited as trial configuration). The administrator never sees trial data here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from abscopal import domain as d
from abscopal.errors import DuplicateRecord, ValidationError
from abscopal.services.common import Action
from abscopal.web.accounts import (
    EVERY_SITE,
    LANGUAGES,
    Membership,
    create_account,
    list_accounts,
    require_account,
    set_disabled,
    set_memberships,
    set_password,
)
from abscopal.web.context import Principal, reading, requires, state_of, unit_of_work
from abscopal.web.i18n import LANGUAGE_NAMES, N_, gettext
from abscopal.web.pages.records import posted_form
from abscopal.web.templating import language_of, render

router = APIRouter(include_in_schema=False)
ROLES = [r.value for r in d.Role]
NOTICES = {
    "created": N_("The account was created."),
    "roles": N_("The roles were saved."),
    "disabled": N_("Disabled."),
    "enabled": N_("Enabled."),
    "password": N_("The password was reset."),
    "site": N_("The site was added."),
}


def _site_codes(request: Request, principal: Principal) -> list[tuple[str, str]]:
    with reading(request, principal) as uow:
        return [(s.value.code, s.value.name) for s in uow.sites.all()]


@router.get("/admin/users")
def users_page(
    request: Request, principal: Annotated[Principal, Depends(requires(Action.ADMIN))], notice: str | None = None
) -> Response:
    with state_of(request).read() as conn:
        users = list_accounts(conn)
    return render(request, "admin_users.html", users=users, notice=NOTICES.get(notice or ""))


def _new_form(
    request: Request, principal: Principal, posted: dict[str, str] | None = None,
    errors: dict[str, str] | None = None, error: str | None = None, status: int = 200,
) -> Response:  # fmt: skip
    return render(
        request, "admin_user_new.html", status_code=status, posted=posted or {}, errors=errors or {}, error=error,
        sites=_site_codes(request, principal), roles=ROLES, languages=LANGUAGE_NAMES, every_site=EVERY_SITE,
    )  # fmt: skip


@router.get("/admin/users/new")
def new_user_page(request: Request, principal: Annotated[Principal, Depends(requires(Action.ADMIN))]) -> Response:
    return _new_form(request, principal)


ACCOUNT_FIELDS = {"username", "full_name", "password", "language", "site", "role", "pi", "subject_id"}


def _field(
    exc: ValidationError, names: set[str], aliases: dict[str, str] | None = None
) -> tuple[dict[str, str], str | None]:
    name = (aliases or {}).get(exc.field, exc.field)
    if name in names:
        return {name: exc.reason}, None
    return {}, str(exc)


@router.post("/admin/users/new")
async def create_user(request: Request, principal: Annotated[Principal, Depends(requires(Action.ADMIN))]) -> Response:
    posted = await posted_form(request)

    def run() -> Response:
        try:
            role_text = posted.get("role") or ""
            if role_text not in ROLES:
                raise ValidationError("role", "choose the account's role")
            if (posted.get("language") or "en") not in LANGUAGES:
                raise ValidationError("language", f"the language is one of {', '.join(LANGUAGES)}")
            membership = Membership(posted.get("site") or "", d.Role(role_text), pi=bool(posted.get("pi")))
            with state_of(request).write() as conn:
                create_account(
                    conn, by=principal.username, username=posted.get("username") or "",
                    full_name=posted.get("full_name") or "", password=posted.get("password") or "",
                    memberships_=[membership], language=posted.get("language") or "en",
                    subject_id=(posted.get("subject_id") or "").strip() or None,
                )  # fmt: skip
        except ValidationError as exc:
            errors, error = _field(exc, ACCOUNT_FIELDS, {"memberships": "site"})
            return _new_form(request, principal, posted, errors, error, 422)
        return RedirectResponse(f"/admin/users/{posted.get('username', '').strip()}?notice=created", status_code=303)

    return await run_in_threadpool(run)


def _user_page(
    request: Request, principal: Principal, username: str, *, notice: str | None = None,
    errors: dict[str, str] | None = None, error: str | None = None, status: int = 200,
) -> Response:  # fmt: skip
    with state_of(request).read() as conn:
        account = require_account(conn, username)
    held = {m.site_code: m for m in account.memberships}
    every = gettext(language_of(request), N_("every site (statistician, administrator)"))
    sites = [(EVERY_SITE, every), *_site_codes(request, principal)]
    rows: list[dict[str, Any]] = [
        {"code": code, "name": name, "role": held[code].role.value if code in held else "",
         "pi": held[code].pi if code in held else False}
        for code, name in sites
    ]  # fmt: skip
    return render(
        request, "admin_user.html", status_code=status, account=account, rows=rows, roles=ROLES, notice=notice,
        errors=errors or {}, error=error,
    )  # fmt: skip


@router.get("/admin/users/{username}")
def user_page(
    username: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.ADMIN))],
    notice: str | None = None,
) -> Response:  # fmt: skip
    return _user_page(request, principal, username, notice=NOTICES.get(notice or ""))


@router.post("/admin/users/{username}")
async def change_user(
    username: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.ADMIN))]
) -> Response:
    """One of the account's forms: ``what`` is ``roles``, ``disable``, ``enable`` or ``password``."""
    posted = await posted_form(request)

    def run() -> Response:
        what = posted.get("what") or ""
        reason = (posted.get("reason") or "").strip()
        with state_of(request).read() as conn:
            require_account(conn, username)  # an unknown account is 404 whatever the form holds
        try:
            if what not in ("roles", "disable", "enable", "password"):
                raise ValidationError("what", "the form did not say what to change; reload the page")
            if not reason:
                raise ValidationError(f"{what}_reason", "every change to an account needs a reason (audit trail)")
            with state_of(request).write() as conn:
                if what == "roles":
                    ms = []
                    for key, value in posted.items():
                        if key.startswith("role:") and value:
                            code = key[5:]
                            if value not in ROLES:
                                raise ValidationError("roles_reason", f"{value!r} is not a role")
                            ms.append(Membership(code, d.Role(value), pi=bool(posted.get(f"pi:{code}"))))
                    set_memberships(conn, by=principal.username, username=username, memberships_=ms, reason=reason)
                elif what in ("disable", "enable"):
                    set_disabled(conn, by=principal.username, username=username, disabled=what == "disable",
                                 reason=reason)  # fmt: skip
                else:
                    set_password(conn, by=principal.username, username=username,
                                 password=posted.get("new_password") or "", reason=reason)  # fmt: skip
        except ValidationError as exc:
            aliases = {"memberships": "roles_reason", "site": "roles_reason", "pi": "roles_reason",
                       "subject_id": "roles_reason"}  # fmt: skip
            names = {"roles_reason", "disable_reason", "enable_reason", "password_reason", "new_password"}
            errors, error = _field(exc, names, aliases)
            return _user_page(request, principal, username, errors=errors, error=error, status=422)
        notice = {"disable": "disabled", "enable": "enabled"}.get(what, what)
        return RedirectResponse(f"/admin/users/{username}?notice={notice}", status_code=303)

    return await run_in_threadpool(run)


@router.get("/admin/sites")
def sites_page(
    request: Request, principal: Annotated[Principal, Depends(requires(Action.ADMIN))], notice: str | None = None
) -> Response:
    return _sites_page(request, principal, notice=NOTICES.get(notice or ""))


def _sites_page(
    request: Request, principal: Principal, *, notice: str | None = None, posted: dict[str, str] | None = None,
    errors: dict[str, str] | None = None, error: str | None = None, status: int = 200,
) -> Response:  # fmt: skip
    with reading(request, principal) as uow:
        sites = [s.value for s in uow.sites.all()]
    return render(
        request, "admin_sites.html", status_code=status, sites=sites, notice=notice, posted=posted or {},
        errors=errors or {}, error=error,
    )  # fmt: skip


@router.post("/admin/sites")
async def add_site(request: Request, principal: Annotated[Principal, Depends(requires(Action.ADMIN))]) -> Response:
    posted = await posted_form(request)

    def run() -> Response:
        code = (posted.get("code") or "").strip()
        name = (posted.get("name") or "").strip()
        country = (posted.get("country") or "CN").strip() or "CN"
        zone = (posted.get("time_zone") or "").strip() or None
        try:
            if not code or not all(c.isalnum() or c in "-_" for c in code) or len(code) > 20:
                raise ValidationError("code", "a site code is 1-20 letters, digits, '-' or '_'")
            if not name:
                raise ValidationError("name", "a site needs its name")
            if zone is not None:
                from zoneinfo import available_timezones

                if zone not in available_timezones():
                    raise ValidationError("time_zone", f"{zone!r} is not an IANA time zone (e.g. Asia/Shanghai)")
            with unit_of_work(request, principal, f"site {code} added") as uow:
                uow.sites.add(d.Site(code, name, country, zone))
                uow.commit()
        except DuplicateRecord as exc:
            return _sites_page(request, principal, posted=posted, errors={"code": str(exc)}, status=409)
        except ValidationError as exc:
            errors, error = _field(exc, {"code", "name", "country", "time_zone"})
            return _sites_page(request, principal, posted=posted, errors=errors, error=error, status=422)
        return RedirectResponse("/admin/sites?notice=site", status_code=303)

    return await run_in_threadpool(run)
