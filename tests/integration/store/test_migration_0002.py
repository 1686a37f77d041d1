"""Migration 0002 moves a database written by schema 0001 to stable ids and the keyed trail, losing nothing.

The fixture ``demo_0001.json.gz`` is every row of a 12-patient demo database written by Abscopal at commit
88e0d1d (schema 0001: natural-key ids, plain SHA-256 chain), plus one lesion correction, one patient update and
one assessment deleted the 0001 way, so its trail holds bulk records, field updates and a physical delete.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Boolean, Date, DateTime, Engine, MetaData, Table, func, select, text

from abscopal import domain as d
from abscopal.errors import StoreError
from abscopal.store.audit import history, verify
from abscopal.store.migrate import downgrade, upgrade
from abscopal.store.repository import Repository
from abscopal.store.unit_of_work import UnitOfWork

FIXTURE = Path(__file__).parents[2] / "fixtures" / "store" / "demo_0001.json.gz"


def _load_fixture() -> dict[str, list[dict[str, Any]]]:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as fh:
        data: dict[str, list[dict[str, Any]]] = json.load(fh)
    return data


def _convert(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in row.items():
        col_type = table.c[name].type
        if value is not None and isinstance(col_type, DateTime):
            parsed = dt.datetime.fromisoformat(value)
            value = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        elif value is not None and isinstance(col_type, Date):
            value = dt.date.fromisoformat(value)
        elif value is not None and isinstance(col_type, Boolean):
            value = bool(value)
        out[name] = value
    return out


_ORDER = (
    "sites", "users", "patients", "screenings", "immunotherapy_histories", "immunotherapy_cycles", "adjudications",
    "adjudication_signatures", "lesions", "radiotherapy_courses", "fractions", "protocol_deviations",
    "tumour_assessments", "lesion_measurements", "adverse_events", "questionnaire_answers", "data_queries",
    "audit_log", "audit_head",
)  # fmt: skip


@pytest.fixture
def database_0001(empty_engine: Engine) -> Engine:
    """A database at schema 0001 holding the fixture's rows exactly as 0001 wrote them."""
    upgrade(empty_engine, "0001")
    data = _load_fixture()
    meta = MetaData()
    meta.reflect(empty_engine)
    with empty_engine.begin() as conn:
        for name in _ORDER:
            rows = data.get(name, [])
            if rows:
                table = meta.tables[name]
                conn.execute(table.insert(), [_convert(table, r) for r in rows])
    return empty_engine


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(text(table))).scalar_one())


def test_every_row_of_a_0001_database_survives_the_upgrade(database_0001: Engine) -> None:
    data = _load_fixture()
    upgrade(database_0001)
    for name, rows in data.items():
        if name in ("audit_head", "audit_log"):
            continue
        assert _count(database_0001, name) == len(rows), name
    assert _count(database_0001, "audit_log") == len(data["audit_log"]) + 1  # + the schema note


def test_a_0001_trail_still_verifies_after_the_upgrade(database_0001: Engine) -> None:
    upgrade(database_0001)
    with database_0001.connect() as conn:
        report = verify(conn)
    assert report.ok, report.findings


def test_upgraded_rows_keep_their_0001_key_as_id_and_start_at_version_one(database_0001: Engine) -> None:
    data = _load_fixture()
    upgrade(database_0001)
    lesion = data["lesions"][0]
    with database_0001.connect() as conn:
        row = conn.execute(text("SELECT id, version, removed_reason FROM lesions WHERE id = :k"), {"k": lesion["key"]})
        assert row.one() == (lesion["key"], 1, None)


def test_the_0001_correction_is_in_the_upgraded_history(database_0001: Engine) -> None:
    upgrade(database_0001)
    with database_0001.connect() as conn:
        lesion_id = conn.execute(text("SELECT id FROM lesions WHERE location = 'corrected location'")).scalar_one()
        entries = history(conn, "lesions", lesion_id)
    assert [e.field for e in entries] == ["*", "location"]  # the bulk insert's own row, then the correction
    assert entries[1].new_value == '"corrected location"'


def test_an_upgraded_record_can_be_edited_and_the_trail_verifies(database_0001: Engine) -> None:
    upgrade(database_0001)
    with database_0001.connect() as conn:
        patient = Repository(conn).all(d.Patient)[0]
    with UnitOfWork(database_0001, user="dm1", reason="after the upgrade") as uow:
        stored = uow.patients.find(subject_id=patient.subject_id)
        assert stored is not None and stored.version == 1
        uow.patients.update(stored.id, dataclasses.replace(patient, death_cause="unknown"), version=1)
        uow.commit()
    with database_0001.connect() as conn:
        report = verify(conn)
    assert report.ok, report.findings


def test_tampering_with_a_0001_record_after_the_upgrade_is_found(database_0001: Engine) -> None:
    upgrade(database_0001)
    with database_0001.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
        else:
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        conn.execute(text("UPDATE audit_log SET reason = 'rewritten' WHERE seq = 2"))
    with database_0001.connect() as conn:
        report = verify(conn)
    assert not report.ok
    assert report.findings[0].kind == "chain"
    assert "audit record 2" in report.findings[0].message


def test_downgrading_a_database_with_trial_data_is_refused(database_0001: Engine) -> None:
    upgrade(database_0001)
    with pytest.raises(StoreError, match="Cannot downgrade below schema 0002"):
        downgrade(database_0001, "0001")


def test_a_0001_timestamp_key_is_found_after_the_upgrade(database_0001: Engine) -> None:
    """0001's bulk loads wrote SQLite timestamps in another text form; the upgrade makes lookups match."""
    upgrade(database_0001)
    with database_0001.connect() as conn:
        adjudication = Repository(conn).all(d.Adjudication)[0]
    with UnitOfWork(database_0001, user="reader", reason="read") as uow:
        found = uow.adjudications.find(subject_id=adjudication.subject_id, proposed_at=adjudication.proposed_at)
    assert found is not None and found.value == adjudication
