"""Eligibility of NCT05906329: each criterion on both sides of its threshold and with its datum missing.

Thresholds are the registry's (ClinicalTrials.gov NCT05906329, criteria as processed 2024-11-12), encoded in
protocols/nct05906329.toml. Expected statuses are read off the registry text by hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from abscopal.domain import DietLevel, Histology, LabValue, Screening
from abscopal.errors import ProtocolError, ValidationError
from abscopal.protocol.eligibility import Status, Verdict, as_dict, evaluate, screening_log
from abscopal.protocol.model import Protocol, bundled_protocol_path, parse_protocol

MET, NOT_MET, UNKNOWN = Status.MET, Status.NOT_MET, Status.UNKNOWN


def _labs(**changes: LabValue | None) -> dict[str, LabValue]:
    labs = {
        "haemoglobin": LabValue(120, "g/L"),
        "wbc": LabValue(6.0, "x10^9/L"),
        "neutrophils": LabValue(3.0, "x10^9/L"),
        "platelets": LabValue(200, "x10^9/L"),
        "ast": LabValue(30, "U/L", 40),
        "alt": LabValue(30, "U/L", 40),
        "alp": LabValue(100, "U/L", 120),
    }
    for name, value in changes.items():
        if value is None:
            del labs[name]
        else:
            labs[name] = value
    return labs


# (criterion, changes to the eligible screening, expected status of that criterion)
CASES: list[tuple[str, dict[str, Any], Status]] = [
    # IN1 informed consent: recorded -> met, not recorded -> unknown
    ("IN1", {"consent_date": dt.date(2024, 2, 28)}, MET),
    ("IN1", {"consent_date": None}, UNKNOWN),
    # IN2 age 18-65 inclusive
    ("IN2", {"age_years": 18}, MET),
    ("IN2", {"age_years": 17}, NOT_MET),
    ("IN2", {"age_years": 65}, MET),
    ("IN2", {"age_years": 66}, NOT_MET),
    ("IN2", {"age_years": None}, UNKNOWN),
    # IN3 ECOG 0-1 and life expectancy > 6 months (strict)
    ("IN3", {"ecog": 0}, MET),
    ("IN3", {"ecog": 2}, NOT_MET),
    ("IN3", {"ecog": None}, UNKNOWN),
    ("IN3", {"life_expectancy_months": 6.5}, MET),
    ("IN3", {"life_expectancy_months": 6}, NOT_MET),
    ("IN3", {"life_expectancy_months": None}, UNKNOWN),
    # IN4 at least a liquid diet
    ("IN4", {"diet": DietLevel.LIQUID}, MET),
    ("IN4", {"diet": DietLevel.NONE}, NOT_MET),
    ("IN4", {"diet": None}, UNKNOWN),
    # IN5 no severe allergy
    ("IN5", {"severe_allergy_history": False}, MET),
    ("IN5", {"severe_allergy_history": True}, NOT_MET),
    ("IN5", {"severe_allergy_history": None}, UNKNOWN),
    # IN6 haemoglobin >= 100 g/L (= 10 g/dL)
    ("IN6", {"labs": _labs(haemoglobin=LabValue(100, "g/L"))}, MET),
    ("IN6", {"labs": _labs(haemoglobin=LabValue(99, "g/L"))}, NOT_MET),
    ("IN6", {"labs": _labs(haemoglobin=LabValue(10.0, "g/dL"))}, MET),
    ("IN6", {"labs": _labs(haemoglobin=LabValue(9.9, "g/dL"))}, NOT_MET),
    ("IN6", {"labs": _labs(haemoglobin=None)}, UNKNOWN),
    # WBC >= 3.5 x10^9/L (= 3500 cells/uL)
    ("IN6", {"labs": _labs(wbc=LabValue(3.5, "x10^9/L"))}, MET),
    ("IN6", {"labs": _labs(wbc=LabValue(3.4, "x10^9/L"))}, NOT_MET),
    ("IN6", {"labs": _labs(wbc=LabValue(3500, "cells/uL"))}, MET),
    ("IN6", {"labs": _labs(wbc=LabValue(3499, "/mm3"))}, NOT_MET),
    ("IN6", {"labs": _labs(wbc=None)}, UNKNOWN),
    # neutrophils >= 1.8 x10^9/L
    ("IN6", {"labs": _labs(neutrophils=LabValue(1.8, "x10^9/L"))}, MET),
    ("IN6", {"labs": _labs(neutrophils=LabValue(1.79, "x10^9/L"))}, NOT_MET),
    ("IN6", {"labs": _labs(neutrophils=LabValue(1800, "cells/mm3"))}, MET),
    ("IN6", {"labs": _labs(neutrophils=None)}, UNKNOWN),
    # platelets >= 10 x10^9/L as registered (see the note in the protocol file)
    ("IN6", {"labs": _labs(platelets=LabValue(10, "x10^9/L"))}, MET),
    ("IN6", {"labs": _labs(platelets=LabValue(9, "x10^9/L"))}, NOT_MET),
    ("IN6", {"labs": _labs(platelets=None)}, UNKNOWN),
    # AST, ALT, ALP <= 2.5 x ULN: with ULN 40 U/L the limit is 100 U/L
    ("IN6", {"labs": _labs(ast=LabValue(100, "U/L", 40))}, MET),
    ("IN6", {"labs": _labs(ast=LabValue(101, "U/L", 40))}, NOT_MET),
    ("IN6", {"labs": _labs(ast=None)}, UNKNOWN),
    ("IN6", {"labs": _labs(ast=LabValue(30, "U/L", None))}, UNKNOWN),
    ("IN6", {"labs": _labs(alt=LabValue(100, "U/L", 40))}, MET),
    ("IN6", {"labs": _labs(alt=LabValue(100.5, "U/L", 40))}, NOT_MET),
    ("IN6", {"labs": _labs(alt=None)}, UNKNOWN),
    ("IN6", {"labs": _labs(alp=LabValue(300, "U/L", 120))}, MET),
    ("IN6", {"labs": _labs(alp=LabValue(301, "U/L", 120))}, NOT_MET),
    ("IN6", {"labs": _labs(alp=None)}, UNKNOWN),
    # IN7 one of five NSCLC histologies, confirmed by cytology or histology
    ("IN7", {"histology": Histology.SARCOMATOID}, MET),
    ("IN7", {"histology": Histology.SMALL_CELL}, NOT_MET),
    ("IN7", {"histology": None}, UNKNOWN),
    ("IN7", {"histology_confirmed_by": "cytology"}, MET),
    ("IN7", {"histology_confirmed_by": "clinical"}, NOT_MET),
    ("IN7", {"histology_confirmed_by": None}, UNKNOWN),
    # IN9 <= 10 lesions and <= 5 organs with metastases
    ("IN9", {"lesion_count": 10}, MET),
    ("IN9", {"lesion_count": 11}, NOT_MET),
    ("IN9", {"lesion_count": None}, UNKNOWN),
    ("IN9", {"metastatic_organ_count": 5}, MET),
    ("IN9", {"metastatic_organ_count": 6}, NOT_MET),
    ("IN9", {"metastatic_organ_count": None}, UNKNOWN),
    # IN10 adjudicated resistance and no standard option
    ("IN10", {"immunotherapy_resistance_confirmed": False}, NOT_MET),
    ("IN10", {"immunotherapy_resistance_confirmed": None}, UNKNOWN),
    ("IN10", {"no_standard_treatment_option": False}, NOT_MET),
    ("IN10", {"no_standard_treatment_option": None}, UNKNOWN),
    ("IN10", {}, MET),
    # IN11 measurable disease
    ("IN11", {"has_measurable_disease": True}, MET),
    ("IN11", {"has_measurable_disease": False}, NOT_MET),
    ("IN11", {"has_measurable_disease": None}, UNKNOWN),
]

EXCLUSION_FIELDS = {
    "EX2": "refuses_cooperation",
    "EX3": "other_trial_within_3_months",
    "EX4": "brain_metastases",
    "EX5": "investigator_judges_unsuitable",
    "EX6": "severe_infection",
    "EX7": "serious_comorbidity",
    "EX8": "prior_immune_related_toxicity",
    "EX9": "prior_radiotherapy",
}
for _cid, _field in EXCLUSION_FIELDS.items():
    CASES += [(_cid, {_field: True}, MET), (_cid, {_field: False}, NOT_MET), (_cid, {_field: None}, UNKNOWN)]


def _case_id(case: tuple[str, dict[str, Any], Status]) -> str:
    cid, changes, status = case
    shown = ",".join(f"{k}={v}" if k != "labs" else "labs" for k, v in changes.items())
    return f"{cid}-{shown}-{status.value}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_each_criterion_is_met_not_met_or_unknown_on_its_side_of_the_threshold(
    case: tuple[str, dict[str, Any], Status], protocol: Protocol, make_screening: Callable[..., Screening]
) -> None:
    cid, changes, expected = case
    checklist = evaluate(make_screening(**changes), protocol.eligibility)
    assert checklist.result(cid).status is expected, checklist.result(cid).reason


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_the_verdict_follows_the_criterion(
    case: tuple[str, dict[str, Any], Status], protocol: Protocol, make_screening: Callable[..., Screening]
) -> None:
    cid, changes, status = case
    verdict = evaluate(make_screening(**changes), protocol.eligibility).verdict
    excluding = (status is NOT_MET) if cid.startswith("IN") else (status is MET)
    expected = Verdict.INELIGIBLE if excluding else Verdict.INCOMPLETE if status is UNKNOWN else Verdict.ELIGIBLE
    assert verdict is expected


def test_a_complete_eligible_screening_meets_every_inclusion_and_no_exclusion(
    protocol: Protocol, make_screening: Callable[..., Screening]
) -> None:
    checklist = evaluate(make_screening(), protocol.eligibility)
    assert checklist.verdict is Verdict.ELIGIBLE
    assert all(r.status is MET for r in checklist.results if r.section == "inclusion")
    assert all(r.status is NOT_MET for r in checklist.results if r.section == "exclusion")


def test_complete_data_and_missing_key_information_follow_the_unknowns_of_other_criteria(
    protocol: Protocol, make_screening: Callable[..., Screening]
) -> None:
    checklist = evaluate(make_screening(ecog=None, prior_radiotherapy=None), protocol.eligibility)
    assert checklist.result("IN8").status is NOT_MET
    assert checklist.result("EX1").status is MET
    assert checklist.result("IN8").reason == "Clinical data missing for IN3, EX9: not met"
    assert checklist.verdict is Verdict.INCOMPLETE


def test_complete_data_is_met_when_nothing_is_unknown(
    protocol: Protocol, make_screening: Callable[..., Screening]
) -> None:
    checklist = evaluate(make_screening(), protocol.eligibility)
    assert checklist.result("IN8").status is MET
    assert checklist.result("EX1").status is NOT_MET


def test_a_failed_criterion_makes_the_patient_ineligible_even_with_missing_data(
    protocol: Protocol, make_screening: Callable[..., Screening]
) -> None:
    checklist = evaluate(make_screening(age_years=70, ecog=None), protocol.eligibility)
    assert checklist.verdict is Verdict.INELIGIBLE
    assert "IN2" in checklist.failed


def test_the_neutrophil_sentence_states_value_threshold_and_outcome(
    protocol: Protocol, make_screening: Callable[..., Screening]
) -> None:
    checklist = evaluate(make_screening(labs=_labs(neutrophils=LabValue(1.5, "x10^9/L"))), protocol.eligibility)
    sentences = {c.name: c.sentence for c in checklist.result("IN6").checks}
    assert sentences["neutrophils"] == "Neutrophils 1.5 x10^9/L < 1.8 x10^9/L"
    assert checklist.result("IN6").reason == "Neutrophils 1.5 x10^9/L < 1.8 x10^9/L: not met"


def test_a_met_criterion_gives_every_check_and_an_unknown_one_gives_the_missing_data(
    protocol: Protocol, make_screening: Callable[..., Screening]
) -> None:
    met = evaluate(make_screening(ecog=0, life_expectancy_months=12), protocol.eligibility).result("IN3")
    assert met.reason == "ECOG performance status 0 in 0-1; Life expectancy 12 months > 6 months: met"
    unknown = evaluate(make_screening(ecog=None), protocol.eligibility).result("IN3")
    assert unknown.reason == "ECOG performance status not recorded: unknown (data missing)"


def test_a_converted_lab_shows_the_value_as_written_and_in_the_protocol_unit(
    protocol: Protocol, make_screening: Callable[..., Screening]
) -> None:
    checklist = evaluate(make_screening(labs=_labs(haemoglobin=LabValue(9.5, "g/dL"))), protocol.eligibility)
    sentences = {c.name: c.sentence for c in checklist.result("IN6").checks}
    assert sentences["haemoglobin"] == "Haemoglobin 9.5 g/dL (= 95 g/L) < 100 g/L"


def test_an_unknown_lab_unit_is_a_validation_error_naming_the_lab(
    protocol: Protocol, make_screening: Callable[..., Screening]
) -> None:
    with pytest.raises(ValidationError) as info:
        evaluate(make_screening(labs=_labs(neutrophils=LabValue(1.5, "mg"))), protocol.eligibility)
    assert info.value.field == "labs.neutrophils.unit"
    assert "'mg'" in str(info.value)


def test_an_unknown_diet_level_is_a_validation_error_naming_the_field(
    protocol: Protocol, make_screening: Callable[..., Screening]
) -> None:
    with pytest.raises(ValidationError, match="diet"):
        evaluate(make_screening(diet="tube_feeding"), protocol.eligibility)


def test_an_amendment_to_the_platelet_threshold_changes_the_outcome(make_screening: Callable[..., Screening]) -> None:
    text = bundled_protocol_path().read_text(encoding="utf-8") + (
        '\n[[amendments]]\nversion = "1.1"\neffective_date = 2023-06-01\ndescription = "platelets 100"\n'
        '[amendments.set]\n"eligibility.inclusion.IN6.checks.platelets.min" = 100\n'
    )
    pf = parse_protocol(text)
    screening = make_screening(labs=_labs(platelets=LabValue(80, "x10^9/L")))
    assert evaluate(screening, pf.version("1.0").eligibility).result("IN6").status is MET
    assert evaluate(screening, pf.version("1.1").eligibility).result("IN6").status is NOT_MET


def test_the_screening_log_counts_each_excluding_criterion_once_per_patient(
    protocol: Protocol, make_screening: Callable[..., Screening]
) -> None:
    checklists = [
        evaluate(make_screening(), protocol.eligibility),
        evaluate(make_screening(age_years=70, brain_metastases=True), protocol.eligibility),
        evaluate(make_screening(brain_metastases=True), protocol.eligibility),
        evaluate(make_screening(ecog=None), protocol.eligibility),
    ]
    log = screening_log(checklists).as_dict()
    assert log["screened"] == 4
    assert (log["eligible"], log["ineligible"], log["incomplete"]) == (1, 2, 1)
    assert log["reasons"] == {"EX1": 1, "EX4": 2, "IN2": 1, "IN8": 1}
    assert log["unknown"] == {"IN3": 1}


def test_the_json_view_lists_every_criterion_in_protocol_order(
    protocol: Protocol, make_screening: Callable[..., Screening]
) -> None:
    data = as_dict(evaluate(make_screening(), protocol.eligibility))
    ids = [c["id"] for c in data["criteria"]]
    assert ids == [*protocol.eligibility.inclusion, *protocol.eligibility.exclusion]
    assert len(ids) == 20


def test_a_protocol_check_on_a_field_the_screening_does_not_have_is_a_protocol_error(
    make_screening: Callable[..., Screening],
) -> None:
    text = bundled_protocol_path().read_text(encoding="utf-8").replace('field = "ecog"', 'field = "ecgo"')
    with pytest.raises(ProtocolError, match=r"eligibility\.inclusion\.IN3\.checks\.ecog\.field: 'ecgo'"):
        evaluate(make_screening(), parse_protocol(text).current.eligibility)
