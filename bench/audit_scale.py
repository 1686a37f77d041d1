"""Benchmark: `verify` wall time and peak memory, and `history` latency, on a 10,000-patient database.

Usage: .venv/bin/python bench/audit_scale.py [--patients 10000] [--database sqlite|postgresql] [--lookups 200]
Builds the database as `abscopal demo` does (the synthetic cohort bulk-loaded through the unit of work, then
200 single-record edits so the trail has both kinds of record), then, each in a fresh process so its peak RSS is
its own: `verify` over the whole trail and every row; `history` of --lookups random records of six tables
(patients, lesions, assessments, lesion measurements, fractions, adverse events; bulk-loaded rows included),
each required to find at least the record's insert. Prints one JSON line per step.
Targets (issue 10 §5): verify <= 60 s, history < 100 ms on 10,000 patients.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from _machine import cpu_model

TABLES = ("patients", "lesions", "tumour_assessments", "lesion_measurements", "fractions", "adverse_events")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(url: str, patients: int) -> dict[str, object]:
    from abscopal.protocol.model import load_bundled
    from abscopal.store.cohort_loader import store_cohort_chunks
    from abscopal.store.database import make_engine
    from abscopal.store.migrate import upgrade
    from abscopal.store.unit_of_work import UnitOfWork
    from abscopal.synth.cohort import iter_cohort_chunks

    engine = make_engine(url)
    upgrade(engine)
    t0 = time.perf_counter()
    chunks = iter_cohort_chunks(patients, 1, load_bundled().current, chunk_size=500)
    rows = store_cohort_chunks(engine, chunks, user="bench", reason="benchmark")
    load_s = time.perf_counter() - t0
    rng = random.Random(7)
    t0 = time.perf_counter()
    with UnitOfWork(engine, user="bench", reason="pick") as uow:
        picked = rng.sample(uow.lesions.all(), 200)
    for stored in picked:  # single-record edits: the trail holds per-field records as well as bulk batches
        with UnitOfWork(engine, user="dm1", reason="re-measured") as uow:
            value = stored.value
            uow.lesions.update(
                stored.id,
                dataclasses.replace(value, baseline_diameter_mm=(value.baseline_diameter_mm or 10.0) + 1.0),
                version=stored.version,
            )
            uow.commit()
    edit_s = time.perf_counter() - t0
    engine.dispose()
    return {
        "step": "build",
        "rows": rows,
        "load_seconds": round(load_s, 1),
        "edits": 200,
        "edit_seconds": round(edit_s, 1),
    }


def run_verify(url: str) -> dict[str, object]:
    from sqlalchemy import func, select
    from sqlalchemy.engine import make_url

    from abscopal.store.audit import verify
    from abscopal.store.audit_key import load_key
    from abscopal.store.database import make_engine
    from abscopal.store.tables import audit_log

    key = load_key(make_url(url), create=False)  # from the plain URL: the read-only engine's URL is rewritten
    engine = make_engine(url, read_only=True)
    with engine.connect() as conn:
        t0 = time.perf_counter()
        report = verify(conn, key)
        seconds = time.perf_counter() - t0
        records = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
    return {
        "step": "verify",
        "ok": report.ok,
        "findings": report.total,
        "audit_records": records,
        "rows": report.rows,
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(_peak_mib()),
    }


def run_history(url: str, lookups: int) -> dict[str, object]:
    from sqlalchemy import select

    from abscopal.store.audit import history
    from abscopal.store.database import make_engine
    from abscopal.store.tables import ENTITIES

    rng = random.Random(11)
    engine = make_engine(url, read_only=True)
    per_table: dict[str, list[float]] = {}
    empty = 0
    changed_seen = 0
    with engine.connect() as conn:
        targets: list[tuple[str, str]] = []
        for entity in TABLES:
            ids = [r[0] for r in conn.execute(select(ENTITIES[entity].table.c.id))]
            targets += [(entity, i) for i in rng.sample(ids, min(len(ids), lookups // len(TABLES)))]
        edited = conn.execute(
            select(ENTITIES["lesions"].table.c.id).where(ENTITIES["lesions"].table.c.version > 1).limit(10)
        ).scalars()
        targets += [("lesions", i) for i in edited]
        rng.shuffle(targets)
        for entity, record_id in targets:
            t0 = time.perf_counter()
            entries = history(conn, entity, record_id)
            per_table.setdefault(entity, []).append(time.perf_counter() - t0)
            empty += not entries
            changed_seen += len(entries) > 1
    every = sorted(x for v in per_table.values() for x in v)
    q = statistics.quantiles(every, n=100)
    return {
        "step": "history",
        "lookups": len(every),
        "p50_ms": round(q[49] * 1000, 2),
        "p95_ms": round(q[94] * 1000, 2),
        "max_ms": round(every[-1] * 1000, 2),
        "p95_ms_by_table": {
            k: round(statistics.quantiles(sorted(v), n=20)[18] * 1000, 2) for k, v in per_table.items()
        },
        "records_with_no_history": empty,
        "records_with_changes_found": changed_seen,
        "peak_rss_mib": round(_peak_mib()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--step", choices=["verify", "history"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:  # a child process: one measured step
        result = run_verify(args.url) if args.step == "verify" else run_history(args.url, args.lookups)
        print(json.dumps(result))
        return

    tmp = tempfile.mkdtemp(prefix="abscopal-bench-audit-")
    os.environ.setdefault("ABSCOPAL_AUDIT_KEY_DIR", tmp)
    server = None
    if args.database == "sqlite":
        url = f"sqlite:///{tmp}/audit.sqlite"
    else:
        from abscopal.store.pgserver import TemporaryPostgres

        server = TemporaryPostgres().start()
        url = server.create_database("audit")
    common = {"benchmark": "audit_scale", "database": args.database, "patients": args.patients}
    try:
        print(json.dumps({**common, **build(url, args.patients)}), flush=True)
        for step in ("verify", "history"):
            cmd = [sys.executable, __file__, "--step", step, "--url", url, "--lookups", str(args.lookups)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=os.environ)
            if proc.returncode:
                print(json.dumps({**common, "step": step, "error": proc.stderr[-2000:]}), flush=True)
                continue
            print(json.dumps({**common, **json.loads(proc.stdout)}), flush=True)
    finally:
        if server is not None:
            server.stop()
    print(json.dumps({**common, "machine": f"{os.cpu_count()} cores, {cpu_model()}"}))


if __name__ == "__main__":
    main()
