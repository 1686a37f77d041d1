"""Read the measurement and subject files of ``abscopal response derive`` and write its outputs
(formats in docs/response.md; response-rules.md §6-7). Every problem of a file is collected with its line
(header = line 1) and raised as one :class:`~abscopal.errors.InputFileError`; outputs are written to a
temporary directory and moved into place only when everything succeeded.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from numpy.typing import NDArray

from abscopal import validation
from abscopal.errors import InputFileError, Problem, ValidationError
from abscopal.inputs import check_header, check_output_dir, read_csv
from abscopal.protocol.model import Plausibility
from abscopal.response.codes import NONE, Code, Criteria, label, parse_response
from abscopal.response.endpoints import NO_DAY, PFS_REASON_TEXT
from abscopal.response.engine import CohortArrays, role_rates
from abscopal.response.irecist import trigger_names
from abscopal.response.lesions import check_table, first_rows, sort_order
from abscopal.response.roles import lesion_pct_change
from abscopal.response.table import CLASS_CODES, ROLE_CODES, ROLES, STATUS_CODES, UM_PER_MM, LesionTable

REQUIRED = (
    "subject_id",
    "assessment_date",
    "lesion_id",
    "lesion_class",
    "organ",
    "is_node",
    "diameter_mm",
    "status",
)
OPTIONAL = ("rt_role", "investigator_response")
SUBJECT_COLUMNS = ("subject_id", "reference_date", "death_date", "new_therapy_date")
_BOOL = {"true": 1, "false": 0, "1": 1, "0": 0, "yes": 1, "no": 0, "t": 1, "f": 0, "y": 1, "n": 0}
_MAX_PER_CHECK = 200
DATE_FORMAT = "%Y-%m-%d"
EPOCH = dt.date(1970, 1, 1)  # day numbers are days since the Unix epoch (polars dates)
DEFAULT_LIMITS = validation.DEFAULT_LIMITS
PCT_DECIMALS = 4  # percentages are written rounded to 0.0001 % (computed unrounded)


@dataclass(frozen=True)
class Measurements:
    """A checked measurement file: the lesion table and, if given, investigator responses per assessment."""

    table: LesionTable
    investigator: pl.DataFrame | None  # subject_id, assessment_date (day), investigator_response, line


def _problems(frame: pl.DataFrame, bad: pl.Expr, field: str, reason: Callable[[str], str]) -> list[Problem]:
    hits = frame.filter(bad).head(_MAX_PER_CHECK).select(pl.col("__line"), pl.col(field))
    return [Problem(int(line), field, reason("" if v is None else str(v))) for line, v in hits.iter_rows()]


def _is_empty(_value: str) -> str:
    return "is empty"


def _blank(col: str) -> pl.Expr:
    return pl.col(col).is_null() | (pl.col(col).str.strip_chars() == "")


def _read_strings(path: Path, columns: tuple[str, ...], optional: tuple[str, ...]) -> pl.DataFrame:
    """The careful read: the shared CSV reader (abscopal.inputs; quotes, ragged rows, duplicated columns,
    encoding, each problem with its physical line), then the wanted columns as text with each record's line."""
    table = read_csv(path, columns, missing_reason="column is missing from the header")
    keep = [c for c in (*columns, *optional) if c in table.header]
    data: dict[str, Any] = {c: pl.Series(c, table.column(c), dtype=pl.String) for c in keep}
    frame = pl.DataFrame(data, schema={c: pl.String for c in keep})
    return frame.with_columns(pl.Series("__line", [r.line for r in table.rows], dtype=pl.Int64)).select("__line", *keep)


def _to_date(col: str) -> pl.Expr:
    return pl.col(col).str.strip_chars().str.to_date(DATE_FORMAT, strict=False)


def _epoch_days(col: str) -> pl.Expr:
    return _to_date(col).cast(pl.Int32).cast(pl.Int64)


def _code(col: str, mapping: Mapping[str, int], blank: int) -> pl.Expr:
    cleaned = pl.col(col).str.strip_chars().str.to_lowercase()
    return (
        pl.when(_blank(col))
        .then(pl.lit(blank))
        .otherwise(cleaned.replace_strict(dict(mapping), default=-9, return_dtype=pl.Int64))
    )


