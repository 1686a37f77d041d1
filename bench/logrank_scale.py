"""Benchmark: ``abscopal stats km --group`` on 200,000 rows in 1,000 groups (issue 10, deliverable 12; target ≤ 5 s).

Run: .venv/bin/python bench/logrank_scale.py [--rows 200000] [--groups 1000] [--repeats 3] [--json]
Writes a synthetic CSV (exponential event times in days with two decimals, uniform censoring, so almost every time
is distinct, the hardest case for a per-time loop), then times the whole command in a new process, as a user
runs it, and prints the median wall time, the child's CPU seconds (user + system: less sensitive than wall time
to other work on a shared machine), its peak memory and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import cpu_model as _cpu_model


def write_cohort(path: Path, rows: int, groups: int, seed: int = 10) -> None:
    """A CSV with columns days, event, site: ``groups`` sites with hazards that differ by up to 50 %."""
    rng = np.random.default_rng(seed)
    site = rng.integers(0, groups, rows)
    scale = 250.0 * (1.0 + 0.5 * site / max(groups - 1, 1))
    event_time = rng.exponential(scale)
    censor_time = rng.uniform(30.0, 900.0, rows)
    days = np.round(np.minimum(event_time, censor_time), 2)
    event = (event_time <= censor_time).astype(int)
    with path.open("w", encoding="utf-8") as fh:
        fh.write("days,event,site\n")
        fh.writelines(f"{t:.2f},{e},S{s:04d}\n" for t, e, s in zip(days, event, site, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--groups", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="time the --json output instead of the tables")
    args = parser.parse_args()
    abscopal = Path(sys.executable).with_name("abscopal")
    print(f"machine: {os.cpu_count()} cores (nproc), {_cpu_model()}, Python {platform.python_version()}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "cohort.csv"
        write_cohort(csv_path, args.rows, args.groups)
        cmd = [str(abscopal), "stats", "km", "--input", str(csv_path), "--time", "days", "--event", "event"]
        cmd += ["--group", "site"] + (["--json"] if args.json else [])
        runs, cpu = [], []
        for _ in range(args.repeats):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            runs.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    output = "JSON" if args.json else "tables"
    print(
        f"abscopal stats km --group ({args.rows:,} rows, {args.groups:,} groups, {output}, new process): "
        f"median {statistics.median(runs):.2f} s (min {min(runs):.2f}, n={args.repeats}), "
        f"CPU {statistics.median(cpu):.2f} s, child peak {peak_mib:.0f} MiB"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
