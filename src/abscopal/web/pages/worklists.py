"""The lists behind the dashboard's numbers (issue 12 item 9): visits overdue or due soon, serious adverse events
waiting to be reported, protocol deviations — each row links to its patient or record.

The rows are the dashboard's own (:mod:`abscopal.web.trial_overview`), so a number and its list always agree.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from abscopal.services.common import Action
from abscopal.web.context import Principal, requires, state_of
from abscopal.web.i18n import N_
from abscopal.web.pages.records import is_patient
from abscopal.web.templating import render
from abscopal.web.trial_overview import DUE_SOON_DAYS, LIST_LIMIT, Overview

router = APIRouter(include_in_schema=False)
#: Labels of the calendar's visit kinds (protocol.calendar.VisitKind values).
VISIT_KINDS = {
    "cfrt_fraction": N_("conventional RT fraction"),
    "ldrt_fraction": N_("low-dose RT fraction"),
    "immunotherapy": N_("immunotherapy cycle"),
    "tumour_assessment": N_("tumour assessment"),
    "questionnaire": N_("questionnaire"),
    "follow_up": N_("follow-up"),
}

#: Labels of the calendar's visit statuses (protocol.calendar.VisitStatus values).
VISIT_STATUSES = {
    "done": N_("done"),
    "done_out_of_window": N_("done, out of window"),
    "overdue": N_("overdue"),
    "due": N_("due"),
    "upcoming": N_("upcoming"),
    "unscheduled": N_("unscheduled"),
    "not_expected": N_("not expected"),
}


def _overview(request: Request, principal: Principal) -> Overview:
    with state_of(request).read() as conn:
        return state_of(request).overview.get(
            conn, principal.actor(), state_of(request).protocols, state_of(request).read_engine
        )


@router.get("/worklist/visits")
def visits_page(
    request: Request, principal: Annotated[Principal, Depends(requires(Action.READ))],
    status: Annotated[str, Query(pattern="^(overdue|due)$")] = "overdue",
) -> Response:  # fmt: skip
    if is_patient(principal):
        return RedirectResponse(f"/patients/{principal.account.subject_id}", status_code=303)
    o = _overview(request, principal)
    rows = o.overdue if status == "overdue" else o.due_soon
    return render(
        request, "worklist_visits.html", overview=o, status=status, rows=rows[:LIST_LIMIT], total=len(rows),
        kinds=VISIT_KINDS, statuses=VISIT_STATUSES, due_soon_days=DUE_SOON_DAYS,
    )  # fmt: skip


@router.get("/worklist/saes")
def saes_page(request: Request, principal: Annotated[Principal, Depends(requires(Action.READ))]) -> Response:
    if is_patient(principal):
        return RedirectResponse(f"/patients/{principal.account.subject_id}", status_code=303)
    o = _overview(request, principal)
    return render(request, "worklist_saes.html", overview=o, rows=o.saes[:LIST_LIMIT], total=len(o.saes))


@router.get("/worklist/deviations")
def deviations_page(
    request: Request, principal: Annotated[Principal, Depends(requires(Action.READ))],
    deviation_class: Annotated[str, Query(alias="class", pattern="^(|major|minor)$")] = "",
) -> Response:  # fmt: skip
    if is_patient(principal):
        return RedirectResponse(f"/patients/{principal.account.subject_id}", status_code=303)
    o = _overview(request, principal)
    rows = [r for r in o.deviations if not deviation_class or r.deviation_class == deviation_class]
    return render(
        request, "worklist_deviations.html", overview=o, rows=rows[:LIST_LIMIT], total=len(rows),
        deviation_class=deviation_class,
    )  # fmt: skip
