"""Commands that read the trial database: demo, db status, audit verify/history, schedule, ae summary."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from abscopal import domain as d
from abscopal.store.database import make_engine
from abscopal.store.repository import Repository


def run(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "ABSCOPAL_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "abscopal", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    url = f"sqlite:///{path}"
    res = run("demo", "--patients", "40", "--seed", "3", "--database-url", url, url=url)
    assert res.returncode == 0, res.stderr
    assert "patients: screen_failed" in res.stdout
    return url


def test_demo_database_verifies_intact(demo_url: str) -> None:
    res = run("audit", "verify", url=demo_url)
    assert res.returncode == 0, res.stderr
    assert "Intact" in res.stdout


def test_db_status_counts_the_demo_patients(demo_url: str) -> None:
    res = run("db", "status", url=demo_url)
    assert res.returncode == 0
    assert "│ patients" in res.stdout


def test_audit_verify_fails_and_names_a_row_edited_with_sqlite(demo_url: str, tmp_path: Path) -> None:
    copy = tmp_path / "tampered.sqlite"
    source = sqlite3.connect(demo_url.removeprefix("sqlite:///"))
    target = sqlite3.connect(copy)
    source.backup(target)
    source.close()
    shutil.copy(demo_url.removeprefix("sqlite:///") + ".audit-key", str(copy) + ".audit-key")  # the same trail key
    target.execute("UPDATE lesions SET baseline_diameter_mm = 99.0 WHERE id = (SELECT MIN(id) FROM lesions)")
    key = target.execute("SELECT MIN(id) FROM lesions").fetchone()[0]
    target.commit()
    target.close()
    res = run("audit", "verify", "--json", url=f"sqlite:///{copy}")
    assert res.returncode == 1
    findings = json.loads(res.stdout)["findings"]
    assert [(f["kind"], f["entity"], f["entity_key"]) for f in findings] == [("edited", "lesions", key)]


def test_schedule_reads_an_enrolled_patient_from_the_database(demo_url: str) -> None:
    with make_engine(demo_url).connect() as conn:
        enrolled = [p for p in Repository(conn).all(d.Patient) if p.enrolment_date is not None]
    patient = enrolled[0]
    res = run("schedule", patient.subject_id, "--json", "--as-of", "2024-01-01", url=demo_url)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["patient_id"] == patient.subject_id
    kinds = {v["kind"] for v in data["visits"]}
    assert {"cfrt_fraction", "immunotherapy", "tumour_assessment"} <= kinds


def test_schedule_of_an_unknown_patient_is_one_sentence(demo_url: str) -> None:
    res = run("schedule", "NOBODY", url=demo_url)
    assert res.returncode == 1
    assert "No patient 'NOBODY'" in res.stderr
    assert "Traceback" not in res.stderr


def test_ae_summary_from_the_database_uses_the_safety_population(demo_url: str) -> None:
    res = run("ae", "summary", "--json", url=demo_url)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    with make_engine(demo_url).connect() as conn:
        repo = Repository(conn)
        treated = {f.subject_id for f in repo.all(d.Fraction) if f.status is not d.FractionStatus.MISSED}
    assert data["tables"]["population"] == len(treated)


def test_schedule_reads_the_database_while_another_user_holds_the_write_lock(demo_url: str) -> None:
    # read-only: the command begins a deferred read, so a writer's lock (BEGIN IMMEDIATE) does not block it
    with make_engine(demo_url).connect() as conn:
        patient = next(p for p in Repository(conn).all(d.Patient) if p.enrolment_date is not None)
    writer = sqlite3.connect(demo_url.removeprefix("sqlite:///"), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        env = {
            **os.environ,
            "COLUMNS": "200",
            "ABSCOPAL_DATABASE_URL": demo_url,
            "ABSCOPAL_SQLITE_BUSY_TIMEOUT_MS": "200",
        }
        res = subprocess.run(
            [sys.executable, "-m", "abscopal", "schedule", patient.subject_id, "--json", "--as-of", "2024-01-01"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["patient_id"] == patient.subject_id


def test_schedule_on_a_missing_database_file_is_one_sentence_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "none.sqlite"
    res = run("schedule", "QFS-0001", url=f"sqlite:///{path}")
    assert res.returncode == 1
    assert f"There is no database at {path}" in res.stderr
    assert not path.exists()
