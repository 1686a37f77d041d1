"""Lesions, RT roles, fractions with automatic deviations, assessments with automatic queries (web.md §4)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from abscopal import domain as d
from abscopal.errors import ConflictError, PermissionDenied, ValidationError
from abscopal.services import assessments, lesions, treatment
from abscopal.services.common import Refused

MONDAY = dt.date(2024, 3, 4)


def test_a_stale_lesion_edit_is_a_conflict(trial: Any) -> None:
    first = trial.act(trial.RADIOLOGIST, lesions.record_lesion, trial.lesion("L1", 30.0))
    trial.act(trial.RADIOLOGIST, lesions.record_lesion, trial.lesion("L1", 32.0), record_id=first.id, version=1)
    with pytest.raises(ConflictError, match="version 1, it is now version 2"):
        trial.act(trial.INVESTIGATOR, lesions.record_lesion, trial.lesion("L1", 29.0), record_id=first.id, version=1)
    assert trial.read().lesions.get(first.id).value.baseline_diameter_mm == 32.0


def test_an_implausible_diameter_is_refused_naming_the_field(trial: Any) -> None:
    with pytest.raises(ValidationError, match="baseline_diameter_mm"):
        trial.act(trial.RADIOLOGIST, lesions.record_lesion, trial.lesion("L1", 1e9))


def test_the_registry_cannot_set_an_rt_role(trial: Any) -> None:
    with pytest.raises(ValidationError, match="rt_role"):
        trial.act(trial.RADIOLOGIST, lesions.record_lesion, trial.lesion("L1", role=d.RtRole.CONVENTIONAL))


def test_two_conventional_lesions_are_refused_naming_the_rule(trial: Any) -> None:
    a = trial.act(trial.RADIOLOGIST, lesions.record_lesion, trial.lesion("L1", 30.0))
    b = trial.act(trial.RADIOLOGIST, lesions.record_lesion, trial.lesion("L2", 25.0, organ="liver"))
    roles = {"L1": d.RtRole.CONVENTIONAL, "L2": d.RtRole.CONVENTIONAL}
    with pytest.raises(Refused) as refused:
        trial.act(trial.RADONC, lesions.assign_rt_roles, "S-001", roles, {"L1": a.version, "L2": b.version})
    assert any(r.startswith("conventional.count") for r in refused.value.reasons)
    assert all(s.value.rt_role is d.RtRole.NONE for s in trial.read().lesions.all())


def test_only_a_radiation_oncologist_assigns_rt_roles(trial: Any) -> None:
    with pytest.raises(PermissionDenied, match="RT role"):
        trial.act(trial.INVESTIGATOR, lesions.assign_rt_roles, "S-001", {}, {})


def _planned(trial: Any) -> None:
    trial.seed(
        trial.lesion("L1", 40.0, d.RtRole.CONVENTIONAL),
        trial.lesion("L2", 20.0, d.RtRole.LOW_DOSE, organ="liver"),
        trial.lesion("L3", 25.0, d.RtRole.OBSERVATION, organ="adrenal"),
        d.RadiotherapyCourse("S-001", "L1", d.RtRole.CONVENTIONAL, 2.0, 25, MONDAY),
    )


def test_a_fraction_above_the_protocol_dose_records_a_major_deviation(enrolled: Any) -> None:
    _planned(enrolled)
    result = enrolled.act(enrolled.RADONC, treatment.record_fraction, d.Fraction("S-001", "L1", 1, MONDAY, 3.0))
    stored = [s.value for s in enrolled.read().deviations.all()]
    assert [(x.check, x.deviation_class) for x in stored] == [
        (d.DeviationCheck.CFRT_DELIVERED_DOSE_PER_FRACTION, d.DeviationClass.MAJOR)
    ]
    assert len(result.deviations) == 1
    assert stored[0].date == MONDAY


def test_a_fraction_at_the_protocol_dose_records_no_deviation(enrolled: Any) -> None:
    _planned(enrolled)
    enrolled.act(enrolled.RADONC, treatment.record_fraction, d.Fraction("S-001", "L1", 1, MONDAY, 2.0))
    assert enrolled.read().deviations.all() == []


def test_a_fraction_before_enrolment_is_refused(trial: Any) -> None:
    _planned(trial)
    with pytest.raises(ValidationError, match="enrolled"):
        trial.act(trial.RADONC, treatment.record_fraction, d.Fraction("S-001", "L1", 1, MONDAY, 2.0))


def _measured(day: dt.date, diameter: float, response: d.InvestigatorResponse | None = None) -> d.TumourAssessment:
    m = d.LesionMeasurement("L1", d.LesionClass.TARGET, "lung", False, diameter)
    return d.TumourAssessment("S-001", day, (m,), response)


def test_an_investigator_response_that_differs_from_the_derived_one_raises_a_query(trial: Any) -> None:
    trial.act(trial.RADIOLOGIST, assessments.record_assessment, _measured(dt.date(2024, 3, 1), 40.0))
    # 40 -> 10 mm is -75 %: iPR by iRECIST (Seymour 2017); the investigator says progression
    result = trial.act(
        trial.INVESTIGATOR,
        assessments.record_assessment,
        _measured(dt.date(2024, 4, 12), 10.0, d.InvestigatorResponse.ICPD),
    )
    assert result.discrepancy is not None and result.discrepancy.derived == "iPR"
    queries = [s.value for s in trial.read().queries.all()]
    assert [(q.entity, q.field, q.record_id, q.status) for q in queries] == [
        ("tumour_assessments", "investigator_response", result.assessment.id, d.QueryStatus.OPEN)
    ]


def test_an_investigator_response_that_agrees_raises_no_query(trial: Any) -> None:
    trial.act(trial.RADIOLOGIST, assessments.record_assessment, _measured(dt.date(2024, 3, 1), 40.0))
    trial.act(
        trial.INVESTIGATOR,
        assessments.record_assessment,
        _measured(dt.date(2024, 4, 12), 10.0, d.InvestigatorResponse.IPR),
    )
    assert trial.read().queries.all() == []


def test_a_radiologist_cannot_record_the_investigator_response(trial: Any) -> None:
    with pytest.raises(PermissionDenied, match="investigator response"):
        trial.act(
            trial.RADIOLOGIST,
            assessments.record_assessment,
            _measured(dt.date(2024, 3, 1), 40.0, d.InvestigatorResponse.SD),
        )


def _two_conventional(trial: Any) -> Any:
    """A registry that already breaks a role rule (two conventional lesions: radiotherapy.md §1), as imported."""
    trial.seed(
        trial.lesion("L1", 40.0, d.RtRole.CONVENTIONAL),
        trial.lesion("L2", 20.0, d.RtRole.CONVENTIONAL, organ="liver"),
        trial.lesion("L3", 25.0, d.RtRole.OBSERVATION, organ="adrenal"),
    )
    return next(s for s in trial.read().lesions.all() if s.value.lesion_id == "L3")


def test_a_registry_that_already_breaks_a_rule_can_still_have_a_typo_corrected(trial: Any) -> None:
    stored = _two_conventional(trial)
    fixed = dataclasses.replace(stored.value, location="left adrenal gland")
    result = trial.act(trial.RADIOLOGIST, lesions.record_lesion, fixed, record_id=stored.id, version=stored.version)
    assert result.value.location == "left adrenal gland"


def test_a_change_that_breaks_a_further_rule_is_still_refused(trial: Any) -> None:
    stored = _two_conventional(trial)
    unmeasurable = dataclasses.replace(stored.value, measurable=False)
    with pytest.raises(Refused) as refused:
        trial.act(trial.RADIOLOGIST, lesions.record_lesion, unmeasurable, record_id=stored.id, version=stored.version)
    assert not any(r.startswith("conventional.count") for r in refused.value.reasons)  # the old break is not news
