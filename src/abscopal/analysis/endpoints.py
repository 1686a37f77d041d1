"""The trial's endpoints at the cut-off, each through its engine (pure): response (ORR, DCR, BOR, response rate by
RT role), time to event (PFS, OS, follow-up, DOR) and time to QoL deterioration.

Reference date = the first study treatment (:func:`abscopal.protocol.radiotherapy.first_study_treatment`);
responses from :mod:`abscopal.response`, rates and curves from :mod:`abscopal.stats`, QoL scores and TTD from
:mod:`abscopal.qol` (docs/report.md).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from abscopal import domain as d
from abscopal.analysis.cutoff import TrialData
from abscopal.analysis.populations import by_subject
from abscopal.protocol.radiotherapy import first_rt_fraction, first_study_treatment
from abscopal.qol import PatientAssessments, QolAssessment, ScaleScore, TtdSpec, time_to_deterioration
from abscopal.response.codes import Criteria
from abscopal.response.engine import SubjectFacts, SubjectResponse, cohort_role_rates
from abscopal.stats import KMResult, ProportionCI, SurvivalAt, kaplan_meier, median_follow_up, proportion_ci

DAYS_PER_MONTH = 30.4375  # 365.25 / 12, the usual conversion of survival times to months
LANDMARK_MONTHS = (6, 12)


@dataclass(frozen=True)
class ResponseSummary:
    """ORR, DCR and the best-overall-response table under one criteria, over the efficacy population."""

    criteria: Criteria
    n: int
    orr: ProportionCI | None
    dcr: ProportionCI | None
    bor_counts: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class SurvivalSummary:
    """A Kaplan-Meier estimate in days and what the report prints of it."""

    name: str
    km: KMResult | None
    landmarks: tuple[tuple[int, SurvivalAt], ...] = ()
    note: str = ""


@dataclass(frozen=True)
class RoleRateCI:
    """The response rate of one RT role (:func:`abscopal.response.cohort_role_rates`) with its 95% CI."""

    role: d.RtRole
    ci: ProportionCI | None


# --- response


def subject_facts(data: TrialData, subjects: Iterable[str]) -> dict[str, SubjectFacts]:
    """Reference date = first study treatment (response-rules.md §4 and §6), death date and new anticancer
    therapy date from the patient record."""
    fractions, cycles = by_subject(data.fractions), by_subject(data.cycles)
    patients = {p.subject_id: p for p in data.patients}
    facts = {}
    for s in subjects:
        p = patients.get(s)
        facts[s] = SubjectFacts(
            subject_id=s,
            reference_date=first_study_treatment(fractions[s], cycles[s], p.enrolment_date if p else None),
            death_date=p.death_date if p else None,
            new_therapy_date=p.new_therapy_date if p else None,
        )
    return facts


#: Best-response ranks of the two criteria side by side (Seymour 2017 table 2; iUPD has no RECIST 1.1 rank).
BOR_RANKS: tuple[tuple[str, str | None], ...] = (
    ("iCR", "CR"),
    ("iPR", "PR"),
    ("iSD", "SD"),
    ("iNN", "NonCR/NonPD"),
    ("iUPD", None),
    ("iCPD", "PD"),
    ("NE", "NE"),
)

BOR_ORDER = {
    Criteria.IRECIST: ("iCR", "iPR", "iSD", "iNN", "iUPD", "iCPD", "NE"),
    Criteria.RECIST11: ("CR", "PR", "SD", "NonCR/NonPD", "PD", "NE"),
}


def response_summary(responses: Mapping[str, SubjectResponse], n: int, criteria: Criteria) -> ResponseSummary:
    """ORR (BOR CR or PR, confirmed when the protocol says so) and DCR with Clopper-Pearson 95% CIs over ``n``
    patients; a patient of the population without a derived response counts as not responding (NE)."""
    responders = sum(1 for r in responses.values() if r.objective_response)
    controlled = sum(1 for r in responses.values() if r.disease_control)
    counts = Counter(str(r.bor_confirmed) for r in responses.values())
    missing = n - len(responses)
    if missing > 0:
        counts["NE"] += missing
    order = BOR_ORDER[criteria]
    table = tuple((code, counts.get(code, 0)) for code in order)
    return ResponseSummary(
        criteria=criteria,
        n=n,
        orr=proportion_ci(responders, n) if n else None,
        dcr=proportion_ci(controlled, n) if n else None,
        bor_counts=table,
    )


def role_rates(responses: Mapping[str, SubjectResponse]) -> tuple[RoleRateCI, ...]:
    """Per RT role, the response engine's rate (best role response CR or PR among patients with a target of the
    role, response-rules.md §8) with a Clopper-Pearson CI; observation = the abscopal response rate."""
    return tuple(
        RoleRateCI(x.role, proportion_ci(x.responders, x.subjects) if x.subjects else None)
        for x in cohort_role_rates(responses.values())
    )


# --- time to event


def _landmarks(km: KMResult) -> tuple[tuple[int, SurvivalAt], ...]:
    at = km.survival_at([m * DAYS_PER_MONTH for m in LANDMARK_MONTHS])
    return tuple(zip(LANDMARK_MONTHS, at, strict=True))


def pfs_summary(responses: Mapping[str, SubjectResponse]) -> SurvivalSummary:
    """PFS (days, end - start + 1) from the response engine's event/censoring rows, Kaplan-Meier with the
    log-log CI and Brookmeyer-Crowley median CI of the stats engine."""
    if not responses:
        return SurvivalSummary("Progression-free survival", None, note="No patient in the efficacy population.")
    days = [r.pfs.days for r in responses.values()]
    events = [int(r.pfs.event) for r in responses.values()]
    km = kaplan_meier(days, events)
    return SurvivalSummary("Progression-free survival", km, _landmarks(km))


def last_known(data: TrialData) -> dict[str, dt.date]:
    """Per subject, the last date the patient is known about: contact, death, a dose, an assessment."""
    last: dict[str, dt.date] = {}

    def see(sid: str, date: dt.date | None) -> None:
        if date is not None and (sid not in last or date > last[sid]):
            last[sid] = date

    for p in data.patients:
        see(p.subject_id, p.last_contact_date)
        see(p.subject_id, p.death_date)
    for f in data.fractions:
        see(f.subject_id, f.date)
    for c in data.cycles:
        see(c.subject_id, c.date)
    for a in data.assessments:
        see(a.subject_id, a.assessment_date)
    return last


def os_data(data: TrialData, subjects: Sequence[str]) -> tuple[list[int], list[int]]:
    """Overall survival from the first study treatment: death (event) or the last known alive date (censored),
    in days end - start + 1."""
    facts = subject_facts(data, subjects)
    last = last_known(data)
    patients = {p.subject_id: p for p in data.patients}
    days, events = [], []
    for s in subjects:
        ref = facts[s].reference_date
        if ref is None:
            continue
        p = patients.get(s)
        if p is not None and p.death_date is not None:
            days.append((p.death_date - ref).days + 1)
            events.append(1)
        else:
            days.append((max(last.get(s, ref), ref) - ref).days + 1)
            events.append(0)
    return days, events


def os_summary(data: TrialData, subjects: Sequence[str]) -> tuple[SurvivalSummary, SurvivalSummary]:
    """OS (when deaths are recorded) and the median follow-up by the reverse Kaplan-Meier (Schemper & Smith)."""
    days, events = os_data(data, subjects)
    if not days:
        empty = "No treated patient."
        return SurvivalSummary("Overall survival", None, note=empty), SurvivalSummary("Follow-up", None, note=empty)
    follow = SurvivalSummary("Follow-up (reverse Kaplan-Meier)", median_follow_up(days, events))
    if not any(events):
        return SurvivalSummary("Overall survival", None, note="No death recorded by the data cut-off."), follow
    km = kaplan_meier(days, events)
    return SurvivalSummary("Overall survival", km, _landmarks(km)), follow


def dor_summary(responses: Mapping[str, SubjectResponse]) -> SurvivalSummary:
    """Duration of response among responders (from the first assessment of the confirmed response, censored
    as PFS), Kaplan-Meier."""
    rows = [r.dor for r in responses.values() if r.objective_response and r.dor is not None]
    if not rows:
        return SurvivalSummary("Duration of response", None, note="No responder.")
    km = kaplan_meier([x.days for x in rows], [int(x.event) for x in rows])
    return SurvivalSummary("Duration of response", km)


# --- quality of life


_VISIT = re.compile(r"^(?:week|w)_?(\d+)$", re.IGNORECASE)


def visit_week(visit: str) -> float | None:
    """Weeks of a visit name: 'baseline' -> 0, 'week_6' -> 6; None for a name without a week."""
    v = visit.strip().lower()
    if v in ("baseline", "screening", "week_0"):
        return 0.0
    m = _VISIT.match(v)
    return float(m.group(1)) if m else None


def ttd_summary(
    data: TrialData, subjects: Sequence[str], scores: Iterable[ScaleScore], spec: TtdSpec
) -> SurvivalSummary:
    """Time to deterioration (protocol [qol] definition, SISAQOL) by the QoL engine per enrolled patient, as a
    Kaplan-Meier estimate; a form is dated by its earliest completion date, baseline = the week-0 visit."""
    chosen = set(subjects)
    form_scores: dict[tuple[str, str], dict[str, float | None]] = defaultdict(dict)
    for s in scores:
        form_scores[(s.subject_id, s.visit)][s.scale] = s.score
    completed: dict[tuple[str, str], dt.date] = {}
    for a in data.answers:
        if a.subject_id in chosen and a.completed_on is not None:
            key = (a.subject_id, a.visit)
            completed[key] = min(completed.get(key, a.completed_on), a.completed_on)
    patients = {p.subject_id: p for p in data.patients}
    fractions = by_subject(data.fractions)
    per_patient: dict[str, list[QolAssessment]] = defaultdict(list)
    for (sid, visit), values in form_scores.items():
        date = completed.get((sid, visit))
        if date is not None:
            per_patient[sid].append(QolAssessment(date, values, is_baseline=visit_week(visit) == 0.0))
    times, events = [], []
    for sid in sorted(chosen):
        p = patients.get(sid)
        if p is None or p.enrolment_date is None:
            continue
        first_rt = first_rt_fraction(fractions[sid])
        if spec.origin == "first_rt_fraction" and first_rt is None:
            continue
        result = time_to_deterioration(
            PatientAssessments(sid, per_patient.get(sid, []), p.enrolment_date, first_rt, p.death_date), spec
        )
        if not result.excluded and result.time is not None:
            times.append(result.time)
            events.append(int(result.event))
    if not times:
        return SurvivalSummary("Time to deterioration", None, note="No patient with a scored baseline.")
    return SurvivalSummary(f"Time to deterioration ({spec.unit})", kaplan_meier(times, events))
