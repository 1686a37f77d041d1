"""A questionnaire answer's visit against the protocol schedule (abscopal.validation with ``schedule``).

The codes are the bundled schedule's (every 42 days to 730: baseline, week_6, ..., week_102; test_visit_codes.py).
"""

from __future__ import annotations

import datetime as dt

import pytest

from abscopal.domain import Instrument, QuestionnaireAnswer
from abscopal.errors import ValidationError
from abscopal.protocol.model import load_bundled
from abscopal.validation import parse_record, problems, validate

SCHEDULE = load_bundled().current.schedule
TODAY = dt.date(2025, 6, 1)


def _answer(visit: str) -> QuestionnaireAnswer:
    return QuestionnaireAnswer("S1", visit, Instrument.QLQ_C30, 1, 2, dt.date(2025, 3, 1))


def test_a_visit_that_is_not_a_schedule_code_is_refused_naming_the_visit_field() -> None:
    [p] = problems(_answer("week_7"), today=TODAY, schedule=SCHEDULE)
    assert (p.field, p.reason) == (
        "visit",
        "'week_7' is not a visit of the protocol schedule (expected baseline, week_6, week_12, ..., week_102)",
    )


@pytest.mark.parametrize("visit", ["baseline", "week_6", "week_102"])
def test_a_schedule_code_is_accepted(visit: str) -> None:
    assert problems(_answer(visit), today=TODAY, schedule=SCHEDULE) == []


def test_without_the_schedule_a_free_visit_label_is_accepted() -> None:
    assert problems(_answer("follow-up visit 3"), today=TODAY) == []


def test_an_empty_visit_is_refused_once_as_empty_with_or_without_the_schedule() -> None:
    [p] = problems(_answer(" "), today=TODAY, schedule=SCHEDULE)
    assert (p.field, p.reason) == ("visit", "is empty")


def test_the_visit_problem_carries_the_callers_prefix() -> None:
    [p] = problems(_answer("week_7"), today=TODAY, prefix="answers[3]", schedule=SCHEDULE)
    assert p.field == "answers[3].visit"


def test_validate_with_the_schedule_raises_on_a_visit_off_the_schedule() -> None:
    with pytest.raises(ValidationError, match=r"^visit: 'day_3' is not a visit of the protocol schedule"):
        validate(_answer("day_3"), today=TODAY, schedule=SCHEDULE)


def test_parse_record_with_the_schedule_refuses_a_visit_off_the_schedule() -> None:
    data = {"subject_id": "S1", "visit": "week_5", "instrument": "QLQ-C30", "item": 1, "answer": 2}
    record, found = parse_record(QuestionnaireAnswer, data, today=TODAY, schedule=SCHEDULE)
    assert record is None
    assert [p.field for p in found] == ["visit"]
