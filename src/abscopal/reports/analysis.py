"""Everything the trial report shows, derived through the engines from the trial's records at a data cut-off.

Pure: :class:`TrialData` (domain records, read by :mod:`abscopal.reports.io`) in, :class:`Analysis` (tables,
estimates and the plain data of every figure) out. Each number comes from one engine: eligibility
(``protocol.eligibility``), response (``response.engine``), statistics (``stats``), safety (``safety``) and
quality of life (``qol``); this module only selects populations and arranges the results (docs/report.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from abscopal import domain as d
from abscopal.errors import ValidationError
from abscopal.protocol.eligibility import evaluate, screening_log
from abscopal.protocol.model import Protocol, ProtocolFile, ResponseOptions
from abscopal.qol import PatientAssessments, QolAssessment, TtdSpec, time_to_deterioration
from abscopal.qol.eortc import SCALES, ScaleScore, scale, score_scale
from abscopal.reports.plots import ConsortFlow, QolSeries, SpiderSeries, SwimmerLane, WaterfallBar
from abscopal.response.codes import Criteria
from abscopal.response.engine import SubjectFacts, SubjectResponse, derive_cohort
from abscopal.safety import MonitorResult, SafetyTables, load_ctcae, monitor, safety_tables
from abscopal.safety.summaries import worst_grades
from abscopal.stats import KMResult, ProportionCI, SurvivalAt, kaplan_meier, median_follow_up, proportion_ci
from abscopal.stats.means import mean_ci
from abscopal.store.safety_input import safety_analysis_set

DAYS_PER_MONTH = 30.4375  # 365.25 / 12, the usual conversion of survival times to months
DAYS_PER_WEEK = 7.0
LANDMARK_MONTHS = (6, 12)
SWIMMER_MAX_LANES = 50
HEATMAP_MAX_TERMS = 25
QOL_PLOT_SCALES = ("QL2", "PF2", "FA", "DY")
QOL_MIN_PATIENTS = 5  # visits with fewer scored patients are not summarised (means of 1-4 patients mislead)
TTD_SCALES = ("QL2",)
ROLES = (d.RtRole.CONVENTIONAL, d.RtRole.LOW_DOSE, d.RtRole.OBSERVATION)


# --- input


@dataclass(frozen=True)
class TrialData:
    """The trial's records as domain objects (what the store holds), before or after a data cut-off."""

    patients: Sequence[d.Patient] = ()
    screenings: Sequence[d.Screening] = ()
    adjudications: Sequence[d.Adjudication] = ()
    lesions: Sequence[d.Lesion] = ()
    courses: Sequence[d.RadiotherapyCourse] = ()
    fractions: Sequence[d.Fraction] = ()
    cycles: Sequence[d.ImmunotherapyCycle] = ()
    assessments: Sequence[d.TumourAssessment] = ()
    adverse_events: Sequence[d.AdverseEvent] = ()
    answers: Sequence[d.QuestionnaireAnswer] = ()


def _on_or_before(date: dt.date | None, cutoff: dt.date) -> dt.date | None:
    return date if date is not None and date <= cutoff else None


def apply_cutoff(data: TrialData, cutoff: dt.date) -> TrialData:
    """The trial as known on ``cutoff``: every record dated after it is dropped, every date after it cleared
    (a death, an enrolment, a resolution after the cut-off did not happen yet); last contact is capped."""

    def patient(p: d.Patient) -> d.Patient:
        enrolled = _on_or_before(p.enrolment_date, cutoff)
        death = _on_or_before(p.death_date, cutoff)
        status = p.status
        if enrolled is None and p.enrolment_date is not None:
            status = d.PatientStatus.SCREENING
        else:
            died_later = p.status is d.PatientStatus.DIED and death is None
            withdrew_later = p.status is d.PatientStatus.WITHDRAWN and _on_or_before(p.withdrawal_date, cutoff) is None
            if died_later or withdrew_later:
                status = d.PatientStatus.FOLLOW_UP
        last = p.last_contact_date
        return dataclasses.replace(
            p,
            status=status,
            enrolment_date=enrolled,
            death_date=death,
            death_cause=p.death_cause if death is not None else None,
            withdrawal_date=_on_or_before(p.withdrawal_date, cutoff),
            new_therapy_date=_on_or_before(p.new_therapy_date, cutoff),
            last_contact_date=min(last, cutoff) if last is not None else None,
        )

    def adverse_event(ae: d.AdverseEvent) -> d.AdverseEvent:
        if ae.resolution_date is not None and ae.resolution_date > cutoff:
            return dataclasses.replace(ae, resolution_date=None)
        return ae

    return TrialData(
        patients=[patient(p) for p in data.patients],
        screenings=[s for s in data.screenings if s.screening_date <= cutoff],
        adjudications=[a for a in data.adjudications if a.proposed_at.date() <= cutoff],
        lesions=list(data.lesions),
        courses=[c for c in data.courses if c.start_date <= cutoff],
        fractions=[f for f in data.fractions if f.date <= cutoff],
        cycles=[c for c in data.cycles if c.date <= cutoff],
        assessments=[a for a in data.assessments if a.assessment_date <= cutoff],
        adverse_events=[adverse_event(ae) for ae in data.adverse_events if ae.onset_date <= cutoff],
        answers=[a for a in data.answers if a.completed_on is None or a.completed_on <= cutoff],
    )


