"""Benchmark: 20 concurrent writer processes doing single-record edits for 60 s, on SQLite and PostgreSQL.

Usage: .venv/bin/python bench/concurrent_writers.py [--database sqlite|postgresql] [--writers 20] [--seconds 60]
Each writer reads a lesion (as a web form would), then writes a new baseline diameter based on the version it
read, in its own unit of work: 90 % of the edits go to the writer's own lesions, 10 % to 5 lesions every writer
shares, so genuine conflicts occur. Latency is one write (open, update, audit, commit) as the writer sees it.
Prints one JSON line: edits, edits/s, p50/p95/p99 latency (ms), conflicts, other failures (must be 0, with
samples), whether `verify` passes afterwards, machine. Target (issue 10 §4): zero failures other than conflicts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import random
import statistics
import tempfile
import time
from typing import Any

from _machine import cpu_model

OWN_LESIONS = 5
SHARED = 5


def _setup(url: str, writers: int) -> dict[str, Any]:
    from abscopal import domain as d
    from abscopal.store.database import make_engine
    from abscopal.store.migrate import upgrade
    from abscopal.store.unit_of_work import UnitOfWork

    engine = make_engine(url)
    upgrade(engine)

    def lesion(subject: str, lesion_id: str) -> d.Lesion:
        return d.Lesion(subject, lesion_id, "lung", "RUL", False, True, 30.0, d.RtRole.CONVENTIONAL)

    own: list[list[str]] = []
    with UnitOfWork(engine, user="bench", reason="setup") as uow:
        uow.sites.add(d.Site("JN", "Qianfoshan Hospital"))
        for w in range(writers + 1):
            uow.patients.add(d.Patient(f"JN-{w:03d}", "JN", d.Sex.FEMALE, _dob(), "1.0"))
        shared = [uow.lesions.add(lesion(f"JN-{writers:03d}", f"S{i}")).id for i in range(SHARED)]
        for w in range(writers):
            own.append([uow.lesions.add(lesion(f"JN-{w:03d}", f"L{i}")).id for i in range(OWN_LESIONS)])
        uow.commit()
    engine.dispose()
    return {"own": own, "shared": shared}


def _dob() -> Any:
    import datetime as dt

    return dt.date(1960, 1, 1)


def _writer(url: str, own: list[str], shared: list[str], start_at: float, stop_at: float, seed: int, out: Any) -> None:
    from abscopal.errors import AbscopalError, ConflictError
    from abscopal.store.database import make_engine
    from abscopal.store.unit_of_work import UnitOfWork

    rng = random.Random(seed)
    engine = make_engine(url)
    user = f"writer{seed}"
    latencies: list[float] = []
    conflicts = 0
    failures: list[str] = []
    while time.time() < start_at:
        time.sleep(0.005)
    while time.time() < stop_at:
        lesion_id = rng.choice(shared) if rng.random() < 0.10 else rng.choice(own)
        try:
            with UnitOfWork(engine, user=user, reason="read") as uow:  # the form's GET
                current = uow.lesions.get(lesion_id)
            new = dataclasses.replace(current.value, baseline_diameter_mm=round(rng.uniform(5, 100), 1))
            t0 = time.perf_counter()
            with UnitOfWork(engine, user=user, reason="re-measured") as uow:  # the form's PUT
                uow.lesions.update(lesion_id, new, version=current.version)
                uow.commit()
            latencies.append(time.perf_counter() - t0)
        except ConflictError:
            conflicts += 1
        except AbscopalError as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a raw driver error would be a bug: count it, keep going
            failures.append(f"untyped {type(exc).__name__}: {exc}")
    engine.dispose()
    out.put({"latencies": latencies, "conflicts": conflicts, "failures": failures})


def _verify(url: str) -> bool:
    from abscopal.store.audit import verify
    from abscopal.store.database import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        report = verify(conn)
    engine.dispose()
    return report.ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--writers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="abscopal-bench-writers-")
    os.environ.setdefault("ABSCOPAL_AUDIT_KEY_DIR", tmp)
    server = None
    if args.database == "sqlite":
        url = f"sqlite:///{tmp}/writers.sqlite"
    else:
        from abscopal.store.pgserver import TemporaryPostgres

        server = TemporaryPostgres().start()
        url = server.create_database("writers")
    try:
        ids = _setup(url, args.writers)
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        start_at = time.time() + 5 + 0.3 * args.writers  # every writer has imported the store by then
        stop_at = start_at + args.seconds
        procs = [
            ctx.Process(target=_writer, args=(url, ids["own"][w], ids["shared"], start_at, stop_at, w, out))
            for w in range(args.writers)
        ]
        for p in procs:
            p.start()
        results = [out.get(timeout=args.seconds + 120) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        ok = _verify(url)
    finally:
        if server is not None:
            server.stop()
    latencies = sorted(x for r in results for x in r["latencies"])
    failures = [f for r in results for f in r["failures"]]
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    print(
        json.dumps(
            {
                "benchmark": "concurrent_writers",
                "database": args.database,
                "writers": args.writers,
                "seconds": args.seconds,
                "edits": len(latencies),
                "edits_per_second": round(len(latencies) / args.seconds, 1),
                "p50_ms": round(q[49] * 1000, 1),
                "p95_ms": round(q[94] * 1000, 1),
                "p99_ms": round(q[98] * 1000, 1),
                "max_ms": round(max(latencies, default=0.0) * 1000, 1),
                "conflicts": sum(r["conflicts"] for r in results),
                "other_failures": len(failures),
                "failure_samples": sorted(set(failures))[:5],
                "verify_ok_after": ok,
                "machine": f"{os.cpu_count()} cores, {cpu_model()}",
            }
        )
    )


if __name__ == "__main__":
    main()
