"""The calendar's input assembled from stored records (``abscopal.store.schedule_input``, pure part)."""

from __future__ import annotations

import datetime as dt

from abscopal import domain as d
from abscopal.store.schedule_input import schedule_input_from_records


def _patient(**dates: dt.date) -> d.Patient:
    return d.Patient(
        "QFS-0002", "01", d.Sex.MALE, dt.date(1960, 1, 1), "1.0", enrolment_date=dt.date(2024, 3, 4), **dates
    )


def test_a_death_is_passed_as_a_death_not_as_the_end_of_treatment() -> None:
    # Before: death counted as end of treatment, so follow-up visits were planned (and overdue) after it.
    inp = schedule_input_from_records(_patient(death_date=dt.date(2024, 4, 10)), [], [], [], [], [])
    assert (inp.death_date, inp.end_of_treatment) == (dt.date(2024, 4, 10), None)


def test_a_withdrawal_is_passed_as_a_withdrawal() -> None:
    inp = schedule_input_from_records(_patient(withdrawal_date=dt.date(2024, 4, 1)), [], [], [], [], [])
    assert (inp.withdrawal_date, inp.end_of_treatment) == (dt.date(2024, 4, 1), None)


def test_a_new_therapy_ends_study_treatment() -> None:
    inp = schedule_input_from_records(_patient(new_therapy_date=dt.date(2024, 6, 3)), [], [], [], [], [])
    assert (inp.end_of_treatment, inp.death_date) == (dt.date(2024, 6, 3), None)
