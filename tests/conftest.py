"""Shared fixtures: a fresh database per test, on SQLite and on a throw-away PostgreSQL server.

The PostgreSQL server is started once per run (``abscopal.store.pgserver``). Under ``CI=true`` a server that
cannot start fails the run; elsewhere the PostgreSQL half of the tests is skipped with the reason.
Set ``ABSCOPAL_TEST_POSTGRES=0`` to run on SQLite only while developing.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from abscopal.store.database import make_engine
from abscopal.store.migrate import upgrade
from abscopal.store.pgserver import PostgresUnavailable, TemporaryPostgres

_counter = itertools.count()


def _postgres_wanted() -> bool:
    return os.environ.get("ABSCOPAL_TEST_POSTGRES", "1") != "0"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TemporaryPostgres | None]:
    if not _postgres_wanted():
        yield None
        return
    server = TemporaryPostgres()
    try:
        server.start()
    except PostgresUnavailable as exc:
        server.stop()
        if os.environ.get("CI", "").lower() == "true":
            pytest.exit(f"PostgreSQL could not be started under CI=true: {exc}", returncode=3)
        yield None
        return
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'abscopal.sqlite'}"
        return
    server = request.getfixturevalue("postgres_server")
    if server is None:
        pytest.skip("PostgreSQL not available (set up by `make test`; ABSCOPAL_TEST_POSTGRES=0 disables it)")
    name = f"test_{os.getpid()}_{next(_counter)}"
    yield server.create_database(name)
    server.drop_database(name)


@pytest.fixture
def empty_engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(empty_engine: Engine) -> Engine:
    """A fresh database of each kind, upgraded to the newest schema."""
    upgrade(empty_engine)
    return empty_engine
