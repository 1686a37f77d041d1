"""The foundation commands: clear sentences and non-zero exits on bad input, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from abscopal.protocol.model import bundled_protocol_path


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "abscopal", *args], capture_output=True, text=True, env=full_env, timeout=120
    )


def test_protocol_show_lists_the_trial_and_the_platelet_note() -> None:
    res = run("protocol", "show")
    assert res.returncode == 0, res.stderr
    assert "NCT05906329" in res.stdout
    assert "typo" in res.stdout


def test_protocol_show_json_is_the_whole_protocol() -> None:
    import json

    res = run("protocol", "show", "--json")
    data = json.loads(res.stdout)
    assert data["radiotherapy"]["low_dose"]["dose_per_fraction_gy"] == 1.6


def test_protocol_check_accepts_the_bundled_file() -> None:
    res = run("protocol", "check", str(bundled_protocol_path()))
    assert res.returncode == 0
    assert "versions 1.0" in res.stdout


def test_protocol_check_names_the_bad_key_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(bundled_protocol_path().read_text().replace("max_lesions = 10\n", "max_lesions = -3\n", 1))
    res = run("protocol", "check", str(bad))
    assert res.returncode == 1
    assert "radiotherapy.low_dose.max_lesions" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "is not valid"),
        ("mysql://u@localhost/db", "supports sqlite and postgresql"),
        ("postgresql+psycopg://nobody@127.0.0.1:1/none", "Cannot reach the database"),
    ],
)
def test_bad_database_url_gets_one_sentence_and_exit_1(url: str, expected: str) -> None:
    res = run("db", "upgrade", env={"ABSCOPAL_DATABASE_URL": url})
    assert res.returncode == 1
    assert expected in res.stderr
    assert "Traceback" not in res.stderr + res.stdout


def test_db_upgrade_then_status_on_a_new_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'trial.sqlite'}"
    assert run("db", "upgrade", "--database-url", url).returncode == 0
    res = run("db", "status", "--database-url", url)
    assert res.returncode == 0
    assert "patients" in res.stdout


def test_audit_verify_on_an_empty_database_says_to_upgrade(tmp_path: Path) -> None:
    res = run("audit", "verify", "--database-url", f"sqlite:///{tmp_path / 'x.sqlite'}")
    assert res.returncode == 1
    assert "abscopal db upgrade" in res.stderr
