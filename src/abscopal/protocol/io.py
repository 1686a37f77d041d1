"""Reading PATIENT.json, PLAN.json and SCHEDULE.json (docs/eligibility.md, docs/radiotherapy.md) into domain objects.

The files are read with the shared reader (abscopal.inputs: repeated keys, encoding, syntax with line numbers);
PATIENT and PLAN records are the domain's own dataclasses, typed by pydantic over them and checked by the shared
value rules of :mod:`abscopal.validation` (plausibility limits from the protocol, date order, nothing in the
future). Every problem is collected with its field path (``lesions[2].rt_role: Input should be
'conventional', ...``) in one :class:`~abscopal.errors.InputFileError`.
The engines never read files; the CLI (and later the web) call these loaders.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from abscopal import validation
from abscopal.domain import (
    Adjudication,
    Fraction,
    ImmunotherapyHistory,
    Lesion,
    PartialDate,
    RadiotherapyCourse,
    RtRole,
    Screening,
)
from abscopal.errors import InputFileError, Problem, ValidationError
from abscopal.inputs import read_json_object
from abscopal.protocol.calendar import ScheduleInput
from abscopal.protocol.eligibility import age_on
from abscopal.protocol.model import Plausibility
from abscopal.protocol.radiotherapy import delivered_fractions
from abscopal.protocol.resistance import validate_history


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _field(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _problems(exc: pydantic.ValidationError) -> list[Problem]:
    problems = []
    for err in exc.errors():
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field (a typo?)"
        elif err["type"] == "missing":
            message = "required field is missing"
        problems.append(Problem(None, _field(err["loc"]), message))
    return problems


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], path: Path) -> M:
    data = read_json_object(path)
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise InputFileError(str(path), _problems(exc)) from None


def _value(kind: Any, data: Mapping[str, Any], key: str, problems: list[Problem], prefix: str = "") -> Any:
    """``data[key]`` read as ``kind`` (None when absent), a problem naming the field when it is not one."""
    if data.get(key) is None:
        return None
    try:
        return TypeAdapter(kind).validate_python(data[key])
    except pydantic.ValidationError as exc:
        problems.append(Problem(None, f"{prefix}{key}", exc.errors()[0]["msg"]))
        return None


def _object(data: Mapping[str, Any], key: str, problems: list[Problem]) -> dict[str, Any] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append(Problem(None, key, "must be an object {...}"))
        return None
    return dict(value)


# ----------------------------------------------------------------------------- PATIENT.json
# The record types are the domain's (Screening, ImmunotherapyHistory, Adjudication) and their value rules are
# abscopal.validation's; PATIENT.json adds the birth date and nests the history and the adjudication.


@dataclass(frozen=True)
class PatientInput:
    screening: Screening
    immunotherapy: ImmunotherapyHistory | None
    adjudication: Adjudication | None


def _start_date(io: dict[str, Any], problems: list[Problem]) -> None:
    """A prior immunotherapy start known to the month or year ("2021-03", PartialDate) becomes the latest day it
    may mean, but not after the last dose or the progression (docs/eligibility.md): the exposure is then the
    shortest the record allows, so a resistance class is proposed only when it holds for every possible start.
    A complete date is used as it is; the text as recorded is kept in ``start_date_reported``."""
    raw = io.get("start_date")
    if not isinstance(raw, str) or len(raw.strip()) == 10:
        return
    try:
        partial = PartialDate.parse(raw)
    except ValueError as exc:
        problems.append(Problem(None, "immunotherapy.start_date", str(exc)))
        io.pop("start_date")
        return
    bounds = [partial.latest()]
    for key in ("last_dose_date", "progression_date"):
        with contextlib.suppress(ValueError):
            bounds.append(dt.date.fromisoformat(str(io.get(key))))
    io["start_date"] = max(partial.earliest(), min(bounds))
    io["start_date_reported"] = str(partial)


def patient_from_data(
    data: Mapping[str, Any], path: str = "<patient>", limits: Plausibility | None = None, today: dt.date | None = None
) -> PatientInput:
    """Domain objects from PATIENT.json's document; every type, value, unit and date-order problem is collected."""
    fields = dict(data)
    problems: list[Problem] = []
    birth = _value(dt.date, fields, "birth_date", problems)
    fields.pop("birth_date", None)
    io = _object(fields, "immunotherapy", problems)
    adj = _object(fields, "adjudication", problems)
    fields.pop("immunotherapy", None)
    fields.pop("adjudication", None)
    subject = fields.get("subject_id")
    screening, found = validation.parse_record(Screening, fields, limits, today)
    problems += found
    if screening is not None and screening.age_years is None and birth is not None:
        try:
            screening = replace(screening, age_years=age_on(birth, screening.screening_date))
        except ValidationError as exc:
            problems.append(Problem(None, exc.field, exc.reason))
    history = None
    if io is not None:
        _start_date(io, problems)
        history, found = validation.parse_record(
            ImmunotherapyHistory, io, limits, today, "immunotherapy", subject_id=subject
        )
        problems += found
        if history is not None and not found:
            try:
                validate_history(history)
            except ValidationError as exc:
                problems.append(Problem(None, exc.field, exc.reason))
    adjudication = None
    if adj is not None:
        adjudication, found = validation.parse_record(
            Adjudication, adj, limits, today, "adjudication", subject_id=subject
        )
        problems += found
    if screening is not None:
        problems += validation.record_problems(
            reference_date=None, screening=screening, history=history, birth_date=birth
        )
    if birth is not None and (why := validation.not_in_future(birth, today, "birth_date")):
        problems.append(why)
    if problems or screening is None:
        raise InputFileError(path, problems)
    return PatientInput(screening, history, adjudication)


