"""Lesions: count and organ limits, radiotherapy roles (radiotherapy.md §1) and RECIST 1.1 targets."""

from __future__ import annotations

import statistics
from collections import Counter

from abscopal.domain import LesionClass, RtRole
from abscopal.protocol.model import Protocol

from .conftest import Subject


def _baseline(s: Subject) -> list:  # type: ignore[type-arg]
    return [x for x in s.lesions if x.lesion_class is not LesionClass.NEW]


def test_every_enrolled_patient_has_2_to_10_lesions_with_a_mean_near_5(enrolled: list[Subject]) -> None:
    counts = [len(_baseline(s)) for s in enrolled]
    assert min(counts) >= 2 and max(counts) <= 10
    assert 4.0 <= statistics.mean(counts) <= 6.5
    assert len(set(counts)) >= 6  # a spread, not one fixed number


def test_screening_counts_agree_with_the_lesions_and_stay_within_the_organ_limit(
    protocol: Protocol, enrolled: list[Subject]
) -> None:
    for s in enrolled:
        lesions = _baseline(s)
        organs = {x.organ for x in lesions if not x.is_primary}
        assert s.screening.lesion_count == len(lesions)
        assert s.screening.metastatic_organ_count == len(organs)
        assert len(organs) <= protocol.radiotherapy.limits.max_metastatic_organs


def test_lesions_span_the_usual_metastatic_sites_of_lung_cancer(enrolled: list[Subject]) -> None:
    organs = Counter(x.organ for s in enrolled for x in _baseline(s))
    assert {"lung", "lymph_node", "liver", "bone", "adrenal"} <= set(organs)
    assert all(x.is_node == (x.organ == "lymph_node") for s in enrolled for x in s.lesions)


def test_measurable_means_10_mm_or_a_node_short_axis_of_15_mm(protocol: Protocol, enrolled: list[Subject]) -> None:
    obs = protocol.radiotherapy.observation
    for s in enrolled:
        for x in _baseline(s):
            d = x.baseline_diameter_mm
            threshold = obs.measurable_node_short_axis_min_mm if x.is_node else obs.measurable_min_mm
            assert x.measurable == (d is not None and d >= threshold)


def test_exactly_one_conventional_lesion_and_its_flag_agrees_with_the_data(enrolled: list[Subject]) -> None:
    reasons = Counter()
    for s in enrolled:
        lesions = _baseline(s)
        conventional = [x for x in lesions if x.rt_role is RtRole.CONVENTIONAL]
        assert len(conventional) == 1
        c = conventional[0]
        largest = all((c.baseline_diameter_mm or 0) > (x.baseline_diameter_mm or 0) for x in lesions if x is not c)
        assert c.is_primary or c.is_symptomatic or largest, s.patient.subject_id
        course = next(k for k in s.courses if k.role is RtRole.CONVENTIONAL)
        reason = (course.plan_label or "").rsplit("(", 1)[-1].rstrip(")")
        assert {"primary": c.is_primary, "symptomatic": c.is_symptomatic, "largest": largest}[reason]
        reasons[reason] += 1
    assert set(reasons) == {"primary", "largest", "symptomatic"}


def test_at_least_one_measurable_observation_lesion_that_is_never_irradiated(enrolled: list[Subject]) -> None:
    for s in enrolled:
        observed = [x for x in _baseline(s) if x.rt_role is RtRole.OBSERVATION]
        assert observed and all(x.measurable for x in observed)
        irradiated = {f.lesion_id for f in s.fractions}
        assert not irradiated & {x.lesion_id for x in observed}


def test_remaining_lesions_are_low_dose_at_most_10_or_untreated(protocol: Protocol, enrolled: list[Subject]) -> None:
    roles = Counter()
    for s in enrolled:
        low = [x for x in _baseline(s) if x.rt_role is RtRole.LOW_DOSE]
        assert len(low) <= protocol.radiotherapy.low_dose.max_lesions
        roles.update(x.rt_role for x in _baseline(s))
    assert roles[RtRole.LOW_DOSE] > roles[RtRole.NONE] > 0


def test_targets_are_measurable_at_most_five_and_two_per_organ(enrolled: list[Subject]) -> None:
    for s in enrolled:
        targets = [x for x in _baseline(s) if x.lesion_class is LesionClass.TARGET]
        assert 1 <= len(targets) <= 5
        assert all(x.measurable for x in targets)
        per_organ = Counter("lymph_node" if x.is_node else x.organ for x in targets)
        assert max(per_organ.values()) <= 2
        others = [x for x in _baseline(s) if x.lesion_class is not LesionClass.TARGET]
        assert all(x.lesion_class is LesionClass.NON_TARGET for x in others)


def test_lesion_ids_are_unique_per_patient(enrolled: list[Subject]) -> None:
    for s in enrolled:
        ids = [x.lesion_id for x in s.lesions]
        assert len(ids) == len(set(ids))
