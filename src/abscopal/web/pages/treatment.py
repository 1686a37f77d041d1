"""Treatment delivery: RT fractions (with a week view for low-dose RT) and immunotherapy cycles (issue 12 item 5).

``/patients/{subject_id}/treatment`` enters fractions through :func:`abscopal.services.treatment.record_fraction`
(which re-runs the radiotherapy engine's delivery checks and records each failed one as a deviation with the
engine's class) and immunotherapy cycles through :func:`~abscopal.services.treatment.record_immunotherapy_cycle`.
The page shows each against the calendar engine's windows (:func:`abscopal.protocol.calendar.build_schedule`,
which knows Chinese working days and holidays), the low-dose fractions by ISO week (weeks as rows, so a missed
week is a visible gap), and the deviations recorded so far. No rule is decided here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from abscopal import domain as d
from abscopal.errors import AbscopalError, ConflictError, NotFound, RecordLocked, ValidationError
from abscopal.messages import Message
from abscopal.protocol import calendar as cal
from abscopal.protocol import radiotherapy as rt
from abscopal.protocol.model import Protocol
from abscopal.services import treatment as treatment_service
from abscopal.services.common import Action, protocol_of
from abscopal.store.schedule_input import schedule_input_from_records
from abscopal.web.context import Principal, reading, requires, state_of, unit_of_work
from abscopal.web.forms import FormField, errors_of, form_fields, parse
from abscopal.web.i18n import N_, gettext, in_language, label_lookup
from abscopal.web.pages.radiotherapy import deviation_texts, plan_report, prefixed
from abscopal.web.pages.records import FIRST_ENTRY, is_patient, posted_form, today_in, zone_of
from abscopal.web.pages.worklists import VISIT_STATUSES
from abscopal.web.problems import status_of
from abscopal.web.records import visible_patient
from abscopal.web.templating import language_of, render

router = APIRouter(include_in_schema=False)

BASE = "/patients/{subject_id}/treatment"
FRACTION_FIELDS = ("lesion_id", "fraction_number", "date", "dose_gy", "status")
CYCLE_FIELDS = ("cycle_number", "date", "agent", "dose", "dose_unit", "route", "given")
NOTICES = {
    "fraction": N_("The fraction was saved."),
    "cycle": N_("The immunotherapy cycle was saved."),
}
#: The calendar's visit kinds this page shows, in its order.
KINDS = (cal.VisitKind.LDRT_FRACTION, cal.VisitKind.CFRT_FRACTION, cal.VisitKind.IMMUNOTHERAPY)


def _working_days(protocol: Protocol, days: list[dt.date]) -> cal.WorkingDays:
    years = {x.year for x in days} | {dt.date.today().year}
    return cal.WorkingDays(protocol.schedule.holidays_country, years | {y + 1 for y in years})


def iso_weeks(first: dt.date, last: dt.date) -> list[tuple[int, int, dt.date]]:
    """Every ISO week from ``first``'s to ``last``'s: (ISO year, week, its Monday)."""
    monday = first - dt.timedelta(days=first.weekday())
    out = []
    while monday <= last:
        year, week, _ = monday.isocalendar()
        out.append((year, week, monday))
        monday += dt.timedelta(days=7)
    return out


def week_view(fractions: list[d.Fraction], lesions: list[d.Lesion], wd: cal.WorkingDays) -> dict[str, Any]:
    """Low-dose fractions by ISO week (a row per week from the first to the last, so that a missed week shows as
    a gap), one column per low-dose lesion; the conventional fractions of the same week as a count and the
    engine's delivered dose."""
    role = {x.lesion_id: x.rt_role for x in lesions}
    low = [f for f in fractions if role.get(f.lesion_id) is d.RtRole.LOW_DOSE]
    low = sorted(low, key=lambda f: (f.date, f.lesion_id, f.fraction_number))
    conventional = [f for f in fractions if role.get(f.lesion_id) is d.RtRole.CONVENTIONAL]
    if not low:
        return {"columns": [], "rows": []}
    columns = sorted({f.lesion_id for f in low})
    rows = []
    for year, week, monday in iso_weeks(low[0].date, low[-1].date):
        sunday = monday + dt.timedelta(days=6)
        cells = {
            lid: [_fraction_row(f, wd) for f in low if f.lesion_id == lid and monday <= f.date <= sunday]
            for lid in columns
        }
        cfrt = [f for f in conventional if monday <= f.date <= sunday]
        rows.append(
            {"label": f"{year}-W{week:02d}", "monday": monday, "sunday": sunday, "cells": cells,
             "gap": not any(cells.values()), "cfrt_count": len(rt.delivered_fractions(cfrt)),
             "cfrt_gy": rt.delivered_dose_gy(cfrt)}
        )  # fmt: skip
    return {"columns": columns, "rows": rows}


