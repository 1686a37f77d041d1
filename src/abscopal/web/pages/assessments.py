"""The tumour-assessment grid: lesions x dates, sums, % change, derived RECIST 1.1/iRECIST (issue 12 item 6).

One page per patient (``/patients/{subject_id}/assessment-grid``): the rows are the patient's lesions (targets, then
non-targets, then new lesions), the columns its assessments (baseline first). Below the lesions, per timepoint, what
the response engine derives from the stored records (:func:`abscopal.response.derive_subject`, the function the
API's ``/response`` and the report call): the sum of the target diameters, % change from baseline and from nadir,
the category responses, the RECIST 1.1 and the iRECIST overall response, an iUPD awaiting confirmation with its
window (:func:`abscopal.services.assessments.pending_iupd`), and the investigator's own call beside them with a
discrepancy highlighted (:func:`abscopal.response.find_discrepancies`). The spider line and waterfall bar come from
the report's plot data (:mod:`abscopal.analysis.figures`) drawn here as inline SVG.

Entry: one form per timepoint column whose cells are the inputs (the ``form=`` attribute ties a cell to its
column's form, so the grid stays one table). Every write is
:func:`abscopal.services.assessments.record_assessment`, which refuses bad values (a negative diameter, a target
without a reading) and raises the discrepancy query; its refusal comes back beside the cell it names. An edit after
the first save needs a reason and the version it was based on (409 stale, 423 locked, as in ``records.py``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from abscopal import domain as d
from abscopal.analysis.figures import spider_series, waterfall_bars
from abscopal.errors import ConflictError, NotFound, RecordLocked, ValidationError
from abscopal.messages import Message
from abscopal.protocol import radiotherapy as rt
from abscopal.protocol.model import Protocol, ProtocolFile, ResponseOptions, load_bundled
from abscopal.response import Criteria, SubjectFacts, SubjectResponse, derive_subject, find_discrepancies
from abscopal.response.recist import PD_INCREASE_PCT, PR_DECREASE_PCT
from abscopal.services.assessments import PendingIupd, pending_iupd, record_assessment
from abscopal.services.common import Action, StaffRole, protocol_of
from abscopal.store.records import Stored
from abscopal.web.context import Principal, reading, requires, state_of, unit_of_work
from abscopal.web.i18n import N_, error_text, gettext, in_language
from abscopal.web.records import patient_marks, record_state, visible_patient
from abscopal.web.templating import language_of, render

router = APIRouter(include_in_schema=False)
BASE = "/patients/{subject_id}/assessment-grid"
ENTITY = "tumour_assessments"
FIRST_ENTRY = "entered in the assessment grid"
RESPONSE_ENTRY = "investigator response recorded in the assessment grid"
#: What a target cell holds when the lesion could not be read (TRREASND); "NE" in the cell.
NOT_EVALUABLE = "NE"
#: What a target cell holds for a lesion "too small to measure": recorded as the protocol's value
#: (``[response].too_small_to_measure_mm``, 5 mm by default, as RECIST 1.1 suggests; response-rules.md §2).
TOO_SMALL = "TS"
NOT_EVALUATED_REASON = "not evaluable (entered in the assessment grid)"
#: The imaging methods offered (SDTM TRMETHOD spellings, kept as written).
METHODS = ("CT", "MRI", "PET-CT", "X-ray", "Ultrasound")
STATUS_LABELS = {
    d.LesionStatus.ABSENT: N_("absent"),
    d.LesionStatus.PRESENT: N_("present"),
    d.LesionStatus.INCREASED: N_("increased"),
    d.LesionStatus.UNEQUIVOCAL_PROGRESSION: N_("unequivocal progression"),
}
KIND_LABELS = {"target": N_("Target lesions"), "non_target": N_("Non-target lesions"), "new": N_("New lesions")}
NOTICES = {
    "created": N_("The assessment was entered."),
    "saved": N_("The assessment was saved."),
    "response": N_("The investigator's response was saved."),
    "query": N_(
        "The investigator's response differs from the derived response: a data query was raised on the assessment."
    ),
}
_SAFE = re.compile(r"[^A-Za-z0-9_-]")
_MEASUREMENT = re.compile(r"measurements\[(\d+)\]")


def _is_patient(principal: Principal) -> bool:
    return d.Role.PATIENT in principal.account.roles


def _slug(text: str) -> str:
    return _SAFE.sub("_", text)


# --- the grid's model


@dataclass
class Row:
    """One lesion of the grid: where it is and its class, from the registry (or its first measurement)."""

    lesion_id: str
    kind: str  # target | non_target | new
    organ: str
    location: str
    is_node: bool
    rt_role: d.RtRole | None
    control: str = ""  # the form field name of its cell

    def __post_init__(self) -> None:
        self.control = f"m-{_slug(self.lesion_id)}"


@dataclass
class Column:
    """One assessment: the stored record and what the engine derives for its date."""

    record: Stored[d.TumourAssessment]
    cells: dict[str, d.LesionMeasurement]
    recist: Any = None  # TimepointResponse under RECIST 1.1
    irecist: Any = None  # TimepointResponse under iRECIST
    discrepancy: Any = None  # ResponseDiscrepancy of the investigator's call
    queries: list[Stored[d.DataQuery]] = field(default_factory=list)
    status: str = "entered"
    locked_by: str | None = None

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def value(self) -> d.TumourAssessment:
        return self.record.value


@dataclass
class Grid:
    """Everything the page shows, read in one unit of work and derived once."""

    patient: d.Patient
    actor_role: StaffRole
    rows: list[Row]
    columns: list[Column]
    criteria: Criteria
    recist: SubjectResponse | None
    irecist: SubjectResponse | None
    engine_error: str | None
    pending: PendingIupd | None
    icpd_window: tuple[int, int]
    too_small_mm: float = 5.0  # the protocol's value for a target "too small to measure" (TS in a cell)


def _rows(lesions: Sequence[d.Lesion], assessments: Sequence[d.TumourAssessment]) -> list[Row]:
    """Targets, then non-targets (registry order by lesion id), then new lesions in order of first sight."""
    found: dict[str, Row] = {}
    for x in sorted(lesions, key=lambda x: x.lesion_id):
        kind = x.lesion_class.value
        found[x.lesion_id] = Row(x.lesion_id, kind, x.organ, x.location, x.is_node, x.rt_role)
    for a in sorted(assessments, key=lambda a: a.assessment_date):
        for m in a.measurements:
            if m.lesion_id not in found:
                found[m.lesion_id] = Row(m.lesion_id, m.lesion_class.value, m.organ, "", m.is_node, m.rt_role)
    order = {"target": 0, "non_target": 1, "new": 2}
    return sorted(found.values(), key=lambda r: order.get(r.kind, 3))  # stable: registry / first-sight order kept


#: Derivations already made, by their exact inputs (the engine is pure: the same inputs give the same result). The
#: grid is read far more often than it is written, and the iRECIST derivation of 20 assessments costs tens of ms.
_DERIVED: OrderedDict[tuple[Any, ...], SubjectResponse] = OrderedDict()
_DERIVED_MAX = 512
_DERIVED_LOCK = threading.Lock()


def derive(
    assessments: Sequence[d.TumourAssessment], facts: SubjectFacts, options: ResponseOptions, criteria: Criteria
) -> SubjectResponse:
    """:func:`abscopal.response.derive_subject`, remembered by its inputs (the records, the facts, the options)."""
    key = (tuple(sorted(assessments, key=lambda a: a.assessment_date)), facts, options.model_dump_json(), criteria)
    with _DERIVED_LOCK:
        found = _DERIVED.get(key)
        if found is not None:
            _DERIVED.move_to_end(key)
            return found
    result = derive_subject(assessments, facts, options, criteria)
    with _DERIVED_LOCK:
        _DERIVED[key] = result
        while len(_DERIVED) > _DERIVED_MAX:
            _DERIVED.popitem(last=False)
    return result


@cache
def _bundled() -> ProtocolFile:
    """The bundled protocol file, parsed once (``load_bundled`` reads and validates the TOML on every call)."""
    return load_bundled()


def protocols_of(request: Request) -> ProtocolFile:
    """The app's protocol file, else the bundled one (what ``services.common.protocols_or_bundled`` gives)."""
    return state_of(request).protocols or _bundled()


