"""Change from baseline, deterioration (>= 10 points inclusive, Osoba 1998) and time to deterioration (ae-qol.md D2).

Times are hand-counted days between the dates written in each test; months = days / 30.4375 (QoLR).
"""

from __future__ import annotations

import datetime as dt

import pytest

from abscopal.errors import ValidationError
from abscopal.protocol.model import load_bundled
from abscopal.qol.change import (
    PatientAssessments,
    QolAssessment,
    TtdSpec,
    change_from_baseline,
    classify_change,
    is_deterioration,
    time_to_deterioration,
)
from abscopal.qol.eortc import ScaleKind

F, G, S = ScaleKind.FUNCTIONAL, ScaleKind.GLOBAL, ScaleKind.SYMPTOM
ENROL = dt.date(2024, 1, 1)
BASE = dt.date(2023, 12, 30)  # before the origin: the baseline by default
D42, D84, D126 = dt.date(2024, 2, 12), dt.date(2024, 3, 25), dt.date(2024, 5, 6)  # 42, 84, 126 days after ENROL


def patient(scale: str, values: list[float | None], **kwargs: object) -> PatientAssessments:
    """Baseline then follow-ups at days 42, 84 and 126 for one scale."""
    dates = [BASE, D42, D84, D126][: len(values)]
    return PatientAssessments(
        "P1",
        tuple(QolAssessment(d, {scale: v}) for d, v in zip(dates, values, strict=True)),
        ENROL,
        **kwargs,  # type: ignore[arg-type]
    )


def spec(*scales: str, **kwargs: object) -> TtdSpec:
    return TtdSpec(scales=scales, unit="days", **kwargs)  # type: ignore[arg-type]


def test_change_from_baseline_is_score_minus_baseline():
    assert change_from_baseline(60.0, 75.0) == -15.0


def test_change_from_baseline_is_missing_when_either_score_is_missing():
    assert change_from_baseline(None, 75.0) is None
    assert change_from_baseline(60.0, None) is None


@pytest.mark.parametrize(
    ("kind", "reference", "score", "deteriorated"),
    [
        (F, 80.0, 70.0, True),  # functional fall of exactly 10: inclusive
        (F, 80.0, 70.5, False),
        (F, 70.0, 80.0, False),  # a rise is an improvement
        (G, 75.0, 65.0, True),
        (S, 20.0, 30.0, True),  # symptom rise of exactly 10
        (S, 30.0, 20.0, False),
        (S, 0.0, 100 / 3, True),  # one step of a single item
    ],
)
def test_deterioration_direction_follows_the_scale_type(kind, reference, score, deteriorated):
    assert is_deterioration(kind, reference, score, 10.0) is deteriorated


def test_a_change_of_ten_points_up_to_floating_point_noise_counts_as_deterioration():
    assert 38.0 - 0.28 * 100 < 10  # 9.999999999999996 in binary floating point
    assert is_deterioration(F, 38.0, 0.28 * 100, 10.0)


def test_the_threshold_is_configurable():
    assert not is_deterioration(F, 80.0, 72.0, 10.0)
    assert is_deterioration(F, 80.0, 72.0, 5.0)


@pytest.mark.parametrize(
    ("kind", "baseline", "score", "category"),
    [(F, 50, 60, "improved"), (F, 50, 40, "worsened"), (F, 50, 55, "stable"), (S, 50, 40, "improved")],
)
def test_responder_category_is_improved_stable_or_worsened(kind, baseline, score, category):
    assert classify_change(kind, baseline, score) == category


def test_unconfirmed_ttd_is_the_first_ten_point_deterioration_from_baseline():
    # QL2 75 -> 70 (5) -> 60 (15: event at day 84)
    result = time_to_deterioration(patient("QL2", [75, 70, 60, 58]), spec("QL2"))
    assert (result.event, result.date, result.time, result.scale) == (True, D84, 84, "QL2")


def test_ttd_in_months_divides_days_by_30_4375():
    result = time_to_deterioration(patient("QL2", [75, 70, 60]), TtdSpec(scales=("QL2",), unit="months"))
    assert result.time == pytest.approx(84 / 30.4375)


def test_without_deterioration_the_patient_is_censored_at_the_last_assessment():
    result = time_to_deterioration(patient("QL2", [75, 70, 72, 68]), spec("QL2"))
    assert (result.event, result.date, result.time) == (False, D126, 126)


def test_confirmation_at_the_next_assessment_ignores_an_isolated_drop():
    # 75 -> 60 (15, day 42) -> 72 (3) -> 55 (20, day 126, last: nothing to confirm it)
    result = time_to_deterioration(patient("QL2", [75, 60, 72, 55]), spec("QL2", confirmation="next"))
    assert (result.event, result.time) == (False, 126)


def test_confirmation_at_the_next_assessment_dates_the_event_at_the_first_of_the_two():
    result = time_to_deterioration(patient("QL2", [75, 60, 64, 70]), spec("QL2", confirmation="next"))
    assert (result.event, result.date, result.time) == (True, D42, 42)


def test_definitive_deterioration_needs_every_later_assessment_deteriorated():
    # drop at 42 is followed by 72 (not deteriorated); drop at 126 is the last assessment: definitive
    result = time_to_deterioration(patient("QL2", [75, 60, 72, 55]), spec("QL2", confirmation="definitive"))
    assert (result.event, result.date, result.time) == (True, D126, 126)