def read_measurements(path: Path, limits: Plausibility | None = None, today: dt.date | None = None) -> Measurements:
    """Read MEAS.csv (response-rules.md §7), check every row and the baseline rules (§1). A typed read is
    tried first; any doubt falls back to a read as text that reports every problem with its line.

    Plausibility (abscopal.validation): a diameter beyond ``limits.diameter_mm`` (default 500 mm) and an
    assessment after ``today`` are refused with their line."""
    limits = limits or DEFAULT_LIMITS
    last_day = (today or dt.date.today()) - EPOCH
    read = _read_typed(path, limits, last_day.days) or _read_text(path, limits, last_day.days)
    table = read.table
    if len(table) == 0:
        raise InputFileError(str(path), [Problem(None, "", "has a header but no measurement rows")])
    row_problems = check_table(table)
    if row_problems:
        raise InputFileError(str(path), [Problem(int(table.line[p.row]), p.field, p.reason) for p in row_problems])
    return read


def _read_text(path: Path, limits: Plausibility, last_day: int) -> Measurements:
    """The careful read: every column as text, every problem collected with its line."""
    raw = _read_strings(path, REQUIRED, OPTIONAL)
    role_col = "rt_role" in raw.columns
    parsed = raw.with_columns(
        _epoch_days("assessment_date").alias("__day"),
        _code("lesion_class", CLASS_CODES, -9).alias("__class"),
        _code("is_node", _BOOL, -9).alias("__node"),
        pl.col("diameter_mm").str.strip_chars().cast(pl.Float64, strict=False).alias("__mm"),
        _code("status", STATUS_CODES, -1).alias("__status"),
        (_code("rt_role", ROLE_CODES, 0) if role_col else pl.lit(0, dtype=pl.Int64)).alias("__role"),
    )
    problems: list[Problem] = []
    for col in ("subject_id", "lesion_id", "organ"):
        problems += _problems(parsed, _blank(col), col, _is_empty)
    problems += _problems(
        parsed,
        pl.col("__day").is_null(),
        "assessment_date",
        lambda v: f"'{v}' is not a valid ISO date (YYYY-MM-DD)",
    )
    problems += _problems(
        parsed,
        pl.col("__class") == -9,
        "lesion_class",
        lambda v: f"'{v}' is not a lesion class (target, non_target, new)",
    )
    problems += _problems(parsed, pl.col("__node") == -9, "is_node", lambda v: f"'{v}' is not true or false")
    problems += _problems(
        parsed,
        ~_blank("diameter_mm") & (pl.col("__mm").is_null() | ~pl.col("__mm").is_finite()),
        "diameter_mm",
        lambda v: f"'{v}' is not a number",
    )
    problems += _problems(
        parsed,
        pl.col("__mm") < 0,
        "diameter_mm",
        lambda v: f"{v} is negative (a diameter is 0 or more mm)",
    )
    top = limits.diameter_mm.max
    problems += _problems(
        parsed,
        pl.col("__mm") > top,
        "diameter_mm",
        lambda v: f"{v} mm is not plausible (possible: {limits.diameter_mm.min:g} to {top:g} mm)",
    )
    problems += _problems(
        parsed,
        pl.col("__day") > last_day,
        "assessment_date",
        lambda v: f"{v.strip()} is in the future (today is {EPOCH + dt.timedelta(days=last_day)})",
    )
    problems += _problems(
        parsed,
        pl.col("__status") == -9,
        "status",
        lambda v: f"'{v}' is not a status (absent, present, increased, unequivocal_progression)",
    )
    if role_col:
        problems += _problems(
            parsed,
            pl.col("__role") == -9,
            "rt_role",
            lambda v: f"'{v}' is not a radiotherapy role (conventional, low_dose, observation, none)",
        )
    if problems:
        raise InputFileError(str(path), sorted(problems, key=lambda p: (p.line or 0, p.field)))

    sid = pl.col("subject_id")
    lid = pl.col("lesion_id")
    coded = parsed.with_columns(
        (sid.rank("dense") - 1).cast(pl.Int64).alias("__subject"),
        pl.col("organ")
        .str.strip_chars()
        .str.to_lowercase()
        .cast(pl.Categorical)
        .to_physical()
        .cast(pl.Int64)
        .alias("__organ"),
        lid.cast(pl.Categorical).to_physical().cast(pl.Int64).alias("__lid"),
    ).with_columns(
        ((pl.col("__subject") * (pl.col("__lid").max() + 1) + pl.col("__lid")).rank("dense") - 1)
        .cast(pl.Int64)
        .alias("__lesion")
    )
    subjects = coded.select(sid.alias("s"), "__subject").unique("__subject").sort("__subject")
    lesions = coded.select(lid.alias("l"), "__lesion").unique("__lesion").sort("__lesion")
    mm = coded["__mm"].to_numpy()
    um = np.where(np.isnan(mm), -1, np.rint(np.nan_to_num(mm, nan=0.0) * UM_PER_MM)).astype(np.int64)
    table = LesionTable(
        subject=coded["__subject"].to_numpy().astype(np.int64),
        day=coded["__day"].to_numpy().astype(np.int64),
        lesion=coded["__lesion"].to_numpy().astype(np.int64),
        lesion_class=coded["__class"].to_numpy().astype(np.int8),
        organ=coded["__organ"].to_numpy().astype(np.int64),
        is_node=coded["__node"].to_numpy().astype(np.bool_),
        diameter_um=um,
        status=coded["__status"].to_numpy().astype(np.int8),
        role=coded["__role"].to_numpy().astype(np.int8),
        line=coded["__line"].to_numpy().astype(np.int64),
        subject_ids=tuple(subjects["s"].to_list()),
        lesion_ids=tuple(lesions["l"].to_list()),
    )
    investigator = None
    if "investigator_response" in coded.columns:
        investigator = (
            coded.filter(~_blank("investigator_response"))
            .select(
                sid.alias("subject_id"),
                pl.col("__day").alias("day"),
                pl.col("investigator_response").str.strip_chars(),
                pl.col("__line").alias("line"),
            )
            .unique(["subject_id", "day"], keep="first", maintain_order=True)
        )
    return Measurements(table=table, investigator=investigator)