def derive_both(
    patient: d.Patient, protocol: Protocol, assessments: Sequence[d.TumourAssessment],
    fractions: Sequence[d.Fraction], cycles: Sequence[d.ImmunotherapyCycle], only: Criteria | None = None,
) -> tuple[SubjectResponse | None, SubjectResponse | None, str | None]:  # fmt: skip
    """The patient's RECIST 1.1 and iRECIST derivations from their records (the reference day is the first study
    treatment), or the engine's sentence refusing them; (None, None, None) before any assessment. ``only``
    derives that one criteria set (the other is None): a page that draws one response needs one."""
    if not assessments:
        return None, None, None
    reference = rt.first_study_treatment(list(fractions), list(cycles), patient.enrolment_date)
    facts = SubjectFacts(patient.subject_id, reference, patient.death_date, patient.new_therapy_date)
    try:
        return (
            derive(assessments, facts, protocol.response, Criteria.RECIST11) if only in (None, Criteria.RECIST11)
            else None,
            derive(assessments, facts, protocol.response, Criteria.IRECIST) if only in (None, Criteria.IRECIST)
            else None,
            None,
        )  # fmt: skip
    except ValidationError as exc:
        return None, None, str(exc)


def read_grid(request: Request, principal: Principal, subject_id: str) -> Grid:
    """The patient's lesions and assessments, and the engine's derivation of them under both criteria."""
    with reading(request, principal) as uow:
        patient, actor = visible_patient(uow, principal, subject_id)
        if _is_patient(principal):
            raise NotFound(Message(N_("No patient {subject} at your sites"), subject=repr(subject_id)))
        protocol = protocol_of(patient.value, protocols_of(request))
        lesions = [s.value for s in uow.lesions.for_subject(subject_id)]
        stored = sorted(uow.assessments.for_subject(subject_id), key=lambda s: s.value.assessment_date)
        fractions = [s.value for s in uow.fractions.for_subject(subject_id)]
        cycles = [s.value for s in uow.immunotherapy_cycles.for_subject(subject_id)]
        queries = [
            q for q in uow.queries.for_subject(subject_id)
            if q.value.entity == ENTITY and q.value.status is not d.QueryStatus.CLOSED
        ]  # fmt: skip
        marks = patient_marks(uow, subject_id, with_voided=False)
        states = {s.id: record_state(ENTITY, s, marks, patient.id) for s in stored}
    assessments = [s.value for s in stored]
    p = patient.value
    criteria = Criteria(protocol.response.criteria)
    recist, irecist, engine_error = derive_both(p, protocol, assessments, fractions, cycles)
    chosen = irecist if criteria is Criteria.IRECIST else recist
    recist_at = {t.assessment_date: t for t in recist.timepoints} if recist else {}
    irecist_at = {t.assessment_date: t for t in irecist.timepoints} if irecist else {}
    found = {x.assessment_date: x for x in find_discrepancies(assessments, chosen)} if chosen else {}
    columns = []
    for s in stored:
        day = s.value.assessment_date
        state = states[s.id]
        columns.append(
            Column(
                s, {m.lesion_id: m for m in s.value.measurements}, recist_at.get(day), irecist_at.get(day),
                found.get(day), [q for q in queries if q.value.record_id == s.id], state.status, state.locked_by,
            )
        )  # fmt: skip
    window = protocol.response.icpd_window_days
    return Grid(
        p, actor.role, _rows(lesions, assessments), columns, criteria, recist, irecist, engine_error,
        pending_iupd(irecist, protocol.response) if irecist else None, (int(window.min), int(window.max)),
        protocol.response.too_small_to_measure_mm,
    )  # fmt: skip


