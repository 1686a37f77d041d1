"""The shared reader of user files (abscopal.inputs, docs/inputs.md): one test per refusal, each naming its line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from abscopal.errors import InputFileError, ValidationError
from abscopal.inputs import (
    check_output_dir,
    check_output_file,
    parse_csv,
    parse_json,
    read_csv,
    read_input_text,
    read_json_object,
)


def _problem(exc: pytest.ExceptionInfo[InputFileError]) -> tuple[int | None, str, str]:
    [p] = exc.value.problems
    return p.line, p.field, p.reason


# --- CSV


def test_a_quoted_field_keeps_its_comma_and_its_newline() -> None:
    table = parse_csv('subject_id,verbatim\nS1,"cough,\nworse at night"\n')
    assert [r.cells["verbatim"] for r in table] == ["cough,\nworse at night"]


def test_a_record_after_a_quoted_newline_has_its_physical_line() -> None:
    table = parse_csv('a,b\n1,"x\ny\nz"\n2,w\n')
    assert [r.line for r in table] == [2, 5]


def test_blank_lines_are_skipped_but_still_counted() -> None:
    table = parse_csv("a,b\n\n1,2\n,\n3,4\n")
    assert [(r.line, r.get("a")) for r in table] == [(3, "1"), (5, "3")]


def test_a_duplicated_header_column_is_refused() -> None:
    with pytest.raises(InputFileError) as exc:
        parse_csv("a,b,a\n1,2,3\n")
    assert _problem(exc) == (1, "a", "column appears twice in the header (columns 1 and 3)")


def test_an_unnamed_header_column_is_refused() -> None:
    with pytest.raises(InputFileError) as exc:
        parse_csv("a,,b\n1,2,3\n")
    assert _problem(exc) == (1, "", "column 2 of the header has no name")


def test_a_row_with_too_many_fields_is_refused_with_its_line() -> None:
    with pytest.raises(InputFileError) as exc:
        parse_csv("a,b\n1,2\n3,4,5\n")
    assert _problem(exc) == (3, "", "has 3 fields, the header has 2 (too many)")


def test_a_row_with_too_few_fields_is_refused_with_its_line() -> None:
    with pytest.raises(InputFileError) as exc:
        parse_csv("a,b\n1,2\n3\n")
    assert _problem(exc) == (3, "", "has 1 fields, the header has 2 (too few)")


def test_every_ragged_row_is_listed() -> None:
    with pytest.raises(InputFileError) as exc:
        parse_csv("a,b\n1\n2,3\n4,5,6\n")
    assert [p.line for p in exc.value.problems] == [2, 4]


def test_an_unterminated_quote_is_refused_with_the_line_where_the_record_starts() -> None:
    with pytest.raises(InputFileError) as exc:
        parse_csv('a,b\n1,2\n3,"never closed\n4,5\n')
    line, _, reason = _problem(exc)
    assert line == 3 and "not valid CSV" in reason


def test_a_missing_required_column_is_refused() -> None:
    with pytest.raises(InputFileError) as exc:
        parse_csv("a,b\n1,2\n", required=("a", "c"))
    assert _problem(exc) == (1, "c", "required column is missing")


def test_an_unknown_column_is_refused_when_the_columns_are_known() -> None:
    with pytest.raises(InputFileError) as exc:
        parse_csv("a,bb\n1,2\n", required=("a",), known=("b",))
    assert _problem(exc) == (1, "bb", "unknown column (a typo?)")


def test_a_file_with_no_header_is_refused() -> None:
    with pytest.raises(InputFileError) as exc:
        parse_csv(",,\n1,2,3\n", required=("a",))
    assert _problem(exc) == (1, "", "the header is missing (expected a)")


def test_header_names_can_be_lower_cased() -> None:
    assert parse_csv(" Subject_ID ,Term\nS1,x\n", header_case="lower").header == ("subject_id", "term")


# --- bytes and files


def test_a_byte_order_mark_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xef\xbb\xbfa,b\n1,2\n")
    assert read_csv(path, required=("a",)).header == ("a", "b")


def test_bytes_that_are_not_utf8_are_refused_with_their_offset_and_line(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"a,b\n1,2\n3,caf\xe9\n")  # latin-1 e-acute: 4 + 4 + 5 bytes before it, offset 13
    with pytest.raises(InputFileError) as exc:
        read_input_text(path)
    reason = "the byte at offset 13 (0xE9) is not UTF-8; save the file as UTF-8 and try again"
    assert _problem(exc) == (3, "", reason)


def test_the_offset_of_a_bad_byte_counts_the_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xef\xbb\xbfa\n\xff\n")
    with pytest.raises(InputFileError) as exc:
        read_input_text(path)
    assert _problem(exc)[:2] == (2, "") and "offset 5 (0xFF)" in _problem(exc)[2]


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("\n  \n")
    with pytest.raises(InputFileError) as exc:
        read_input_text(path)
    assert _problem(exc) == (None, "", "the file is empty")


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputFileError) as exc:
        read_input_text(tmp_path / "nope.csv")
    assert _problem(exc) == (None, "", "does not exist")


def test_a_folder_given_as_a_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputFileError) as exc:
        read_input_text(tmp_path)
    assert "is a folder, not a file" in _problem(exc)[2]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a\n1\n")
    path.chmod(0)
    with pytest.raises(InputFileError) as exc:
        read_input_text(path)
    assert _problem(exc) == (None, "", "cannot be read: permission denied")


# --- JSON


def test_a_key_given_twice_in_one_object_is_refused_with_both_lines() -> None:
    text = '{\n  "ecog": 1,\n  "labs": {"ecog": 2},\n  "ecog": 3\n}'
    with pytest.raises(InputFileError) as exc:
        parse_json(text)
    assert _problem(exc) == (4, "ecog", "key appears twice in the same object (first on line 2)")


def test_the_same_key_in_two_objects_is_fine() -> None:
    assert parse_json('[{"a": 1}, {"a": 2}]') == [{"a": 1}, {"a": 2}]


def test_a_repeated_key_in_a_nested_object_is_refused() -> None:
    with pytest.raises(InputFileError) as exc:
        parse_json('{"labs": {"hb": 1,\n "hb": 2}}')
    assert _problem(exc)[:2] == (2, "hb")


def test_a_json_syntax_error_names_its_line_and_column() -> None:
    with pytest.raises(InputFileError) as exc:
        parse_json('{\n  "a": 1,\n  "b" 2\n}')
    assert _problem(exc) == (3, "", "is not valid JSON: Expecting ':' delimiter (column 7)")


def test_nan_is_not_json() -> None:
    with pytest.raises(InputFileError) as exc:
        parse_json('{"a": NaN}')
    assert "NaN is not a JSON number" in _problem(exc)[2]


def test_data_after_the_document_is_refused() -> None:
    with pytest.raises(InputFileError) as exc:
        parse_json('{"a": 1}\n{"b": 2}')
    assert _problem(exc)[0] == 2


def test_a_json_file_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text("[1, 2]")
    with pytest.raises(InputFileError) as exc:
        read_json_object(path)
    assert _problem(exc) == (1, "", "must be a JSON object {...}, not an array")


# --- outputs


def test_an_output_file_in_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist; create it first"):
        check_output_file(tmp_path / "no" / "scores.csv")


def test_an_output_file_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="is a folder; give the name of the file"):
        check_output_file(tmp_path)


def test_an_output_folder_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "out"
    path.write_text("")
    with pytest.raises(ValidationError, match="is a file, not a folder"):
        check_output_dir(path)


def test_an_output_folder_whose_parent_is_missing_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist; create it first"):
        check_output_dir(tmp_path / "a" / "b")


def test_an_output_folder_that_is_not_writable_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != folder)  # as for a non-root user on 0500
    with pytest.raises(ValidationError, match=f"the folder {folder} is not writable"):
        check_output_dir(folder)


def test_an_output_file_in_a_folder_that_is_not_writable_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path)
    with pytest.raises(ValidationError, match="is not writable"):
        check_output_file(tmp_path / "scores.csv")
