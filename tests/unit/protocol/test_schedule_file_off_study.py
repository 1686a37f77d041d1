"""SCHEDULE.json's death_date, withdrawal_date and end_of_study, through ``abscopal schedule --input`` and
``load_schedule`` (issue 10, deliverables 6 and 11).

The base is docs/examples/schedule.json: enrolled Fri 20 September 2024, 9 of 30 conventional fractions delivered
up to 9 October, low-dose fractions on 23 and 30 September and 8 October, one immunotherapy cycle on 23 September.
As of 1 December 2024 without an off-study date, five visits are overdue (worked in the calendar tests): CFRT 10
(10 Oct), IO cycle 2 (14 Oct), LDRT 4 (15 Oct), the first assessment and the week-6 questionnaire (1 Nov).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from abscopal.cli import app
from abscopal.errors import InputFileError
from abscopal.protocol.io import load_schedule

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "schedule.json"
runner = CliRunner()
OVERDUE_WITHOUT_STOP = [
    ("cfrt_fraction", "2024-10-10"),
    ("immunotherapy", "2024-10-14"),
    ("ldrt_fraction", "2024-10-15"),
    ("tumour_assessment", "2024-11-01"),
    ("questionnaire", "2024-11-01"),
]


def _file(tmp_path: Path, **changes: Any) -> Path:
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    path = tmp_path / "schedule.json"
    path.write_text(json.dumps({**data, **changes}), encoding="utf-8")
    return path


def _calendar(path: Path, as_of: str = "2024-12-01") -> dict[str, Any]:
    result = runner.invoke(app, ["schedule", "QFS-0001", "--input", str(path), "--as-of", as_of, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_without_an_off_study_date_the_missed_visits_are_overdue(tmp_path: Path) -> None:
    data = _calendar(_file(tmp_path))
    assert [(v["kind"], v["planned"]) for v in data["overdue"]] == OVERDUE_WITHOUT_STOP


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("death_date", "the patient died on 2024-10-10"),
        ("withdrawal_date", "the patient withdrew from the study on 2024-10-10"),
        ("end_of_study", "the patient's study ended on 2024-10-10"),
    ],
)
def test_an_off_study_date_in_the_file_leaves_no_visit_overdue_and_says_why(
    tmp_path: Path, field: str, reason: str
) -> None:
    data = _calendar(_file(tmp_path, **{field: "2024-10-10"}))
    assert data["overdue"] == []
    assert (data["off_study"], data["off_study_reason"]) == ("2024-10-10", reason)
    # the visits that would be overdue are cancelled, plus CFRT 11 (11 Oct): the first fraction planned after the stop
    cancelled = [(v["kind"], v["planned"]) for v in data["not_expected"]]
    assert cancelled == [*OVERDUE_WITHOUT_STOP[:1], ("cfrt_fraction", "2024-10-11"), *OVERDUE_WITHOUT_STOP[1:]]
    assert {v["note"] for v in data["not_expected"]} == {f"not expected: {reason}"}


def test_a_death_recorded_after_the_as_of_day_is_ignored(tmp_path: Path) -> None:
    data = _calendar(_file(tmp_path, death_date="2024-12-15"), as_of="2024-12-01")
    assert (data["off_study"], [(v["kind"], v["planned"]) for v in data["overdue"]]) == (None, OVERDUE_WITHOUT_STOP)


def test_the_loader_maps_each_off_study_date_to_the_calendar_input(tmp_path: Path) -> None:
    path = _file(tmp_path, death_date="2024-11-03", withdrawal_date="2024-10-30", end_of_study="2024-11-30")
    inp = load_schedule(path, today=dt.date(2025, 1, 1))
    assert (inp.death_date, inp.withdrawal_date, inp.end_of_study) == (
        dt.date(2024, 11, 3),
        dt.date(2024, 10, 30),
        dt.date(2024, 11, 30),
    )


@pytest.mark.parametrize("field", ["death_date", "withdrawal_date", "end_of_study"])
def test_an_off_study_date_before_enrolment_is_refused_naming_the_field(tmp_path: Path, field: str) -> None:
    with pytest.raises(InputFileError) as caught:
        load_schedule(_file(tmp_path, **{field: "2024-09-19"}), today=dt.date(2025, 1, 1))
    assert [(p.field, p.reason) for p in caught.value.problems] == [
        (field, "2024-09-19 is before enrolment (2024-09-20)")
    ]


@pytest.mark.parametrize("field", ["death_date", "withdrawal_date", "end_of_study"])
def test_an_off_study_date_in_the_future_is_refused_naming_the_field(tmp_path: Path, field: str) -> None:
    with pytest.raises(InputFileError) as caught:
        load_schedule(_file(tmp_path, **{field: "2025-01-02"}), today=dt.date(2025, 1, 1))
    assert [(p.field, p.reason) for p in caught.value.problems] == [
        (field, "2025-01-02 is in the future (today is 2025-01-01)")
    ]


def test_an_off_study_date_on_the_enrolment_day_is_accepted(tmp_path: Path) -> None:
    inp = load_schedule(_file(tmp_path, withdrawal_date="2024-09-20"), today=dt.date(2025, 1, 1))
    assert inp.withdrawal_date == dt.date(2024, 9, 20)


def test_the_command_refuses_a_bad_off_study_date_with_one_sentence_per_problem(tmp_path: Path) -> None:
    path = _file(tmp_path, death_date="2024-09-01", withdrawal_date="2999-01-01")
    result = runner.invoke(app, ["schedule", "QFS-0001", "--input", str(path)])
    assert result.exit_code == 1
    assert "death_date: 2024-09-01 is before enrolment (2024-09-20)" in result.output
    assert "withdrawal_date: 2999-01-01 is in the future" in result.output
    assert "Traceback" not in result.output


def test_a_misspelt_off_study_field_is_refused_as_unknown(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schedule", "QFS-0001", "--input", str(_file(tmp_path, date_of_death="2024-10-10"))])
    assert result.exit_code == 1
    assert "date_of_death: unknown field (a typo?)" in result.output
