"""``abscopal stats km|binom`` and ``abscopal design simon``: JSON equal to the R reference; bad input -> one sentence.

Expected numbers come from tests/fixtures/stats/reference.json (R 4.2.2, survival 3.5.3, clinfun 1.1.6).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from abscopal.cli import app
from abscopal.errors import InputFileError
from abscopal.stats.io import read_survival_csv

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "stats"
REFERENCE = json.loads((FIXTURES / "reference.json").read_text())
runner = CliRunner()


def _ref_km(case_id: str) -> dict[str, Any]:
    return next(c for c in REFERENCE["km"] if c["id"] == case_id)


def _invoke_json(args: list[str]) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _errors(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    text = result.stderr if result.stderr else result.output
    return " ".join(text.split())


def test_km_json_for_lung_equals_r_survfit_with_log_log_intervals() -> None:
    ref = _ref_km("lung_log-log_0.95")
    out = _invoke_json(["stats", "km", "--input", str(FIXTURES / "lung.csv"), "--time", "time", "--event", "event"])
    assert (out["n"], out["events"], out["median"]) == (ref["n"], ref["events"], ref["median"])
    assert out["median_ci"] == [ref["median_lower"], ref["median_upper"]]
    assert [s["time"] for s in out["survival"]] == [180.0, 365.0]
    for i, s in enumerate(out["survival"]):
        for key in ("surv", "lower", "upper", "std_err", "n_risk"):
            assert s[key] == pytest.approx(ref["landmarks"][key][i], rel=1e-9)


def test_km_json_with_a_group_adds_per_group_curves_and_the_log_rank_test() -> None:
    out = _invoke_json(
        ["stats", "km", "-i", str(FIXTURES / "lung.csv"), "--time", "time", "--event", "event", "--group", "sex"]
    )
    lr = REFERENCE["logrank"][0]
    assert out["logrank"]["chisq"] == pytest.approx(lr["chisq"], rel=1e-9)
    assert out["logrank"]["df"] == lr["df"]
    assert out["logrank"]["p"] == pytest.approx(lr["p"], rel=1e-9)
    assert set(out["groups"]) == {"1", "2"}
    female = _ref_km("lung_sex2_log-log")
    assert out["groups"]["2"]["median"] == female["median"]
    assert out["groups"]["2"]["median_ci"] == [female["median_lower"], female["median_upper"]]


def test_km_conf_type_and_times_options_give_r_log_intervals_per_group() -> None:
    ref = _ref_km("veteran_trt1_log")
    args = ["stats", "km", "-i", str(FIXTURES / "veteran.csv"), "--time", "time", "--event", "status", "--group", "trt"]
    trt1 = _invoke_json([*args, "--conf-type", "log", "--times", "30,90,180,365"])["groups"]["1"]
    assert trt1["conf_type"] == "log"
    assert trt1["median_ci"] == [ref["median_lower"], ref["median_upper"]]
    assert [s["time"] for s in trt1["survival"]] == [30.0, 90.0, 180.0, 365.0]
    assert [s["upper"] for s in trt1["survival"]] == pytest.approx(ref["landmarks"]["upper"], rel=1e-9)


def test_km_prints_an_r_like_summary_without_json() -> None:
    result = runner.invoke(
        app, ["stats", "km", "-i", str(FIXTURES / "lung.csv"), "--time", "time", "--event", "event", "--group", "sex"]
    )
    assert result.exit_code == 0, result.output
    assert "0.95LCL" in result.stdout and "n.risk" in result.stdout
    assert "Chisq= 10.3  on 1 degrees of freedom, p= 0.001" in result.stdout


def test_binom_json_equals_r_binom_test() -> None:
    ref = next(
        c
        for c in REFERENCE["binom"]
        if (c["x"], c["n"], c["method"], c["conf_level"]) == (7, 24, "clopper-pearson", 0.95)
    )
    out = _invoke_json(["stats", "binom", "7", "24"])
    assert out["estimate"] == pytest.approx(ref["estimate"])
    assert out["lower"] == pytest.approx(ref["lower"], rel=1e-9)
    assert out["upper"] == pytest.approx(ref["upper"], rel=1e-9)


def test_binom_wilson_at_90_percent_equals_r_prop_test() -> None:
    ref = next(
        c for c in REFERENCE["binom"] if (c["x"], c["n"], c["method"], c["conf_level"]) == (12, 40, "wilson", 0.9)
    )
    out = _invoke_json(["stats", "binom", "12", "40", "--method", "wilson", "--conf-level", "0.9"])
    assert (out["lower"], out["upper"]) == pytest.approx((ref["lower"], ref["upper"]), rel=1e-9)


def test_design_simon_json_returns_both_designs_as_clinfun() -> None:
    ref = next(c for c in REFERENCE["simon"] if (c["p0"], c["p1"], c["alpha"], c["beta"]) == (0.1, 0.3, 0.05, 0.2))
    out = _invoke_json(["design", "simon", "--p0", "0.1", "--p1", "0.3", "--alpha", "0.05", "--beta", "0.2"])
    for kind in ("optimal", "minimax"):
        for key in ("n1", "r1", "n", "r"):
            assert out[kind][key] == ref[kind][key]
        assert out[kind]["en0"] == pytest.approx(ref[kind]["en0"], rel=1e-9)
        assert out[kind]["pet0"] == pytest.approx(ref[kind]["pet0"], rel=1e-9)


def test_design_simon_with_stage_one_responses_says_whether_to_continue() -> None:
    # Optimal (0.1, 0.3, 0.05, 0.2) is 1/10, 5/29: 1 response stops, 2 continue.
    args = ["design", "simon", "--p0", "0.1", "--p1", "0.3", "--alpha", "0.05", "--beta", "0.2"]
    assert _invoke_json([*args, "--stage1-responses", "1"])["interim"]["optimal"] == "stop for futility"
    assert _invoke_json([*args, "--stage1-responses", "2"])["interim"]["optimal"] == "continue to stage 2"


@pytest.fixture
def bad_csv(tmp_path: Path) -> Path:
    path = tmp_path / "pfs.csv"
    path.write_text("id,days,progressed,arm\n1,30,1,A\n2,-4,0,B\n3,abc,1,A\n4,50,2,B\n5,60,1,\n")
    return path


def test_a_missing_column_is_named_with_the_columns_that_exist(bad_csv: Path) -> None:
    msg = _errors(["stats", "km", "-i", str(bad_csv), "--time", "time", "--event", "progressed"])
    assert "line 1, time: no such column; the columns are: id, days, progressed, arm" in msg


def test_every_bad_line_is_reported_with_its_column(bad_csv: Path) -> None:
    msg = _errors(["stats", "km", "-i", str(bad_csv), "--time", "days", "--event", "progressed", "--group", "arm"])
    assert "line 3, days: -4 is negative" in msg
    assert "line 4, days: 'abc' is not a number" in msg
    assert "line 5, progressed: is '2'; use 1 for an event and 0 for censored" in msg
    assert "line 6, arm: is empty" in msg


def test_more_responders_than_patients_is_one_sentence_and_exit_one() -> None:
    assert "x: 25 responders cannot exceed the 24 patients evaluated" in _errors(["stats", "binom", "25", "24"])


def test_a_non_numeric_count_is_one_sentence_and_exit_one() -> None:
    assert "X: 'seven' is not a whole number" in _errors(["stats", "binom", "seven", "24"])


def test_bad_landmark_times_are_one_sentence_and_exit_one() -> None:
    msg = _errors(
        ["stats", "km", "-i", str(FIXTURES / "lung.csv"), "--time", "time", "--event", "event", "--times", "180,a"]
    )
    assert "--times: 'a' is not a number" in msg


def test_an_unknown_conf_type_is_one_sentence_and_exit_one() -> None:
    msg = _errors(
        ["stats", "km", "-i", str(FIXTURES / "lung.csv"), "--time", "time", "--event", "event", "--conf-type", "logit"]
    )
    assert "--conf-type: must be one of log-log, log, plain" in msg


def test_a_design_with_p1_below_p0_is_one_sentence_and_exit_one() -> None:
    msg = _errors(["design", "simon", "--p0", "0.4", "--p1", "0.2", "--alpha", "0.05", "--beta", "0.2"])
    assert "p1: the target response rate (0.2) must exceed the null rate p0 (0.4)" in msg


def test_the_reader_refuses_a_file_with_a_header_and_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("days,progressed\n")
    with pytest.raises(InputFileError, match="no data rows"):
        read_survival_csv(path, "days", "progressed")


def test_the_reader_refuses_a_file_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="file: does not exist"):
        read_survival_csv(tmp_path / "nope.csv", "days", "progressed")


def test_the_reader_returns_times_events_and_groups_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text("days,progressed,arm\n30,1,A\n45.5,0,B\n")
    data = read_survival_csv(path, "days", "progressed", "arm")
    assert (data.durations, data.events, data.groups) == ((30.0, 45.5), (1, 0), ("A", "B"))
