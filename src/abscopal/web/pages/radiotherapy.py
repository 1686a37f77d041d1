"""The lesion registry, RT roles with live role rules, and the RT course with BED/EQD2 (issue 12 item 4).

One page per patient (``/patients/{subject_id}/radiotherapy``): the baseline lesions (added and edited through
:func:`abscopal.services.lesions.record_lesion`), their RT roles (set all at once through
:func:`~abscopal.services.lesions.assign_rt_roles`) and the RT course prescriptions
(:func:`~abscopal.services.lesions.prescribe_rt_course`). Every rule result and every dose figure on the page is
the radiotherapy engine's (:func:`abscopal.protocol.radiotherapy.check_plan`, ``check_lesion_roles``,
``check_prescription``, ``lesion_doses``) and every planned date the calendar engine's; the two ``check``
endpoints answer htmx with the engine's results for the unsaved choices and write nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from abscopal import domain as d
from abscopal.errors import AbscopalError, ConflictError, RecordLocked, ValidationError
from abscopal.messages import Message
from abscopal.protocol import calendar as cal
from abscopal.protocol import radiotherapy as rt
from abscopal.protocol.model import Protocol
from abscopal.services import lesions as lesion_service
from abscopal.services.common import Action, Refused, protocol_of
from abscopal.services.ports import UnitOfWorkLike
from abscopal.store.records import Stored
from abscopal.web.context import Principal, reading, requires, state_of, unit_of_work
from abscopal.web.forms import FormField, errors_of, form_fields, parse
from abscopal.web.i18n import N_, error_text, gettext, in_language, translate
from abscopal.web.pages.records import FIRST_ENTRY, is_patient, posted_form, zone_of
from abscopal.web.problems import status_of
from abscopal.web.records import visible_patient
from abscopal.web.templating import language_of, render

router = APIRouter(include_in_schema=False)

BASE = "/patients/{subject_id}/radiotherapy"
#: The roles a lesion may be given, in the order the form lists them (the domain's values, as the spec writes them).
ROLES = tuple(r.value for r in d.RtRole)
#: Lesion fields the registry form does not show: the role is the radiation oncologist's (the roles form).
NOT_IN_LESION_FORM = frozenset({"rt_role"})
#: What the prescription form asks; the role is the lesion's and α/β the protocol's (radiotherapy.md §3).
COURSE_FIELDS = ("lesion_id", "dose_per_fraction_gy", "fractions", "start_date", "plan_label")
NOTICES = {
    "lesion": N_("The lesion was saved."),
    "roles": N_("The RT roles were saved."),
    "course": N_("The prescription was saved."),
}


@dataclasses.dataclass
class PrefixedField(FormField):
    """A generated form control whose id carries its form's prefix: two forms of one page (a lesion's and a
    course's ``lesion_id``) must not share an id, or a label would name the wrong control."""

    prefix: str = ""

    @property
    def control_id(self) -> str:
        return f"{self.prefix}-{self.name}"


def prefixed(fields: list[FormField], prefix: str) -> list[FormField]:
    """``fields`` with ids ``<prefix>-<name>`` (the tests and the journeys find a control by that id)."""
    return [PrefixedField(**{f.name: getattr(x, f.name) for f in dataclasses.fields(x)}, prefix=prefix) for x in fields]


class _Refusal(Exception):
    """A form refused before the services were called: the status and what to show beside which field."""

    def __init__(self, status: int, errors: Mapping[str, str], sentence: str | None) -> None:
        super().__init__(sentence or "; ".join(errors.values()))
        self.status, self.errors, self.sentence = status, dict(errors), sentence


# --- what the engines say about the stored records


def _working_days(protocol: Protocol, years: set[int]) -> cal.WorkingDays:
    return cal.WorkingDays(protocol.schedule.holidays_country, years | {y + 1 for y in years})


