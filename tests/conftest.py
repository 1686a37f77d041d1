"""Shared fixtures: a fresh database per test, on SQLite and on a throw-away PostgreSQL server.

The PostgreSQL server is started once per run (``abscopal.store.pgserver``). Under ``CI=true`` a server that
cannot start fails the run; elsewhere the PostgreSQL half of the tests is skipped with the reason.
Set ``ABSCOPAL_TEST_POSTGRES=0`` to run on SQLite only while developing.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from argon2 import Parameters, Type
from sqlalchemy import Engine

from abscopal.store.database import make_engine
from abscopal.store.migrate import upgrade
from abscopal.store.pgserver import PostgresUnavailable, TemporaryPostgres
from abscopal.web.accounts import use_password_profile

# Argon2id still, but 1 MiB and one pass: the suite signs in thousands of times, at 150 ms each with the
# production profile (RFC 9106's second choice, which servers and the tests' subprocesses keep; a test in
# tests/web/test_security.py checks that a fresh process hashes with it).
use_password_profile(Parameters(Type.ID, version=19, salt_len=16, hash_len=32, time_cost=1, memory_cost=1024,
                                parallelism=1))  # fmt: skip

_counter = itertools.count()
_PORT = "ABSCOPAL_TEST_PG_PORT"
_WHY = "ABSCOPAL_TEST_PG_UNAVAILABLE"


def _postgres_wanted() -> bool:
    return os.environ.get("ABSCOPAL_TEST_POSTGRES", "1") != "0"


def pytest_configure(config: pytest.Config) -> None:
    """Start one throw-away PostgreSQL server for the whole run, in the controlling process.

    xdist workers inherit its port through the environment. Under CI=true a server that cannot start
    stops the run at once with the reason (no silent skip).
    """
    if "ABSCOPAL_AUDIT_KEY_DIR" not in os.environ:  # PostgreSQL test databases' audit keys: not in $HOME
        os.environ["ABSCOPAL_AUDIT_KEY_DIR"] = tempfile.mkdtemp(prefix="abscopal-test-keys-")
    if hasattr(config, "workerinput") or not _postgres_wanted() or _PORT in os.environ:
        return
    server = TemporaryPostgres()
    try:
        server.start()
    except PostgresUnavailable as exc:
        server.stop()
        if os.environ.get("CI", "").lower() == "true":
            pytest.exit(f"PostgreSQL could not be started under CI=true, so the suite cannot run: {exc}", returncode=3)
        os.environ[_WHY] = str(exc)
        return
    config.stash[_server_key] = server
    os.environ[_PORT] = str(server.port)


#: The longest test files, run before everything else so that `-n 2 --dist loadfile` does not end with one worker
#: alone on a long file while the other idles (longest-processing-time-first). Browser files (B: Chromium and the
#: live server take more than a core) alternate with the others, so that the two workers seldom both drive a browser.
#: Needs `--no-loadscope-reorder` (the Makefile's): xdist otherwise orders files by their number of tests.
#: Durations: `PYTEST_ADDOPTS=--durations=0 make test`; the numbers are worker seconds in the 2026-12-03 run.
SLOW_FIRST = (
    "tests/web/test_journey_casebook.py",  # B 189
    "tests/integration/cli/test_demo.py",  # 96
    "tests/web/test_browser_journeys.py",  # B 176
    "tests/web/test_api_fuzz.py",  # 92
    "tests/web/test_journey_screening.py",  # B 136
    "tests/web/test_route_matrix_pages.py",  # 72
    "tests/web/test_journey_newcomer.py",  # B 106
    "tests/integration/interop/test_odm.py",  # 63
    "tests/web/test_journey_ae_epro.py",  # B 99
    "tests/web/test_route_matrix_api.py",  # 58
    "tests/web/test_journey_radiotherapy.py",  # B 81
    "tests/integration/store/test_tampering.py",  # 57
    "tests/integration/cli/test_demo_serve.py",  # 56
    "tests/web/test_journey_assessments.py",  # B 49
    "tests/integration/store/test_audit_trail.py",  # 52
    "tests/web/test_journey_dashboard.py",  # B 30
    "tests/integration/store/test_crash.py",  # 43
    "tests/web/test_interop_pages.py",  # 46
    "tests/integration/interop/test_odm_bad_input.py",  # 31
)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the files of :data:`SLOW_FIRST` first, in that order (a stable sort: the rest keep theirs)."""
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


def pytest_unconfigure(config: pytest.Config) -> None:
    server = config.stash.get(_server_key, None)
    if server is not None:
        server.stop()
        os.environ.pop(_PORT, None)


_server_key = pytest.StashKey[TemporaryPostgres]()


@pytest.fixture(scope="session")
def postgres_server() -> TemporaryPostgres | None:
    """The session's PostgreSQL server, or None when it is disabled or (outside CI) unavailable."""
    port = os.environ.get(_PORT)
    return TemporaryPostgres.running_on(int(port)) if port else None


@contextmanager
def _fresh_url(request: pytest.FixtureRequest, kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'abscopal.sqlite'}"
        return
    server = request.getfixturevalue("postgres_server")
    if server is None:
        why = os.environ.get(_WHY, "disabled by ABSCOPAL_TEST_POSTGRES=0")
        pytest.skip(f"PostgreSQL not available ({why}); `make test` installs and starts it")
    name = f"test_{os.getpid()}_{next(_counter)}"
    yield server.create_database(name)
    server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty database of each kind."""
    with _fresh_url(request, request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A database of each kind, upgraded to the newest schema, shared by a module's tests: for modules whose
    tests only read what one fixture stored."""
    with _fresh_url(request, request.param, tmp_path_factory.mktemp("module-db")) as url:
        engine = make_engine(url)
        upgrade(engine)
        yield engine
        engine.dispose()


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
