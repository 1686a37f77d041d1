"""The database schema, derived from the domain dataclasses so that the two cannot drift apart.

Each trial-data table mirrors one dataclass of :mod:`abscopal.domain`: a column per field (enums as text,
dates as dates, dicts as JSON), plus a text primary key ``key`` built from the record's natural key (so that
audit records can name a row, and bulk loads need no id round-trips). The audit tables are defined by hand.
Alembic migrations (``store/migrations``) create exactly this schema; a test compares the two.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from abscopal import domain as d

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


@dataclass(frozen=True)
class Entity:
    """How one domain class is stored: its table, its natural key, and its child collections."""

    cls: type[Any]
    table: Table
    key: Callable[[Any], str]
    key_column: str
    children: dict[str, str]  # dataclass field -> child entity name (stored in its own table)


ENTITIES: dict[str, Entity] = {}


def _sql_type(hint: Any) -> tuple[Any, bool]:
    """Map a dataclass field's type hint to (SQLAlchemy type, nullable)."""
    nullable = False
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        nullable = True
        hint = args[0]
        origin = typing.get_origin(hint)
    if origin is dict or hint is dict:
        return JSON(), nullable
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return String(40), nullable
    if hint is bool:
        return Boolean(), nullable
    if hint is int:
        return BigInteger().with_variant(Integer(), "sqlite"), nullable
    if hint is float:
        return Float(), nullable
    if hint is dt.datetime:
        return DateTime(timezone=True), nullable
    if hint is dt.date:
        return Date(), nullable
    if hint is str:
        return Text(), nullable
    raise TypeError(f"no column type for {hint!r}")


_FOREIGN: dict[str, str] = {
    "subject_id": "patients.subject_id",
    "site_code": "sites.code",
}


def _define(
    name: str,
    cls: type[Any],
    key: Callable[[Any], str] | None,
    *,
    pk_field: str | None = None,
    children: dict[str, str] | None = None,
    parent: tuple[str, str] | None = None,
    indexes: tuple[str, ...] = (),
) -> None:
    hints = typing.get_type_hints(cls)
    columns: list[Column[Any]] = []
    if pk_field is None:
        columns.append(Column("key", String(200), primary_key=True))
    if parent is not None:
        columns.append(Column(parent[0], String(200), ForeignKey(parent[1], ondelete="CASCADE"), nullable=False))
    for f in dataclasses.fields(cls):
        if children and f.name in children:
            continue
        sql_type, nullable = _sql_type(hints[f.name])
        args: list[Any] = []
        fk = _FOREIGN.get(f.name)
        if fk and not (name == "patients" and f.name == "subject_id") and name != "sites":
            args.append(ForeignKey(fk))
        if f.name == pk_field:
            columns.append(Column(f.name, String(100), *args, primary_key=True))
        else:
            columns.append(Column(f.name, sql_type, *args, nullable=nullable))
    table = Table(name, metadata, *columns)
    for col in indexes:
        Index(f"ix_{name}_{col}", table.c[col])
    key_column = pk_field or "key"
    key_fn: Callable[[Any], str] = key if key is not None else (lambda obj: str(getattr(obj, key_column)))
    ENTITIES[name] = Entity(cls, table, key_fn, key_column, children or {})


_define("sites", d.Site, None, pk_field="code")
_define("users", d.User, None, pk_field="username")
_define("patients", d.Patient, None, pk_field="subject_id", indexes=("site_code", "status"))
_define("screenings", d.Screening, None, pk_field="subject_id")
_define(
    "immunotherapy_histories",
    d.ImmunotherapyHistory,
    lambda o: f"{o.subject_id}/{o.agent}/{o.start_date.isoformat()}",
    indexes=("subject_id",),
)
_define(
    "immunotherapy_cycles",
    d.ImmunotherapyCycle,
    lambda o: f"{o.subject_id}/C{o.cycle_number}",
    indexes=("subject_id",),
)
_define(
    "adjudications",
    d.Adjudication,
    lambda o: f"{o.subject_id}/{o.proposed_at.isoformat()}",
    children={"signatures": "adjudication_signatures"},
    indexes=("subject_id",),
)
_define(
    "adjudication_signatures",
    d.Signature,
    None,
    parent=("adjudication_key", "adjudications.key"),
    indexes=("adjudication_key",),
)
_define("lesions", d.Lesion, lambda o: f"{o.subject_id}/{o.lesion_id}", indexes=("subject_id",))
_define(
    "radiotherapy_courses",
    d.RadiotherapyCourse,
    lambda o: f"{o.subject_id}/{o.lesion_id}/{o.start_date.isoformat()}",
    indexes=("subject_id",),
)
_define(
    "fractions",
    d.Fraction,
    lambda o: f"{o.subject_id}/{o.lesion_id}/F{o.fraction_number}",
    indexes=("subject_id",),
)
_define(
    "protocol_deviations",
    d.ProtocolDeviation,
    lambda o: f"{o.subject_id}/{o.check}/{o.lesion_id or '-'}/{o.date.isoformat() if o.date else '-'}",
    indexes=("subject_id",),
)
_define(
    "tumour_assessments",
    d.TumourAssessment,
    lambda o: f"{o.subject_id}/{o.assessment_date.isoformat()}",
    children={"measurements": "lesion_measurements"},
    indexes=("subject_id",),
)
_define(
    "lesion_measurements",
    d.LesionMeasurement,
    None,
    parent=("assessment_key", "tumour_assessments.key"),
    indexes=("assessment_key",),
)
_define("adverse_events", d.AdverseEvent, lambda o: f"{o.subject_id}/{o.ae_id}", indexes=("subject_id",))
_define(
    "questionnaire_answers",
    d.QuestionnaireAnswer,
    lambda o: f"{o.subject_id}/{o.visit}/{o.instrument}/{o.item}",
    indexes=("subject_id",),
)
_define(
    "data_queries",
    d.DataQuery,
    lambda o: f"{o.subject_id}/{o.entity}/{o.field}/{o.raised_at.isoformat()}",
    indexes=("subject_id",),
)

# Child rows are keyed by parent key + their own natural part.
CHILD_KEYS: dict[str, Callable[[str, Any], str]] = {
    "adjudication_signatures": lambda parent, o: f"{parent}/{o.username}",
    "lesion_measurements": lambda parent, o: f"{parent}/{o.lesion_id}",
}
CHILD_PARENT_COLUMN: dict[str, str] = {
    "adjudication_signatures": "adjudication_key",
    "lesion_measurements": "assessment_key",
}

ENTITY_BY_CLASS: dict[type[Any], str] = {e.cls: name for name, e in ENTITIES.items() if name not in CHILD_KEYS}

# --- audit trail (append-only, hash-chained)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("username", String(100), nullable=False),
    Column("entity", String(60), nullable=False),
    Column("entity_key", String(200), nullable=False),
    Column("field", String(100), nullable=False),
    Column("old_value", Text, nullable=True),
    Column("new_value", Text, nullable=True),
    Column("reason", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_audit_log_entity_key", audit_log.c.entity, audit_log.c.entity_key)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", BigInteger().with_variant(Integer(), "sqlite"), nullable=False),
    Column("last_hash", String(64), nullable=False),
)

TRIAL_TABLES: tuple[str, ...] = tuple(ENTITIES)
