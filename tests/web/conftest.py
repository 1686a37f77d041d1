"""Fixtures for every web test: a database holding the test world, the app over it, signed-in clients.

The world (``tests/web/world.py``, import it as ``world``): sites QFS and JNC (both Asia/Shanghai), one account per
role (``world.USERS``, password ``world.PASSWORD``), a synthetic cohort of ``world.COHORT_SIZE`` QFS patients and
one JNC patient (``world.QFS_PATIENT`` is enrolled, ``world.JNC_PATIENT`` is screening).

It is built once per backend per xdist worker (a template), then copied for each module or test, which takes
milliseconds (an SQLite backup; PostgreSQL ``CREATE DATABASE ... TEMPLATE``). Every fixture below that holds a
database is parametrised over ``sqlite`` and ``postgresql`` (test ids ``[sqlite]`` / ``[postgresql]``); the
PostgreSQL half is skipped when the suite's server is disabled (``ABSCOPAL_TEST_POSTGRES=0``) or unavailable.

Fixtures:

- ``web_db`` (module): a :class:`WebDb` (``.url``, ``.engine``, ``.backend``) shared by the module's tests.
  Tests may write to it when they do not depend on one another's writes.
- ``fresh_web_db`` (function): a :class:`WebDb` of its own, for tests that need isolation.
- ``app`` (module): ``create_app(web_db.url)`` with the default timeouts.
- ``client`` (module): a :class:`world.Clients` over ``app``: ``client.login("coordinator")`` signs in through
  ``POST /api/v1/login`` and returns a new ``TestClient`` with ``X-CSRF-Token`` set (``csrf=False`` leaves it
  out; the token is also in ``.csrf``); ``client.shared("coordinator")`` returns one cached signed-in client per
  username (do not sign it out); ``client.anonymous()`` is a client without a session. Clients never follow
  redirects and re-raise server exceptions (``raise_server_exceptions=False`` on :class:`world.Clients` to see
  the 500 response instead).
- ``fresh_app`` / ``fresh_client`` (function): the same over ``fresh_web_db``.
- ``make_app`` (function): ``make_app(db, **create_app_kwargs)`` for an app with other settings (e.g.
  ``timeouts=Timeouts(idle=timedelta(seconds=1))``, ``secure_cookies=True``); its engines are disposed after
  the test. ``world.Clients(app)`` then gives its clients.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import os
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
import world

from abscopal import domain as d
from abscopal.store.audit_key import key_location, load_key
from abscopal.store.database import make_engine
from abscopal.store.migrate import upgrade
from abscopal.store.pgserver import TemporaryPostgres
from abscopal.store.tables import ENTITIES
from abscopal.store.unit_of_work import UnitOfWork

BACKENDS = ["sqlite", "postgresql"]
_names = itertools.count()


@dataclass
class WebDb:
    """A database holding the test world: its URL, an engine on it (for the test's own queries), its backend."""

    url: str
    backend: str
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.url)
        return self._engine

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __str__(self) -> str:
        return self.url


def build_world(url: str) -> None:
    """Migrate the empty database at ``url`` and write the test world into it (sites, cohort, accounts)."""
    from abscopal.protocol.model import load_bundled
    from abscopal.store.cohort_loader import store_cohort_chunks
    from abscopal.synth.cohort import iter_cohort_chunks
    from abscopal.web.accounts import Membership, create_account

    engine = make_engine(url)
    try:
        upgrade(engine)
        load_key(engine.url, create=True)
        protocol = load_bundled().current
        with UnitOfWork(engine, "setup", "test world") as uow:
            for code, name in world.SITES.items():
                uow.sites.add(d.Site(code, name, "CN", world.TIME_ZONE))
            uow.commit()
        chunks = iter_cohort_chunks(world.COHORT_SIZE, world.COHORT_SEED, protocol, chunk_size=world.COHORT_SIZE)
        store_cohort_chunks(
            engine,
            (dataclasses.replace(chunk, sites=()) for chunk in chunks),  # the sites are the world's (above)
            user="synth",
            reason="synthetic demo cohort (test)",
        )
        with UnitOfWork(engine, "setup", "test world: a patient at the second site") as uow:
            uow.patients.add(
                d.Patient(
                    subject_id=world.JNC_PATIENT,
                    site_code=world.JNC,
                    sex=d.Sex.FEMALE,
                    birth_date=datetime.date(1961, 5, 17),
                    protocol_version=protocol.version.number,
                    status=d.PatientStatus.SCREENING,
                )
            )
            uow.commit()
        patients = ENTITIES["patients"].table
        with engine.connect() as conn:
            status = conn.execute(
                select(patients.c.status).where(patients.c.subject_id == world.QFS_PATIENT)
            ).scalar_one_or_none()
        if status is None or status == d.PatientStatus.SCREENING.value:
            raise RuntimeError(
                f"world.QFS_PATIENT {world.QFS_PATIENT} is {status or 'missing'} in the synthetic cohort (seed "
                f"{world.COHORT_SEED}); choose an enrolled one in tests/web/world.py"
            )
        with engine.begin() as conn:
            for username, role in world.USERS.items():
                create_account(
                    conn,
                    by="setup",
                    username=username,
                    full_name=world.full_name(username),
                    password=world.PASSWORD,
                    memberships_=[Membership(world.SITE_OF[username], role, pi=username in world.PIS)],
                    subject_id=world.SUBJECT_OF.get(username),
                    check_policy=True,
                )
    finally:
        engine.dispose()