#: The name shown for a fraction on a weekend day that is no public holiday.
WEEKEND_DAYS = {5: N_("Saturday"), 6: N_("Sunday")}
#: A fraction's status (``domain.FractionStatus``) as the page says it.
FRACTION_STATUSES = {"delivered": N_("delivered"), "partial": N_("partial"), "missed": N_("missed")}


def _fraction_row(f: d.Fraction, wd: cal.WorkingDays) -> dict[str, Any]:
    working = wd.is_working_day(f.date)
    return {
        "lesion_id": f.lesion_id, "number": f.fraction_number, "date": f.date, "dose_gy": f.dose_gy,
        "status": f.status.value, "working": working,
        "holiday": "" if working else (wd.holiday_name(f.date) or Message(WEEKEND_DAYS.get(f.date.weekday(), ""))),
    }  # fmt: skip


def schedule_of(
    patient: d.Patient, records: Mapping[str, list[Any]], protocol: Protocol, wd: cal.WorkingDays, today: dt.date
) -> tuple[dict[str, list[dict[str, Any]]], str | None]:
    """The calendar engine's treatment visits by kind (planned, window, actual, status today), or why none."""
    if patient.enrolment_date is None:
        return {}, patient.subject_id
    inp = schedule_input_from_records(
        patient, records["courses"], records["fractions"], records["cycles"], records["assessments"],
        records["answers"],
    )  # fmt: skip
    try:
        result = cal.build_schedule(
            inp, protocol.immunotherapy, protocol.schedule, protocol.radiotherapy.low_dose, today, wd
        )
    except AbscopalError as exc:
        return {}, str(exc)
    out: dict[str, list[dict[str, Any]]] = {k.value: [] for k in KINDS}
    for v in result.visits:
        if v.kind in KINDS:
            out[v.kind.value].append(
                {"number": v.number, "planned": v.planned, "window_start": v.window_start,
                 "window_end": v.window_end, "actual": v.actual, "status": v.status(today).value,
                 "note": v.not_expected or v.note}
            )  # fmt: skip
    return out, None


def _fields(
    cls: type[Any], names: tuple[str, ...], posted: Mapping[str, str] | None, errors: Mapping[str, str] | None,
    zone: str, prefix: str, obj: Any | None = None,
) -> list[FormField]:  # fmt: skip
    by_name = {f.name: f for f in form_fields(cls, obj, posted=posted, errors=errors, zone=zone)}
    return prefixed([by_name[n] for n in names], prefix)


