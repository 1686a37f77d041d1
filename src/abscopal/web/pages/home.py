"""The dashboard (web.md §8; issue 12 item 9): what needs doing today, by role.

Enrolment, visits overdue and due soon, protocol deviations, serious adverse events inside their reporting clock
and the safety monitor (:mod:`abscopal.web.trial_overview`, from the engines); patients by status at the user's
sites (SQL on the ``patients`` table, restricted as the patient list is), open queries by age
(:func:`abscopal.web.inbox.query_counts_by_age`) and links to what the role does next. Every number links to
the list behind it. The administrator sees only how many accounts and sites there are: never trial data.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import Connection, func, select

from abscopal import domain as d
from abscopal.services.common import Action, Actor, StaffRole
from abscopal.store.tables import ENTITIES, accounts
from abscopal.web.charts import cumulative_line
from abscopal.web.context import SIGNED_IN, Principal, requires, state_of
from abscopal.web.i18n import N_
from abscopal.web.inbox import AGE_BUCKETS, query_counts_by_age
from abscopal.web.templating import render
from abscopal.web.trial_overview import DUE_SOON_DAYS

router = APIRouter(include_in_schema=False)
patients = ENTITIES["patients"].table
sites = ENTITIES["sites"].table


def patients_by_status(conn: Connection, actor: Actor) -> dict[str, int]:
    """How many live patients of each status the actor sees (the statistician every site; a patient none)."""
    query = select(patients.c.status, func.count()).where(patients.c.removed_reason.is_(None))
    if actor.role is StaffRole.PATIENT:
        return {}
    if actor.role is not StaffRole.STATISTICIAN:
        query = query.where(patients.c.site_code.in_(sorted(actor.sites)))
    counts: dict[str, int] = {str(s): int(n) for s, n in conn.execute(query.group_by(patients.c.status)).all()}
    return {s.value: int(counts[s.value]) for s in d.PatientStatus if counts.get(s.value)}


#: What each action's holder does next, as (action, link, sentence) — shown when the role may do it.
NEXT_STEPS: tuple[tuple[Action, str, str], ...] = (
    (Action.ANSWER_QUERY, "/queries", N_("Answer the open queries at your sites.")),
    (Action.CLOSE_QUERY, "/queries", N_("Review answered queries and close or reopen them.")),
    (Action.SCREENING, "/patients?status=screening", N_("Continue screening: patients still in screening.")),
    (Action.ENROL, "/patients?status=screening", N_("Decide eligibility and enrol screened patients.")),
    (Action.LESION_REGISTRY, "/patients?status=on_treatment", N_("Record lesions and tumour assessments.")),
    (Action.RADIOTHERAPY, "/patients?status=on_treatment", N_("Prescribe radiotherapy and record fractions.")),
    (Action.SDV, "/patients", N_("Verify records against the source (SDV).")),
    (Action.LOCK, "/patients", N_("Lock records that are complete and verified.")),
    (Action.AUDIT_VIEW, "/audit", N_("Review the audit trail.")),
)


@router.get("/")
def dashboard(request: Request, principal: Annotated[Principal, Depends(requires(SIGNED_IN))]) -> Response:
    actor = principal.actor()
    context: dict[str, Any] = {"admin_only": not principal.may(Action.READ), "own": actor.role is StaffRole.PATIENT}
    with state_of(request).read() as conn:
        if context["admin_only"]:
            context["account_count"] = int(conn.execute(select(func.count()).select_from(accounts)).scalar_one())
            context["disabled_count"] = int(
                conn.execute(select(func.count()).select_from(accounts).where(accounts.c.disabled)).scalar_one()
            )
            context["site_count"] = int(
                conn.execute(select(func.count()).select_from(sites).where(sites.c.removed_reason.is_(None)))
                .scalar_one()
            )  # fmt: skip
        elif not context["own"]:
            overview = state_of(request).overview.get_or_start(
                conn, actor, state_of(request).protocols, state_of(request).read_engine
            )  # None: a large trial's first computation is still running (the page says so and reloads)
            context["overview"] = overview
            context["chart"] = (
                cumulative_line(overview.enrolment_by_month, overview.planned_enrolment) if overview else None
            )
            context["due_soon_days"] = DUE_SOON_DAYS
            by_status = patients_by_status(conn, actor)
            ages = query_counts_by_age(conn, actor)
            context["by_status"] = by_status
            context["patient_total"] = sum(by_status.values())
            context["ages"] = list(zip(AGE_BUCKETS, ages.as_dict().values(), strict=True))
            context["open_total"] = ages.total
    steps: list[tuple[str, str]] = []
    for action, href, sentence in NEXT_STEPS:
        if principal.may(action) and all(href != h for h, _ in steps):
            steps.append((href, sentence))
    context["steps"] = steps
    context["subject_id"] = principal.account.subject_id
    return render(request, "dashboard.html", **context)
