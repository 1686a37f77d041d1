"""The adverse-event log with CTCAE v5.0 term search and grade definitions (issue 12 item 7).

``/patients/{subject_id}/ae-log`` lists the patient's adverse events with the SAE expedited-report clock of the
serious ones (:func:`abscopal.safety.sae_report_status` with the protocol's ``sae_report_hours``); its form picks a
CTCAE v5.0 term from the packaged dictionary (:func:`abscopal.safety.ctcae.load_ctcae`; the htmx search is
``GET /ctcae/search?q=``) and shows each grade's definition as the choice of grade ("—" for a grade the term does
not define). Every write is :func:`abscopal.services.safety.record_adverse_event` (the API's use case): the
CTCAE checks, the ICH E2A seriousness rules and the role refinements (a coordinator's draft, a radiation
oncologist's RT-related events) are the service's and the engine's, never this module's. Without JavaScript the
search is a plain GET of the form page (``?q=`` / ``?meddra_code=``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from abscopal import domain as d
from abscopal.errors import ConflictError, NotFound, PermissionDenied, RecordLocked, ValidationError
from abscopal.messages import Message
from abscopal.safety import sae_report_status
from abscopal.safety.ctcae import GRADES, CtcaeTerm, load_ctcae
from abscopal.services import safety
from abscopal.services.common import Action, StaffRole, protocol_of
from abscopal.services.ports import UnitOfWorkLike
from abscopal.store.records import Stored
from abscopal.web.context import Principal, reading, requires, state_of, unit_of_work
from abscopal.web.forms import errors_of, form_fields, label_of, parse
from abscopal.web.i18n import N_, error_text, gettext, in_language, translate
from abscopal.web.pages.records import FIRST_ENTRY, is_patient, posted_form, zone_of
from abscopal.web.records import patient_marks, record_state, visible_patient
from abscopal.web.templating import language_of, local_time, render

router = APIRouter(include_in_schema=False)

#: The ICH E2A seriousness criteria, as the record names them, with their labels.
SERIOUSNESS: tuple[tuple[str, str], ...] = (
    ("serious_death", N_("Results in death")),
    ("serious_life_threatening", N_("Is life-threatening")),
    ("serious_hospitalisation", N_("Requires or prolongs hospitalisation")),
    ("serious_disability", N_("Results in persistent or significant disability or incapacity")),
    ("serious_congenital", N_("Is a congenital anomaly or birth defect")),
    ("serious_medically_important", N_("Is another medically important condition")),
)
#: The three attributions of web.md §1 (conventional RT, low-dose RT, immunotherapy).
ATTRIBUTIONS: tuple[tuple[str, str], ...] = (
    ("attribution_cfrt", N_("Attribution to conventional radiotherapy")),
    ("attribution_ldrt", N_("Attribution to low-dose radiotherapy")),
    ("attribution_io", N_("Attribution to immunotherapy")),
)
#: The same, short, for the log's table.
ATTRIBUTIONS_SHORT: tuple[tuple[str, str], ...] = (
    ("attribution_cfrt", N_("Conventional RT")),
    ("attribution_ldrt", N_("Low-dose RT")),
    ("attribution_io", N_("Immunotherapy")),
)
ACTIONS: tuple[tuple[str, str], ...] = (
    ("action_io", N_("Action taken with the immunotherapy")),
    ("action_rt", N_("Action taken with the radiotherapy")),
)
#: The fields this page's form posts itself (the others keep the record's values, or the defaults).
CHECKBOXES = (*(name for name, _ in SERIOUSNESS), "immune_related")
FORM_FIELDS = frozenset(
    {"meddra_code", "verbatim", "grade", "onset_date", "resolution_date", "awareness_at", "reported_at", "outcome",
     *CHECKBOXES, *(n for n, _ in ATTRIBUTIONS), *(n for n, _ in ACTIONS)}
)  # fmt: skip
NOTICES = {"created": N_("The adverse event was recorded."), "saved": N_("The adverse event was saved.")}
SEARCH_LIMIT = 15


def _base(subject_id: str) -> str:
    return f"/patients/{subject_id}/ae-log"


def _clinical(uow: UnitOfWorkLike, principal: Principal, subject_id: str) -> tuple[Stored[d.Patient], Any]:
    """The patient and actor; a patient's own account sees only its questionnaires (404 here, web.md §1)."""
    patient, actor = visible_patient(uow, principal, subject_id)
    if is_patient(principal):
        raise NotFound(Message(N_("No adverse events of {subject} for you"), subject=repr(subject_id)))
    return patient, actor


