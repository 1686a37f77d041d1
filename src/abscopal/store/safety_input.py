"""The safety analysis set from the database: treatment-emergent AEs and the safety population.

The population is every patient with at least one RT fraction given (ae-qol.md A4); the TEAE rule and its
anchor are the safety engine's (:func:`abscopal.safety.events.treatment_emergence`), read from the protocol.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from abscopal import domain as d
from abscopal.protocol.model import SafetyOptions
from abscopal.safety.events import Exposure, exposure_for, is_treatment_emergent
from abscopal.safety.summaries import SafetyPopulation
from abscopal.store.database import make_engine, require_schema
from abscopal.store.repository import Repository


@dataclass(frozen=True)
class SafetyAnalysisSet:
    events: list[d.AdverseEvent]  # treatment-emergent, in the safety population
    population: SafetyPopulation
    exposures: dict[str, Exposure]
    excluded_not_emergent: int


def safety_analysis_set(
    patients: list[d.Patient],
    fractions: list[d.Fraction],
    cycles: list[d.ImmunotherapyCycle],
    events: list[d.AdverseEvent],
    options: SafetyOptions,
) -> SafetyAnalysisSet:
    """Exposure per patient, the safety population, and the events that are treatment-emergent (pure)."""
    fractions_of: dict[str, list[d.Fraction]] = defaultdict(list)
    for f in fractions:
        fractions_of[f.subject_id].append(f)
    cycles_of: dict[str, list[d.ImmunotherapyCycle]] = defaultdict(list)
    for c in cycles:
        cycles_of[c.subject_id].append(c)
    exposures: dict[str, Exposure] = {}
    for p in patients:
        on_treatment = p.status in (d.PatientStatus.ON_TREATMENT, d.PatientStatus.ENROLLED)
        exposure = exposure_for(
            options.teae_anchor, fractions_of[p.subject_id], cycles_of[p.subject_id], p.enrolment_date, on_treatment
        )
        if exposure is not None:
            exposures[p.subject_id] = exposure
    kept = [e for e in events if is_treatment_emergent(e, exposures.get(e.subject_id), options)]
    return SafetyAnalysisSet(kept, SafetyPopulation.of(sorted(exposures)), exposures, len(events) - len(kept))


def load_safety_analysis_set(options: SafetyOptions, database_url: str | None = None) -> SafetyAnalysisSet:
    engine = make_engine(database_url)
    require_schema(engine)
    with engine.connect() as conn:
        repo = Repository(conn)
        result = safety_analysis_set(
            repo.all(d.Patient),
            repo.all(d.Fraction),
            repo.all(d.ImmunotherapyCycle),
            repo.all(d.AdverseEvent),
            options,
        )
    engine.dispose()
    return result
