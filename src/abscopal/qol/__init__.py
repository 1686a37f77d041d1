"""Quality of life: EORTC QLQ-C30 v3.0 / QLQ-LC13 scoring, change from baseline, time to deterioration.

See docs/qol.md. Engines are pure; ``abscopal.qol.io`` reads and writes CSV files. No EORTC item wording.
"""

from abscopal.qol.change import (
    PatientAssessments,
    QolAssessment,
    TtdResult,
    TtdSpec,
    change_from_baseline,
    classify_change,
    is_deterioration,
    time_to_deterioration,
)
from abscopal.qol.eortc import (
    ITEMS,
    SCALES,
    ScaleDefinition,
    ScaleKind,
    ScaleScore,
    score_answers,
    score_instrument,
    score_scale,
    summary_score,
)

__all__ = [
    "ITEMS",
    "SCALES",
    "PatientAssessments",
    "QolAssessment",
    "ScaleDefinition",
    "ScaleKind",
    "ScaleScore",
    "TtdResult",
    "TtdSpec",
    "change_from_baseline",
    "classify_change",
    "is_deterioration",
    "score_answers",
    "score_instrument",
    "score_scale",
    "summary_score",
    "time_to_deterioration",
]
