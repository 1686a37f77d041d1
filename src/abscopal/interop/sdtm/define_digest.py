"""The rows define.xml needs of a dataset, without holding the dataset (issue 13: bounded memory).

define.xml reads a dataset's rows only through sets: per variable the values present (Length, DataType,
SignificantDigits, codelist terms), per value-level slice (the rows sharing the selector values, e.g. one
QSTESTCD) the same, and whether any / all rows of a slice carry a value (QSDRVFL, RSEVAL). A digest row set with,
per slice, exactly the distinct values of every variable (a value repeated to fill a row) has the same sets, so
:func:`abscopal.interop.define.write_define` writes the same bytes from it as from the full dataset; it holds
about as many rows as the largest distinct-value count of a slice instead of every record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from abscopal.interop.define.build import SUPP_VALUE_LEVEL, VALUE_LEVEL
from abscopal.interop.sdtm.spec import Dataset, Value


def _selectors(ds: Dataset) -> tuple[str, ...]:
    spec = ds.spec
    chosen = SUPP_VALUE_LEVEL[0] if spec.name.startswith("SUPP") else VALUE_LEVEL.get(spec.name, ((), ()))[0]
    return tuple(s for s in chosen if s in spec.names)


def define_digest(ds: Dataset) -> Dataset:
    """``ds`` reduced to the distinct values per value-level slice and variable (same define.xml bytes)."""
    names = ds.spec.names
    selectors = _selectors(ds)
    slices: dict[tuple[object, ...], list[Mapping[str, Value]]] = {}
    if selectors:
        for row in ds.rows:
            slices.setdefault(tuple((type(row[s]), row[s]) for s in selectors), []).append(row)
    elif ds.rows:
        slices[()] = list(ds.rows)
    rows: list[dict[str, Value]] = []
    for members in slices.values():
        # distinct by type and value: 1 and 1.0 (and True) are one dict key but not one define.xml value
        columns: list[Sequence[Value]] = [
            list({(type(v), v): v for v in (r[n] for r in members)}.values()) for n in names
        ]
        for j in range(max(len(c) for c in columns)):
            rows.append({n: c[min(j, len(c) - 1)] for n, c in zip(names, columns, strict=True)})
    return Dataset(ds.spec, rows)