def load_patient(path: str | Path, limits: Plausibility | None = None, today: dt.date | None = None) -> PatientInput:
    """Read PATIENT.json (docs/eligibility.md) with the shared reader and the shared schema."""
    p = Path(path)
    return patient_from_data(read_json_object(p), str(p), limits, today)


# ----------------------------------------------------------------------------- PLAN.json
# Lesions, courses and fractions are the domain's records; PLAN.json lets a lesion leave out location, is_node,
# measurable and baseline diameter, a course leave out its role (its lesion's) and alpha/beta (the protocol's),
# and a course state its total dose (checked) and whether it is completed.

_LESION_DEFAULTS: dict[str, Any] = {"location": "", "is_node": False, "measurable": True, "baseline_diameter_mm": None}
_SELECTIONS = ("primary", "largest", "symptomatic")


@dataclass(frozen=True)
class PlanInput:
    subject_id: str
    lesions: tuple[Lesion, ...]
    courses: tuple[RadiotherapyCourse, ...]
    fractions: tuple[Fraction, ...]
    conventional_selection: str | None
    completed: frozenset[str] | None


def _items(data: Mapping[str, Any], key: str, problems: list[Problem], required: bool = False) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        problems.append(Problem(None, key, "must be an array of objects [{...}, ...]"))
        return []
    if required and not value:
        problems.append(Problem(None, key, "must list at least one"))
    return [dict(v) for v in value]