# --- cells: what a cell shows, and what an input holds


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def cell_text(row: Row, m: d.LesionMeasurement | None, language: str) -> str:
    """What a read-only cell shows: the diameter (mm), the status, NE, or a dash when the lesion was not read."""
    if m is None:
        return "—"
    if m.diameter_mm is not None:
        text = _number(m.diameter_mm)
        if m.too_small:
            text += f" · {gettext(language, N_('too small'))}"
        if m.status is not None:
            text += f" · {gettext(language, STATUS_LABELS[m.status])}"
        return text
    if m.status is not None:
        return gettext(language, STATUS_LABELS[m.status])
    if m.too_small:
        return gettext(language, N_("too small"))
    return NOT_EVALUABLE


def cell_inputs(row: Row, m: d.LesionMeasurement | None) -> dict[str, str]:
    """The values of a cell's inputs for a stored measurement: ``d`` (diameter text) and ``s`` (status)."""
    if m is None:
        return {"d": "", "s": ""}
    diameter = _number(m.diameter_mm)
    if row.kind == "target" and m.too_small:
        diameter = TOO_SMALL
    elif not diameter and row.kind == "target" and m.not_done_reason:
        diameter = NOT_EVALUABLE
    return {"d": diameter, "s": m.status.value if m.status is not None else ""}


