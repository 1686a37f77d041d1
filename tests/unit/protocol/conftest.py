"""Shared fixtures for the protocol engines: the bundled protocol and a fully eligible screening."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from abscopal.domain import DietLevel, Histology, LabValue, Screening
from abscopal.protocol.model import Protocol, load_bundled


@pytest.fixture(scope="session")
def protocol() -> Protocol:
    return load_bundled().current


def eligible_screening(**changes: Any) -> Screening:
    """A screening that meets every inclusion and no exclusion of NCT05906329 v1.0; ``changes`` override fields."""
    base = Screening(
        subject_id="S-001",
        screening_date=dt.date(2024, 3, 1),
        consent_date=dt.date(2024, 3, 1),
        age_years=55,
        ecog=1,
        life_expectancy_months=12,
        diet=DietLevel.NORMAL,
        severe_allergy_history=False,
        labs={
            "haemoglobin": LabValue(120, "g/L"),
            "wbc": LabValue(6.0, "x10^9/L"),
            "neutrophils": LabValue(3.0, "x10^9/L"),
            "platelets": LabValue(200, "x10^9/L"),
            "ast": LabValue(30, "U/L", 40),
            "alt": LabValue(30, "U/L", 40),
            "alp": LabValue(100, "U/L", 120),
        },
        histology=Histology.ADENOCARCINOMA,
        histology_confirmed_by="histology",
        lesion_count=4,
        metastatic_organ_count=2,
        has_measurable_disease=True,
        immunotherapy_resistance_confirmed=True,
        no_standard_treatment_option=True,
        refuses_cooperation=False,
        other_trial_within_3_months=False,
        brain_metastases=False,
        investigator_judges_unsuitable=False,
        severe_infection=False,
        serious_comorbidity=False,
        prior_immune_related_toxicity=False,
        prior_radiotherapy=False,
    )
    return replace(base, **changes)


@pytest.fixture
def make_screening() -> Callable[..., Screening]:
    return eligible_screening
