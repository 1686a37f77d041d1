"""`abscopal audit checkpoint -o FILE` and `abscopal audit verify --checkpoint FILE`: a rollback after the
checkpoint is detected, end to end, by the commands a data manager runs (issue 10 §5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import delete, select, text, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
import _writers

from abscopal.store.database import make_engine
from abscopal.store.migrate import upgrade
from abscopal.store.tables import ENTITIES, audit_head, audit_log
from abscopal.store.unit_of_work import UnitOfWork


def run(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "ABSCOPAL_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "abscopal", *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'trial.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    _writers.seed(engine, subjects=1, lesions=1)
    engine.dispose()
    return url


def test_a_checkpoint_written_to_a_file_then_verified_says_intact(url: str, tmp_path: Path) -> None:
    out = tmp_path / "checkpoint.json"
    res = run("audit", "checkpoint", "-o", str(out), url=url)
    assert res.returncode == 0, res.stderr
    statement = json.loads(out.read_text())
    # the seed wrote three audit records: the site, the patient, the lesion
    assert statement["seq"] == 3 and statement["rows"]["lesions"] == 1 and statement["signature"]
    res = run("audit", "verify", "--checkpoint", str(out), url=url)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Intact" in res.stdout and "extend the checkpoint" in res.stdout


def test_verify_with_the_checkpoint_detects_a_rollback_that_verify_alone_cannot(url: str, tmp_path: Path) -> None:
    engine = make_engine(url)
    with engine.connect() as conn:
        old_head = dict(conn.execute(select(audit_head)).mappings().one())
    with UnitOfWork(engine, user="coordinator1", reason="screening") as uow:
        added = uow.patients.add(_writers.patient("JN-009")).id
        uow.commit()
    out = tmp_path / "checkpoint.json"
    assert run("audit", "checkpoint", "-o", str(out), url=url).returncode == 0
    with engine.begin() as conn:  # roll back to the older head: drop the triggers, the record, its row
        conn.execute(text("DROP TRIGGER audit_log_no_update"))
        conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        conn.execute(delete(audit_log).where(audit_log.c.seq > old_head["last_seq"]))
        conn.execute(delete(ENTITIES["patients"].table).where(ENTITIES["patients"].table.c.id == added))
        conn.execute(update(audit_head).values({k: v for k, v in old_head.items() if k != "id"}))
    engine.dispose()
    alone = run("audit", "verify", url=url)
    assert alone.returncode == 0 and "Intact" in alone.stdout  # self-consistent: the head's MAC is genuine
    res = run("audit", "verify", "--checkpoint", str(out), url=url)
    assert res.returncode == 1
    assert "rolled back or truncated" in res.stdout
    assert "Traceback" not in res.stderr


def test_a_forged_or_missing_checkpoint_file_is_a_sentence_and_exit_one(url: str, tmp_path: Path) -> None:
    out = tmp_path / "checkpoint.json"
    assert run("audit", "checkpoint", "-o", str(out), url=url).returncode == 0
    statement = json.loads(out.read_text())
    out.write_text(json.dumps({**statement, "seq": 1}))
    res = run("audit", "verify", "--checkpoint", str(out), url=url)
    assert res.returncode == 1 and "signature is not valid" in res.stdout
    res = run("audit", "verify", "--checkpoint", str(tmp_path / "nope.json"), url=url)
    assert res.returncode == 1
    assert "nope.json" in res.stdout + res.stderr and "Traceback" not in res.stderr
