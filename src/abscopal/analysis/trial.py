"""Everything the trial report shows, derived through the engines from the trial's records at a data cut-off.

Pure: :class:`~abscopal.analysis.cutoff.TrialData` (domain records) in, :class:`Analysis` (tables, estimates and
the plain data of every figure) out. Each number comes from one engine: eligibility (``protocol.eligibility``),
response (``response.engine``), statistics (``stats``), safety (``safety``) and quality of life (``qol``); the
analysis modules only select populations and arrange the results (docs/report.md). No database here.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from abscopal.analysis.cutoff import TrialData, apply_cutoff
from abscopal.analysis.deviations import DeviationSummary, summarise_deviations
from abscopal.analysis.endpoints import (
    ResponseSummary,
    RoleRateCI,
    SurvivalSummary,
    dor_summary,
    os_summary,
    pfs_summary,
    response_summary,
    role_rates,
    subject_facts,
    ttd_summary,
)
from abscopal.analysis.figures import (
    QOL_PLOT_SCALES,
    QolSeries,
    SpiderSeries,
    SwimmerLane,
    WaterfallBar,
    heatmap_matrix,
    qol_series,
    spider_series,
    swimmer_lanes,
    waterfall_bars,
)
from abscopal.analysis.options import OptionRow, option_rows, safety_qol_option_rows
from abscopal.analysis.populations import ConsortFlow, Populations, Row, baseline_table, consort_flow, populations
from abscopal.protocol.model import Protocol, ProtocolFile
from abscopal.qol import TtdSpec, score_answers
from abscopal.response.codes import Criteria
from abscopal.response.engine import SubjectResponse, derive_cohort
from abscopal.safety import MonitorResult, SafetyTables, load_ctcae, monitor, safety_analysis_set, safety_tables

TTD_SCALES = ("QL2",)


@dataclass(frozen=True)
class Analysis:
    """Everything the report shows; figures as the plain data of :mod:`abscopal.analysis.figures`."""

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
    role_rates: tuple[RoleRateCI, ...]
    safety: SafetyTables | None
    safety_monitor: MonitorResult | None
    heatmap_terms: tuple[str, ...]
    heatmap_counts: tuple[tuple[int, ...], ...]
    qol_series: tuple[QolSeries, ...]
    ttd: SurvivalSummary
    ttd_definition: str
    options: tuple[OptionRow, ...]
    deviations: DeviationSummary
    other_options: tuple[OptionRow, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def has_patients(self) -> bool:
        return bool(self.populations.enrolled)


def qol_analysis(
    data: TrialData, subjects: Sequence[str], protocol: Protocol
) -> tuple[tuple[QolSeries, ...], SurvivalSummary, str]:
    """The key scales' means by visit and the time to deterioration of QL2 (protocol [qol] definition), from
    the QoL engine's scores of the chosen patients' questionnaires."""
    chosen = set(subjects)
    answers = [a for a in data.answers if a.subject_id in chosen]
    spec = TtdSpec.from_options(TTD_SCALES, protocol.qol)
    if not answers:
        return (), SurvivalSummary("Time to deterioration", None, note="No questionnaire answered."), spec.describe()
    scores = score_answers(answers, (*QOL_PLOT_SCALES, *spec.scales))
    return qol_series(scores), ttd_summary(data, subjects, scores, spec), spec.describe()


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
    qol, ttd, ttd_definition = qol_analysis(data, pops.enrolled, protocol)
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
        qol_series=qol,
        ttd=ttd,
        ttd_definition=ttd_definition,
        options=option_rows(protocol.response),
        deviations=summarise_deviations(data.deviations, pops.enrolled),
        other_options=safety_qol_option_rows(protocol),
        notes=tuple(notes),
    )