def page(
    request: Request, principal: Principal, subject_id: str, *, status: int = 200, notice: str | None = None,
    recorded_count: int = 0, fraction_posted: Mapping[str, str] | None = None,
    fraction_errors: Mapping[str, str] | None = None, fraction_error: str | None = None,
    cycle_posted: Mapping[str, str] | None = None, cycle_errors: Mapping[str, str] | None = None,
    cycle_error: str | None = None,
) -> Response:  # fmt: skip
    """The treatment page (with a refused form's values and sentences when a save was refused)."""
    zone = zone_of(request)
    with reading(request, principal) as uow:
        patient, _ = visible_patient(uow, principal, subject_id)
        lesions = sorted((s.value for s in uow.lesions.for_subject(subject_id)), key=lambda x: x.lesion_id)
        records: dict[str, list[Any]] = {
            "courses": [s.value for s in uow.radiotherapy_courses.for_subject(subject_id)],
            "fractions": [s.value for s in uow.fractions.for_subject(subject_id)],
            "cycles": [s.value for s in uow.immunotherapy_cycles.for_subject(subject_id)],
            "assessments": [s.value for s in uow.assessments.for_subject(subject_id)],
            "answers": [s.value for s in uow.answers.for_subject(subject_id)],
        }
        ids = {(s.value.lesion_id, s.value.fraction_number): s.id for s in uow.fractions.for_subject(subject_id)}
        cycle_ids = {
            (s.value.cycle_number, s.value.date): s.id for s in uow.immunotherapy_cycles.for_subject(subject_id)
        }
        deviations = sorted(
            uow.deviations.for_subject(subject_id), key=lambda s: (s.value.date or dt.date.min, s.value.check)
        )
    protocol = protocol_of(patient.value, state_of(request).protocols)
    fractions = sorted(records["fractions"], key=lambda f: (f.date, f.lesion_id, f.fraction_number))
    cycles = sorted(records["cycles"], key=lambda c: (c.cycle_number, c.date))
    wd = _working_days(protocol, [f.date for f in fractions] + [c.date for c in cycles])
    visits, no_calendar = schedule_of(patient.value, records, protocol, wd, today_in(request))
    fraction_fields = _fields(d.Fraction, FRACTION_FIELDS, fraction_posted, fraction_errors, zone, "fraction")
    lesion_field = fraction_fields[0]
    lesion_field.kind, lesion_field.required = "select", True
    lesion_field.options = tuple((x.lesion_id, f"{x.lesion_id} · {x.rt_role.value}") for x in lesions)
    defaults = d.ImmunotherapyCycle(subject_id, 0, today_in(request), cycles[-1].agent if cycles else "")
    cycle_fields = _fields(d.ImmunotherapyCycle, CYCLE_FIELDS, cycle_posted, cycle_errors, zone, "cycle",
                           None if cycle_posted is not None else defaults)  # fmt: skip
    language = language_of(request)
    deviation_text: dict[str, str] = {}
    if deviations and language != "en":  # the recorded reasons that are still the plan's checks, translated
        report, _ = plan_report(subject_id, lesions, records["courses"], records["fractions"], protocol)
        deviation_text = deviation_texts(report, language)
    if cycle_posted is None:
        for f in cycle_fields:
            if f.name in ("cycle_number", "date"):
                f.value = ""
    return render(
        request, "treatment.html", status_code=status, subject_id=subject_id, patient=patient.value,
        lesions=lesions, cycles=[(cycle_ids[(c.cycle_number, c.date)], c) for c in cycles],
        fractions=[_fraction_row(f, wd) | {"id": ids[(f.lesion_id, f.fraction_number)]} for f in fractions],
        weeks=week_view(fractions, lesions, wd), visits=visits, no_calendar=no_calendar,
        deviations=deviations, deviation_text=deviation_text, fraction_fields=fraction_fields,
        fraction_error=fraction_error,
        cycle_fields=cycle_fields, cycle_error=cycle_error, notice=notice, recorded_count=max(recorded_count, 0),
        may_rt=principal.may(Action.RADIOTHERAPY), may_io=principal.may(Action.IMMUNOTHERAPY),
        holidays_country=protocol.schedule.holidays_country, status_label=label_lookup(VISIT_STATUSES, language),
        fraction_label=label_lookup(FRACTION_STATUSES, language),
    )  # fmt: skip


@router.get(BASE, name="page_treatment")
def treatment_page(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.READ))],
    notice: str | None = None, deviations: int = 0,
) -> Response:  # fmt: skip
    if is_patient(principal):  # a patient's account sees only its questionnaires (web.md §1)
        raise NotFound(Message(N_("No treatment record of {subject} for you"), subject=repr(subject_id)))
    text = NOTICES.get(notice or "")
    shown = gettext(language_of(request), text) if text else None
    return page(request, principal, subject_id, notice=shown, recorded_count=deviations)


