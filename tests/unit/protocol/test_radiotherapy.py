"""Radiotherapy checks (specs/radiotherapy.md §1-3): BED/EQD2 worked values, lesion roles, deviation table rows.

Worked BED/EQD2 values are the spec's table (hand-checked: 2 Gy x 30, α/β 10: 60 x 1.2 = 72, 72 / 1.2 = 60;
30.826203 Gy x (1 + 1.02754/10) = 33.9937). Deviation thresholds are the spec's default table.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from abscopal.domain import DeviationClass, Fraction, FractionStatus, Lesion, RadiotherapyCourse, RtRole
from abscopal.errors import ValidationError
from abscopal.protocol.calendar import WorkingDays
from abscopal.protocol.model import Protocol, load_bundled
from abscopal.protocol.radiotherapy import (
    bed,
    bed_of_doses,
    check_delivery,
    check_lesion_roles,
    check_plan,
    check_prescription,
    confirm_deviation,
    eqd2,
    ldrt_interval_class,
    lesion_doses,
    repopulation_loss,
)

CN = WorkingDays("CN")
MINOR, MAJOR = DeviationClass.MINOR, DeviationClass.MAJOR
RULES = load_bundled().current.radiotherapy


@pytest.mark.parametrize(
    ("d", "n", "ab", "expected_bed", "expected_eqd2"),
    [
        (2.0, 30, 10, 72.0, 60.0),
        (1.8, 25, 3, 72.0, 43.2),
        (2.0, 30, 3, 100.0, 60.0),
        (1.6, 6, 10, 11.136, 9.28),
        (1.02754, 30, 10, 33.9937, 28.3281),  # pydicom rtplan.dcm: 30.826203 Gy in 30 fractions
    ],
)
def test_bed_and_eqd2_equal_the_worked_values(
    d: float, n: int, ab: float, expected_bed: float, expected_eqd2: float
) -> None:
    assert bed(d, n, ab) == pytest.approx(expected_bed, abs=5e-5)
    assert eqd2(d, n, ab) == pytest.approx(expected_eqd2, abs=5e-5)


@given(st.floats(0.5, 10), st.integers(1, 40), st.floats(1, 20))
def test_eqd2_of_two_gray_fractions_is_the_physical_dose(_d: float, n: int, ab: float) -> None:
    assert eqd2(2.0, n, ab) == pytest.approx(2.0 * n)


@given(st.lists(st.floats(0.1, 5), min_size=1, max_size=30), st.floats(1, 20))
def test_bed_of_unequal_fractions_adds_per_fraction(doses: list[float], ab: float) -> None:
    assert bed_of_doses(doses, ab) == pytest.approx(sum(bed(d, 1, ab) for d in doses))


def test_repopulation_subtracts_ln2_times_excess_days_over_alpha_tp() -> None:
    # (42 - 28) x ln 2 / (0.3 x 3) = 10.7823 Gy
    assert repopulation_loss(42, RULES.radiobiology) == pytest.approx(14 * math.log(2) / 0.9)
    assert repopulation_loss(28, RULES.radiobiology) == 0.0


def test_a_non_positive_alpha_beta_is_refused() -> None:
    with pytest.raises(ValidationError, match="alpha_beta"):
        bed(2, 30, 0)


# ----------------------------------------------------------------------------- lesions


def lesion(lid: str, role: RtRole, diameter: float = 20.0, **kw: object) -> Lesion:
    return Lesion("P1", lid, str(kw.pop("organ", "lung")), "site", bool(kw.pop("is_node", False)),
                  bool(kw.pop("measurable", True)), diameter, role, **kw)  # type: ignore[arg-type]  # fmt: skip


def standard_lesions() -> list[Lesion]:
    return [
        lesion("L1", RtRole.CONVENTIONAL, 45.0, is_primary=True),
        lesion("L2", RtRole.LOW_DOSE, 18.0, organ="liver"),
        lesion("L3", RtRole.OBSERVATION, 22.0, organ="bone"),
    ]


def _failed(checks: list, name: str) -> list:  # type: ignore[type-arg]
    return [c for c in checks if c.check == name and not c.ok]


def test_a_standard_lesion_registry_passes_every_role_check() -> None:
    checks = check_lesion_roles(standard_lesions(), RULES, "primary")
    assert [c for c in checks if not c.ok] == []


def test_a_lesion_in_two_roles_is_an_error_naming_it() -> None:
    lesions = [*standard_lesions(), lesion("L2", RtRole.OBSERVATION)]
    with pytest.raises(ValidationError) as info:
        check_lesion_roles(lesions, RULES)
    assert info.value.field == "lesions[3].rt_role"
    assert "L2 is listed as low_dose and as observation" in info.value.reason


def test_a_course_with_another_role_than_its_lesion_is_an_error_naming_it() -> None:
    course = RadiotherapyCourse("P1", "L2", RtRole.CONVENTIONAL, 2.0, 30, dt.date(2024, 3, 4))
    with pytest.raises(ValidationError, match="L2 is low_dose"):
        check_plan("P1", standard_lesions(), [course], [], RULES, CN)


def test_no_observation_lesion_is_a_major_deviation() -> None:
    lesions = standard_lesions()[:2]
    (fail,) = _failed(check_lesion_roles(lesions, RULES), "observation.measurable")
    assert fail.deviation_class is MAJOR


@pytest.mark.parametrize(
    ("diameter", "is_node", "ok"),
    [(10.0, False, True), (9.9, False, False), (15.0, True, True), (14.0, True, False)],
)
def test_the_observation_lesion_must_be_measurable_by_size(diameter: float, is_node: bool, ok: bool) -> None:
    lesions = [*standard_lesions()[:2], lesion("L3", RtRole.OBSERVATION, diameter, is_node=is_node)]
    assert bool(_failed(check_lesion_roles(lesions, RULES), "observation.measurable")) is not ok


def test_an_irradiated_observation_lesion_is_a_major_deviation() -> None:
    (fail,) = _failed(check_lesion_roles(standard_lesions(), RULES, irradiated={"L3"}), "observation.irradiated")
    assert (fail.lesion_id, fail.deviation_class) == ("L3", MAJOR)


@pytest.mark.parametrize(("n_low", "ok"), [(10, True), (11, False)])
def test_more_than_ten_low_dose_lesions_is_a_major_deviation(n_low: int, ok: bool) -> None:
    lesions = [lesion("L1", RtRole.CONVENTIONAL, 45.0, is_primary=True), lesion("O", RtRole.OBSERVATION)]
    lesions += [lesion(f"D{i}", RtRole.LOW_DOSE, 12.0) for i in range(n_low)]
    failed = _failed(check_lesion_roles(lesions, RULES), "low_dose.count")
    assert bool(failed) is not ok
    assert all(c.deviation_class is MAJOR for c in failed)


@pytest.mark.parametrize(
    ("flag", "changes", "ok"),
    [
        ("primary", {"is_primary": True}, True),
        ("primary", {"is_primary": False}, False),
        ("symptomatic", {"is_symptomatic": True}, True),
        ("symptomatic", {}, False),
        ("largest", {"baseline_diameter_mm": 50.0}, True),
        ("largest", {"baseline_diameter_mm": 15.0}, False),  # L3 (22 mm) is larger
        (None, {"is_primary": False, "baseline_diameter_mm": 15.0}, False),
        (None, {"is_primary": False, "is_symptomatic": True}, True),
    ],
)
def test_the_conventional_lesion_is_primary_largest_or_symptomatic_and_the_flag_agrees_with_the_data(
    flag: str | None, changes: dict[str, object], ok: bool
) -> None:
    lesions = standard_lesions()
    lesions[0] = replace(lesions[0], **{"is_primary": False, **changes})  # type: ignore[arg-type]
    failed = _failed(check_lesion_roles(lesions, RULES, flag), "conventional.selection")
    assert bool(failed) is not ok
    assert all(c.deviation_class is MAJOR for c in failed)


def test_more_than_five_organs_with_metastases_exceeds_the_limit() -> None:
    lesions = standard_lesions() + [lesion(f"M{i}", RtRole.NONE, organ=f"organ{i}") for i in range(4)]
    (fail,) = _failed(check_lesion_roles(lesions, RULES), "limits.organs")  # liver, bone + 4 = 6
    assert fail.deviation_class is MAJOR


# ----------------------------------------------------------------------------- prescriptions


def course(role: RtRole, d: float, n: int, lid: str = "L1", start: dt.date = dt.date(2024, 3, 4)) -> RadiotherapyCourse:
    return RadiotherapyCourse("P1", lid, role, d, n, start)


@pytest.mark.parametrize(
    ("d", "n", "ok"),
    [(2.0, 30, True), (1.8, 25, True), (2.0, 20, True), (1.7, 25, False), (2.2, 25, False), (2.0, 19, False),
     (2.0, 31, False), (1.8, 34, False)],
)  # fmt: skip
def test_a_conventional_prescription_outside_1_8_to_2_gy_or_40_to_60_gy_is_always_major(
    d: float, n: int, ok: bool
) -> None:
    (check,) = check_prescription(course(RtRole.CONVENTIONAL, d, n), RULES)
    assert check.ok is ok
    assert check.deviation_class is (None if ok else MAJOR)


@pytest.mark.parametrize(
    ("d", "expected"),
    [(1.6, None), (1.55, None), (1.52, MINOR), (1.68, MINOR), (1.44, MINOR), (1.43, MAJOR), (1.8, MAJOR)],
)
def test_low_dose_dose_per_fraction_is_minor_5_to_10_percent_off_and_major_beyond(
    d: float, expected: DeviationClass | None
) -> None:
    check = next(
        c for c in check_prescription(course(RtRole.LOW_DOSE, d, 5), RULES) if c.check == "ldrt.dose_per_fraction"
    )
    assert check.deviation_class is expected


@pytest.mark.parametrize(("n", "ok"), [(4, True), (6, True), (3, False), (7, False)])
def test_low_dose_fractions_outside_4_to_6_are_always_major(n: int, ok: bool) -> None:
    check = next(c for c in check_prescription(course(RtRole.LOW_DOSE, 1.6, n), RULES) if c.check == "ldrt.fractions")
    assert check.deviation_class is (None if ok else MAJOR)


@pytest.mark.parametrize(
    ("gap", "expected"),
    [(5, None), (7, None), (9, None), (3, MINOR), (4, MINOR), (10, MINOR), (14, MINOR), (2, MAJOR), (15, MAJOR)],
)
def test_low_dose_interval_is_minor_at_3_4_or_10_14_days_and_major_beyond(
    gap: int, expected: DeviationClass | None
) -> None:
    assert ldrt_interval_class(gap, RULES) is expected


# ----------------------------------------------------------------------------- delivery


def working_fractions(
    lid: str, n: int, d: float, start: dt.date = dt.date(2024, 3, 4), skip_after: int | None = None, skip: int = 0
) -> list[Fraction]:
    """n fractions on consecutive Chinese working days from ``start``; ``skip`` working days missed after fraction
    ``skip_after``."""
    out, day = [], CN.on_or_after(start)
    for i in range(1, n + 1):
        out.append(Fraction("P1", lid, i, day, d))
        day = CN.after(day)
        if skip_after == i:
            for _ in range(skip):
                day = CN.after(day)
    return out


@pytest.mark.parametrize(
    ("prescribed_n", "delivered_n", "expected"),
    [
        (30, 30, None),
        (30, 29, None),  # 58 / 60 = 3.3% off
        (20, 19, MINOR),  # 38 / 40 = 5% off
        (30, 27, MINOR),  # 54 / 60 = 10% off
        (30, 26, MAJOR),  # 52 / 60 = 13.3% off
    ],
)
def test_delivered_total_is_minor_5_to_10_percent_off_and_major_beyond(
    prescribed_n: int, delivered_n: int, expected: DeviationClass | None
) -> None:
    checks = check_delivery(
        course(RtRole.CONVENTIONAL, 2.0, prescribed_n), working_fractions("L1", delivered_n, 2.0), RULES, CN
    )
    (total,) = [c for c in checks if c.check == "delivered_total"]
    assert total.deviation_class is expected


@pytest.mark.parametrize(("missed", "expected"), [(0, None), (2, None), (3, MINOR), (5, MINOR), (6, MAJOR)])
def test_unplanned_interruptions_of_3_to_5_working_days_are_minor_and_more_are_major(
    missed: int, expected: DeviationClass | None
) -> None:
    fractions = working_fractions("L1", 25, 1.8, skip_after=10, skip=missed)
    checks = check_delivery(course(RtRole.CONVENTIONAL, 1.8, 25), fractions, RULES, CN)
    (overall,) = [c for c in checks if c.check == "cfrt.overall_time"]
    assert overall.deviation_class is expected, overall.message


def test_the_national_day_holiday_is_not_an_interruption() -> None:
    fractions = working_fractions("L1", 25, 2.0, start=dt.date(2024, 9, 23))
    assert fractions[7].date == dt.date(2024, 10, 8)
    checks = check_delivery(course(RtRole.CONVENTIONAL, 2.0, 25, start=dt.date(2024, 9, 23)), fractions, RULES, CN)
    assert [c for c in checks if not c.ok] == []


def test_a_conventional_fraction_on_a_sunday_is_a_minor_deviation_but_an_adjusted_working_saturday_is_fine() -> None:
    fractions = [
        Fraction("P1", "L1", 1, dt.date(2024, 10, 11), 2.0),
        Fraction("P1", "L1", 2, dt.date(2024, 10, 12), 2.0),  # Saturday worked in exchange for National Day
        Fraction("P1", "L1", 3, dt.date(2024, 10, 13), 2.0),  # ordinary Sunday
    ]
    checks = check_delivery(course(RtRole.CONVENTIONAL, 2.0, 30), fractions, RULES, CN, completed=False)
    failed = [c for c in checks if c.check == "cfrt.working_day"]
    assert [(c.values, c.deviation_class) for c in failed] == [("fraction 3: 2024-10-13 Sunday", MINOR)]


def test_two_conventional_fractions_on_one_day_are_a_major_deviation() -> None:
    fractions = [Fraction("P1", "L1", 1, dt.date(2024, 3, 4), 2.0), Fraction("P1", "L1", 2, dt.date(2024, 3, 4), 2.0)]
    checks = check_delivery(course(RtRole.CONVENTIONAL, 2.0, 30), fractions, RULES, CN, completed=False)
    (fail,) = [c for c in checks if c.check == "cfrt.fractions_per_day"]
    assert fail.deviation_class is MAJOR


def test_low_dose_fractions_ten_days_apart_are_a_minor_deviation() -> None:
    days = [dt.date(2024, 3, 4), dt.date(2024, 3, 11), dt.date(2024, 3, 21), dt.date(2024, 3, 28)]
    fractions = [Fraction("P1", "L2", i + 1, day, 1.6) for i, day in enumerate(days)]
    checks = check_delivery(course(RtRole.LOW_DOSE, 1.6, 4, "L2"), fractions, RULES, CN)
    assert [(c.values, c.deviation_class) for c in checks if not c.ok] == [("2024-03-11 -> 2024-03-21: 10 days", MINOR)]


def test_a_plan_reports_bed_per_lesion_and_proposes_deviations_with_their_values() -> None:
    lesions = standard_lesions()
    courses = [course(RtRole.CONVENTIONAL, 2.0, 30), course(RtRole.LOW_DOSE, 1.6, 6, "L2")]
    fractions = [*working_fractions("L1", 30, 2.0), Fraction("P1", "L3", 1, dt.date(2024, 3, 5), 1.6)]
    report = check_plan("P1", lesions, courses, fractions, RULES, CN, "primary")
    doses = {d.lesion_id: d for d in report.doses}
    assert doses["L1"].prescribed_bed_gy == pytest.approx(72.0)
    assert doses["L1"].prescribed_eqd2_late_gy == pytest.approx(60.0)
    assert doses["L2"].prescribed_bed_gy == pytest.approx(11.136)
    assert doses["L2"].delivered_gy == 0
    (dev,) = report.deviations
    assert (dev.check, dev.lesion_id, dev.deviation_class) == ("observation.irradiated", "L3", MAJOR)
    assert dev.confirmed_by is None
    assert confirm_deviation(dev, "dcp1").confirmed_by == "dcp1"


def test_the_pydicom_sample_plan_as_a_conventional_course_is_a_major_deviation(protocol: Protocol) -> None:
    # rtplan.dcm: 30.826203 Gy in 30 fractions of 1.02754 Gy (spec §4)
    (check,) = check_prescription(course(RtRole.CONVENTIONAL, 1.02754, 30), protocol.radiotherapy)
    assert check.deviation_class is MAJOR


def test_repopulation_is_subtracted_from_tumour_bed_only_when_enabled() -> None:
    rules = RULES.model_copy(
        update={"radiobiology": RULES.radiobiology.model_copy(update={"repopulation_correction": True})}
    )
    fractions = working_fractions("L1", 30, 2.0)  # 4 March - 15 April 2024: 42 days
    (dose,) = lesion_doses([course(RtRole.CONVENTIONAL, 2.0, 30)], fractions, rules, CN)
    assert (fractions[-1].date - fractions[0].date).days == 42
    assert dose.delivered_bed_gy == pytest.approx(72.0 - 14 * math.log(2) / 0.9)
    (plain,) = lesion_doses([course(RtRole.CONVENTIONAL, 2.0, 30)], fractions, RULES, CN)
    assert plain.delivered_bed_gy == pytest.approx(72.0)


def test_missed_fractions_add_no_dose() -> None:
    fractions = working_fractions("L1", 3, 2.0)
    fractions[1] = replace(fractions[1], status=FractionStatus.MISSED)
    (dose,) = lesion_doses([course(RtRole.CONVENTIONAL, 2.0, 30)], fractions, RULES, CN)
    assert dose.delivered_gy == 4.0
