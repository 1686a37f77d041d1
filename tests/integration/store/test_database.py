"""Connections: BEGIN IMMEDIATE writers that queue, read-only engines, refused URLs and typed database errors.

These tests use raw SQL through ``make_engine`` only (not the unit of work), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from sqlalchemy import Engine, text

from abscopal.errors import DatabaseBusy, DuplicateRecord, MissingParent, StoreError, ValidationError
from abscopal.store.database import BEGIN_OPTION, database_error, make_engine
from abscopal.store.pgserver import TemporaryPostgres

SCHEMA = (
    "CREATE TABLE parent (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL UNIQUE)",
    "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent(id))",
    "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
    "INSERT INTO parent (id, name) VALUES (1, 'S0001')",
    "INSERT INTO counter (id, n) VALUES (1, 0)",
)


@pytest.fixture
def tables(empty_engine: Engine) -> Engine:
    with empty_engine.begin() as conn:
        for statement in SCHEMA:
            conn.execute(text(statement))
    return empty_engine


@pytest.fixture
def pg_tables(postgres_server: TemporaryPostgres | None) -> Iterator[Engine]:
    if postgres_server is None:
        pytest.skip("PostgreSQL not available (ABSCOPAL_TEST_POSTGRES=0 or no server)")
    name = f"test_database_{os.getpid()}"
    engine = make_engine(postgres_server.create_database(name))
    with engine.begin() as conn:
        for statement in SCHEMA:
            conn.execute(text(statement))
    yield engine
    engine.dispose()
    postgres_server.drop_database(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'trial.sqlite'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        for statement in SCHEMA:
            conn.execute(text(statement))
    engine.dispose()
    yield url


def _error_of(engine: Engine, sql: str) -> BaseException:
    with engine.connect() as conn:
        try:
            conn.execute(text(sql))
            conn.commit()
        except Exception as exc:  # the driver's error, as SQLAlchemy raises it
            return exc
    raise AssertionError(f"{sql!r} did not fail")


# --- typed errors from real failures -----------------------------------------------------------------------


def test_a_unique_violation_becomes_duplicate_record_as_a_sentence(tables: Engine) -> None:
    error = database_error(_error_of(tables, "INSERT INTO parent (id, name) VALUES (2, 'S0001')"))
    assert isinstance(error, DuplicateRecord)
    assert str(error).startswith("Nothing was saved: a record with the same identity already exists")
    assert "IntegrityError" not in str(error) and "sqlite3" not in str(error) and "psycopg" not in str(error)


def test_a_foreign_key_violation_becomes_missing_parent_as_a_sentence(tables: Engine) -> None:
    error = database_error(_error_of(tables, "INSERT INTO child (id, parent_id) VALUES (1, 99)"))
    assert isinstance(error, MissingParent)
    assert "refers to something that does not exist" in str(error)
    assert "IntegrityError" not in str(error)


def test_a_missing_required_value_is_a_store_error_naming_the_column(tables: Engine) -> None:
    error = database_error(_error_of(tables, "INSERT INTO parent (id) VALUES (3)"))
    assert type(error) is StoreError
    assert "required value is missing" in str(error) and "name" in str(error)


def test_an_abscopal_error_passes_through_database_error_unchanged() -> None:
    original = MissingParent("No patient S0009")
    assert database_error(original) is original


def test_a_sqlite_writer_waiting_past_the_busy_timeout_gets_database_busy(sqlite_url: str) -> None:
    holder = make_engine(sqlite_url)
    impatient = make_engine(sqlite_url, busy_timeout_ms=50)
    with holder.begin() as conn:
        conn.execute(text("UPDATE counter SET n = n + 1"))
        with pytest.raises(Exception) as caught, impatient.begin() as other:
            other.execute(text("UPDATE counter SET n = n + 1"))
    error = database_error(caught.value)
    assert isinstance(error, DatabaseBusy)
    assert "ABSCOPAL_SQLITE_BUSY_TIMEOUT_MS" in str(error)


def test_opening_a_sqlite_engine_does_not_wait_for_a_writer_holding_the_lock(sqlite_url: str) -> None:
    # the open's check is a read: a writer process opening its engine while others write must not time out
    holder = make_engine(sqlite_url)
    with holder.begin() as conn:
        conn.execute(text("UPDATE counter SET n = n + 1"))
        opened = make_engine(sqlite_url, busy_timeout_ms=0)  # would raise DatabaseBusy at once if it took the lock
        opened.dispose()
    holder.dispose()


@pytest.mark.postgres
def test_a_postgresql_lock_timeout_becomes_database_busy(pg_tables: Engine) -> None:
    with pg_tables.connect() as holder, pg_tables.connect() as waiter:
        holder.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))
        waiter.execute(text("SET lock_timeout = '100ms'"))
        with pytest.raises(Exception) as caught:
            waiter.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))
        waiter.rollback()
        holder.rollback()
    assert isinstance(database_error(caught.value), DatabaseBusy)


@pytest.mark.postgres
def test_a_postgresql_serialization_failure_becomes_database_busy(pg_tables: Engine) -> None:
    serializable = pg_tables.execution_options(isolation_level="SERIALIZABLE")
    with serializable.connect() as first, serializable.connect() as second:
        first.execute(text("SELECT n FROM counter WHERE id = 1"))
        second.execute(text("SELECT n FROM counter WHERE id = 1"))
        first.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))
        first.commit()
        with pytest.raises(Exception) as caught:
            second.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1"))
        second.rollback()
    assert isinstance(database_error(caught.value), DatabaseBusy)


# --- read-only engines -------------------------------------------------------------------------------------


def test_a_read_only_engine_cannot_write(tables: Engine) -> None:
    url = tables.url.render_as_string(hide_password=False)
    reader = make_engine(url, read_only=True)
    try:
        error = database_error(_error_of(reader, "INSERT INTO parent (id, name) VALUES (5, 'S0005')"))
        with reader.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM parent")).scalar_one() == 1
    finally:
        reader.dispose()
    assert type(error) is StoreError and "read-only" in str(error)


def test_a_sqlite_read_only_transaction_does_not_hold_the_write_lock(sqlite_url: str) -> None:
    reader = make_engine(sqlite_url, read_only=True)
    writer = make_engine(sqlite_url, busy_timeout_ms=0)
    with reader.connect() as conn:
        assert conn.execute(text("SELECT n FROM counter")).scalar_one() == 0  # a read transaction is open
        with writer.begin() as w:  # would fail at once (busy timeout 0) if the reader held the write lock
            w.execute(text("UPDATE counter SET n = 7"))
        assert conn.execute(text("SELECT n FROM counter")).scalar_one() == 0  # one snapshot per transaction
    with reader.connect() as conn:
        assert conn.execute(text("SELECT n FROM counter")).scalar_one() == 7


def test_a_read_only_sqlite_open_of_a_missing_file_is_refused_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nothing.sqlite"
    with pytest.raises(StoreError, match=r"There is no database at .*abscopal db upgrade"):
        make_engine(f"sqlite:///{path}", read_only=True)
    assert not path.exists()


def test_pandas_and_polars_read_through_read_only_and_writing_engines(sqlite_url: str) -> None:
    for engine in (make_engine(sqlite_url), make_engine(sqlite_url, read_only=True)):
        with engine.connect() as conn:
            frame = pd.read_sql(text("SELECT id, name FROM parent"), conn)
            polars_frame = pl.read_database("SELECT id, name FROM parent", conn)
        engine.dispose()
        assert frame["name"].tolist() == ["S0001"]
        assert polars_frame["name"].to_list() == ["S0001"]


# --- BEGIN IMMEDIATE: writers queue ------------------------------------------------------------------------


def _increment(engine: Engine, times: int) -> None:
    for _ in range(times):
        with engine.begin() as conn:  # read then write in one transaction: only safe if the write lock is taken first
            n = conn.execute(text("SELECT n FROM counter WHERE id = 1")).scalar_one()
            conn.execute(text("UPDATE counter SET n = :n WHERE id = 1"), {"n": n + 1})


def test_sqlite_writers_in_threads_queue_behind_begin_immediate_and_lose_nothing(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            _increment(engine, 25)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with engine.connect() as conn:
        final = conn.execute(text("SELECT n FROM counter")).scalar_one()
    engine.dispose()
    assert errors == []
    assert final == 100


def test_sqlite_writers_in_processes_queue_behind_begin_immediate_and_lose_nothing(sqlite_url: str) -> None:
    script = (
        "import sys\n"
        "from sqlalchemy import text\n"
        "from abscopal.store.database import make_engine\n"
        "engine = make_engine(sys.argv[1])\n"
        "for _ in range(25):\n"
        "    with engine.begin() as conn:\n"
        "        n = conn.execute(text('SELECT n FROM counter WHERE id = 1')).scalar_one()\n"
        "        conn.execute(text('UPDATE counter SET n = :n WHERE id = 1'), {'n': n + 1})\n"
    )
    workers = [subprocess.Popen([sys.executable, "-c", script, sqlite_url], stderr=subprocess.PIPE) for _ in range(3)]
    results = [(w.wait(timeout=120), w.stderr.read().decode() if w.stderr else "") for w in workers]
    assert [code for code, _ in results] == [0, 0, 0], results
    engine = make_engine(sqlite_url, read_only=True)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM counter")).scalar_one() == 75
    engine.dispose()


def test_a_deferred_begin_can_be_asked_for_on_one_connection(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    other = make_engine(sqlite_url, busy_timeout_ms=0)
    with engine.connect().execution_options(**{BEGIN_OPTION: "DEFERRED"}) as conn:
        conn.execute(text("SELECT n FROM counter")).scalar_one()
        with other.begin() as w:  # the deferred reader holds no write lock
            w.execute(text("UPDATE counter SET n = 1"))
    engine.dispose()
    other.dispose()


# --- settings and refused URLs -----------------------------------------------------------------------------


def test_the_sqlite_busy_timeout_is_the_setting(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ABSCOPAL_SQLITE_BUSY_TIMEOUT_MS", "1234")
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 1234
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == 2  # FULL
    engine.dispose()


def test_a_busy_timeout_setting_that_is_not_a_number_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ABSCOPAL_SQLITE_BUSY_TIMEOUT_MS", "soon")
    with pytest.raises(ValidationError, match="ABSCOPAL_SQLITE_BUSY_TIMEOUT_MS"):
        make_engine("sqlite:///x.sqlite", check=False)


def test_a_sqlite_file_in_a_missing_folder_is_refused_and_the_folder_not_created(tmp_path: Path) -> None:
    folder = tmp_path / "no" / "such"
    with pytest.raises(StoreError, match=r"the folder .* does not exist"):
        make_engine(f"sqlite:///{folder / 'trial.sqlite'}")
    assert not (tmp_path / "no").exists()


def test_the_default_data_directory_is_created_when_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("ABSCOPAL_DATABASE_URL", raising=False)
    engine = make_engine()
    engine.dispose()
    assert (tmp_path / "xdg" / "abscopal" / "abscopal.sqlite").is_file()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:///:memory:"])
def test_an_in_memory_database_is_refused_unless_asked_for(url: str) -> None:
    with pytest.raises(StoreError, match="in-memory SQLite database"):
        make_engine(url)
    with pytest.raises(StoreError, match="in-memory SQLite database"):
        make_engine(url, read_only=True)
    make_engine(url, allow_memory=True).dispose()


def test_a_file_that_is_not_sqlite_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_text("Dear diary, " * 200)
    for read_only in (False, True):
        with pytest.raises(StoreError, match="is not a usable SQLite database"):
            make_engine(f"sqlite:///{path}", read_only=read_only)
    assert path.read_text().startswith("Dear diary")
