"""Adverse-event checks and derivations: grade validity, seriousness, attribution, treatment emergence, SAE clock.

Pure functions over :class:`abscopal.domain.AdverseEvent` and the CTCAE dictionary; rules from ae-qol.md A2
(CTCAE v5.0 conventions) and A4 (ICH E2A seriousness, NCI/CTEP attribution, TEAE definition).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from abscopal.domain import (
    AdverseEvent,
    AeOutcome,
    Attribution,
    Fraction,
    ImmunotherapyCycle,
)
from abscopal.errors import ValidationError
from abscopal.protocol.model import SafetyOptions
from abscopal.protocol.radiotherapy import delivered_fractions, first_rt_fraction, first_study_treatment
from abscopal.safety.ctcae import CtcaeDictionary, CtcaeTerm

# --- grade


def check_grade(term: CtcaeTerm, grade: int, field: str = "grade") -> None:
    """Refuse a grade the term does not define (CTCAE v5.0: "-" = grade not available for the term)."""
    if grade not in (1, 2, 3, 4, 5):
        raise ValidationError(field, f"{term.term}: grade {grade} is not a CTCAE grade (grades are 1 to 5)")
    if not term.defines(grade):
        raise ValidationError(
            field,
            f"{term.term}: grade {grade} is not defined in CTCAE v5.0 ({term.term} allows grades {term.grades_label})",
        )


# --- seriousness (ICH E2A)


class SeriousnessCriterion(StrEnum):
    """The six ICH E2A seriousness criteria, valued by their SDTM AE variable names."""

    DEATH = "AESDTH"
    LIFE_THREATENING = "AESLIFE"
    HOSPITALISATION = "AESHOSP"
    DISABILITY = "AESDISAB"
    CONGENITAL_ANOMALY = "AESCONG"
    MEDICALLY_IMPORTANT = "AESMIE"


def seriousness_criteria(ae: AdverseEvent) -> tuple[SeriousnessCriterion, ...]:
    """The ICH E2A criteria that hold for this event, in E2A's order."""
    flags = (
        (SeriousnessCriterion.DEATH, ae.serious_death),
        (SeriousnessCriterion.LIFE_THREATENING, ae.serious_life_threatening),
        (SeriousnessCriterion.HOSPITALISATION, ae.serious_hospitalisation),
        (SeriousnessCriterion.DISABILITY, ae.serious_disability),
        (SeriousnessCriterion.CONGENITAL_ANOMALY, ae.serious_congenital),
        (SeriousnessCriterion.MEDICALLY_IMPORTANT, ae.serious_medically_important),
    )
    return tuple(c for c, on in flags if on)


def is_serious(ae: AdverseEvent) -> bool:
    """AESER derived from the six ICH E2A criteria: serious when at least one holds (not from the grade)."""
    return bool(seriousness_criteria(ae))


# --- attribution (NCI/CTEP five levels, per component)


class Component(StrEnum):
    """The study treatments an event is attributed to separately (ae-qol.md A3/A4)."""

    CFRT = "CFRT"
    LDRT = "LDRT"
    IO = "IO"


RELATED_LEVELS = frozenset({Attribution.POSSIBLE, Attribution.PROBABLE, Attribution.DEFINITE})


def attribution(ae: AdverseEvent, component: Component) -> Attribution | None:
    """The investigator's attribution of ``ae`` to one component (None when not recorded)."""
    return {
        Component.CFRT: ae.attribution_cfrt,
        Component.LDRT: ae.attribution_ldrt,
        Component.IO: ae.attribution_io,
    }[component]


@dataclass(frozen=True, slots=True)
class Relatedness:
    """Whether an event counts as treatment-related to each component, and which attributions were missing."""

    cfrt: bool
    ldrt: bool
    io: bool
    missing: tuple[Component, ...] = ()

    @property
    def any(self) -> bool:
        """Related to at least one study treatment (ae-qol.md A4)."""
        return self.cfrt or self.ldrt or self.io

    def to(self, component: Component) -> bool:
        return {Component.CFRT: self.cfrt, Component.LDRT: self.ldrt, Component.IO: self.io}[component]


def relatedness(ae: AdverseEvent, missing_attribution: Literal["related", "unrelated"] = "related") -> Relatedness:
    """TRAE = possible, probable or definite (NCI/CTEP); a missing attribution follows the protocol option, flagged."""
    flags: dict[Component, bool] = {}
    missing: list[Component] = []
    for component in Component:
        level = attribution(ae, component)
        if level is None:
            missing.append(component)
            flags[component] = missing_attribution == "related"
        else:
            flags[component] = level in RELATED_LEVELS
    return Relatedness(flags[Component.CFRT], flags[Component.LDRT], flags[Component.IO], tuple(missing))


# --- record checks