# the fast read: the canonical spellings of the coded columns as enums (codes by position; anything else,
# e.g. "Target", makes the fast read give way to the text read, which accepts any case and spacing)
_ENUMS: dict[str, tuple[list[str], list[int]]] = {
    "lesion_class": (["target", "non_target", "new"], [0, 1, 2]),
    "is_node": (["true", "false", "", "1", "0"], [1, 0, -9, 1, 0]),
    "status": (["", "absent", "present", "increased", "unequivocal_progression"], [-1, 0, 1, 2, 3]),
    "rt_role": (["", "none", "conventional", "low_dose", "observation"], [0, 0, 1, 2, 3]),
}
_BLANK = {"lesion_class": -9, "is_node": -9, "status": -1, "rt_role": 0}
_TYPED: dict[str, pl.DataType | type[pl.DataType]] = {
    "subject_id": pl.String,
    "assessment_date": pl.Date,
    "lesion_id": pl.String,
    "organ": pl.String,
    "diameter_mm": pl.Float64,
    "investigator_response": pl.String,
    **{c: pl.Enum(values) for c, (values, _codes) in _ENUMS.items()},
}


def _enum_codes(column: pl.Series) -> NDArray[np.int64]:
    """The engine's codes of an enum column read by the fast path (null: the column's blank code)."""
    _values, codes = _ENUMS[column.name]
    lookup = np.array([*codes, _BLANK[column.name]], dtype=np.int64)
    out: NDArray[np.int64] = lookup[column.to_physical().fill_null(len(codes)).to_numpy()]
    return out


