"""Questionnaire visit codes, defined once from the protocol schedule (abscopal.protocol.calendar).

Hand-worked from protocols/nct05906329.toml [schedule]: a questionnaire every 42 days (6 weeks) up to
max_follow_up_days = 730, so the last visit is 730 // 42 = 17 intervals = 714 days = week 102.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import abscopal
from abscopal.errors import ValidationError
from abscopal.protocol.calendar import (
    questionnaire_visit_code,
    questionnaire_visit_codes,
    questionnaire_visit_number,
)
from abscopal.protocol.model import Schedule, load_bundled

BUNDLED = load_bundled().current.schedule


def _schedule(interval: int, max_days: int = 730) -> Schedule:
    return BUNDLED.model_copy(update={"questionnaire_interval_days": interval, "max_follow_up_days": max_days})


@pytest.mark.parametrize(
    ("number", "code"), [(0, "baseline"), (1, "week_6"), (2, "week_12"), (3, "week_18"), (17, "week_102")]
)
def test_the_bundled_schedule_codes_visit_n_as_six_week_steps(number: int, code: str) -> None:
    assert questionnaire_visit_code(number, BUNDLED) == code


def test_the_bundled_schedule_has_baseline_and_seventeen_follow_up_visits() -> None:
    codes = questionnaire_visit_codes(BUNDLED)
    assert (len(codes), codes[:3], codes[-1]) == (18, ("baseline", "week_6", "week_12"), "week_102")


def test_a_visit_after_the_maximum_follow_up_is_not_a_code_of_the_schedule() -> None:
    assert "week_108" not in questionnaire_visit_codes(BUNDLED)  # 18 x 42 = 756 days > 730


def test_a_four_week_interval_gives_four_week_codes() -> None:
    assert questionnaire_visit_codes(_schedule(28, 84)) == ("baseline", "week_4", "week_8", "week_12")


def test_an_interval_that_is_not_whole_weeks_gives_day_codes() -> None:
    # 10 days: weeks would give week_1, week_2, week_4 and lose the exact timing; days keep every visit distinct
    assert questionnaire_visit_codes(_schedule(10, 30)) == ("baseline", "day_10", "day_20", "day_30")


def test_a_code_gives_back_its_visit_number() -> None:
    assert questionnaire_visit_number("week_12", BUNDLED) == 2


def test_a_code_that_is_not_of_the_schedule_is_refused_naming_the_visit_and_the_expected_codes() -> None:
    with pytest.raises(ValidationError) as caught:
        questionnaire_visit_number("week_7", BUNDLED)
    assert (caught.value.field, caught.value.reason) == (
        "visit",
        "'week_7' is not a visit of the protocol schedule (expected baseline, week_6, week_12, ..., week_102)",
    )


@pytest.mark.parametrize("code", ["Baseline", "week 6", "W6", "week_06", "screening", ""])
def test_a_label_that_only_resembles_a_code_is_refused(code: str) -> None:
    with pytest.raises(ValidationError, match="is not a visit of the protocol schedule"):
        questionnaire_visit_number(code, BUNDLED)


def test_a_negative_visit_number_has_no_code() -> None:
    with pytest.raises(ValidationError, match="negative"):
        questionnaire_visit_code(-1, BUNDLED)


@given(interval=st.integers(1, 120), max_days=st.integers(1, 1500))
def test_every_code_of_a_schedule_is_distinct_and_maps_back_to_its_number(interval: int, max_days: int) -> None:
    schedule = _schedule(interval, max_days)
    codes = questionnaire_visit_codes(schedule)
    assert len(set(codes)) == len(codes)
    assert [questionnaire_visit_number(c, schedule) for c in codes] == list(range(len(codes)))


def _builds_a_visit_code(node: ast.AST) -> bool:
    """An f-string starting with a visit code's prefix ("week_", "day_"): building a code by hand."""
    if not isinstance(node, ast.JoinedStr) or not node.values:
        return False
    head = node.values[0]
    return isinstance(head, ast.Constant) and str(head.value).startswith(("week_", "day_"))


def test_no_module_but_the_calendar_builds_a_visit_code() -> None:
    src = Path(abscopal.__file__).parent
    found = [
        f"{path.relative_to(src).as_posix()}:{node.lineno}"
        for path in sorted(src.rglob("*.py"))
        if path.relative_to(src).as_posix() != "protocol/calendar.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if _builds_a_visit_code(node)
    ]
    assert found == [], "use abscopal.protocol.calendar.questionnaire_visit_code"


def test_the_visit_code_guard_sees_the_calendars_own_code() -> None:
    tree = ast.parse((Path(abscopal.__file__).parent / "protocol" / "calendar.py").read_text(encoding="utf-8"))
    assert any(_builds_a_visit_code(node) for node in ast.walk(tree))
