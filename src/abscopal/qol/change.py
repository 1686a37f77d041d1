"""Change from baseline, deterioration and time to deterioration (TTD) of EORTC scores.

Threshold 10 points, inclusive (Osoba et al., J Clin Oncol 1998); direction by scale type. TTD follows the
options SISAQOL asks every definition to state (Coens et al., Lancet Oncol 2020): reference, threshold,
confirmation, death, missing baseline, no follow-up, time origin and unit (ae-qol.md D1-D2; QoLR defaults).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from abscopal.errors import ValidationError
from abscopal.protocol.model import QolOptions
from abscopal.qol.eortc import ScaleKind, scale_kind

#: Scores are floats (e.g. 100/3 per step of a single item): a change within this of the threshold is equal to it.
TOLERANCE = 1e-9

#: Days per unit of time; a month is 365.25 / 12 = 30.4375 days (QoLR).
UNIT_DAYS: dict[str, float] = {"days": 1.0, "weeks": 7.0, "months": 30.4375}

Reference = Literal["baseline", "best_previous", "previous"]
Confirmation = Literal["none", "next", "definitive"]
DeathRule = Literal["ignore", "event", "event_within"]
MissingBaseline = Literal["censor_day0", "exclude", "event"]
NoFollowUp = Literal["censor_day1", "event"]
Origin = Literal["enrolment", "first_rt_fraction"]
Unit = Literal["days", "weeks", "months"]


def change_from_baseline(score: float | None, baseline: float | None) -> float | None:
    """Score minus baseline score; None when either is missing."""
    if score is None or baseline is None:
        return None
    return score - baseline


def worsening(kind: ScaleKind, reference: float, score: float) -> float:
    """Points of worsening from ``reference`` (positive = worse): a fall for functional/global, a rise for symptoms."""
    return score - reference if kind is ScaleKind.SYMPTOM else reference - score


def is_deterioration(kind: ScaleKind, reference: float, score: float, threshold: float = 10.0) -> bool:
    """Deteriorated when the score worsened by at least ``threshold`` points (inclusive)."""
    return worsening(kind, reference, score) >= threshold - TOLERANCE


def classify_change(
    kind: ScaleKind, baseline: float, score: float, threshold: float = 10.0
) -> Literal["improved", "stable", "worsened"]:
    """Responder category (Osoba 2005): improved >= threshold, worsened >= threshold, otherwise stable."""
    w = worsening(kind, baseline, score)
    if w >= threshold - TOLERANCE:
        return "worsened"
    if -w >= threshold - TOLERANCE:
        return "improved"
    return "stable"


# --- time to deterioration


@dataclass(frozen=True, slots=True)
class QolAssessment:
    """Scale scores at one date; ``is_baseline`` marks the baseline form when the visit says so."""

    date: dt.date
    scores: Mapping[str, float | None]
    is_baseline: bool = False


@dataclass(frozen=True, slots=True)
class PatientAssessments:
    """One patient's scored assessments and the dates TTD needs (origins, death)."""

    subject_id: str
    assessments: Sequence[QolAssessment]
    enrolment_date: dt.date
    first_rt_date: dt.date | None = None
    death_date: dt.date | None = None


@dataclass(frozen=True, slots=True)
class TtdSpec:
    """A complete TTD definition (SISAQOL); ``scales`` with more than one code is a composite (first in any)."""

    scales: tuple[str, ...]
    threshold: float = 10.0
    reference: Reference = "baseline"
    confirmation: Confirmation = "none"
    death: DeathRule = "ignore"
    death_window_days: int = 90
    missing_baseline: MissingBaseline = "censor_day0"
    no_follow_up: NoFollowUp = "censor_day1"
    origin: Origin = "enrolment"
    unit: Unit = "months"

    def __post_init__(self) -> None:
        if not self.scales:
            raise ValidationError("scales", "a time-to-deterioration definition needs at least one scale")
        for code in self.scales:
            scale_kind(code)
        if self.threshold <= 0:
            raise ValidationError("threshold", f"{self.threshold} must be greater than 0")

    @classmethod
    def from_options(cls, scales: Sequence[str], options: QolOptions) -> TtdSpec:
        """The protocol's ``[qol]`` definition applied to ``scales``."""
        return cls(
            scales=tuple(scales),
            threshold=options.deterioration_threshold,
            reference=options.reference,
            confirmation=options.confirmation,
            death=options.death,
            death_window_days=options.death_window_days,
            missing_baseline=options.missing_baseline,
            no_follow_up=options.no_follow_up,
            origin=options.time_origin,
            unit=options.time_unit,
        )

    def describe(self) -> str:
        """The definition as the sentence a trial report prints (SISAQOL)."""
        confirm = {
            "none": "unconfirmed",
            "next": "confirmed at the next assessment",
            "definitive": "definitive (all later assessments also deteriorated)",
        }[self.confirmation]
        death = {
            "ignore": "death is not an event",
            "event": "death is an event",
            "event_within": f"death within {self.death_window_days} days of the last assessment is an event",
        }[self.death]
        return (
            f"Time to deterioration of {' / '.join(self.scales)}: worsening of at least {self.threshold:g} points "
            f"versus the {self.reference.replace('_', ' ')} score, {confirm}; {death}; missing baseline: "
            f"{self.missing_baseline.replace('_', ' ')}; no follow-up: {self.no_follow_up.replace('_', ' ')}; "
            f"time from {self.origin.replace('_', ' ')} in {self.unit}."
        )