def posted_inputs(row: Row, posted: Mapping[str, str]) -> dict[str, str]:
    return {"d": posted.get(f"{row.control}-d", ""), "s": posted.get(f"{row.control}-s", "")}


# --- parsing a column's form into an assessment (the service checks the values)


@dataclass
class Parsed:
    assessment: d.TumourAssessment | None
    errors: dict[str, str]
    controls: list[str]  # the form control of measurements[i]


def _diameter(text: str, control: str, errors: dict[str, str], language: str) -> float | None:
    try:
        return float(text.replace(",", "."))
    except ValueError:
        errors[control] = gettext(
            language, N_("Write the diameter in mm as a number (such as 12.5), or NE if it could not be evaluated.")
        )
        return None


def _status(text: str, control: str, errors: dict[str, str], language: str) -> d.LesionStatus | None:
    if not text:
        return None
    try:
        return d.LesionStatus(text)
    except ValueError:
        errors[control] = gettext(language, N_("Choose one of the statuses offered."))
        return None


def _measurement(
    row: Row, posted: Mapping[str, str], errors: dict[str, str], language: str, too_small_mm: float = 5.0
) -> d.LesionMeasurement:
    """One cell: a target's diameter (or NE, or TS: too small to measure, recorded as ``too_small_mm``), a
    non-target's status, a new lesion's diameter and/or status."""
    text = posted.get(f"{row.control}-d", "").strip()
    status = _status(posted.get(f"{row.control}-s", "").strip(), f"{row.control}-s", errors, language)
    cls = d.LesionClass(row.kind)
    base = d.LesionMeasurement(row.lesion_id, cls, row.organ, row.is_node, rt_role=row.rt_role)
    if text.upper() == NOT_EVALUABLE:
        return dataclasses.replace(base, status=status, not_done_reason=NOT_EVALUATED_REASON)
    if text.upper() == TOO_SMALL and row.kind == "target":
        return dataclasses.replace(base, diameter_mm=too_small_mm, too_small=True, status=status)
    diameter = _diameter(text, f"{row.control}-d", errors, language) if text else None
    if row.kind != "target" and diameter is None and status is None:
        return dataclasses.replace(base, not_done_reason=NOT_EVALUATED_REASON)
    return dataclasses.replace(base, diameter_mm=diameter, status=status)


def _new_lesion_id(rows: Sequence[Row]) -> str:
    taken = {r.lesion_id for r in rows}
    n = 1
    while f"N{n:02d}" in taken:
        n += 1
    return f"N{n:02d}"


