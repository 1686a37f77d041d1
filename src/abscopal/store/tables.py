"""The database schema, derived from the domain dataclasses so that the two cannot drift apart.

Each trial-data table mirrors one dataclass of :mod:`abscopal.domain`: a column per field (enums as text,
dates as dates, dicts as JSON), plus three columns of the record's life: ``id`` (a surrogate key that never
changes, :mod:`abscopal.store.ids`), ``version`` (1 at insert, +1 on every audited change: optimistic
concurrency) and ``removed_reason`` (``NULL`` while the record is live; a logical removal keeps the row).
The record's natural key (patient + lesion id, patient + assessment date, …) is a unique index over live
rows, so correcting a date or a lesion id is an ordinary audited update. Child rows (lesion measurements,
adjudication signatures) point at their parent's ``id``. The audit tables are defined by hand.
Alembic migrations (``store/migrations``) create exactly this schema; a test compares the two.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
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
    text,
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
    """How one domain class is stored: its table, natural key, child collections and parent (for children)."""

    name: str
    cls: type[Any]
    table: Table
    natural_key: tuple[str, ...]  # columns of the unique key among live rows
    children: dict[str, str]  # dataclass field -> child entity name (stored in its own table)
    parent: str | None = None  # for a child entity: the parent entity
    parent_column: str | None = None  # for a child entity: the column holding the parent's id


ENTITIES: dict[str, Entity] = {}
LIFE_COLUMNS = ("id", "version", "removed_reason")
LIVE = text("removed_reason IS NULL")


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
# Columns other tables refer to: their uniqueness covers removed rows too (a foreign key needs a full unique key).
_REFERENCED = {("patients", "subject_id"), ("sites", "code")}


def _define(
    name: str,
    cls: type[Any],
    natural_key: tuple[str, ...],
    *,
    children: dict[str, str] | None = None,
    parent: tuple[str, str] | None = None,  # (column, parent entity)
    indexes: tuple[str, ...] = (),
) -> None:
    hints = typing.get_type_hints(cls)
    columns: list[Column[Any]] = [
        Column("id", String(200), primary_key=True),  # 200: ids migrated from 0001 are its natural keys
        Column("version", Integer, nullable=False),
        Column("removed_reason", Text, nullable=True),
    ]
    if parent is not None:
        columns.append(
            Column(parent[0], String(200), ForeignKey(f"{parent[1]}.id", ondelete="RESTRICT"), nullable=False)
        )
    for f in dataclasses.fields(cls):
        if children and f.name in children:
            continue
        sql_type, nullable = _sql_type(hints[f.name])
        args: list[Any] = []
        fk = _FOREIGN.get(f.name)
        if fk and not (name == "patients" and f.name == "subject_id") and name != "sites":
            args.append(ForeignKey(fk))
        if (name, f.name) in _REFERENCED:
            sql_type = String(100)
        columns.append(Column(f.name, sql_type, *args, nullable=nullable))
    table = Table(name, metadata, *columns)
    if len(natural_key) == 1 and (name, natural_key[0]) in _REFERENCED:
        Index(f"uq_{name}_natural_key", table.c[natural_key[0]], unique=True)
    else:
        Index(
            f"uq_{name}_natural_key",
            *(table.c[c] for c in natural_key),
            unique=True,
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        )
    for col in indexes:
        Index(f"ix_{name}_{col}", table.c[col])
    ENTITIES[name] = Entity(
        name,
        cls,
        table,
        natural_key,
        children or {},
        parent=parent[1] if parent else None,
        parent_column=parent[0] if parent else None,
    )


_define("sites", d.Site, ("code",))
_define("users", d.User, ("username",))
_define("patients", d.Patient, ("subject_id",), indexes=("site_code", "status"))
_define("screenings", d.Screening, ("subject_id",))
_define(
    "immunotherapy_histories",
    d.ImmunotherapyHistory,
    ("subject_id", "agent", "start_date"),
    indexes=("subject_id",),
)
_define("immunotherapy_cycles", d.ImmunotherapyCycle, ("subject_id", "cycle_number"), indexes=("subject_id",))
_define(
    "adjudications",
    d.Adjudication,
    ("subject_id", "proposed_at"),
    children={"signatures": "adjudication_signatures"},
    indexes=("subject_id",),
)
_define(
    "adjudication_signatures",
    d.Signature,
    ("adjudication_id", "username"),
    parent=("adjudication_id", "adjudications"),
    indexes=("adjudication_id",),
)
_define("lesions", d.Lesion, ("subject_id", "lesion_id"), indexes=("subject_id",))
_define(
    "radiotherapy_courses",
    d.RadiotherapyCourse,
    ("subject_id", "lesion_id", "start_date"),
    indexes=("subject_id",),
)
_define("fractions", d.Fraction, ("subject_id", "lesion_id", "fraction_number"), indexes=("subject_id",))
_define(
    "protocol_deviations",
    d.ProtocolDeviation,
    ("subject_id", "check", "lesion_id", "date"),
    indexes=("subject_id",),
)
_define(
    "tumour_assessments",
    d.TumourAssessment,
    ("subject_id", "assessment_date"),
    children={"measurements": "lesion_measurements"},
    indexes=("subject_id",),
)
_define(
    "lesion_measurements",
    d.LesionMeasurement,
    ("assessment_id", "lesion_id"),
    parent=("assessment_id", "tumour_assessments"),
    indexes=("assessment_id",),
)
_define("adverse_events", d.AdverseEvent, ("subject_id", "ae_id"), indexes=("subject_id",))
_define(
    "questionnaire_answers",
    d.QuestionnaireAnswer,
    ("subject_id", "visit", "instrument", "item"),
    indexes=("subject_id",),
)
_define(
    "data_queries",
    d.DataQuery,
    ("subject_id", "entity", "field", "raised_at"),
    indexes=("subject_id",),
)
_define("record_locks", d.RecordLock, ("entity", "record_id"), indexes=("subject_id",))
_define("sdv_marks", d.SdvMark, ("entity", "record_id"), indexes=("subject_id",))
_define(
    "record_signatures",
    d.RecordSignature,
    ("entity", "record_id", "username", "meaning"),
    indexes=("subject_id",),
)

CHILD_ENTITIES: frozenset[str] = frozenset(n for n, e in ENTITIES.items() if e.parent is not None)
ENTITY_BY_CLASS: dict[type[Any], str] = {e.cls: name for name, e in ENTITIES.items() if name not in CHILD_ENTITIES}
REPOSITORY_NAMES: dict[str, str] = {
    "sites": "sites", "users": "users", "patients": "patients", "screenings": "screenings",
    "immunotherapy_histories": "immunotherapy_histories", "immunotherapy_cycles": "immunotherapy_cycles",
    "adjudications": "adjudications", "lesions": "lesions", "radiotherapy_courses": "radiotherapy_courses",
    "fractions": "fractions", "deviations": "protocol_deviations", "assessments": "tumour_assessments",
    "adverse_events": "adverse_events", "answers": "questionnaire_answers", "queries": "data_queries",
    "locks": "record_locks", "sdv_marks": "sdv_marks", "signatures": "record_signatures",
}  # fmt: skip
"""The unit of work's repository attribute (``uow.assessments``) for each table, real and fake alike."""
ENTITY_REPOSITORY: dict[str, str] = {entity: attribute for attribute, entity in REPOSITORY_NAMES.items()}