def test_reference_previous_compares_with_the_previous_assessment():
    # 75 -> 68 (7 vs previous) -> 60 (8 vs previous): no event, although 15 below baseline
    assert not time_to_deterioration(patient("QL2", [75, 68, 60]), spec("QL2", reference="previous")).event
    assert time_to_deterioration(patient("QL2", [75, 68, 60]), spec("QL2")).event


def test_reference_best_previous_uses_the_lowest_earlier_symptom_score():
    # fatigue 100/3 -> 0/... : baseline 33.3, then 22.2 (better), then 33.3: 11.1 worse than the best previous
    values = [100 / 3, 200 / 9, 100 / 3]
    result = time_to_deterioration(patient("FA", values), spec("FA", reference="best_previous"))
    assert (result.event, result.time) == (True, 84)
    assert not time_to_deterioration(patient("FA", values), spec("FA")).event


def test_a_composite_event_is_the_first_qualifying_deterioration_of_any_member():
    # KEYNOTE-024 style: cough, chest pain, dyspnoea; confirmed at the next assessment
    p = PatientAssessments(
        "P1",
        (
            QolAssessment(BASE, {"LCCO": 0.0, "LCPC": 0.0, "LCDY": 100 / 9}),
            QolAssessment(D42, {"LCCO": 100 / 3, "LCPC": 0.0, "LCDY": 100 / 9}),  # cough up, not confirmed
            QolAssessment(D84, {"LCCO": 0.0, "LCPC": 100 / 3, "LCDY": 100 / 9}),  # chest pain up ...
            QolAssessment(D126, {"LCCO": 0.0, "LCPC": 100 / 3, "LCDY": 100 / 9}),  # ... confirmed
        ),
        ENROL,
    )
    result = time_to_deterioration(p, spec("LCCO", "LCPC", "LCDY", confirmation="next"))
    assert (result.event, result.date, result.scale) == (True, D84, "LCPC")


def test_a_missing_follow_up_score_is_skipped_not_counted():
    result = time_to_deterioration(patient("QL2", [75, None, 60]), spec("QL2", confirmation="next"))
    assert (result.event, result.time) == (False, 84)


@pytest.mark.parametrize(
    ("rule", "event", "time", "excluded"),
    [("censor_day0", False, 0, False), ("event", True, 0, False), ("exclude", False, None, True)],
)
def test_missing_baseline_follows_the_chosen_rule(rule, event, time, excluded):
    result = time_to_deterioration(patient("QL2", [None, 60, 50]), spec("QL2", missing_baseline=rule))
    assert (result.event, result.time, result.excluded) == (event, time, excluded)


@pytest.mark.parametrize(("rule", "event"), [("censor_day1", False), ("event", True)])
def test_no_follow_up_is_day_one(rule, event):
    result = time_to_deterioration(patient("QL2", [75]), spec("QL2", no_follow_up=rule))
    assert (result.event, result.time) == (event, 1)


def test_death_is_ignored_by_default():
    result = time_to_deterioration(patient("QL2", [75, 70], death_date=dt.date(2024, 3, 1)), spec("QL2"))
    assert (result.event, result.time) == (False, 42)


def test_death_counts_as_an_event_when_the_spec_says_so():
    result = time_to_deterioration(patient("QL2", [75, 70], death_date=dt.date(2024, 3, 1)), spec("QL2", death="event"))
    assert (result.event, result.date, result.time) == (True, dt.date(2024, 3, 1), 60)


@pytest.mark.parametrize(("death", "event"), [(dt.date(2024, 5, 12), True), (dt.date(2024, 5, 13), False)])
def test_death_within_n_days_of_the_last_assessment_is_an_event(death, event):
    # last assessment day 42 (2024-02-12); 2024-05-12 is 90 days later (inclusive), 2024-05-13 is 91
    result = time_to_deterioration(
        patient("QL2", [75, 70], death_date=death), spec("QL2", death="event_within", death_window_days=90)
    )
    assert result.event is event


def test_time_can_run_from_the_first_rt_fraction():
    p = patient("QL2", [75, 60], first_rt_date=dt.date(2024, 1, 10))
    assert time_to_deterioration(p, spec("QL2", origin="first_rt_fraction")).time == 33


def test_a_marked_baseline_wins_over_the_date_rule():
    p = PatientAssessments(
        "P1",
        (
            QolAssessment(BASE, {"QL2": 90.0}),
            QolAssessment(dt.date(2024, 1, 5), {"QL2": 70.0}, is_baseline=True),
            QolAssessment(D42, {"QL2": 65.0}),
        ),
        ENROL,
    )
    assert not time_to_deterioration(p, spec("QL2")).event


def test_spec_from_protocol_options_uses_the_qol_section():
    options = load_bundled().current.qol
    s = TtdSpec.from_options(["PF2"], options)
    assert (s.threshold, s.reference, s.confirmation, s.unit) == (10.0, "baseline", "none", "months")
    assert "at least 10 points" in s.describe()


def test_a_spec_with_an_unknown_scale_is_refused():
    with pytest.raises(ValidationError):
        TtdSpec(scales=("XX",))
