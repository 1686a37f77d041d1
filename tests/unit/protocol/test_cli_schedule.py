"""CLI: ``abscopal schedule`` after death and with ``--as-of`` (issue 10, deliverable 11).

The example file docs/examples/schedule.json: enrolled Fri 20 September 2024, conventional fractions delivered on
23-27 and 29-30 September and 8-9 October (National Day week off). The database path is replaced by a stand-in
module so that the test needs no store (the command imports ``abscopal.store.schedule_input`` lazily).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from abscopal.cli import app
from abscopal.protocol.calendar import ScheduleInput

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "schedule.json"
runner = CliRunner()


def _run_json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["schedule", *args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _fraction(data: dict[str, Any], number: int) -> dict[str, Any]:
    return next(v for v in data["visits"] if v["kind"] == "cfrt_fraction" and v["number"] == number)


def test_as_of_the_day_before_a_fraction_it_is_not_yet_delivered() -> None:
    data = _run_json("QFS-0001", "--input", str(EXAMPLE), "--as-of", "2024-10-08")
    assert (_fraction(data, 9)["planned"], _fraction(data, 9)["actual"]) == ("2024-10-09", None)
    assert _fraction(data, 9)["status"] == "upcoming"


def test_as_of_the_day_of_a_fraction_it_is_delivered() -> None:
    data = _run_json("QFS-0001", "--input", str(EXAMPLE), "--as-of", "2024-10-09")
    assert (_fraction(data, 9)["actual"], _fraction(data, 9)["status"]) == ("2024-10-09", "done")


@pytest.fixture
def died_on_10_april(monkeypatch: pytest.MonkeyPatch) -> None:
    # Enrolled Mon 4 March 2024, cycles on 4 and 25 March, died 10 April: cycle 3 (15 April) never happens.
    patient = ScheduleInput(
        "QFS-0002",
        dt.date(2024, 3, 4),
        immunotherapy_given=(dt.date(2024, 3, 4), dt.date(2024, 3, 25)),
        questionnaires=(dt.date(2024, 3, 4),),
        death_date=dt.date(2024, 4, 10),
    )
    store = types.ModuleType("abscopal.store.schedule_input")
    store.load_schedule_input = lambda patient_id: patient  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "abscopal.store.schedule_input", store)


@pytest.mark.usefixtures("died_on_10_april")
def test_a_year_after_death_nothing_is_overdue_and_the_open_visits_say_why() -> None:
    data = _run_json("QFS-0002", "--as-of", "2025-04-10")
    assert data["overdue"] == []
    assert (data["off_study"], data["off_study_reason"]) == ("2024-04-10", "the patient died on 2024-04-10")
    assert [(v["kind"], v["planned"], v["note"]) for v in data["not_expected"]] == [
        ("immunotherapy", "2024-04-15", "not expected: the patient died on 2024-04-10"),
        ("tumour_assessment", "2024-04-15", "not expected: the patient died on 2024-04-10"),
        ("questionnaire", "2024-04-15", "not expected: the patient died on 2024-04-10"),
    ]


@pytest.mark.usefixtures("died_on_10_april")
def test_the_table_names_the_death_and_lists_no_overdue_visit() -> None:
    result = runner.invoke(app, ["schedule", "QFS-0002", "--as-of", "2025-04-10"])
    assert result.exit_code == 0, result.output
    assert "Off study: the patient died on 2024-04-10" in result.output
    assert "not expected" in result.output
    assert "Overdue:" not in result.output


@pytest.mark.usefixtures("died_on_10_april")
def test_as_of_before_the_death_the_next_cycle_is_due() -> None:
    data = _run_json("QFS-0002", "--as-of", "2024-04-09")
    assert data["off_study"] is None
    cycle_3 = next(v for v in data["visits"] if v["kind"] == "immunotherapy" and v["number"] == 3)
    assert (cycle_3["planned"], cycle_3["status"]) == ("2024-04-15", "upcoming")
