"""Benchmark: Kaplan-Meier, log-rank, proportion CIs and Simon's design search on synthetic data.

Run: .venv/bin/python bench/stats_endpoints.py [--quick]
Prints the median wall time of each operation over a few repeats, peak RSS, and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable

import numpy as np
from _machine import cpu_model as _cpu_model

from abscopal.stats import designs, kaplan_meier, logrank, proportion_ci, simon_two_stage


def _time(label: str, func: Callable[[], object], repeats: int) -> None:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        runs.append(time.perf_counter() - start)
    print(f"{label:<48} median {statistics.median(runs) * 1000:9.1f} ms  (min {min(runs) * 1000:.1f}, n={repeats})")


def _cohort(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    arm = rng.integers(0, 2, n)
    event_time = rng.exponential(np.where(arm == 1, 300.0, 220.0)).round()
    censor_time = rng.uniform(30, 900, n).round()
    time_ = np.minimum(event_time, censor_time)
    event = (event_time <= censor_time).astype(int)
    return time_, event, arm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller cohorts and fewer repeats")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    sizes = (200, 2_000) if args.quick else (200, 2_000, 20_000)
    print(f"machine: {os.cpu_count()} cores (nproc), {_cpu_model()}, Python {platform.python_version()}")
    for n in sizes:
        t, e, arm = _cohort(n)
        _time(
            f"kaplan_meier n={n} (median CI, 180/365 landmarks)",
            lambda t=t, e=e: kaplan_meier(t, e).survival_at([180, 365]),
            repeats,
        )
        _time(f"logrank n={n}, 2 groups", lambda t=t, e=e, arm=arm: logrank(t, e, arm.tolist()), repeats)
    _time("proportion_ci x 100 (Clopper-Pearson)", lambda: [proportion_ci(k, 100) for k in range(100)], repeats)
    for nmax in (100,) if args.quick else (100, 150):
        for p0, p1, alpha, beta in ((0.2, 0.4, 0.05, 0.2), (0.5, 0.65, 0.05, 0.1)):

            def search(p0: float = p0, p1: float = p1, a: float = alpha, b: float = beta, m: int = nmax) -> None:
                designs._search.cache_clear()  # time the search itself, not the cache
                simon_two_stage(p0, p1, a, b, nmax=m)

            _time(f"simon_two_stage({p0}, {p1}, {alpha}, {beta}, nmax={nmax})", search, max(1, repeats // 2))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS: {peak_kib / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