def parse_column(
    grid: Grid, posted: Mapping[str, str], base: d.TumourAssessment | None, *, may_respond: bool, language: str
) -> Parsed:
    """The assessment a column's form describes, or the sentences beside the cells it cannot read."""
    errors: dict[str, str] = {}
    controls: list[str] = []
    measurements: list[d.LesionMeasurement] = []
    date_text = posted.get("assessment_date", "").strip()
    day: dt.date | None = None
    if not date_text:
        errors["assessment_date"] = gettext(language, N_("Give the date of the assessment (YYYY-MM-DD)."))
    else:
        try:
            day = dt.date.fromisoformat(date_text)
        except ValueError:
            errors["assessment_date"] = gettext(language, N_("Write the date as YYYY-MM-DD."))
    method = posted.get("method", "").strip() or None
    if method is not None and method not in METHODS:
        errors["method"] = gettext(language, N_("Choose one of the imaging methods offered."))
    had = {m.lesion_id for m in base.measurements} if base is not None else set()
    for row in grid.rows:
        blank = not posted.get(f"{row.control}-d", "").strip() and not posted.get(f"{row.control}-s", "").strip()
        if row.kind == "new" and blank and row.lesion_id not in had:
            continue  # a new lesion not read on this date (perhaps not there yet): no row, so not "seen" here
        measurements.append(_measurement(row, posted, errors, language, grid.too_small_mm))
        controls.append(f"{row.control}-d")
    organ = posted.get("new-organ", "").strip()
    new_d = posted.get("new-d", "").strip()
    new_s = posted.get("new-s", "").strip()
    if organ or new_d or new_s:
        if not organ:
            errors["new-organ"] = gettext(language, N_("Name the organ of the new lesion."))
        row = Row(_new_lesion_id(grid.rows), "new", organ, "", posted.get("new-node") == "on", None)
        m = _measurement(row, {f"{row.control}-d": new_d, f"{row.control}-s": new_s}, errors, language)
        if m.diameter_mm is None and m.status is None and not errors.get(f"{row.control}-d"):
            errors["new-s"] = gettext(language, N_("Give the new lesion's diameter or its status."))
        for key in (f"{row.control}-d", f"{row.control}-s"):
            if key in errors:
                errors["new-" + key[-1]] = errors.pop(key)
        measurements.append(m)
        controls.append("new-d")
    response = base.investigator_response if base is not None else None
    if may_respond:
        response = _response(posted, errors, language)
    if errors or day is None:
        return Parsed(None, errors, controls)
    assessment = d.TumourAssessment(
        grid.patient.subject_id, day, tuple(measurements), investigator_response=response,
        assessed_by=base.assessed_by if base is not None else None, method=method,
        criteria=base.criteria if base is not None else None,
    )  # fmt: skip
    return Parsed(assessment, errors, controls)


def _response(posted: Mapping[str, str], errors: dict[str, str], language: str) -> d.InvestigatorResponse | None:
    text = posted.get("investigator_response", "").strip()
    if not text:
        return None
    try:
        return d.InvestigatorResponse(text)
    except ValueError:
        errors["investigator_response"] = gettext(language, N_("Choose one of the response codes offered."))
        return None


def _refusal_errors(exc: ValidationError, controls: Sequence[str]) -> tuple[dict[str, str], str | None]:
    """The service's refusal beside the cell it names (``measurements[i]...``), else at the top of the form."""
    name = exc.field or ""
    found = _MEASUREMENT.match(name)
    if found and int(found.group(1)) < len(controls):
        return {controls[int(found.group(1))]: exc.reason}, None
    if name in ("assessment_date", "method", "investigator_response"):
        return {name: exc.reason}, None
    return {}, str(exc)


# --- the SVG plots (the report's series, drawn here)

PLOT_W, PLOT_H = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


def _scale(lo: float, hi: float, size: float, start: float) -> Any:
    span = hi - lo or 1.0
    return lambda v: start + (v - lo) / span * size


