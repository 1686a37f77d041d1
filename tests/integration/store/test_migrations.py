"""The first migration creates exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from abscopal.store.database import schema_revision
from abscopal.store.migrate import downgrade, head_revision, upgrade
from abscopal.store.tables import metadata


def test_upgrade_creates_every_table_of_the_schema(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert set(metadata.tables) <= tables


def test_migrated_schema_matches_the_declared_schema_exactly(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_upgrade_records_the_head_revision(engine: Engine) -> None:
    assert schema_revision(engine) == head_revision()


def test_upgrade_twice_changes_nothing(engine: Engine) -> None:
    upgrade(engine)
    assert schema_revision(engine) == head_revision()


def test_downgrade_to_base_removes_the_tables(engine: Engine) -> None:
    downgrade(engine, "base")
    assert not set(metadata.tables) & set(inspect(engine).get_table_names())


def test_empty_database_has_no_revision(empty_engine: Engine) -> None:
    assert schema_revision(empty_engine) is None
