"""Radiotherapy: prescriptions inside the protocol, working-day CFRT, weekly LDRT, deviations per the spec table."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter, defaultdict

import holidays
import pytest

from abscopal.domain import DeviationClass, FractionStatus, RtRole
from abscopal.protocol.model import Protocol
from abscopal.protocol.radiotherapy import cfrt_interruption_class as interruption_class
from abscopal.protocol.radiotherapy import delivered_total_class as total_class
from abscopal.protocol.radiotherapy import ldrt_interval_class

from .conftest import Subject

MINOR, MAJOR = DeviationClass.MINOR, DeviationClass.MAJOR


# radiotherapy.md §2 table: delivered total vs prescribed: 5-10% off minor, > 10% major
@pytest.mark.parametrize(
    ("prescribed", "delivered", "expected"),
    [
        (60, 60, None),
        (60, 58, None),
        (60, 57, MINOR),
        (60, 56, MINOR),
        (60, 54, MINOR),
        (60, 53.8, MAJOR),
        (40, 38, MINOR),
    ],
)
def test_delivered_total_classes_follow_the_spec_table(
    protocol: Protocol, prescribed: float, delivered: float, expected: DeviationClass | None
) -> None:
    assert total_class(prescribed, delivered, protocol.radiotherapy.deviations) == expected


# LDRT interval: 5-9 days acceptable (window), 3-4 or 10-14 minor, < 3 or > 14 major
@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (7, None),
        (5, None),
        (9, None),
        (4, MINOR),
        (3, MINOR),
        (10, MINOR),
        (11, MINOR),
        (14, MINOR),
        (2, MAJOR),
        (15, MAJOR),
    ],
)
def test_ldrt_interval_classes_follow_the_spec_table(
    protocol: Protocol, days: int, expected: DeviationClass | None
) -> None:
    rt = protocol.radiotherapy
    assert ldrt_interval_class(days, rt) == expected


# CFRT unplanned prolongation: 3-5 working days minor, > 5 major
@pytest.mark.parametrize(("extra", "expected"), [(0, None), (2, None), (3, MINOR), (5, MINOR), (6, MAJOR)])
def test_cfrt_interruption_classes_follow_the_spec_table(
    protocol: Protocol, extra: int, expected: DeviationClass | None
) -> None:
    assert interruption_class(extra, protocol.radiotherapy.deviations) == expected


def test_every_cfrt_prescription_is_inside_the_protocol_ranges(protocol: Protocol, enrolled: list[Subject]) -> None:
    c = protocol.radiotherapy.conventional
    schedules = Counter()
    for s in enrolled:
        course = next(k for k in s.courses if k.role is RtRole.CONVENTIONAL)
        assert c.dose_per_fraction_gy.contains(course.dose_per_fraction_gy)
        assert c.total_dose_gy.contains(round(course.total_dose_gy, 6))
        assert c.fractions.contains(course.fractions)
        schedules[(course.dose_per_fraction_gy, course.fractions)] += 1
    assert schedules[(2.0, 30)] > 0 and len(schedules) >= 4


def test_cfrt_fractions_fall_on_chinese_working_days_at_most_one_a_day(enrolled: list[Subject]) -> None:
    cn = holidays.country_holidays("CN", years=range(2022, 2026))
    for s in enrolled:
        conv = {x.lesion_id for x in s.lesions if x.rt_role is RtRole.CONVENTIONAL}
        days = [f.date for f in s.fractions if f.lesion_id in conv]
        assert all(cn.is_working_day(d) for d in days)  # adjusted weekend working days (调休) count
        assert len(days) == len(set(days))
        assert days == sorted(days)


def test_ldrt_is_1_6_gy_weekly_for_4_to_6_fractions(protocol: Protocol, enrolled: list[Subject]) -> None:
    low = protocol.radiotherapy.low_dose
    gaps = Counter()
    for s in enrolled:
        for course in (k for k in s.courses if k.role is RtRole.LOW_DOSE):
            assert course.dose_per_fraction_gy == low.dose_per_fraction_gy
            assert low.fractions.contains(course.fractions)
            dates = [f.date for f in s.fractions if f.lesion_id == course.lesion_id]
            gaps.update((b - a).days for a, b in itertools.pairwise(dates))
    assert gaps.most_common(1)[0][0] == low.interval_days


def test_no_fraction_before_enrolment_or_after_the_end_of_the_patients_data(enrolled: list[Subject]) -> None:
    for s in enrolled:
        assert all(s.patient.enrolment_date < f.date <= s.end for f in s.fractions)


def _expected_deviations(s: Subject, protocol: Protocol) -> set[tuple[str, str, str]]:
    """Recompute the interval and delivered-total deviations from the fractions (radiotherapy.md §2)."""
    rt = protocol.radiotherapy
    out: set[tuple[str, str, str]] = set()
    by_lesion: dict[str, list] = defaultdict(list)  # type: ignore[type-arg]
    for f in s.fractions:
        by_lesion[f.lesion_id].append(f)
    ended_early = s.patient.status.value in ("died", "withdrawn", "lost_to_follow_up")
    for course in s.courses:
        fr = by_lesion.get(course.lesion_id, [])
        if course.role is RtRole.LOW_DOSE:
            for a, b in itertools.pairwise(fr):
                cls = ldrt_interval_class((b.date - a.date).days, rt)
                if cls is not None:
                    out.add((course.lesion_id, "ldrt.interval", cls.value))
            if fr and len(fr) < course.fractions and ended_early:
                cls = total_class(course.total_dose_gy, sum(f.dose_gy for f in fr), rt.deviations)
                if cls is not None:
                    out.add((course.lesion_id, "delivered_total", cls.value))
        elif fr:
            delivered = sum(f.dose_gy for f in fr if f.status is not FractionStatus.MISSED)
            complete = fr[-1].fraction_number == course.fractions
            declined_or_stopped = not complete and (ended_early or fr[-1].date < s.end - dt.timedelta(days=3))
            if complete or declined_or_stopped:
                cls = total_class(course.total_dose_gy, delivered, rt.deviations)
                if cls is not None:
                    out.add((course.lesion_id, "delivered_total", cls.value))
    return out


def test_recorded_interval_and_total_deviations_are_exactly_those_the_fractions_show(
    protocol: Protocol, enrolled: list[Subject]
) -> None:
    for s in enrolled:
        recorded = {
            (d.lesion_id, d.check, d.deviation_class.value)
            for d in s.deviations
            if d.check in ("ldrt.interval", "delivered_total")
        }
        assert recorded == _expected_deviations(s, protocol), s.patient.subject_id


def test_deviations_name_who_recorded_and_confirmed_them(enrolled: list[Subject]) -> None:
    for s in enrolled:
        for d in s.deviations:
            assert d.recorded_by and d.confirmed_by and d.recorded_by != d.confirmed_by
            assert d.date is not None and d.date <= s.end
            assert d.values and d.reason


def test_each_kind_of_deviation_occurs_but_only_in_a_minority(enrolled: list[Subject]) -> None:
    kinds = Counter((d.check, d.deviation_class) for s in enrolled for d in s.deviations)
    assert kinds[("ldrt.interval", MINOR)] > 0
    assert kinds[("delivered_total", MINOR)] > 0
    assert kinds[("cfrt.overall_time", MINOR)] > 0
    with_any = sum(bool(s.deviations) for s in enrolled)
    assert with_any < 0.4 * len(enrolled)


def test_some_cfrt_fractions_are_missed_and_recorded_with_zero_dose(enrolled: list[Subject]) -> None:
    missed = [f for s in enrolled for f in s.fractions if f.status is FractionStatus.MISSED]
    assert missed and all(f.dose_gy == 0 for f in missed)