def spider_svg(derived: SubjectResponse | None) -> dict[str, Any] | None:
    """The patient's % change of the target sum from baseline over weeks (the report's spider series)."""
    if derived is None:
        return None
    series = spider_series({derived.subject_id: derived})
    if not series:
        return None
    s = series[0]
    weeks = [0.0, *s.weeks]
    pct = [0.0, *(max(min(p, 150.0), -100.0) for p in s.pct)]
    lo = min(-PR_DECREASE_PCT - 10.0, min(pct) - 10.0)
    hi = max(PD_INCREASE_PCT + 10.0, max(pct) + 10.0)
    x = _scale(0.0, max(weeks) or 1.0, PLOT_W - LEFT - RIGHT, LEFT)
    y = _scale(hi, lo, PLOT_H - TOP - BOTTOM, TOP)
    points = [(round(x(w), 1), round(y(p), 1)) for w, p in zip(weeks, pct, strict=True)]
    ticks = [Tick(round(y(v), 1), f"{v:+.0f}%") for v in (float(PD_INCREASE_PCT), 0.0, -float(PR_DECREASE_PCT))]
    return {
        "points": points, "polyline": " ".join(f"{a},{b}" for a, b in points), "ticks": ticks,
        "pd_y": round(y(PD_INCREASE_PCT), 1), "pr_y": round(y(-PR_DECREASE_PCT), 1), "zero_y": round(y(0.0), 1),
        "x0": LEFT, "x1": PLOT_W - RIGHT, "bottom": PLOT_H - BOTTOM, "max_week": f"{max(weeks):.0f}",
        "rows": [(f"{w:.1f}", f"{p:+.1f}") for w, p in zip(s.weeks, s.pct, strict=True)],
        "response": s.response, "key": s.response.lstrip("i") if s.response else "NE",
    }  # fmt: skip


def waterfall_svg(derived: SubjectResponse | None) -> dict[str, Any] | None:
    """The patient's best % change from baseline up to progression (the report's waterfall bar)."""
    if derived is None:
        return None
    bars = waterfall_bars({derived.subject_id: derived})
    if not bars:
        return None
    bar = bars[0]
    height = 200
    value = max(min(bar.best_pct, 100.0), -100.0)
    y = _scale(100.0, -100.0, height, 10)
    top, zero = y(max(value, 0.0)), y(min(value, 0.0))
    zero_y = y(0.0)
    return {
        "best": f"{bar.best_pct:+.1f}", "response": bar.response, "key": bar.response.lstrip("i") or "NE",
        "bar_y": round(min(top, zero_y), 1), "bar_h": round(max(abs(zero - top), 1.0), 1), "zero_y": round(zero_y, 1),
        "pd_y": round(y(PD_INCREASE_PCT), 1), "pr_y": round(y(-PR_DECREASE_PCT), 1), "h": height + 20,
    }  # fmt: skip


# --- the page


def grid_page(
    request: Request, principal: Principal, subject_id: str, *, grid: Grid | None = None, edit: str | None = None,
    posted: Mapping[str, str] | None = None, errors: Mapping[str, str] | None = None, error: str | None = None,
    status: int = 200, notice: str | None = None, conflict: list[dict[str, Any]] | None = None,
    response_for: str | None = None,
) -> Response:  # fmt: skip
    """Render the grid; ``edit`` is the column shown as inputs (a record id), ``posted`` the values sent back."""
    grid = grid or read_grid(request, principal, subject_id)
    language = language_of(request)
    may_enter = principal.may(Action.LESION_REGISTRY)
    may_respond = principal.may(Action.INVESTIGATOR_RESPONSE)
    editing = next((c for c in grid.columns if c.id == edit), None) if edit else None
    if editing is not None and editing.status == "locked" and posted is None:
        editing = None
    form_values: dict[str, dict[str, str]] = {}
    for row in grid.rows:
        if editing is not None:
            form_values[row.lesion_id] = (
                posted_inputs(row, posted) if posted is not None and edit == editing.id
                else cell_inputs(row, editing.cells.get(row.lesion_id))
            )  # fmt: skip
    new_values = {row.lesion_id: posted_inputs(row, posted) for row in grid.rows} if posted and edit == "new" else {}
    cells = {
        (row.lesion_id, c.id): cell_text(row, c.cells.get(row.lesion_id), language)
        for row in grid.rows for c in grid.columns
    }  # fmt: skip
    chosen = grid.irecist if grid.criteria is Criteria.IRECIST else grid.recist
    prefix = f"r-{response_for}" if response_for else ("e" if editing is not None else "n")
    summary = [
        {"href": f"#{prefix}-{name}", "what": _control_label(grid, name, language), "why": why}
        for name, why in (errors or {}).items()
    ]
    return render(
        request, "assessments.html", status_code=status, subject_id=subject_id, grid=grid, cells=cells,
        editing=editing, edit=edit, posted=posted or {}, errors=errors or {}, error=error,
        notice=gettext(language, NOTICES[notice]) if notice in NOTICES else None, may_enter=may_enter,
        may_respond=may_respond, form_values=form_values, new_values=new_values, conflict=conflict or [],
        response_for=response_for, kind_labels=KIND_LABELS, status_labels=STATUS_LABELS, methods=METHODS,
        responses=[r.value for r in d.InvestigatorResponse], not_evaluable=NOT_EVALUABLE,
        spider=spider_svg(chosen), waterfall=waterfall_svg(chosen), error_summary=summary,
        bor=str(chosen.bor_confirmed) if chosen else None, bor_unconfirmed=str(chosen.bor) if chosen else None,
    )  # fmt: skip


