"""Benchmark: generate a synthetic cohort and store it (with its audit trail), on SQLite and PostgreSQL.

Usage: .venv/bin/python bench/synth_store.py [--patients 10000] [--database sqlite|postgresql] [--generate-only]
Prints one JSON line: patients, rows, seconds (generation and storage together), peak RSS in MiB, machine.
Targets (issue 3): 10,000 patients <= 60 s on SQLite and on PostgreSQL; 100,000 <= 10 min.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time

from _machine import cpu_model

from abscopal.protocol.model import load_bundled
from abscopal.store.cohort_loader import store_cohort_chunks
from abscopal.store.database import make_engine
from abscopal.store.migrate import upgrade
from abscopal.store.pgserver import TemporaryPostgres
from abscopal.synth.cohort import iter_cohort_chunks


def machine() -> str:
    cpu = cpu_model()
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chunk-size", type=int, default=1_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--generate-only", action="store_true", help="Generate the chunks, store nothing.")
    args = parser.parse_args()

    protocol = load_bundled().current
    server = None
    tmp = tempfile.mkdtemp(prefix="abscopal-bench-")
    if args.generate_only:
        url = None
    elif args.database == "sqlite":
        url = f"sqlite:///{tmp}/bench.sqlite"
    else:
        server = TemporaryPostgres().start()
        url = server.create_database("bench")
    try:
        start = time.perf_counter()
        chunks = iter_cohort_chunks(args.patients, args.seed, protocol, chunk_size=args.chunk_size)
        if url is None:
            rows = sum(len(getattr(c, f)) for c in chunks for f in c.__dataclass_fields__ if f != "truths")
        else:
            engine = make_engine(url)
            upgrade(engine)
            rows = store_cohort_chunks(engine, chunks, user="bench", reason="benchmark")
            engine.dispose()
        seconds = time.perf_counter() - start
    finally:
        if server is not None:
            server.stop()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "benchmark": "synth_store",
                "database": "none" if url is None else args.database,
                "patients": args.patients,
                "rows": rows,
                "seconds": round(seconds, 2),
                "rows_per_second": round(rows / seconds),
                "peak_rss_mib": round(peak_mib),
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
