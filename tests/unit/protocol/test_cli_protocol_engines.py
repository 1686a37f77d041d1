"""CLI: ``abscopal eligibility check``, ``abscopal rt check``, ``abscopal rt bed`` and ``abscopal schedule``.

The example files are the documented ones (docs/examples/); bad files are written per test.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from abscopal.cli import app

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"
runner = CliRunner()


def _example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return data


def _write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


# --- eligibility


def test_eligibility_check_prints_the_checklist_and_verdict() -> None:
    result = runner.invoke(app, ["eligibility", "check", str(EXAMPLES / "patient.json")])
    assert result.exit_code == 0, result.output
    assert "Verdict: eligible" in result.output
    assert "Enrolment allowed." in result.output


def test_eligibility_check_json_lists_twenty_criteria_and_the_enrolment_decision() -> None:
    result = runner.invoke(app, ["eligibility", "check", str(EXAMPLES / "patient.json"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["verdict"] == "eligible"
    assert len(data["criteria"]) == 20
    assert data["resistance"]["proposed"] == "acquired"
    assert data["enrolment"] == {"allowed": True, "reasons": []}


def test_eligibility_check_reads_resistance_from_an_unsigned_adjudication_as_unknown(tmp_path: Path) -> None:
    patient = _example("patient.json")
    patient["adjudication"]["signatures"] = patient["adjudication"]["signatures"][:1]
    result = runner.invoke(app, ["eligibility", "check", str(_write(tmp_path, "p.json", patient)), "--json"])
    data = json.loads(result.stdout)
    assert data["verdict"] == "incomplete"
    assert next(c for c in data["criteria"] if c["id"] == "IN10")["status"] == "unknown"
    assert data["enrolment"]["allowed"] is False


def test_eligibility_check_with_a_failing_lab_is_ineligible(tmp_path: Path) -> None:
    patient = _example("patient.json")
    patient["labs"]["neutrophils"] = {"value": 1.5, "unit": "x10^9/L"}
    result = runner.invoke(app, ["eligibility", "check", str(_write(tmp_path, "p.json", patient)), "--json"])
    data = json.loads(result.stdout)
    assert data["verdict"] == "ineligible"
    in6 = next(c for c in data["criteria"] if c["id"] == "IN6")
    assert "Neutrophils 1.5 x10^9/L < 1.8 x10^9/L" in in6["reason"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"labs": {"neutrophils": {"value": 1.5, "unit": "mg"}}}, "labs.neutrophils.unit"),
        ({"screening_date": "2024-02-30"}, "screening_date"),
        ({"diet": "tube"}, "diet"),
        ({"ecgo": 1}, "ecgo"),
    ],
)
def test_eligibility_check_of_a_bad_file_names_the_field(tmp_path: Path, change: dict[str, Any], field: str) -> None:
    patient = {**_example("patient.json"), **change}
    result = runner.invoke(app, ["eligibility", "check", str(_write(tmp_path, "p.json", patient))])
    assert result.exit_code == 1
    assert field in result.output
    assert "Traceback" not in result.output


def test_eligibility_check_of_a_file_that_is_not_json_says_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eligibility", "check", str(_write(tmp_path, "p.json", "{not json"))])
    assert result.exit_code == 1
    assert "line 1: is not valid JSON" in result.output


def test_eligibility_check_under_an_unknown_protocol_version_is_refused() -> None:
    result = runner.invoke(app, ["eligibility", "check", str(EXAMPLES / "patient.json"), "--protocol-version", "9.9"])
    assert result.exit_code == 1
    assert "no version '9.9'" in result.output


# --- radiotherapy


def test_rt_check_prints_checks_doses_and_the_proposed_deviation() -> None:
    result = runner.invoke(app, ["rt", "check", str(EXAMPLES / "plan.json")])
    assert result.exit_code == 0, result.output
    assert "1 proposed deviation(s)" in result.output


def test_rt_check_json_reports_bed_per_lesion_and_the_ldrt_interval_deviation() -> None:
    result = runner.invoke(app, ["rt", "check", str(EXAMPLES / "plan.json"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    doses = {d["lesion_id"]: d for d in data["doses"]}
    assert doses["L1"]["prescribed_bed_gy"] == pytest.approx(72.0)
    assert doses["L1"]["prescribed_eqd2_late_gy"] == pytest.approx(60.0)
    assert [(d["lesion_id"], d["check"], d["class"]) for d in data["deviations"]] == [("L3", "ldrt.interval", "minor")]


@pytest.mark.parametrize("args", [[], ["docs/examples/plan.json", "--patient", "QFS-0001"]])
def test_rt_check_needs_either_a_plan_file_or_a_patient_and_says_so(args: list[str]) -> None:
    result = runner.invoke(app, ["rt", "check", *args])
    assert result.exit_code == 1
    assert "give either PLAN.json or --patient ID" in result.output and "Traceback" not in result.output


def test_rt_check_of_a_patient_in_a_database_without_them_names_the_patient(tmp_path: Path) -> None:
    from abscopal.store.database import make_engine
    from abscopal.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    upgrade(make_engine(url))
    result = runner.invoke(app, ["rt", "check", "--patient", "S-404", "--database-url", url])
    assert result.exit_code == 1
    assert "No patient 'S-404' in the database" in result.output


def test_rt_check_of_a_lesion_in_two_roles_names_it(tmp_path: Path) -> None:
    plan = _example("plan.json")
    plan["lesions"].append({**plan["lesions"][1], "rt_role": "observation"})
    result = runner.invoke(app, ["rt", "check", str(_write(tmp_path, "plan.json", plan))])
    assert result.exit_code == 1
    assert "lesions[5].rt_role" in result.output
    assert "L2 is listed as low_dose and as observation" in result.output


def test_rt_check_of_an_unknown_role_names_the_field(tmp_path: Path) -> None:
    plan = _example("plan.json")
    plan["lesions"][2]["rt_role"] = "boost"
    result = runner.invoke(app, ["rt", "check", str(_write(tmp_path, "plan.json", plan))])
    assert result.exit_code == 1
    assert "lesions[2].rt_role" in result.output


def test_rt_check_of_a_total_dose_that_is_not_dose_times_fractions_names_the_course(tmp_path: Path) -> None:
    plan = _example("plan.json")
    plan["courses"][0]["total_dose_gy"] = 50
    result = runner.invoke(app, ["rt", "check", str(_write(tmp_path, "plan.json", plan))])
    assert result.exit_code == 1
    assert "courses[0].total_dose_gy: 50 Gy is not 2 Gy x 30 = 60 Gy" in result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--dose-per-fraction", "2", "--fractions", "30", "--alpha-beta", "10"], {"bed": 72.0, "eqd2": 60.0}),
        (["--dose-per-fraction", "1.8", "--fractions", "25", "--alpha-beta", "3"], {"bed": 72.0, "eqd2": 43.2}),
        (["--dose-per-fraction", "1.6", "--fractions", "6"], {"bed": 11.136, "eqd2": 9.28}),
    ],
)
def test_rt_bed_prints_bed_and_eqd2_as_json(args: list[str], expected: dict[str, float]) -> None:
    result = runner.invoke(app, ["rt", "bed", *args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data.keys() == expected.keys()
    assert data == pytest.approx(expected)


def test_rt_bed_refuses_a_zero_alpha_beta() -> None:
    result = runner.invoke(app, ["rt", "bed", "--dose-per-fraction", "2", "--fractions", "30", "--alpha-beta", "0"])
    assert result.exit_code == 1
    assert "alpha_beta_gy" in result.output


# --- schedule


def test_schedule_from_a_file_lists_the_overdue_fraction() -> None:
    args = ["schedule", "QFS-0001", "--input", str(EXAMPLES / "schedule.json"), "--as-of", "2024-10-16", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(v["kind"], v["number"], v["planned"]) for v in data["overdue"]] == [("cfrt_fraction", 10, "2024-10-10")]


def test_schedule_prints_a_table() -> None:
    args = ["schedule", "QFS-0001", "--input", str(EXAMPLES / "schedule.json"), "--as-of", "2024-10-09"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Calendar of QFS-0001 as of 2024-10-09" in result.output


def test_schedule_without_input_and_without_a_database_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "abscopal.store.schedule_input", None)  # makes the import fail
    result = runner.invoke(app, ["schedule", "QFS-0001"])
    assert result.exit_code == 1
    assert "Reading patients from the database is not available yet; pass --input FILE.json" in result.output


def test_schedule_for_another_patient_than_the_file_is_refused() -> None:
    result = runner.invoke(app, ["schedule", "QFS-9999", "--input", str(EXAMPLES / "schedule.json")])
    assert result.exit_code == 1
    assert "patient_id" in result.output


def test_schedule_with_an_impossible_date_names_the_field(tmp_path: Path) -> None:
    data = _example("schedule.json")
    data["conventional"]["delivered"][2] = "2024-09-31"
    result = runner.invoke(app, ["schedule", "QFS-0001", "--input", str(_write(tmp_path, "s.json", data))])
    assert result.exit_code == 1
    assert "conventional.delivered[2]" in result.output


def test_schedule_with_a_bad_as_of_date_is_refused() -> None:
    args = ["schedule", "QFS-0001", "--input", str(EXAMPLES / "schedule.json"), "--as-of", "16/10/2024"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "--as-of" in result.output
