"""The validated schema: the one place where the value rules of every domain record live.

Types come from the domain dataclasses themselves (:func:`parse_record` builds a record from JSON-like data with
pydantic's ``TypeAdapter`` over the dataclass: no second model of the record); value rules are here:

- **plausibility**: physically possible values, from the protocol's ``[plausibility]`` table
  (:class:`~abscopal.protocol.model.Plausibility`, defaults in docs/protocol.md): diameters 0-500 mm,
  haemoglobin 0-250 g/L, platelets 0-2,000 x10^9/L, dose per fraction 0-30 Gy, ECOG 0-5, age 0-120, ...;
- **field rules** of one record: a date of a record never after ``today`` (injectable, for tests), resolution
  on or after onset, the last immunotherapy dose on or after its start, ...;
- **schedule rules**, when the caller passes the protocol's ``schedule``: a questionnaire answer's visit is one of
  the schedule's codes (baseline, week_6, ...; :func:`abscopal.protocol.calendar.questionnaire_visit_codes`);
- **cross-record rules** (:func:`record_problems`), taking the patient and the reference date (enrolment or
  first study treatment): consent on or before screening and the first treatment; death, progression and every
  post-baseline assessment on or after the reference date; birth before everything.

Each problem names the field (``labs.haemoglobin.value``); protocol rules (eligibility thresholds, RECIST
limits, CTCAE grades per term) stay in their engines. Used by the CLI readers now and by the store's services,
the web forms and the exports (docs/inputs.md)::

    from abscopal import validation
    errors = validation.problems(screening, protocol.plausibility, today=date.today())
    validation.validate(adverse_event)   # raises ValidationError("resolution_date", "... before onset_date ...")
    validation.problems(answer, schedule=protocol.schedule)   # [Problem(None, "visit", "'week_7' is not ...")]
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import pydantic
from pydantic import TypeAdapter

from abscopal.domain import (
    AdverseEvent,
    Fraction,
    ImmunotherapyHistory,
    LabValue,
    Lesion,
    LesionMeasurement,
    Patient,
    QuestionnaireAnswer,
    RadiotherapyCourse,
    Screening,
    TumourAssessment,
    field_hints,
)
from abscopal.errors import Problem, ValidationError
from abscopal.messages import N_, Joined, Message
from abscopal.protocol import units
from abscopal.protocol.calendar import questionnaire_visit_number
from abscopal.protocol.model import Interval, Plausibility, Schedule

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "history_order_problems",
    "not_after",
    "not_in_future",
    "parse_record",
    "problems",
    "record_problems",
    "validate",
    "visit_problem",
    "within",
]

Limits = Plausibility
#: Abscopal's default plausibility limits (the bundled protocol states the same values).
DEFAULT_LIMITS = Plausibility()

T = TypeVar("T")
Rule = Callable[[Any, Plausibility, dt.date, str], list[Problem]]
_RULES: dict[type, Rule] = {}
ScheduleRule = Callable[[Any, Schedule], list[Problem]]
#: Rules that need the protocol schedule (a visit code); they run only when the caller passes the schedule.
_SCHEDULE_RULES: dict[type, ScheduleRule] = {}


def _rule(cls: type) -> Callable[[Rule], Rule]:
    def register(func: Rule) -> Rule:
        _RULES[cls] = func
        return func

    return register


# ----------------------------------------------------------------------------- building blocks


def within(value: float | None, limit: Interval, field: str, unit: str = "") -> Problem | None:
    """A problem when ``value`` is not a finite number inside ``limit`` (None is "not recorded": fine)."""
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return Problem(None, field, Message(_NOT_A_NUMBER, value=str(value)))
    if limit.contains(value):
        return None
    return Problem(
        None,
        field,
        Message(_IMPLAUSIBLE, value=f"{value:g}{unit}", min=f"{limit.min:g}", max=f"{limit.max:g}{unit}"),
    )


_NOT_A_NUMBER = N_("{value} is not a number")
_IMPLAUSIBLE = N_("{value} is not plausible (possible: {min} to {max})")


def not_after(later: dt.date | None, earlier: dt.date | None, field: str, earlier_name: str) -> Problem | None:
    """A problem when ``later`` is before ``earlier`` (either missing: fine); names ``field``."""
    if later is None or earlier is None or later >= earlier:
        return None
    name = Message(earlier_name) if "{" not in earlier_name else earlier_name  # translated when it is marked
    return Problem(None, field, Message(_BEFORE, date=str(later), name=name, earlier=str(earlier)))


_BEFORE = N_("{date} is before {name} ({earlier})")


def _order(later: dt.date | None, earlier: dt.date | None, field: str, reason: str) -> Problem | None:
    return Problem(None, field, reason) if later is not None and earlier is not None and later < earlier else None


def not_in_future(value: dt.date | dt.datetime | None, today: dt.date | None, field: str) -> Problem | None:
    """A problem when ``value`` is after ``today`` (default: the real today)."""
    return _future(value, today or dt.date.today(), field)


def _future(value: dt.date | dt.datetime | None, today: dt.date, field: str) -> Problem | None:
    if value is None:
        return None
    day = value.date() if isinstance(value, dt.datetime) else value
    if day <= today:
        return None
    return Problem(
        None, field, Message(N_("{date} is in the future (today is {today})"), date=str(day), today=str(today))
    )


def _empty(value: str | None, field: str) -> Problem | None:
    return Problem(None, field, _IS_EMPTY) if value is not None and not value.strip() else None


_IS_EMPTY = Message(N_("is empty"))


def _keep(*found: Problem | None) -> list[Problem]:
    return [p for p in found if p is not None]


def _at(prefix: str, found: Iterable[Problem]) -> list[Problem]:
    if not prefix:
        return list(found)
    return [Problem(p.line, f"{prefix}.{p.field}" if p.field else prefix, p.reason) for p in found]


def lab_problems(name: str, lab: LabValue, limits: Plausibility = DEFAULT_LIMITS) -> list[Problem]:
    """A lab value outside the plausible range of its lab (converted to the limit's unit), an unknown unit, or a
    ULN that is not positive. Labs without a limit are checked for a finite value only."""
    where = f"labs.{name}"
    found = _keep(_empty(lab.unit, f"{where}.unit"))
    if lab.uln is not None and not lab.uln > 0:
        found.append(Problem(None, f"{where}.uln", Message(N_("{value} must be positive"), value=f"{lab.uln:g}")))
    if not math.isfinite(lab.value):
        return [*found, Problem(None, f"{where}.value", Message(_NOT_A_NUMBER, value=str(lab.value)))]
    limit = limits.labs.get(name)
    if limit is None or found:
        return found
    try:
        scale = units.factor(name, lab.unit, limit.unit)
    except ValidationError as exc:
        return [Problem(None, exc.field, exc.reason)]
    value = lab.value * scale
    if limit.min <= value <= limit.max:
        return []
    shown = f"{lab.value:g} {lab.unit}" + (f" (= {value:g} {limit.unit})" if scale != 1 else "")
    implausible = Message(_IMPLAUSIBLE, value=shown, min=f"{limit.min:g}", max=f"{limit.max:g} {limit.unit}")
    return [Problem(None, f"{where}.value", implausible)]


#: The plausibility limit of each numeric field: (record type, field) -> (limit in Plausibility, unit shown).
FIELD_LIMITS: dict[tuple[type, str], tuple[str, str]] = {
    (Screening, "age_years"): ("age_years", " years"),
    (Screening, "ecog"): ("ecog", ""),
    (Screening, "life_expectancy_months"): ("life_expectancy_months", " months"),
    (Screening, "lesion_count"): ("lesion_count", ""),
    (Screening, "metastatic_organ_count"): ("metastatic_organ_count", ""),
    (ImmunotherapyHistory, "lines_of_therapy"): ("lines_of_therapy", ""),
    (Lesion, "baseline_diameter_mm"): ("diameter_mm", " mm"),
    (LesionMeasurement, "diameter_mm"): ("diameter_mm", " mm"),
    (RadiotherapyCourse, "dose_per_fraction_gy"): ("dose_per_fraction_gy", " Gy"),
    (RadiotherapyCourse, "fractions"): ("fractions", ""),
    (RadiotherapyCourse, "alpha_beta_gy"): ("alpha_beta_gy", " Gy"),
    (Fraction, "dose_gy"): ("dose_per_fraction_gy", " Gy"),
}


def field_problem(cls: type, name: str, value: Any, limits: Plausibility = DEFAULT_LIMITS) -> Problem | None:
    """The plausibility problem of one field's value (None when fine or when the field has no limit)."""
    entry = FIELD_LIMITS.get((cls, name))
    if entry is None or not isinstance(value, int | float) or isinstance(value, bool):
        return None
    limit_name, unit = entry
    return within(value, getattr(limits, limit_name), name, unit)


def _limited(record: object, limits: Plausibility) -> list[Problem]:
    cls = type(record)
    return _keep(*(field_problem(cls, name, getattr(record, name), limits) for (c, name) in FIELD_LIMITS if c is cls))


# ----------------------------------------------------------------------------- one record


@_rule(Patient)
def _patient(p: Patient, limits: Plausibility, today: dt.date, prefix: str) -> list[Problem]:
    found = _keep(_empty(p.subject_id, "subject_id"))
    for name in (
        "birth_date",
        "enrolment_date",
        "death_date",
        "withdrawal_date",
        "new_therapy_date",
        "last_contact_date",
    ):
        found += _keep(_future(getattr(p, name), today, name))
    for name in ("enrolment_date", "death_date", "withdrawal_date", "new_therapy_date", "last_contact_date"):
        found += _keep(not_after(getattr(p, name), p.birth_date, name, N_("the birth date")))
    found += _keep(not_after(p.death_date, p.enrolment_date, "death_date", N_("enrolment")))
    age = (p.enrolment_date or today).year - p.birth_date.year
    found += _keep(within(age, limits.age_years, "birth_date", " years of age"))
    return _at(prefix, found)


_CONSENT_AFTER_SCREENING = N_("{consent} is after screening ({screening})")


@_rule(Screening)
def _screening(s: Screening, limits: Plausibility, today: dt.date, prefix: str) -> list[Problem]:
    found = _keep(
        _empty(s.subject_id, "subject_id"),
        _future(s.screening_date, today, "screening_date"),
        _future(s.consent_date, today, "consent_date"),
        _order(
            s.screening_date,
            s.consent_date,
            "consent_date",
            Message(_CONSENT_AFTER_SCREENING, consent=str(s.consent_date), screening=str(s.screening_date)),
        ),
    )
    for name, lab in s.labs.items():
        found += lab_problems(name, lab, limits)
    return _at(prefix, found)


def history_order_problems(h: ImmunotherapyHistory, prefix: str = "") -> list[Problem]:
    """The date order of a prior immunotherapy (SITC 2020, docs/eligibility.md): last dose and progression on or
    after the start, the confirmation scan on or after the progression, and no confirmation without a progression.
    """
    found = _keep(
        not_after(h.last_dose_date, h.start_date, "last_dose_date", N_("the start")),
        not_after(h.progression_date, h.start_date, "progression_date", N_("the start")),
        not_after(
            h.progression_confirmed_date, h.progression_date, "progression_confirmed_date", N_("the progression")
        ),
        Problem(None, "progression_date", Message(N_("a confirmation scan is given without a progression")))
        if h.progression_confirmed_date is not None and h.progression_date is None
        else None,
    )
    return _at(prefix, found)


@_rule(ImmunotherapyHistory)
def _history(h: ImmunotherapyHistory, limits: Plausibility, today: dt.date, prefix: str) -> list[Problem]:
    found = _keep(
        _empty(h.agent, "agent"),
        _future(h.start_date, today, "start_date"),
        _future(h.last_dose_date, today, "last_dose_date"),
        _future(h.progression_date, today, "progression_date"),
        _future(h.progression_confirmed_date, today, "progression_confirmed_date"),
    )
    return _at(prefix, found + history_order_problems(h))


@_rule(Lesion)
def _lesion(x: Lesion, limits: Plausibility, today: dt.date, prefix: str) -> list[Problem]:
    found = _keep(
        _empty(x.lesion_id, "lesion_id"),
        _empty(x.organ, "organ"),
    )
    return _at(prefix, found)


@_rule(LesionMeasurement)
def _measurement(m: LesionMeasurement, limits: Plausibility, today: dt.date, prefix: str) -> list[Problem]:
    return _at(prefix, _keep(_empty(m.lesion_id, "lesion_id")))


@_rule(TumourAssessment)
def _assessment(a: TumourAssessment, limits: Plausibility, today: dt.date, prefix: str) -> list[Problem]:
    found = _keep(_future(a.assessment_date, today, "assessment_date"))
    for i, m in enumerate(a.measurements):
        found += _one(m, limits, today, f"measurements[{i}]")
    return _at(prefix, found)


@_rule(RadiotherapyCourse)
def _course(c: RadiotherapyCourse, limits: Plausibility, today: dt.date, prefix: str) -> list[Problem]:
    found = _keep(
        None
        if c.dose_per_fraction_gy > 0
        else Problem(None, "dose_per_fraction_gy", Message(N_("must be more than {min} Gy"), min="0")),
    )
    return _at(prefix, found)


@_rule(Fraction)
def _fraction(f: Fraction, limits: Plausibility, today: dt.date, prefix: str) -> list[Problem]:
    found = _keep(
        _future(f.date, today, "date"),
        None
        if f.fraction_number >= 1
        else Problem(None, "fraction_number", Message(N_("{number} is not 1 or more"), number=str(f.fraction_number))),
    )
    return _at(prefix, found)


@_rule(AdverseEvent)
def _adverse_event(e: AdverseEvent, limits: Plausibility, today: dt.date, prefix: str) -> list[Problem]:
    found = _keep(
        _future(e.onset_date, today, "onset_date"),
        _future(e.resolution_date, today, "resolution_date"),
        _future(e.awareness_at, today, "awareness_at"),
        not_after(e.resolution_date, e.onset_date, "resolution_date", "onset_date"),
        None
        if e.awareness_at is None or e.reported_at is None or e.reported_at >= e.awareness_at
        else Problem(
            None,
            "reported_at",
            Message(_BEFORE, date=str(e.reported_at), name="awareness_at", earlier=str(e.awareness_at)),
        ),
    )
    return _at(prefix, found)


@_rule(QuestionnaireAnswer)
def _answer(a: QuestionnaireAnswer, limits: Plausibility, today: dt.date, prefix: str) -> list[Problem]:
    return _at(prefix, _keep(_empty(a.visit, "visit"), _future(a.completed_on, today, "completed_on")))


def visit_problem(visit: str, schedule: Schedule, field: str = "visit") -> Problem | None:
    """A problem when ``visit`` is not a questionnaire visit code of the protocol schedule
    (:func:`abscopal.protocol.calendar.questionnaire_visit_codes`: baseline, week_6, ...); an empty visit is
    the field rule's ("is empty")."""
    if not visit.strip():
        return None
    try:
        questionnaire_visit_number(visit, schedule)
    except ValidationError as exc:
        return Problem(None, field, exc.reason)
    return None


def _answer_visit(a: QuestionnaireAnswer, schedule: Schedule) -> list[Problem]:
    return _keep(visit_problem(a.visit, schedule))


_SCHEDULE_RULES[QuestionnaireAnswer] = _answer_visit


def problems(
    record: object,
    limits: Plausibility | None = None,
    today: dt.date | None = None,
    prefix: str = "",
    *,
    schedule: Schedule | None = None,
) -> list[Problem]:
    """Every value problem of one domain record (empty when it is valid); each names its field, prefixed by
    ``prefix`` (``immunotherapy.start_date``). A record type without rules has none. With the protocol's
    ``schedule``, a questionnaire answer's visit must also be one of the schedule's codes (baseline, week_6, ...);
    without it any non-empty visit label is accepted (a user's own file)."""
    return _one(record, limits or DEFAULT_LIMITS, today or dt.date.today(), prefix, schedule)


def _one(
    record: object, limits: Plausibility, today: dt.date, prefix: str, schedule: Schedule | None = None
) -> list[Problem]:
    rule = _RULES.get(type(record))
    found = rule(record, limits, today, prefix) if rule else []
    if schedule is not None and (schedule_rule := _SCHEDULE_RULES.get(type(record))) is not None:
        found += _at(prefix, schedule_rule(record, schedule))
    return found + _at(prefix, _limited(record, limits))


def _raise_first(found: Sequence[Problem]) -> None:
    if found:
        first = found[0]
        if len(found) > 1:
            more = Message(N_("{reason} (and {n} more)"), reason=first.reason, n=str(len(found) - 1))
            raise ValidationError(first.field, more)
        raise ValidationError(first.field, first.reason)


def validate(
    record: object,
    limits: Plausibility | None = None,
    today: dt.date | None = None,
    *,
    schedule: Schedule | None = None,
) -> None:
    """Raise :class:`ValidationError` naming the first bad field of ``record`` (see :func:`problems`)."""
    _raise_first(problems(record, limits, today, schedule=schedule))


# ----------------------------------------------------------------------------- across records


def record_problems(
    *,
    reference_date: dt.date | None,
    patient: Patient | None = None,
    screening: Screening | None = None,
    history: ImmunotherapyHistory | None = None,
    first_treatment: dt.date | None = None,
    assessments: Iterable[TumourAssessment] = (),
    adverse_events: Iterable[AdverseEvent] = (),
    birth_date: dt.date | None = None,
) -> list[Problem]:
    """Rules between one patient's records (fields named ``entity.field``):

    - consent on or before screening (ICH E6(R2) 4.8.8) and on or before the first study treatment;
    - death, and progression on the trial, on or after the reference date (enrolment or first treatment,
      response-rules.md §6: a PFS before its origin is impossible);
    - every assessment after the first (baseline) on or after the reference date;
    - the birth date before every other date.
    """
    found: list[Problem] = []
    birth = birth_date or (patient.birth_date if patient else None)
    if screening is not None:
        found += _keep(
            _order(
                screening.screening_date,
                screening.consent_date,
                "screening.consent_date",
                Message(
                    _CONSENT_AFTER_SCREENING,
                    consent=str(screening.consent_date),
                    screening=str(screening.screening_date),
                ),
            ),
            _order(
                first_treatment,
                screening.consent_date,
                "screening.consent_date",
                Message(
                    N_("{consent} is after the first study treatment ({treatment})"),
                    consent=str(screening.consent_date),
                    treatment=str(first_treatment),
                ),
            ),
            not_after(screening.screening_date, birth, "screening.screening_date", N_("the birth date")),
        )
    if patient is not None:
        found += _keep(not_after(patient.death_date, reference_date, "patient.death_date", N_("the reference date")))
    if history is not None:
        found += _keep(not_after(history.start_date, birth, "immunotherapy.start_date", N_("the birth date")))
    for i, a in enumerate(sorted(assessments, key=lambda x: x.assessment_date)):
        found += _keep(not_after(a.assessment_date, birth, f"assessments[{i}].assessment_date", N_("the birth date")))
        if i > 0:
            found += _keep(
                not_after(
                    a.assessment_date, reference_date, f"assessments[{i}].assessment_date", N_("the reference date")
                )
            )
    for e in adverse_events:
        found += _keep(not_after(e.onset_date, birth, f"adverse_events[{e.ae_id}].onset_date", N_("the birth date")))
    return found


# ----------------------------------------------------------------------------- building records from data


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _adapter(cls: type[T]) -> TypeAdapter[T]:
    if cls not in _ADAPTERS:
        _ADAPTERS[cls] = TypeAdapter(cls)
    return _ADAPTERS[cls]


def _path(prefix: str, loc: Sequence[int | str]) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


#: pydantic-core's message templates (``pydantic_core.list_all_errors()``) by error type, for the errors a form or
#: an API body meets: said as :class:`Message` so that a page can translate them (the English text is pydantic's).
PYDANTIC_TEMPLATES: dict[str, str] = {
    "missing": N_("Field required"),
    "extra_forbidden": N_("Extra inputs are not permitted"),
    "greater_than": N_("Input should be greater than {gt}"),
    "greater_than_equal": N_("Input should be greater than or equal to {ge}"),
    "less_than": N_("Input should be less than {lt}"),
    "less_than_equal": N_("Input should be less than or equal to {le}"),
    "finite_number": N_("Input should be a finite number"),
    "string_type": N_("Input should be a valid string"),
    "string_too_short": N_("String should have at least {min_length} characters"),
    "string_too_long": N_("String should have at most {max_length} characters"),
    "enum": N_("Input should be {expected}"),
    "literal_error": N_("Input should be {expected}"),
    "bool_type": N_("Input should be a valid boolean"),
    "bool_parsing": N_("Input should be a valid boolean, unable to interpret input"),
    "int_type": N_("Input should be a valid integer"),
    "int_parsing": N_("Input should be a valid integer, unable to parse string as an integer"),
    "int_from_float": N_("Input should be a valid integer, got a number with a fractional part"),
    "float_type": N_("Input should be a valid number"),
    "float_parsing": N_("Input should be a valid number, unable to parse string as a number"),
    "date_type": N_("Input should be a valid date"),
    "date_parsing": N_("Input should be a valid date in the format YYYY-MM-DD, {error}"),
    "date_from_datetime_parsing": N_("Input should be a valid date or datetime, {error}"),
    "date_from_datetime_inexact": N_("Datetimes provided to dates should have zero time - e.g. be exact dates"),
    "datetime_type": N_("Input should be a valid datetime"),
    "datetime_parsing": N_("Input should be a valid datetime, {error}"),
    "datetime_from_date_parsing": N_("Input should be a valid datetime or date, {error}"),
    "value_error": N_("Value error, {error}"),
}
#: The parsers' own reasons inside ``{error}`` (speedate's, for dates and times).
PYDANTIC_DETAILS = frozenset(
    (
        N_("input is too short"),
        N_("unexpected extra characters at the end of the input"),
        N_("invalid character in year"),
        N_("invalid character in month"),
        N_("invalid character in day"),
        N_("invalid character in hour"),
        N_("invalid character in minute"),
        N_("invalid date separator, expected `-`"),
        N_("month value is outside expected range of 1-12"),
        N_("day value is outside expected range"),
        N_("hour value is outside expected range of 0-23"),
        N_("minute value is outside expected range of 0-59"),
        N_("second value is outside expected range of 0-59"),
    )
)


def _choices(expected: str) -> str:
    """pydantic's ``"'a', 'b' or 'c'"`` as a message whose separators translate."""
    head, sep, last = expected.rpartition(" or ")
    if not sep:
        return expected
    return Message(N_("{choices} or {last}"), choices=Joined(", ", head.split(", ")), last=last)


def pydantic_reason(error: Mapping[str, Any]) -> str:
    """One pydantic error's sentence (its ``msg``), as a :class:`Message` when its type is in
    :data:`PYDANTIC_TEMPLATES` and the template gives exactly pydantic's English text; else the text as it is."""
    text = str(error.get("msg", "invalid"))
    template = PYDANTIC_TEMPLATES.get(str(error.get("type", "")))
    if template is None:
        return text
    params: dict[str, str] = {}
    ctx = error.get("ctx") or {}
    for _, name, _, _ in string.Formatter().parse(template):
        if name is None:
            continue
        value = ctx.get(name)
        if name == "error":
            cause = value.args[0] if isinstance(value, Exception) and value.args else value
            known = str(cause) in PYDANTIC_DETAILS
            params[name] = cause if isinstance(cause, Message) else Message(str(cause)) if known else str(cause)
        elif name == "expected":
            params[name] = _choices(str(value))
        else:
            params[name] = str(value)
    message = Message(template, **params)
    return message if message == text else text


def _pydantic_problems(exc: pydantic.ValidationError, prefix: str) -> list[Problem]:
    found = []
    for err in exc.errors():
        message = pydantic_reason(err)
        if err["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
            message = Message(N_("unknown field (a typo?)"))
        elif err["type"] == "missing_argument" or err["type"] == "missing":
            message = Message(N_("required field is missing"))
        found.append(Problem(None, _path(prefix, err["loc"]), message))
    return found


def parse_record(
    cls: type[T],
    data: Mapping[str, Any],
    limits: Plausibility | None = None,
    today: dt.date | None = None,
    prefix: str = "",
    *,
    schedule: Schedule | None = None,
    **context: Any,
) -> tuple[T | None, list[Problem]]:
    """Build the domain record ``cls`` from JSON-like ``data`` (plus ``context`` fields such as the subject id)
    and check it: (record, []) or (None, problems). Field names are the dataclass's, prefixed by ``prefix``;
    ``schedule`` as in :func:`problems`."""
    known = fields_of(cls)
    typo = Message(N_("unknown field (a typo?)"))
    unknown = [Problem(None, _path(prefix, [k]), typo) for k in data if k not in known]
    if unknown:
        return None, unknown
    try:
        record = _adapter(cls).validate_python({**data, **context})
    except pydantic.ValidationError as exc:
        found = _pydantic_problems(exc, prefix)
        bad = {p.field for p in found}
        hints = field_hints(cls)
        for c, name in FIELD_LIMITS:
            if c is cls and name in data and _path(prefix, [name]) not in bad:
                try:
                    value = TypeAdapter(hints[name]).validate_python(data[name])
                except pydantic.ValidationError:
                    continue
                found += _at(prefix, _keep(field_problem(cls, name, value, limits or DEFAULT_LIMITS)))
        return None, found
    found = problems(record, limits, today, prefix, schedule=schedule)
    return (None, found) if found else (record, [])


def fields_of(cls: type) -> frozenset[str]:
    """The field names of a domain dataclass (the keys an input object may have)."""
    return frozenset(f.name for f in dataclasses.fields(cls))
