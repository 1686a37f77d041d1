"""The per-patient visit calendar: radiotherapy fractions, immunotherapy cycles, assessments, questionnaires, follow-up.

Working days come from the ``holidays`` package for the protocol's ``[schedule].holidays_country`` (China by
default), including China's adjusted working days (weekend days worked in exchange for a longer holiday; holidays
exposes them as ``weekend_workdays``). Treatment series (conventional fractions on consecutive working days,
low-dose fractions weekly, immunotherapy every 21 days) are recomputed from the actual dates when treatment slips;
tumour assessments and questionnaires stay anchored on the enrolment date so that a treatment delay does not shift
the assessment times (avoids evaluation-time bias in PFS; RECIST 1.1 §4.3, Eisenhauer 2009).

The calendar is what was known on the ``as_of`` day: actual dates after it (visits done, fractions, cycles, a death
or withdrawal recorded later) are ignored. After death, withdrawal from the study or the end of study (enrolment +
``max_follow_up_days``, or an earlier end of study) no visit is expected: a visit whose window was still open on
that day is "not expected" with the reason, the first cancelled visit of each kind is shown, later ones are not
listed, and only a window that closed while the patient was on study can make a visit overdue.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import holidays

from abscopal.errors import ValidationError
from abscopal.messages import N_, Localised, Message
from abscopal.protocol.model import Immunotherapy, LowDoseRT, Schedule

ONE_DAY = dt.timedelta(days=1)
#: The web's language code -> the ``holidays`` package's for the holidays' names.
HOLIDAY_LANGUAGES = {"zh_Hans": "zh_CN"}


class WorkingDays:
    """Working days of a country: not a weekend day and not a public holiday, or an adjusted working weekend day."""

    def __init__(self, country: str = "CN", years: Iterable[int] | None = None) -> None:
        try:
            self._holidays: Any = holidays.country_holidays(country, years=list(years or []))
        except NotImplementedError:
            raise ValidationError("schedule.holidays_country", f"{country!r} is not a country holidays knows") from None
        self.country = country
        self._years = list(years or [])
        self._named: dict[str, Any] = {}  # language -> the holidays in that language, made when a name is asked
        self._working: dict[dt.date, bool] = {}  # each day's answer, once: a cohort's calendars ask ~10^5 times
        self._holiday: dict[dt.date, str | None] = {}  # each day's holiday name, once (a calendar asks per visit)
        self._filling = threading.Lock()  # one shared instance serves the web's threads (working_days_of)

    def _populate(self, day: dt.date) -> None:
        with self._filling:
            _ = day in self._holidays  # holidays fills a year (and its adjusted working days) on first use

    def is_working_day(self, day: dt.date) -> bool:
        known = self._working.get(day)
        if known is None:
            self._populate(day)
            known = self._working[day] = bool(self._holidays.is_working_day(day))
        return known

    def is_adjusted_working_day(self, day: dt.date) -> bool:
        """A weekend day that is worked (China's 调休), e.g. Sunday 2024-09-29 before National Day."""
        self._populate(day)
        return day in self._holidays.weekend_workdays

    def holiday_name(self, day: dt.date) -> str | None:
        """The holiday's name as ``holidays`` gives it in English, with its Simplified Chinese name where the
        country has one (:class:`~abscopal.messages.Localised`); None on a day that is no holiday."""
        if day in self._holiday:
            return self._holiday[day]
        self._populate(day)
        name = self._holidays.get(day)
        found: str | None = None
        if name:
            chinese = self._name_in(HOLIDAY_LANGUAGES["zh_Hans"], day)
            found = Localised(str(name), zh_Hans=chinese) if chinese else str(name)
        self._holiday[day] = found
        return found

    def _name_in(self, language: str, day: dt.date) -> str | None:
        if language not in getattr(self._holidays, "supported_languages", ()):
            return None
        with self._filling:
            named = self._named.get(language)
            if named is None:
                named = self._named[language] = holidays.country_holidays(
                    self.country, years=self._years, language=language
                )
            name = named.get(day)
        return str(name) if name else None

    def on_or_after(self, day: dt.date) -> dt.date:
        """The first working day on or after ``day``."""
        while not self.is_working_day(day):
            day += ONE_DAY
        return day

    def after(self, day: dt.date) -> dt.date:
        """The first working day strictly after ``day``."""
        return self.on_or_after(day + ONE_DAY)

    def on_or_before(self, day: dt.date) -> dt.date:
        while not self.is_working_day(day):
            day -= ONE_DAY
        return day

    def nth(self, start: dt.date, n: int) -> dt.date:
        """The ``n``-th working day counting ``start``'s first working day as 1 (end of an n-fraction course)."""
        if n < 1:
            raise ValidationError("fractions", f"must be at least 1, got {n}")
        day = self.on_or_after(start)
        for _ in range(n - 1):
            day = self.after(day)
        return day

    def count_between(self, start: dt.date, end: dt.date) -> int:
        """Working days in the half-open interval (start, end]."""
        count, day = 0, start + ONE_DAY
        while day <= end:
            count += self.is_working_day(day)
            day += ONE_DAY
        return count

    def nearest_in_window(self, day: dt.date, lo: dt.date, hi: dt.date) -> dt.date:
        """``day`` moved to a working day: forward if that stays in [lo, hi], else backward, else unchanged."""
        forward = self.on_or_after(day)
        if forward <= hi:
            return forward
        backward = self.on_or_before(day)
        return backward if backward >= lo else day


# ----------------------------------------------------------------------------- questionnaire visit codes
# The protocol schedule's questionnaire visits as codes, defined once: "baseline" (visit 0, at enrolment), then
# "week_<n>" at every ``questionnaire_interval_days`` (week_6, week_12, ... for 42 days), or "day_<n>" when the
# interval is not a whole number of weeks (so that two visits never share a code), up to ``max_follow_up_days``.
# QuestionnaireAnswer.visit holds one of these codes (a str); abscopal.validation refuses any other when given the
# schedule. Source: protocols/nct05906329.toml [schedule] (questionnaire every 6 weeks, follow-up to 2 years).

BASELINE_VISIT = "baseline"


def questionnaire_visit_code(number: int, schedule: Schedule) -> str:
    """The code of questionnaire visit ``number`` (0 = baseline, n = n-th interval after enrolment)."""
    if number < 0:
        raise ValidationError("visit", f"visit number {number} is negative (0 is the baseline visit)")
    if number == 0:
        return BASELINE_VISIT
    days = number * schedule.questionnaire_interval_days
    return f"week_{days // 7}" if schedule.questionnaire_interval_days % 7 == 0 else f"day_{days}"


def questionnaire_visit_codes(schedule: Schedule) -> tuple[str, ...]:
    """Every questionnaire visit code of the schedule, in order: baseline up to ``max_follow_up_days``."""
    last = schedule.max_follow_up_days // schedule.questionnaire_interval_days
    return tuple(questionnaire_visit_code(n, schedule) for n in range(last + 1))


def _expected(codes: Sequence[str]) -> str:
    shown = codes if len(codes) <= 4 else [*codes[:3], "...", codes[-1]]
    return ", ".join(shown)


def questionnaire_visit_number(code: str, schedule: Schedule) -> int:
    """The visit number of a questionnaire visit code (inverse of :func:`questionnaire_visit_code`); a code that
    is not one of :func:`questionnaire_visit_codes` raises ``ValidationError("visit", ...)``."""
    number: int | None = 0 if code == BASELINE_VISIT else None
    unit, _, count = code.partition("_")
    if number is None and unit in ("week", "day") and count.isascii() and count.isdigit():
        days = int(count) * (7 if unit == "week" else 1)
        number = -(-days // schedule.questionnaire_interval_days)  # the visit whose code it would be, if any
    if (
        number is not None
        and number * schedule.questionnaire_interval_days <= schedule.max_follow_up_days
        and questionnaire_visit_code(number, schedule) == code
    ):
        return number
    raise ValidationError(
        "visit",
        Message(
            N_("{code} is not a visit of the protocol schedule (expected {expected})"),
            code=repr(code),
            expected=_expected(questionnaire_visit_codes(schedule)),
        ),
    )


class VisitKind(StrEnum):
    CFRT_FRACTION = "cfrt_fraction"
    LDRT_FRACTION = "ldrt_fraction"
    IMMUNOTHERAPY = "immunotherapy"
    TUMOUR_ASSESSMENT = "tumour_assessment"
    QUESTIONNAIRE = "questionnaire"
    FOLLOW_UP = "follow_up"


class VisitStatus(StrEnum):
    DONE = "done"
    DONE_OUT_OF_WINDOW = "done_out_of_window"
    OVERDUE = "overdue"
    DUE = "due"
    UPCOMING = "upcoming"
    UNSCHEDULED = "unscheduled"
    NOT_EXPECTED = "not_expected"  # cancelled: the patient died, withdrew or left the study before its window closed


@dataclass(frozen=True, slots=True)
class Visit:
    """One planned (or unscheduled, when ``planned`` is None) visit and what happened."""

    kind: VisitKind
    number: int
    planned: dt.date | None
    window_start: dt.date | None
    window_end: dt.date | None
    actual: dt.date | None = None
    note: str = ""
    not_expected: str = ""  # why the visit will not take place (death, withdrawal, end of study), else empty

    def in_window(self) -> bool:
        if self.actual is None or self.window_start is None or self.window_end is None:
            return False
        return self.window_start <= self.actual <= self.window_end

    def status(self, as_of: dt.date) -> VisitStatus:
        if self.planned is None:
            return VisitStatus.UNSCHEDULED
        assert self.window_start is not None and self.window_end is not None
        if self.actual is not None:
            return VisitStatus.DONE if self.in_window() else VisitStatus.DONE_OUT_OF_WINDOW
        if self.not_expected:
            return VisitStatus.NOT_EXPECTED
        if self.window_end < as_of:
            return VisitStatus.OVERDUE
        if self.window_start <= as_of:
            return VisitStatus.DUE
        return VisitStatus.UPCOMING


@dataclass(frozen=True, slots=True)
class ScheduleInput:
    """What the calendar needs for one patient: plan and the actual dates so far (the SCHEDULE.json contents)."""

    patient_id: str
    enrolment_date: dt.date
    cfrt_fractions: int = 0
    cfrt_start: dt.date | None = None
    cfrt_delivered: tuple[dt.date, ...] = ()
    ldrt_fractions: int = 0
    ldrt_start: dt.date | None = None
    ldrt_delivered: tuple[dt.date, ...] = ()
    immunotherapy_start: dt.date | None = None
    immunotherapy_given: tuple[dt.date, ...] = ()
    assessments: tuple[dt.date, ...] = ()
    questionnaires: tuple[dt.date, ...] = ()
    follow_ups: tuple[dt.date, ...] = ()
    end_of_treatment: dt.date | None = None  # progression, new therapy: no more cycles; follow-up visits begin
    death_date: dt.date | None = None  # no visit of any kind after it
    withdrawal_date: dt.date | None = None  # withdrawal from the study (consent withdrawn): no visit after it
    end_of_study: dt.date | None = None  # the patient's study ended early; default enrolment + max_follow_up_days


@dataclass(frozen=True)
class PatientSchedule:
    patient_id: str
    as_of: dt.date
    visits: tuple[Visit, ...]
    country: str = "CN"
    notes: tuple[str, ...] = field(default=())
    off_study: dt.date | None = None  # the day the patient died, withdrew or the study ended, when before as_of
    off_study_reason: str = ""

    def status(self, visit: Visit) -> VisitStatus:
        return visit.status(self.as_of)

    @property
    def overdue(self) -> list[Visit]:
        """Visits whose window closed before ``as_of`` without the visit taking place."""
        return [v for v in self.visits if v.status(self.as_of) is VisitStatus.OVERDUE]

    @property
    def not_expected(self) -> list[Visit]:
        """Visits cancelled because the patient died, withdrew or left the study before their window closed."""
        return [v for v in self.visits if v.status(self.as_of) is VisitStatus.NOT_EXPECTED]

    @property
    def out_of_window(self) -> list[Visit]:
        """Visits that took place outside their window."""
        return [v for v in self.visits if v.status(self.as_of) is VisitStatus.DONE_OUT_OF_WINDOW]

    def of_kind(self, kind: VisitKind) -> list[Visit]:
        return [v for v in self.visits if v.kind is kind]


def _validate(inp: ScheduleInput) -> None:
    checks: list[tuple[str, Sequence[dt.date]]] = [
        ("conventional.delivered", inp.cfrt_delivered),
        ("low_dose.delivered", inp.ldrt_delivered),
        ("immunotherapy.given", inp.immunotherapy_given),
        ("assessments", inp.assessments),
        ("questionnaires", inp.questionnaires),
        ("follow_ups", inp.follow_ups),
    ]
    for name, dates in checks:
        for i, d in enumerate(dates):
            if d < inp.enrolment_date - dt.timedelta(days=30):
                raise ValidationError(f"{name}[{i}]", f"{d} is more than 30 days before enrolment {inp.enrolment_date}")
    if len(set(inp.cfrt_delivered)) != len(inp.cfrt_delivered):
        raise ValidationError("conventional.delivered", "two conventional fractions on the same day")
    if inp.cfrt_fractions < 0 or inp.ldrt_fractions < 0:
        raise ValidationError("fractions", "the number of fractions cannot be negative")


def _sequential(
    kind: VisitKind,
    count: int | None,
    start: dt.date,
    actual: Sequence[dt.date],
    interval: int,
    before: int,
    after: int,
    as_of: dt.date,
    wd: WorkingDays,
    horizon: dt.date,
    working_days: bool,
) -> list[Visit]:
    """A treatment series: each item planned ``interval`` days after the previous ACTUAL one (working days when
    ``interval`` is 1, i.e. consecutive working days), window [planned - before, planned + after]."""
    visits: list[Visit] = []
    done = sorted(actual)
    previous: dt.date | None = None
    number = 0
    past_overdue = False
    while True:
        number += 1
        if count is not None and number > max(count, len(done)):
            break
        if previous is None:
            nominal = start
        elif interval == 1:
            nominal = wd.after(previous)
        else:
            nominal = previous + dt.timedelta(days=interval)
        if past_overdue and nominal < as_of:
            nominal = wd.on_or_after(as_of) if working_days else as_of
        lo, hi = nominal - dt.timedelta(days=before), nominal + dt.timedelta(days=after)
        planned = (
            wd.on_or_after(nominal)
            if interval == 1
            else (wd.nearest_in_window(nominal, lo, hi) if working_days else nominal)
        )
        if interval == 1:
            lo = hi = planned
        if number > len(done) and planned > horizon:
            break
        note = ""
        if planned != nominal and interval != 1:
            note = Message(
                N_("moved from {day} ({holiday})"),
                day=nominal.isoformat(),
                holiday=wd.holiday_name(nominal) or Message(N_("weekend")),
            )
        if count is not None and number > count:
            note = Message(N_("beyond the prescribed number"))
        got = done[number - 1] if number <= len(done) else None
        visits.append(Visit(kind, number, planned, lo, hi, got, note))
        if got is not None:
            previous = got
        else:
            previous = planned
            if planned < as_of and hi < as_of:
                past_overdue = True
    return visits


def _anchored(
    kind: VisitKind,
    anchor: dt.date,
    interval: int,
    window: int,
    until: dt.date,
    actual: Sequence[dt.date],
    first_offset: int | None = None,
    baseline_window: tuple[int, int] | None = None,
) -> list[Visit]:
    """Visits fixed on the calendar from ``anchor`` (every ``interval`` ± ``window`` days); each actual date is
    matched to the nearest planned visit, in order, and one that matches none is listed as unscheduled."""
    planned: list[tuple[dt.date, dt.date, dt.date]] = []
    if baseline_window is not None:
        planned.append(
            (anchor, anchor + dt.timedelta(days=baseline_window[0]), anchor + dt.timedelta(days=baseline_window[1]))
        )
    k = 1 if first_offset is None else 0
    while True:
        offset = (first_offset or 0) + k * interval
        day = anchor + dt.timedelta(days=offset)
        if day > until:
            break
        planned.append((day, day - dt.timedelta(days=window), day + dt.timedelta(days=window)))
        k += 1
    matched: dict[int, dt.date] = {}
    extra: list[dt.date] = []
    j = 0
    for a in sorted(actual):
        while j + 1 < len(planned) and abs((planned[j + 1][0] - a).days) < abs((planned[j][0] - a).days):
            j += 1
        if j < len(planned) and abs((planned[j][0] - a).days) <= max(interval // 2, window):
            matched[j] = a
            j += 1
        else:
            extra.append(a)
    visits = [Visit(kind, i + 1, p, lo, hi, matched.get(i)) for i, (p, lo, hi) in enumerate(planned)]
    visits += [Visit(kind, 0, None, None, None, a, "unscheduled") for a in extra]
    return visits


def known_on(inp: ScheduleInput, as_of: dt.date) -> ScheduleInput:
    """The input as it stood on ``as_of``: every actual date after that day (done visits, fractions, cycles, end of
    treatment, death, withdrawal, an early end of study) is dropped, so an old day's calendar is what was known."""

    def until(dates: tuple[dt.date, ...]) -> tuple[dt.date, ...]:
        return tuple(d for d in dates if d <= as_of)

    def known(day: dt.date | None) -> dt.date | None:
        return day if day is not None and day <= as_of else None

    return replace(
        inp,
        cfrt_delivered=until(inp.cfrt_delivered),
        ldrt_delivered=until(inp.ldrt_delivered),
        immunotherapy_given=until(inp.immunotherapy_given),
        assessments=until(inp.assessments),
        questionnaires=until(inp.questionnaires),
        follow_ups=until(inp.follow_ups),
        end_of_treatment=known(inp.end_of_treatment),
        death_date=known(inp.death_date),
        withdrawal_date=known(inp.withdrawal_date),
        end_of_study=known(inp.end_of_study),
    )


def off_study(inp: ScheduleInput, horizon: dt.date, as_of: dt.date) -> tuple[dt.date, str] | None:
    """The first day, on or before ``as_of``, after which no visit is expected, and why (death first on a tie)."""
    stops = [
        (inp.death_date, 0, N_("the patient died on {day}")),
        (inp.withdrawal_date, 1, N_("the patient withdrew from the study on {day}")),
        (inp.end_of_study, 2, N_("the patient's study ended on {day}")),
        (horizon, 3, N_("the study ended on {day} (maximum follow-up)")),
    ]
    known = [(day, rank, text) for day, rank, text in stops if day is not None and day <= as_of]
    if not known:
        return None
    day, _, text = min(known, key=lambda stop: (stop[0], stop[1]))
    return day, Message(text, day=day.isoformat())


def _cancel_after(visits: list[Visit], stop: dt.date, reason: str) -> list[Visit]:
    """Visits not done whose window was still open on ``stop`` become not expected; of those planned after ``stop``
    only the first of each kind is kept (so the coordinator sees what was cancelled, not two years of it)."""
    out: list[Visit] = []
    shown: set[VisitKind] = set()
    for v in visits:
        if v.actual is not None or v.planned is None or v.window_end is None or v.window_end < stop:
            out.append(v)
            continue
        if v.planned > stop:
            if v.kind in shown:
                continue
            shown.add(v.kind)
        out.append(replace(v, not_expected=Message(N_("not expected: {reason}"), reason=reason)))
    return out


@functools.cache
def working_days_of(country: str) -> WorkingDays:
    """One shared :class:`WorkingDays` per country (years filled as asked): building one costs ~5 ms of holidays'
    set-up, which a dashboard computing thousands of calendars must not pay per patient."""
    return WorkingDays(country)


def build_schedule(
    inp: ScheduleInput,
    immunotherapy: Immunotherapy,
    schedule: Schedule,
    low_dose: LowDoseRT,
    as_of: dt.date,
    working_days: WorkingDays | None = None,
) -> PatientSchedule:
    """The patient's calendar from enrolment, recomputed from actual dates, with each visit's status on ``as_of``.

    Only what was known on ``as_of`` counts (see ``known_on``); once the patient is off study (``off_study``) the
    series are planned as of that day and visits still open then are not expected.
    """
    _validate(inp)
    reported_as_of = as_of
    inp = known_on(inp, as_of)
    wd = working_days or working_days_of(schedule.holidays_country)
    horizon = inp.enrolment_date + dt.timedelta(days=schedule.max_follow_up_days)
    stop = off_study(inp, horizon, as_of)
    if stop is not None:
        as_of = min(as_of, stop[0])  # re-planning of missed visits stops when the patient left the study
    treatment_end = min(inp.end_of_treatment or horizon, horizon)
    visits: list[Visit] = []
    if inp.cfrt_fractions or inp.cfrt_delivered:
        start = wd.on_or_after(inp.cfrt_start or inp.enrolment_date)
        visits += _sequential(
            VisitKind.CFRT_FRACTION, inp.cfrt_fractions, start, inp.cfrt_delivered, 1, 0, 0, as_of, wd, horizon, True
        )
    if inp.ldrt_fractions or inp.ldrt_delivered:
        start = inp.ldrt_start or inp.cfrt_start or inp.enrolment_date
        lo = low_dose.interval_days - int(low_dose.interval_window_days.min)
        hi = int(low_dose.interval_window_days.max) - low_dose.interval_days
        visits += _sequential(
            VisitKind.LDRT_FRACTION,
            inp.ldrt_fractions,
            start,
            inp.ldrt_delivered,
            low_dose.interval_days,
            lo,
            hi,
            as_of,
            wd,
            horizon,
            True,
        )
    io_start = inp.immunotherapy_start or inp.enrolment_date
    io_visits = _sequential(
        VisitKind.IMMUNOTHERAPY,
        None,
        io_start,
        inp.immunotherapy_given,
        immunotherapy.interval_days,
        immunotherapy.window_days,
        immunotherapy.window_days,
        as_of,
        wd,
        treatment_end,
        True,
    )
    visits += io_visits
    visits += _anchored(
        VisitKind.TUMOUR_ASSESSMENT,
        inp.enrolment_date,
        schedule.assessment_interval_days,
        schedule.assessment_window_days,
        treatment_end,
        inp.assessments,
    )
    visits += _anchored(
        VisitKind.QUESTIONNAIRE,
        inp.enrolment_date,
        schedule.questionnaire_interval_days,
        schedule.questionnaire_window_days,
        treatment_end,
        inp.questionnaires,
        baseline_window=(-schedule.questionnaire_window_days, 0),
    )
    if inp.end_of_treatment is not None:
        visits += _anchored(
            VisitKind.FOLLOW_UP,
            inp.end_of_treatment,
            schedule.follow_up_interval_days,
            schedule.follow_up_window_days,
            horizon,
            inp.follow_ups,
        )
    order = list(VisitKind)
    visits.sort(key=lambda v: (v.planned or v.actual or dt.date.max, order.index(v.kind), v.number))
    if stop is not None:
        visits = _cancel_after(visits, *stop)
    return PatientSchedule(
        inp.patient_id,
        reported_as_of,
        tuple(visits),
        wd.country,
        off_study=stop[0] if stop else None,
        off_study_reason=stop[1] if stop else "",
    )


def as_dict(schedule: PatientSchedule) -> dict[str, Any]:
    """A JSON-ready calendar (for ``--json`` and the web)."""

    def visit(v: Visit) -> dict[str, Any]:
        return {
            "kind": v.kind.value,
            "number": v.number,
            "planned": v.planned,
            "window_start": v.window_start,
            "window_end": v.window_end,
            "actual": v.actual,
            "status": v.status(schedule.as_of).value,
            "note": v.not_expected or v.note,
        }

    return {
        "patient_id": schedule.patient_id,
        "as_of": schedule.as_of,
        "holidays_country": schedule.country,
        "off_study": schedule.off_study,
        "off_study_reason": schedule.off_study_reason,
        "overdue": [visit(v) for v in schedule.overdue],
        "not_expected": [visit(v) for v in schedule.not_expected],
        "out_of_window": [visit(v) for v in schedule.out_of_window],
        "visits": [visit(v) for v in schedule.visits],
    }
