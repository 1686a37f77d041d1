"""The vectorised eligibility path agrees with the scalar path, row by row (same protocol data, same rules)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abscopal.domain import DietLevel, Histology, LabValue, Screening
from abscopal.errors import ValidationError
from abscopal.protocol.eligibility import evaluate, screening_log
from abscopal.protocol.eligibility_vectorised import evaluate_columns, frame_from_screenings
from abscopal.protocol.model import load_bundled

PROTOCOL = load_bundled().current


def _opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


_count_units = {"x10^9/L": 1.0, "cells/uL": 1000.0, "/mm3": 1000.0, "10^3/uL": 1.0}


@st.composite
def _lab(draw: st.DrawFn, lab: str) -> LabValue | None:
    if draw(st.booleans()) and draw(st.booleans()):
        return None
    if lab == "haemoglobin":
        unit = draw(st.sampled_from(["g/L", "g/dL"]))
        value = draw(st.integers(60, 160)) / (10 if unit == "g/dL" else 1)
        return LabValue(value, unit)
    if lab in ("ast", "alt", "alp"):
        uln = draw(_opt(st.sampled_from([35.0, 40.0, 120.0])))
        return LabValue(float(draw(st.integers(5, 400))), draw(st.sampled_from(["U/L", "IU/L"])), uln)
    unit = draw(st.sampled_from(sorted(_count_units)))
    value = draw(st.integers(0, 400)) / 20 * _count_units[unit]
    return LabValue(value, unit)


@st.composite
def screenings(draw: st.DrawFn) -> Screening:
    labs = {
        name: lab
        for name in ("haemoglobin", "wbc", "neutrophils", "platelets", "ast", "alt", "alp")
        if (lab := draw(_lab(name))) is not None
    }
    flag = _opt(st.booleans())
    return Screening(
        subject_id=f"S{draw(st.integers(0, 10**6))}",
        screening_date=dt.date(2024, 3, 1),
        consent_date=draw(_opt(st.just(dt.date(2024, 3, 1)))),
        age_years=draw(_opt(st.integers(15, 70))),
        ecog=draw(_opt(st.integers(0, 4))),
        life_expectancy_months=draw(_opt(st.sampled_from([3.0, 6.0, 6.5, 12.0]))),
        diet=draw(_opt(st.sampled_from(list(DietLevel)))),
        severe_allergy_history=draw(flag),
        labs=labs,
        histology=draw(_opt(st.sampled_from(list(Histology)))),
        histology_confirmed_by=draw(_opt(st.sampled_from(["cytology", "histology", "clinical"]))),
        lesion_count=draw(_opt(st.integers(0, 12))),
        metastatic_organ_count=draw(_opt(st.integers(0, 7))),
        has_measurable_disease=draw(flag),
        immunotherapy_resistance_confirmed=draw(flag),
        no_standard_treatment_option=draw(flag),
        refuses_cooperation=draw(flag),
        other_trial_within_3_months=draw(flag),
        brain_metastases=draw(flag),
        investigator_judges_unsuitable=draw(flag),
        severe_infection=draw(flag),
        serious_comorbidity=draw(flag),
        prior_immune_related_toxicity=draw(flag),
        prior_radiotherapy=draw(flag),
    )


@st.composite
def mostly_eligible(draw: st.DrawFn) -> Screening:
    """Near the thresholds, so that eligible and incomplete verdicts occur too."""
    s = draw(screenings())
    from dataclasses import replace

    keep_false: dict[str, Any] = {
        f: False
        for f in (
            "refuses_cooperation",
            "other_trial_within_3_months",
            "brain_metastases",
            "investigator_judges_unsuitable",
            "severe_infection",
            "serious_comorbidity",
            "prior_immune_related_toxicity",
            "prior_radiotherapy",
            "severe_allergy_history",
        )
        if draw(st.integers(0, 9)) > 0
    }
    return replace(s, **keep_false)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(screenings(), mostly_eligible()), min_size=1, max_size=25))
def test_vectorised_and_scalar_paths_agree_on_every_criterion_and_verdict(batch: list[Screening]) -> None:
    scalar = [evaluate(s, PROTOCOL.eligibility) for s in batch]
    columns = evaluate_columns(frame_from_screenings(batch), PROTOCOL.eligibility)
    for row, checklist in enumerate(scalar):
        assert columns.verdict_of(row) is checklist.verdict
        for result in checklist.results:
            assert columns.status(result.criterion_id, row) == result.status.value, (row, result.reason)
    assert columns.screening_log() == screening_log(scalar).as_dict()


def test_the_vectorised_path_reads_plain_numpy_columns_with_nan_for_missing() -> None:
    n = 3
    frame = {
        "consent_date": np.array(["2024-03-01", None, "2024-03-01"], dtype=object),
        "age_years": np.array([50, np.nan, 70.0]),
        "lab_neutrophils": np.array([1800.0, 1.0, 2.0]),
        "lab_neutrophils_unit": np.array(["cells/uL", "x10^9/L", "x10^9/L"], dtype=object),
    }
    result = evaluate_columns(frame, PROTOCOL.eligibility)
    assert len(result) == n
    assert [result.status("IN2", i) for i in range(n)] == ["met", "unknown", "not_met"]
    assert [result.status("IN1", i) for i in range(n)] == ["met", "unknown", "met"]
    assert result.verdict.tolist() == [1, 0, 0]


def test_an_unknown_unit_in_a_column_names_the_column_and_row() -> None:
    frame = pd.DataFrame({"lab_wbc": [5.0, 5.0], "lab_wbc_unit": ["x10^9/L", "furlongs"]})
    with pytest.raises(ValidationError) as info:
        evaluate_columns(frame, PROTOCOL.eligibility)
    assert info.value.field == "lab_wbc_unit"
    assert "row 1" in info.value.reason


def test_the_vectorised_path_gives_each_verdict_and_the_same_log_as_the_scalar_path(
    make_screening: Callable[..., Screening],
) -> None:
    batch = [
        make_screening(),  # eligible
        make_screening(ecog=None),  # incomplete
        make_screening(brain_metastases=True, labs={}),  # ineligible (and labs unknown)
    ]
    result = evaluate_columns(frame_from_screenings(batch), PROTOCOL.eligibility)
    assert result.verdict.tolist() == [2, 1, 0]
    assert result.screening_log() == screening_log([evaluate(s, PROTOCOL.eligibility) for s in batch]).as_dict()


def test_a_polars_frame_gives_the_same_result_as_pandas(make_screening: Callable[..., Screening]) -> None:
    import polars as pl

    batch = [make_screening(), make_screening(ecog=None), make_screening(diet=DietLevel.NONE, labs={})]
    frame = frame_from_screenings(batch)
    as_polars = pl.DataFrame({c: frame[c].tolist() for c in frame.columns}, strict=False)
    via_pandas = evaluate_columns(frame, PROTOCOL.eligibility)
    via_polars = evaluate_columns(as_polars, PROTOCOL.eligibility)
    assert via_polars.verdict.tolist() == via_pandas.verdict.tolist() == [2, 1, 0]
    assert {k: v.tolist() for k, v in via_polars.criteria.items()} == {
        k: v.tolist() for k, v in via_pandas.criteria.items()
    }