def _category_codes(column: pl.Series, code: Callable[[str], int], blank: int) -> NDArray[np.int64]:
    """Map a categorical column to integer codes by mapping its (few) distinct values only."""
    uniques = column.unique()
    phys = uniques.to_physical()
    size = int(phys.max() or 0) + 2  # type: ignore[arg-type]
    lookup = np.full(size, blank, dtype=np.int64)
    for p, text in zip(phys.to_list(), uniques.cast(pl.String).to_list(), strict=True):
        if p is not None and text is not None:
            lookup[p] = blank if not text.strip() else code(text)
    codes: NDArray[np.int64] = lookup[column.to_physical().fill_null(size - 1).to_numpy()]
    return codes


def _plain_header(path: Path) -> list[str] | None:
    """The header of a file the fast read may take, or None to leave it to the careful read.

    The fast read numbers rows by position (line = row + 2), so it takes only files where a record is one
    physical line and every line has the header's number of fields: no quoted text (so no quoted comma or
    newline), no blank line, no lone carriage return, no byte-order mark, and exactly (lines x
    (columns - 1)) commas. polars refuses a line with too many fields and invalid UTF-8 (the fast read then gives
    way), so the comma count also rules out a line with too few. The one quoting allowed is an empty field
    written ``""`` (polars writes empty strings so): it cannot hide a comma or a newline. Anything else, and
    every header problem of :func:`abscopal.inputs.check_header`, goes to the careful read, which reports it
    with its line.
    """
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data or data.startswith(b"\xef\xbb\xbf") or b"\n\n" in data or b"\n\r\n" in data:
        return None
    if b'"' in data and (b'"""' in data or data.count(b'"') != 2 * data.count(b'""')):
        return None  # quotes other than empty fields ("", as polars writes them) may hide commas or newlines
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        return None
    end = data.find(b"\n")
    first = data[: end if end >= 0 else len(data)].rstrip(b"\r")
    try:
        header = first.decode("utf-8").split(",")
    except UnicodeDecodeError:
        return None
    if [h.strip() for h in header] != header or check_header(header, REQUIRED):
        return None
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    if data.count(b",") != lines * (len(header) - 1):
        return None
    return header


def _read_typed(path: Path, limits: Plausibility, last_day: int) -> Measurements | None:
    """The fast read of a clean file (typed columns, categories mapped once); None when anything is off."""
    header = _plain_header(path)
    if header is None:
        return None
    keep = [c for c in (*REQUIRED, *OPTIONAL) if c in header]
    try:
        # ids read as String then cast: measured faster than parsing them as Categorical or using columns=
        frame = pl.read_csv(path, schema_overrides={c: _TYPED[c] for c in keep})
        ids = ("subject_id", "lesion_id", "organ")
        frame = frame.select(keep).with_columns(pl.col(c).cast(pl.Categorical) for c in ids)
    except Exception:  # any parse problem: the text read reports it with its line
        return None
    if frame.height == 0:
        return None
    cls = _enum_codes(frame["lesion_class"])
    node = _enum_codes(frame["is_node"])
    status = _enum_codes(frame["status"])
    role = _enum_codes(frame["rt_role"]) if "rt_role" in keep else np.zeros(frame.height, np.int64)
    organ_names: dict[str, int] = {}
    organ = _category_codes(frame["organ"], lambda t: organ_names.setdefault(t.strip().lower(), len(organ_names)), -9)
    subject_names = sorted(t for t in frame["subject_id"].unique().cast(pl.String).to_list() if t and t.strip())
    rank = {t: i for i, t in enumerate(subject_names)}
    subject = _category_codes(frame["subject_id"], lambda t: rank[t], -9)
    lesion_phys = frame["lesion_id"].to_physical().fill_null(0).to_numpy().astype(np.int64)
    mm = frame["diameter_mm"].to_numpy()
    if (
        frame["assessment_date"].null_count()
        or frame["lesion_id"].null_count()
        or (subject < 0).any()
        or (organ < 0).any()
        or (cls < 0).any()
        or (node < 0).any()
        or (status == -9).any()
        or (role < 0).any()
        or bool(np.any(np.isfinite(mm) & (mm < 0)) or np.any(np.isinf(mm)))
        or bool(np.any(mm > limits.diameter_mm.max))
        or (frame["assessment_date"].cast(pl.Int32).max() or 0) > last_day  # type: ignore[operator]
    ):
        return None
    key = subject * (int(lesion_phys.max()) + 1) + lesion_phys
    lesion = pd.factorize(key)[0].astype(np.int64)
    first = np.full(int(lesion.max()) + 1, lesion.size, dtype=np.int64)
    np.minimum.at(first, lesion, np.arange(lesion.size, dtype=np.int64))
    lesion_ids = frame["lesion_id"].cast(pl.String).gather(pl.Series(first)).to_list()
    um = np.where(np.isnan(mm), -1, np.rint(np.nan_to_num(mm, nan=0.0) * UM_PER_MM)).astype(np.int64)
    table = LesionTable(
        subject=subject,
        day=frame["assessment_date"].cast(pl.Int32).to_numpy().astype(np.int64),
        lesion=lesion,
        lesion_class=cls.astype(np.int8),
        organ=organ,
        is_node=node.astype(np.bool_),
        diameter_um=um,
        status=status.astype(np.int8),
        role=role.astype(np.int8),
        line=np.arange(2, frame.height + 2, dtype=np.int64),
        subject_ids=tuple(subject_names),
        lesion_ids=tuple(lesion_ids),
    )
    investigator = None
    if "investigator_response" in keep:
        investigator = (
            frame.with_row_index("line", offset=2)
            .filter(pl.col("investigator_response").str.strip_chars().str.len_chars() > 0)
            .select(
                pl.col("subject_id").cast(pl.String),
                pl.col("assessment_date").cast(pl.Int32).cast(pl.Int64).alias("day"),
                pl.col("investigator_response").str.strip_chars(),
                "line",
            )
            .unique(["subject_id", "day"], keep="first", maintain_order=True)
        )
    return Measurements(table=table, investigator=investigator)


