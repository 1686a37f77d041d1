"""``abscopal demo`` builds a two-site demo with one account per role and serves it; Ctrl-C stops it cleanly.

The served demo stays rebuildable after its users sign in and edit it; an account the demo did not make
keeps a database from being replaced.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import text

from abscopal.cli.demo import DEMO_USERNAMES
from abscopal.store.database import make_engine

PASSWORD = "Demo-password-for-tests"
DEMO_USERS = (
    "coordinator", "investigator", "pi", "dcp1", "dcp2", "radonc", "radiologist", "datamanager", "monitor",
    "statistician", "admin", "coordinator2", "patient",
)  # fmt: skip


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("ABSCOPAL_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "abscopal", *args], capture_output=True, text=True, env=env, timeout=300, input=stdin
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post_json(url: str, body: dict[str, str]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_the_demo_usernames_are_the_thirteen_of_the_spec() -> None:
    assert DEMO_USERNAMES == DEMO_USERS


def test_demo_no_serve_builds_two_sites_their_patients_and_the_demo_accounts(database_url: str) -> None:
    res = run("demo", "--patients", "15", "--seed", "3", "--no-serve", "--database-url", database_url)
    assert res.returncode == 0, res.stderr
    for username in DEMO_USERS:
        assert username in res.stdout
    assert "Password: " in res.stdout and "export ABSCOPAL_DATABASE_URL=" in res.stdout
    engine = make_engine(database_url, read_only=True)
    try:
        with engine.connect() as conn:
            sites = dict(conn.execute(text("SELECT code, time_zone FROM sites")).all())
            by_site = dict(conn.execute(text("SELECT site_code, count(*) FROM patients GROUP BY site_code")).all())
            roles = conn.execute(text("SELECT username, site_code, role, pi FROM memberships")).all()
            patient = conn.execute(text("SELECT subject_id FROM accounts WHERE username = 'patient'")).scalar_one()
            status = conn.execute(
                text("SELECT status, site_code FROM patients WHERE subject_id = :s"), {"s": patient}
            ).one()
    finally:
        engine.dispose()
    assert set(sites) == {"QFS", "JNC"}
    assert by_site == {"QFS": 10, "JNC": 5}
    held = {r[0]: (r[1], r[2], bool(r[3])) for r in roles}
    assert set(held) == set(DEMO_USERS)
    assert held["pi"] == ("QFS", "investigator", True) and held["investigator"] == ("QFS", "investigator", False)
    assert held["coordinator2"] == ("JNC", "coordinator", False)
    assert held["statistician"][0] == "*" and held["admin"][0] == "*"
    assert held["patient"] == ("QFS", "patient", False)
    assert status[1] == "QFS" and status[0] not in ("screening", "screen_failed")
    verify = run("audit", "verify", "--database-url", database_url)
    assert verify.returncode == 0 and "Intact" in verify.stdout, verify.stdout + verify.stderr


def test_the_served_demo_answers_signs_in_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    url = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    env = {**os.environ, "COLUMNS": "200"}
    server = subprocess.Popen(
        [sys.executable, "-m", "abscopal", "demo", "--serve", "--patients", "12", "--port", str(port),
         "--demo-password", PASSWORD, "--database-url", url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, "the demo never started serving"
            try:
                with urllib.request.urlopen(f"{base}/login", timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:  # refused, or accepted by the socket while the demo is still being built
                time.sleep(0.2)
        status, body = post_json(f"{base}/api/v1/login", {"username": "coordinator", "password": PASSWORD})
        assert status == 200, body
        assert body["username"] == "coordinator" and body["full_name"] == "Xu Fang"
        status, _ = post_json(f"{base}/api/v1/login", {"username": "coordinator", "password": "wrong-password-1"})
        assert status in (401, 403)
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in out and "Stopped." in out
    for username in DEMO_USERS:
        assert username in out
    assert PASSWORD in out and "Traceback" not in out + err
    # people signed in (audit records by coordinator, failed logins): the demo is still rebuilt
    again = run("demo", "--patients", "6", "--no-serve", "--database-url", url)
    assert again.returncode == 0, again.stderr


def test_a_demo_edited_by_a_demo_user_is_rebuilt_but_one_with_a_stranger_account_is_refused(tmp_path: Path) -> None:
    from abscopal.store.unit_of_work import UnitOfWork

    path = tmp_path / "demo.sqlite"
    url = f"sqlite:///{path}"
    assert run("demo", "--patients", "6", "--no-serve", "--database-url", url).returncode == 0
    engine = make_engine(url)
    try:
        from abscopal import domain as d
        from abscopal.web.accounts import security_event

        with engine.begin() as conn:  # a login by coordinator
            security_event(conn, "coordinator", "login", "signed in")
            security_event(conn, "typo-name", "login_failed", "unknown username")
        with UnitOfWork(engine, "coordinator", "visit date corrected") as uow:  # an edit by coordinator
            uow.sites.add(d.Site("TMP", "A site the coordinator added", "CN", "Asia/Shanghai"))
            uow.commit()
    finally:
        engine.dispose()
    rebuilt = run("demo", "--patients", "6", "--no-serve", "--database-url", url)
    assert rebuilt.returncode == 0, rebuilt.stderr

    stranger = run(
        "user", "add", "alice", "--full-name", "Alice Smith", "--role", "monitor", "--site", "QFS",
        "--password-stdin", "--by", "admin", "--database-url", url, stdin="Long-enough-secret-7\n",
    )  # fmt: skip
    assert stranger.returncode == 0, stranger.stderr
    before = sqlite3.connect(path).execute("SELECT count(*) FROM audit_log").fetchone()[0]
    refused = run("demo", "--patients", "6", "--no-serve", "--database-url", url)
    assert refused.returncode == 1
    assert "not an Abscopal demo" in refused.stderr and "'alice'" in refused.stderr
    assert "wrote nothing" in refused.stderr and "Traceback" not in refused.stderr
    assert sqlite3.connect(path).execute("SELECT count(*) FROM audit_log").fetchone()[0] == before


@pytest.mark.parametrize("password", ["short", "monitor-is-in-it-42"])
def test_a_weak_demo_password_is_refused_with_a_sentence_before_anything_is_built(
    tmp_path: Path, password: str
) -> None:
    path = tmp_path / "demo.sqlite"
    res = run("demo", "--patients", "5", "--demo-password", password, "--database-url", f"sqlite:///{path}")
    assert res.returncode == 1
    assert "--demo-password" in res.stderr and "is refused" in res.stderr and "Traceback" not in res.stderr
    assert not path.exists()
