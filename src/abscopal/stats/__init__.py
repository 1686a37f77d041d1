"""Trial statistics equal to R's: proportions (ORR, DCR), Kaplan-Meier (PFS, OS, DoR), log-rank, Simon designs.

Pure functions and small frozen result objects over plain numbers; reference values and their provenance are in
``tests/fixtures/stats/README.md`` and the methods in ``docs/statistics.md``.
"""

from abscopal.stats.comparison import GroupEvents, LogRankResult, logrank
from abscopal.stats.designs import (
    FinalDecision,
    InterimDecision,
    SimonDesign,
    SimonDesigns,
    simon_interim_decision,
    simon_two_stage,
)
from abscopal.stats.means import mean_ci
from abscopal.stats.proportions import PROPORTION_METHODS, ProportionCI, ProportionMethod, proportion_ci
from abscopal.stats.survival import (
    CONF_TYPES,
    ConfType,
    KMResult,
    KMRow,
    SurvivalAt,
    duration_of_response,
    kaplan_meier,
    median_follow_up,
)

__all__ = [
    "CONF_TYPES",
    "PROPORTION_METHODS",
    "ConfType",
    "FinalDecision",
    "GroupEvents",
    "InterimDecision",
    "KMResult",
    "KMRow",
    "LogRankResult",
    "ProportionCI",
    "ProportionMethod",
    "SimonDesign",
    "SimonDesigns",
    "SurvivalAt",
    "duration_of_response",
    "kaplan_meier",
    "logrank",
    "mean_ci",
    "median_follow_up",
    "proportion_ci",
    "simon_interim_decision",
    "simon_two_stage",
]