def plan_from_data(
    data: Mapping[str, Any],
    alpha_beta_tumour_gy: float,
    path: str = "<plan>",
    limits: Plausibility | None = None,
    today: dt.date | None = None,
) -> PlanInput:
    """Domain objects from PLAN.json's document (a course's role defaults to its lesion's, alpha/beta to the
    protocol's)."""
    problems: list[Problem] = []
    unknown = set(data) - {"subject_id", "conventional_selection", "lesions", "courses", "fractions"}
    problems += [Problem(None, k, "unknown field (a typo?)") for k in sorted(unknown)]
    subject = data.get("subject_id")
    if not isinstance(subject, str) or not subject.strip():
        problems.append(
            Problem(None, "subject_id", "required field is missing" if subject is None else "must be a non-empty text")
        )
    selection = data.get("conventional_selection")
    if selection is not None and selection not in _SELECTIONS:
        problems.append(
            Problem(None, "conventional_selection", f"{selection!r} is not one of {', '.join(_SELECTIONS)}")
        )
    lesions: list[Lesion] = []
    roles: dict[str, RtRole] = {}
    for i, raw in enumerate(_items(data, "lesions", problems, required=True)):
        lesion, found = validation.parse_record(
            Lesion, {**_LESION_DEFAULTS, **raw}, limits, today, f"lesions[{i}]", subject_id=subject
        )
        problems += found
        if lesion is None:
            continue
        if lesion.lesion_id in roles:
            if roles[lesion.lesion_id] is not lesion.rt_role:
                reason = (
                    f"lesion {lesion.lesion_id} is listed as {roles[lesion.lesion_id].value} and as "
                    f"{lesion.rt_role.value}; a lesion has exactly one role"
                )
                problems.append(Problem(None, f"lesions[{i}].rt_role", reason))
            else:
                problems.append(Problem(None, f"lesions[{i}].lesion_id", f"lesion {lesion.lesion_id} is listed twice"))
        roles.setdefault(lesion.lesion_id, lesion.rt_role)
        lesions.append(lesion)
    courses: list[RadiotherapyCourse] = []
    flags: dict[str, bool] = {}
    for i, raw in enumerate(_items(data, "courses", problems)):
        where = f"courses[{i}]"
        total = _value(float, raw, "total_dose_gy", problems, f"{where}.")
        completed = _value(bool, raw, "completed", problems, f"{where}.")
        given_role = _value(RtRole, raw, "role", problems, f"{where}.")
        for key in ("total_dose_gy", "completed", "role"):
            raw.pop(key, None)
        lesion_id = raw.get("lesion_id")
        role = roles.get(lesion_id) if isinstance(lesion_id, str) else None
        if role is None:
            if isinstance(lesion_id, str):
                problems.append(Problem(None, f"{where}.lesion_id", f"lesion {lesion_id} is not in lesions"))
            else:
                problems.append(Problem(None, f"{where}.lesion_id", "required field is missing"))
            continue
        if given_role is not None and given_role is not role:
            problems.append(
                Problem(
                    None,
                    f"{where}.role",
                    f"lesion {lesion_id} is {role.value} in lesions but this course is {given_role.value}; "
                    "a lesion has exactly one role",
                )
            )
            continue
        if raw.get("alpha_beta_gy") is None:
            raw["alpha_beta_gy"] = alpha_beta_tumour_gy
        course, found = validation.parse_record(
            RadiotherapyCourse, raw, limits, today, where, subject_id=subject, role=role
        )
        problems += found
        if course is None:
            continue
        if total is not None and abs(course.total_dose_gy - total) > 0.01 * total:
            problems.append(
                Problem(
                    None,
                    f"{where}.total_dose_gy",
                    f"{total:g} Gy is not {course.dose_per_fraction_gy:g} Gy x {course.fractions} = "
                    f"{course.total_dose_gy:g} Gy (fractions = total / dose per fraction)",
                )
            )
        if completed is not None:
            flags[course.lesion_id] = completed
        courses.append(course)
    fractions: list[Fraction] = []
    for i, raw in enumerate(_items(data, "fractions", problems)):
        fraction, found = validation.parse_record(Fraction, raw, limits, today, f"fractions[{i}]", subject_id=subject)
        problems += found
        if fraction is None:
            continue
        if fraction.lesion_id not in roles:
            problems.append(
                Problem(None, f"fractions[{i}].lesion_id", f"lesion {fraction.lesion_id} is not in lesions")
            )
        fractions.append(fraction)
    if problems or not isinstance(subject, str):
        raise InputFileError(path, problems)
    completed_set: frozenset[str] | None = None
    if flags:
        # explicit flags win; other courses count as completed once all their fractions are recorded
        done = {k for k, v in flags.items() if v}
        for c in courses:
            if c.lesion_id not in flags:
                given = delivered_fractions(f for f in fractions if f.lesion_id == c.lesion_id)
                if len(given) >= c.fractions:
                    done.add(c.lesion_id)
        completed_set = frozenset(done)
    return PlanInput(subject, tuple(lesions), tuple(courses), tuple(fractions), selection, completed_set)


