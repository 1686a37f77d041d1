"""The visit calendar: Chinese working days (holidays + adjusted working days), slipped cycles and visit windows.

Dates of the 2024 National Day holiday come from the State Council notice for 2024 (国办发明电〔2023〕7号):
1-7 October off; Sunday 29 September and Saturday 12 October worked. `holidays` 0.109 encodes the same.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abscopal.errors import ValidationError
from abscopal.protocol.calendar import (
    PatientSchedule,
    ScheduleInput,
    VisitKind,
    VisitStatus,
    WorkingDays,
    build_schedule,
    working_days_of,
)
from abscopal.protocol.model import Protocol, load_bundled

D = dt.date
CN = WorkingDays("CN")


def schedule(protocol: Protocol, inp: ScheduleInput, as_of: dt.date) -> PatientSchedule:
    return build_schedule(inp, protocol.immunotherapy, protocol.schedule, protocol.radiotherapy.low_dose, as_of, CN)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (D(2024, 10, 1), False),  # National Day
        (D(2024, 10, 7), False),  # last day of the Golden Week
        (D(2024, 9, 29), True),  # Sunday, adjusted working day
        (D(2024, 10, 12), True),  # Saturday, adjusted working day
        (D(2024, 10, 13), False),  # ordinary Sunday
        (D(2024, 10, 8), True),  # ordinary Tuesday
    ],
)
def test_chinese_working_days_include_adjusted_weekend_days_and_exclude_holidays(day: dt.date, working: bool) -> None:
    assert CN.is_working_day(day) is working


def test_the_shared_working_days_answer_as_a_fresh_calendar_every_day_of_two_years() -> None:
    shared, fresh = working_days_of("CN"), WorkingDays("CN", [2024, 2025])
    days = [D(2024, 1, 1) + dt.timedelta(days=i) for i in range(731)]
    for _ in range(2):  # the second pass answers from the shared calendar's memo
        assert [shared.is_working_day(x) for x in days] == [fresh.is_working_day(x) for x in days]
    assert shared is working_days_of("CN")


def test_conventional_fractions_skip_the_national_day_week(protocol: Protocol) -> None:
    inp = ScheduleInput("P1", D(2024, 9, 23), cfrt_fractions=10, cfrt_start=D(2024, 9, 23))
    planned = [v.planned for v in schedule(protocol, inp, D(2024, 9, 20)).of_kind(VisitKind.CFRT_FRACTION)]
    # Mon 23 - Fri 27, Sun 29 (worked), Mon 30, then Tue 8 - Thu 10 October
    assert planned == [
        D(2024, 9, 23), D(2024, 9, 24), D(2024, 9, 25), D(2024, 9, 26), D(2024, 9, 27),
        D(2024, 9, 29), D(2024, 9, 30), D(2024, 10, 8), D(2024, 10, 9), D(2024, 10, 10),
    ]  # fmt: skip


def test_a_conventional_fraction_is_planned_on_an_adjusted_working_saturday(protocol: Protocol) -> None:
    inp = ScheduleInput("P1", D(2024, 10, 10), cfrt_fractions=3, cfrt_start=D(2024, 10, 10))
    planned = [v.planned for v in schedule(protocol, inp, D(2024, 10, 1)).of_kind(VisitKind.CFRT_FRACTION)]
    assert planned == [D(2024, 10, 10), D(2024, 10, 11), D(2024, 10, 12)]


def test_a_course_starting_on_a_holiday_starts_on_the_next_working_day(protocol: Protocol) -> None:
    inp = ScheduleInput("P1", D(2024, 10, 1), cfrt_fractions=1)
    (first,) = schedule(protocol, inp, D(2024, 9, 1)).of_kind(VisitKind.CFRT_FRACTION)
    assert first.planned == D(2024, 10, 8)


def test_remaining_fractions_are_recomputed_from_the_last_delivered_one(protocol: Protocol) -> None:
    # planned Mon 2-Fri 6 Dec 2024; fraction 2 slipped to Wednesday 4th
    inp = ScheduleInput(
        "P1", D(2024, 12, 2), cfrt_fractions=5, cfrt_start=D(2024, 12, 2),
        cfrt_delivered=(D(2024, 12, 2), D(2024, 12, 4)),
    )  # fmt: skip
    visits = schedule(protocol, inp, D(2024, 12, 4)).of_kind(VisitKind.CFRT_FRACTION)
    assert [v.planned for v in visits] == [
        D(2024, 12, 2),
        D(2024, 12, 3),
        D(2024, 12, 5),
        D(2024, 12, 6),
        D(2024, 12, 9),
    ]
    assert visits[1].status(D(2024, 12, 4)) is VisitStatus.DONE_OUT_OF_WINDOW


def test_a_slipped_immunotherapy_cycle_moves_the_next_cycles(protocol: Protocol) -> None:
    # cycle 1 on Mon 4 March 2024; cycle 2 due 25 March (window 22-28), given 2 April (8 days late)
    inp = ScheduleInput("P1", D(2024, 3, 4), immunotherapy_given=(D(2024, 3, 4), D(2024, 4, 2)))
    sched = schedule(protocol, inp, D(2024, 4, 3))
    cycles = sched.of_kind(VisitKind.IMMUNOTHERAPY)
    assert cycles[1].planned == D(2024, 3, 25)
    assert cycles[1].status(sched.as_of) is VisitStatus.DONE_OUT_OF_WINDOW
    assert cycles[2].planned == D(2024, 4, 23)  # 21 days after the actual 2 April
    assert cycles[1] in sched.out_of_window


def test_a_cycle_given_inside_its_window_is_done(protocol: Protocol) -> None:
    inp = ScheduleInput("P1", D(2024, 3, 4), immunotherapy_given=(D(2024, 3, 4), D(2024, 3, 28)))
    sched = schedule(protocol, inp, D(2024, 4, 3))
    assert sched.of_kind(VisitKind.IMMUNOTHERAPY)[1].status(sched.as_of) is VisitStatus.DONE


def test_a_missed_cycle_is_overdue_and_later_cycles_are_planned_from_the_as_of_date(protocol: Protocol) -> None:
    inp = ScheduleInput("P1", D(2024, 3, 4), immunotherapy_given=(D(2024, 3, 4),))
    sched = schedule(protocol, inp, D(2024, 4, 15))
    cycles = sched.of_kind(VisitKind.IMMUNOTHERAPY)
    assert cycles[1].planned == D(2024, 3, 25)
    assert [v.number for v in sched.overdue if v.kind is VisitKind.IMMUNOTHERAPY] == [2]
    assert cycles[2].planned == D(2024, 4, 15)


def test_low_dose_fractions_are_weekly_and_a_holiday_moves_one_to_the_next_working_day(protocol: Protocol) -> None:
    inp = ScheduleInput("P1", D(2024, 9, 23), ldrt_fractions=4, ldrt_start=D(2024, 9, 23))
    visits = schedule(protocol, inp, D(2024, 9, 20)).of_kind(VisitKind.LDRT_FRACTION)
    assert [v.planned for v in visits] == [D(2024, 9, 23), D(2024, 9, 30), D(2024, 10, 8), D(2024, 10, 15)]
    assert visits[2].note.startswith("moved from 2024-10-07")
    assert (visits[2].window_start, visits[2].window_end) == (D(2024, 10, 5), D(2024, 10, 9))  # 5-9 days


def test_tumour_assessments_stay_anchored_on_enrolment_when_treatment_slips(protocol: Protocol) -> None:
    inp = ScheduleInput("P1", D(2024, 3, 4), immunotherapy_given=(D(2024, 3, 4), D(2024, 4, 2)))
    first = schedule(protocol, inp, D(2024, 4, 3)).of_kind(VisitKind.TUMOUR_ASSESSMENT)[0]
    assert (first.planned, first.window_start, first.window_end) == (D(2024, 4, 15), D(2024, 4, 8), D(2024, 4, 22))


@pytest.mark.parametrize(
    ("actual", "status"),
    [
        (D(2024, 4, 8), VisitStatus.DONE),
        (D(2024, 4, 22), VisitStatus.DONE),
        (D(2024, 4, 23), VisitStatus.DONE_OUT_OF_WINDOW),
        (D(2024, 4, 7), VisitStatus.DONE_OUT_OF_WINDOW),
    ],
)
def test_an_assessment_inside_42_plus_or_minus_7_days_is_in_window(
    protocol: Protocol, actual: dt.date, status: VisitStatus
) -> None:
    inp = ScheduleInput("P1", D(2024, 3, 4), assessments=(actual,))
    sched = schedule(protocol, inp, D(2024, 5, 1))
    assert sched.of_kind(VisitKind.TUMOUR_ASSESSMENT)[0].status(sched.as_of) is status


def test_a_missed_assessment_is_overdue_once_its_window_has_closed(protocol: Protocol) -> None:
    inp = ScheduleInput("P1", D(2024, 3, 4), immunotherapy_given=(D(2024, 3, 4), D(2024, 3, 25), D(2024, 4, 15)))
    assert not [v for v in schedule(protocol, inp, D(2024, 4, 22)).overdue if v.kind is VisitKind.TUMOUR_ASSESSMENT]
    overdue = schedule(protocol, inp, D(2024, 4, 23)).overdue
    assert [(v.kind, v.number) for v in overdue if v.kind is VisitKind.TUMOUR_ASSESSMENT] == [
        (VisitKind.TUMOUR_ASSESSMENT, 1)
    ]


def test_after_the_end_of_treatment_come_follow_up_visits_and_no_more_cycles(protocol: Protocol) -> None:
    inp = ScheduleInput("P1", D(2024, 3, 4), end_of_treatment=D(2024, 6, 3))
    sched = schedule(protocol, inp, D(2024, 6, 3))
    assert max(v.planned for v in sched.of_kind(VisitKind.IMMUNOTHERAPY) if v.planned) <= D(2024, 6, 3)
    follow_ups = sched.of_kind(VisitKind.FOLLOW_UP)
    assert follow_ups[0].planned == D(2024, 9, 1)  # 90 days after 3 June
    assert follow_ups[-1].planned is not None and follow_ups[-1].planned <= D(2024, 3, 4) + dt.timedelta(days=730)


def test_an_unknown_holidays_country_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="holidays_country"):
        WorkingDays("XX")


def test_nth_working_day_counts_the_start_day() -> None:
    assert CN.nth(D(2024, 9, 27), 3) == D(2024, 9, 30)  # Fri 27, Sun 29 (worked), Mon 30
    assert CN.count_between(D(2024, 9, 30), D(2024, 10, 8)) == 1


@settings(max_examples=40, deadline=None)
@given(st.dates(D(2023, 1, 1), D(2026, 10, 1)), st.integers(20, 33), st.integers(4, 6))
def test_planned_fractions_are_on_working_days_in_order_and_low_dose_ones_stay_in_their_window(
    start: dt.date, n_cfrt: int, n_ldrt: int
) -> None:
    protocol = load_bundled().current
    inp = ScheduleInput("P1", start, cfrt_fractions=n_cfrt, ldrt_fractions=n_ldrt)
    sched = schedule(protocol, inp, start)
    cfrt = [v.planned for v in sched.of_kind(VisitKind.CFRT_FRACTION)]
    assert len(cfrt) == n_cfrt
    assert all(d is not None and CN.is_working_day(d) for d in cfrt)
    assert all(a < b for a, b in itertools.pairwise(cfrt))  # type: ignore[operator]
    for v in sched.of_kind(VisitKind.LDRT_FRACTION):
        assert v.planned is not None and v.window_start is not None and v.window_end is not None
        assert v.window_start <= v.planned <= v.window_end


def test_a_late_low_dose_fraction_moves_the_next_one_a_week_after_it(protocol: Protocol) -> None:
    # fraction 1 Mon 4 March 2024, fraction 2 given Wed 13 March (9 days: last day of the 5-9 day window)
    inp = ScheduleInput("P1", D(2024, 3, 4), ldrt_fractions=4, ldrt_delivered=(D(2024, 3, 4), D(2024, 3, 13)))
    sched = schedule(protocol, inp, D(2024, 3, 13))
    visits = sched.of_kind(VisitKind.LDRT_FRACTION)
    assert visits[1].status(sched.as_of) is VisitStatus.DONE
    assert visits[2].planned == D(2024, 3, 20)
    assert (visits[2].window_start, visits[2].window_end) == (D(2024, 3, 18), D(2024, 3, 22))


# --- off study and --as-of (issue 10, deliverable 11). Enrolment Mon 4 March 2024; immunotherapy every 21 +/- 3
# days (cycle 2 planned Mon 25 March, window 22-28; cycle 3 Mon 15 April, 12-18); tumour assessments every
# 42 +/- 7 days from enrolment (the first on 15 April, window 8-22); no holiday touches these dates. The baseline
# questionnaire is filled in on the day of enrolment, so that it is not overdue itself.

BASELINE_QOL = (D(2024, 3, 4),)


def test_a_visit_whose_window_was_open_on_the_day_of_death_is_not_expected(protocol: Protocol) -> None:
    inp = ScheduleInput(
        "P1",
        D(2024, 3, 4),
        questionnaires=BASELINE_QOL,
        immunotherapy_given=(D(2024, 3, 4), D(2024, 3, 25)),
        death_date=D(2024, 4, 10),
    )
    sched = schedule(protocol, inp, D(2024, 6, 1))
    cycle_3 = sched.of_kind(VisitKind.IMMUNOTHERAPY)[2]
    assessment_1 = sched.of_kind(VisitKind.TUMOUR_ASSESSMENT)[0]
    assert (cycle_3.planned, cycle_3.status(sched.as_of)) == (D(2024, 4, 15), VisitStatus.NOT_EXPECTED)
    assert (assessment_1.planned, assessment_1.status(sched.as_of)) == (D(2024, 4, 15), VisitStatus.NOT_EXPECTED)
    assert cycle_3.not_expected == "not expected: the patient died on 2024-04-10"


def test_no_visit_after_death_is_overdue(protocol: Protocol) -> None:
    inp = ScheduleInput(
        "P1",
        D(2024, 3, 4),
        questionnaires=BASELINE_QOL,
        immunotherapy_given=(D(2024, 3, 4), D(2024, 3, 25)),
        death_date=D(2024, 4, 10),
    )
    sched = schedule(protocol, inp, D(2025, 3, 4))  # a year later: every later cycle and assessment would be overdue
    assert sched.overdue == []
    assert (sched.off_study, sched.off_study_reason) == (D(2024, 4, 10), "the patient died on 2024-04-10")


def test_only_the_first_cancelled_visit_of_each_kind_is_listed(protocol: Protocol) -> None:
    inp = ScheduleInput(
        "P1",
        D(2024, 3, 4),
        questionnaires=BASELINE_QOL,
        immunotherapy_given=(D(2024, 3, 4), D(2024, 3, 25)),
        death_date=D(2024, 4, 10),
    )
    sched = schedule(protocol, inp, D(2025, 3, 4))
    assert [(v.kind, v.number) for v in sched.not_expected] == [
        (VisitKind.IMMUNOTHERAPY, 3),
        (VisitKind.TUMOUR_ASSESSMENT, 1),
        (VisitKind.QUESTIONNAIRE, 2),  # the questionnaire schedule has a baseline visit, number 1
    ]
    assert max(v.planned for v in sched.visits if v.planned) == D(2024, 4, 15)


def test_a_window_that_closed_before_death_leaves_the_visit_overdue(protocol: Protocol) -> None:
    # Cycle 2's window closed on 28 March, while the patient was alive: it was missed, and stays on the list.
    inp = ScheduleInput(
        "P1",
        D(2024, 3, 4),
        questionnaires=BASELINE_QOL,
        immunotherapy_given=(D(2024, 3, 4),),
        death_date=D(2024, 4, 10),
    )
    sched = schedule(protocol, inp, D(2024, 6, 1))
    assert [(v.kind, v.number, v.planned) for v in sched.overdue] == [(VisitKind.IMMUNOTHERAPY, 2, D(2024, 3, 25))]


def test_after_withdrawal_no_visit_is_expected_and_the_reason_says_so(protocol: Protocol) -> None:
    inp = ScheduleInput(
        "P1",
        D(2024, 3, 4),
        questionnaires=BASELINE_QOL,
        immunotherapy_given=(D(2024, 3, 4), D(2024, 3, 25)),
        withdrawal_date=D(2024, 4, 1),
    )
    sched = schedule(protocol, inp, D(2024, 6, 1))
    assert sched.overdue == []
    assert {v.not_expected for v in sched.not_expected} == {
        "not expected: the patient withdrew from the study on 2024-04-01"
    }


def test_an_early_end_of_study_cancels_the_follow_up_visits_after_it(protocol: Protocol) -> None:
    # End of treatment 3 June: follow-up every 90 +/- 14 days, the first on 1 September; the study ends 1 August.
    inp = ScheduleInput("P1", D(2024, 3, 4), end_of_treatment=D(2024, 6, 3), end_of_study=D(2024, 8, 1))
    sched = schedule(protocol, inp, D(2024, 12, 1))
    follow_ups = sched.of_kind(VisitKind.FOLLOW_UP)
    assert [(v.planned, v.status(sched.as_of)) for v in follow_ups] == [(D(2024, 9, 1), VisitStatus.NOT_EXPECTED)]
    assert sched.off_study_reason == "the patient's study ended on 2024-08-01"


def test_as_of_a_day_before_the_death_was_recorded_the_calendar_is_as_it_was_then(protocol: Protocol) -> None:
    inp = ScheduleInput(
        "P1",
        D(2024, 3, 4),
        questionnaires=BASELINE_QOL,
        immunotherapy_given=(D(2024, 3, 4), D(2024, 3, 25)),
        death_date=D(2024, 4, 16),
    )
    sched = schedule(protocol, inp, D(2024, 4, 15))
    assert sched.off_study is None
    assert sched.of_kind(VisitKind.IMMUNOTHERAPY)[2].status(sched.as_of) is VisitStatus.DUE


def test_as_of_ignores_a_cycle_given_after_that_day(protocol: Protocol) -> None:
    inp = ScheduleInput(
        "P1",
        D(2024, 3, 4),
        questionnaires=BASELINE_QOL,
        immunotherapy_given=(D(2024, 3, 4), D(2024, 3, 25), D(2024, 4, 15)),
    )
    cycle_3 = schedule(protocol, inp, D(2024, 4, 14)).of_kind(VisitKind.IMMUNOTHERAPY)[2]
    assert (cycle_3.planned, cycle_3.actual, cycle_3.status(D(2024, 4, 14))) == (D(2024, 4, 15), None, VisitStatus.DUE)


def test_as_of_the_day_after_the_window_an_assessment_done_later_is_overdue(protocol: Protocol) -> None:
    # The first assessment's window is 8-22 April; it was done on 24 April, which was not known on 23 April.
    inp = ScheduleInput("P1", D(2024, 3, 4), assessments=(D(2024, 4, 24),))
    sched = schedule(protocol, inp, D(2024, 4, 23))
    assert [(v.kind, v.number) for v in sched.overdue if v.kind is VisitKind.TUMOUR_ASSESSMENT] == [
        (VisitKind.TUMOUR_ASSESSMENT, 1)
    ]
    assert sched.of_kind(VisitKind.TUMOUR_ASSESSMENT)[0].actual is None


def test_as_of_ignores_fractions_delivered_after_that_day(protocol: Protocol) -> None:
    # Mon 2 - Wed 4 December 2024 delivered; as of Tuesday 3rd only two fractions were known.
    delivered = (D(2024, 12, 2), D(2024, 12, 3), D(2024, 12, 4))
    inp = ScheduleInput("P1", D(2024, 12, 2), cfrt_fractions=5, cfrt_start=D(2024, 12, 2), cfrt_delivered=delivered)
    visits = schedule(protocol, inp, D(2024, 12, 3)).of_kind(VisitKind.CFRT_FRACTION)
    assert [v.actual for v in visits] == [D(2024, 12, 2), D(2024, 12, 3), None, None, None]
