"""The one reader of the files users hand to Abscopal (CSV, JSON) and the one check of where outputs go.

Every file-reading command goes through here, so every file gets the same refusals, each a
:class:`~abscopal.errors.Problem` with the physical line (1-based; for a CSV record, the line where it starts)
inside one :class:`~abscopal.errors.InputFileError` (docs/inputs.md):

- a missing file, a directory given as a file, a file that cannot be read;
- bytes that are not UTF-8 (with the byte offset, from ``UnicodeDecodeError.start``); a UTF-8 BOM is dropped;
- an empty file;
- CSV (RFC 4180, Python's :mod:`csv`): quoted fields keep their commas and newlines; a duplicated or unnamed
  header column, a missing required column, a row with too many or too few fields, an unterminated quote;
- JSON (RFC 8259): a syntax error with its line and column, a key given twice in one object (RFC 8259 §4 leaves
  it undefined: we refuse it rather than keep the last one silently), ``NaN`` / ``Infinity`` (not JSON).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import json.decoder
import json.scanner
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from abscopal.errors import InputFileError, Problem, ValidationError

__all__ = [
    "CsvRow",
    "CsvTable",
    "check_header",
    "check_output_dir",
    "check_output_file",
    "decode_text",
    "parse_csv",
    "parse_json",
    "read_csv",
    "read_input_bytes",
    "read_input_text",
    "read_json",
    "read_json_object",
]


# ----------------------------------------------------------------------------- bytes and text


def _fail(source: str, reason: str, line: int | None = None, field: str = "") -> InputFileError:
    return InputFileError(source, [Problem(line, field, reason)])


def read_input_bytes(path: str | Path) -> bytes:
    """The file's bytes, or :class:`InputFileError` saying in one sentence why not (missing, a folder, ...)."""
    p = Path(path)
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise _fail(str(p), "does not exist") from None
    except IsADirectoryError:
        raise _fail(str(p), "is a folder, not a file; give the path of the file inside it") from None
    except PermissionError:
        raise _fail(str(p), "cannot be read: permission denied") from None
    except OSError as exc:
        raise _fail(str(p), f"cannot be read ({exc.strerror or exc.__class__.__name__})") from None


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 text of ``data`` (a byte-order mark dropped); bytes that are not UTF-8 are refused with their offset
    and line. An empty file (nothing but whitespace) is refused too."""
    offset = 0
    if data.startswith(codecs.BOM_UTF8):
        data, offset = data[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start]
        raise _fail(
            source,
            f"the byte at offset {exc.start + offset} (0x{byte:02X}) is not UTF-8; save the file as UTF-8 "
            "and try again",
            line,
        ) from None
    if not text.strip():
        raise _fail(source, "the file is empty")
    return text


def read_input_text(path: str | Path) -> str:
    """The file's text (UTF-8, a byte-order mark dropped), or :class:`InputFileError` saying why not."""
    return decode_text(read_input_bytes(path), str(Path(path)))


# ----------------------------------------------------------------------------- CSV


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One CSV record: the physical line it starts on and its cells by (normalised) column name, verbatim."""

    line: int
    cells: Mapping[str, str]

    def get(self, name: str) -> str:
        """The cell of column ``name`` with surrounding spaces removed ('' when the column is absent)."""
        return self.cells.get(name, "").strip()


@dataclass(frozen=True, slots=True)
class CsvTable:
    """A CSV file read and checked: its source, its header (normalised) and its non-blank records."""

    source: str
    header: tuple[str, ...]
    rows: tuple[CsvRow, ...]

    def __iter__(self) -> Iterator[CsvRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[str]:
        """Every record's cell of ``name``, verbatim, in file order."""
        return [r.cells.get(name, "") for r in self.rows]


HeaderCase = Literal["keep", "lower"]


def _normalise(name: str, case: HeaderCase) -> str:
    name = name.strip()
    return name.lower() if case == "lower" else name


