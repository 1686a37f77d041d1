"""``abscopal qol score --protocol-visits``: visits checked against the protocol schedule's codes.

The bundled schedule's questionnaire codes are baseline, week_6, ..., week_102 (tests/unit/protocol/
test_visit_codes.py). tests/fixtures/qol/items_good.csv labels its second form "week6" (lines 45-56), which is a
free label, not a code.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from abscopal.cli import app
from abscopal.errors import InputFileError
from abscopal.protocol.model import load_bundled
from abscopal.qol.io import parse_item_answers

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "qol"
SCHEDULE = load_bundled().current.schedule
HEADER = "subject_id,visit,instrument,item,answer\n"
runner = CliRunner()


def _score(tmp_path: Path, source: Path, *options: str) -> tuple[int, str, Path]:
    out = tmp_path / "scores.csv"
    result = runner.invoke(app, ["qol", "score", "--input", str(source), "--output", str(out), *options])
    return result.exit_code, result.output.replace("\n", " "), out


def test_without_the_option_a_free_visit_label_is_scored(tmp_path: Path) -> None:
    code, _, out = _score(tmp_path, FIXTURES / "items_good.csv")
    assert code == 0
    assert ",week6," in out.read_text(encoding="utf-8")


def test_with_the_option_a_label_off_the_schedule_is_refused_with_its_line_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    code, output, out = _score(tmp_path, FIXTURES / "items_good.csv", "--protocol-visits")
    assert code == 1
    assert "line 45, visit: 'week6' is not a visit of the protocol schedule (expected baseline, week_6" in output
    assert not out.exists()


def test_with_the_option_schedule_codes_are_scored(tmp_path: Path) -> None:
    source = tmp_path / "items.csv"
    text = (FIXTURES / "items_good.csv").read_text(encoding="utf-8").replace(",week6,", ",week_6,")
    source.write_text(text, encoding="utf-8")
    code, output, out = _score(tmp_path, source, "--protocol-visits")
    assert code == 0, output
    assert ",week_6," in out.read_text(encoding="utf-8")


def test_the_reader_with_the_schedule_names_every_line_off_the_schedule() -> None:
    text = HEADER + "P1,baseline,QLQ-C30,1,1\nP1,week_7,QLQ-C30,1,1\nP1,week_12,QLQ-C30,1,1\nP1,end,QLQ-C30,1,1\n"
    with pytest.raises(InputFileError) as caught:
        parse_item_answers(text, schedule=SCHEDULE)
    assert [(p.line, p.field) for p in caught.value.problems] == [(3, "visit"), (5, "visit")]


def test_the_reader_with_the_schedule_reports_an_empty_visit_only_as_empty() -> None:
    with pytest.raises(InputFileError) as caught:
        parse_item_answers(HEADER + "P1,,QLQ-C30,1,1\n", schedule=SCHEDULE)
    assert [(p.line, p.field, p.reason) for p in caught.value.problems] == [(2, "visit", "is empty")]
