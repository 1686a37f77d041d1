"""The patient list (search, filters, pages; the table updates in place with htmx) and the patient page (web.md §8).

The list reads the ``patients`` table in SQL (:func:`abscopal.web.patient_list.list_patients`, the API's too);
the patient page lists every record of the patient by kind with its state and open queries. A patient's own
account goes straight to its page, which shows only its questionnaires (web.md §1).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup, escape
from sqlalchemy import func, select

from abscopal import domain as d
from abscopal.errors import AbscopalError, ValidationError
from abscopal.response import Criteria
from abscopal.services.common import Action, protocol_of
from abscopal.store.records import Stored
from abscopal.store.tables import ENTITIES
from abscopal.web.api.common import decode_cursor, encode_cursor
from abscopal.web.charts import STATUS_COLOURS, timeline
from abscopal.web.context import Principal, reading, requires, state_of
from abscopal.web.i18n import N_, gettext, label_lookup
from abscopal.web.pages.assessments import derive_both, protocols_of, spider_svg, waterfall_svg
from abscopal.web.pages.records import PATIENT_SLUGS, is_patient, may_write, today_in
from abscopal.web.pages.worklists import VISIT_KINDS, VISIT_STATUSES
from abscopal.web.patient_list import list_patients
from abscopal.web.records import (
    RESOURCES,
    STATE_LABELS,
    PatientMarks,
    RecordState,
    combined_state,
    entry_page,
    patient_marks,
    pseudonymised,
    record_state,
    records_for,
    unmarked_state,
    visible_patient,
)
from abscopal.web.templating import iso_date, language_of, render
from abscopal.web.trial_overview import schedule_from_records

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 25
#: The patient's work areas (issue 12): (path under /patients/{id}/, label, the action that opens the page).
AREAS: tuple[tuple[str, str, Action], ...] = (
    ("screen", N_("Screening and eligibility"), Action.SCREENING),
    ("adjudication", N_("Resistance adjudication"), Action.READ),
    ("enrol", N_("Eligibility decision and enrolment"), Action.ENROL),
    ("radiotherapy", N_("Radiotherapy plan"), Action.READ),
    ("treatment", N_("Treatment delivery"), Action.READ),
    ("assessment-grid", N_("Tumour assessments"), Action.READ),
    ("ae-log", N_("Adverse events"), Action.READ),
    ("epro", N_("Questionnaires"), Action.QUESTIONNAIRES),
    ("casebook", N_("Casebook"), Action.READ),
)
#: The timeline's lanes, in order (protocol.calendar.VisitKind values).
TIMELINE_KINDS = ("cfrt_fraction", "ldrt_fraction", "immunotherapy", "tumour_assessment", "questionnaire", "follow_up")
sites_table = ENTITIES["sites"].table


@router.get("/patients")
def patients_page(
    request: Request,
    principal: Annotated[Principal, Depends(requires(Action.READ))],
    q: Annotated[str, Query(max_length=100)] = "",
    site: Annotated[str, Query(max_length=100)] = "",
    status: Annotated[str, Query(max_length=40)] = "",
    cursor: Annotated[str, Query(max_length=400)] = "",
) -> Response:
    if is_patient(principal):
        return RedirectResponse(f"/patients/{principal.account.subject_id}", status_code=303)
    actor = principal.actor()
    error = None
    with state_of(request).read() as conn:
        try:
            listing = list_patients(
                conn, actor, site=site or None, status=status or None, q=q or None, limit=PAGE_SIZE,
                after=decode_cursor(cursor or None),
            )  # fmt: skip
        except ValidationError as exc:
            error = str(exc)
            listing = list_patients(conn, actor, limit=PAGE_SIZE)
        codes = list(conn.execute(select(sites_table.c.code).where(sites_table.c.removed_reason.is_(None))).scalars())
    if actor.role is not d.Role.STATISTICIAN:
        codes = [c for c in codes if c in actor.sites]
    context: dict[str, Any] = {
        "listing": listing, "q": q, "site": site, "status": status, "sites": sorted(codes),
        "statuses": [s.value for s in d.PatientStatus], "error": error,
        "next_cursor": encode_cursor(listing.next_after) if listing.next_after else None,
        "filtered": bool(q or site or status), "first_page": not cursor,
        "may_register": principal.may(Action.SCREENING),
    }  # fmt: skip
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "patient-table":
        return render(request, "_patient_table.html", **context)
    return render(request, "patients.html", **context)


@dataclass(slots=True)
class _Row:
    """One row of a section of the patient page. An object, not a dict: Jinja's ``r.label`` tries the attribute
    first, and on a dict that raises and catches an AttributeError per field (a fifth of the page's rendering)."""

    record: Stored[Any]
    label: str
    state: RecordState
    version: int


_NO_ROWS = Markup("")


@dataclass(slots=True)
class _Section:
    """One resource's section of the patient page: its rows and whether the reader may add a record."""

    res: Any
    rows: list[_Row]
    may_add: bool
    rows_html: Markup = _NO_ROWS  # the rows as the page shows them (:func:`_rows_html`)


def _rows_html(rows: Iterable[_Row], subject_id: str, slug: str, labels: dict[str, Markup]) -> Markup:
    """A section's table rows, made here rather than in the template: a page lists ~125 records, and Jinja's look-ups
    and escapes per cell were most of its rendering. The same bytes as the template made (each value escaped as
    Jinja's autoescape does; 50 pages in English and Chinese compared, docs/benchmarks.md)."""
    head = f'    <tr><th scope="row"><a href="/patients/{escape(subject_id)}/{escape(slug)}/'
    parts = []
    for r in rows:
        status = r.state.status
        parts.append(
            f'{head}{escape(r.record.id)}">{escape(r.label)}</a></th><td><span class="badge {escape(status)}">'
            f"{escape(labels.get(status, status))}</span></td><td>{escape(r.state.open_queries)}</td>"
            f"<td>{escape(r.version)}</td></tr>\n"
        )
    return Markup("".join(parts))


@dataclass(slots=True)
class _VisitRow:
    """One visit of the patient page's calendar table, its texts made in Python: ~100 visits a patient, and the
    template's calls and filters per cell cost more than the cells."""

    name: str
    planned: str
    window: str
    actual: str
    status: str
    status_label: str


def _visit_rows(visits: Iterable[Any], today: Any, kind_label: Any, status_label: Any) -> list[_VisitRow]:
    """The calendar's visits as the table shows them: "—" for a day or window the visit does not have."""
    rows = []
    for v in visits:
        status = v.status(today).value
        window = f"{iso_date(v.window_start)} – {iso_date(v.window_end)}" if v.window_start else "—"
        rows.append(
            _VisitRow(
                f"{kind_label(v.kind.value)} {v.number}", iso_date(v.planned) if v.planned else "—", window,
                iso_date(v.actual) if v.actual else "—", status, status_label(status),
            )
        )  # fmt: skip
    return rows


@dataclass
class _Questionnaire:
    """One questionnaire (visit x instrument) of the patient page, summed up item by item."""

    first: Stored[Any]
    items: int = 0
    answered: int = 0
    version: int = 0
    states: list[RecordState] = field(default_factory=list)
    unmarked: set[int] = field(default_factory=set)  # the unmarked items' versions (1, or 2 for any later)


def _questionnaire_rows(
    res: Any, items: Iterable[tuple[Stored[Any], str, str, Any]], marks: PatientMarks, patient_id: str
) -> list[_Row]:
    """One row per questionnaire (visit x instrument) instead of one per item, from each item's (record, visit,
    instrument code, answer): a patient answers ~40 items a visit, and the page would list them all (each item's
    record page stays one click on). Only the items a mark bears on get a state of their own."""
    groups: dict[tuple[str, str], _Questionnaire] = {}
    for record, visit, instrument, answer in items:
        group = groups.get((visit, instrument))
        if group is None:
            group = groups[(visit, instrument)] = _Questionnaire(record)
        group.items += 1
        group.answered += answer is not None
        group.version = max(group.version, record.version)
        if marks.touches((res.entity, record.id), patient_id):
            group.states.append(record_state(res.entity, record, marks, patient_id))
        else:
            group.unmarked.add(min(record.version, 2))
    return [
        _Row(g.first, f"{visit} · {instrument} · {g.answered}/{g.items}",
             combined_state(g.states + [unmarked_state(v) for v in sorted(g.unmarked)]), g.version)
        for (visit, instrument), g in groups.items()
    ]  # fmt: skip


def _questionnaire_summary(
    uow: Any, res: Any, marks: PatientMarks, patient_id: str, subject_id: str
) -> tuple[list[_Row], list[SimpleNamespace]]:
    """:func:`_questionnaire_rows` read from the items' columns only (no record is built: ~700 items a patient),
    and the days questionnaires were completed (all the calendar needs of them). For a patient none of whose items
    is signed: a signed item is checked against its content hash. When no mark bears on any item (most patients),
    the items are summed up by the database (:func:`_grouped_questionnaires`): ~30 rows read instead of ~700."""
    t = ENTITIES[res.entity].table
    marked = ("patients", patient_id) in marks.locks or any(
        key[0] == res.entity for found in (marks.sdv, marks.signatures, marks.voided, marks.locks, marks.queries)
        for key in found
    )  # fmt: skip
    if not marked:
        return _grouped_questionnaires(uow, t, subject_id)
    rows = uow.execute(
        select(t.c.id, t.c.version, t.c.visit, t.c.instrument, t.c.answer, t.c.completed_on)
        .where(t.c.subject_id == subject_id, t.c.removed_reason.is_(None))
        .order_by(t.c.id)
    ).all()
    items = ((Stored(r.id, r.version, None), r.visit, r.instrument, r.answer) for r in rows)
    days = sorted({r.completed_on for r in rows if r.completed_on is not None})
    return _questionnaire_rows(res, items, marks, patient_id), [SimpleNamespace(completed_on=day) for day in days]


def _grouped_questionnaires(uow: Any, t: Any, subject_id: str) -> tuple[list[_Row], list[SimpleNamespace]]:
    """What :func:`_questionnaire_rows` gives for items no mark bears on, summed up in SQL by visit, instrument
    and completion day (the days are the calendar's): per questionnaire its first item (the row's link), the
    items, the answered ones, and the lowest and highest version (entered, edited or both)."""
    rows = uow.execute(
        select(
            t.c.visit, t.c.instrument, t.c.completed_on, func.min(t.c.id).label("first"),
            func.count().label("items"), func.count(t.c.answer).label("answered"),
            func.min(t.c.version).label("low"), func.max(t.c.version).label("high"),
        )
        .where(t.c.subject_id == subject_id, t.c.removed_reason.is_(None))
        .group_by(t.c.visit, t.c.instrument, t.c.completed_on)
    ).all()  # fmt: skip
    groups: dict[tuple[str, str], list[Any]] = {}
    for r in rows:
        g = groups.get((r.visit, r.instrument))
        if g is None:
            groups[(r.visit, r.instrument)] = [r.first, r.items, r.answered, r.low, r.high]
        else:
            g[0], g[1], g[2], g[3], g[4] = (
                min(g[0], r.first),
                g[1] + r.items,
                g[2] + r.answered,
                min(g[3], r.low),
                max(g[4], r.high),
            )
    out = []
    for (visit, instrument), (first, items, answered, low, high) in sorted(groups.items(), key=lambda kv: kv[1][0]):
        states = ([unmarked_state(1)] if low == 1 else []) + ([unmarked_state(2)] if high > 1 else [])
        out.append(
            _Row(
                Stored(first, high, None), f"{visit} · {instrument} · {answered}/{items}", combined_state(states), high
            )
        )
    days = sorted({r.completed_on for r in rows if r.completed_on is not None})
    return out, [SimpleNamespace(completed_on=day) for day in days]


@router.get("/patients/{subject_id}")
def patient_page(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.READ))],
    notice: str | None = None,
) -> Response:  # fmt: skip
    own = is_patient(principal)
    today = today_in(request)
    schedule = chart = None
    schedule_error = ""
    loaded: dict[str, list[Any]] = {}  # each kind's records as read for its section: the calendar reuses them
    completed: list[Any] = []  # the questionnaires' completion days, when the answers were summed up in SQL
    with reading(request, principal) as uow:
        patient, actor = visible_patient(uow, principal, subject_id)
        marks = patient_marks(uow, subject_id, with_voided=False)
        sections: list[_Section] = []
        for res in RESOURCES.values():
            if own and res.slug not in PATIENT_SLUGS:
                continue
            signed = any(key[0] == res.entity for key in marks.signatures)
            if res.entity == "questionnaire_answers" and not signed:  # ~700 items a patient: their columns only
                rows, completed = _questionnaire_summary(uow, res, marks, patient.id, subject_id)
                sections.append(_Section(res, rows, may_write(principal, res)))
                continue
            records = loaded[res.entity] = records_for(uow, res.entity, subject_id)
            if res.entity == "questionnaire_answers":
                answers = [(r, r.value.visit, r.value.instrument.value, r.value.answer) for r in records]
                rows = _questionnaire_rows(res, answers, marks, patient.id)
            else:
                rows = [
                    _Row(record, res.label(record.value) or record.id,
                         record_state(res.entity, record, marks, patient.id), record.version)
                    for record in records
                ]  # fmt: skip
            sections.append(_Section(res, rows, may_write(principal, res)))
    plots: dict[str, Any] = {"spider": None, "waterfall": None}
    if not own and patient.value.enrolment_date is not None:
        values = {entity: [s.value for s in records] for entity, records in loaded.items()}
        values.setdefault("questionnaire_answers", completed)
        protocols = state_of(request).protocols
        try:
            schedule = schedule_from_records(
                patient.value, protocols, values["radiotherapy_courses"], values["fractions"],
                values["immunotherapy_cycles"], values["tumour_assessments"], values["questionnaire_answers"],
                as_of=today,
            )  # fmt: skip
        except AbscopalError as exc:  # inconsistent dates: the page still shows every record, and why
            schedule_error = str(exc)
        # the grid page's derivation (remembered by its inputs), from the records read above
        protocol = protocol_of(patient.value, protocols_of(request))
        criteria = Criteria(protocol.response.criteria)  # the protocol's primary criteria: the one drawn
        recist, irecist, _ = derive_both(
            patient.value, protocol, values["tumour_assessments"], values["fractions"],
            values["immunotherapy_cycles"], only=criteria,
        )  # fmt: skip
        chosen = irecist if criteria is Criteria.IRECIST else recist
        plots = {"spider": spider_svg(chosen), "waterfall": waterfall_svg(chosen)}
    language = language_of(request)
    labels = {key: Markup(gettext(language, text)) for key, text in STATE_LABELS.items()}  # as the template's _()
    for section in sections:
        section.rows_html = _rows_html(section.rows, patient.value.subject_id, section.res.slug, labels)
    kind_label = label_lookup(VISIT_KINDS, language)
    status_label = label_lookup(VISIT_STATUSES, language)
    visit_rows = _visit_rows(schedule.visits, today, kind_label, status_label) if schedule is not None else []
    if schedule is not None:
        dots = []
        for v in schedule.visits:
            day = v.actual or v.planned
            if day is not None:
                dots.append((v.kind.value, v.number, day, v.status(today).value))
        chart = timeline(dots, today, TIMELINE_KINDS)
    return render(
        request, "patient.html", patient=patient.value, sections=sections, own=own,
        areas=[(seg, label) for seg, label, action in AREAS if principal.may(action)] if not own else [],
        schedule=schedule, timeline=chart, today=today, schedule_error=schedule_error,
        entry_page=entry_page, kind_label=kind_label, status_label=status_label, visit_rows=visit_rows,
        status_colours=STATUS_COLOURS,
        **plots,
        hidden_identifiers=pseudonymised(actor), notice=N_("The record was removed.") if notice == "removed" else None,
    )  # fmt: skip