def check_header(
    header: Sequence[str],
    required: Sequence[str] = (),
    known: Sequence[str] | None = None,
    missing_reason: str = "required column is missing",
) -> list[Problem]:
    """Problems of a (normalised) header, all on line 1: an unnamed column, a column given twice, a required
    column missing, and (when ``known`` is given) a column nobody reads (a typo)."""
    problems: list[Problem] = []
    first: dict[str, int] = {}
    for i, name in enumerate(header, start=1):
        if not name:
            problems.append(Problem(1, "", f"column {i} of the header has no name"))
        elif name in first:
            problems.append(Problem(1, name, f"column appears twice in the header (columns {first[name]} and {i})"))
        else:
            first[name] = i
    problems += [Problem(1, c, missing_reason) for c in required if c not in first]
    if known is not None:
        allowed = set(known) | set(required)
        problems += [Problem(1, c, "unknown column (a typo?)") for c in first if c not in allowed]
    return problems


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(physical start line, fields) of every CSV record; :class:`csv.Error` carries on to the caller."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _CsvSyntax(start, str(exc)) from None
        yield start, row


class _CsvSyntax(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


def parse_csv(
    text: str,
    source: str = "<csv>",
    required: Sequence[str] = (),
    known: Sequence[str] | None = None,
    header_case: HeaderCase = "keep",
    missing_reason: str = "required column is missing",
) -> CsvTable:
    """Parse CSV ``text`` with a header row; raise :class:`InputFileError` listing every structural problem.

    Blank records (every cell empty) are skipped; a record with another number of fields than the header is
    refused with the line where it starts. Cells are kept verbatim (quotes removed, newlines inside quotes kept).
    """
    records = _records(text.removeprefix("\ufeff"))
    try:
        first = next(records, None)
        if first is None or not any(c.strip() for c in first[1]):
            expected = f" (expected {', '.join(required)})" if required else ""
            raise _fail(source, f"the header is missing{expected}", 1)
        header = tuple(_normalise(c, header_case) for c in first[1])
        problems = check_header(header, required, known, missing_reason)
        if problems:
            raise InputFileError(source, problems)
        rows: list[CsvRow] = []
        n = len(header)
        for line, fields in records:
            if not any(c.strip() for c in fields):
                continue
            if len(fields) != n:
                more = "too many" if len(fields) > n else "too few"
                problems.append(Problem(line, "", f"has {len(fields)} fields, the header has {n} ({more})"))
                continue
            rows.append(CsvRow(line, dict(zip(header, fields, strict=True))))
    except _CsvSyntax as exc:
        raise _fail(source, f"is not valid CSV ({exc.message}); check the quotes", exc.line) from None
    if problems:
        raise InputFileError(source, problems)
    return CsvTable(source, header, tuple(rows))


def read_csv(
    path: str | Path,
    required: Sequence[str] = (),
    known: Sequence[str] | None = None,
    header_case: HeaderCase = "keep",
    missing_reason: str = "required column is missing",
) -> CsvTable:
    """Read and check a CSV file (see :func:`parse_csv`)."""
    p = Path(path)
    return parse_csv(read_input_text(p), str(p), required, known, header_case, missing_reason)


# ----------------------------------------------------------------------------- JSON


class _DuplicateKey(Exception):
    def __init__(self, key: str, first: int, second: int) -> None:
        super().__init__(key)
        self.key, self.first, self.second = key, first, second


def _key_offsets(s: str, start: int, stop: int) -> Iterator[tuple[str, int]]:
    """(key, offset) of each key of the object ``s[start:stop]`` (``s[start]`` is its '{'), nested ones skipped."""
    depth = 0
    i = start
    while i < stop:
        ch = s[i]
        if ch == '"':
            j = i + 1
            while s[j] != '"':
                j += 2 if s[j] == "\\" else 1
            if depth == 1:
                k = j + 1
                while k < stop and s[k] in " \t\r\n":
                    k += 1
                if k < stop and s[k] == ":":
                    yield json.loads(s[i : j + 1]), i
            i = j + 1
            continue
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        i += 1


def _checked_object(
    s_and_end: tuple[str, int], strict: bool, scan_once: Any, object_hook: Any, object_pairs_hook: Any, memo: Any
) -> tuple[dict[str, Any], int]:
    s, begin = s_and_end
    pairs, end = json.decoder.JSONObject(s_and_end, strict, scan_once, None, list, memo)  # type: ignore[attr-defined]
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        seen: dict[str, int] = {}
        for key, at in _key_offsets(s, begin - 1, end):
            if key in seen:
                raise _DuplicateKey(key, seen[key], at)
            seen[key] = at
    return dict(pairs), end


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


class _Decoder(json.JSONDecoder):
    """The standard decoder with the pure-Python scanner, so that every object is checked for repeated keys."""

    def __init__(self) -> None:
        super().__init__(parse_constant=_no_constant)
        self.parse_object = _checked_object
        self.scan_once = json.scanner.py_make_scanner(self)  # type: ignore[attr-defined]


def _line_of(s: str, offset: int) -> int:
    return s.count("\n", 0, offset) + 1


def parse_json(text: str, source: str = "<json>") -> Any:
    """Parse JSON ``text``; a syntax error, a repeated key or NaN/Infinity is an :class:`InputFileError`
    with its line."""
    try:
        value, end = _Decoder().raw_decode(text, len(text) - len(text.lstrip()))
    except json.JSONDecodeError as exc:
        raise _fail(source, f"is not valid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
    except _DuplicateKey as exc:
        first = _line_of(text, exc.first)
        raise _fail(
            source, f"key appears twice in the same object (first on line {first})", _line_of(text, exc.second), exc.key
        ) from None
    except ValueError as exc:  # NaN / Infinity
        raise _fail(source, f"is not valid JSON: {exc}") from None
    rest = text[end:]
    if rest.strip():
        line = _line_of(text, end + len(rest) - len(rest.lstrip()))
        raise _fail(source, "is not valid JSON: extra data after the end of the document", line)
    return value


def read_json(path: str | Path) -> Any:
    """Read and parse a JSON file (see :func:`parse_json`)."""
    p = Path(path)
    return parse_json(read_input_text(p), str(p))


def read_json_object(path: str | Path) -> dict[str, Any]:
    """A JSON file whose document is an object (the PATIENT/PLAN/SCHEDULE files)."""
    value = read_json(path)
    if not isinstance(value, dict):
        raise _fail(str(path), f"must be a JSON object {{...}}, not {_json_kind(value)}", 1)
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    return "null" if value is None else "a number"


# ----------------------------------------------------------------------------- outputs


def _writable_folder(folder: Path, option: str, what: str) -> None:
    if not folder.exists():
        raise ValidationError(option, f"the folder {folder} (for {what}) does not exist; create it first")
    if not folder.is_dir():
        raise ValidationError(option, f"{folder} (for {what}) is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValidationError(option, f"the folder {folder} (for {what}) is not writable")


def check_output_file(path: str | Path, option: str = "--output") -> None:
    """Refuse, before any work, an output file that cannot be written: a folder, or a missing or read-only
    folder to put it in."""
    p = Path(path)
    if p.is_dir():
        raise ValidationError(option, f"{p} is a folder; give the name of the file to write")
    if p.exists() and not os.access(p, os.W_OK):
        raise ValidationError(option, f"{p} exists and is not writable")
    _writable_folder(p.parent if str(p.parent) else Path("."), option, p.name)


def check_output_dir(path: str | Path, option: str = "--output") -> None:
    """Refuse, before any work, an output folder that cannot be written: a file, a read-only folder, or a
    folder whose parent does not exist (only the last level is created)."""
    p = Path(path)
    if p.exists():
        if not p.is_dir():
            raise ValidationError(option, f"{p} is a file, not a folder")
        if not os.access(p, os.W_OK | os.X_OK):
            raise ValidationError(option, f"the folder {p} is not writable")
        return
    parent = p.absolute().parent
    _writable_folder(parent, option, p.name)
