"""Input checks (response-rules.md §1, §7) and ``abscopal response derive``: every problem is reported with
its line (header = line 1) and nothing is written; response by RT role (§8); investigator discrepancies."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import NEW, N, T, derive, visits
from typer.testing import CliRunner

from abscopal.cli import app
from abscopal.domain import RtRole, TumourAssessment
from abscopal.errors import ValidationError
from abscopal.protocol.model import ResponseOptions
from abscopal.response.discrepancy import find_discrepancies
from abscopal.response.engine import SubjectFacts, derive_subject

HEADER = "subject_id,assessment_date,lesion_id,lesion_class,organ,is_node,diameter_mm,status,rt_role"
GOOD = [
    "S1,2025-01-06,T1,target,lung,false,30,,conventional",
    "S1,2025-01-06,T2,target,liver,false,20,,observation",
    "S1,2025-01-06,N1,non_target,bone,false,,present,none",
    "S1,2025-02-17,T1,target,lung,false,10,,conventional",
    "S1,2025-02-17,T2,target,liver,false,12,,observation",
    "S1,2025-02-17,N1,non_target,bone,false,,present,none",
]
runner = CliRunner()


def _run(tmp_path: Path, rows: list[str], *extra: str, header: str = HEADER):
    src = tmp_path / "meas.csv"
    src.write_text("\n".join([header, *rows]) + "\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["response", "derive", "--input", str(src), "--output", str(out), *extra])
    return result, out


def test_derive_writes_every_output_and_the_options_used(tmp_path: Path) -> None:
    result, out = _run(tmp_path, GOOD, "--criteria", "recist11")
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"timepoints.csv", "subjects.csv", "lesion_roles.csv", "role_rates.csv", "options.json"} <= names
    assert '"sd_min_days": 42' in (out / "options.json").read_text()
    timepoints = (out / "timepoints.csv").read_text().splitlines()
    # 50 -> 22 mm: -56% PR (hand-worked)
    assert timepoints[2].startswith("S1,2025-02-17,22.0") and ",PR," in timepoints[2]


@pytest.mark.parametrize(
    ("bad_row", "line", "field"),
    [
        ("S1,2025-02-17,T1,target,lung,false,-3,,conventional", 5, "diameter_mm"),
        ("S1,2025-02-17,T1,tumour,lung,false,10,,conventional", 5, "lesion_class"),
        ("S1,2025-02-30,T1,target,lung,false,10,,conventional", 5, "assessment_date"),
        ("S1,2025-02-17,T1,non_target,lung,false,,present,conventional", 5, "lesion_class"),
        ("S1,2025-02-17,T9,target,lung,false,10,,conventional", 5, "lesion_class"),
        ("S1,2025-02-17,T1,target,lung,maybe,10,,conventional", 5, "is_node"),
    ],
    ids=[
        "negative diameter",
        "unknown class",
        "impossible date",
        "class change",
        "target missing at baseline",
        "bad is_node",
    ],
)
def test_invalid_row_is_reported_with_its_line_and_nothing_is_written(
    tmp_path: Path, bad_row: str, line: int, field: str
) -> None:
    rows = list(GOOD)
    rows[3] = bad_row  # file line 5
    result, out = _run(tmp_path, rows)
    assert result.exit_code == 1
    assert f"line {line}, {field}" in result.output.replace("\n", " ")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "meas.csv"]


def test_missing_column_is_reported_on_line_one(tmp_path: Path) -> None:
    header = HEADER.replace(",status", "")
    result, out = _run(tmp_path, [r.rsplit(",", 2)[0] + "," + r.rsplit(",", 1)[1] for r in GOOD], header=header)
    assert result.exit_code == 1 and "line 1, status" in result.output.replace("\n", " ")
    assert not out.exists()


def test_subjects_file_with_bad_date_is_reported_with_its_line(tmp_path: Path) -> None:
    subj = tmp_path / "subj.csv"
    subj.write_text("subject_id,reference_date,death_date,new_therapy_date\nS1,2025-01-01,,\nS2,2025-13-01,,\n")
    result, out = _run(tmp_path, GOOD, "--subjects", str(subj))
    assert result.exit_code == 1 and "line 3, reference_date" in result.output.replace("\n", " ")
    assert not out.exists()


def test_option_override_is_applied_and_recorded(tmp_path: Path) -> None:
    result, out = _run(tmp_path, GOOD, "--option", "sd_min_days=35")
    assert result.exit_code == 0, result.output
    assert '"sd_min_days": 35' in (out / "options.json").read_text()


# --- baseline rules (§1) through the domain API


def test_more_than_five_targets_is_an_error() -> None:
    organs = ["lung", "lung", "liver", "liver", "adrenal", "adrenal"]
    with pytest.raises(ValidationError, match="more than 5 target"):
        derive((0, [T(f"t{i}", 20, organ=o) for i, o in enumerate(organs)]))


def test_three_targets_in_one_organ_is_an_error() -> None:
    with pytest.raises(ValidationError, match="more than 2 target lesions in one organ"):
        derive((0, [T("a", 20), T("b", 20), T("c", 20)]))


def test_node_under_fifteen_mm_cannot_be_a_target() -> None:
    with pytest.raises(ValidationError, match="not measurable"):
        derive((0, [T("n", 14, organ="neck", node=True)]))


def test_target_not_measured_at_baseline_is_an_error() -> None:
    with pytest.raises(ValidationError, match="not measured at baseline"):
        derive((0, [T("a", None)]))


def test_new_lesion_at_baseline_is_an_error() -> None:
    with pytest.raises(ValidationError, match="'new' at the baseline"):
        derive((0, [T("a", 20), NEW("n", status="present")]))


# --- response by RT role (§8)


def test_observation_lesion_response_is_the_abscopal_response() -> None:
    # conventional 30 -> 10 (-67%, PR); observation 20 -> 12 (-40%, PR); overall 50 -> 22 (-56%)
    r = derive(
        (0, [T("c", 30, role=RtRole.CONVENTIONAL), T("o", 20, organ="liver", role=RtRole.OBSERVATION)]),
        (42, [T("c", 10, role=RtRole.CONVENTIONAL), T("o", 12, organ="liver", role=RtRole.OBSERVATION)]),
    )
    roles = {(x.role, x.assessment_date): x for x in r.roles}
    obs = [x for x in r.roles if x.role is RtRole.OBSERVATION][-1]
    assert obs.pct_from_baseline == -40.0 and str(obs.response) == "PR"
    assert str(r.best_role_response[RtRole.OBSERVATION]) == "PR"
    assert str(r.best_role_response[RtRole.CONVENTIONAL]) == "PR"
    assert RtRole.LOW_DOSE not in r.best_role_response and len(roles) == 4


def test_role_progression_does_not_follow_overall_response() -> None:
    # low-dose lesion 20 -> 26 (+30%, +6 mm: role PD) while the overall sum 60 -> 46 is SD (-23%)
    r = derive(
        (0, [T("c", 40, role=RtRole.CONVENTIONAL), T("l", 20, organ="liver", role=RtRole.LOW_DOSE)]),
        (42, [T("c", 20, role=RtRole.CONVENTIONAL), T("l", 26, organ="liver", role=RtRole.LOW_DOSE)]),
    )
    assert [str(t.overall) for t in r.timepoints[1:]] == ["SD"]
    assert str(r.best_role_response[RtRole.LOW_DOSE]) == "PD"


# --- investigator versus derived


def test_investigator_response_that_differs_is_a_discrepancy_with_reason() -> None:
    assessments = visits("S1", (0, [T("a", 50), N("x")]), (42, [T("a", 30), N("x")]))
    assessments[1] = TumourAssessment("S1", assessments[1].assessment_date, assessments[1].measurements, "CR")
    derived = derive_subject(assessments, SubjectFacts("S1"), ResponseOptions(), "recist11")
    (d,) = find_discrepancies(assessments, derived)
    assert (d.subject_id, d.investigator, d.derived) == ("S1", "CR", "PR")
    assert "target PR" in d.reason


def test_investigator_response_that_agrees_is_not_a_discrepancy() -> None:
    assessments = visits("S1", (0, [T("a", 50)]), (42, [T("a", 30)]))
    assessments[1] = TumourAssessment("S1", assessments[1].assessment_date, assessments[1].measurements, "iPR")
    derived = derive_subject(assessments, SubjectFacts("S1"), ResponseOptions(), "irecist")
    assert find_discrepancies(assessments, derived) == []


def test_typed_fast_read_and_careful_text_read_give_the_same_table(tmp_path: Path) -> None:
    from abscopal.response.io import DEFAULT_LIMITS, _read_text, _read_typed

    src = tmp_path / "meas.csv"
    src.write_text("\n".join([HEADER, *GOOD[3:], *GOOD[:3]]) + "\n")  # follow-up rows first
    today = 30_000  # days since 1970: 2052
    fast, careful = _read_typed(src, DEFAULT_LIMITS, today), _read_text(src, DEFAULT_LIMITS, today)
    assert fast is not None
    for name in ("subject", "day", "lesion_class", "is_node", "diameter_um", "status", "role", "line"):
        assert (getattr(fast.table, name) == getattr(careful.table, name)).all(), name
    names = lambda t: [t.lesion_ids[i] for i in t.lesion]  # noqa: E731
    assert names(fast.table) == names(careful.table)


def test_per_lesion_output_gives_change_from_each_lesions_own_baseline(tmp_path: Path) -> None:
    result, out = _run(tmp_path, GOOD, "--per-lesion")
    assert result.exit_code == 0, result.output
    rows = (out / "lesions.csv").read_text().splitlines()
    # T1 30 -> 10 mm: -66.6667 %; T2 20 -> 12 mm: -40 % (hand-worked)
    assert any(r.startswith("S1,2025-02-17,T1,target,conventional,10.0,-66.6667") for r in rows), rows
    assert any(r.startswith("S1,2025-02-17,T2,target,observation,12.0,-40.0") for r in rows), rows


def test_file_with_only_a_header_is_an_error_and_nothing_is_written(tmp_path: Path) -> None:
    result, out = _run(tmp_path, [])
    assert result.exit_code == 1 and "no measurement rows" in result.output.replace("\n", " ")
    assert not out.exists()


def test_lesion_roles_csv_gives_each_roles_sum_change_and_response(tmp_path: Path) -> None:
    result, out = _run(tmp_path, GOOD, "--criteria", "recist11")
    assert result.exit_code == 0, result.output
    rows = (out / "lesion_roles.csv").read_text().splitlines()[1:]
    # conventional T1 30 -> 10 mm (-66.7 %, PR); observation T2 20 -> 12 mm (-40 %, PR): hand-worked
    assert rows == [
        "S1,2025-01-06,conventional,1,30.0,0.0,,,",
        "S1,2025-01-06,observation,1,20.0,0.0,,,",
        "S1,2025-02-17,conventional,1,10.0,-66.6667,-66.6667,PR,",
        "S1,2025-02-17,observation,1,12.0,-40.0,-40.0,PR,",
    ]
    rates = (out / "role_rates.csv").read_text().splitlines()
    assert "observation,1,1,1.0" in rates


def test_investigator_column_gives_discrepancies_csv_with_line_and_reason(tmp_path: Path) -> None:
    rows = [r + ("," if i != 3 else ",CR") for i, r in enumerate(GOOD)]  # line 5: the investigator says CR
    result, out = _run(tmp_path, rows, "--criteria", "recist11", header=HEADER + ",investigator_response")
    assert result.exit_code == 0, result.output
    lines = (out / "discrepancies.csv").read_text().splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("S1,2025-02-17,CR,PR,") and lines[1].endswith(",5")
    assert "target PR" in lines[1]


def test_codes_in_other_case_and_spacing_are_read_the_same(tmp_path: Path) -> None:
    from abscopal.response.io import read_measurements

    clean, loose = tmp_path / "clean.csv", tmp_path / "loose.csv"
    clean.write_text("\n".join([HEADER, *GOOD]) + "\n")
    loose.write_text(
        "\n".join([HEADER, *(r.replace(",target,", ", Target ,").replace(",false,", ",FALSE,") for r in GOOD)]) + "\n"
    )
    a, b = read_measurements(clean).table, read_measurements(loose).table
    for name in ("lesion_class", "is_node", "diameter_um", "status", "role"):
        assert (getattr(a, name) == getattr(b, name)).all(), name


def test_empty_fields_quoted_as_polars_writes_them_keep_the_fast_read(tmp_path: Path) -> None:
    from abscopal.response.io import DEFAULT_LIMITS, _read_typed

    src = tmp_path / "meas.csv"
    src.write_text("\n".join([HEADER, *(r.replace(",,", ',"",') for r in GOOD)]) + "\n")
    assert '""' in src.read_text()
    assert _read_typed(src, DEFAULT_LIMITS, 30_000) is not None


def test_a_quoted_comma_sends_the_file_to_the_careful_read(tmp_path: Path) -> None:
    from abscopal.response.io import DEFAULT_LIMITS, _read_typed

    src = tmp_path / "meas.csv"
    src.write_text("\n".join([HEADER, *(r.replace("lung", '"lung, left"') for r in GOOD)]) + "\n")
    assert _read_typed(src, DEFAULT_LIMITS, 30_000) is None
