"""``abscopal demo`` and database URLs: only a demo is replaced, one demo at a time, no password shown,
missing folders / in-memory / corrupt files refused with a sentence, read-only commands open read-only."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from sqlalchemy import MetaData, Table, func, insert, select, text

from abscopal.cli._common import user_errors
from abscopal.store.database import make_engine
from abscopal.store.pgserver import TemporaryPostgres


def run(*args: str, url: str | None = None, columns: int = 200) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns)}
    env.pop("ABSCOPAL_DATABASE_URL", None)
    if url is not None:
        env["ABSCOPAL_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "abscopal", *args], capture_output=True, text=True, env=env, timeout=300
    )


def demo(url: str, patients: int = 5, seed: int = 3, columns: int = 200) -> subprocess.CompletedProcess[str]:
    return run("demo", "--patients", str(patients), "--seed", str(seed), "--database-url", url, columns=columns)


def snapshot(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, to show that a refused command changed nothing."""
    con = sqlite3.connect(path)
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {n: sorted(con.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}
    finally:
        con.close()


def add_audit_record_by(url: str, username: str) -> None:
    """A copy of the last audit record, as if ``username`` had changed something (whatever the audit columns)."""
    engine = make_engine(url)
    try:
        audit = Table("audit_log", MetaData(), autoload_with=engine)
        with engine.begin() as conn:
            last = dict(conn.execute(select(audit).order_by(*audit.primary_key.columns).limit(1)).mappings().one())
            for column in audit.primary_key.columns:
                last[column.name] = conn.execute(select(func.max(column) + 1)).scalar_one()
            last.update(username=username, reason="screening visit")
            conn.execute(insert(audit).values(**last))
    finally:
        engine.dispose()


def test_a_second_demo_replaces_the_first_demo(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    assert demo(url, patients=5).returncode == 0
    res = demo(url, patients=7)
    assert res.returncode == 0, res.stderr
    con = sqlite3.connect(tmp_path / "demo.sqlite")
    assert con.execute("SELECT count(*) FROM patients").fetchone()[0] == 7
    con.close()


def test_demo_into_a_database_with_someone_elses_audit_records_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "trial.sqlite"
    assert demo(f"sqlite:///{path}").returncode == 0
    add_audit_record_by(f"sqlite:///{path}", "coordinator1")
    before = snapshot(path)
    res = demo(f"sqlite:///{path}", patients=9)
    assert res.returncode == 1
    assert "holds data that is not an Abscopal demo" in res.stderr
    assert "coordinator1" in res.stderr and "wrote nothing" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert snapshot(path) == before


def test_demo_into_a_database_with_another_applications_rows_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    con.execute("INSERT INTO invoices VALUES (1, 9.5)")
    con.commit()
    con.close()
    before = snapshot(path)
    res = demo(f"sqlite:///{path}")
    assert res.returncode == 1
    assert "'invoices'" in res.stderr and "not an Abscopal demo" in res.stderr
    assert snapshot(path) == before


def _lock_is_held(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def test_a_second_concurrent_demo_on_one_file_is_refused_and_the_first_completes_intact(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite"
    url = f"sqlite:///{path}"
    env = {**os.environ, "COLUMNS": "200"}
    first = subprocess.Popen(
        [sys.executable, "-m", "abscopal", "demo", "--patients", "800", "--seed", "5", "--database-url", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not _lock_is_held(Path(f"{path}.demo-lock")):
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the first demo never took its lock"
        time.sleep(0.05)
    second = demo(url, patients=3, seed=9)
    _, err = first.communicate(timeout=300)
    assert second.returncode == 1
    assert "Another `abscopal demo` is building" in second.stderr and "wrote nothing" in second.stderr
    assert "Traceback" not in second.stderr
    assert first.returncode == 0, err
    con = sqlite3.connect(path)
    assert con.execute("SELECT count(*) FROM patients").fetchone()[0] == 800
    con.close()
    verify = run("audit", "verify", url=url)
    assert verify.returncode == 0 and "Intact" in verify.stdout, verify.stdout + verify.stderr
    assert not Path(f"{path}.demo-lock").exists()


@pytest.mark.postgres
def test_no_demo_output_shows_the_postgresql_password(postgres_server: TemporaryPostgres | None) -> None:
    if postgres_server is None:
        pytest.skip("PostgreSQL not available (ABSCOPAL_TEST_POSTGRES=0 or no server)")
    name = f"demo_pw_{os.getpid()}"
    plain = postgres_server.create_database(name)
    secret = "Sekr3t-pa55word"
    url = plain.replace("postgres@", f"postgres:{secret}@", 1)  # the test server trusts, so any password works
    try:
        ok = demo(url, columns=60)
        assert ok.returncode == 0, ok.stderr
        assert "***" in ok.stdout and "ABSCOPAL_DATABASE_URL" in ok.stdout
        add_audit_record_by(plain, "dm1")  # someone else's record: the refusal must not show the password either
        refused = demo(url)
        assert refused.returncode == 1
        for res in (ok, refused):
            assert secret not in res.stdout + res.stderr
    finally:
        postgres_server.drop_database(name)


def test_the_follow_up_commands_each_fit_on_one_line_in_a_narrow_terminal(tmp_path: Path) -> None:
    folder = tmp_path / ("a-rather-long-folder-name-for-the-demo-database" * 2)
    folder.mkdir()
    url = f"sqlite:///{folder / 'demo.sqlite'}"
    res = demo(url, columns=40)
    assert res.returncode == 0, res.stderr
    lines = [line.strip() for line in res.stdout.splitlines()]
    assert f"export ABSCOPAL_DATABASE_URL={url}" in lines
    assert "abscopal audit verify" in lines


def test_a_sqlite_url_in_a_missing_folder_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'typo' / 'demo.sqlite'}"
    for args in (("demo", "--patients", "3", "--database-url", url), ("db", "upgrade", "--database-url", url)):
        res = run(*args)
        assert res.returncode == 1
        assert "does not exist" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("demo", "--patients", "3"),
        ("db", "upgrade"),
        ("db", "status"),
        ("audit", "verify"),
        ("report", "--output", "OUT", "--cutoff", "2025-01-01"),
    ],
)
@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:///:memory:"])
def test_an_in_memory_database_is_refused_by_every_command_that_needs_a_real_one(
    args: tuple[str, ...], url: str, tmp_path: Path
) -> None:
    args = tuple(str(tmp_path / "out") if a == "OUT" else a for a in args)
    res = run(*args, "--database-url", url)
    assert res.returncode == 1
    assert "in-memory SQLite database" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize(
    "args", [("demo", "--patients", "3"), ("db", "upgrade"), ("db", "status"), ("audit", "verify")]
)
def test_a_file_that_is_not_a_database_is_one_sentence_and_left_alone(args: tuple[str, ...], tmp_path: Path) -> None:
    path = tmp_path / "thesis.sqlite"
    path.write_text("Chapter 1. " * 500)
    res = run(*args, "--database-url", f"sqlite:///{path}")
    assert res.returncode == 1
    assert "is not a usable SQLite database" in res.stderr and "Traceback" not in res.stderr + res.stdout
    assert path.read_text().startswith("Chapter 1. ")


def test_db_status_opens_the_database_read_only_so_a_busy_writer_does_not_block_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'trial.sqlite'}"
    assert run("db", "upgrade", "--database-url", url).returncode == 0
    writer = make_engine(url)
    with writer.begin() as conn:  # BEGIN IMMEDIATE: the write lock is held until the block ends
        conn.execute(select(1))
        res = subprocess.run(
            [sys.executable, "-m", "abscopal", "db", "status", "--database-url", url],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "200", "ABSCOPAL_SQLITE_BUSY_TIMEOUT_MS": "0"},
            timeout=120,
        )
    writer.dispose()
    assert res.returncode == 0, res.stderr
    assert "Schema:" in res.stdout


def test_db_status_of_a_missing_file_says_so_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nothing.sqlite"
    res = run("db", "status", "--database-url", f"sqlite:///{path}")
    assert res.returncode == 1
    assert "There is no database at" in res.stderr
    assert not path.exists()


def test_a_database_error_that_escapes_a_command_is_one_typed_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'trial.sqlite'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))

    @user_errors
    def command() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))

    with pytest.raises(typer.Exit) as exit_:
        command()
    engine.dispose()
    err = capsys.readouterr().err
    assert exit_.value.exit_code == 1
    assert "a record with the same identity already exists" in err
    assert "IntegrityError" not in err and "Traceback" not in err