def plan_report(
    subject_id: str, lesions: list[d.Lesion], courses: list[d.RadiotherapyCourse], fractions: list[d.Fraction],
    protocol: Protocol, selection: str | None = None, language: str = "en",
) -> tuple[rt.PlanReport | None, str | None]:  # fmt: skip
    """The engine's plan report of the stored records, or the sentence saying why the engine refuses them."""
    years = {f.date.year for f in fractions} | {c.start_date.year for c in courses} | {dt.date.today().year}
    try:
        report = rt.check_plan(
            subject_id, lesions, courses, fractions, protocol.radiotherapy, _working_days(protocol, years), selection
        )
    except AbscopalError as exc:
        return None, error_text(language, exc)
    return report, None


def deviation_texts(report: rt.PlanReport | None, language: str) -> dict[str, str]:
    """The recorded deviations' reasons in ``language``: a reason that is still the sentence of one of the plan's
    failed checks (as the engine proposed it, not reworded) is shown as that check's translation."""
    if report is None or language == "en":
        return {}
    return {str(c.message): translate(language, c.message) for c in report.checks if not c.ok}


def _rule_rows(checks: list[rt.RtCheck] | tuple[rt.RtCheck, ...], language: str = "en") -> list[dict[str, Any]]:
    """The engine's checks for a page; ``message`` is the check's sentence in ``language``."""
    return [
        {"check": c.check.value, "lesion_id": c.lesion_id or "", "ok": c.ok, "message": translate(language, c.message),
         "deviation_class": c.deviation_class.value if c.deviation_class else "", "values": c.values}
        for c in checks
    ]  # fmt: skip


def role_rules(
    lesions: list[d.Lesion], protocol: Protocol, irradiated: set[str], selection: str | None = None,
    language: str = "en",
) -> list[dict[str, Any]]:  # fmt: skip
    """The protocol's role rules on ``lesions`` as the engine checks them (radiotherapy.md §1)."""
    return _rule_rows(rt.check_lesion_roles(lesions, protocol.radiotherapy, selection, irradiated), language)


def course_preview(
    patient: d.Patient, course: d.RadiotherapyCourse, protocol: Protocol, language: str = "en"
) -> dict[str, Any]:
    """The engine's view of one unsaved prescription: its checks, BED/EQD2 (tumour and late α/β) and the
    calendar engine's planned fraction dates with their windows."""
    rules = protocol.radiotherapy
    checks = rt.check_prescription(course, rules)
    years = {course.start_date.year, course.start_date.year + 1}
    wd = _working_days(protocol, years)
    dose = rt.lesion_doses([course], [], rules, wd)[0]
    kind = cal.VisitKind.CFRT_FRACTION if course.role is d.RtRole.CONVENTIONAL else cal.VisitKind.LDRT_FRACTION
    visits: list[cal.Visit] = []
    if patient.enrolment_date is not None and course.fractions > 0:
        first = min(patient.enrolment_date, course.start_date)
        if kind is cal.VisitKind.CFRT_FRACTION:
            inp = cal.ScheduleInput(
                patient.subject_id, first, cfrt_fractions=course.fractions, cfrt_start=course.start_date
            )
        else:
            inp = cal.ScheduleInput(
                patient.subject_id, first, ldrt_fractions=course.fractions, ldrt_start=course.start_date
            )
        try:
            planned = cal.build_schedule(
                inp, protocol.immunotherapy, protocol.schedule, rules.low_dose,
                course.start_date - dt.timedelta(days=1), wd,
            )  # fmt: skip
            visits = [v for v in planned.visits if v.kind is kind]
        except AbscopalError:
            visits = []
    return {
        "checks": _rule_rows(checks, language), "dose": dose, "visits": visits, "role": course.role.value,
        "total_gy": course.total_dose_gy,
    }  # fmt: skip


# --- the page


def _stored(uow: UnitOfWorkLike, subject_id: str) -> dict[str, Any]:
    return {
        "lesions": sorted(uow.lesions.for_subject(subject_id), key=lambda s: s.value.lesion_id),
        "courses": sorted(
            uow.radiotherapy_courses.for_subject(subject_id), key=lambda s: (s.value.lesion_id, s.value.start_date)
        ),
        "fractions": [s.value for s in uow.fractions.for_subject(subject_id)],
        "deviations": sorted(
            uow.deviations.for_subject(subject_id), key=lambda s: (s.value.date or dt.date.min, s.value.check)
        ),
    }