def _next_number(used: list[int]) -> str:
    """The number a blank ``fraction_number``/``cycle_number`` gets: one after the highest recorded."""
    return str(max(used, default=0) + 1)


def save_fraction(request: Request, principal: Principal, subject_id: str, posted: Mapping[str, str]) -> Response:
    """Record one fraction; the deviations the engine finds are recorded by the service in the same transaction."""
    with reading(request, principal) as uow:
        visible_patient(uow, principal, subject_id)
        fractions = [s.value for s in uow.fractions.for_subject(subject_id)]
    names = set(FRACTION_FIELDS)
    fields = {k: v for k, v in posted.items() if k in names}
    lid = (fields.get("lesion_id") or "").strip()
    if lid and not (fields.get("fraction_number") or "").strip():
        fields["fraction_number"] = _next_number([f.fraction_number for f in fractions if f.lesion_id == lid])
    try:
        body = parse(d.Fraction, fields, zone=zone_of(request))
        fraction = d.Fraction(subject_id=subject_id, **body)
        with unit_of_work(request, principal, FIRST_ENTRY) as uow:
            _, actor = visible_patient(uow, principal, subject_id)
            done = treatment_service.record_fraction(uow, actor, fraction, protocols=state_of(request).protocols)
    except (ConflictError, RecordLocked, ValidationError) as exc:
        found, sentence = errors_of(exc, names) if isinstance(exc, ValidationError) else ({}, str(exc))
        found, sentence = in_language(language_of(request), found, sentence, exc)
        return page(
            request, principal, subject_id, status=status_of(exc), fraction_posted=posted, fraction_errors=found,
            fraction_error=sentence,
        )  # fmt: skip
    found_count = len(done.deviations)
    return RedirectResponse(
        f"/patients/{subject_id}/treatment?notice=fraction&deviations={found_count}#fractions", status_code=303
    )


@router.post(f"{BASE}/fractions", name="page_treatment_fraction")
async def add_fraction(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.RADIOTHERAPY))]
) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(save_fraction, request, principal, subject_id, posted)


def save_cycle(request: Request, principal: Principal, subject_id: str, posted: Mapping[str, str]) -> Response:
    """Record one immunotherapy cycle (the service refuses a patient not on study, a future date...)."""
    with reading(request, principal) as uow:
        visible_patient(uow, principal, subject_id)
        cycles = [s.value for s in uow.immunotherapy_cycles.for_subject(subject_id)]
    names = set(CYCLE_FIELDS)
    fields = {k: v for k, v in posted.items() if k in names}
    if not (fields.get("cycle_number") or "").strip():
        fields["cycle_number"] = _next_number([c.cycle_number for c in cycles])
    try:
        body = parse(d.ImmunotherapyCycle, fields, zone=zone_of(request))
        cycle = d.ImmunotherapyCycle(subject_id=subject_id, **body)
        with unit_of_work(request, principal, FIRST_ENTRY) as uow:
            _, actor = visible_patient(uow, principal, subject_id)
            treatment_service.record_immunotherapy_cycle(uow, actor, cycle, protocols=state_of(request).protocols)
    except (ConflictError, RecordLocked, ValidationError) as exc:
        found, sentence = errors_of(exc, names) if isinstance(exc, ValidationError) else ({}, str(exc))
        found, sentence = in_language(language_of(request), found, sentence, exc)
        return page(
            request, principal, subject_id, status=status_of(exc), cycle_posted=posted, cycle_errors=found,
            cycle_error=sentence,
        )  # fmt: skip
    return RedirectResponse(f"/patients/{subject_id}/treatment?notice=cycle#cycles", status_code=303)


@router.post(f"{BASE}/cycles", name="page_treatment_cycle")
async def add_cycle(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.IMMUNOTHERAPY))]
) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(save_cycle, request, principal, subject_id, posted)
