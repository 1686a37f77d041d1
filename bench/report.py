"""Benchmark: ``abscopal report`` for 1,000 synthetic patients (target <= 15 s wall time).

Run: .venv/bin/python bench/report.py [--quick] [--patients N] [--keep DIR]
The database is built once with ``build_demo_database`` outside the timing; the report then runs in a fresh
child process (as a user runs it), so the wall time includes start-up and imports and the peak RSS is the
report's own. Prints the wall time of each step (read, analyse, figures, html, pdf), the total, peak RSS, the
number of PDF pages and the machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_model as _cpu_model

CHILD = """
import json, sys, time
t0 = time.perf_counter()
marks = []
from abscopal.reports.report import build_report
from pathlib import Path
import datetime as dt
files = build_report(Path(sys.argv[1]), database_url=sys.argv[2], cutoff=dt.date(2030, 1, 1),
                     command_line="bench/report.py", on_step=lambda s: marks.append((s, time.perf_counter() - t0)))
marks.append(("done", time.perf_counter() - t0))
print(json.dumps({"marks": marks, "pages": files.pages, "enrolled": len(files.analysis.populations.enrolled)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 patients instead of 1,000")
    parser.add_argument("--patients", type=int, default=None)
    parser.add_argument("--seed", type=int, default=20221231)
    parser.add_argument("--keep", type=Path, default=None, help="keep the database and report in this directory")
    args = parser.parse_args()
    n = args.patients or (200 if args.quick else 1_000)
    work = args.keep or Path(tempfile.mkdtemp(prefix="abscopal-bench-report-"))
    work.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{work / 'bench.sqlite'}"

    from abscopal.cli.demo import build_demo_database

    t = time.perf_counter()
    rows = build_demo_database(url, n, args.seed)
    build_s = time.perf_counter() - t
    print(f"database: {n:,} patients screened, {rows:,} rows, built in {build_s:.1f} s (not timed)")

    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(work / "out"), url], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"report failed with exit code {proc.returncode}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    marks = [("start-up and imports", 0.0), *result["marks"]]
    print("steps:")
    for (name, at), (_, following) in itertools.pairwise(marks):
        print(f"  {name:<22} {following - at:6.2f} s")
    print(f"report: {result['enrolled']:,} enrolled patients, {result['pages']} PDF pages")
    print(f"wall time: {wall:.2f} s (target <= 15 s)  peak RSS of the report process: {peak_mib:.0f} MiB")
    print(f"machine: {os.cpu_count()} CPUs ({_cpu_model()}), Python {platform.python_version()}, {platform.system()}")
    if args.keep is None:
        for p in sorted(work.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        work.rmdir()


if __name__ == "__main__":
    main()