def lesion_form_fields(
    lesion: d.Lesion | None, posted: Mapping[str, str] | None, errors: Mapping[str, str] | None, zone: str
) -> list[FormField]:
    fields = form_fields(d.Lesion, lesion, posted=posted, errors=errors, zone=zone)
    return prefixed([f for f in fields if f.name not in NOT_IN_LESION_FORM], "lesion")


def course_form_fields(
    posted: Mapping[str, str] | None, errors: Mapping[str, str] | None, prescribable: list[d.Lesion], zone: str,
    course: d.RadiotherapyCourse | None = None,
) -> list[FormField]:  # fmt: skip
    fields = {f.name: f for f in form_fields(d.RadiotherapyCourse, course, posted=posted, errors=errors, zone=zone)}
    lesion = fields["lesion_id"]
    lesion.kind, lesion.required = "select", True
    lesion.options = tuple((x.lesion_id, f"{x.lesion_id} · {x.rt_role.value} · {x.organ}") for x in prescribable)
    return prefixed([fields[name] for name in COURSE_FIELDS], "course")


def page(
    request: Request, principal: Principal, subject_id: str, *, status: int = 200, notice: str | None = None,
    edit_id: str | None = None, lesion_posted: Mapping[str, str] | None = None,
    lesion_errors: Mapping[str, str] | None = None, lesion_error: str | None = None,
    roles_posted: Mapping[str, str] | None = None, roles_error: str | None = None,
    roles_reasons: list[str] | None = None, course_posted: Mapping[str, str] | None = None,
    course_errors: Mapping[str, str] | None = None, course_error: str | None = None,
    recorded_count: int = 0, course_id: str | None = None,
) -> Response:  # fmt: skip
    """The registry page (with a refused form's values and sentences when a save was refused)."""
    zone = zone_of(request)
    with reading(request, principal) as uow:
        patient, _ = visible_patient(uow, principal, subject_id)
        records = _stored(uow, subject_id)
        editing = next((s for s in records["lesions"] if s.id == edit_id), None) if edit_id else None
        course = next((s for s in records["courses"] if s.id == course_id), None) if course_id else None
    protocol = protocol_of(patient.value, state_of(request).protocols)
    lesions = [s.value for s in records["lesions"]]
    courses = [s.value for s in records["courses"]]
    report, plan_error = plan_report(
        subject_id, lesions, courses, records["fractions"], protocol, language=language_of(request)
    )
    irradiated = rt.irradiated_lesions(records["fractions"])
    chosen = {s.value.lesion_id: (roles_posted or {}).get(f"role-{s.value.lesion_id}", s.value.rt_role.value)
              for s in records["lesions"]}  # fmt: skip
    language = language_of(request)
    rules = role_rules(lesions, protocol, irradiated, language=language) if lesions else []
    if roles_posted is not None:
        selection = roles_posted.get("conventional_selection")
        rules = _rules_for_choices(lesions, chosen, protocol, irradiated, selection, language)
    prescribable = [x for x in lesions if x.rt_role in (d.RtRole.CONVENTIONAL, d.RtRole.LOW_DOSE)]
    doses = {x.lesion_id: x for x in report.doses} if report else {}
    plan_checks = [c for c in _rule_rows(report.checks, language) if c["lesion_id"]] if report else []
    return render(
        request, "radiotherapy.html", status_code=status, subject_id=subject_id, patient=patient.value,
        lesions=records["lesions"], courses=records["courses"], deviations=records["deviations"],
        doses=doses, plan_checks=plan_checks, plan_error=plan_error, rules=rules, roles=ROLES, chosen=chosen,
        deviation_text=deviation_texts(report, language),
        selection=(roles_posted or {}).get("conventional_selection", ""),
        selections=protocol.radiotherapy.conventional.selection,
        editing=editing, lesion_fields=lesion_form_fields(
            editing.value if editing else None, lesion_posted, lesion_errors, zone),
        lesion_error=lesion_error, lesion_reason=(lesion_posted or {}).get("reason", ""),
        lesion_reason_error=(lesion_errors or {}).get("reason"),
        roles_error=roles_error, roles_reasons=[translate(language, r) for r in roles_reasons or []],
        roles_reason=(roles_posted or {}).get("reason", ""), roles_reason_needed=_roles_reason_needed(lesions),
        course_fields=course_form_fields(
            course_posted, course_errors, prescribable, zone, course.value if course else None),
        course_error=course_error, course=course, course_reason=(course_posted or {}).get("reason", ""),
        course_reason_error=(course_errors or {}).get("reason"), alpha_beta=protocol.radiotherapy.radiobiology,
        notice=notice, recorded_count=max(recorded_count, 0), irradiated=irradiated,
        may_registry=principal.may(Action.LESION_REGISTRY), may_rt=principal.may(Action.RADIOTHERAPY),
        may_import=principal.may(Action.DICOM_IMPORT), protocol_version=protocol.version.number,
    )  # fmt: skip