def _event(uow: UnitOfWorkLike, subject_id: str, record_id: str) -> Stored[d.AdverseEvent]:
    stored = uow.adverse_events.get(record_id)
    if stored.value.subject_id != subject_id:
        raise NotFound(
            Message(N_("No adverse event {record} for patient {subject}"), record=repr(record_id), subject=subject_id)
        )
    return stored


def grade_choices(term: CtcaeTerm | None) -> list[dict[str, Any]]:
    """Each CTCAE grade 1-5 with the dictionary's text for ``term`` (None: the grade is not available, "—")."""
    if term is None:
        return []
    return [{"grade": g, "text": term.describe(g), "available": term.defines(g)} for g in GRADES]


def _may_grade(actor: Any) -> bool:
    """A coordinator records a draft: the grade, attributions and seriousness are the investigator's (web.md §1)."""
    return bool(actor.role is not StaffRole.COORDINATOR)


def _term_of(code: str | None) -> CtcaeTerm | None:
    text = (code or "").strip()
    return load_ctcae().by_code(int(text)) if text.isdigit() else None


def _clock(event: d.AdverseEvent, hours: int, now: dt.datetime, zone: str) -> dict[str, Any] | None:
    """The engine's SAE reporting clock of one event, for the template (None: not serious)."""
    status = sae_report_status(event, hours, now)
    if not status.required:
        return None
    state = (
        "missing" if status.due_at is None else "late" if status.late else "overdue" if status.overdue
        else "reported" if status.reported_at is not None else "running"
    )  # fmt: skip
    return {"state": state, "due": local_time(status.due_at, zone), "reported": local_time(status.reported_at, zone),
            "reason": status.reason, "hours": hours}  # fmt: skip


def log_rows(
    events: list[Stored[d.AdverseEvent]], hours: int, now: dt.datetime, zone: str, marks: Any, patient_id: str
) -> list[dict[str, Any]]:
    rows = []
    for s in sorted(events, key=lambda s: (s.value.onset_date, s.value.ae_id)):
        ae = s.value
        rows.append(
            {"id": s.id, "version": s.version, "ae": ae, "serious": ae.serious, "clock": _clock(ae, hours, now, zone),
             "state": record_state("adverse_events", s, marks, patient_id).status}
        )  # fmt: skip
    return rows


@router.get("/patients/{subject_id}/ae-log", name="page_ae_log")
def ae_log(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.READ))],
    notice: str | None = None,
) -> Response:  # fmt: skip
    """The patient's adverse events, newest onset last, with the SAE clock of each serious one."""
    zone = zone_of(request)
    with reading(request, principal) as uow:
        patient, _ = _clinical(uow, principal, subject_id)
        protocol = protocol_of(patient.value, state_of(request).protocols)
        events = list(uow.adverse_events.for_subject(subject_id))
        marks = patient_marks(uow, subject_id)
    hours = protocol.safety.sae_report_hours
    rows = log_rows(events, hours, dt.datetime.now(dt.UTC), zone, marks, patient.id)
    return render(
        request, "adverse_events.html", subject_id=subject_id, patient=patient.value, rows=rows, hours=hours,
        may_write=principal.may(Action.ADVERSE_EVENTS), notice=NOTICES.get(notice or ""),
        attributions=ATTRIBUTIONS_SHORT,
    )  # fmt: skip


# --- the CTCAE term search and a term's grades (htmx fragments)


@router.get("/ctcae/search", name="ctcae_search")
def ctcae_search(
    request: Request, principal: Annotated[Principal, Depends(requires(Action.ADVERSE_EVENTS))], q: str = "",
) -> Response:  # fmt: skip
    """Terms of the CTCAE v5.0 dictionary matching ``q``, best first (the dictionary's ranked search)."""
    hits = load_ctcae().search(q, limit=SEARCH_LIMIT) if q.strip() else []
    return render(request, "adverse_events_terms.html", hits=hits, q=q, form_url="")