@dataclass(frozen=True)
class SubjectDays:
    """Subject-level days aligned with a table's subjects (-1 / NO_DAY when not given)."""

    reference_day: NDArray[np.int64]
    death_day: NDArray[np.int64]
    new_therapy_day: NDArray[np.int64]


def read_subjects(path: Path, subject_ids: tuple[str, ...], today: dt.date | None = None) -> SubjectDays:
    """Read SUBJECTS.csv (response-rules.md §6): subject_id, reference_date, death_date, new_therapy_date.

    Death and new therapy on or after the reference date, nothing after ``today`` (abscopal.validation): a
    death before the origin would give a negative PFS."""
    raw = _read_strings(path, SUBJECT_COLUMNS, ())
    problems = _problems(raw, _blank("subject_id"), "subject_id", lambda _v: "subject_id is empty")
    problems += _problems(
        raw,
        pl.col("subject_id").is_duplicated() & ~_blank("subject_id"),
        "subject_id",
        lambda v: f"subject {v} appears more than once",
    )
    for col in SUBJECT_COLUMNS[1:]:
        problems += _problems(
            raw,
            ~_blank(col) & _to_date(col).is_null(),
            col,
            lambda v: f"'{v}' is not a valid ISO date (YYYY-MM-DD)",
        )
    if problems:
        raise InputFileError(str(path), sorted(problems, key=lambda p: (p.line or 0, p.field)))
    index = {sid: i for i, sid in enumerate(subject_ids)}
    n = len(subject_ids)
    ref, death, therapy = np.full(n, -1), np.full(n, NO_DAY), np.full(n, NO_DAY)
    rows = raw.select(
        pl.col("__line"),
        pl.col("subject_id"),  # verbatim, as in MEAS.csv
        _epoch_days("reference_date"),
        _epoch_days("death_date"),
        _epoch_days("new_therapy_date"),
    )
    problems = []
    today_ = today or dt.date.today()
    for line, sid, r, d, t in rows.iter_rows():
        days = zip(SUBJECT_COLUMNS[1:], (r, d, t), strict=True)
        dates = {k: None if v is None else EPOCH + dt.timedelta(days=v) for k, v in days}
        found = [
            validation.not_after(dates["death_date"], dates["reference_date"], "death_date", "reference_date"),
            validation.not_after(
                dates["new_therapy_date"], dates["reference_date"], "new_therapy_date", "reference_date"
            ),
            *(validation.not_in_future(v, today_, k) for k, v in dates.items()),
        ]
        problems += [Problem(int(line), p.field, p.reason) for p in found if p is not None]
        i = index.get(sid)
        if i is None:
            continue
        if r is not None:
            ref[i] = r
        if d is not None:
            death[i] = d
        if t is not None:
            therapy[i] = t
    if problems:
        raise InputFileError(str(path), problems)
    return SubjectDays(ref.astype(np.int64), death.astype(np.int64), therapy.astype(np.int64))