def _roles_reason_needed(lesions: list[d.Lesion]) -> bool:
    """A reason is asked once the roles were first saved (any role set): every later change is an edit."""
    return any(x.rt_role is not d.RtRole.NONE for x in lesions)


def _rules_for_choices(
    lesions: list[d.Lesion], chosen: Mapping[str, str], protocol: Protocol, irradiated: set[str],
    selection: str | None, language: str = "en",
) -> list[dict[str, Any]]:  # fmt: skip
    roles = {lid: d.RtRole(v) for lid, v in chosen.items() if v in ROLES}
    new = [dataclasses.replace(x, rt_role=roles.get(x.lesion_id, x.rt_role)) for x in lesions]
    return role_rules(new, protocol, irradiated, selection or None, language)


@router.get(BASE, name="page_radiotherapy")
def registry(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.READ))],
    notice: str | None = None, edit: str | None = None, course: str | None = None, deviations: int = 0,
) -> Response:  # fmt: skip
    _refuse_patient_account(principal, subject_id)
    return page(
        request, principal, subject_id, notice=_notice(request, notice), edit_id=edit, recorded_count=deviations,
        course_id=course,
    )  # fmt: skip


def _refuse_patient_account(principal: Principal, subject_id: str) -> None:
    """A patient's account sees only its questionnaires (web.md §1): the registry is not found for it."""
    if is_patient(principal):
        from abscopal.errors import NotFound

        raise NotFound(Message(N_("No radiotherapy plan of {subject} for you"), subject=repr(subject_id)))


def _notice(request: Request, code: str | None) -> str | None:
    text = NOTICES.get(code or "")
    return gettext(language_of(request), text) if text else None


# --- lesions


def _posted_of(posted: Mapping[str, str], names: set[str]) -> dict[str, str]:
    return {k: v for k, v in posted.items() if k in names}


def save_lesion(
    request: Request, principal: Principal, subject_id: str, record_id: str | None, posted: Mapping[str, str]
) -> Response:
    """Add a lesion (record_id None) or edit one; its role stays what the radiation oncologist set."""
    language = language_of(request)
    with reading(request, principal) as uow:
        visible_patient(uow, principal, subject_id)
        current = uow.lesions.get(record_id) if record_id else None
        if current is not None and current.value.subject_id != subject_id:
            from abscopal.errors import NotFound

            raise NotFound(
                Message(N_("No lesion {record} for patient {subject}"), record=repr(record_id), subject=subject_id)
            )
    names = {f.name for f in dataclasses.fields(d.Lesion)} - {"subject_id"}
    fields = _posted_of(posted, names - NOT_IN_LESION_FORM)
    fields["rt_role"] = current.value.rt_role.value if current else d.RtRole.NONE.value
    errors: dict[str, str] = {}
    top: str | None = None
    version = _int(posted.get("version"))
    reason = (posted.get("reason") or "").strip()
    if current is not None and not reason:
        errors["reason"] = gettext(
            language, N_("Every edit after the first save needs a reason (it goes to the audit trail).")
        )
    if current is not None and version is None:
        top = gettext(language, N_("The form did not say which version of the lesion it was based on; reload."))
    body: dict[str, Any] | None = None
    try:
        body = parse(d.Lesion, fields, base=current.value if current else None, zone=zone_of(request))
    except ValidationError as exc:
        found, sentence = errors_of(exc, names)
        found, sentence = in_language(language, found, sentence, exc)
        errors.update(found)
        top = top or sentence
    edit_id = current.id if current else None
    if errors or top or body is None:
        return page(
            request, principal, subject_id, status=422, edit_id=edit_id, lesion_posted=posted,
            lesion_errors=errors, lesion_error=top,
        )  # fmt: skip
    lesion = d.Lesion(subject_id=subject_id, **body)
    try:
        with unit_of_work(request, principal, reason if current else FIRST_ENTRY) as uow:
            _, actor = visible_patient(uow, principal, subject_id)
            lesion_service.record_lesion(
                uow, actor, lesion, record_id=record_id, version=version, protocols=state_of(request).protocols
            )
    except (ConflictError, RecordLocked, ValidationError) as exc:
        status = status_of(exc)
        found, sentence = errors_of(exc, names) if isinstance(exc, ValidationError) else ({}, str(exc))
        if isinstance(exc, Refused):
            found, sentence = {}, str(exc)
        found, sentence = in_language(language_of(request), found, sentence, exc)
        return page(
            request, principal, subject_id, status=status, edit_id=edit_id, lesion_posted=posted,
            lesion_errors=found, lesion_error=sentence,
        )  # fmt: skip
    return RedirectResponse(f"/patients/{subject_id}/radiotherapy?notice=lesion#lesions", status_code=303)


