"""The queries inbox (web.md §2, §8): the caller's data queries with their age, and the forms that move them on
(answer for site staff; close and reopen for data managers and monitors). Each form posts with htmx and the
answer replaces its row; without JavaScript it posts and comes back to the inbox. Every transition is a service
call (:mod:`abscopal.services.queries`), as in the API.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from abscopal import domain as d
from abscopal.errors import ConflictError, NotFound, ValidationError
from abscopal.messages import N_, Message
from abscopal.services import queries
from abscopal.services.common import Action
from abscopal.web.context import Principal, reading, requires, state_of, unit_of_work
from abscopal.web.inbox import AGE_BUCKETS, InboxRow, query_inbox
from abscopal.web.pages.records import is_patient, posted_form
from abscopal.web.records import BY_ENTITY
from abscopal.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 100
STATUSES = ("", "open", "answered", "closed")


def row_context(principal: Principal, row: InboxRow) -> dict[str, Any]:
    """What the row's template needs: the record's link and which forms the caller may use."""
    res = BY_ENTITY.get(row.entity)
    link = f"/patients/{row.subject_id}/{res.slug}/{row.record_id}" if res and row.record_id else None
    own = row.raised_by == principal.username
    may_close = principal.may(Action.CLOSE_QUERY) and (d.Role.MONITOR not in principal.account.roles or own)
    return {
        "q": row, "link": link, "what": res.title if res else row.entity,
        "may_answer": principal.may(Action.ANSWER_QUERY) and row.status is d.QueryStatus.OPEN,
        "may_close": may_close and row.status is not d.QueryStatus.CLOSED,
        "may_reopen": may_close and row.status is not d.QueryStatus.OPEN,
    }  # fmt: skip


@router.get("/queries")
def inbox_page(
    request: Request, principal: Annotated[Principal, Depends(requires(Action.READ))],
    status: Annotated[str, Query(max_length=20)] = "", mine: bool = False,
    age: Annotated[int | None, Query(ge=0, le=3, description="an age bucket of the dashboard")] = None,
) -> Response:  # fmt: skip
    if is_patient(principal):  # a patient has no queries to see: its own questionnaires instead
        return RedirectResponse(f"/patients/{principal.account.subject_id}", status_code=303)
    error = None
    with state_of(request).read() as conn:
        try:
            rows = query_inbox(conn, principal.actor(), status=status or None, mine=mine, limit=PAGE_SIZE + 1, age=age)
        except ValidationError as exc:
            error, status = str(exc), ""
            rows = query_inbox(conn, principal.actor(), mine=mine, limit=PAGE_SIZE + 1)
    return render(
        request, "queries.html", rows=[row_context(principal, r) for r in rows[:PAGE_SIZE]], more=len(rows) > PAGE_SIZE,
        status=status, mine=mine, statuses=STATUSES, error=error, age=age,
        age_label=AGE_BUCKETS[age] if age is not None else None,
        answers=principal.may(Action.ANSWER_QUERY), closes=principal.may(Action.CLOSE_QUERY),
    )  # fmt: skip


def _row(request: Request, principal: Principal, query_id: str) -> InboxRow:
    with reading(request, principal) as uow:
        stored = uow.queries.get(query_id)
        rows = query_inbox(uow, principal.actor(), status=stored.value.status.value, subject_id=stored.value.subject_id)
    for r in rows:
        if r.id == query_id:
            return r
    raise NotFound(Message(N_("No query {record} at your sites"), record=repr(query_id)))


def _transition(request: Request, principal: Principal, query_id: str, posted: dict[str, str], what: str) -> Response:
    error: str | None = None
    status = 200
    text = (posted.get("answer") if what == "answer" else posted.get("reason")) or ""
    version_text = (posted.get("version") or "").strip()
    try:
        if not version_text.isdigit():
            raise ValidationError("version", "the form did not say which version of the query it was based on")
        version = int(version_text)
        if what in ("answer", "reopen") and not text.strip():
            raise ValidationError(
                "answer" if what == "answer" else "reason",
                "an answer cannot be empty" if what == "answer" else "reopening a query needs a reason",
            )
        reason = {"answer": "query answered", "close": "query closed"}.get(what, text.strip() or "query reopened")
        with unit_of_work(request, principal, reason) as uow:
            stored = uow.queries.get(query_id)
            actor = principal.actor(_site_of(uow, stored.value.subject_id))
            if what == "answer":
                queries.answer_query(uow, actor, query_id, version=version, answer=text)
            elif what == "close":
                queries.close_query(uow, actor, query_id, version=version)
            else:
                queries.reopen_query(uow, actor, query_id, version=version, reason=text)
    except (ValidationError, ConflictError) as exc:
        error, status = str(exc), 409 if isinstance(exc, ConflictError) else 422
    if not request.headers.get("hx-request"):
        if error is None:
            return RedirectResponse("/queries", status_code=303)
        row = _row(request, principal, query_id)
        return render(
            request, "queries.html", status_code=status, rows=[row_context(principal, row)], more=False, status="",
            mine=False, statuses=STATUSES, error=error, answers=principal.may(Action.ANSWER_QUERY),
            closes=principal.may(Action.CLOSE_QUERY),
        )  # fmt: skip
    row = _row(request, principal, query_id)
    return render(request, "_query_row.html", status_code=status, error=error, **row_context(principal, row))


def _site_of(uow: Any, subject_id: str) -> str | None:
    found = uow.patients.find(subject_id=subject_id)
    return found.value.site_code if found is not None else None


@router.post("/queries/{query_id}/answer")
async def answer(
    query_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.ANSWER_QUERY))]
) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(_transition, request, principal, query_id, posted, "answer")


@router.post("/queries/{query_id}/close")
async def close(
    query_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.CLOSE_QUERY))]
) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(_transition, request, principal, query_id, posted, "close")


@router.post("/queries/{query_id}/reopen")
async def reopen(
    query_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.CLOSE_QUERY))]
) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(_transition, request, principal, query_id, posted, "reopen")
