"""``abscopal user`` and ``abscopal site`` manage accounts and sites, ``abscopal serve`` serves them.

Each refusal is one sentence and writes nothing; a user added on the command line can sign in to the app;
disabling a user ends their sessions. Run through Typer's CliRunner in-process, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from abscopal.cli import build_app
from abscopal.store.database import make_engine
from abscopal.store.migrate import upgrade
from abscopal.store.tables import accounts, audit_log, web_sessions

PASSWORD = "Correct-horse-battery-9"


def cli(area: str, *args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(build_app(area), [area, *args], input=stdin, env={"COLUMNS": "200"})


def counts(url: str) -> tuple[int, int]:
    engine = make_engine(url, read_only=True)
    try:
        with engine.connect() as conn:
            n_accounts = conn.execute(select(func.count()).select_from(accounts)).scalar_one()
            n_audit = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
    finally:
        engine.dispose()
    return int(n_accounts), int(n_audit)


@pytest.fixture
def trial(database_url: str) -> str:
    """A database with its schema and one site, QFS."""
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    res = cli("site", "add", "QFS", "--name", "Qianfoshan Hospital", "--by", "admin", "--database-url", database_url)
    assert res.exit_code == 0, res.output
    return database_url


def add_user(url: str, username: str, *extra: str, password: str = PASSWORD) -> Any:
    return cli(
        "user", "add", username, "--full-name", "Xu Fang", *extra, "--password-stdin", "--by", "admin",
        "--database-url", url, stdin=password + "\n",
    )  # fmt: skip


def test_a_user_added_on_the_command_line_signs_in_to_the_served_app(trial: str) -> None:
    from abscopal.cli.serve import check_ready
    from abscopal.web.app import create_app

    res = add_user(trial, "crc.xu", "--role", "coordinator", "--site", "QFS")
    assert res.exit_code == 0, res.output
    assert "Added crc.xu" in res.output
    check_ready(trial)  # what `abscopal serve` checks before it starts
    with TestClient(create_app(trial)) as client:
        login = client.post("/api/v1/login", json={"username": "crc.xu", "password": PASSWORD})
        assert login.status_code == 200, login.text
        assert login.json()["memberships"] == [{"site": "QFS", "role": "coordinator", "pi": False}]
        assert client.get("/api/v1/me").json()["full_name"] == "Xu Fang"
    listed = cli("user", "list", "--database-url", trial)
    assert listed.exit_code == 0 and "crc.xu" in listed.output and "coordinator@QFS" in listed.output


@pytest.mark.parametrize(
    ("username", "extra", "password", "sentence"),
    [
        ("bob", ("--role", "coordinator", "--site", "XYZ"), PASSWORD, "there is no site 'XYZ'"),
        ("bob", ("--role", "coordinator", "--site", "QFS"), "short", "at least 12 characters"),
        ("bob", ("--role", "coordinator", "--site", "QFS"), "bob-is-my-password", "cannot contain the username"),
        ("taken", ("--role", "coordinator", "--site", "QFS"), PASSWORD, "the username 'taken' is taken"),
        ("bob", ("--role", "coordinator", "--site", "*"), PASSWORD, "only the statistician and the administrator"),
        ("bob", ("--role", "surgeon", "--site", "QFS"), PASSWORD, "'surgeon' is not a role"),
        ("bob", ("--role", "coordinator"), PASSWORD, "give one --site for each --role"),
    ],
)
def test_user_add_refuses_with_a_sentence_and_writes_nothing(
    trial: str, username: str, extra: tuple[str, ...], password: str, sentence: str
) -> None:
    assert add_user(trial, "taken", "--role", "monitor", "--site", "QFS").exit_code == 0
    before = counts(trial)
    res = add_user(trial, username, *extra, password=password)
    assert res.exit_code == 1
    assert sentence in res.output and "Traceback" not in res.output
    assert counts(trial) == before


def test_disable_ends_the_users_sessions_and_enable_lets_them_back_in(trial: str) -> None:
    from abscopal.web.app import create_app

    assert add_user(trial, "dm.guo", "--role", "data_manager", "--site", "QFS").exit_code == 0
    with TestClient(create_app(trial)) as client:
        assert client.post("/api/v1/login", json={"username": "dm.guo", "password": PASSWORD}).status_code == 200
        assert client.get("/api/v1/me").status_code == 200
        res = cli("user", "disable", "dm.guo", "--reason", "left the trial team", "--database-url", trial)
        assert res.exit_code == 0, res.output
        assert client.get("/api/v1/me").status_code == 401
        again = client.post("/api/v1/login", json={"username": "dm.guo", "password": PASSWORD})
        assert again.status_code != 200 and "disabled" in again.text
        assert cli("user", "enable", "dm.guo", "--database-url", trial).exit_code == 0
        assert client.post("/api/v1/login", json={"username": "dm.guo", "password": PASSWORD}).status_code == 200
    engine = make_engine(trial, read_only=True)
    with engine.connect() as conn:
        ended = conn.execute(select(web_sessions.c.ended_why).where(web_sessions.c.username == "dm.guo")).scalars()
        assert "disabled" in list(ended)
    engine.dispose()
    listed = cli("user", "list", "--database-url", trial)
    assert "dm.guo" in listed.output


def test_passwd_sets_a_new_password(trial: str) -> None:
    from abscopal.web.app import create_app

    assert add_user(trial, "ro.liu", "--role", "radonc", "--site", "QFS").exit_code == 0
    new = "Another-long-passphrase"
    res = cli("user", "passwd", "ro.liu", "--password-stdin", "--database-url", trial, stdin=new + "\n")
    assert res.exit_code == 0, res.output
    with TestClient(create_app(trial)) as client:
        assert client.post("/api/v1/login", json={"username": "ro.liu", "password": PASSWORD}).status_code != 200
        assert client.post("/api/v1/login", json={"username": "ro.liu", "password": new}).status_code == 200
    unknown = cli("user", "passwd", "nobody", "--password-stdin", "--database-url", trial, stdin=new + "\n")
    assert unknown.exit_code == 1 and "No account 'nobody'" in unknown.output


def test_site_add_refuses_an_unknown_time_zone_and_lists_the_sites(trial: str) -> None:
    before = counts(trial)
    res = cli("site", "add", "JNC", "--name", "Jinan Central", "--time-zone", "Asia/Jinan", "--database-url", trial)
    assert res.exit_code == 1 and "'Asia/Jinan' is not an IANA time zone" in res.output
    assert counts(trial) == before
    ok = cli("site", "add", "JNC", "--name", "Jinan Central", "--time-zone", "Asia/Shanghai", "--database-url", trial)
    assert ok.exit_code == 0, ok.output
    listed = cli("site", "list", "--database-url", trial)
    assert "QFS" in listed.output and "JNC" in listed.output and "Asia/Shanghai" in listed.output
    dup = cli("site", "add", "JNC", "--name", "Again", "--database-url", trial)
    assert dup.exit_code == 1 and "already exists" in dup.output


def test_serve_refuses_a_database_without_schema_or_without_accounts(database_url: str) -> None:
    res = cli("serve", "--database-url", database_url, "--port", "1")
    assert res.exit_code == 1 and "abscopal db upgrade`" in res.output
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    res = cli("serve", "--database-url", database_url)
    assert res.exit_code == 1
    assert "no user accounts" in res.output and "abscopal user add" in res.output and "--site '*'" in res.output


def test_the_factory_of_several_workers_builds_the_app_from_the_environment(
    trial: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from abscopal.web import serve_factory

    assert add_user(trial, "admin", "--role", "admin", "--site", "*").exit_code == 0
    monkeypatch.setenv(serve_factory.URL_VARIABLE, trial)
    monkeypatch.setenv(serve_factory.SECURE_VARIABLE, "1")
    app = serve_factory.app_from_env()
    assert app.state.web.secure_cookies is True
    with TestClient(app) as client:
        assert client.get("/login").status_code == 200


def test_serve_threads_caps_the_requests_a_worker_runs_at_once(trial: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import anyio.to_thread

    from abscopal.web import serve_factory
    from abscopal.web.app import create_app

    with TestClient(create_app(trial, threads=3)) as client:
        assert client.portal is not None
        assert client.portal.call(lambda: anyio.to_thread.current_default_thread_limiter().total_tokens) == 3
    monkeypatch.setenv(serve_factory.URL_VARIABLE, trial)  # what `abscopal serve --workers 2 --threads 5` sets
    monkeypatch.setenv(serve_factory.THREADS_VARIABLE, "5")
    with TestClient(serve_factory.app_from_env()) as client:
        assert client.portal is not None
        assert client.portal.call(lambda: anyio.to_thread.current_default_thread_limiter().total_tokens) == 5


def test_a_serving_app_freezes_its_start_up_objects_out_of_the_collectors_reach(trial: str) -> None:
    import gc

    from abscopal.web.app import SERVING_GC_THRESHOLDS, create_app

    before = gc.get_threshold()
    try:
        with TestClient(create_app(trial)):  # a test's app leaves the collector alone
            assert gc.get_threshold() == before
        with TestClient(create_app(trial, serving=True)):
            assert gc.get_threshold() == SERVING_GC_THRESHOLDS
            assert gc.get_freeze_count() > 10_000  # the modules, templates and caches alive at start
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