def _int(text: str | None) -> int | None:
    value = (text or "").strip()
    return int(value) if value.isdigit() else None


@router.post(f"{BASE}/lesions", name="page_radiotherapy_add_lesion")
async def add_lesion(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.LESION_REGISTRY))]
) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(save_lesion, request, principal, subject_id, None, posted)


@router.post(f"{BASE}/lesions/{{record_id}}", name="page_radiotherapy_edit_lesion")
async def edit_lesion(
    subject_id: str, record_id: str, request: Request,
    principal: Annotated[Principal, Depends(requires(Action.LESION_REGISTRY))],
) -> Response:  # fmt: skip
    posted = await posted_form(request)
    return await run_in_threadpool(save_lesion, request, principal, subject_id, record_id, posted)


# --- roles


def _role_choices(posted: Mapping[str, str], lesions: list[Stored[d.Lesion]], language: str) -> dict[str, d.RtRole]:
    roles: dict[str, d.RtRole] = {}
    for s in lesions:
        lid = s.value.lesion_id
        text = (posted.get(f"role-{lid}") or "").strip()
        if not text:
            continue
        if text not in ROLES:
            raise _Refusal(
                422, {f"role-{lid}": gettext(language, N_("Choose one of the roles listed."))},
                gettext(language, N_("%(lesion)s: %(value)s is not an RT role.")) % {"lesion": lid, "value": text},
            )  # fmt: skip
        roles[lid] = d.RtRole(text)
    return roles


def rules_fragment(request: Request, principal: Principal, subject_id: str, posted: Mapping[str, str]) -> Response:
    """The role rules on the unsaved choices (the engine's ``check_lesion_roles``); nothing is written."""
    with reading(request, principal) as uow:
        patient, _ = visible_patient(uow, principal, subject_id)
        stored = sorted(uow.lesions.for_subject(subject_id), key=lambda s: s.value.lesion_id)
        irradiated = rt.irradiated_lesions(s.value for s in uow.fractions.for_subject(subject_id))
    protocol = protocol_of(patient.value, state_of(request).protocols)
    language = language_of(request)
    try:
        roles = _role_choices(posted, stored, language)
    except _Refusal as exc:
        return render(request, "radiotherapy_rules.html", status_code=422, rules=[], error=exc.sentence, live=True)
    chosen = {s.value.lesion_id: roles.get(s.value.lesion_id, s.value.rt_role).value for s in stored}
    selection = (posted.get("conventional_selection") or "").strip() or None
    rules = (
        _rules_for_choices([s.value for s in stored], chosen, protocol, irradiated, selection, language)
        if stored
        else []
    )
    return render(request, "radiotherapy_rules.html", rules=rules, error=None, live=True)


@router.post(f"{BASE}/check", name="page_radiotherapy_check_roles")
async def check_roles(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.RADIOTHERAPY))]
) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(rules_fragment, request, principal, subject_id, posted)