CONTROL_LABELS = {
    "assessment_date": N_("Date"),
    "method": N_("Method"),
    "reason": N_("Reason for change"),
    "investigator_response": N_("Investigator response"),
    "new-organ": N_("Another new lesion"),
    "new-d": N_("Another new lesion"),
    "new-s": N_("Another new lesion"),
}


def _control_label(grid: Grid, name: str, language: str) -> str:
    """What the error summary calls a form control: the lesion id of a cell, else the row's label."""
    for row in grid.rows:
        if name in (f"{row.control}-d", f"{row.control}-s"):
            return row.lesion_id
    return gettext(language, CONTROL_LABELS.get(name, name))


@router.get(BASE, name="page_assessment_grid")
def assessment_grid(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.READ))],
    notice: str | None = None, edit: str | None = None,
) -> Response:  # fmt: skip
    """The grid, with the column ``edit`` as inputs when the user may enter measurements."""
    if edit is not None and not principal.may(Action.LESION_REGISTRY):
        edit = None
    return grid_page(request, principal, subject_id, notice=notice, edit=edit)


async def _posted(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _version(posted: Mapping[str, str]) -> int | None:
    text = (posted.get("version") or "").strip()
    return int(text) if text.isdigit() else None


def _conflict_rows(exc: ConflictError, language: str) -> list[dict[str, Any]]:
    return [{"username": c.username, "at": c.at, "field": c.field, "theirs": c.new_value or "—"} for c in exc.changes]


def _column_of(grid: Grid, record_id: str, subject_id: str) -> Column:
    found = next((c for c in grid.columns if c.id == record_id), None)
    if found is None:
        raise NotFound(
            Message(
                N_("No tumour assessment {record} for patient {subject}"), record=repr(record_id), subject=subject_id
            )
        )
    return found


def save_column(
    request: Request, principal: Principal, subject_id: str, record_id: str | None, posted: Mapping[str, str]
) -> Response:
    """Enter a new assessment (``record_id`` None) or save an edited column, through the service."""
    language = language_of(request)
    grid = read_grid(request, principal, subject_id)
    column = _column_of(grid, record_id, subject_id) if record_id is not None else None
    edit = record_id or "new"
    may_respond = principal.may(Action.INVESTIGATOR_RESPONSE)
    parsed = parse_column(grid, posted, column.value if column else None, may_respond=may_respond, language=language)
    errors = dict(parsed.errors)
    top: str | None = None
    version = _version(posted) if column is not None else None
    reason = (posted.get("reason") or "").strip()
    if column is not None:
        if version is None:
            top = gettext(
                language,
                N_("The form did not say which version of the record it was based on; reload the page and try again."),
            )
        if not reason:
            errors["reason"] = gettext(
                language, N_("Every edit after the first save needs a reason (it goes to the audit trail).")
            )
    if errors or top or parsed.assessment is None:
        return grid_page(
            request, principal, subject_id, grid=grid, edit=edit, posted=posted, errors=errors, error=top, status=422
        )
    try:
        with unit_of_work(request, principal, reason if column is not None else FIRST_ENTRY) as uow:
            _, actor = visible_patient(uow, principal, subject_id)
            result = record_assessment(
                uow, actor, parsed.assessment, record_id=record_id, version=version, protocols=protocols_of(request),
            )  # fmt: skip
    except ConflictError as exc:
        return grid_page(
            request, principal, subject_id, edit=edit, posted={**posted, "version": str(exc.current)},
            error=str(exc), status=409, conflict=_conflict_rows(exc, language),
        )  # fmt: skip
    except RecordLocked as exc:
        return grid_page(
            request, principal, subject_id, grid=grid, edit=None, error=error_text(language, exc), status=423
        )
    except ValidationError as exc:
        found, sentence = in_language(language, *_refusal_errors(exc, parsed.controls), exc)
        return grid_page(
            request, principal, subject_id, grid=grid, edit=edit, posted=posted, errors=found, error=sentence,
            status=422,
        )  # fmt: skip
    notice = "query" if result.query is not None else ("saved" if column is not None else "created")
    return RedirectResponse(
        f"/patients/{subject_id}/assessment-grid?notice={notice}#col-{result.assessment.id}", status_code=303
    )


@router.post(f"{BASE}/new", name="page_assessment_grid_new")
async def new_assessment(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.LESION_REGISTRY))]
) -> Response:
    """Enter a new assessment column (date, method, every lesion's measurement)."""
    posted = await _posted(request)
    return await run_in_threadpool(save_column, request, principal, subject_id, None, posted)