@router.get("/ctcae/grades", name="ctcae_grades")
def ctcae_grades(
    request: Request, principal: Annotated[Principal, Depends(requires(Action.ADVERSE_EVENTS))],
    meddra_code: str = "",
) -> Response:  # fmt: skip
    """The grade choices of one term: each grade's definition, as the dictionary writes it."""
    code = meddra_code
    term = _term_of(code)
    if term is None:
        sentence = gettext(language_of(request), N_("Pick a CTCAE term first: its grade definitions appear here."))
        return render(request, "adverse_events_grades.html", status_code=422 if code else 200, term=None,
                      grades=[], grade="", may_grade=True, grade_error=sentence if code else None)  # fmt: skip
    return render(
        request, "adverse_events_grades.html", term=term, grades=grade_choices(term), grade="", may_grade=True,
        grade_error=None,
    )  # fmt: skip


# --- the form


def _control_values(event: d.AdverseEvent | None, zone: str) -> dict[str, str]:
    """Every field's control value (the record's, else the defaults), as the generated forms hold them."""
    return {f.name: f.value for f in form_fields(d.AdverseEvent, event, zone=zone)}


def form_page(
    request: Request, principal: Principal, subject_id: str, *, record: Stored[d.AdverseEvent] | None,
    values: Mapping[str, str], q: str = "", errors: Mapping[str, str] | None = None, error: str | None = None,
    status: int = 200, conflict: list[dict[str, Any]] | None = None, reason: str = "", may_grade: bool = True,
) -> Response:  # fmt: skip
    """The AE form; ``may_grade`` False (a coordinator's draft) shows the investigator's fields without controls."""
    errors = errors or {}
    term = _term_of(values.get("meddra_code"))
    hits = load_ctcae().search(q, limit=SEARCH_LIMIT) if q.strip() else []
    return render(
        request, "adverse_events_form.html", status_code=status, subject_id=subject_id, record=record,
        values=values, q=q, hits=hits, term=term, grades=grade_choices(term), errors=errors, error=error,
        conflict=conflict or [], reason=reason, may_grade=may_grade, seriousness=SERIOUSNESS,
        attributions=ATTRIBUTIONS, actions=ACTIONS, attribution_values=[a.value for a in d.Attribution],
        action_values=[a.value for a in d.AeAction], outcome_values=[o.value for o in d.AeOutcome],
        grade=values.get("grade", ""), grade_error=errors.get("grade"),
    )  # fmt: skip


@router.get("/patients/{subject_id}/ae-log/new", name="page_ae_new")
def new_event(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.ADVERSE_EVENTS))],
    q: str = "", meddra_code: Annotated[list[str] | None, Query()] = None,
) -> Response:  # fmt: skip
    """The form for a new adverse event (``q``: search the dictionary; ``meddra_code``: the term picked, the
    first one given: a term picked without JavaScript comes before the one the form held)."""
    with reading(request, principal) as uow:
        _, actor = _clinical(uow, principal, subject_id)
    values = _control_values(None, zone_of(request)) | {"meddra_code": (meddra_code or [""])[0]}
    return form_page(request, principal, subject_id, record=None, values=values, q=q, may_grade=_may_grade(actor))


@router.get("/patients/{subject_id}/ae-log/{ae_record_id}/edit", name="page_ae_edit")
def edit_event(
    subject_id: str, ae_record_id: str, request: Request,
    principal: Annotated[Principal, Depends(requires(Action.ADVERSE_EVENTS))], q: str = "",
    meddra_code: Annotated[list[str] | None, Query()] = None,
) -> Response:  # fmt: skip
    """The edit form of one adverse event (its values, its version; a reason is asked for the audit trail)."""
    with reading(request, principal) as uow:
        _, actor = _clinical(uow, principal, subject_id)
        record = _event(uow, subject_id, ae_record_id)
    values = _control_values(record.value, zone_of(request)) | {"version": str(record.version)}
    if meddra_code:
        values["meddra_code"] = meddra_code[0]
    return form_page(request, principal, subject_id, record=record, values=values, q=q, may_grade=_may_grade(actor))


def _posted_values(
    posted: Mapping[str, str], base: d.AdverseEvent | None, zone: str, may_grade: bool
) -> dict[str, str]:
    """The record's control values with this form's posted fields over them (a checkbox not sent is unticked).

    A coordinator's form shows the investigator's fields without controls: they keep the record's values."""
    values = _control_values(base, zone)
    for name in FORM_FIELDS:
        if not may_grade and name in safety.INVESTIGATOR_FIELDS:
            continue
        values[name] = (posted.get(name) or "").strip()
    return values


