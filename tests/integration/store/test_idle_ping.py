"""PostgreSQL's pooled connections: one left idle is pinged and replaced when dead (store/database.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from abscopal.store import database
from abscopal.store.database import make_engine


@pytest.fixture
def pg_engine(postgres_server: Any) -> Iterator[tuple[Engine, str]]:
    if postgres_server is None:
        pytest.skip("PostgreSQL not available; `make test` installs and starts it")
    name = f"test_idle_ping_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    engine = make_engine(url)
    yield engine, url
    engine.dispose()
    postgres_server.drop_database(name)


def backend_of(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def terminate(url: str, pid: int) -> None:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_an_idle_connection_whose_server_process_died_is_replaced_before_use(
    pg_engine: tuple[Engine, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, url = pg_engine
    dead = backend_of(engine)  # the pool keeps this connection
    terminate(url, dead)
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.0)  # every returned connection counts as idle
    assert backend_of(engine) != dead


def test_a_connection_used_a_moment_ago_is_not_pinged(
    pg_engine: tuple[Engine, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, url = pg_engine
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 3600.0)
    terminate(url, backend_of(engine))
    with pytest.raises(OperationalError), engine.connect() as conn:  # no ping: the dead connection is handed out
        conn.execute(text("SELECT 1"))
    assert backend_of(engine) > 0  # and the pool replaced it after the failure