@dataclass(frozen=True, slots=True)
class TtdResult:
    """Time (in the spec's unit) to deterioration or censoring; ``excluded`` when the spec drops the patient."""

    subject_id: str
    time: float | None
    event: bool
    date: dt.date | None
    scale: str | None
    reason: str
    excluded: bool = False


@dataclass(frozen=True, slots=True)
class _Series:
    code: str
    kind: ScaleKind
    baseline: float
    points: list[tuple[dt.date, float]] = field(default_factory=list)


def _reference(series: _Series, j: int, reference: Reference) -> float:
    if reference == "baseline":
        return series.baseline
    earlier = [series.baseline, *(v for _, v in series.points[:j])]
    if reference == "previous":
        return earlier[-1]
    return min(earlier) if series.kind is ScaleKind.SYMPTOM else max(earlier)


def _event_date(series: _Series, spec: TtdSpec) -> dt.date | None:
    for j, (date, value) in enumerate(series.points):
        ref = _reference(series, j, spec.reference)
        if not is_deterioration(series.kind, ref, value, spec.threshold):
            continue
        later = [v for _, v in series.points[j + 1 :]]
        if spec.confirmation == "none":
            return date
        if spec.confirmation == "next":
            if later and is_deterioration(series.kind, ref, later[0], spec.threshold):
                return date
            continue
        if all(is_deterioration(series.kind, ref, v, spec.threshold) for v in later):
            return date
    return None


def time_to_deterioration(assessments: PatientAssessments, spec: TtdSpec) -> TtdResult:
    """Time from the origin to the first qualifying deterioration in any of ``spec.scales``, or censoring.

    Baseline: the assessment marked ``is_baseline``, else the last one on or before the origin. Censoring at
    the last assessment with a score. Unconfirmed deterioration at the last assessment is not an event with
    ``confirmation="next"``; with "definitive" it is (no later assessment contradicts it; Bonnetain 2010).
    """
    p = assessments
    origin = p.enrolment_date if spec.origin == "enrolment" else p.first_rt_date
    if origin is None:
        raise ValidationError("first_rt_date", f"{p.subject_id}: the TTD origin is the first RT fraction, not given")
    per_day = UNIT_DAYS[spec.unit]

    def result(
        date: dt.date | None, event: bool, reason: str, scale: str | None = None, days: int | None = None
    ) -> TtdResult:
        elapsed = days if days is not None else ((date - origin).days if date is not None else None)
        return TtdResult(p.subject_id, None if elapsed is None else elapsed / per_day, event, date, scale, reason)

    ordered = sorted(p.assessments, key=lambda a: a.date)
    marked = [a for a in ordered if a.is_baseline]
    if len(marked) > 1:
        raise ValidationError("is_baseline", f"{p.subject_id}: {len(marked)} assessments are marked as baseline")
    baseline = marked[0] if marked else next((a for a in reversed(ordered) if a.date <= origin), None)
    series = []
    if baseline is not None:
        for code in spec.scales:
            value = baseline.scores.get(code)
            if value is not None:
                s = _Series(code, scale_kind(code), value)
                s.points.extend(
                    (a.date, v) for a in ordered if a.date > baseline.date and (v := a.scores.get(code)) is not None
                )
                series.append(s)
    if not series:
        if spec.missing_baseline == "exclude":
            return TtdResult(p.subject_id, None, False, None, None, "no baseline score: excluded", excluded=True)
        if spec.missing_baseline == "event":
            return result(origin, True, "no baseline score: event at day 0", days=0)
        return result(origin, False, "no baseline score: censored at day 0", days=0)
    events = [(d, s.code) for s in series if (d := _event_date(s, spec)) is not None]
    if events:
        date, code = min(events, key=lambda e: (e[0], spec.scales.index(e[1])))
        return result(date, True, f"{code} deteriorated by at least {spec.threshold:g} points", code)
    follow_up = [d for s in series for d, _ in s.points]
    assert baseline is not None  # series are built from the baseline
    last = max(follow_up) if follow_up else baseline.date
    if (
        p.death_date is not None
        and spec.death != "ignore"
        and (spec.death == "event" or (p.death_date - last).days <= spec.death_window_days)
    ):
        return result(p.death_date, True, "death counted as deterioration")
    if not follow_up:
        if spec.no_follow_up == "event":
            return result(None, True, "no follow-up assessment: event at day 1", days=1)
        return result(None, False, "no follow-up assessment: censored at day 1", days=1)
    return result(last, False, "censored at the last assessment")
