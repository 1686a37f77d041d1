"""The plain data of the report's figures (pure): waterfall, spider, swimmer, AE heat map, QoL over time.

:mod:`abscopal.reports.plots` draws these records; nothing here draws. Times are weeks from the reference
date (the first study treatment, :func:`abscopal.protocol.radiotherapy.first_study_treatment`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from abscopal import domain as d
from abscopal.analysis.cutoff import TrialData
from abscopal.analysis.endpoints import last_known, visit_week
from abscopal.analysis.populations import by_subject
from abscopal.protocol.radiotherapy import delivered_fractions
from abscopal.qol import SCALES, ScaleScore
from abscopal.response.engine import SubjectResponse
from abscopal.safety.summaries import worst_grades
from abscopal.stats.means import mean_ci

DAYS_PER_WEEK = 7.0
SWIMMER_MAX_LANES = 50
HEATMAP_MAX_TERMS = 25
QOL_PLOT_SCALES = ("QL2", "PF2", "FA", "DY")
QOL_MIN_PATIENTS = 5  # visits with fewer scored patients are not summarised (means of 1-4 patients mislead)


@dataclass(frozen=True)
class WaterfallBar:
    """One patient: best % change of the target sum of diameters from baseline, and the BOR code."""

    subject_id: str
    best_pct: float
    response: str


@dataclass(frozen=True)
class SpiderSeries:
    """One patient's % change of the target sum from baseline at each assessment (weeks from reference)."""

    subject_id: str
    weeks: Sequence[float]
    pct: Sequence[float]
    response: str


@dataclass(frozen=True)
class SwimmerLane:
    """One patient's course in weeks from the first study treatment (all times relative to that date)."""

    subject_id: str
    end: float
    rt: tuple[float, float] | None = None
    io: Sequence[float] = ()
    responses: Sequence[tuple[float, str]] = ()
    progression: float | None = None
    death: float | None = None
    ongoing: bool = False
    best_response: str = "NE"


@dataclass(frozen=True)
class QolSeries:
    """Mean score of one scale by visit (weeks), with the CI limits and the number of patients per visit."""

    scale: str
    label: str
    weeks: Sequence[float]
    mean: Sequence[float]
    lower: Sequence[float]
    upper: Sequence[float]
    n: Sequence[int] = field(default_factory=tuple)


def _weeks(date: dt.date, reference: dt.date) -> float:
    return (date - reference).days / DAYS_PER_WEEK


def _up_to_progression(r: SubjectResponse) -> list[tuple[dt.date, float]]:
    """(date, % change from baseline) of the measured post-baseline assessments up to the first PD/iCPD."""
    points = []
    for tp in r.timepoints[1:]:
        if tp.pct_from_baseline is not None:
            points.append((tp.assessment_date, tp.pct_from_baseline))
        if tp.overall is not None and str(tp.overall) in ("PD", "iCPD"):
            break
    return points


def waterfall_bars(responses: Mapping[str, SubjectResponse]) -> tuple[WaterfallBar, ...]:
    """Best (smallest) % change of the target sum from baseline up to progression, per patient with one."""
    bars = []
    for sid, r in sorted(responses.items()):
        points = _up_to_progression(r)
        if points:
            bars.append(WaterfallBar(sid, min(p for _, p in points), str(r.bor_confirmed)))
    return tuple(bars)


def spider_series(responses: Mapping[str, SubjectResponse]) -> tuple[SpiderSeries, ...]:
    """% change of the target sum from baseline at each measured assessment, in weeks from the reference date."""
    out = []
    for sid, r in sorted(responses.items()):
        points = [
            (tp.assessment_date, tp.pct_from_baseline) for tp in r.timepoints[1:] if tp.pct_from_baseline is not None
        ]
        if points:
            out.append(
                SpiderSeries(
                    sid,
                    [_weeks(date, r.reference_date) for date, _ in points],
                    [p for _, p in points],
                    str(r.bor_confirmed),
                )
            )
    return tuple(out)


_CLOSED = (d.PatientStatus.LOST_TO_FOLLOW_UP, d.PatientStatus.COMPLETED, d.PatientStatus.WITHDRAWN)


