"""Standard safety tables: worst grade per patient, incidence by SOC/term, TRAEs, SAEs, maximum grade, AESIs.

Each patient counts once per term at the maximum grade, once per SOC and once in "any AE"; percentages use
the safety population (patients with at least one RT fraction) as denominator (ae-qol.md A4). A record
without a grade counts in "any grade" only and is listed as a query, never imputed.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from abscopal.domain import AdverseEvent, AeAction, AeOutcome
from abscopal.errors import ValidationError
from abscopal.protocol.model import SafetyOptions
from abscopal.safety.ctcae import CtcaeDictionary
from abscopal.safety.events import Component, Exposure, data_queries, is_serious, relatedness, seriousness_criteria

MissingPolicy = Literal["related", "unrelated"]


@dataclass(frozen=True, slots=True)
class SafetyPopulation:
    """The denominator: patients with at least one study RT fraction (known by id, or only by number)."""

    size: int
    subjects: frozenset[str] | None = None

    @classmethod
    def of(cls, subjects: Iterable[str]) -> SafetyPopulation:
        ids = frozenset(subjects)
        return cls(len(ids), ids)

    def includes(self, subject_id: str) -> bool:
        return self.subjects is None or subject_id in self.subjects


@dataclass(frozen=True, slots=True)
class CountPct:
    """Number of patients and percentage of the safety population (unrounded; shown to one decimal)."""

    n: int
    pct: float

    def __str__(self) -> str:
        return f"{self.n} ({self.pct:.1f}%)"


def _count(n: int, population: SafetyPopulation) -> CountPct:
    return CountPct(n, 100.0 * n / population.size if population.size else 0.0)


def _in_population(
    events: Iterable[AdverseEvent], population: SafetyPopulation
) -> tuple[list[AdverseEvent], list[str]]:
    kept: list[AdverseEvent] = []
    queries: list[str] = []
    for ae in events:
        if population.includes(ae.subject_id):
            kept.append(ae)
        else:
            queries.append(
                f"{ae.subject_id} AE {ae.ae_id}: {ae.subject_id} is not in the safety population (not counted)"
            )
    subjects = {ae.subject_id for ae in kept}
    if len(subjects) > population.size:
        raise ValidationError(
            "population",
            f"{len(subjects)} patients have adverse events but the safety population has only {population.size}",
        )
    return kept, queries


def _max_grade(grades: Iterable[int | None]) -> int | None:
    known = [g for g in grades if g is not None]
    return max(known) if known else None


def worst_grades(events: Iterable[AdverseEvent]) -> dict[tuple[str, str], int | None]:
    """Worst grade per (patient, term); None when no record of that term has a grade (A4)."""
    grades: dict[tuple[str, str], list[int | None]] = defaultdict(list)
    for ae in events:
        grades[(ae.subject_id, ae.term)].append(ae.grade)
    return {key: _max_grade(gs) for key, gs in grades.items()}


# --- incidence by SOC and term


@dataclass(frozen=True, slots=True)
class GradeCounts:
    """Patients by grade category at their worst grade: any, 1-2, >= 3, 5 (A4)."""

    any_grade: CountPct
    grade_1_2: CountPct
    grade_3_plus: CountPct
    grade_5: CountPct


def _grade_counts(worst: Iterable[int | None], population: SafetyPopulation) -> GradeCounts:
    ws = list(worst)
    return GradeCounts(
        _count(len(ws), population),
        _count(sum(1 for g in ws if g is not None and g <= 2), population),
        _count(sum(1 for g in ws if g is not None and g >= 3), population),
        _count(sum(1 for g in ws if g == 5), population),
    )


@dataclass(frozen=True, slots=True)
class IncidenceRow:
    """One row of the SOC/term table: ``level`` "any" (all AEs), "soc" or "term"."""

    level: Literal["any", "soc", "term"]
    soc: str | None
    term: str | None
    counts: GradeCounts


def incidence_by_soc_term(
    events: Iterable[AdverseEvent],
    population: SafetyPopulation,
    dictionary: CtcaeDictionary,
    order: Literal["soc_standard", "frequency"] = "soc_standard",
) -> list[IncidenceRow]:
    """AEs by SOC and term, any grade and by grade category, each patient once at the worst grade (A4 table 2).

    SOCs in MedDRA's internationally agreed order (or by descending frequency); terms within an SOC by
    descending frequency, then alphabetically.
    """
    kept, _ = _in_population(events, population)
    soc_of: dict[str, str] = {}
    by_term: dict[str, dict[str, list[int | None]]] = defaultdict(lambda: defaultdict(list))
    for ae in kept:
        term = dictionary.find(ae.term)
        if term is None:
            raise ValidationError("term", f"{ae.subject_id} AE {ae.ae_id}: {ae.term!r} is not a CTCAE v5.0 term")
        soc_of[term.term] = term.soc
        by_term[term.term][ae.subject_id].append(ae.grade)
    term_worst = {t: {s: _max_grade(g) for s, g in subj.items()} for t, subj in by_term.items()}
    soc_grades: dict[str, dict[str, list[int | None]]] = defaultdict(lambda: defaultdict(list))
    all_grades: dict[str, list[int | None]] = defaultdict(list)
    for t, subj in term_worst.items():
        for s, g in subj.items():
            soc_grades[soc_of[t]][s].append(g)
            all_grades[s].append(g)
    rows = [IncidenceRow("any", None, None, _grade_counts((_max_grade(g) for g in all_grades.values()), population))]
    standard = {soc: i for i, soc in enumerate(dictionary.socs)}

    def soc_key(soc: str) -> tuple[int, int, str]:
        if order == "frequency":
            return (-len(soc_grades[soc]), 0, soc)
        return (standard.get(soc, len(standard)), 0, soc)

    for soc in sorted(soc_grades, key=soc_key):
        worst = [_max_grade(g) for g in soc_grades[soc].values()]
        rows.append(IncidenceRow("soc", soc, None, _grade_counts(worst, population)))
        terms = [t for t in term_worst if soc_of[t] == soc]
        for t in sorted(terms, key=lambda t: (-len(term_worst[t]), t)):
            rows.append(IncidenceRow("term", soc, t, _grade_counts(term_worst[t].values(), population)))
    return rows


# --- patients with at least one event meeting a condition


def patients_with(
    events: Iterable[AdverseEvent], population: SafetyPopulation, condition: Callable[[AdverseEvent], bool]
) -> CountPct:
    """Patients (once each) with at least one event meeting ``condition``, as n and % of the population."""
    kept, _ = _in_population(events, population)
    return _count(len({ae.subject_id for ae in kept if condition(ae)}), population)


def _grade_at_least(ae: AdverseEvent, grade: int) -> bool:
    return ae.grade is not None and ae.grade >= grade


def _fatal(ae: AdverseEvent) -> bool:
    return ae.grade == 5 or ae.outcome is AeOutcome.FATAL or ae.serious_death


@dataclass(frozen=True, slots=True)
class SummaryRow:
    label: str
    count: CountPct


def overall_summary(
    events: Sequence[AdverseEvent], population: SafetyPopulation, missing_attribution: MissingPolicy = "related"
) -> list[SummaryRow]:
    """The overall safety summary of ae-qol.md A4 table 1 (patients with at least one such event)."""

    def related(ae: AdverseEvent) -> bool:
        return relatedness(ae, missing_attribution).any

    checks: list[tuple[str, Callable[[AdverseEvent], bool]]] = [
        ("Any AE", lambda ae: True),
        ("Any treatment-related AE", related),
        ("Grade >= 3 AE", lambda ae: _grade_at_least(ae, 3)),
        ("Grade >= 3 treatment-related AE", lambda ae: _grade_at_least(ae, 3) and related(ae)),
        ("Serious AE", is_serious),
        ("Treatment-related serious AE", lambda ae: is_serious(ae) and related(ae)),
        ("Immune-related AE", lambda ae: ae.immune_related),
        ("AE leading to immunotherapy interruption", lambda ae: ae.action_io is AeAction.DRUG_INTERRUPTED),
        ("AE leading to immunotherapy discontinuation", lambda ae: ae.action_io is AeAction.DRUG_WITHDRAWN),
        ("AE leading to death", _fatal),
    ]
    return [SummaryRow(label, patients_with(events, population, check)) for label, check in checks]


# --- by maximum grade


@dataclass(frozen=True, slots=True)
class MaxGradeTable:
    """Patients by their maximum grade over all AEs (A4 table 3); ``missing`` = AEs but no grade recorded."""

    by_grade: dict[int, CountPct]
    missing: CountPct
    no_ae: CountPct


def by_maximum_grade(events: Iterable[AdverseEvent], population: SafetyPopulation) -> MaxGradeTable:
    """Each patient once, at the maximum grade of all their AEs."""
    kept, _ = _in_population(events, population)
    grades: dict[str, list[int | None]] = defaultdict(list)
    for ae in kept:
        grades[ae.subject_id].append(ae.grade)
    worst = [_max_grade(g) for g in grades.values()]
    return MaxGradeTable(
        {g: _count(sum(1 for w in worst if w == g), population) for g in (1, 2, 3, 4, 5)},
        _count(sum(1 for w in worst if w is None), population),
        _count(population.size - len(worst), population),
    )


# --- treatment-related by component


@dataclass(frozen=True, slots=True)
class RelatedRow:
    """TRAEs attributed to one component ("CFRT", "LDRT", "IO" or "Any study treatment")."""

    component: str
    any_grade: CountPct
    grade_3_plus: CountPct
    serious: CountPct


def treatment_related(
    events: Sequence[AdverseEvent], population: SafetyPopulation, missing_attribution: MissingPolicy = "related"
) -> list[RelatedRow]:
    """TRAEs (possible/probable/definite) per component and for any study treatment (A4 table 4)."""

    def related_to(component: Component | None) -> Callable[[AdverseEvent], bool]:
        def test(ae: AdverseEvent) -> bool:
            rel = relatedness(ae, missing_attribution)
            return rel.any if component is None else rel.to(component)

        return test

    rows = []
    for label, component in [*((c.value, c) for c in Component), ("Any study treatment", None)]:
        rel = related_to(component)
        rows.append(
            RelatedRow(
                label,
                patients_with(events, population, rel),
                patients_with(events, population, _both(rel, lambda ae: _grade_at_least(ae, 3))),
                patients_with(events, population, _both(rel, is_serious)),
            )
        )
    return rows


def _both(
    first: Callable[[AdverseEvent], bool], second: Callable[[AdverseEvent], bool]
) -> Callable[[AdverseEvent], bool]:
    return lambda ae: first(ae) and second(ae)


# --- serious and fatal events (listings)


@dataclass(frozen=True, slots=True)
class EventListing:
    subject_id: str
    ae_id: str
    term: str
    grade: int | None
    onset_date: str
    criteria: tuple[str, ...]
    related_to: tuple[str, ...]
    outcome: str


def _listing(ae: AdverseEvent, missing_attribution: MissingPolicy) -> EventListing:
    rel = relatedness(ae, missing_attribution)
    return EventListing(
        ae.subject_id,
        ae.ae_id,
        ae.term,
        ae.grade,
        ae.onset_date.isoformat(),
        tuple(c.value for c in seriousness_criteria(ae)),
        tuple(c.value for c in Component if rel.to(c)),
        ae.outcome.value,
    )


def serious_listing(
    events: Iterable[AdverseEvent], missing_attribution: MissingPolicy = "related"
) -> list[EventListing]:
    """Every serious event (ICH E2A), by subject and onset (A4 table 5)."""
    chosen = sorted((ae for ae in events if is_serious(ae)), key=lambda ae: (ae.subject_id, ae.onset_date, ae.ae_id))
    return [_listing(ae, missing_attribution) for ae in chosen]


def fatal_listing(events: Iterable[AdverseEvent], missing_attribution: MissingPolicy = "related") -> list[EventListing]:
    """Every event leading to death (grade 5, fatal outcome or the E2A death criterion)."""
    chosen = sorted((ae for ae in events if _fatal(ae)), key=lambda ae: (ae.subject_id, ae.onset_date, ae.ae_id))
    return [_listing(ae, missing_attribution) for ae in chosen]


# --- adverse events of special interest


@dataclass(frozen=True, slots=True)
class AesiRow:
    """One AESI category: patients any grade / grade >= 3, median days from anchor to first onset and to resolution."""

    category: str
    terms: tuple[str, ...]
    any_grade: CountPct
    grade_3_plus: CountPct
    median_days_to_onset: float | None
    median_days_to_resolution: float | None


def aesi_summary(
    events: Sequence[AdverseEvent],
    population: SafetyPopulation,
    categories: Mapping[str, Sequence[str]],
    exposures: Mapping[str, Exposure] | None = None,
) -> list[AesiRow]:
    """AEs of special interest by configurable category of CTCAE terms (protocol ``[safety.aesi]``; A4 table 6)."""
    kept, _ = _in_population(events, population)
    rows = []
    for category, terms in categories.items():
        names = {t.casefold() for t in terms}
        chosen = [ae for ae in kept if ae.term.casefold() in names]
        onset_days: list[int] = []
        if exposures is not None:
            first: dict[str, AdverseEvent] = {}
            for ae in sorted(chosen, key=lambda ae: ae.onset_date):
                first.setdefault(ae.subject_id, ae)
            onset_days = [(ae.onset_date - exposures[s].anchor).days for s, ae in first.items() if s in exposures]
        durations = [(ae.resolution_date - ae.onset_date).days for ae in chosen if ae.resolution_date is not None]
        rows.append(
            AesiRow(
                category,
                tuple(terms),
                patients_with(chosen, population, lambda ae: True),
                patients_with(chosen, population, lambda ae: _grade_at_least(ae, 3)),
                float(statistics.median(onset_days)) if onset_days else None,
                float(statistics.median(durations)) if durations else None,
            )
        )
    return rows


# --- everything at once


@dataclass(frozen=True, slots=True)
class SafetyTables:
    """All standard tables for one set of (treatment-emergent) events, plus the data queries they raised."""

    population: int
    overall: list[SummaryRow]
    by_soc_term: list[IncidenceRow]
    by_max_grade: MaxGradeTable
    related: list[RelatedRow]
    aesi: list[AesiRow]
    serious: list[EventListing]
    fatal: list[EventListing]
    queries: list[str] = field(default_factory=list)


def safety_tables(
    events: Sequence[AdverseEvent],
    population: SafetyPopulation,
    options: SafetyOptions,
    dictionary: CtcaeDictionary,
    exposures: Mapping[str, Exposure] | None = None,
) -> SafetyTables:
    """Build every table of ae-qol.md A4 (1-6) from events already restricted to the analysis set (e.g. TEAEs)."""
    kept, queries = _in_population(events, population)
    for ae in kept:
        queries.extend(data_queries(ae, options.missing_attribution))
    return SafetyTables(
        population=population.size,
        overall=overall_summary(kept, population, options.missing_attribution),
        by_soc_term=incidence_by_soc_term(kept, population, dictionary),
        by_max_grade=by_maximum_grade(kept, population),
        related=treatment_related(kept, population, options.missing_attribution),
        aesi=aesi_summary(kept, population, options.aesi, exposures),
        serious=serious_listing(kept, options.missing_attribution),
        fatal=fatal_listing(kept, options.missing_attribution),
        queries=queries,
    )
