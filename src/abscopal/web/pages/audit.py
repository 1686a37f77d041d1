"""The trial-wide audit trail (web.md §2, §8): filters (user, entity, event, patient, since, until), newest first,
one page at a time (:func:`abscopal.web.audit_view.trail`). Investigators read their own sites' records only;
data managers, monitors and administrators read everything (security events included)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from abscopal import domain as d
from abscopal.errors import ValidationError
from abscopal.services.common import Action
from abscopal.store.tables import ENTITIES
from abscopal.web.audit_view import SECURITY, trail
from abscopal.web.context import Principal, requires, state_of
from abscopal.web.records import BY_ENTITY
from abscopal.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
EVENTS = ("login", "login_failed", "login_refused", "locked_out", "logout", "refused", "signed",
          "signature_password_failed", "exported")  # fmt: skip
SITE_SCOPED = frozenset({d.Role.INVESTIGATOR})  # "R (own sites)" in web.md §2


def _day(text: str, name: str, zone: str, end: bool = False) -> dt.datetime | None:
    """A date of the filter form (the local day in ``zone``) as a UTC time: its start, or the next day's start."""
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ValidationError(name, f"{text!r} is not a date (YYYY-MM-DD)") from None
    if end:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(), ZoneInfo(zone)).astimezone(dt.UTC)


@router.get("/audit")
def audit_page(
    request: Request,
    principal: Annotated[Principal, Depends(requires(Action.AUDIT_VIEW))],
    user: Annotated[str, Query(max_length=100)] = "",
    entity: Annotated[str, Query(max_length=60)] = "",
    event: Annotated[str, Query(max_length=60)] = "",
    subject: Annotated[str, Query(max_length=100)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    state = state_of(request)
    zone = state.time_zone_of(principal.account)
    scoped = principal.account.roles <= SITE_SCOPED
    sites = principal.actor().sites if scoped else None
    error = None
    try:
        if entity and entity not in ENTITIES and entity not in ("security", "accounts"):
            raise ValidationError("entity", f"{entity!r} is not a kind of record")
        with state.read() as conn:
            page = trail(
                conn, user=user or None, entity=entity or None, event=event or None, subject_id=subject or None,
                since=_day(since, "since", zone), until=_day(until, "until", zone, end=True), limit=PAGE_SIZE,
                before_seq=before, sites=sites,
            )  # fmt: skip
    except ValidationError as exc:
        error = str(exc)
        with state.read() as conn:
            page = trail(conn, limit=PAGE_SIZE, sites=sites)
    links = {}
    for r in page.rows:
        res = BY_ENTITY.get(r.entity)
        if res is not None and r.subject_id:
            links[r.seq] = f"/patients/{r.subject_id}/{res.slug}/{r.entity_key}"
    filters = {"user": user, "entity": entity, "event": event, "subject": subject, "since": since, "until": until}
    entities = sorted(set(ENTITIES) | {"accounts"} | ({SECURITY} if not scoped else set()))
    return render(
        request, "audit.html", page=page, links=links, filters=filters, entities=entities,
        events=EVENTS if not scoped else (), error=error, scoped=scoped, first_page=before is None,
        filtered=any(filters.values()),
    )  # fmt: skip
