"""The safety analysis set: the safety population, each patient's exposure and the treatment-emergent events.

Pure (the store's :mod:`abscopal.store.safety_input` reads the records and calls it; so does the trial report).
The population rule is :func:`~abscopal.safety.events.in_safety_population` (at least one RT fraction given,
ae-qol.md A4); the TEAE rule and its anchor are :func:`~abscopal.safety.events.treatment_emergence`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from abscopal import domain as d
from abscopal.protocol.model import SafetyOptions
from abscopal.safety.events import Exposure, exposure_for, in_safety_population, is_treatment_emergent
from abscopal.safety.summaries import SafetyPopulation


@dataclass(frozen=True)
class SafetyAnalysisSet:
    events: list[d.AdverseEvent]  # treatment-emergent, in the safety population
    population: SafetyPopulation
    exposures: dict[str, Exposure]
    excluded_not_emergent: int


R = TypeVar("R", d.Fraction, d.ImmunotherapyCycle)


def _by_subject(records: Iterable[R]) -> dict[str, list[R]]:
    out: dict[str, list[R]] = defaultdict(list)
    for r in records:
        out[r.subject_id].append(r)
    return out


def safety_population(patients: Iterable[d.Patient], fractions: Iterable[d.Fraction]) -> SafetyPopulation:
    """The patients of ``patients`` given at least one study RT fraction (ae-qol.md A4), sorted by id."""
    fractions_of = _by_subject(fractions)
    return SafetyPopulation.of(
        sorted(p.subject_id for p in patients if in_safety_population(fractions_of[p.subject_id]))
    )


def safety_analysis_set(
    patients: Sequence[d.Patient],
    fractions: Sequence[d.Fraction],
    cycles: Sequence[d.ImmunotherapyCycle],
    events: Sequence[d.AdverseEvent],
    options: SafetyOptions,
) -> SafetyAnalysisSet:
    """Exposure per patient of the safety population, and the events that are treatment-emergent."""
    fractions_of = _by_subject(fractions)
    cycles_of = _by_subject(cycles)
    population = safety_population(patients, fractions)
    members = set(population.subjects or ())
    exposures: dict[str, Exposure] = {}
    for p in patients:
        if p.subject_id not in members:
            continue
        on_treatment = p.status in (d.PatientStatus.ON_TREATMENT, d.PatientStatus.ENROLLED)
        exposure = exposure_for(
            options.teae_anchor, fractions_of[p.subject_id], cycles_of[p.subject_id], p.enrolment_date, on_treatment
        )
        if exposure is not None:
            exposures[p.subject_id] = exposure
    kept = [e for e in events if is_treatment_emergent(e, exposures.get(e.subject_id), options)]
    return SafetyAnalysisSet(kept, population, exposures, len(events) - len(kept))