@pytest.fixture
def pg_url(postgres_server: TemporaryPostgres | None) -> Iterator[str]:
    if postgres_server is None:
        pytest.skip("PostgreSQL not available (ABSCOPAL_TEST_POSTGRES=0 or no server)")
    name = f"demo_{os.getpid()}_{time.monotonic_ns()}"
    yield postgres_server.create_database(name)
    postgres_server.drop_database(name)


@pytest.mark.postgres
def test_a_second_demo_on_postgresql_replaces_the_first_demo(pg_url: str) -> None:
    assert demo(pg_url, patients=5).returncode == 0
    res = demo(pg_url, patients=7)
    assert res.returncode == 0, res.stderr
    engine = make_engine(pg_url, read_only=True)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM patients")).scalar_one() == 7
    engine.dispose()


@pytest.mark.postgres
def test_a_demo_on_postgresql_while_another_demo_holds_the_lock_is_refused(pg_url: str) -> None:
    from abscopal.cli.demo import demo_lock

    engine = make_engine(pg_url)
    with demo_lock(pg_url, engine):  # what a running demo holds
        res = demo(pg_url, patients=3)
    engine.dispose()
    assert res.returncode == 1
    assert "Another `abscopal demo` is building" in res.stderr and "Traceback" not in res.stderr