# --- outputs


def _take(values: Sequence[str], index: NDArray[Any]) -> pl.Series:
    """``values[index]`` as a polars string column, gathered in Rust (no Python strings per row); '' is
    written as an empty field (null)."""
    lookup = pl.Series([v if v else None for v in values], dtype=pl.String)
    return lookup.gather(pl.Series(np.asarray(index, dtype=np.int64)))


def _labels(codes: NDArray[np.int8], criteria: Criteria) -> pl.Series:
    """Response codes as their labels ('' where there is no response)."""
    names = [str(label(c, criteria)) for c in range(len(Code))] + [""]
    return _take(names, np.where(codes < 0, len(Code), codes))


def _dates(days: NDArray[np.int64]) -> pl.Series:
    return pl.Series(days.astype(np.int64)).cast(pl.Int32).cast(pl.Date)


def _mm(values: NDArray[np.int64], ok: NDArray[np.bool_]) -> pl.Series:
    return pl.Series(np.where(ok, values / UM_PER_MM, np.nan)).fill_nan(None)  # exact to 0.001 mm


def _pct(values: NDArray[np.int64], ref: NDArray[np.int64], ok: NDArray[np.bool_]) -> pl.Series:
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(ok & (ref > 0), (values - ref) / np.where(ref > 0, ref, 1) * 100.0, np.nan)
    return pl.Series(np.round(pct, PCT_DECIMALS)).fill_nan(None)


def timepoint_frame(a: CohortArrays) -> pl.DataFrame:
    """timepoints.csv: one row per subject and assessment (baseline included, its responses empty)."""
    tp = a.tp
    s_idx, t_idx = np.nonzero(tp.valid)
    n_t = tp.n_targets[s_idx]
    total = tp.target_sum[s_idx, t_idx]
    complete = (n_t > 0) & (tp.target_measured[s_idx, t_idx] == n_t)
    base = tp.target_sum[s_idx, 0]
    nadir = a.nadir_um[s_idx, t_idx]
    trig = a.triggers[s_idx, t_idx]
    new = np.where(t_idx == 0, 0, np.where(a.new_lesion[s_idx, t_idx], 1, 2))
    return pl.DataFrame(
        {
            "subject_id": _take(a.subject_ids, s_idx),
            "assessment_date": _dates(tp.day[s_idx, t_idx]),
            "sum_mm": _mm(total, complete),
            "pct_from_baseline": _pct(total, base, complete),
            "pct_from_nadir": _pct(total, nadir, complete & (t_idx > 0)),
            "target_response": _labels(a.target[s_idx, t_idx], Criteria.RECIST11),
            "nontarget_response": _labels(a.nontarget[s_idx, t_idx], Criteria.RECIST11),
            "new_lesion_response": _take(["", "yes", "no"], new),
            "overall_response": _labels(a.overall[s_idx, t_idx], a.criteria),
            "iupd_triggers": _take([trigger_names(b) for b in range(8)], trig),
            "icpd_out_of_window": a.out_of_window[s_idx, t_idx].astype(np.int8),
            "new_lesions_seen": tp.new_seen[s_idx, t_idx],
            "nlt_sum_mm": _mm(
                tp.nlt_sum[s_idx, t_idx],
                (tp.nlt_seen[s_idx, t_idx] > 0) & (tp.nlt_measured[s_idx, t_idx] == tp.nlt_seen[s_idx, t_idx]),
            ),
        }
    )


