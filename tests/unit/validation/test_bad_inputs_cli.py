"""The impossible values of issue 10's "Why", and the other refusals of the validated schema, through the CLI:
each gives a sentence naming the field (and line for CSV), exit code 1, and writes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abscopal.cli import build_app
from abscopal.protocol.model import bundled_protocol_path

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"
MEAS = (
    "subject_id,assessment_date,lesion_id,lesion_class,organ,is_node,diameter_mm,status\n"
    "S1,2024-01-08,T1,target,lung,false,30,\n"
    "S1,2024-02-19,T1,target,lung,false,20,\n"
)
SUBJECTS = "subject_id,reference_date,death_date,new_therapy_date\nS1,2024-01-10,,\n"


def _patient(**changes: object) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        data = json.loads((EXAMPLES / "patient.json").read_text())
        for dotted, value in changes.items():
            node = data
            *parents, last = dotted.split("__")
            for part in parents:
                node = node[part]
            node[last] = value
        path = tmp / "patient.json"
        path.write_text(json.dumps(data))
        return ["eligibility", "check", str(path)]

    return make


def _plan(change: Callable[[dict], None]) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        data = json.loads((EXAMPLES / "plan.json").read_text())
        change(data)
        path = tmp / "plan.json"
        path.write_text(json.dumps(data))
        return ["rt", "check", str(path)]

    return make


def _derive(meas: str = MEAS, subjects: str | None = None) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        (tmp / "m.csv").write_text(meas)
        argv = ["response", "derive", "-i", str(tmp / "m.csv"), "-o", str(tmp / "out")]
        if subjects is not None:
            (tmp / "s.csv").write_text(subjects)
            argv += ["--subjects", str(tmp / "s.csv")]
        return argv

    return make


def _protocol(old: str, new: str) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        text = bundled_protocol_path().read_text()
        assert old in text
        (tmp / "p.toml").write_text(text.replace(old, new, 1))
        return ["protocol", "check", str(tmp / "p.toml")]

    return make


def _first_lesion_diameter(value: float) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        data["lesions"][0]["baseline_diameter_mm"] = value

    return change


def _first_course_dose(value: float) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        data["courses"][0]["dose_per_fraction_gy"] = value

    return change


CASES = [
    # the five of "Why"
    (
        "a death date before the reference date (was pfs_days = -373)",
        _derive(subjects="subject_id,reference_date,death_date,new_therapy_date\nS1,2024-01-10,2023-01-02,\n"),
        "line 2, death_date: 2023-01-02 is before reference_date (2024-01-10)",
    ),
    (
        "a 1e9 mm diameter (changed ORR)",
        _derive(MEAS.replace("false,20,", "false,1000000000,")),
        "line 3, diameter_mm: 1000000000 mm is not plausible (possible: 0 to 500 mm)",
    ),
    (
        "consent dated after screening (was 'Enrolment allowed.')",
        _patient(consent_date="2024-09-11"),
        "consent_date: 2024-09-11 is after screening (2024-09-10)",
    ),
    (
        "haemoglobin -5 (counted as low)",
        _patient(labs__haemoglobin={"value": -5, "unit": "g/L"}),
        "labs.haemoglobin.value: -5 g/L is not plausible (possible: 0 to 250 g/L)",
    ),
    (
        "a protocol with age max 300 (was OK)",
        _protocol('max = 65\nunit = "years"', 'max = 300\nunit = "years"'),
        "eligibility.inclusion.IN2.checks.age.max: 300 is not plausible",
    ),
    # the other rules
    ("ECOG 7", _patient(ecog=7), "ecog: 7 is not plausible (possible: 0 to 5)"),
    ("age 130", _patient(age_years=130), "age_years: 130 years is not plausible"),
    ("platelets 5000 x10^9/L", _patient(labs__platelets={"value": 5000, "unit": "x10^9/L"}), "labs.platelets.value"),
    ("haemoglobin 30 g/dL (= 300 g/L)", _patient(labs__haemoglobin={"value": 30, "unit": "g/dL"}), "(= 300 g/L)"),
    (
        "a screening date in the future",
        _patient(screening_date="2999-01-01"),
        "screening_date: 2999-01-01 is in the future",
    ),
    ("a birth date after screening", _patient(birth_date="2025-01-01"), "is before the birth date (2025-01-01)"),
    ("an unknown confirmation", _patient(histology_confirmed_by="guess"), "histology_confirmed_by: Input should be"),
    (
        "a prior immunotherapy ended before it started",
        _patient(immunotherapy__last_dose_date="2023-01-01"),
        "immunotherapy.last_dose_date: 2023-01-01 is before the start",
    ),
    ("an impossible partial start date", _patient(immunotherapy__start_date="2023-13"), "immunotherapy.start_date"),
    ("a 900 mm lesion", _plan(_first_lesion_diameter(900)), "lesions[0].baseline_diameter_mm: 900 mm is not plausible"),
    ("40 Gy per fraction", _plan(_first_course_dose(40)), "courses[0].dose_per_fraction_gy: 40 Gy is not plausible"),
    ("0 Gy per fraction", _plan(_first_course_dose(0)), "courses[0].dose_per_fraction_gy: must be more than 0 Gy"),
    (
        "an assessment in the future",
        _derive(MEAS.replace("2024-02-19", "2999-02-19")),
        "line 3, assessment_date: 2999-02-19 is in the future",
    ),
    (
        "new therapy before the reference date",
        _derive(subjects="subject_id,reference_date,death_date,new_therapy_date\nS1,2024-01-10,,2023-12-01\n"),
        "line 2, new_therapy_date: 2023-12-01 is before reference_date",
    ),
    (
        "a death in the future",
        _derive(subjects="subject_id,reference_date,death_date,new_therapy_date\nS1,2024-01-10,2999-01-01,\n"),
        "line 2, death_date: 2999-01-01 is in the future",
    ),
    (
        "a protocol dose per fraction of 50 Gy",
        _protocol(
            "[radiotherapy.low_dose]\ndose_per_fraction_gy = ", "[radiotherapy.low_dose]\ndose_per_fraction_gy = 50 #"
        ),
        "radiotherapy.low_dose.dose_per_fraction_gy: 50 Gy is not plausible",
    ),
    (
        "a protocol haemoglobin minimum of 400 g/L",
        _protocol('min = 100\nunit = "g/L"', 'min = 400\nunit = "g/L"'),
        "eligibility.inclusion.IN6.checks.haemoglobin.min: 400 g/L is not plausible",
    ),
]


@pytest.mark.parametrize(("name", "make", "expected"), CASES, ids=[c[0] for c in CASES])
def test_an_impossible_value_is_refused_naming_the_field_and_nothing_is_written(
    tmp_path: Path, name: str, make: Callable[[Path], list[str]], expected: str
) -> None:
    argv = make(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = runner.invoke(build_app(argv[0]), argv)
    text = " ".join(result.output.split())
    assert result.exit_code == 1, text
    assert text.startswith("Error:") and expected in text
    assert "Enrolment allowed" not in text and "OK" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_the_example_files_still_pass() -> None:
    for argv in (
        ["eligibility", "check", str(EXAMPLES / "patient.json")],
        ["rt", "check", str(EXAMPLES / "plan.json")],
        ["protocol", "check", str(bundled_protocol_path())],
    ):
        result = runner.invoke(build_app(argv[0]), argv)
        assert result.exit_code == 0, result.output
