"""Safety: the CTCAE v5.0 dictionary, adverse-event checks and derivations, safety tables, monitoring rules.

See docs/safety.md. Engines are pure; ``abscopal.safety.io`` reads CSV files.
"""

from abscopal.safety.analysis_set import SafetyAnalysisSet, safety_analysis_set, safety_population
from abscopal.safety.ctcae import CtcaeDictionary, CtcaeTerm, SearchHit, load_ctcae
from abscopal.safety.events import (
    Component,
    Exposure,
    check_adverse_event,
    check_grade,
    exposure_for,
    in_safety_population,
    is_serious,
    is_treatment_emergent,
    relatedness,
    sae_report_status,
    treatment_emergence,
)
from abscopal.safety.monitor import MonitorResult, monitor, posterior_check
from abscopal.safety.summaries import SafetyPopulation, SafetyTables, safety_tables

__all__ = [
    "Component",
    "CtcaeDictionary",
    "CtcaeTerm",
    "Exposure",
    "MonitorResult",
    "SafetyAnalysisSet",
    "SafetyPopulation",
    "SafetyTables",
    "SearchHit",
    "check_adverse_event",
    "check_grade",
    "exposure_for",
    "in_safety_population",
    "is_serious",
    "is_treatment_emergent",
    "load_ctcae",
    "monitor",
    "posterior_check",
    "relatedness",
    "sae_report_status",
    "safety_analysis_set",
    "safety_population",
    "safety_tables",
    "treatment_emergence",
]
