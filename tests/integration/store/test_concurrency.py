"""Optimistic concurrency: two writers from the same version, one wins, the other is told; no lost update.

Runs on SQLite (``BEGIN IMMEDIATE`` queues writers) and PostgreSQL (the row is read ``FOR UPDATE``), with threads
and with separate processes (``_writers.py``), the way two browser sessions or two workers would collide.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

sys.path.insert(0, str(Path(__file__).parent))
import _writers

from abscopal.errors import AbscopalError, ConflictError
from abscopal.store.audit import verify
from abscopal.store.tables import ENTITIES, audit_log
from abscopal.store.unit_of_work import UnitOfWork

WRITERS = Path(_writers.__file__)


def _diameter_changes(engine: Engine, lesion_id: str) -> list[tuple[str, str | None, str | None, int | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.username, audit_log.c.old_value, audit_log.c.new_value, audit_log.c.version)
            .where(audit_log.c.entity == "lesions")
            .where(audit_log.c.entity_key == lesion_id)
            .where(audit_log.c.field == "baseline_diameter_mm")
            .order_by(audit_log.c.seq)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _stored(engine: Engine, lesion_id: str) -> tuple[int, float]:
    with UnitOfWork(engine, user="reader", reason="read") as uow:
        s = uow.lesions.get(lesion_id)
    assert s.value.baseline_diameter_mm is not None
    return s.version, s.value.baseline_diameter_mm


def _assert_one_winner(engine: Engine, lesion_id: str, outcomes: dict[str, str]) -> None:
    """Exactly one writer won, the other got the conflict; the stored value and the trail are the winner's."""
    won = [u for u, o in outcomes.items() if o.startswith("won")]
    lost = [u for u, o in outcomes.items() if o.startswith("conflict")]
    assert len(won) == 1 and len(lost) == 1, outcomes
    winner = won[0]
    wanted = {"alice": 25.0, "bob": 27.0}[winner]
    assert _stored(engine, lesion_id) == (2, wanted)
    assert _diameter_changes(engine, lesion_id) == [(winner, "31.0", str(wanted), 2)]
    with engine.connect() as conn:
        report = verify(conn)
    assert report.ok, report.findings


@pytest.mark.postgres
def test_two_threads_editing_the_same_version_one_wins_the_other_gets_a_conflict(engine: Engine) -> None:
    lesion_id = _writers.seed(engine, subjects=1, lesions=1)["JN-001"][0]
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def edit(user: str, diameter: float) -> None:
        barrier.wait()
        try:
            outcomes[user] = f"won {_writers.edit_diameter(engine, lesion_id, 1, diameter, user)}"
        except ConflictError as exc:
            outcomes[user] = f"conflict {exc.current}"
        except AbscopalError as exc:  # anything else is a failure of the store, shown in the assertion
            outcomes[user] = f"error {type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=edit, args=a) for a in (("alice", 25.0), ("bob", 27.0))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    _assert_one_winner(engine, lesion_id, outcomes)


@pytest.mark.postgres
def test_two_processes_editing_the_same_version_one_wins_the_other_gets_a_conflict(
    engine: Engine, tmp_path: Path
) -> None:
    lesion_id = _writers.seed(engine, subjects=1, lesions=1)["JN-001"][0]
    url = engine.url.render_as_string(hide_password=False)
    go = tmp_path / "go"
    procs = {
        user: subprocess.Popen(
            [sys.executable, str(WRITERS), "race", url, lesion_id, "1", diameter, user, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for user, diameter in (("alice", "25.0"), ("bob", "27.0"))
    }
    for p in procs.values():  # both have imported the store and opened their engine before either writes
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
    go.touch()
    outcomes = {}
    for user, p in procs.items():
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outcomes[user] = out.strip()
    _assert_one_winner(engine, lesion_id, outcomes)


@pytest.mark.postgres
def test_a_stale_write_after_a_committed_one_is_refused_and_changes_nothing(engine: Engine) -> None:
    lesion_id = _writers.seed(engine, subjects=1, lesions=1)["JN-001"][0]
    assert _writers.edit_diameter(engine, lesion_id, 1, 25.0, "alice") == 2
    with pytest.raises(ConflictError) as err:
        _writers.edit_diameter(engine, lesion_id, 1, 27.0, "bob")
    assert err.value.current == 2
    assert [c.username for c in err.value.changes] == ["alice"]
    assert _stored(engine, lesion_id) == (2, 25.0)
    assert _diameter_changes(engine, lesion_id) == [("alice", "31.0", "25.0", 2)]


@pytest.mark.postgres
def test_many_threads_incrementing_with_retry_lose_no_update(engine: Engine) -> None:
    """Read-modify-write with retry on conflict: every increment survives (no lost update)."""
    lesion_id = _writers.seed(engine, subjects=1, lesions=1)["JN-001"][0]
    per_thread, n_threads = 5, 4
    errors: list[str] = []

    def bump(user: str) -> None:
        done = 0
        while done < per_thread:
            version, diameter = _stored(engine, lesion_id)
            try:
                _writers.edit_diameter(engine, lesion_id, version, diameter + 1.0, user)
                done += 1
            except ConflictError:
                continue
            except AbscopalError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return

    threads = [threading.Thread(target=bump, args=(f"u{i}",)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    total = per_thread * n_threads
    assert _stored(engine, lesion_id) == (1 + total, 31.0 + total)
    changes = _diameter_changes(engine, lesion_id)
    assert [v for *_, v in changes] == list(range(2, 2 + total))
    assert [float(n) for _, _, n, _ in changes] == [31.0 + i for i in range(1, total + 1)]


def test_concurrent_writers_on_different_records_all_succeed_on_sqlite(tmp_path: Path) -> None:
    """Four processes adding lesions at once: BEGIN IMMEDIATE queues them; no "locked", no "already exists"."""
    from abscopal.store.database import make_engine
    from abscopal.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'writers.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    _writers.seed(engine, subjects=4, lesions=0)
    count = 15
    procs = [
        subprocess.Popen(
            [sys.executable, str(WRITERS), "distinct", url, s, str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in _writers.SUBJECTS[:4]
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        assert "locked" not in err and "already exists" not in err
        assert out.split() == ["ok"] * count
    with engine.connect() as conn:
        lesions = ENTITIES["lesions"].table
        assert conn.execute(select(func.count()).select_from(lesions)).scalar_one() == 4 * count
        report = verify(conn)
    assert report.ok, report.findings
    engine.dispose()
