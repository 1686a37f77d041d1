"""The one definition of what was given: delivered fractions and the first study treatment (hand-made records).

Rules: a fraction is delivered unless it was missed (partial counts, docs/radiotherapy.md); the first study
treatment is the earliest delivered RT fraction or immunotherapy cycle given on or after enrolment (ae-qol.md A4,
response-rules.md §4 and §6).
"""

from __future__ import annotations

import datetime as dt

from abscopal import domain as d
from abscopal.protocol.radiotherapy import (
    delivered_dose_gy,
    delivered_fractions,
    first_rt_fraction,
    first_study_treatment,
    irradiated_lesions,
    is_delivered,
    is_fully_delivered,
    study_treatment_dates,
)

JAN = [dt.date(2024, 1, day) for day in range(1, 32)]


def fraction(
    day: int, status: d.FractionStatus = d.FractionStatus.DELIVERED, dose: float = 2.0, lesion: str = "L1"
) -> d.Fraction:
    return d.Fraction("S1", lesion, day, JAN[day - 1], dose, status)


def cycle(day: int, given: bool = True) -> d.ImmunotherapyCycle:
    return d.ImmunotherapyCycle("S1", day, JAN[day - 1], "toripalimab", given=given)


def test_a_fraction_given_in_full_is_delivered():
    assert is_delivered(fraction(1))


def test_a_partial_fraction_is_delivered():
    assert is_delivered(fraction(1, d.FractionStatus.PARTIAL))


def test_a_missed_fraction_is_not_delivered():
    assert not is_delivered(fraction(1, d.FractionStatus.MISSED))


def test_a_partial_fraction_is_not_fully_delivered():
    assert not is_fully_delivered(fraction(1, d.FractionStatus.PARTIAL))


def test_delivered_fractions_keep_their_order_and_drop_the_missed_one():
    records = [fraction(3), fraction(1, d.FractionStatus.MISSED), fraction(2, d.FractionStatus.PARTIAL)]
    assert [f.fraction_number for f in delivered_fractions(records)] == [3, 2]


def test_delivered_dose_adds_delivered_and_partial_doses_only():
    # 2.0 + 1.2 (partial); the missed fraction's recorded 2.0 Gy was not given
    records = [fraction(1), fraction(2, d.FractionStatus.PARTIAL, 1.2), fraction(3, d.FractionStatus.MISSED)]
    assert delivered_dose_gy(records) == 3.2


def test_a_lesion_with_only_zero_dose_fractions_is_not_irradiated():
    records = [fraction(1, lesion="L1"), fraction(2, dose=0.0, lesion="L2")]
    assert irradiated_lesions(records) == {"L1"}


def test_first_rt_fraction_skips_a_missed_first_fraction():
    assert first_rt_fraction([fraction(2), fraction(1, d.FractionStatus.MISSED)]) == JAN[1]


def test_no_delivered_fraction_has_no_first_rt_fraction():
    assert first_rt_fraction([fraction(1, d.FractionStatus.MISSED)]) is None


def test_first_study_treatment_is_an_earlier_immunotherapy_cycle():
    assert first_study_treatment([fraction(5)], [cycle(3)]) == JAN[2]


def test_first_study_treatment_is_an_earlier_rt_fraction():
    assert first_study_treatment([fraction(2)], [cycle(3)]) == JAN[1]


def test_a_cycle_not_given_is_not_the_first_study_treatment():
    assert first_study_treatment([fraction(5)], [cycle(3, given=False)]) == JAN[4]


def test_a_cycle_before_enrolment_is_prior_therapy_not_study_treatment():
    assert first_study_treatment([fraction(5)], [cycle(1)], enrolment_date=JAN[2]) == JAN[4]


def test_immunotherapy_alone_is_a_study_treatment():
    assert first_study_treatment([], [cycle(4)]) == JAN[3]


def test_nothing_given_has_no_first_study_treatment():
    assert first_study_treatment([fraction(1, d.FractionStatus.MISSED)], [cycle(2, given=False)]) is None


def test_study_treatment_dates_are_sorted_and_count_every_dose():
    dates = study_treatment_dates([fraction(4), fraction(2)], [cycle(3), cycle(2)])
    assert dates == [JAN[1], JAN[1], JAN[2], JAN[3]]
