"""The safety analysis set from the database: reads the records and calls the safety engine's pure
:func:`abscopal.safety.analysis_set.safety_analysis_set` (population, exposures, TEAEs; ae-qol.md A4).
"""

from __future__ import annotations

from abscopal import domain as d
from abscopal.protocol.model import SafetyOptions
from abscopal.safety.analysis_set import SafetyAnalysisSet, safety_analysis_set
from abscopal.store.database import make_engine, require_schema
from abscopal.store.repository import Repository


def load_safety_analysis_set(options: SafetyOptions, database_url: str | None = None) -> SafetyAnalysisSet:
    engine = make_engine(database_url, read_only=True)
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


__all__ = ["SafetyAnalysisSet", "load_safety_analysis_set", "safety_analysis_set"]
