"""Reading PATIENT.json, PLAN.json and SCHEDULE.json: every problem named by its field, nothing half-read."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from abscopal.errors import InputFileError
from abscopal.protocol.io import load_patient, load_plan, load_schedule

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"


def _example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return data


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "input.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_the_example_patient_reads_with_age_from_the_birth_date() -> None:
    patient = load_patient(EXAMPLES / "patient.json")
    assert patient.screening.age_years == 61  # born 1963-05-14, screened 2024-09-10
    assert patient.screening.labs["haemoglobin"].unit == "g/dL"
    assert patient.adjudication is not None and len(patient.adjudication.signatures) == 2


def test_every_problem_of_a_patient_file_is_reported_with_its_field(tmp_path: Path) -> None:
    data = {**_example("patient.json"), "ecog": 7, "screening_date": "2024-13-01", "diet": "tube"}
    with pytest.raises(InputFileError) as info:
        load_patient(_write(tmp_path, data))
    fields = {p.field for p in info.value.problems}
    assert fields == {"ecog", "screening_date", "diet"}
    assert "nothing was written" in str(info.value)


def test_a_confirmation_scan_before_the_progression_is_refused_naming_the_field(tmp_path: Path) -> None:
    data = _example("patient.json")
    data["immunotherapy"]["progression_confirmed_date"] = "2024-07-01"
    with pytest.raises(InputFileError, match=r"immunotherapy\.progression_confirmed_date"):
        load_patient(_write(tmp_path, data))


def test_an_unknown_lab_unit_is_refused_naming_the_lab(tmp_path: Path) -> None:
    data = _example("patient.json")
    data["labs"]["platelets"] = {"value": 150, "unit": "mmol/L"}
    with pytest.raises(InputFileError, match=r"labs\.platelets\.unit"):
        load_patient(_write(tmp_path, data))


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="does not exist"):
        load_patient(tmp_path / "absent.json")


def test_a_course_takes_its_lesions_role_and_the_protocols_alpha_beta() -> None:
    plan = load_plan(EXAMPLES / "plan.json", alpha_beta_tumour_gy=10.0)
    course = next(c for c in plan.courses if c.lesion_id == "L2")
    assert (course.role.value, course.alpha_beta_gy) == ("low_dose", 10.0)
    assert plan.completed is None


def test_a_course_on_an_unknown_lesion_and_a_role_conflict_are_both_reported(tmp_path: Path) -> None:
    data = _example("plan.json")
    data["courses"].append({"lesion_id": "L9", "dose_per_fraction_gy": 1.6, "fractions": 4, "start_date": "2024-09-23"})
    data["courses"][1]["role"] = "conventional"
    with pytest.raises(InputFileError) as info:
        load_plan(_write(tmp_path, data), 10.0)
    assert {p.field for p in info.value.problems} == {"courses[3].lesion_id", "courses[1].role"}


def test_an_explicit_completed_flag_marks_a_course_complete(tmp_path: Path) -> None:
    data = _example("plan.json")
    data["courses"][2]["completed"] = True
    plan = load_plan(_write(tmp_path, data), 10.0)
    assert plan.completed == frozenset({"L3"})


def test_the_example_schedule_reads() -> None:
    inp = load_schedule(EXAMPLES / "schedule.json")
    assert inp.cfrt_fractions == 30 and len(inp.cfrt_delivered) == 9
    assert inp.enrolment_date == dt.date(2024, 9, 20)


def test_two_conventional_fractions_on_one_day_in_a_schedule_are_refused(tmp_path: Path) -> None:
    data = _example("schedule.json")
    data["conventional"]["delivered"].append("2024-09-23")
    with pytest.raises(InputFileError, match=r"conventional\.delivered\[9\]"):
        load_schedule(_write(tmp_path, data))