def load_plan(
    path: str | Path, alpha_beta_tumour_gy: float, limits: Plausibility | None = None, today: dt.date | None = None
) -> PlanInput:
    """Read PLAN.json (docs/radiotherapy.md) with the shared reader and the shared schema."""
    p = Path(path)
    return plan_from_data(read_json_object(p), alpha_beta_tumour_gy, str(p), limits, today)


# ----------------------------------------------------------------------------- SCHEDULE.json


class SeriesModel(_Model):
    fractions: int = Field(default=0, ge=0)
    start_date: dt.date | None = None
    delivered: list[dt.date] = Field(default_factory=list)


class ImmunotherapyScheduleModel(_Model):
    start_date: dt.date | None = None
    given: list[dt.date] = Field(default_factory=list)


class ScheduleModel(_Model):
    """SCHEDULE.json: the plan from enrolment and the actual dates so far."""

    patient_id: str = Field(min_length=1)
    enrolment_date: dt.date
    conventional: SeriesModel = SeriesModel()
    low_dose: SeriesModel = SeriesModel()
    immunotherapy: ImmunotherapyScheduleModel = ImmunotherapyScheduleModel()
    assessments: list[dt.date] = Field(default_factory=list)
    questionnaires: list[dt.date] = Field(default_factory=list)
    follow_ups: list[dt.date] = Field(default_factory=list)
    end_of_treatment: dt.date | None = None
    death_date: dt.date | None = None
    withdrawal_date: dt.date | None = None
    end_of_study: dt.date | None = None


#: The SCHEDULE.json dates that end the patient's visits: each on or after enrolment and not in the future.
_OFF_STUDY = ("death_date", "withdrawal_date", "end_of_study")


def schedule_from_model(m: ScheduleModel, path: str = "<schedule>", today: dt.date | None = None) -> ScheduleInput:
    """The calendar's input from SCHEDULE.json's model; every problem (a second fraction on one day, an end of
    treatment before enrolment, a death, withdrawal or end of study before enrolment or in the future) is
    collected with its field in one :class:`InputFileError`."""
    problems: list[Problem] = []
    seen: set[dt.date] = set()
    for i, d in enumerate(m.conventional.delivered):
        if d in seen:
            problems.append(Problem(None, f"conventional.delivered[{i}]", f"a second conventional fraction on {d}"))
        seen.add(d)
    if m.end_of_treatment is not None and m.end_of_treatment < m.enrolment_date:
        problems.append(Problem(None, "end_of_treatment", f"{m.end_of_treatment} is before enrolment"))
    for name in _OFF_STUDY:
        day: dt.date | None = getattr(m, name)
        problems += [
            p
            for p in (
                validation.not_after(day, m.enrolment_date, name, "enrolment"),
                validation.not_in_future(day, today, name),
            )
            if p is not None
        ]
    if problems:
        raise InputFileError(path, problems)
    return ScheduleInput(
        patient_id=m.patient_id,
        enrolment_date=m.enrolment_date,
        cfrt_fractions=m.conventional.fractions,
        cfrt_start=m.conventional.start_date,
        cfrt_delivered=tuple(m.conventional.delivered),
        ldrt_fractions=m.low_dose.fractions,
        ldrt_start=m.low_dose.start_date,
        ldrt_delivered=tuple(m.low_dose.delivered),
        immunotherapy_start=m.immunotherapy.start_date,
        immunotherapy_given=tuple(m.immunotherapy.given),
        assessments=tuple(m.assessments),
        questionnaires=tuple(m.questionnaires),
        follow_ups=tuple(m.follow_ups),
        end_of_treatment=m.end_of_treatment,
        death_date=m.death_date,
        withdrawal_date=m.withdrawal_date,
        end_of_study=m.end_of_study,
    )


def load_schedule(path: str | Path, today: dt.date | None = None) -> ScheduleInput:
    """Read SCHEDULE.json (docs/radiotherapy.md) with the shared reader; ``today`` (default: the real today) is
    the day after which no death, withdrawal or end of study may be dated."""
    p = Path(path)
    return schedule_from_model(_parse(ScheduleModel, p), str(p), today)