def subject_frame(a: CohortArrays) -> pl.DataFrame:
    """subjects.csv: BOR, ORR/DCR flags, PFS and DOR per subject."""
    start = a.response_start_day
    has_dor = start >= 0
    note_texts = [
        "",
        "CR then PR counted as confirmed PR",
        "iCPD outside window",
        "CR then PR counted as confirmed PR; iCPD outside window",
    ]
    notes = a.cr_confirmed_as_pr.astype(np.int64) + 2 * a.out_of_window.any(axis=1)
    cols: dict[str, Any] = {
        "subject_id": pl.Series(list(a.subject_ids), dtype=pl.String),
        "reference_date": _dates(a.reference_day),
        "bor": _labels(a.bor, a.criteria),
        "bor_confirmed": _labels(a.bor_confirmed, a.criteria),
        "orr": a.objective_response.astype(np.int8),
        "dcr": a.disease_control.astype(np.int8),
        "pfs_event": a.pfs.event.astype(np.int8),
        "pfs_date": _dates(a.pfs.day),
        "pfs_days": a.pfs.day - a.reference_day + 1,
        "pfs_reason": _take([PFS_REASON_TEXT[i] for i in range(len(PFS_REASON_TEXT))], a.pfs.reason),
        "response_start_date": _dates(np.where(has_dor, start, 0)).set(pl.Series(~has_dor), None),
        "dor_days": pl.Series(np.where(has_dor, a.dor_days, 0)).set(pl.Series(~has_dor), None),
        "dor_event": pl.Series(a.pfs.event.astype(np.int8)).set(pl.Series(~has_dor), None),
    }
    for r, role in enumerate(ROLES):
        cols[f"best_{role}"] = _labels(a.roles.best[r], Criteria.RECIST11)
    cols["notes"] = _take(note_texts, notes)
    return pl.DataFrame(cols)


NT_STATUS = ["NE", "", "absent", "present", "present", "progression"]  # index: worst status + 2


def role_frame(a: CohortArrays) -> pl.DataFrame:
    """lesion_roles.csv: per subject, assessment and RT role, the role's target sum and response (§8)."""
    tp = a.tp
    has_role = (tp.role_n_targets[:, :, None] > 0) | (tp.role_nt_worst != -1)  # (roles, subjects, assessments)
    keep = np.moveaxis(has_role & tp.valid[None, :, :], 0, -1)  # (subjects, assessments, roles): rows in order
    s_idx, t_idx, r_idx = np.nonzero(keep)
    n = tp.role_n_targets[r_idx, s_idx]
    total = tp.role_sum[r_idx, s_idx, t_idx]
    complete = (n > 0) & (tp.role_measured[r_idx, s_idx, t_idx] == n)
    return pl.DataFrame(
        {
            "subject_id": _take(a.subject_ids, s_idx),
            "assessment_date": _dates(tp.day[s_idx, t_idx]),
            "rt_role": _take([str(role) for role in ROLES], r_idx),
            "n_targets": n,
            "sum_mm": _mm(total, complete),
            "pct_from_baseline": _pct(total, tp.role_sum[r_idx, s_idx, 0], complete),
            "pct_from_nadir": _pct(total, a.roles.nadir_um[r_idx, s_idx, t_idx], complete & (t_idx > 0)),
            "role_response": _labels(a.roles.codes[r_idx, s_idx, t_idx], Criteria.RECIST11),
            "nontarget_status": _take(NT_STATUS, tp.role_nt_worst[r_idx, s_idx, t_idx] + 2),
        }
    )


def lesion_frame(a: CohortArrays) -> pl.DataFrame:
    """lesions.csv (``--per-lesion``): each measured lesion's % change from its own baseline (§8)."""
    t = a.table
    o = sort_order(t)
    pct = lesion_pct_change(t)[o]
    names = ["target", "non_target", "new"]
    roles = ["none", *[str(r) for r in ROLES]]
    lesion_role = np.zeros(len(t.lesion_ids), dtype=np.int8)
    ordered_lesion = t.lesion[o]
    first = first_rows(ordered_lesion, len(t.lesion_ids))
    lesion_role[ordered_lesion[first]] = t.role[o][first]
    return pl.DataFrame(
        {
            "subject_id": _take(t.subject_ids, t.subject[o]),
            "assessment_date": _dates(t.day[o]),
            "lesion_id": _take(t.lesion_ids, t.lesion[o]),
            "lesion_class": _take(names, t.lesion_class[o]),
            "rt_role": _take(roles, lesion_role[t.lesion[o]]),
            "diameter_mm": _mm(t.diameter_um[o], t.diameter_um[o] >= 0),
            "pct_from_baseline": pl.Series(np.round(pct, PCT_DECIMALS)).fill_nan(None),
        }
    )


