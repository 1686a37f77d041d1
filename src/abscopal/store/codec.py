"""Row codecs: domain objects to normalised column values, and the canonical JSON the audit trail hashes.

One :class:`RowCodec` per table knows its columns and how to normalise each value (enum → its value,
datetime → UTC, float → float, LabValue dict → plain dict), so that the state written to the audit trail
and the state read back from either database serialise to the same canonical JSON.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import operator
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, Connection, Date, DateTime, Float, Table
from sqlalchemy.exc import IntegrityError

from abscopal.domain import field_hints
from abscopal.store.tables import ENTITIES, LIFE_COLUMNS

_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def canonical(value: Any) -> str:
    """Canonical JSON (sorted keys, ISO 8601 dates, UTC offsets, shortest floats): what hashes are taken over."""
    return orjson.dumps(value, option=_OPTS).decode()


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _enum_value(value: Any) -> Any:
    return getattr(value, "_value_", value)  # faster than .value on millions of rows; a plain str stays as it is


def _json_dict(value: Any) -> Any:
    if value is None:
        return None
    return {k: _plain_dataclass(v) for k, v in value.items()}


def _plain_dataclass(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def _normaliser(column_type: Any, hint: Any) -> Callable[[Any], Any] | None:
    """How to normalise a non-None value of a column, or None when it is stored as it is."""
    if isinstance(column_type, JSON):
        return _json_dict
    if isinstance(column_type, Float):
        return float
    if isinstance(column_type, DateTime):
        return _utc
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_value
    return None


@dataclasses.dataclass
class RowCodec:
    """Normalised column values of one table: ``id``, ``version``, ``removed_reason``, parent id, then the fields."""

    entity: str
    table: Table
    columns: tuple[str, ...]  # every column, in table order
    field_columns: tuple[str, ...]  # the columns read from the dataclass
    normalisers: tuple[tuple[int, Callable[[Any], Any]], ...]  # (position, function) where needed
    getter: Callable[[Any], Any]
    parent_column: str | None

    def values(self, obj: Any) -> tuple[Any, ...]:
        """The dataclass fields of ``obj`` as normalised column values (``field_columns`` order)."""
        raw = self.getter(obj)
        if len(self.field_columns) == 1:
            raw = (raw,)
        if not self.normalisers:
            return tuple(raw)
        out = list(raw)
        for i, fn in self.normalisers:
            if out[i] is not None:
                out[i] = fn(out[i])
        return tuple(out)

    def state_from_db(self, row: Mapping[Any, Any]) -> dict[str, Any]:
        """A row read back from the database, normalised like :meth:`values` (every column except ``id``)."""
        out: dict[str, Any] = {}
        for name, kind in self._read_plan:
            value = row[name]
            if value is not None and kind:
                value = _utc(value) if kind == 1 else float(value)
            out[name] = value
        return out

    def state_tuple(self, row: Sequence[Any]) -> tuple[Any, ...]:
        """A row selected with every column in table order, normalised, without ``id``: what verify digests."""
        out = list(row[1:])
        for i, kind in self._tuple_plan:
            value = out[i]
            if value is not None:
                out[i] = _utc(value) if kind == 1 else float(value)
        return tuple(out)

    def tuple_of_state(self, state: Mapping[str, Any]) -> tuple[Any, ...]:
        """A state dict (replayed from the trail) in the column order of :meth:`state_tuple`."""
        return tuple(state.get(name) for name in self.columns[1:])

    def __post_init__(self) -> None:
        kinds: list[tuple[str, int]] = []
        for name in self.columns:
            if name == "id":
                continue
            col_type = self.table.c[name].type
            kinds.append((name, 1 if isinstance(col_type, DateTime) else 2 if isinstance(col_type, Float) else 0))
        self._read_plan: tuple[tuple[str, int], ...] = tuple(kinds)  # 1: datetime to UTC, 2: float
        self._tuple_plan: tuple[tuple[int, int], ...] = tuple((i, k) for i, (_, k) in enumerate(kinds) if k)

    @property
    def state_columns(self) -> tuple[str, ...]:
        """The columns an insert's audit record holds: the parent's id (children) and the fields."""
        return ((self.parent_column,) if self.parent_column else ()) + self.field_columns


_CODECS: dict[str, RowCodec] = {}


def _field_type(cls: type[Any], name: str) -> Any:
    hint = field_hints(cls)[name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def codec(entity: str) -> RowCodec:
    c = _CODECS.get(entity)
    if c is None:
        e = ENTITIES[entity]
        parent = e.parent_column
        skip = set(LIFE_COLUMNS) | ({parent} if parent else set())
        field_columns = tuple(str(col.name) for col in e.table.columns if col.name not in skip)
        c = RowCodec(
            entity=entity,
            table=e.table,
            columns=tuple(str(col.name) for col in e.table.columns),
            field_columns=field_columns,
            normalisers=tuple(
                (i, fn)
                for i, n in enumerate(field_columns)
                if (fn := _normaliser(e.table.c[n].type, _field_type(e.cls, n))) is not None
            ),
            getter=operator.attrgetter(*field_columns),
            parent_column=parent,
        )
        _CODECS[entity] = c
    return c


# --- fast inserts


def insert_rows(conn: Connection, table: Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Insert many rows of normalised values: executemany on SQLite, COPY on PostgreSQL."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy_rows(conn, table, columns, rows)
        return
    processors: list[tuple[int, Callable[[Any], Any]]] = []
    for i, name in enumerate(columns):
        col_type = table.c[name].type
        proc: Callable[[Any], Any] | None = col_type.bind_processor(conn.dialect)
        if isinstance(col_type, JSON):
            proc = _json_text
        elif isinstance(col_type, Date) and not isinstance(col_type, DateTime):
            proc = _date_text
        elif isinstance(col_type, DateTime):
            proc = sqlite_datetime_text
        if proc is not None:
            processors.append((i, proc))
    if processors:
        converted = []
        for r in rows:
            values = list(r)
            for i, proc in processors:
                values[i] = proc(values[i])
            converted.append(tuple(values))
        rows = converted
    placeholders = ", ".join("?" for _ in columns)
    sql = f"INSERT INTO {_quoted(conn, table.name)} ({_column_list(conn, columns)}) VALUES ({placeholders})"
    conn.exec_driver_sql(sql, rows)


def _quoted(conn: Connection, name: str) -> str:
    return str(conn.dialect.identifier_preparer.quote(name))


def _column_list(conn: Connection, columns: tuple[str, ...]) -> str:
    """Quoted where needed: some columns are SQL keywords (``check``)."""
    return ", ".join(_quoted(conn, c) for c in columns)


def _json_text(value: Any) -> Any:
    return None if value is None else orjson.dumps(value).decode()


def _date_text(value: Any) -> Any:
    return None if value is None else value.isoformat()


SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


def sqlite_datetime_text(value: Any) -> Any:
    """A UTC datetime as SQLAlchemy's SQLite dialect writes it (naive, microseconds), so that a bulk insert and
    an ORM-style bind give the same text: natural keys and lookups on timestamps compare text on SQLite."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return _utc(value).replace(tzinfo=None).strftime(SQLITE_DATETIME)


def _copy_rows(conn: Connection, table: Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    import psycopg

    json_idx = [i for i, name in enumerate(columns) if isinstance(table.c[name].type, JSON)]
    raw = conn.connection.driver_connection
    assert raw is not None
    statement = f"COPY {_quoted(conn, table.name)} ({_column_list(conn, columns)}) FROM STDIN"
    try:
        with raw.cursor() as cur, cur.copy(statement) as copy:
            for r in rows:
                if json_idx:
                    values = list(r)
                    for i in json_idx:
                        if values[i] is not None:
                            values[i] = orjson.dumps(values[i]).decode()
                    copy.write_row(values)
                else:
                    copy.write_row(r)
    except psycopg.errors.IntegrityError as exc:  # raise what the SQLite path raises
        raise IntegrityError(statement, None, exc) from None
