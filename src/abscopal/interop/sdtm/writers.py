"""SDTM datasets to files: SAS XPORT v5 (pyreadstat), CSV and Dataset-JSON 1.1 (interop.md §1.3, §1.4, §7).

Every value is checked before anything is written (:func:`check_datasets`): character values ≤ 200 bytes and
ASCII (XPT v5 holds neither more nor other; CSV and JSON are held to the same so the three agree), refused with
dataset, variable, row, USUBJID, --SEQ and code point named, or with ``transliterate`` mapped through one listed
table. pyreadstat stamps the wall clock into the XPT headers; :func:`write_xpt` overwrites it with ``created``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from abscopal.errors import ValidationError
from abscopal.interop.sdtm.spec import LABEL_MAX, Dataset, PartRows, Rows, Value, check_spec, column, distinct_values

VALUE_MAX = 200  # bytes (SDTMIG 3.4 §2.2.2; XPT v5 would take 250 and pyreadstat would not complain)

#: the only substitutions ``--transliterate`` makes (interop.md §1.4): typographic quotes and dashes, NBSP,
#: full-width ASCII U+FF01-FF5E, and ≥ ≤ × ° µ. CJK is never transliterated (it stays in ODM).
TRANSLITERATION: dict[str, str] = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u00a0": " ",
    "\u2265": ">=",
    "\u2264": "<=",
    "\u00d7": "x",
    "\u00b0": " deg",
    "\u00b5": "u",
    "\u03bc": "u",
    **{chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)},
}


@dataclass
class CheckReport:
    """What :func:`check_datasets` changed: one line per substitution made by ``transliterate``."""

    substitutions: list[str] = field(default_factory=list)


def _seq_name(ds: Dataset) -> str | None:
    for n in ds.spec.names:
        if n.endswith("SEQ") and len(n) == 5:
            return n
    return None


def _where(ds: Dataset, row_number: int, variable: str) -> str:
    row = ds.rows[row_number]
    parts = [f"{ds.spec.name}.{variable} row {row_number + 1}"]
    if row.get("USUBJID") is not None:
        parts.append(f"USUBJID {row['USUBJID']}")
    seq = _seq_name(ds)
    if seq and row.get(seq) is not None:
        parts.append(f"{seq} {row[seq]}")
    return ", ".join(parts)


def check_datasets(datasets: Sequence[Dataset], *, transliterate: bool = False) -> tuple[list[Dataset], CheckReport]:
    """The datasets as they will be written, or :class:`ValidationError` naming the first value that cannot be.

    Checks the spec (names ≤ 8, labels ≤ 40), that each row has exactly the spec's variables, numeric values
    are numbers, and character values are ASCII (after the listed transliteration, if asked) and ≤ 200 bytes.
    """
    report = CheckReport()
    out: list[Dataset] = []
    for ds in datasets:
        out.append(_check_dataset(ds, transliterate, report))
    return out, report


@dataclass(frozen=True)
class _ColumnFacts:
    """What the check and the XPT layout need to know of one column's values (nulls left out), learnt in one pass
    over its distinct values: their types; for numbers whether all are finite and the range of their magnitudes;
    for text whether all are ASCII without NUL and the longest length."""

    kinds: frozenset[type]
    finite: bool = True
    magnitudes: tuple[float, float] | None = None  # the smallest and largest non-zero |value|
    ascii: bool = True
    nul: bool = False
    longest: int = 0


def _column_facts(rows: Sequence[Mapping[str, Value]], name: str) -> _ColumnFacts:
    """:class:`_ColumnFacts` of ``name``, kept on :class:`Rows` (the check and the XPT writer both ask, and a
    10,000-patient dataset's columns are hundreds of thousands of values)."""
    memo = rows.memo if isinstance(rows, Rows) else None
    if memo is not None and name in memo:
        found: _ColumnFacts = memo[name]
        return found
    values = distinct_values(rows, name)
    kinds = frozenset(map(type, values)) - {type(None)}  # every value's type (True and 1 are equal, not alike)
    distinct = list(dict.fromkeys(values))  # equal values once (1 and 1.0 are one): kinds come from every value
    if None in distinct:
        distinct.remove(None)
    facts = _ColumnFacts(kinds)
    if distinct and kinds <= {int, float}:
        numbers = cast(list[float], distinct)
        try:
            finite = math.isfinite(math.fsum(numbers))
        except OverflowError:
            finite = False
        sizes = [abs(float(v)) for v in numbers if v != 0] if finite else []
        facts = _ColumnFacts(kinds, finite, (min(sizes), max(sizes)) if sizes else None)
    elif distinct and kinds == {str}:
        texts = cast(list[str], distinct)
        nul = any("\x00" in "".join(texts[i : i + _CHUNK]) for i in range(0, len(texts), _CHUNK))
        facts = _ColumnFacts(kinds, ascii=all(map(str.isascii, texts)), nul=nul, longest=max(map(len, texts)))
    if memo is not None:
        memo[name] = facts
    return facts


def _plainly_valid(ds: Dataset) -> bool:
    """True when every row has the spec's variables and every value passes as it is (a column at a time); False
    when a value may not, and then :func:`_check_dataset` walks the rows to refuse or transliterate it."""
    names = ds.spec.names
    if not isinstance(ds.rows, Rows) and any(tuple(row) != names for row in ds.rows):
        return False
    for var in ds.spec.variables:
        facts = _column_facts(ds.rows, var.name)
        if var.type == "Num":
            if not facts.kinds <= {int, float} or not facts.finite:
                return False
        elif facts.kinds and (facts.kinds != {str} or not facts.ascii or facts.longest > VALUE_MAX):
            return False
    return True


def _check_dataset(ds: Dataset, transliterate: bool, report: CheckReport) -> Dataset:
    """One dataset of :func:`check_datasets` (rows kept as they are unless ``transliterate`` changed a value)."""
    check_spec(ds.spec)
    if _plainly_valid(ds):
        return ds
    names = ds.spec.names
    kinds = [(var.name, var.type == "Num") for var in ds.spec.variables]
    rows: list[Mapping[str, Value]] = []
    for i, row in enumerate(ds.rows):
        if tuple(row) != names:
            raise ValidationError(_where(ds, i, "*"), f"row variables {list(row)} differ from the spec's")
        new: dict[str, Value] | None = None
        for name, numeric in kinds:
            value = row[name]
            if value is None:
                continue
            if numeric:
                if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                    raise ValidationError(_where(ds, i, name), f"{value!r} is not a finite number")
                continue
            if not isinstance(value, str):
                raise ValidationError(_where(ds, i, name), f"{value!r} is not text")
            if value.isascii():
                if len(value) > VALUE_MAX:  # ASCII: characters = bytes
                    raise ValidationError(
                        _where(ds, i, name),
                        f"is {len(value)} bytes long; SDTM character values hold at most {VALUE_MAX}",
                    )
                continue
            if transliterate:
                fixed = "".join(TRANSLITERATION.get(ch, ch) for ch in value)
                if fixed != value:
                    report.substitutions.append(f"{_where(ds, i, name)}: {value!r} -> {fixed!r}")
                value = fixed
            bad = next((ch for ch in value if not ch.isascii()), None)
            if bad is not None:
                raise ValidationError(
                    _where(ds, i, name),
                    f"holds the non-ASCII character U+{ord(bad):04X} ({bad!r}), which XPT v5 cannot carry; "
                    "correct the record"
                    + ("" if transliterate else " or export with --transliterate if it is punctuation"),
                )
            if new is None:
                new = dict(row)
            new[name] = value
            size = len(value.encode("utf-8"))
            if size > VALUE_MAX:
                raise ValidationError(
                    _where(ds, i, name), f"is {size} bytes long; SDTM character values hold at most {VALUE_MAX}"
                )
        rows.append(row if new is None else new)
    return Dataset(ds.spec, rows)


# ----------------------------------------------------------------------------- XPT


def _sas_datetime(created: dt.datetime) -> bytes:
    return created.strftime("%d%b%y:%H:%M:%S").upper().encode("ascii")


def stamp_xpt(data: bytes, name: str, created: dt.datetime) -> bytes:
    """Overwrite the four ``ddMMMyy:hh:mm:ss`` header fields (library and member: created, modified)."""
    stamp = _sas_datetime(created)
    buf = bytearray(data)
    for marker in (b"SAS     SAS     SASLIB  ", b"SAS     " + name.encode("ascii").ljust(8) + b"SASDATA "):
        at = bytes(buf).find(marker)
        if at < 0 or at % 80:
            raise ValidationError(name, "pyreadstat wrote an XPT header this exporter does not recognise")
        buf[at + 64 : at + 80] = stamp
        buf[at + 80 : at + 96] = stamp
    return bytes(buf)


def _pyreadstat_xpt(ds: Dataset, rows: Sequence[Mapping[str, Value]], workdir: Path) -> bytes:
    """``ds``'s spec with ``rows`` as pyreadstat writes it (unstamped)."""
    import pandas as pd
    import pyreadstat

    columns: dict[str, Any] = {}
    for var in ds.spec.variables:
        values = column(rows, var.name)
        if var.type == "Num":
            columns[var.name] = pd.Series([math.nan if v is None else float(v) for v in values], dtype="float64")
        else:
            columns[var.name] = pd.Series(["" if v is None else str(v) for v in values], dtype="object")
    frame = pd.DataFrame(columns, columns=list(ds.spec.names))
    labels: list[str | None] = [v.label for v in ds.spec.variables]
    if len(ds.spec.label) > LABEL_MAX or any(len(x or "") > LABEL_MAX for x in labels):
        raise ValidationError(ds.spec.name, f"a label is longer than {LABEL_MAX} characters")
    tmp = workdir / f".{ds.spec.name.lower()}.xpt.tmp"
    pyreadstat.write_xport(
        frame, str(tmp), file_label=ds.spec.label, column_labels=labels, table_name=ds.spec.name, file_format_version=5
    )
    data = tmp.read_bytes()
    tmp.unlink()
    return data


_OBS_HEADER = b"HEADER RECORD*******OBS     HEADER RECORD!!!!!!!" + b"0" * 30 + b"  "
_XPT_MISSING = 0x2E00000000000000  # SAS missing "." as XPORT stores it


def _ibm_doubles(values: Sequence[Value]) -> Any:
    """IEEE doubles -> IBM System/360 doubles (the XPORT number), exact for normal numbers; null -> missing."""
    import numpy as np

    a = np.array([math.nan if v is None else float(v) for v in values], dtype="float64")
    bits = a.view(np.uint64)
    sign = (bits >> np.uint64(63)) & np.uint64(1)
    exp = ((bits >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64) - 1023
    mantissa = (bits & np.uint64((1 << 52) - 1)) | np.uint64(1 << 52)
    shift = (exp & 3).astype(np.uint64)
    ibm = ((((exp >> 2) + 65).astype(np.uint64) | (sign << np.uint64(7))) << np.uint64(56)) | (mantissa << shift)
    ibm[a == 0] = 0
    ibm[np.isnan(a)] = _XPT_MISSING
    return ibm


_CHUNK = 20_000  # observations laid out at a time: bounds the memory of a large dataset's XPT


def _xpt_chunk(ds: Dataset, rows: Sequence[Mapping[str, Value]], widths: Mapping[str, int]) -> bytes:
    """``rows`` as XPORT observations: character values space padded to their width, numbers IBM doubles."""
    import numpy as np

    fields = [(v.name, ">u8" if v.type == "Num" else f"S{widths[v.name]}") for v in ds.spec.variables]
    records = np.empty(len(rows), dtype=np.dtype(fields))
    char_bytes = np.zeros(records.dtype.itemsize, dtype=bool)
    offset = 0  # fields are packed in order (no alignment)
    # a part-held variable (PartRows) is laid out once per distinct part of the chunk, then taken per row
    parts: dict[int, tuple[list[tuple[Any, ...]], Any]] = {}
    for var, (name, kind) in zip(ds.spec.variables, fields, strict=True):
        p = rows.held(name) if isinstance(rows, PartRows) else None
        if p is not None:
            assert isinstance(rows, PartRows)
            if p not in parts:
                parts[p] = rows.parts(p)
            i = rows.where[rows.positions[name]][1]
            values = [part[i] for part in parts[p][0]]
            take = parts[p][1]
        else:
            values = column(rows, name)
            take = None
            if var.type != "Num":  # text (checked): each distinct value laid out once, then taken per row
                distinct = dict.fromkeys(values)
                if len(distinct) * 4 < len(values):
                    position = {v: j for j, v in enumerate(distinct)}
                    take = np.fromiter(map(position.__getitem__, values), dtype=np.intp, count=len(values))
                    values = list(distinct)
        if var.type == "Num":
            laid = _ibm_doubles(values)
            offset += 8
        else:
            laid = np.array(["" if v is None else str(v) for v in values], dtype=kind)
            char_bytes[offset : offset + widths[name]] = True  # NUL padded by numpy: spaces below
            offset += widths[name]
        records[name] = laid if take is None else laid[take]
    matrix = records.view(np.uint8).reshape(len(rows), records.dtype.itemsize)
    chars = matrix[:, char_bytes]
    chars[chars == 0] = 0x20
    matrix[:, char_bytes] = chars
    return matrix.tobytes()


def _fast_xpt(ds: Dataset, workdir: Path) -> Iterator[bytes] | None:
    """The bytes pyreadstat would write for ``ds`` (unstamped), in pieces, observations laid out with numpy: the
    header is pyreadstat's own for a one-row template of the same widths; None when a value is outside what this
    path reproduces (then pyreadstat writes the whole dataset)."""
    rows = ds.rows
    if not rows:
        return None
    widths: dict[str, int] = {}
    template: dict[str, Value] = {}
    for var in ds.spec.variables:
        facts = _column_facts(rows, var.name)  # the check's (checked rows: numbers, or ASCII text)
        if var.type == "Num":
            if not facts.kinds <= {int, float}:
                return None
            if facts.magnitudes and (facts.magnitudes[0] < 1e-75 or facts.magnitudes[1] > 1e75):
                return None  # near the ends of IBM's exponent range: readstat decides
            template[var.name] = 0.0
        else:
            if facts.kinds and (facts.kinds != {str} or not facts.ascii or facts.nul):
                return None
            widths[var.name] = max(1, facts.longest)
            template[var.name] = "x" * widths[var.name]
    head = _pyreadstat_xpt(ds, [template], workdir)
    at = head.find(_OBS_HEADER)
    if at < 0 or at % 80:
        return None

    def pieces() -> Iterator[bytes]:
        yield head[: at + 80]
        size = 0
        for start in range(0, len(rows), _CHUNK):
            chunk = _xpt_chunk(ds, rows[start : start + _CHUNK], widths)
            size += len(chunk)
            yield chunk
        yield b" " * (-size % 80)

    return pieces()


def _xpt_pieces(ds: Dataset, created: dt.datetime, workdir: Path) -> Iterator[bytes]:
    """One dataset as stamped SAS XPORT v5, in pieces (the first holds every header, so it carries the stamp)."""
    pieces = _fast_xpt(ds, workdir)
    if pieces is None:
        yield stamp_xpt(_pyreadstat_xpt(ds, ds.rows, workdir), ds.spec.name, created)
        return
    yield stamp_xpt(next(pieces), ds.spec.name, created)
    yield from pieces


def xpt_bytes(ds: Dataset, created: dt.datetime, workdir: Path) -> bytes:
    """One dataset as SAS XPORT v5 bytes (labels, widths = longest value, Num as 8-byte floats), stamped."""
    return b"".join(_xpt_pieces(ds, created, workdir))


# ----------------------------------------------------------------------------- CSV and JSON


def _text(value: Value) -> str:
    """CSV cell: empty = null, integers without a point, floats in their shortest round-trip repr."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def csv_bytes(ds: Dataset) -> bytes:
    """RFC 4180 CSV, UTF-8 without BOM, LF line ends, a header of variable names."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(ds.spec.names)
    for r in ds.rows:
        writer.writerow([_text(r[n]) for n in ds.spec.names])
    return out.getvalue().encode("utf-8")


_FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _json_type(ds: Dataset, name: str, kind: str) -> str:
    values = [r[name] for r in ds.rows if r[name] is not None]
    if kind == "Num":
        return "integer" if all(isinstance(v, int) for v in values) else "double"
    if name.endswith("DTC") and values and all(_FULL_DATE.match(str(v)) for v in values):
        return "date"
    return "string"


def char_width(ds: Dataset, name: str) -> int:
    """The XPT width of a character variable: its longest value in bytes (at least 1), = define.xml Length."""
    return max([1, *(len(str(r[name]).encode("utf-8")) for r in ds.rows if r[name] is not None)])


def json_bytes(
    ds: Dataset, *, studyid: str, created: dt.datetime, last_modified: dt.datetime | None, version: str
) -> bytes:
    """Dataset-JSON 1.1 (CDISC 2024): metadata, columns from the spec (OIDs as define.xml), rows as arrays."""
    columns = []
    for var in ds.spec.variables:
        col: dict[str, Any] = {
            "itemOID": f"IT.{ds.spec.name}.{var.name}",
            "name": var.name,
            "label": var.label,
            "dataType": _json_type(ds, var.name, var.type),
        }
        if var.type == "Char":
            col["length"] = char_width(ds, var.name)
        if var.name in ds.spec.keys:
            col["keySequence"] = ds.spec.keys.index(var.name) + 1
        columns.append(col)
    doc = {
        "datasetJSONCreationDateTime": created.isoformat(timespec="seconds"),
        "datasetJSONVersion": "1.1.0",
        "fileOID": f"{studyid}.{ds.spec.name}",
        "dbLastModifiedDateTime": (last_modified or created).replace(tzinfo=None).isoformat(timespec="seconds"),
        "originator": "Abscopal",
        "sourceSystem": {"name": "Abscopal", "version": version},
        "studyOID": studyid,
        "metaDataVersionOID": f"MDV.{studyid}.SDTMIG.3.4",
        "itemGroupOID": f"IG.{ds.spec.name}",
        "records": len(ds.rows),
        "name": ds.spec.name,
        "label": ds.spec.label,
        "columns": columns,
        "rows": [[r[n] for n in ds.spec.names] for r in ds.rows],
    }
    return (json.dumps(doc, ensure_ascii=True, indent=None, separators=(",", ":")) + "\n").encode("utf-8")


# ----------------------------------------------------------------------------- a whole export

FORMATS = ("xpt", "csv", "json")


@dataclass(frozen=True)
class WrittenFile:
    name: str
    dataset: str
    rows: int
    sha256: str


def write_datasets(
    datasets: Sequence[Dataset],
    output: Path,
    *,
    formats: Sequence[str],
    created: dt.datetime,
    studyid: str,
    version: str,
    last_modified: dt.datetime | None = None,
    on_file: Any = None,
) -> list[WrittenFile]:
    """Write every dataset in every format into ``output`` (already checked by :func:`check_datasets`)."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValidationError("--format", f"{', '.join(unknown)} is not one of {', '.join(FORMATS)}")
    output.mkdir(parents=True, exist_ok=True)
    written: list[WrittenFile] = []
    for ds in datasets:
        for fmt in formats:
            written.append(
                write_dataset(
                    ds, output, fmt, created=created, studyid=studyid, version=version, last_modified=last_modified
                )
            )
            if on_file is not None:
                on_file(written[-1].name)
    return written


def write_dataset(
    ds: Dataset,
    output: Path,
    fmt: str,
    *,
    created: dt.datetime,
    studyid: str,
    version: str,
    last_modified: dt.datetime | None = None,
) -> WrittenFile:
    """Write one (checked) dataset in one format into the existing folder ``output``."""
    name = f"{ds.spec.name.lower()}.{fmt}"
    if fmt == "xpt":  # streamed: a large dataset's file is never held whole
        digest = hashlib.sha256()
        with (output / name).open("wb") as fh:
            for piece in _xpt_pieces(ds, created, output):
                digest.update(piece)
                fh.write(piece)
        return WrittenFile(name, ds.spec.name, len(ds.rows), digest.hexdigest())
    if fmt == "csv":
        data = csv_bytes(ds)
    else:
        data = json_bytes(ds, studyid=studyid, created=created, last_modified=last_modified, version=version)
    (output / name).write_bytes(data)
    return WrittenFile(name, ds.spec.name, len(ds.rows), hashlib.sha256(data).hexdigest())


def manifest_bytes(
    files: Sequence[WrittenFile],
    *,
    versions: Mapping[str, str],
    cutoff: dt.date,
    created: dt.datetime,
    audit_seq: int,
    audit_hash: str,
    options: Mapping[str, Any],
    define: Mapping[str, Any] | None = None,
) -> bytes:
    """manifest.json (interop.md §7): versions, cut-off, audit head, per-file sha256 and rows, options; and the
    define.xml written with the datasets (name, context, sha256), kept apart from ``files`` (not a dataset)."""
    doc: dict[str, Any] = {
        "created": created.isoformat(timespec="seconds"),
        "cutoff": cutoff.isoformat(),
        "versions": dict(versions),
        "audit_head": {"seq": audit_seq, "hash": audit_hash},
        "options": dict(options),
        "files": [{"name": f.name, "dataset": f.dataset, "rows": f.rows, "sha256": f.sha256} for f in files],
    }
    if define is not None:
        doc["define"] = dict(define)
    return (json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=True) + "\n").encode("utf-8")