def discrepancy_frame(a: CohortArrays, investigator: pl.DataFrame) -> pl.DataFrame:
    """discrepancies.csv: assessments where the investigator's response differs from the derived one."""
    from abscopal.response.discrepancy import compare, explain

    index = {sid: i for i, sid in enumerate(a.subject_ids)}
    rows = []
    for sid, day, given, line in investigator.iter_rows():
        s = index[sid]
        cols = np.flatnonzero(a.tp.valid[s] & (a.tp.day[s] == day))
        derived = int(a.overall[s, cols[0]]) if cols.size else NONE
        d = compare(sid, int(day), given, derived, a.criteria, baseline=bool(cols.size and cols[0] == 0))
        if d is None:
            continue
        reason = d.reason
        if cols.size and parse_response(given) is not None:
            t = int(cols[0])
            n_t = int(a.tp.n_targets[s])
            complete = n_t > 0 and int(a.tp.target_measured[s, t]) == n_t
            total, base = int(a.tp.target_sum[s, t]), int(a.tp.target_sum[s, 0])
            reason += explain(
                label(int(a.target[s, t]), Criteria.RECIST11),
                label(int(a.nontarget[s, t]), Criteria.RECIST11),
                bool(a.new_lesion[s, t]),
                total / UM_PER_MM if complete else None,
                (total - base) / base * 100.0 if complete and base > 0 else None,
            )
        rows.append((sid, d.assessment_date, d.investigator, d.derived, reason, line))
    return pl.DataFrame(
        rows,
        schema={
            "subject_id": pl.String,
            "assessment_date": pl.Date,
            "investigator": pl.String,
            "derived": pl.String,
            "reason": pl.String,
            "line": pl.Int64,
        },
        orient="row",
    )


def write_outputs(
    output: Path,
    arrays: CohortArrays,
    options_used: dict[str, Any],
    investigator: pl.DataFrame | None = None,
    per_lesion: bool = False,
    on_file: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write every output into a temporary directory next to ``output`` and move them in at the end."""
    check_output_dir(output)
    output = output.resolve()
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    except OSError as exc:
        raise ValidationError("--output", f"{output} cannot be written ({exc.strerror})") from None
    try:
        frames: dict[str, Callable[[], pl.DataFrame]] = {
            "timepoints.csv": lambda: timepoint_frame(arrays),
            "subjects.csv": lambda: subject_frame(arrays),
            "lesion_roles.csv": lambda: role_frame(arrays),
            "role_rates.csv": lambda: pl.DataFrame(role_rates(arrays)),
        }
        if per_lesion:
            frames["lesions.csv"] = lambda: lesion_frame(arrays)
        if investigator is not None:
            frames["discrepancies.csv"] = lambda: discrepancy_frame(arrays, investigator)
        for name, build in frames.items():
            build().write_csv(tmp / name)
            if on_file:
                on_file(name)
        summary = {
            **options_used,
            "subjects": len(arrays.subject_ids),
            "orr": {"responders": int(arrays.objective_response.sum()), "subjects": len(arrays.subject_ids)},
            "dcr": {"controlled": int(arrays.disease_control.sum()), "subjects": len(arrays.subject_ids)},
            "role_rates": role_rates(arrays),
        }
        (tmp / "options.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        if output.exists() and not output.is_dir():
            raise ValidationError("--output", f"{output} is a file, not a folder")
        if not output.exists():
            os.replace(tmp, output)
        else:
            for f in tmp.iterdir():
                os.replace(f, output / f.name)
            tmp.rmdir()
        return sorted(output.iterdir())
    except OSError as exc:
        raise ValidationError("--output", f"{output} could not be written ({exc.strerror})") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