def _conflict_rows(exc: ConflictError, values: Mapping[str, str]) -> list[dict[str, Any]]:
    from abscopal.web.pages.records import _value_of

    return [
        {"username": c.username, "at": c.at, "field": c.field, "label": label_of(c.field),
         "theirs": _value_of(c.new_value), "yours": values.get(c.field, "—") or "—"}
        for c in exc.changes
    ]  # fmt: skip


def save_event(
    request: Request, principal: Principal, subject_id: str, record_id: str | None, posted: Mapping[str, str]
) -> Response:
    zone, language = zone_of(request), language_of(request)
    with reading(request, principal) as uow:
        _, actor = _clinical(uow, principal, subject_id)
        current = _event(uow, subject_id, record_id) if record_id else None
        ae_id = current.value.ae_id if current else safety.next_ae_id(uow, subject_id)
    may_grade = _may_grade(actor)
    values = _posted_values(posted, current.value if current else None, zone, may_grade)
    version_text = (posted.get("version") or "").strip()
    version = int(version_text) if version_text.isdigit() else None
    reason = (posted.get("reason") or "").strip()
    errors: dict[str, str] = {}
    top: str | None = None
    if current is not None:
        values["version"] = version_text
        if version is None:
            top = gettext(language, N_("The form did not say which version of the record it was based on; "
                                       "reload the page and try again."))  # fmt: skip
        if not reason:
            errors["reason"] = gettext(
                language, N_("Every edit after the first save needs a reason (it goes to the audit trail).")
            )
    term = _term_of(values.get("meddra_code"))
    if term is None:
        errors["meddra_code"] = gettext(language, N_("Search the CTCAE v5.0 dictionary and pick the term."))
    q = (posted.get("q") or "").strip()

    def again(status: int, **extra: Any) -> Response:
        return form_page(request, principal, subject_id, record=current, values=values, q=q, status=status,
                         reason=reason, may_grade=may_grade, **extra)  # fmt: skip

    if errors or top or term is None:
        return again(422, errors=errors, error=top)
    body_form = {k: v for k, v in values.items() if k not in ("version", "meddra_code")}
    body_form |= {"ae_id": ae_id, "term": term.term, "meddra_code": str(term.meddra_code)}
    names = {*FORM_FIELDS, "term", "ae_id"}
    try:
        body = parse(d.AdverseEvent, body_form, base=current.value if current else None, zone=zone)
    except ValidationError as exc:
        found, sentence = in_language(language, *errors_of(exc, names), exc)
        return again(422, errors=found, error=sentence)
    event = d.AdverseEvent(subject_id=subject_id, **body)
    try:
        with unit_of_work(request, principal, reason if current is not None else FIRST_ENTRY) as uow:
            _, actor = _clinical(uow, principal, subject_id)
            stored = safety.record_adverse_event(
                uow, actor, event, record_id=record_id, version=version, protocols=state_of(request).protocols
            )
    except ConflictError as exc:
        values["version"] = str(exc.current)
        return again(409, error=error_text(language, exc), conflict=_conflict_rows(exc, values))
    except RecordLocked as exc:
        return again(423, error=error_text(language, exc))
    except PermissionDenied as exc:
        field, said = str(exc).split(":", 1)[0].strip(), error_text(language, exc)
        return again(422, errors={field: said} if field in names else {}, error=None if field in names
                     else said)  # fmt: skip
    except ValidationError as exc:
        found, sentence = in_language(language, *errors_of(exc, names), exc)
        if exc.field in ("term", "meddra_code") and not found:
            found, sentence = {"meddra_code": translate(language, exc.reason)}, None
        return again(422, errors=found, error=sentence)
    notice = "saved" if current is not None else "created"
    return RedirectResponse(f"{_base(subject_id)}?notice={notice}#ae-{stored.id}", status_code=303)


@router.post("/patients/{subject_id}/ae-log/new", name="page_ae_create")
async def create_event(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.ADVERSE_EVENTS))]
) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(save_event, request, principal, subject_id, None, posted)


@router.post("/patients/{subject_id}/ae-log/{ae_record_id}/edit", name="page_ae_save")
async def save_existing(
    subject_id: str, ae_record_id: str, request: Request,
    principal: Annotated[Principal, Depends(requires(Action.ADVERSE_EVENTS))],
) -> Response:  # fmt: skip
    posted = await posted_form(request)
    return await run_in_threadpool(save_event, request, principal, subject_id, ae_record_id, posted)
