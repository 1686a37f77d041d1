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

import itertools
from collections.abc import Hashable, Sequence
from operator import itemgetter
from typing import Any

from abscopal.interop.define.build import SLICE_READS, SUPP_VALUE_LEVEL, VALUE_LEVEL, value_class
from abscopal.interop.sdtm.spec import Dataset, PartRows, Value, Variable, column


def _selectors(ds: Dataset) -> tuple[str, ...]:
    spec = ds.spec
    chosen = SUPP_VALUE_LEVEL[0] if spec.name.startswith("SUPP") else VALUE_LEVEL.get(spec.name, ((), ()))[0]
    return tuple(s for s in chosen if s in spec.names)


def define_digest(ds: Dataset) -> Dataset:
    """``ds`` reduced per value-level slice to the values define.xml tells apart (same define.xml bytes).

    Rows are numbered by slice (in order of first appearance) and each column is read in that stable order, so
    a slice's values are one contiguous run: no per-row key or index list is held beside the rows.
    """
    import numpy as np

    spec = ds.spec
    names = spec.names
    selectors = _selectors(ds)
    n = len(ds.rows)
    numbers: dict[tuple[object, ...], int] = {}
    if selectors and n:
        # distinct by type and value: 1 and 1.0 (and True) are one dict key but not one define.xml value
        chosen = [column(ds.rows, s) for s in selectors]
        slot = np.fromiter(
            (
                numbers.setdefault(key, len(numbers))
                for key in zip(*(zip(map(type, c), c, strict=True) for c in chosen), strict=True)
            ),
            dtype=np.int64,
            count=n,
        )
        del chosen
        order = np.argsort(slot, kind="stable")
        bounds = np.searchsorted(slot[order], np.arange(len(numbers) + 1)).tolist()
        del slot
    else:
        numbers[()] = 0
        order = np.arange(n)
        bounds = [0, n]
    runs = list(itertools.pairwise(bounds))
    per_slice: list[list[Sequence[Value]]] = [[] for _ in numbers]
    # a variable held in a shared part (PartRows: QS) is read from the slice's distinct parts, in order of first
    # appearance: a value's first row is its part's first row, so its values come in the same order as the rows'
    parts: dict[int, list[list[tuple[Any, ...]]]] = {}
    ranked: list[int] | None = None  # ``order`` as a list (the parts are tuples: no numpy object array of them)
    where = dict(zip(names, ds.rows.where, strict=True)) if isinstance(ds.rows, PartRows) else {}
    for var in spec.variables:
        every = var.name in selectors or var.codelist is not None or var.name in SLICE_READS
        p, i = where.get(var.name, (-1, -1))
        if i >= 0:
            assert isinstance(ds.rows, PartRows)
            if p not in parts:
                if ranked is None:
                    ranked = order.tolist()
                column_parts = list(map(itemgetter(p), ds.rows.tuples))
                held = [column_parts[k] for k in ranked]
                del column_parts
                parts[p] = [list({id(x): x for x in held[a:b]}.values()) for a, b in runs]
                del held
            for out, distinct_parts in zip(per_slice, parts[p], strict=True):
                out.append(_distinct(var, every, [x[i] for x in distinct_parts]))
            continue
        col = column(ds.rows, var.name)
        lengths = None if every else _ascii_lengths(var, col)
        values = np.empty(n, dtype=object)
        values[:] = col
        del col
        values = values[order]
        if lengths is not None:
            # one value per class (its length; null) = the first row of each class, in order of first appearance
            lengths = lengths[order]
            for out, (a, b) in zip(per_slice, runs, strict=True):
                first = np.unique(lengths[a:b], return_index=True)[1]
                first.sort()
                out.append(values[a + first].tolist())
            del values, lengths
            continue
        for out, (a, b) in zip(per_slice, runs, strict=True):
            out.append(_distinct(var, every, values[a:b].tolist()))
        del values
    parts.clear()
    rows: list[dict[str, Value]] = []
    for columns in per_slice:
        for j in range(max(len(c) for c in columns)):
            rows.append({name: c[min(j, len(c) - 1)] for name, c in zip(names, columns, strict=True)})
    return Dataset(spec, rows)


def _ascii_lengths(var: Variable, values: list[Value]) -> Any:
    """Each value's :func:`value_class` as a number (0: null or empty, else its length) when ``var`` is a
    character variable other than a --DTC and every value is ASCII text or null (UTF-8 length = length); else
    None."""
    import numpy as np

    if var.type != "Char" or var.name.endswith("DTC"):
        return None
    distinct = dict.fromkeys(values)
    distinct.pop(None, None)
    if not set(map(type, distinct)) <= {str} or not all(map(str.isascii, distinct)):  # type: ignore[arg-type]
        return None
    texts = [v or "" for v in values]
    return np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))  # type: ignore[arg-type]


def _distinct(var: Variable, every: bool, picked: list[Value]) -> list[Value]:
    """A slice's distinct values of ``var`` (by type and value) in order of first appearance; unless ``every``,
    only the first of each :func:`value_class`."""
    distinct = list(dict(zip(zip(map(type, picked), picked, strict=True), picked, strict=True)).values())
    if not every:
        classes: dict[Hashable, Value] = {}
        for v in distinct:
            classes.setdefault(value_class(var, v), v)
        distinct = list(classes.values())
    return distinct