def save_roles(request: Request, principal: Principal, subject_id: str, posted: Mapping[str, str]) -> Response:
    """Assign every lesion's role at once; a set that breaks a rule is refused with each rule named (422)."""
    language = language_of(request)
    with reading(request, principal) as uow:
        visible_patient(uow, principal, subject_id)
        stored = sorted(uow.lesions.for_subject(subject_id), key=lambda s: s.value.lesion_id)
    try:
        roles = _role_choices(posted, stored, language)
    except _Refusal as exc:
        return page(request, principal, subject_id, status=422, roles_posted=posted, roles_error=exc.sentence)
    if not stored:
        return page(
            request, principal, subject_id, status=422, roles_posted=posted,
            roles_error=gettext(language, N_("The patient has no lesion yet: add the baseline lesions first.")),
        )  # fmt: skip
    versions = {lid: v for lid in roles if (v := _int(posted.get(f"version-{lid}"))) is not None}
    reason = (posted.get("reason") or "").strip()
    if _roles_reason_needed([s.value for s in stored]) and not reason:
        return page(
            request, principal, subject_id, status=422, roles_posted=posted,
            roles_error=gettext(language, N_("Changing RT roles needs a reason (it goes to the audit trail).")),
        )  # fmt: skip
    selection = (posted.get("conventional_selection") or "").strip() or None
    try:
        with unit_of_work(request, principal, reason or FIRST_ENTRY) as uow:
            _, actor = visible_patient(uow, principal, subject_id)
            lesion_service.assign_rt_roles(
                uow, actor, subject_id, roles, versions, conventional_selection=selection,
                protocols=state_of(request).protocols,
            )  # fmt: skip
    except Refused as exc:
        sentence = gettext(language, N_("The RT roles were not saved: they break the protocol's role rules."))
        return page(
            request, principal, subject_id, status=422, roles_posted=posted, roles_error=sentence,
            roles_reasons=exc.reasons,
        )  # fmt: skip
    except (ConflictError, RecordLocked, ValidationError) as exc:
        status = status_of(exc)
        error = error_text(language, exc)
        return page(request, principal, subject_id, status=status, roles_posted=posted, roles_error=error)
    return RedirectResponse(f"/patients/{subject_id}/radiotherapy?notice=roles#roles", status_code=303)


@router.post(f"{BASE}/roles", name="page_radiotherapy_roles")
async def assign_roles(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.RADIOTHERAPY))]
) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(save_roles, request, principal, subject_id, posted)


# --- the prescription


def _course_of(
    posted: Mapping[str, str], lesions: list[d.Lesion], subject_id: str, protocol: Protocol, zone: str
) -> d.RadiotherapyCourse:
    """The posted prescription as a course: the role is its lesion's, α/β the protocol's tumour value."""
    fields = {k: v for k, v in posted.items() if k in COURSE_FIELDS}
    lid = (fields.get("lesion_id") or "").strip()
    lesion = next((x for x in lesions if x.lesion_id == lid), None)
    fields["role"] = lesion.rt_role.value if lesion else ""
    fields["alpha_beta_gy"] = str(protocol.radiotherapy.radiobiology.alpha_beta_tumour_gy)
    if lesion is None:
        raise ValidationError("lesion_id", Message(N_("choose the lesion the course treats")))
    body = parse(d.RadiotherapyCourse, fields, zone=zone)
    return d.RadiotherapyCourse(subject_id=subject_id, **body)


def course_fragment(request: Request, principal: Principal, subject_id: str, posted: Mapping[str, str]) -> Response:
    """The engine's checks, BED/EQD2 and planned dates of the unsaved prescription; nothing is written."""
    with reading(request, principal) as uow:
        patient, _ = visible_patient(uow, principal, subject_id)
        lesions = [s.value for s in uow.lesions.for_subject(subject_id)]
    protocol = protocol_of(patient.value, state_of(request).protocols)
    try:
        course = _course_of(posted, lesions, subject_id, protocol, zone_of(request))
        if course.role not in (d.RtRole.CONVENTIONAL, d.RtRole.LOW_DOSE):
            refusal = N_("lesion {lesion} is {role}: no prescription")
            raise ValidationError("lesion_id", Message(refusal, lesion=course.lesion_id, role=course.role.value))
        preview = course_preview(patient.value, course, protocol, language_of(request))
    except (ValidationError, AbscopalError) as exc:
        field = exc.field if isinstance(exc, ValidationError) else ""
        error = error_text(language_of(request), exc)
        return render(request, "radiotherapy_course_check.html", status_code=422, preview=None, error=error,
                      field=field)  # fmt: skip
    return render(request, "radiotherapy_course_check.html", preview=preview, error=None, field="")