# --- output records


@dataclass(frozen=True)
class Row:
    """One row of a simple table: a label and its cells."""

    label: str
    cells: tuple[str, ...]
    level: int = 0


@dataclass(frozen=True)
class Populations:
    """Who is counted where (CONSORT 2010 and ICH E9 analysis sets)."""

    screened: tuple[str, ...]
    enrolled: tuple[str, ...]
    treated: tuple[str, ...]
    efficacy: tuple[str, ...]
    safety: tuple[str, ...]


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
class RoleRate:
    """Best response of the target lesions of one RT role (response-rules.md §8): responders / evaluable."""

    role: d.RtRole
    ci: ProportionCI | None


@dataclass(frozen=True)
class OptionRow:
    """One option the derivation used, with its value and where the rule is defined."""

    name: str
    value: str
    meaning: str


@dataclass(frozen=True)
class Analysis:
    """Everything the report shows; figures as the plain data of :mod:`abscopal.reports.plots`."""

    trial_id: str
    trial_title: str
    protocol_version: str
    protocol_versions: tuple[tuple[str, str], ...]
    enrolled_under: tuple[tuple[str, int], ...]
    cutoff: dt.date
    populations: Populations
    consort: ConsortFlow
    baseline: tuple[Row, ...]
    responses: tuple[ResponseSummary, ...]
    subject_responses: Mapping[str, SubjectResponse]
    waterfall: tuple[WaterfallBar, ...]
    spider: tuple[SpiderSeries, ...]
    swimmer: tuple[SwimmerLane, ...]
    swimmer_note: str
    pfs: SurvivalSummary
    os: SurvivalSummary
    follow_up: SurvivalSummary
    dor: SurvivalSummary
    role_rates: tuple[RoleRate, ...]
    safety: SafetyTables | None
    safety_monitor: MonitorResult | None
    heatmap_terms: tuple[str, ...]
    heatmap_counts: tuple[tuple[int, ...], ...]
    qol_series: tuple[QolSeries, ...]
    ttd: SurvivalSummary
    ttd_definition: str
    options: tuple[OptionRow, ...]
    other_options: tuple[OptionRow, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def has_patients(self) -> bool:
        return bool(self.populations.enrolled)


# --- populations


def _treatment_dates(data: TrialData) -> dict[str, list[dt.date]]:
    dates: dict[str, list[dt.date]] = defaultdict(list)
    for f in data.fractions:
        if f.status is not d.FractionStatus.MISSED:
            dates[f.subject_id].append(f.date)
    for c in data.cycles:
        if c.given:
            dates[c.subject_id].append(c.date)
    return dates


def populations(data: TrialData, safety_subjects: Iterable[str]) -> Populations:
    """Screened (a screening record), enrolled (an enrolment date), treated (>= 1 RT fraction or immunotherapy
    cycle given), efficacy (treated with a baseline tumour assessment), safety (>= 1 RT fraction, ae-qol.md A4)."""
    screened = sorted({s.subject_id for s in data.screenings} | {p.subject_id for p in data.patients})
    enrolled = sorted(p.subject_id for p in data.patients if p.enrolment_date is not None)
    treated_any = _treatment_dates(data)
    treated = [s for s in enrolled if treated_any.get(s)]
    assessed = {a.subject_id for a in data.assessments}
    efficacy = [s for s in treated if s in assessed]
    return Populations(
        tuple(screened), tuple(enrolled), tuple(treated), tuple(efficacy), tuple(sorted(safety_subjects))
    )


# --- CONSORT and baseline


def consort_flow(data: TrialData, pops: Populations, protocol_file: ProtocolFile) -> ConsortFlow:
    """The CONSORT numbers; the exclusion reasons are the eligibility engine's screening log (criteria that
    exclude each patient who was not enrolled), labelled with the protocol's criterion labels."""
    enrolled = set(pops.enrolled)
    patients = {p.subject_id: p for p in data.patients}
    checklists = []
    for s in data.screenings:
        if s.subject_id in enrolled:
            continue
        version = patients[s.subject_id].protocol_version if s.subject_id in patients else None
        protocol = _version(protocol_file, version)
        checklists.append(evaluate(s, protocol.eligibility, protocol.version.number))
    log = screening_log(checklists)
    labels = _criterion_labels(protocol_file.current)
    reasons = sorted(log.reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    named = [(_short(f"{cid} {labels.get(cid, '')}".strip()), n) for cid, n in reasons]
    eligible_not_enrolled = log.eligible
    if eligible_not_enrolled:
        named.append(("eligible but not enrolled", eligible_not_enrolled))
    if log.incomplete:
        named.append(("screening data incomplete", log.incomplete))
    not_screened = len(pops.screened) - len(enrolled) - log.screened
    if not_screened > 0:
        named.append(("no screening record", not_screened))
    discontinued = []
    no_baseline = len(pops.treated) - len(pops.efficacy)
    if no_baseline:
        discontinued.append(("no baseline tumour assessment", no_baseline))
    return ConsortFlow(
        screened=len(pops.screened),
        excluded=len(pops.screened) - len(enrolled),
        exclusion_reasons=tuple(named),
        enrolled=len(enrolled),
        treated=len(pops.treated),
        not_treated=len(enrolled) - len(pops.treated),
        analysed=len(pops.efficacy),
        not_analysed=no_baseline,
        discontinued=tuple(discontinued),
    )


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _version(protocol_file: ProtocolFile, number: str | None) -> Protocol:
    if number is not None and number in protocol_file.versions:
        return protocol_file.version(number)
    return protocol_file.current


def _criterion_labels(protocol: Protocol) -> dict[str, str]:
    crit = {**protocol.eligibility.inclusion, **protocol.eligibility.exclusion}
    return {cid: c.label for cid, c in crit.items()}


def _pct(n: int, total: int) -> str:
    return f"{n} ({100.0 * n / total:.1f}%)" if total else f"{n}"


def _median_range(values: Sequence[float]) -> str:
    if not values:
        return "not recorded"
    return f"{statistics.median(values):g} ({min(values):g}-{max(values):g})"


def baseline_table(data: TrialData, subjects: Sequence[str]) -> tuple[Row, ...]:
    """Baseline characteristics of the enrolled patients: n (%) or median (range), from the screening records."""
    chosen = set(subjects)
    n = len(chosen)
    patients = [p for p in data.patients if p.subject_id in chosen]
    screenings = [s for s in data.screenings if s.subject_id in chosen]
    rows: list[Row] = [Row("Patients", (str(n),))]
    ages = [float(s.age_years) for s in screenings if s.age_years is not None]
    rows.append(Row("Age, years: median (range)", (_median_range(ages),)))
    rows.append(Row("Sex", ()))
    for sex, count in sorted(Counter(p.sex.value for p in patients).items()):
        rows.append(Row({"F": "Female", "M": "Male"}.get(sex, "Unknown"), (_pct(count, n),), 1))
    rows.append(Row("ECOG performance status", ()))
    for ecog, count in sorted(Counter(s.ecog for s in screenings).items(), key=lambda kv: (kv[0] is None, kv[0])):
        rows.append(Row("not recorded" if ecog is None else str(ecog), (_pct(count, n),), 1))
    rows.append(Row("Histology", ()))
    for hist, count in Counter(s.histology.value if s.histology else "not recorded" for s in screenings).most_common():
        rows.append(Row(hist.replace("_", " "), (_pct(count, n),), 1))
    lesions = [float(s.lesion_count) for s in screenings if s.lesion_count is not None]
    organs = [float(s.metastatic_organ_count) for s in screenings if s.metastatic_organ_count is not None]
    rows.append(Row("Lesions at screening: median (range)", (_median_range(lesions),)))
    rows.append(Row("Organs with metastases: median (range)", (_median_range(organs),)))
    latest: dict[str, d.Adjudication] = {}
    for a in sorted(data.adjudications, key=lambda a: a.proposed_at):
        if a.subject_id in chosen:
            latest[a.subject_id] = a
    rows.append(Row("Immunotherapy resistance (adjudicated)", ()))
    for kind, count in Counter(a.classification.value for a in latest.values()).most_common():
        rows.append(Row(kind.replace("_", " "), (_pct(count, n),), 1))
    if n - len(latest):
        rows.append(Row("not adjudicated", (_pct(n - len(latest), n),), 1))
    return tuple(rows)


# --- response


def subject_facts(data: TrialData, subjects: Iterable[str]) -> dict[str, SubjectFacts]:
    """Reference date = first study treatment (first RT fraction or immunotherapy cycle given; response-rules.md
    §4 and §6), death date and new anticancer therapy date from the patient record."""
    treatment = _treatment_dates(data)
    patients = {p.subject_id: p for p in data.patients}
    facts = {}
    for s in subjects:
        p = patients.get(s)
        dates = treatment.get(s)
        facts[s] = SubjectFacts(
            subject_id=s,
            reference_date=min(dates) if dates else None,
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


def _last_known(data: TrialData) -> dict[str, dt.date]:
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


_CLOSED = (d.PatientStatus.LOST_TO_FOLLOW_UP, d.PatientStatus.COMPLETED, d.PatientStatus.WITHDRAWN)


def swimmer_lanes(
    data: TrialData, responses: Mapping[str, SubjectResponse], max_lanes: int = SWIMMER_MAX_LANES
) -> tuple[tuple[SwimmerLane, ...], str]:
    """One lane per efficacy patient (responders first, then the longest follow-up, at most ``max_lanes``)."""
    patients = {p.subject_id: p for p in data.patients}
    last = _last_known(data)
    rt: dict[str, list[dt.date]] = defaultdict(list)
    for f in data.fractions:
        if f.status is not d.FractionStatus.MISSED:
            rt[f.subject_id].append(f.date)
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


def role_rates(responses: Mapping[str, SubjectResponse]) -> tuple[RoleRate, ...]:
    """Per RT role: patients whose best role response is CR or PR among patients with a target of that role
    (the engine's best role response, response-rules.md §8); observation = the abscopal response rate."""
    out = []
    for role in ROLES:
        evaluable = [r for r in responses.values() if role in r.best_role_response]
        k = sum(1 for r in evaluable if str(r.best_role_response[role]) in ("CR", "PR"))
        out.append(RoleRate(role, proportion_ci(k, len(evaluable)) if evaluable else None))
    return tuple(out)


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


def os_data(data: TrialData, subjects: Sequence[str]) -> tuple[list[int], list[int]]:
    """Overall survival from the first study treatment: death (event) or the last known alive date (censored),
    in days end - start + 1."""
    facts = subject_facts(data, subjects)
    last = _last_known(data)
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


# --- safety


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


# --- quality of life


_VISIT = re.compile(r"^(?:week|w)_?(\d+)$", re.IGNORECASE)


def visit_week(visit: str) -> float | None:
    """Weeks of a visit name: 'baseline' -> 0, 'week_6' -> 6; None for a name without a week."""
    v = visit.strip().lower()
    if v in ("baseline", "screening", "week_0"):
        return 0.0
    m = _VISIT.match(v)
    return float(m.group(1)) if m else None


def score_scales(answers: Iterable[d.QuestionnaireAnswer], codes: Iterable[str]) -> list[ScaleScore]:
    """The chosen scales of every questionnaire, scored by the QoL engine's :func:`score_scale` (the report
    shows a few scales; :func:`~abscopal.qol.score_answers` scores all of them). Duplicate items are refused."""
    wanted = [scale(c) for c in dict.fromkeys(codes)]
    forms: dict[tuple[str, str, d.Instrument], dict[int, int | None]] = {}
    for a in answers:
        form = forms.setdefault((a.subject_id, a.visit, a.instrument), {})
        if a.item in form:
            raise ValidationError(
                "item", f"{a.subject_id} {a.visit} {a.instrument.value}: item {a.item} is answered twice"
            )
        form[a.item] = a.answer
    rows = []
    for (subject, visit, instrument), form in forms.items():
        for definition in wanted:
            if definition.instrument is instrument:
                rows.append(ScaleScore(subject, visit, instrument, definition.code, score_scale(form, definition)))
    return rows


def qol_analysis(
    data: TrialData, subjects: Sequence[str], protocol: Protocol
) -> tuple[tuple[QolSeries, ...], SurvivalSummary, str]:
    """Mean scores by visit with 95% CIs for the key scales, and time to deterioration of QL2 (protocol [qol]
    definition, SISAQOL) as a Kaplan-Meier estimate."""
    chosen = set(subjects)
    answers = [a for a in data.answers if a.subject_id in chosen]
    spec = TtdSpec.from_options(TTD_SCALES, protocol.qol)
    if not answers:
        return (), SurvivalSummary("Time to deterioration", None, note="No questionnaire answered."), spec.describe()
    scores = score_scales(answers, (*QOL_PLOT_SCALES, *spec.scales))
    by_scale_visit: dict[tuple[str, float], list[float]] = defaultdict(list)
    form_scores: dict[tuple[str, str], dict[str, float | None]] = defaultdict(dict)
    for s in scores:
        form_scores[(s.subject_id, s.visit)][s.scale] = s.score
        week = visit_week(s.visit)
        if s.score is not None and week is not None and s.scale in QOL_PLOT_SCALES:
            by_scale_visit[(s.scale, week)].append(s.score)
    names = {sc.code: sc.name for sc in SCALES}
    series = []
    for code in QOL_PLOT_SCALES:
        weeks = sorted(w for (c, w) in by_scale_visit if c == code and len(by_scale_visit[(c, w)]) >= QOL_MIN_PATIENTS)
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
    completed: dict[tuple[str, str], dt.date] = {}
    for a in answers:
        if a.completed_on is not None:
            key = (a.subject_id, a.visit)
            completed[key] = min(completed.get(key, a.completed_on), a.completed_on)
    patients = {p.subject_id: p for p in data.patients}
    first_rt: dict[str, dt.date] = {}
    for f in data.fractions:
        if f.status is not d.FractionStatus.MISSED and (
            f.subject_id not in first_rt or f.date < first_rt[f.subject_id]
        ):
            first_rt[f.subject_id] = f.date
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
        if spec.origin == "first_rt_fraction" and sid not in first_rt:
            continue
        result = time_to_deterioration(
            PatientAssessments(sid, per_patient.get(sid, []), p.enrolment_date, first_rt.get(sid), p.death_date), spec
        )
        if not result.excluded and result.time is not None:
            times.append(result.time)
            events.append(int(result.event))
    ttd = (
        SurvivalSummary(f"Time to deterioration ({spec.unit})", kaplan_meier(times, events))
        if times
        else SurvivalSummary("Time to deterioration", None, note="No patient with a scored baseline.")
    )
    return tuple(series), ttd, spec.describe()


# --- options


RESPONSE_OPTION_MEANING: dict[str, str] = {
    "criteria": "criteria of the primary analysis (response-rules.md §5)",
    "sd_min_days": "AMBIGUOUS: minimum days from the reference date for SD to count in the BOR (§4)",
    "dcr_sd_min_days": "AMBIGUOUS: minimum duration of SD for disease control (§4)",
    "confirm_min_days": "AMBIGUOUS: minimum days between a response and its confirmation (§4)",
    "max_ne_between": "AMBIGUOUS: NE assessments allowed between a response and its confirmation (§4)",
    "accept_sd_between": "AMBIGUOUS: SD allowed between a response and its confirmation (§4)",
    "missed_visits": "AMBIGUOUS: progression after >= 2 missed assessments is censored or an event (§6)",
    "unconfirmed_iupd": "AMBIGUOUS: a last unconfirmed iUPD is a PFS event or censored (§6)",
    "icpd_window_days": "AMBIGUOUS: window after iUPD for the confirming scan (§5)",
    "enforce_icpd_window": "AMBIGUOUS: refuse confirmations outside the window, or only flag them (§5)",
    "too_small_to_measure_mm": "value entered for a lesion too small to measure (§2)",
    "missed_visits_gap_days": "AMBIGUOUS: gap that counts as >= 2 missed assessments (§6)",
    "new_lesion_reset": "AMBIGUOUS: when new lesions stop blocking an iRECIST reset (§5)",
    "orr_requires_confirmation": "AMBIGUOUS: ORR counts confirmed responses only (§4)",
    "role_confirmation": "AMBIGUOUS: best response per RT role must be confirmed (§8)",
}


def option_rows(options: ResponseOptions) -> tuple[OptionRow, ...]:
    """Every response option the derivation used (all AMBIGUOUS rules of response-rules.md), in model order."""
    rows = []
    for name, value in options.model_dump().items():
        if isinstance(value, dict) and set(value) == {"min", "max"}:
            shown = f"{value['min']:g}-{value['max']:g}"
        else:
            shown = str(value)
        rows.append(OptionRow(name, shown, RESPONSE_OPTION_MEANING.get(name, "response-rules.md")))
    return tuple(rows)


def safety_qol_option_rows(protocol: Protocol) -> tuple[OptionRow, ...]:
    """The safety and QoL options behind the safety tables and the time to deterioration (ae-qol.md A4, B6)."""
    safety = protocol.safety
    rows = [
        OptionRow("safety.teae_anchor", safety.teae_anchor, "start of treatment emergence (ae-qol.md A4)"),
        OptionRow("safety.teae_window_days", str(safety.teae_window_days), "TEAE window after the last dose"),
        OptionRow(
            "safety.teae_window_days_sae_irae",
            str(safety.teae_window_days_sae_irae),
            "TEAE window for serious and immune-related events",
        ),
        OptionRow(
            "safety.missing_attribution",
            safety.missing_attribution,
            "a missing attribution counts as related or unrelated (queried either way)",
        ),
    ]
    for name, value in protocol.qol.model_dump().items():
        shown = ", ".join(value) if isinstance(value, list) else str(value)
        rows.append(OptionRow(f"qol.{name}", shown, "time to deterioration definition (SISAQOL; docs/qol.md)"))
    return tuple(rows)


# --- everything


def analyse(data: TrialData, protocol_file: ProtocolFile, cutoff: dt.date) -> Analysis:
    """Apply the cut-off and derive every section of the report through the engines."""
    data = apply_cutoff(data, cutoff)
    protocol = protocol_file.version_on(cutoff)
    safety_set = safety_analysis_set(
        [p for p in data.patients if p.enrolment_date is not None],
        list(data.fractions),
        list(data.cycles),
        list(data.adverse_events),
        protocol.safety,
    )
    pops = populations(data, safety_set.population.subjects or ())
    notes: list[str] = []
    facts = subject_facts(data, pops.efficacy)
    efficacy = set(pops.efficacy)
    assessments = [a for a in data.assessments if a.subject_id in efficacy]
    derived = {
        crit: derive_cohort(assessments, facts, protocol.response, crit) if assessments else {}
        for crit in (Criteria.IRECIST, Criteria.RECIST11)
    }
    primary = Criteria(protocol.response.criteria)
    responses = derived[primary]
    summaries = tuple(
        response_summary(derived[c], len(pops.efficacy), c) for c in (primary, *(set(Criteria) - {primary}))
    )
    lanes, lane_note = swimmer_lanes(data, responses)
    os_, follow = os_summary(data, pops.treated)
    safety: SafetyTables | None = None
    check: MonitorResult | None = None
    if safety_set.population.size:
        safety = safety_tables(
            safety_set.events, safety_set.population, protocol.safety, load_ctcae(), safety_set.exposures
        )
        check = monitor(safety_set.events, safety_set.population.size, protocol.safety.monitor)
    terms, counts = heatmap_matrix(safety_set.events)
    qol_series, ttd, ttd_definition = qol_analysis(data, pops.enrolled, protocol)
    versions = tuple((v, str(protocol_file.version(v).version.effective_date)) for v in protocol_file.versions)
    enrolled_set = set(pops.enrolled)
    under = Counter(p.protocol_version for p in data.patients if p.subject_id in enrolled_set)
    return Analysis(
        trial_id=protocol.trial.id,
        trial_title=protocol.trial.title,
        protocol_version=protocol.version.number,
        protocol_versions=versions,
        enrolled_under=tuple(sorted(under.items())),
        cutoff=cutoff,
        populations=pops,
        consort=consort_flow(data, pops, protocol_file),
        baseline=baseline_table(data, pops.enrolled),
        responses=summaries,
        subject_responses=responses,
        waterfall=waterfall_bars(responses),
        spider=spider_series(responses),
        swimmer=lanes,
        swimmer_note=lane_note,
        pfs=pfs_summary(responses),
        os=os_,
        follow_up=follow,
        dor=dor_summary(responses),
        role_rates=role_rates(responses),
        safety=safety,
        safety_monitor=check,
        heatmap_terms=terms,
        heatmap_counts=counts,
        qol_series=qol_series,
        ttd=ttd,
        ttd_definition=ttd_definition,
        options=option_rows(protocol.response),
        other_options=safety_qol_option_rows(protocol),
        notes=tuple(notes),
    )
