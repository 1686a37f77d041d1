"""Writers killed with SIGKILL at random moments lose nothing they acknowledged and leave nothing half-written.

Each round starts two writer processes (``_writers.py crash``), each editing its own patient's lesions and adding
assessments with three measurements, acknowledging a write (appending to a file) only after ``commit()``
returned; the test kills them at a random moment, then checks every acknowledged write is present, every
assessment has all its measurements, every row's version is the trail's, and ``verify`` is ok. 10 rounds per
backend (about 25 s each on an idle 2-core machine; speed is not asserted here).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

sys.path.insert(0, str(Path(__file__).parent))
import _writers

from abscopal.store.audit import replay_rows, verify
from abscopal.store.tables import ENTITIES

ROUNDS = 10
WRITERS_PER_ROUND = 2


def _acks(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    lines = path.read_text().split("\n")
    return [line.split() for line in lines[:-1]]  # the last piece has no newline: not acknowledged


def _check(engine: Engine, acked_edits: dict[str, tuple[int, float]], acked_adds: dict[str, int]) -> None:
    lesions = ENTITIES["lesions"].table
    assessments = ENTITIES["tumour_assessments"].table
    measurements = ENTITIES["lesion_measurements"].table
    with engine.connect() as conn:
        lesion_rows = {r.id: r for r in conn.execute(select(lesions))}
        for lesion_id, (version, diameter) in acked_edits.items():
            row = lesion_rows[lesion_id]
            # the writer owns the lesion: at most one more commit (killed after commit, before the ack)
            assert row.version in (version, version + 1), (lesion_id, row.version, version)
            if row.version == version:
                assert row.baseline_diameter_mm == diameter
        for lesion_id, row in lesion_rows.items():  # what is verified now is the next round's baseline
            acked_edits[lesion_id] = (row.version, row.baseline_diameter_mm)
        live = {r.id for r in conn.execute(select(assessments.c.id).where(assessments.c.removed_reason.is_(None)))}
        assert set(acked_adds) <= live
        kids = Counter(
            r.assessment_id
            for r in conn.execute(select(measurements.c.assessment_id).where(measurements.c.removed_reason.is_(None)))
        )
        assert {a: kids[a] for a in live} == dict.fromkeys(live, 3)  # never an assessment without its measurements
        for entity in ("lesions", "tumour_assessments", "lesion_measurements"):
            table = ENTITIES[entity].table
            expected = replay_rows(conn, entity)
            versions = {r.id: r.version for r in conn.execute(select(table.c.id, table.c.version))}
            assert versions == {k: v["version"] for k, v in expected.items()}
        report = verify(conn)
    assert report.ok, report.findings


@pytest.mark.postgres
@pytest.mark.slow
def test_writers_killed_at_random_moments_lose_no_acknowledged_write(engine: Engine, tmp_path: Path) -> None:
    rng = random.Random(20240617)
    ids = _writers.seed(engine, subjects=WRITERS_PER_ROUND, lesions=3)
    url = engine.url.render_as_string(hide_password=False)
    acked_edits: dict[str, tuple[int, float]] = {}
    acked_adds: dict[str, int] = {}
    total_acks = 0
    for round_no in range(ROUNDS):
        procs: list[tuple[subprocess.Popen[bytes], Path]] = []
        for subject in ids:
            ack = tmp_path / f"ack-{round_no}-{subject}"
            cmd = [sys.executable, str(_writers.HERE), "crash", url, subject, str(ack), str(rng.randrange(10**9))]
            procs.append((subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), ack))
        # wait until both are writing (first acknowledgement), then kill each at its own random moment
        deadline = time.perf_counter() + 20
        while not all(a.exists() and a.stat().st_size > 0 for _, a in procs):
            for p, _ in procs:
                if p.poll() is not None:
                    assert p.stderr is not None
                    pytest.fail(f"a writer stopped by itself: {p.stderr.read().decode()[-2000:]}")
            assert time.perf_counter() < deadline, "the writers never acknowledged a write"
            time.sleep(0.01)
        for p, _ in procs:
            time.sleep(rng.uniform(0.0, 0.4))
            os.kill(p.pid, signal.SIGKILL)
        for p, ack in procs:
            assert p.wait(timeout=10) == -signal.SIGKILL
            assert p.stderr is not None
            p.stderr.close()
            for fields in _acks(ack):
                total_acks += 1
                if fields[0] == "edit":
                    acked_edits[fields[1]] = (int(fields[2]), float(fields[3]))
                else:
                    acked_adds[fields[1]] = int(fields[2])
        _check(engine, acked_edits, acked_adds)
    assert total_acks >= ROUNDS * WRITERS_PER_ROUND
    assert acked_edits and acked_adds
