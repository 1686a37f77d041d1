"""``abscopal qol score``: hand-worked fixture in, expected CSV out; a bad file names its lines and writes nothing."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abscopal.cli import app
from abscopal.errors import InputFileError
from abscopal.qol.io import parse_item_answers

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "qol"
runner = CliRunner()


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_scoring_the_good_file_writes_the_hand_worked_scores(tmp_path):
    out = tmp_path / "scores.csv"
    result = runner.invoke(app, ["qol", "score", "--input", str(FIXTURES / "items_good.csv"), "--output", str(out)])
    assert result.exit_code == 0, result.output
    got, expected = _read(out), _read(FIXTURES / "expected_scores.csv")
    assert [(r["subject_id"], r["visit"], r["instrument"], r["scale"]) for r in got] == [
        (r["subject_id"], r["visit"], r["instrument"], r["scale"]) for r in expected
    ]
    for g, e in zip(got, expected, strict=True):
        if e["score"] == "":
            assert g["score"] == "", g
        else:
            assert float(g["score"]) == pytest.approx(float(e["score"]), rel=1e-9, abs=1e-9), g


def test_a_bad_file_reports_every_bad_line_and_writes_nothing(tmp_path):
    out = tmp_path / "scores.csv"
    result = runner.invoke(app, ["qol", "score", "--input", str(FIXTURES / "items_bad.csv"), "--output", str(out)])
    assert result.exit_code == 1
    for line in range(3, 11):
        assert f"line {line}," in result.output.replace("\n", " ")
    assert "line 2," not in result.output
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_bad_file_leaves_an_existing_output_untouched(tmp_path):
    out = tmp_path / "scores.csv"
    out.write_text("previous\n")
    runner.invoke(app, ["qol", "score", "--input", str(FIXTURES / "items_bad.csv"), "--output", str(out)])
    assert out.read_text() == "previous\n"


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        ("P1,BL,QLQ-C30,29,8", "answer", "8 is not a valid answer to QLQ-C30 item 29 (1-7)"),
        ("P1,BL,QLQ-C30,31,2", "item", "31 is not an item of QLQ-C30 (items 1-30)"),
        ("P1,BL,QLQ-C30,2,2.5", "answer", "'2.5' is not an integer answer"),
        ("P1,BL,QLQ-LC13,30,1", "item", "30 is not an item of QLQ-LC13 (items 31-43)"),
        ("P1,BL,EQ-5D,1,1", "instrument", "'EQ-5D' is not QLQ-C30 or QLQ-LC13"),
        ("P1,BL,QLQ-C30,one,1", "item", "'one' is not an item number (an integer)"),
        (",BL,QLQ-C30,1,1", "subject_id", "is empty"),
    ],
)
def test_each_kind_of_invalid_line_is_named_with_line_field_and_reason(row, field, reason):
    text = f"subject_id,visit,instrument,item,answer\n{row}\n"
    with pytest.raises(InputFileError) as info:
        parse_item_answers(text, "items.csv")
    [problem] = info.value.problems
    assert (problem.line, problem.field, problem.reason) == (2, field, reason)


def test_a_duplicate_item_names_the_first_line():
    text = "subject_id,visit,instrument,item,answer\nP1,BL,QLQ-C30,1,1\nP1,BL,QLQ-C30,1,2\n"
    with pytest.raises(InputFileError) as info:
        parse_item_answers(text, "items.csv")
    assert info.value.problems[0].line == 3
    assert "first on line 2" in info.value.problems[0].reason


def test_a_missing_column_is_reported_on_the_header_line():
    with pytest.raises(InputFileError) as info:
        parse_item_answers("subject_id,visit,item,answer\n", "items.csv")
    assert [(p.line, p.field) for p in info.value.problems] == [(1, "instrument")]


def test_an_empty_answer_is_a_blank_item():
    [answer] = parse_item_answers("subject_id,visit,instrument,item,answer\nP1,BL,QLQ-C30,8,\n")
    assert answer.answer is None
