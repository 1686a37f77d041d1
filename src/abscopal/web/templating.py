"""Server-rendered pages (Jinja2 + htmx): one environment per language, the filters pages share, the base context.

Dates are ISO 8601, stored in UTC and shown in the site's time zone (web.md §8); every page gets the signed-in
principal, the CSRF token for its forms and htmx requests, and the language switch.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup

from abscopal import domain as d
from abscopal.domain import DEFAULT_TIME_ZONE
from abscopal.messages import Message
from abscopal.services.common import role_name
from abscopal.web.i18n import HTML_LANG, LANGUAGE_NAMES, N_, translate, translations

TEMPLATES = Path(__file__).parent / "templates"
#: How many translated messages a language's ``gettext`` remembers (the catalogs hold about two thousand).
MEMO_LIMIT = 20_000


def local_time(value: dt.datetime | None, zone: str | None = None, seconds: bool = False) -> str:
    """``value`` (UTC) in ``zone``, ISO 8601 with the offset: ``2026-12-01 18:30+08:00``."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    local = value.astimezone(ZoneInfo(zone or DEFAULT_TIME_ZONE))
    text = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    offset = local.strftime("%z")
    return f"{text}{offset[:3]}:{offset[3:]}"


def nav_items(principal: Any) -> list[tuple[str, str]]:
    """The main menu of the signed-in user: only what their role may open (the server refuses the rest too)."""
    from abscopal.domain import Role
    from abscopal.services.common import Action

    items = [("/", N_("Dashboard"))]
    if principal.may(Action.READ):
        patient = Role.PATIENT in principal.account.roles
        items.append(("/patients", N_("My questionnaires") if patient else N_("Patients")))
        if not patient:
            items.append(("/queries", N_("Queries")))
    if principal.may(Action.AUDIT_VIEW):
        items.append(("/audit", N_("Audit trail")))
    if principal.may(Action.EXPORT):
        items.append(("/report", N_("Trial report")))
        items.append(("/exports", N_("Exports")))
    if principal.may(Action.DICOM_IMPORT):
        items.append(("/imports/dicom", N_("DICOM RT import")))
    if principal.may(Action.ADMIN):
        items.append(("/admin/users", N_("Users")))
        items.append(("/admin/sites", N_("Sites")))
    items.append(("/profile", N_("Profile")))
    return items


def iso_date(value: dt.date | None) -> str:
    return value.isoformat() if value is not None else ""


@cache
def environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # the templates ship with the package: no stat() of each file on every page
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals["_"] = env.globals["gettext"] = remembering_gettext(language)
    env.filters["localtime"] = local_time
    env.filters["isodate"] = iso_date
    env.filters["say"] = lambda text: translate(language, text) if isinstance(text, Message) else text
    env.filters["role_name"] = lambda role: translate(language, role_name(d.Role(role)))
    env.globals["LANGUAGE_NAMES"] = LANGUAGE_NAMES
    env.globals["nav_items"] = nav_items
    return env


def remembering_gettext(language: str) -> Any:
    """Jinja's new-style ``gettext`` (the translation, escaped as Markup, ``%(name)s`` filled in, ``%%`` a percent
    sign), with the result of a message without variables remembered: a page calls ``_()`` hundreds of times, and
    Jinja's own takes two context calls, a Markup and a format for each (a tenth of the patient page's time)."""
    catalog = translations(language)
    memo: dict[tuple[str, bool], str] = {}

    @pass_context
    def gettext(context: Context, message: str, **variables: Any) -> str:
        escape = bool(context.eval_ctx.autoescape)
        if not variables:
            found = memo.get((message, escape))
            if found is None:
                text = catalog.gettext(message)
                found = (Markup(text) if escape else text) % {}
                if len(memo) < MEMO_LIMIT:  # a label made from data (e.g. a record's field) must not grow it forever
                    memo[(message, escape)] = found
            return found
        text = catalog.gettext(message)
        return (Markup(text) if escape else text) % variables

    return gettext


def language_of(request: Request) -> str:
    principal = getattr(request.state, "principal", None)
    if principal is not None:
        return str(principal.account.language)
    chosen = request.cookies.get("abscopal_lang")
    if chosen in LANGUAGE_NAMES:
        return str(chosen)
    accept = request.headers.get("accept-language", "").lower()
    return "zh_Hans" if accept.startswith("zh") else "en"


def base_context(request: Request) -> dict[str, Any]:
    principal = getattr(request.state, "principal", None)
    language = language_of(request)
    state = request.app.state.web
    return {
        "request": request,
        "principal": principal,
        "csrf_token": principal.session.csrf_token if principal is not None and principal.session else "",
        "language": language,
        "html_lang": HTML_LANG.get(language, "en"),
        "time_zone": state.time_zone_of(principal.account if principal is not None else None),
        "demo": state.demo,
        "path": request.url.path,
    }


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The page ``template`` in the user's language; a sentence passed as it is (an ``error``: ``str(exc)`` of a
    refusal, which keeps its :class:`~abscopal.messages.Message`) is translated here, so no page can forget to."""
    language = language_of(request)
    env = environment(language)
    if language != "en":
        context = {k: translate(language, v) if isinstance(v, Message) else v for k, v in context.items()}
    html = env.get_template(template).render(**base_context(request), **context)
    return HTMLResponse(html, status_code=status_code)


def render_error(request: Request, problem: dict[str, Any]) -> HTMLResponse:
    template = "_error_fragment.html" if request.headers.get("hx-request") else "error.html"
    return render(request, template, status_code=int(problem["status"]), problem=problem)