def check_adverse_event(ae: AdverseEvent, dictionary: CtcaeDictionary) -> list[ValidationError]:
    """Every inconsistency of one AE record (term, code, grade, dates, death, verbatim, reporting times)."""
    problems: list[ValidationError] = []
    term = dictionary.find(ae.term)
    if term is None:
        hints = [h.term.term for h in dictionary.search(ae.term, limit=3)]
        hint = f"; did you mean {', '.join(repr(h) for h in hints)}?" if hints else ""
        problems.append(ValidationError("term", f"{ae.term!r} is not a CTCAE v5.0 term{hint}"))
    else:
        if ae.meddra_code != term.meddra_code:
            problems.append(
                ValidationError(
                    "meddra_code",
                    f"{ae.meddra_code} is not the MedDRA code of {term.term} (CTCAE v5.0 gives {term.meddra_code})",
                )
            )
        for name, value in (("grade", ae.grade), ("baseline_grade", ae.baseline_grade)):
            if value is not None:
                try:
                    check_grade(term, value, name)
                except ValidationError as exc:
                    problems.append(exc)
        if term.is_other_specify and not (ae.verbatim or "").strip():
            problems.append(ValidationError("verbatim", f"{term.term} needs the investigator's verbatim term"))
    if ae.resolution_date is not None and ae.resolution_date < ae.onset_date:
        problems.append(
            ValidationError(
                "resolution_date",
                f"resolution {ae.resolution_date.isoformat()} is before onset {ae.onset_date.isoformat()}",
            )
        )
    if ae.grade == 5 and ae.outcome is not AeOutcome.FATAL:
        problems.append(ValidationError("outcome", "a grade 5 event (death) must have the outcome 'fatal'"))
    if ae.outcome is AeOutcome.FATAL and ae.grade is not None and ae.grade != 5:
        problems.append(ValidationError("grade", f"a fatal event is grade 5 in CTCAE v5.0, not grade {ae.grade}"))
    if ae.grade == 5 and not ae.serious_death:
        problems.append(
            ValidationError("serious_death", "a grade 5 event results in death, an ICH E2A seriousness criterion")
        )
    if ae.awareness_at is not None and ae.reported_at is not None and ae.reported_at < ae.awareness_at:
        problems.append(ValidationError("reported_at", "the report is dated before the site became aware"))
    return problems


def validate_adverse_event(ae: AdverseEvent, dictionary: CtcaeDictionary) -> None:
    """Raise the first problem :func:`check_adverse_event` finds (for forms that stop at one error)."""
    problems = check_adverse_event(ae, dictionary)
    if problems:
        raise problems[0]


def data_queries(ae: AdverseEvent, missing_attribution: Literal["related", "unrelated"] = "related") -> list[str]:
    """Queries to raise on a valid record: missing grade or attribution, SAE without awareness time (A4)."""
    queries: list[str] = []
    if ae.grade is None:
        queries.append(f"{ae.subject_id} AE {ae.ae_id}: grade is missing (counted in 'any grade' only)")
    missing = relatedness(ae, missing_attribution).missing
    if missing:
        parts = ", ".join(c.value for c in missing)
        queries.append(
            f"{ae.subject_id} AE {ae.ae_id}: attribution to {parts} is missing (analysed as {missing_attribution})"
        )
    if is_serious(ae) and ae.awareness_at is None:
        queries.append(f"{ae.subject_id} AE {ae.ae_id}: serious event without the time the site became aware of it")
    return queries


# --- treatment emergence


@dataclass(frozen=True, slots=True)
class Exposure:
    """A patient's study-treatment exposure: the TEAE anchor and the last study dose (None = still on treatment)."""

    anchor: dt.date
    last_dose: dt.date | None = None


def exposure_for(
    anchor: Literal["first_rt_fraction", "enrolment", "first_study_treatment"],
    fractions: Iterable[Fraction],
    io_cycles: Iterable[ImmunotherapyCycle] = (),
    enrolment_date: dt.date | None = None,
    on_treatment: bool = False,
) -> Exposure | None:
    """Anchor and last dose from the doses given; None when no RT fraction was given (not in the safety set).

    The anchor follows the protocol's ``teae_anchor`` (default: first study RT fraction, ae-qol.md A4); the last
    dose is the last RT fraction or immunotherapy cycle given on or after the anchor.
    """
    fractions, io_cycles = list(fractions), list(io_cycles)
    if not in_safety_population(fractions):
        return None
    start: dt.date | None
    if anchor == "first_rt_fraction":
        start = first_rt_fraction(fractions)
    elif anchor == "enrolment":
        if enrolment_date is None:
            raise ValidationError("enrolment_date", "the TEAE anchor is enrolment but no enrolment date is recorded")
        start = enrolment_date
    else:
        start = first_study_treatment(fractions, io_cycles, enrolment_date)
    assert start is not None  # an RT fraction was given
    given = [*(f.date for f in delivered_fractions(fractions)), *(c.date for c in io_cycles if c.given)]
    doses = [d for d in given if d >= start]
    return Exposure(start, None if on_treatment else max(doses, default=start))