def swimmer_lanes(
    data: TrialData, responses: Mapping[str, SubjectResponse], max_lanes: int = SWIMMER_MAX_LANES
) -> tuple[tuple[SwimmerLane, ...], str]:
    """One lane per efficacy patient (responders first, then the longest follow-up, at most ``max_lanes``): the
    RT period from the first to the last delivered fraction, a tick per immunotherapy cycle given."""
    patients = {p.subject_id: p for p in data.patients}
    last = last_known(data)
    rt: dict[str, list[dt.date]] = defaultdict(list)
    for sid, fractions in by_subject(data.fractions).items():
        rt[sid] = [f.date for f in delivered_fractions(fractions)]
    io: dict[str, list[dt.date]] = defaultdict(list)
    for c in data.cycles:
        if c.given:
            io[c.subject_id].append(c.date)
    lanes = []
    for sid, r in responses.items():
        ref = r.reference_date
        p = patients.get(sid)
        end_date = max(last.get(sid, ref), ref)
        progression = r.pfs.date if r.pfs.event and "progression" in r.pfs.reason else None
        death = p.death_date if p else None
        ongoing = p is not None and death is None and p.status not in _CLOSED
        lanes.append(
            SwimmerLane(
                subject_id=sid,
                end=max(_weeks(end_date, ref), 0.5),
                rt=(_weeks(min(rt[sid]), ref), _weeks(max(rt[sid]), ref) + 1 / 7) if rt.get(sid) else None,
                io=tuple(_weeks(x, ref) for x in sorted(io.get(sid, []))),
                responses=tuple(
                    (_weeks(tp.assessment_date, ref), str(tp.overall)) for tp in r.timepoints[1:] if tp.overall
                ),
                progression=_weeks(progression, ref) if progression else None,
                death=_weeks(death, ref) if death else None,
                ongoing=ongoing,
                best_response=str(r.bor_confirmed),
            )
        )
    if len(lanes) <= max_lanes:
        return tuple(lanes), f"All {len(lanes)} patients of the efficacy population."
    responders = {sid for sid, r in responses.items() if r.objective_response}
    ranked = sorted(lanes, key=lambda lane: (lane.subject_id not in responders, -lane.end, lane.subject_id))
    chosen = ranked[:max_lanes]
    return tuple(chosen), (
        f"{max_lanes} of {len(lanes)} patients: the {min(len(responders), max_lanes)} responders "
        "first, then the longest follow-up."
    )


def heatmap_matrix(
    events: Sequence[d.AdverseEvent], max_terms: int = HEATMAP_MAX_TERMS
) -> tuple[tuple[str, ...], tuple[tuple[int, ...], ...]]:
    """Patients per term at their worst grade 1-5 (the safety engine's worst grade per patient and term), the
    ``max_terms`` most frequent terms, most frequent first; ungraded terms are not drawn."""
    per_term: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for (_, term), grade in worst_grades(events).items():
        if grade is not None and 1 <= grade <= 5:
            per_term[term][grade - 1] += 1
    ranked = sorted(per_term.items(), key=lambda kv: (-sum(kv[1]), kv[0]))[:max_terms]
    return tuple(t for t, _ in ranked), tuple(tuple(c) for _, c in ranked)


def qol_series(
    scores: Iterable[ScaleScore], scales: Sequence[str] = QOL_PLOT_SCALES, min_patients: int = QOL_MIN_PATIENTS
) -> tuple[QolSeries, ...]:
    """Mean score by visit week with the 95% t interval (stats) of each scale, from the QoL engine's scores;
    visits with fewer than ``min_patients`` scored patients are left out."""
    by_scale_visit: dict[tuple[str, float], list[float]] = defaultdict(list)
    for s in scores:
        week = visit_week(s.visit)
        if s.score is not None and week is not None and s.scale in scales:
            by_scale_visit[(s.scale, week)].append(s.score)
    names = {sc.code: sc.name for sc in SCALES}
    series = []
    for code in scales:
        weeks = sorted(w for (c, w) in by_scale_visit if c == code and len(by_scale_visit[(c, w)]) >= min_patients)
        stats = [mean_ci(by_scale_visit[(code, w)]) for w in weeks]
        series.append(
            QolSeries(
                scale=code,
                label=f"{code} {names.get(code, code)}",
                weeks=weeks,
                mean=[m for m, _, _ in stats],
                lower=[lo for _, lo, _ in stats],
                upper=[hi for _, _, hi in stats],
                n=[len(by_scale_visit[(code, w)]) for w in weeks],
            )
        )
    return tuple(series)