DATA_MANAGEMENT: frozenset[str] = frozenset({"record_locks", "sdv_marks", "record_signatures"})
"""Tables about records (locks, SDV, signatures) rather than trial data: changing them bumps no record version."""

# --- audit trail (append-only, HMAC-chained)

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
    # the record's version after this change (NULL before schema 0002, when every record counts as version 1)
    Column("version", Integer, nullable=True),
    # a bulk record's lowest and highest row id: an index for ``audit history``, not part of the hash
    Column("key_first", String(200), nullable=True),
    Column("key_last", String(200), nullable=True),
)
# the live patients of a site by status: the dashboard's counts, read from the index alone (migration 0005)
Index(
    "ix_patients_site_code_status", ENTITIES["patients"].table.c.site_code, ENTITIES["patients"].table.c.status,
    sqlite_where=LIVE, postgresql_where=LIVE,
)  # fmt: skip
Index("ix_audit_log_entity_key", audit_log.c.entity, audit_log.c.entity_key)
Index("ix_audit_log_bulk_range", audit_log.c.entity, audit_log.c.key_first)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", BigInteger().with_variant(Integer(), "sqlite"), nullable=False),
    Column("last_hash", String(64), nullable=False),
    # records 1..legacy_seq were chained with plain SHA-256 before schema 0002; later ones with HMAC-SHA256
    Column("legacy_seq", BigInteger().with_variant(Integer(), "sqlite"), nullable=True),
    Column("key_id", String(16), nullable=True),
    Column("mac", String(64), nullable=True),
)

TRIAL_TABLES: tuple[str, ...] = tuple(ENTITIES)

# --- accounts, sessions and tokens (web.md §6): security data, not trial data. Account changes are written to
# the audit trail as ``accounts`` records (never a password hash); sessions and tokens hold only SHA-256 hashes
# of the secrets the browser or script holds.

_TZ = DateTime(timezone=True)

accounts = Table(
    "accounts",
    metadata,
    Column("username", String(100), primary_key=True),
    Column("full_name", Text, nullable=False),
    Column("password_hash", Text, nullable=False),  # Argon2id (PHC string)
    Column("disabled", Boolean, nullable=False),
    Column("language", String(16), nullable=False),  # "en" | "zh_Hans"
    Column("subject_id", String(100), nullable=True),  # set for a patient's own account
    Column("created_at", _TZ, nullable=False),
    Column("password_changed_at", _TZ, nullable=False),
    Column("version", Integer, nullable=False),
)

memberships = Table(
    "memberships",
    metadata,
    Column("username", String(100), ForeignKey("accounts.username", ondelete="CASCADE"), primary_key=True),
    Column("site_code", String(100), primary_key=True),  # "*": every site (admin, statistician)
    Column("role", String(40), nullable=False),
    Column("pi", Boolean, nullable=False),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("username", String(100), ForeignKey("accounts.username", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", _TZ, nullable=False),
    Column("last_seen_at", _TZ, nullable=False),
    Column("ended_at", _TZ, nullable=True),
    Column("ended_why", String(40), nullable=True),
)
Index("ix_web_sessions_username", web_sessions.c.username)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("username", String(100), ForeignKey("accounts.username", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", _TZ, nullable=False),
    Column("expires_at", _TZ, nullable=True),
    Column("revoked_at", _TZ, nullable=True),
    Column("last_used_at", _TZ, nullable=True),
)
Index("ix_api_tokens_username", api_tokens.c.username)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(100), nullable=False),
    Column("at", _TZ, nullable=False),
    Column("kind", String(20), nullable=False),  # "login" | "signature"
)
Index("ix_login_failures_username_at", login_failures.c.username, login_failures.c.at)

SECURITY_TABLES: tuple[str, ...] = ("accounts", "memberships", "web_sessions", "api_tokens", "login_failures")
