"""A psycopg cursor whose ``description`` makes its ``Column`` objects only when one is read.

psycopg 3 builds a new list of :class:`psycopg.Column` (each name decoded, each type looked up) on every read of
``Cursor.description``. SQLAlchemy reads it once per statement, and for a statement it has compiled before it only
asks whether there is one (rows come back) and takes the columns from its own cache. On PostgreSQL that list was
~6 % of the web server's Python time under the patient page (py-spy ``--gil``, 2026-12-04, docs/benchmarks.md).
The cursor is installed through psycopg's documented ``cursor_factory`` (SQLAlchemy's psycopg dialect documents
passing one in ``connect_args``); everything else is psycopg's own ``Cursor``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

import psycopg
from psycopg import Column, pq

_ROWS = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.SINGLE_TUPLE, pq.ExecStatus.TUPLES_CHUNK)


class _ResultSource:
    """What :class:`psycopg.Column` reads of a cursor, taken when the statement's result arrived: a column made
    later describes that result even if the cursor has run another statement since."""

    __slots__ = ("_encoding", "adapters", "pgresult")

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self.pgresult = cursor.pgresult
        self._encoding = cursor._encoding
        self.adapters = cursor.adapters


class LazyDescription(Sequence[Column]):
    """``Cursor.description`` as psycopg gives it (a sequence of :class:`psycopg.Column`), made on first read."""

    __slots__ = ("_columns", "_count", "_source")

    def __init__(self, cursor: psycopg.Cursor[Any], count: int) -> None:
        self._source = _ResultSource(cursor)
        self._count = count
        self._columns: list[Column] | None = None

    def _made(self) -> list[Column]:
        if self._columns is None:
            self._columns = [Column(self._source, i) for i in range(self._count)]  # type: ignore[arg-type]
        return self._columns

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Column: ...
    @overload
    def __getitem__(self, index: slice) -> list[Column]: ...
    def __getitem__(self, index: int | slice) -> Column | list[Column]:
        return self._made()[index]

    def __iter__(self) -> Iterator[Column]:
        return iter(self._made())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._made())


class LazyDescriptionCursor(psycopg.Cursor[Any]):
    """psycopg's client-side cursor with a :class:`LazyDescription` (None exactly when psycopg's would be None)."""

    @property
    def description(self) -> LazyDescription | None:  # type: ignore[override]
        res = self.pgresult
        if res and (res.nfields or res.status in _ROWS):  # psycopg's own test (a "SELECT ;" has no fields)
            return LazyDescription(self, res.nfields)
        return None