@router.post(f"{BASE}/{{record_id}}", name="page_assessment_grid_save")
async def save_assessment(
    subject_id: str, record_id: str, request: Request,
    principal: Annotated[Principal, Depends(requires(Action.LESION_REGISTRY))],
) -> Response:  # fmt: skip
    """Save an edited column (the version it was based on and a reason)."""
    posted = await _posted(request)
    return await run_in_threadpool(save_column, request, principal, subject_id, record_id, posted)


def save_response(
    request: Request, principal: Principal, subject_id: str, record_id: str, posted: Mapping[str, str]
) -> Response:
    """The investigator's own overall response on one assessment (a change of a recorded one needs a reason)."""
    language = language_of(request)
    grid = read_grid(request, principal, subject_id)
    column = _column_of(grid, record_id, subject_id)
    errors: dict[str, str] = {}
    response = _response(posted, errors, language)
    version = _version(posted)
    reason = (posted.get("reason") or "").strip()
    previous = column.value.investigator_response
    if previous is not None and response != previous and not reason:
        errors["reason"] = gettext(
            language, N_("Changing a recorded response needs a reason (it goes to the audit trail).")
        )
    top = None
    if version is None:
        top = gettext(
            language,
            N_("The form did not say which version of the record it was based on; reload the page and try again."),
        )
    if errors or top:
        return grid_page(
            request, principal, subject_id, grid=grid, errors=errors, error=top, status=422, response_for=record_id,
            posted=posted,
        )  # fmt: skip
    changed = dataclasses.replace(column.value, investigator_response=response)
    try:
        with unit_of_work(request, principal, reason or RESPONSE_ENTRY) as uow:
            _, actor = visible_patient(uow, principal, subject_id)
            result = record_assessment(
                uow, actor, changed, record_id=record_id, version=version, protocols=protocols_of(request)
            )
    except ConflictError as exc:
        return grid_page(
            request, principal, subject_id, error=str(exc), status=409, conflict=_conflict_rows(exc, language),
            response_for=record_id, posted=posted,
        )  # fmt: skip
    except RecordLocked as exc:
        return grid_page(request, principal, subject_id, grid=grid, error=str(exc), status=423)
    except ValidationError as exc:
        return grid_page(
            request, principal, subject_id, grid=grid, errors={"investigator_response": exc.reason}, status=422,
            response_for=record_id, posted=posted,
        )  # fmt: skip
    notice = "query" if result.query is not None else "response"
    return RedirectResponse(f"/patients/{subject_id}/assessment-grid?notice={notice}#col-{record_id}", status_code=303)


@router.post(f"{BASE}/{{record_id}}/response", name="page_assessment_grid_response")
async def investigator_response(
    subject_id: str, record_id: str, request: Request,
    principal: Annotated[Principal, Depends(requires(Action.INVESTIGATOR_RESPONSE))],
) -> Response:  # fmt: skip
    """Record the investigator's overall response for one assessment."""
    posted = await _posted(request)
    return await run_in_threadpool(save_response, request, principal, subject_id, record_id, posted)
