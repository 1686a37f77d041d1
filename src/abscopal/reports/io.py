"""Reading the trial for the report: every record as domain objects, and a hash that identifies the content.

The only module of :mod:`abscopal.reports` that touches the database. Tables with child rows (assessments,
adjudications) and JSON columns (screenings) go through the store's :class:`~abscopal.store.repository.Repository`;
the large flat tables through :func:`flat_records`, an adapter that builds the same objects from one plain SELECT.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, select

from abscopal import domain as d
from abscopal.analysis.cutoff import TrialData
from abscopal.store.repository import Repository
from abscopal.store.tables import ENTITIES, ENTITY_BY_CLASS, audit_head

T = TypeVar("T")


def load_trial(conn: Connection) -> TrialData:
    """Every trial record the report reads (the same objects as ``Repository.all`` for each class)."""
    repo = Repository(conn)
    return TrialData(
        patients=flat_records(conn, d.Patient),
        screenings=repo.all(d.Screening),
        adjudications=repo.all(d.Adjudication),
        lesions=flat_records(conn, d.Lesion),
        courses=flat_records(conn, d.RadiotherapyCourse),
        fractions=flat_records(conn, d.Fraction),
        cycles=flat_records(conn, d.ImmunotherapyCycle),
        assessments=repo.all(d.TumourAssessment),
        adverse_events=flat_records(conn, d.AdverseEvent),
        answers=flat_records(conn, d.QuestionnaireAnswer),
        deviations=flat_records(conn, d.ProtocolDeviation),
    )


def _base(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _converter(hint: Any) -> Callable[[Any], Any]:
    """How one column's value becomes the field's value (chosen once per column, not per row)."""
    base = _base(hint)
    if isinstance(base, type) and issubclass(base, enum.Enum):
        members = {m.value: m for m in base}
        return lambda v: None if v is None else members[v]
    if base is dt.datetime:  # SQLite gives ISO text without a zone; stored times are UTC (store.mapping)

        def to_datetime(v: Any) -> dt.datetime | None:
            if v is None:
                return None
            value = dt.datetime.fromisoformat(v) if isinstance(v, str) else v
            return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value

        return to_datetime
    if base is dt.date:
        cache: dict[Any, dt.date | None] = {None: None}

        def to_date(v: Any) -> dt.date | None:
            if v not in cache:
                cache[v] = dt.date.fromisoformat(v) if isinstance(v, str) else v
            return cache[v]

        return to_date
    if base is float:
        return lambda v: None if v is None else float(v)
    if base is bool:
        return lambda v: None if v is None else bool(v)
    if base in (int, str):
        return lambda v: v
    raise TypeError(f"flat_records cannot read a {base!r} column")


def flat_records(conn: Connection, cls: type[T]) -> list[T]:
    """Every live object of a flat domain class (no child rows, no JSON), in natural-key order: the objects
    ``Repository.all`` builds, three to five times faster on large tables (one SELECT, one converter per column)."""
    entity = ENTITIES[ENTITY_BY_CLASS[cls]]
    if entity.children:
        raise TypeError(f"{cls.__name__} has child rows; read it with Repository.all")
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    converters = [_converter(hints[name]) for name in fields]
    quote = conn.dialect.identifier_preparer.quote
    order = ", ".join(quote(c) for c in (*entity.natural_key, "id"))
    sql = (
        f"SELECT {', '.join(quote(name) for name in fields)} FROM {quote(entity.table.name)} "
        f"WHERE removed_reason IS NULL ORDER BY {order}"
    )
    return [
        cls(*(convert(value) for convert, value in zip(converters, row, strict=True)))
        for row in conn.exec_driver_sql(sql)
    ]


def questionnaire_answers(conn: Connection) -> list[d.QuestionnaireAnswer]:
    """Every questionnaire answer (most of a trial's rows), through :func:`flat_records`."""
    return flat_records(conn, d.QuestionnaireAnswer)


def content_hash(conn: Connection) -> str:
    """SHA-256 over the audit trail's head (last sequence number and hash, which chains every change) and the
    row count of every table: two databases with the same hash hold the same audited history."""
    head = conn.execute(select(audit_head.c.last_seq, audit_head.c.last_hash)).first()
    counts = Repository(conn).counts()
    payload = {
        "audit_head": [int(head[0]), str(head[1])] if head is not None else None,
        "counts": dict(sorted(counts.items())),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()