def in_safety_population(fractions: Iterable[Fraction]) -> bool:
    """The safety population is every patient given at least one study RT fraction (ae-qol.md A4)."""
    return first_rt_fraction(fractions) is not None


@dataclass(frozen=True, slots=True)
class TeaeDecision:
    """Whether an event is treatment-emergent, and the rule that decided it."""

    emergent: bool
    reason: str


def treatment_emergence(ae: AdverseEvent, exposure: Exposure | None, options: SafetyOptions) -> TeaeDecision:
    """TEAE: onset from the anchor to the window after the last dose, or a pre-existing condition that worsens.

    ae-qol.md A4: the window is ``teae_window_days`` (``teae_window_days_sae_irae`` for serious or immune-related
    events); an event with a ``baseline_grade`` is pre-existing and is TE only if its grade is above it.
    """
    if exposure is None:
        return TeaeDecision(False, "no study radiotherapy was given (not in the safety population)")
    if ae.baseline_grade is not None:
        if ae.grade is None:
            return TeaeDecision(True, "pre-existing condition with a missing grade: counted as TE and queried")
        if ae.grade > ae.baseline_grade:
            if exposure.last_dose is None or ae.onset_date <= exposure.last_dose + dt.timedelta(
                days=_window(ae, options)
            ):
                return TeaeDecision(
                    True, f"pre-existing condition worsened from grade {ae.baseline_grade} to grade {ae.grade}"
                )
            return TeaeDecision(False, "pre-existing condition worsened after the treatment-emergence window")
        return TeaeDecision(False, f"pre-existing condition not worse than its baseline grade {ae.baseline_grade}")
    if ae.onset_date < exposure.anchor:
        return TeaeDecision(False, f"onset before the anchor ({exposure.anchor.isoformat()})")
    if exposure.last_dose is not None:
        window = _window(ae, options)
        end = exposure.last_dose + dt.timedelta(days=window)
        if ae.onset_date > end:
            return TeaeDecision(False, f"onset more than {window} days after the last dose")
    return TeaeDecision(True, "onset on or after the anchor and within the window after the last dose")


def is_treatment_emergent(ae: AdverseEvent, exposure: Exposure | None, options: SafetyOptions) -> bool:
    """TRTEMFL: see :func:`treatment_emergence`."""
    return treatment_emergence(ae, exposure, options).emergent


def _window(ae: AdverseEvent, options: SafetyOptions) -> int:
    return options.teae_window_days_sae_irae if (is_serious(ae) or ae.immune_related) else options.teae_window_days


def impute_onset(
    year: int, month: int | None, day: int | None, anchor: dt.date, resolution: dt.date | None = None
) -> dt.date:
    """Impute a partial onset date so the AE counts as TE unless its known parts prove otherwise (ae-qol.md A4).

    If the known period (year, or year and month) contains the anchor and the resolution is not before the
    anchor, the anchor date is used; otherwise the first day of the period.
    """
    if month is None and day is not None:
        raise ValidationError("onset_date", "a day without a month cannot be imputed")
    if month is not None and day is not None:
        return dt.date(year, month, day)
    if month is None:
        first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    else:
        first = dt.date(year, month, 1)
        last = dt.date(year, month, calendar.monthrange(year, month)[1])
    if first <= anchor <= last and (resolution is None or resolution >= anchor):
        return anchor
    return first


# --- expedited reporting


@dataclass(frozen=True, slots=True)
class SaeReportStatus:
    """The expedited-report clock of a serious event: due time, whether it is overdue now or was late."""

    required: bool
    due_at: dt.datetime | None
    reported_at: dt.datetime | None
    overdue: bool
    late: bool
    reason: str


def sae_report_status(ae: AdverseEvent, report_hours: int, now: dt.datetime) -> SaeReportStatus:
    """Serious events are reported within ``report_hours`` of awareness (China GCP 2020, usually 24 h; A4)."""
    if not is_serious(ae):
        return SaeReportStatus(False, None, ae.reported_at, False, False, "not serious")
    if ae.awareness_at is None:
        return SaeReportStatus(True, None, ae.reported_at, False, False, "awareness time missing: query")
    due = ae.awareness_at + dt.timedelta(hours=report_hours)
    if ae.reported_at is not None:
        late = ae.reported_at > due
        reason = f"reported {'after' if late else 'within'} {report_hours} h of awareness"
        return SaeReportStatus(True, due, ae.reported_at, False, late, reason)
    overdue = now > due
    reason = f"not reported; {'overdue since' if overdue else 'due by'} {due.isoformat(timespec='minutes')}"
    return SaeReportStatus(True, due, None, overdue, False, reason)