def _copy_key(source_url: str, target_url: str) -> None:
    source, target = key_location(make_url(source_url)), key_location(make_url(target_url))
    if source is not None and target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        target.chmod(0o600)


class _Templates:
    """One built world per backend (per xdist worker), copied for every database the fixtures hand out."""

    def __init__(self, folder: Path, server: TemporaryPostgres | None) -> None:
        self.folder = folder
        self.server = server
        self.urls: dict[str, str] = {}
        self.pg_names: list[str] = []

    def template(self, backend: str) -> str:
        if backend not in self.urls:
            if backend == "sqlite":
                url = f"sqlite:///{self.folder / 'template.sqlite'}"
            else:
                assert self.server is not None
                name = f"webtpl_{os.getpid()}"
                self.server.drop_database(name)
                url = self.server.create_database(name)
                self.pg_names.append(name)
            build_world(url)
            self.urls[backend] = url
        return self.urls[backend]

    def copy(self, backend: str) -> WebDb:
        template = self.template(backend)
        n = next(_names)
        if backend == "sqlite":
            target = self.folder / f"web{n}.sqlite"
            src = sqlite3.connect(make_url(template).database or "")
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)
            finally:
                src.close()
                dst.close()
            url = f"sqlite:///{target}"
        else:
            import psycopg

            assert self.server is not None
            name = f"web_{os.getpid()}_{n}"
            with psycopg.connect(
                f"host=127.0.0.1 port={self.server.port} user=postgres dbname=postgres", autocommit=True
            ) as c:
                c.execute(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(template).database}"')
            url = self.server.url(name)
            self.pg_names.append(name)
        _copy_key(template, url)
        return WebDb(url, backend)

    def drop(self, db: WebDb) -> None:
        db.dispose()
        if db.backend == "postgresql" and self.server is not None:
            name = make_url(db.url).database or ""
            self.server.drop_database(name)
            if name in self.pg_names:
                self.pg_names.remove(name)

    def close(self) -> None:
        if self.server is not None:
            for name in list(self.pg_names):
                self.server.drop_database(name)


@pytest.fixture(scope="session")
def _web_templates(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: TemporaryPostgres | None
) -> Iterator[_Templates]:
    shm = Path("/dev/shm")  # SQLite's fsyncs (synchronous=FULL) cost nothing in memory
    if shm.is_dir() and os.access(shm, os.W_OK):
        folder = Path(tempfile.mkdtemp(prefix="abscopal-web-", dir=shm))
    else:
        folder = tmp_path_factory.mktemp("web")
    templates = _Templates(folder, postgres_server)
    yield templates
    templates.close()
    if folder.parent == shm:
        shutil.rmtree(folder, ignore_errors=True)


def _open(request: pytest.FixtureRequest, templates: _Templates) -> WebDb:
    backend = request.param
    if backend == "postgresql" and templates.server is None:
        why = os.environ.get("ABSCOPAL_TEST_PG_UNAVAILABLE", "disabled by ABSCOPAL_TEST_POSTGRES=0")
        pytest.skip(f"PostgreSQL not available ({why}); `make test` installs and starts it")
    return templates.copy(backend)


@pytest.fixture(scope="module", params=BACKENDS)
def web_db(request: pytest.FixtureRequest, _web_templates: _Templates) -> Iterator[WebDb]:
    """The test world in a database shared by the module's tests (one per backend)."""
    db = _open(request, _web_templates)
    yield db
    _web_templates.drop(db)


@pytest.fixture(params=BACKENDS)
def fresh_web_db(request: pytest.FixtureRequest, _web_templates: _Templates) -> Iterator[WebDb]:
    """The test world in a database of the test's own (one per backend)."""
    db = _open(request, _web_templates)
    yield db
    _web_templates.drop(db)


def _dispose_app(app: FastAPI) -> None:
    state = app.state.web
    state.engine.dispose()
    state.read_engine.dispose()


@pytest.fixture(scope="module")
def app(web_db: WebDb) -> Iterator[FastAPI]:
    from abscopal.web.app import create_app

    application = create_app(web_db.url)
    yield application
    _dispose_app(application)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[world.Clients]:
    clients = world.Clients(app)
    yield clients
    clients.close()


@pytest.fixture
def fresh_app(fresh_web_db: WebDb) -> Iterator[FastAPI]:
    from abscopal.web.app import create_app

    application = create_app(fresh_web_db.url)
    yield application
    _dispose_app(application)


@pytest.fixture
def fresh_client(fresh_app: FastAPI) -> Iterator[world.Clients]:
    clients = world.Clients(fresh_app)
    yield clients
    clients.close()


@pytest.fixture
def make_app() -> Iterator[Callable[..., FastAPI]]:
    from abscopal.web.app import create_app

    made: list[FastAPI] = []

    def make(db: WebDb | str, **kwargs: Any) -> FastAPI:
        application = create_app(str(db), **kwargs)
        made.append(application)
        return application

    yield make
    for application in made:
        _dispose_app(application)
