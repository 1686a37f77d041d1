"""Eligibility over columns: a million candidates at once, with the same rules as the scalar path.

Only the inputs are read differently (columns instead of one :class:`~abscopal.domain.Screening`); the decision of
every check kind, the combination into criteria, IN8/EX1 and the verdict are the array operations of
:mod:`abscopal.protocol.eligibility`, and lab units go through the one table of :mod:`abscopal.protocol.units`.

Columns (a pandas or polars DataFrame, or a mapping of equal-length arrays): one per Screening field named by the checks
(``age_years``, ``ecog``, ``diet``, ``brain_metastases``, ...; NaN/None when not recorded), and per lab
``lab_<name>`` (value), ``lab_<name>_unit`` (unit as written) and ``lab_<name>_uln`` (the site's ULN).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from abscopal.domain import Screening
from abscopal.errors import ValidationError
from abscopal.protocol import units
from abscopal.protocol.eligibility import (
    STATUS_OF_CODE,
    VERDICT_OF_CODE,
    Codes,
    Verdict,
    evaluate_codes,
    is_derived,
)
from abscopal.protocol.model import (
    Check,
    Eligibility,
    IsFalseCheck,
    IsTrueCheck,
    LabMaxUlnCheck,
    LabMinCheck,
    PresentCheck,
    RangeCheck,
)

Columns = pd.DataFrame | Mapping[str, Any] | Any  # Any: a polars DataFrame


@dataclass(frozen=True)
class ColumnResult:
    """Codes per criterion (0 not met, 1 unknown, 2 met) and the verdict per row (0 ineligible, 1 incomplete,
    2 eligible)."""

    criteria: dict[str, Codes]
    verdict: npt.NDArray[np.int8]
    exclusion_ids: frozenset[str]

    def __len__(self) -> int:
        return int(self.verdict.shape[0])

    def status(self, criterion_id: str, row: int) -> str:
        return STATUS_OF_CODE[int(self.criteria[criterion_id][row])].value

    def verdict_of(self, row: int) -> Verdict:
        return VERDICT_OF_CODE[int(self.verdict[row])]

    def excluded_by(self, criterion_id: str) -> npt.NDArray[np.bool_]:
        """Rows this criterion excludes (inclusion not met, exclusion met)."""
        codes = self.criteria[criterion_id]
        result: npt.NDArray[np.bool_] = codes == (2 if criterion_id in self.exclusion_ids else 0)
        return result

    def screening_log(self) -> dict[str, Any]:
        """Counts for the CONSORT diagram, as :meth:`ScreeningLog.as_dict` gives them for checklists."""
        not_eligible = self.verdict != 2
        return {
            "screened": len(self),
            "eligible": int((self.verdict == 2).sum()),
            "ineligible": int((self.verdict == 0).sum()),
            "incomplete": int((self.verdict == 1).sum()),
            "reasons": {cid: n for cid in self.criteria if (n := int((self.excluded_by(cid) & not_eligible).sum()))},
            "unknown": {
                cid: n for cid, codes in self.criteria.items() if (n := int(((codes == 1) & not_eligible).sum()))
            },
        }


def _column(frame: Columns, name: str, n: int) -> pd.Series:
    if name in frame:
        return pd.Series(np.asarray(frame[name], dtype=object) if not hasattr(frame[name], "dtype") else frame[name])
    return pd.Series([None] * n, dtype=object)


def _floats(series: pd.Series, name: str) -> npt.NDArray[np.float64]:
    if series.dtype.kind in "fiub":  # already numeric numpy: NaN marks missing
        numeric: npt.NDArray[np.float64] = series.to_numpy(dtype=np.float64)
        return numeric
    try:
        converted = np.asarray(series.astype("Float64").to_numpy(na_value=np.nan), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationError(name, f"must be numeric ({exc})") from None
    return converted


def _lab_values(frame: Columns, check: LabMinCheck | LabMaxUlnCheck, n: int) -> npt.NDArray[np.float64]:
    base = f"lab_{check.lab}"
    values = _floats(_column(frame, base, n), base)
    unit_col = _column(frame, f"{base}_unit", n)
    codes, uniques = pd.factorize(unit_col, use_na_sentinel=True)
    canonical = check.unit if isinstance(check, LabMinCheck) else None
    try:
        factors = units.factors_for(check.lab, [str(u) for u in uniques], canonical)
    except ValidationError as exc:
        bad_rows = np.flatnonzero(np.isin(codes, [i for i, u in enumerate(uniques) if _bad(check.lab, str(u))]))
        raise ValidationError(f"{base}_unit", f"{exc.reason} (row {int(bad_rows[0])})") from None
    factor = np.where(codes >= 0, factors[np.maximum(codes, 0)] if len(factors) else np.nan, np.nan)
    if isinstance(check, LabMinCheck):
        return values * factor
    uln = _floats(_column(frame, f"{base}_uln", n), f"{base}_uln")
    with np.errstate(invalid="ignore", divide="ignore"):
        if np.any(uln <= 0):
            raise ValidationError(f"{base}_uln", "the upper limit of normal must be positive")
        # a known unit is required (factor not NaN); value and ULN share it, so the ratio is unit-free
        return values / uln * (factor / factor)


def _bad(lab: str, unit: str) -> bool:
    try:
        units.factor(lab, unit)
    except ValidationError:
        return True
    return False


def column_datum(frame: Columns, check: Check, n: int) -> npt.NDArray[Any]:
    """The input of ``check`` for every row (see :func:`abscopal.protocol.eligibility.decide`)."""
    if isinstance(check, LabMinCheck | LabMaxUlnCheck):
        return _lab_values(frame, check, n)
    name = getattr(check, "field", "")
    col = _column(frame, name, n)
    if isinstance(check, PresentCheck):
        return col.notna().to_numpy()
    if isinstance(check, RangeCheck | IsTrueCheck | IsFalseCheck):
        return _floats(col, name)
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    plain = np.empty(len(uniques) + 1, dtype=object)  # last slot: None for the missing (-1) code
    for i, v in enumerate(uniques):
        plain[i] = v.value if isinstance(v, enum.Enum) else v
    return plain[codes]


def evaluate_columns(frame: Columns, eligibility: Eligibility) -> ColumnResult:
    """Evaluate every criterion for every row of ``frame`` (pandas, polars, or a mapping of arrays)."""
    if not isinstance(frame, pd.DataFrame | Mapping) and hasattr(frame, "columns") and hasattr(frame, "to_dict"):
        # a polars DataFrame: one numpy array per column (nulls become NaN or None)
        frame = {str(c): frame[c].to_numpy() for c in frame.columns}
    n = _length(frame)
    _, crit_codes, verdict = evaluate_codes(eligibility, lambda c: column_datum(frame, c, n))
    return ColumnResult(crit_codes, verdict, frozenset(eligibility.exclusion))


def _length(frame: Columns) -> int:
    if isinstance(frame, pd.DataFrame):
        return len(frame)
    lengths = {len(v) for v in frame.values()}
    if len(lengths) != 1:
        raise ValidationError("columns", f"columns have different lengths ({sorted(lengths)})")
    return lengths.pop()


def frame_from_screenings(screenings: Sequence[Screening], lab_names: Iterable[str] | None = None) -> pd.DataFrame:
    """Columns for a list of screenings (tests, exports): one row each, labs as value/unit/uln columns."""
    labs = sorted(set(lab_names or ()) | {name for s in screenings for name in s.labs})
    fields = [f for f in Screening.__slots__ if f not in ("labs",)]
    data: dict[str, list[Any]] = {f: [] for f in fields}
    for lab in labs:
        for suffix in ("", "_unit", "_uln"):
            data[f"lab_{lab}{suffix}"] = []
    for s in screenings:
        for f in fields:
            v = getattr(s, f)
            data[f].append(v.value if isinstance(v, enum.Enum) else v)
        for lab in labs:
            value = s.labs.get(lab)
            data[f"lab_{lab}"].append(None if value is None else value.value)
            data[f"lab_{lab}_unit"].append(None if value is None else value.unit)
            data[f"lab_{lab}_uln"].append(None if value is None else value.uln)
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in data.items()})


def derived_criteria(eligibility: Eligibility) -> list[str]:
    return [cid for cid, c in {**eligibility.inclusion, **eligibility.exclusion}.items() if is_derived(c)]
