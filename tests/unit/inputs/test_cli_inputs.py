"""Every file-reading command refuses a user's file mistake with one sentence, exit code 1 and nothing written
(issue 10, deliverable 7): not UTF-8, a folder given as a file, a duplicated header column, a ragged row, a
repeated JSON key, and an output folder that cannot be written. Never "Internal error"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abscopal.cli import build_app

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"
MEAS = (
    "subject_id,assessment_date,lesion_id,lesion_class,organ,is_node,diameter_mm,status\n"
    "S1,2025-01-06,T1,target,lung,false,30,\n"
    "S1,2025-02-17,T1,target,lung,false,20,\n"
)
ITEMS = "subject_id,visit,instrument,item,answer\nP1,baseline,QLQ-C30,1,1\n"
AE = "subject_id,term,grade,onset_date\nS1,Fatigue,2,2025-01-10\n"
SURV = "time,event\n3,1\n5,0\n"


def _file(name: str, content: bytes | str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path

    return make


def _folder(tmp: Path) -> Path:
    folder = tmp / "a_folder"
    folder.mkdir()
    return folder


# (area, argv before the file, argv after the file)
COMMANDS = {
    "response derive": ("response", ["response", "derive", "--output", "{out}", "--input"], []),
    "qol score": ("qol", ["qol", "score", "--output", "{out}/scores.csv", "--input"], []),
    "ae summary": ("ae", ["ae", "summary", "--population", "3", "--input"], []),
    "stats km": ("stats", ["stats", "km", "--time", "time", "--event", "event", "--input"], []),
    "eligibility check": ("eligibility", ["eligibility", "check"], []),
    "rt check": ("rt", ["rt", "check"], []),
    "protocol check": ("protocol", ["protocol", "check"], []),
}

CASES = [
    (
        "response derive",
        _file("m.csv", MEAS.encode().replace(b"lung", b"l\xe9ng", 1)),
        f"offset {MEAS.index('lung') + 1} (0xE9) is not UTF-8",
    ),
    ("response derive", _folder, "is a folder, not a file"),
    ("response derive", _file("m.csv", MEAS.replace("organ", "lesion_id")), "column appears twice in the header"),
    ("response derive", _file("m.csv", MEAS.replace("30,\n", "30\n")), "line 2: has 7 fields, the header has 8"),
    ("qol score", _file("i.csv", ITEMS.encode() + b"P1,baseline,QLQ-C30,2,\x97\n"), "line 3: the byte at offset"),
    ("qol score", _folder, "is a folder, not a file"),
    ("qol score", _file("i.csv", ITEMS.replace("answer", "item")), "column appears twice"),
    ("qol score", _file("i.csv", ITEMS + "P1,baseline,QLQ-C30,2\n"), "line 3: has 4 fields, the header has 5"),
    ("ae summary", _file("ae.csv", AE.encode().replace(b"Fatigue", b"Fatigu\xe9")), "is not UTF-8"),
    ("ae summary", _folder, "is a folder, not a file"),
    ("ae summary", _file("ae.csv", AE.replace("grade", "Term")), "line 1, term: column appears twice"),
    ("ae summary", _file("ae.csv", AE + "S2,Fatigue,1,2025-01-10,extra\n"), "line 3: has 5 fields"),
    ("stats km", _file("s.csv", b"time,event\n3,1\n\xff,0\n"), "line 3: the byte at offset 15 (0xFF)"),
    ("stats km", _folder, "is a folder, not a file"),
    ("stats km", _file("s.csv", "time,event,time\n3,1,2\n"), "column appears twice"),
    ("stats km", _file("s.csv", SURV + "7\n"), "line 4: has 1 fields, the header has 2"),
    ("eligibility check", _file("p.json", b'{"subject_id": "S\xe9"}'), "is not UTF-8"),
    ("eligibility check", _folder, "is a folder, not a file"),
    (
        "eligibility check",
        _file("p.json", '{"subject_id": "S1",\n"ecog": 1,\n"ecog": 0}'),
        "line 3, ecog: key appears twice",
    ),
    ("rt check", _file("plan.json", b"\xfe{}"), "offset 0 (0xFE) is not UTF-8"),
    ("rt check", _folder, "is a folder, not a file"),
    ("rt check", _file("plan.json", '{"subject_id": "S1", "subject_id": "S2"}'), "subject_id: key appears twice"),
    ("protocol check", _file("p.toml", b'[trial]\nid = "\xe9"\n'), "line 2: the byte at offset"),
    ("protocol check", _folder, "is a folder, not a file"),
]


@pytest.mark.parametrize(("command", "make", "expected"), CASES, ids=[f"{c[0]}: {c[2]}" for c in CASES])
def test_a_bad_input_file_is_one_sentence_exit_1_and_nothing_written(
    tmp_path: Path, command: str, make: Callable[[Path], Path], expected: str
) -> None:
    area, before, after = COMMANDS[command]
    out = tmp_path / "out"
    src = make(tmp_path)
    argv = [a.replace("{out}", str(out)) for a in before] + [str(src), *after]
    if command == "qol score":
        out.mkdir()
    result = runner.invoke(build_app(area), argv)
    text = result.output.replace("\n", " ")
    assert result.exit_code == 1, text
    assert "Internal error" not in text and expected in text
    assert not out.exists() or not any(out.iterdir())


def test_a_quoted_verbatim_term_keeps_its_comma_and_newline(tmp_path: Path) -> None:
    from abscopal.safety.ctcae import load_ctcae
    from abscopal.safety.io import read_adverse_events

    path = tmp_path / "ae.csv"
    path.write_text('subject_id,term,grade,onset_date,verbatim\nS1,Cough,1,2025-01-10,"cough,\nworse at night"\n')
    [event] = read_adverse_events(path, load_ctcae())
    assert event.verbatim == "cough,\nworse at night"


# --- output folders


def _derive(tmp_path: Path, output: Path) -> tuple[int, str]:
    src = tmp_path / "m.csv"
    src.write_text(MEAS)
    result = runner.invoke(build_app("response"), ["response", "derive", "-i", str(src), "-o", str(output)])
    return result.exit_code, result.output.replace("\n", " ")


def test_response_output_whose_parent_folder_is_missing_is_refused(tmp_path: Path) -> None:
    code, text = _derive(tmp_path, tmp_path / "no" / "out")
    assert code == 1 and "does not exist; create it first" in text
    assert not (tmp_path / "no").exists()


def test_response_output_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("keep me")
    code, text = _derive(tmp_path, tmp_path / "out")
    assert code == 1 and "is a file, not a folder" in text
    assert (tmp_path / "out").read_text() == "keep me"


def test_qol_output_in_a_missing_folder_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "i.csv"
    src.write_text(ITEMS)
    args = ["qol", "score", "-i", str(src), "-o", str(tmp_path / "no" / "scores.csv")]
    result = runner.invoke(build_app("qol"), args)
    assert result.exit_code == 1 and "does not exist; create it first" in result.output.replace("\n", " ")


def test_qol_output_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "i.csv"
    src.write_text(ITEMS)
    result = runner.invoke(build_app("qol"), ["qol", "score", "-i", str(src), "-o", str(tmp_path)])
    assert result.exit_code == 1 and "is a folder; give the name of the file" in result.output.replace("\n", " ")


# --- the fast read of response derive gives way to the careful read on anything unusual


def test_response_row_after_a_quoted_newline_is_reported_on_its_physical_line(tmp_path: Path) -> None:
    rows = MEAS.replace("S1,2025-01-06,T1,target,lung", 'S1,2025-01-06,T1,target,"lung,\nleft"')
    rows = rows.replace("false,20,", "false,-20,")  # file line 4: the record after the quoted newline
    src = tmp_path / "m.csv"
    src.write_text(rows)
    result = runner.invoke(build_app("response"), ["response", "derive", "-i", str(src), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "line 4, diameter_mm" in result.output.replace("\n", " ")


def test_response_with_a_blank_line_reports_the_physical_line(tmp_path: Path) -> None:
    src = tmp_path / "m.csv"
    src.write_text(MEAS.replace("\nS1,2025-02-17", "\n\nS1,2025-02-17").replace("false,20,", "false,-20,"))
    result = runner.invoke(build_app("response"), ["response", "derive", "-i", str(src), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "line 4, diameter_mm" in result.output.replace("\n", " ")


def test_response_with_a_crlf_file_is_read(tmp_path: Path) -> None:
    src = tmp_path / "m.csv"
    src.write_bytes(MEAS.replace("\n", "\r\n").encode())
    result = runner.invoke(build_app("response"), ["response", "derive", "-i", str(src), "-o", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "subjects.csv").exists()
