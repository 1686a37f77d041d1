"""The rows define.xml needs of a dataset, without holding the dataset (issue 13: bounded memory).

define.xml reads a dataset's rows only through sets: per variable the values present (Length, DataType,
SignificantDigits: :func:`abscopal.interop.define.build.column_type`; codelist terms), per value-level slice (the
rows sharing the selector values, e.g. one QSTESTCD) the same, and whether any / all rows of a slice carry a value
(QSDRVFL, RSEVAL). A digest row set with, per slice, the distinct values of every variable whose values define.xml
reads one by one (selectors, codelist variables, QSDRVFL / RSEVAL) and one value of each
:func:`~abscopal.interop.define.build.value_class` of every other variable (a value repeated to fill a row) has the
same sets and the same column types, so :func:`abscopal.interop.define.write_define` writes the same bytes from it
as from the full dataset; it holds a few rows per slice instead of every record.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from abscopal.interop.define.build import SLICE_READS, SUPP_VALUE_LEVEL, VALUE_LEVEL, value_class
from abscopal.interop.sdtm.spec import Dataset, Value, column


def _selectors(ds: Dataset) -> tuple[str, ...]:
    spec = ds.spec
    chosen = SUPP_VALUE_LEVEL[0] if spec.name.startswith("SUPP") else VALUE_LEVEL.get(spec.name, ((), ()))[0]
    return tuple(s for s in chosen if s in spec.names)


def define_digest(ds: Dataset) -> Dataset:
    """``ds`` reduced per value-level slice to the values define.xml tells apart (same define.xml bytes)."""
    spec = ds.spec
    names = spec.names
    selectors = _selectors(ds)
    slices: dict[tuple[object, ...], list[int]] = {}
    if selectors:
        # distinct by type and value: 1 and 1.0 (and True) are one dict key but not one define.xml value
        keyed = [list(zip(map(type, c), c, strict=True)) for c in (column(ds.rows, s) for s in selectors)]
        for i, key in enumerate(zip(*keyed, strict=True)):
            slices.setdefault(key, []).append(i)
        del keyed
    elif ds.rows:
        slices[()] = list(range(len(ds.rows)))
    per_slice: list[list[Sequence[Value]]] = [[] for _ in slices]
    for var in spec.variables:
        values = column(ds.rows, var.name)
        every = var.name in selectors or var.codelist is not None or var.name in SLICE_READS
        for out, members in zip(per_slice, slices.values(), strict=True):
            picked = [values[i] for i in members]
            distinct = list(dict(zip(zip(map(type, picked), picked, strict=True), picked, strict=True)).values())
            if not every:
                classes: dict[Hashable, Value] = {}
                for v in distinct:
                    classes.setdefault(value_class(var, v), v)
                distinct = list(classes.values())
            out.append(distinct)
        del values
    rows: list[dict[str, Value]] = []
    for columns in per_slice:
        for j in range(max(len(c) for c in columns)):
            rows.append({n: c[min(j, len(c) - 1)] for n, c in zip(names, columns, strict=True)})
    return Dataset(spec, rows)
