"""Benchmark: the patient page alone, in-process: wall time, CPU and SQL statements per page (issue 11's slowest step).

Usage: .venv/bin/python bench/web_patient_page.py [--database sqlite|postgresql] [--patients 2000] [--pages 300]
       [--role investigator] [--seed 7] [--reuse URL]

Builds a database with ``bench/web_load.py``'s cohort and accounts, signs in as ``--role`` through a ``TestClient``
over ``create_app`` (no server, no load generator: what is measured is the page's own cost), asks for ``--pages``
random patient pages (each patient twice: the second half revisits the first in another order), and prints
p50/p95/max wall time, the CPU of this process (``time.process_time``), the CPU of the PostgreSQL processes (from
/proc, ``postgres_cpu_ms``) and the SQL statements per page (an SQLAlchemy ``before_cursor_execute`` counter).
The locust mix of ``bench/web_load.py`` measures the target; this one says where a change moves the page's cost.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import event, select
from web_load import PASSWORD, build, new_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--role", default="investigator")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse", help="A database URL already built by this script (skips the build).")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="abscopal-bench-page-")
    os.environ.setdefault("ABSCOPAL_AUDIT_KEY_DIR", tmp)
    server = None
    try:
        if args.reuse:
            url = args.reuse
        else:
            url, server = new_database(args.database, Path(tmp), "page")
            t0 = time.perf_counter()
            build(url, args.patients)
            print(json.dumps({"step": "build", "seconds": round(time.perf_counter() - t0, 1), "url": url}))
        run(url, args)
    finally:
        if server is not None:
            server.stop()


def postgres_cpu_seconds() -> float:
    """User + system CPU of every PostgreSQL process on the machine (the server's share of a page), from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if name.startswith("postgres"):
            fields = stat[stat.rindex(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def run(url: str, args: argparse.Namespace) -> None:
    from fastapi.testclient import TestClient

    from abscopal.store.tables import ENTITIES
    from abscopal.web.app import create_app

    app = create_app(url)
    with TestClient(app) as client:
        state = app.state.web
        statements = [0]

        def count(*_: object) -> None:
            statements[0] += 1

        for engine in {state.engine, state.read_engine}:
            event.listen(engine, "before_cursor_execute", count)
        r = client.post("/api/v1/login", json={"username": args.role, "password": PASSWORD})
        r.raise_for_status()
        patients = ENTITIES["patients"].table
        with state.read_engine.connect() as conn:
            ids = (
                conn.execute(
                    select(patients.c.subject_id).where(patients.c.enrolment_date.is_not(None)).order_by(patients.c.id)
                )
                .scalars()
                .all()
            )
        rng = random.Random(args.seed)
        chosen = rng.sample(list(ids), min(len(ids), args.pages // 2))
        order = chosen + rng.sample(chosen, len(chosen))
        for sid in order[:10]:  # warm-up: imports, templates, the statement caches
            assert client.get(f"/patients/{sid}").status_code == 200
        walls, cpus, counts = [], [], []
        pg0 = postgres_cpu_seconds()
        for sid in order:
            statements[0] = 0
            c0, w0 = time.process_time(), time.perf_counter()
            r = client.get(f"/patients/{sid}")
            walls.append((time.perf_counter() - w0) * 1000)
            cpus.append((time.process_time() - c0) * 1000)
            counts.append(statements[0])
            if r.status_code != 200:
                raise SystemExit(f"/patients/{sid} answered {r.status_code}: {r.text[:300]}")
        pg_ms = (postgres_cpu_seconds() - pg0) * 1000 / len(order)
        q = statistics.quantiles(walls, n=100, method="inclusive")
        print(json.dumps({
            "benchmark": "web_patient_page", "url": url.split("@")[-1], "pages": len(order),
            "wall_p50_ms": round(q[49], 1), "wall_p95_ms": round(q[94], 1), "wall_max_ms": round(max(walls), 1),
            "cpu_mean_ms": round(statistics.fmean(cpus), 1), "statements_mean": round(statistics.fmean(counts), 1),
            "statements_max": max(counts),
            "postgres_cpu_ms": round(pg_ms, 1) if url.startswith("postgresql") else None,
        }))  # fmt: skip


if __name__ == "__main__":
    main()