@router.post(f"{BASE}/course/check", name="page_radiotherapy_check_course")
async def check_course(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.RADIOTHERAPY))]
) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(course_fragment, request, principal, subject_id, posted)


def save_course(
    request: Request, principal: Principal, subject_id: str, record_id: str | None, posted: Mapping[str, str]
) -> Response:
    """Prescribe a course (record_id None) or edit one (with the version it was based on and a reason); a
    prescription outside the regimen is stored with its deviations (the engine's)."""
    language = language_of(request)
    with reading(request, principal) as uow:
        patient, _ = visible_patient(uow, principal, subject_id)
        lesions = [s.value for s in uow.lesions.for_subject(subject_id)]
        current = uow.radiotherapy_courses.get(record_id) if record_id else None
        if current is not None and current.value.subject_id != subject_id:
            from abscopal.errors import NotFound

            raise NotFound(
                Message(
                    N_("No radiotherapy course {record} for patient {subject}"),
                    record=repr(record_id),
                    subject=subject_id,
                )
            )
    protocol = protocol_of(patient.value, state_of(request).protocols)
    names = set(COURSE_FIELDS) | {"reason"}
    version = _int(posted.get("version"))
    reason = (posted.get("reason") or "").strip()
    course_id = current.id if current else None
    try:
        course = _course_of(posted, lesions, subject_id, protocol, zone_of(request))
        if current is not None and not reason:
            raise ValidationError(
                "reason",
                gettext(language, N_("Every edit after the first save needs a reason (it goes to the audit trail).")),
            )
        if current is not None and version is None:
            raise ValidationError(
                "", gettext(language, N_("The form did not say which version of the course it was based on; reload."))
            )
    except ValidationError as exc:
        found, sentence = errors_of(exc, names)
        found, sentence = in_language(language_of(request), found, sentence, exc)
        return page(
            request, principal, subject_id, status=422, course_posted=posted, course_errors=found,
            course_error=sentence, course_id=course_id,
        )  # fmt: skip
    try:
        with unit_of_work(request, principal, reason if current else FIRST_ENTRY) as uow:
            _, actor = visible_patient(uow, principal, subject_id)
            done = lesion_service.prescribe_rt_course(
                uow, actor, course, record_id=record_id, version=version, protocols=state_of(request).protocols
            )
    except (ConflictError, RecordLocked, ValidationError) as exc:
        status = status_of(exc)
        found, sentence = errors_of(exc, names) if isinstance(exc, ValidationError) else ({}, str(exc))
        if isinstance(exc, ValidationError) and exc.field.startswith("courses["):
            found, sentence = {"lesion_id": exc.reason}, None
        found, sentence = in_language(language_of(request), found, sentence, exc)
        return page(
            request, principal, subject_id, status=status, course_posted=posted, course_errors=found,
            course_error=sentence, course_id=course_id,
        )  # fmt: skip
    count = len(done.deviations)
    return RedirectResponse(
        f"/patients/{subject_id}/radiotherapy?notice=course&deviations={count}#courses", status_code=303
    )


@router.post(f"{BASE}/courses", name="page_radiotherapy_prescribe")
async def prescribe(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.RADIOTHERAPY))]
) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(save_course, request, principal, subject_id, None, posted)


@router.post(f"{BASE}/courses/{{record_id}}", name="page_radiotherapy_edit_course")
async def edit_course(
    subject_id: str, record_id: str, request: Request,
    principal: Annotated[Principal, Depends(requires(Action.RADIOTHERAPY))],
) -> Response:  # fmt: skip
    posted = await posted_form(request)
    return await run_in_threadpool(save_course, request, principal, subject_id, record_id, posted)
