"""Sites, users and their roles (web.md §1, §2): the administrator's work, which never touches trial data.

Everyone signed in sees the site list (codes, names, time zones: what dates are shown in). Accounts are changed
through :mod:`abscopal.web.accounts` (every change audited with the administrator's name and reason); a site is
added through the unit of work, like ``abscopal site add``.
"""

from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from abscopal import domain as d
from abscopal.errors import ValidationError
from abscopal.services.common import Action
from abscopal.web import accounts
from abscopal.web.context import SIGNED_IN, Principal, reading, requires, state_of, unit_of_work

router = APIRouter(tags=["admin"])
_FORBID = ConfigDict(extra="forbid")
Admin = Annotated[Principal, Depends(requires(Action.ADMIN))]
_NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL
Reason = Annotated[str, Field(min_length=1, max_length=2000, pattern=_NO_NUL, description="Why (audit trail)")]


def check_time_zone(name: str) -> str:
    """``name`` when it is an IANA time zone (``Asia/Shanghai``), else a ValidationError naming ``time_zone``."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError(
            "time_zone", f"{name!r} is not an IANA time zone; use a name such as Asia/Shanghai or Europe/Paris"
        ) from None
    return name


# --- sites


class SiteOut(BaseModel):
    code: str
    name: str
    country: str
    time_zone: str | None = Field(description="IANA time zone its dates are shown in (null: the trial's default)")


class SiteIn(BaseModel):
    model_config = _FORBID
    code: str = Field(pattern=r"^[A-Z0-9][A-Z0-9_-]{0,19}$", description="1-20 capital letters, digits, - or _")
    name: str = Field(min_length=1, max_length=200, pattern=_NO_NUL)
    country: str = Field("CN", pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    time_zone: str = Field("Asia/Shanghai", min_length=1, max_length=100, pattern=_NO_NUL)
    reason: Reason = "site added"


def _site(s: d.Site) -> SiteOut:
    return SiteOut(code=s.code, name=s.name, country=s.country, time_zone=s.time_zone)


@router.get("/sites", summary="The trial's sites (everyone signed in)")
def sites_list(request: Request, principal: Annotated[Principal, Depends(requires(SIGNED_IN))]) -> list[SiteOut]:
    with reading(request, principal) as uow:
        return sorted((_site(s.value) for s in uow.sites.all()), key=lambda s: s.code)


@router.post("/sites", status_code=201, summary="Add a site")
def sites_add(body: SiteIn, request: Request, response: Response, principal: Admin) -> SiteOut:
    name = body.name.strip()
    if not name:
        raise ValidationError("name", "a site needs its name")
    site = d.Site(body.code, name, body.country, check_time_zone(body.time_zone.strip()))
    with unit_of_work(request, principal, body.reason) as uow:
        uow.sites.add(site)
        uow.commit()
    response.headers["Location"] = f"{request.url.path}/{site.code}"
    return _site(site)


# --- users


class MembershipIO(BaseModel):
    model_config = _FORBID
    site: str = Field(min_length=1, max_length=100, pattern=_NO_NUL, description="A site code, or * (every site)")
    role: d.Role
    pi: bool = Field(False, description="The site's principal investigator (investigators only)")


class UserOut(BaseModel):
    username: str
    full_name: str
    language: str
    subject_id: str | None
    disabled: bool
    memberships: list[MembershipIO]
    version: int


class UserIn(BaseModel):
    model_config = _FORBID
    username: str = Field(min_length=1, max_length=100, pattern=_NO_NUL)
    full_name: str = Field(min_length=1, max_length=200, pattern=_NO_NUL)
    password: str = Field(min_length=1, max_length=1000, pattern=_NO_NUL, description="The password policy applies")
    memberships: list[MembershipIO] = Field(min_length=1, max_length=100)
    language: Literal["en", "zh_Hans"] = "en"
    subject_id: str | None = Field(None, max_length=100, pattern=_NO_NUL, description="A patient account's patient")


class MembershipsIn(BaseModel):
    model_config = _FORBID
    memberships: list[MembershipIO] = Field(min_length=1, max_length=100)
    reason: Reason


class PasswordReset(BaseModel):
    model_config = _FORBID
    password: str = Field(min_length=1, max_length=1000, pattern=_NO_NUL, description="The new password")
    reason: Reason


class ReasonIn(BaseModel):
    model_config = _FORBID
    reason: Reason


def _user(a: accounts.Account) -> UserOut:
    return UserOut(
        username=a.username, full_name=a.full_name, language=a.language, subject_id=a.subject_id,
        disabled=a.disabled, version=a.version,
        memberships=[MembershipIO(site=m.site_code, role=m.role, pi=m.pi) for m in a.memberships],
    )  # fmt: skip


def _memberships(items: list[MembershipIO]) -> list[accounts.Membership]:
    return [accounts.Membership(m.site.strip(), m.role, m.pi) for m in items]


@router.get("/users", summary="Every account with its roles per site")
def users_list(request: Request, principal: Admin) -> list[UserOut]:
    with state_of(request).read() as conn:
        return [_user(a) for a in accounts.list_accounts(conn)]


@router.post("/users", status_code=201, summary="Create an account")
def users_create(body: UserIn, request: Request, response: Response, principal: Admin) -> UserOut:
    subject_id = body.subject_id.strip() if body.subject_id else None
    if subject_id is not None:
        with reading(request, principal) as uow:
            if uow.patients.find(subject_id=subject_id) is None:
                raise ValidationError("subject_id", f"there is no patient {subject_id!r}")
    with state_of(request).write() as conn:
        account = accounts.create_account(
            conn, by=principal.username, username=body.username, full_name=body.full_name, password=body.password,
            memberships_=_memberships(body.memberships), language=body.language, subject_id=subject_id,
        )  # fmt: skip
    response.headers["Location"] = f"{request.url.path}/{account.username}"
    return _user(account)


@router.put("/users/{username}/memberships", summary="Replace an account's roles per site")
def users_memberships(username: str, body: MembershipsIn, request: Request, principal: Admin) -> UserOut:
    with state_of(request).write() as conn:
        accounts.set_memberships(
            conn, by=principal.username, username=username, memberships_=_memberships(body.memberships),
            reason=body.reason,
        )  # fmt: skip
        return _user(accounts.require_account(conn, username))


@router.post("/users/{username}/password", summary="Reset an account's password (ends no session; clears lock-out)")
def users_password(username: str, body: PasswordReset, request: Request, principal: Admin) -> UserOut:
    with state_of(request).write() as conn:
        accounts.set_password(
            conn, by=principal.username, username=username, password=body.password, reason=body.reason
        )
        return _user(accounts.require_account(conn, username))


def _set_disabled(request: Request, principal: Principal, username: str, disabled: bool, reason: str) -> UserOut:
    if disabled and username == principal.username:
        raise ValidationError("username", "an administrator cannot disable their own account")
    with state_of(request).write() as conn:
        accounts.set_disabled(conn, by=principal.username, username=username, disabled=disabled, reason=reason)
        return _user(accounts.require_account(conn, username))


@router.post("/users/{username}/disable", summary="Disable an account (its sessions end)")
def users_disable(username: str, body: ReasonIn, request: Request, principal: Admin) -> UserOut:
    return _set_disabled(request, principal, username, True, body.reason)


@router.post("/users/{username}/enable", summary="Enable a disabled account")
def users_enable(username: str, body: ReasonIn, request: Request, principal: Admin) -> UserOut:
    return _set_disabled(request, principal, username, False, body.reason)
