"""Steps of migration 0002 (stable ids, versions, the keyed audit trail) that are plain data moves, kept testable.

The 0001 tables are copied aside, dropped and re-created in the new shape; each row keeps its 0001 key as its
surrogate ``id`` (so the audit records written before still name it), starts at version 1 and is live. The
audit head is then sealed under the new key: records 1..``legacy_seq`` stay verifiable by their SHA-256 chain,
and the head's MAC (and the next keyed record) anchor that chain's last hash.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, DateTime, inspect, select, text, update

from abscopal.errors import StoreError
from abscopal.store.audit import GENESIS, ROWS, SCHEMA, AuditWriter, Change, head_mac
from abscopal.store.audit_key import key_id, load_key
from abscopal.store.codec import canonical, sqlite_datetime_text
from abscopal.store.tables import ENTITIES, audit_head, audit_log

# The 0001 trial tables, parents before children, and the column that was their key.
LEGACY_KEYS: dict[str, str] = {
    "sites": "code",
    "users": "username",
    "patients": "subject_id",
    "screenings": "subject_id",
    "immunotherapy_histories": "key",
    "immunotherapy_cycles": "key",
    "adjudications": "key",
    "adjudication_signatures": "key",
    "lesions": "key",
    "radiotherapy_courses": "key",
    "fractions": "key",
    "protocol_deviations": "key",
    "tumour_assessments": "key",
    "lesion_measurements": "key",
    "adverse_events": "key",
    "questionnaire_answers": "key",
    "data_queries": "key",
}
RENAMED: dict[str, dict[str, str]] = {
    "adjudication_signatures": {"adjudication_id": "adjudication_key"},
    "lesion_measurements": {"assessment_id": "assessment_key"},
}
_PREFIX = "legacy_0001_"
_MIGRATION_USER = "abscopal-migration"


def _q(conn: Connection, name: str) -> str:
    return str(conn.dialect.identifier_preparer.quote(name))


def save_legacy_tables(conn: Connection) -> None:
    """Copy each 0001 trial table aside (``legacy_0001_<name>``), then drop the originals, children first."""
    for name in LEGACY_KEYS:
        conn.execute(text(f"CREATE TABLE {_q(conn, _PREFIX + name)} AS SELECT * FROM {_q(conn, name)}"))
    for name in reversed(list(LEGACY_KEYS)):
        conn.execute(text(f"DROP TABLE {_q(conn, name)}"))


def copy_back(conn: Connection) -> None:
    """Fill the new tables from the copies (id = the 0001 key, version 1, live), then drop the copies."""
    for name, key in LEGACY_KEYS.items():
        # the columns of the table as this migration created it (reflected: later migrations add more)
        created = [c["name"] for c in inspect(conn).get_columns(name)]
        legacy = {c["name"] for c in inspect(conn).get_columns(_PREFIX + name)}
        targets: list[str] = []
        sources: list[str] = []
        for col_name in created:
            targets.append(_q(conn, col_name))
            if col_name == "id":
                sources.append(_q(conn, key))
            elif col_name == "version":
                sources.append("1")
            elif col_name in RENAMED.get(name, {}):
                sources.append(_q(conn, RENAMED[name][col_name]))
            elif col_name in legacy:
                sources.append(_q(conn, col_name))
            else:
                sources.append("NULL")  # a column 0002 adds (e.g. data_queries.record_id, removed_reason)
        conn.execute(
            text(
                f"INSERT INTO {_q(conn, name)} ({', '.join(targets)}) "
                f"SELECT {', '.join(sources)} FROM {_q(conn, _PREFIX + name)}"
            )
        )
    for name in reversed(list(LEGACY_KEYS)):
        conn.execute(text(f"DROP TABLE {_q(conn, _PREFIX + name)}"))
    if conn.dialect.name == "sqlite":
        _normalise_sqlite_datetimes(conn)


def _normalise_sqlite_datetimes(conn: Connection) -> None:
    """0001's bulk loads wrote SQLite timestamps as ``2024-03-01 01:30:00+00:00``; the ORM binds write
    ``2024-03-01 01:30:00.000000``. Rewrite every trial timestamp in the second form (the same instant), so that
    natural keys and lookups on timestamps match whichever way a row was written."""
    for name in LEGACY_KEYS:
        columns = [c["name"] for c in inspect(conn).get_columns(name) if isinstance(c["type"], DateTime)]
        for col in columns:
            rows = conn.execute(
                text(f"SELECT id, {_q(conn, col)} FROM {_q(conn, name)} WHERE {_q(conn, col)} IS NOT NULL")
            )
            fixed = [{"i": i, "v": sqlite_datetime_text(v)} for i, v in rows if sqlite_datetime_text(v) != v]
            if fixed:
                conn.execute(text(f"UPDATE {_q(conn, name)} SET {_q(conn, col)} = :v WHERE id = :i"), fixed)


def fill_bulk_ranges(conn: Connection) -> None:
    """Give each 0001 bulk record its lowest and highest row key (an index for ``audit history``)."""
    rows = conn.execute(select(audit_log.c.seq, audit_log.c.new_value).where(audit_log.c.field == ROWS)).all()
    for seq, payload in rows:
        keys = list(orjson.loads(payload)["rows"])
        if keys:
            conn.execute(
                update(audit_log).where(audit_log.c.seq == seq).values(key_first=min(keys), key_last=max(keys))
            )


def seal_head(conn: Connection) -> None:
    """Create the head if missing, record where the SHA-256 chain ends, and seal it under the audit key."""
    key = load_key(conn.engine.url, create=True)
    head = conn.execute(select(audit_head).where(audit_head.c.id == 1)).first()
    if head is None:
        conn.execute(audit_head.insert().values(id=1, last_seq=0, last_hash=GENESIS))
        last_seq, last_hash = 0, GENESIS
    else:
        last_seq, last_hash = int(head.last_seq), str(head.last_hash)
    kid = key_id(key)
    conn.execute(
        update(audit_head)
        .where(audit_head.c.id == 1)
        .values(legacy_seq=last_seq, key_id=kid, mac=head_mac(key, last_seq, last_hash, last_seq, kid))
    )
    if last_seq > 0:  # say in the trail itself that the schema changed and the key took over here
        writer = AuditWriter(
            conn, _MIGRATION_USER, "schema upgrade 0001 -> 0002 (stable ids, versions, keyed trail)", key
        )
        note = {"from": "0001", "to": "0002", "legacy_seq": last_seq, "legacy_hash": last_hash}
        writer.add([Change(SCHEMA, "0002", "*", None, canonical(note))])
        writer.flush()


def create_append_only_triggers(conn: Connection) -> None:
    """Refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) on the audit trail, on both databases."""
    if conn.dialect.name == "sqlite":
        for op in ("UPDATE", "DELETE"):
            conn.execute(
                text(
                    f"CREATE TRIGGER audit_log_no_{op.lower()} BEFORE {op} ON audit_log "
                    f"BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: {op} refused'); END"
                )
            )
        return
    conn.execute(
        text(
            "CREATE OR REPLACE FUNCTION abscopal_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'the audit trail is append-only: % refused', TG_OP; END $$"
        )
    )
    conn.execute(
        text(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION abscopal_audit_append_only()"
        )
    )
    conn.execute(
        text(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION abscopal_audit_append_only()"
        )
    )


def drop_append_only_triggers(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
        conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
        return
    conn.execute(text("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log"))
    conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log"))
    conn.execute(text("DROP FUNCTION IF EXISTS abscopal_audit_append_only()"))


def refuse_downgrade_with_data(conn: Connection) -> None:
    """Going back below 0002 would lose versions and removals: allowed on an empty database only."""
    for name, e in ENTITIES.items():
        if conn.execute(select(e.table.c.id).limit(1)).first() is not None:
            raise StoreError(
                f"Cannot downgrade below schema 0002: the database holds trial data ({name}); restore the backup "
                "taken before the upgrade instead"
            )


def recreate_0001_schema() -> None:
    """Run migration 0001's own upgrade (the database is empty), so that 0001's downgrade finds its tables."""
    path = next((Path(__file__).parent / "migrations" / "versions").glob("0001_*.py"))
    spec = importlib.util.spec_from_file_location("abscopal_migration_0001", path)
    assert spec is not None and spec.loader is not None
    module: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.upgrade()
