"""Run every benchmark in bench/ and keep what they print (``make bench``; ``--quick`` for a smoke run).

Each benchmark runs in its own process, one after the other (the machine has two cores: running them in
parallel would measure contention). The output goes to the terminal and to bench/results/latest.txt, from
which docs/benchmarks.md is written by hand with the machine it ran on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (script, arguments for the full run, arguments for --quick)
BENCHMARKS: list[tuple[str, list[str], list[str]]] = [
    ("synth_store.py", ["--patients", "10000", "--database", "sqlite"], ["--patients", "500"]),
    (
        "synth_store.py",
        ["--patients", "10000", "--database", "postgresql"],
        ["--patients", "500", "--database", "postgresql"],
    ),
    ("synth_store.py", ["--patients", "100000", "--database", "sqlite"], ["--patients", "1000", "--generate-only"]),
    ("eligibility_vectorised.py", [], ["--quick"]),
    ("response_derive.py", [], ["--quick"]),
    ("qol_safety.py", [], ["--quick"]),
    ("stats_endpoints.py", [], ["--quick"]),
    ("logrank_scale.py", ["--json"], ["--rows", "20000", "--groups", "100", "--repeats", "1", "--json"]),
    ("report.py", [], ["--quick"]),
    ("concurrent_writers.py", ["--database", "sqlite"], ["--writers", "4", "--seconds", "5"]),
    (
        "concurrent_writers.py",
        ["--database", "postgresql"],
        ["--database", "postgresql", "--writers", "4", "--seconds", "5"],
    ),
    ("audit_scale.py", ["--patients", "10000", "--database", "sqlite"], ["--patients", "300", "--lookups", "60"]),
    (
        "audit_scale.py",
        ["--patients", "10000", "--database", "postgresql"],
        ["--patients", "300", "--lookups", "60", "--database", "postgresql"],
    ),
    ("sdtm_export.py", ["--patients", "10000", "--database", "sqlite"], ["--quick"]),
    ("sdtm_export.py", ["--patients", "10000", "--database", "postgresql"], ["--quick", "--database", "postgresql"]),
    ("redcap_import.py", ["--records", "1000", "--database", "sqlite"], ["--quick"]),
    ("redcap_import.py", ["--records", "1000", "--database", "postgresql"], ["--quick", "--database", "postgresql"]),
    ("odm_export.py", ["--patients", "10000"], ["--quick"]),
    ("web_load.py", ["--patients", "10000", "--database", "sqlite"], ["--quick"]),
    ("web_load.py", ["--patients", "10000", "--database", "postgresql"], ["--quick", "--database", "postgresql"]),
    ("web_patient_page.py", ["--database", "postgresql"], ["--patients", "300", "--pages", "60"]),
    ("web_fuzz.py", ["--examples", "200", "--roles", "all"], ["--quick", "--roles", "datamanager"]),
    ("web_eligibility.py", ["--loopback"], ["--loopback", "--requests", "100"]),
    ("web_assessment_grid.py", ["--database", "sqlite"], ["--quick"]),
    ("web_assessment_grid.py", ["--database", "postgresql"], ["--quick", "--database", "postgresql"]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Small sizes: checks that every benchmark runs.")
    parser.add_argument("--only", help="Run only the scripts whose name contains this text.")
    args = parser.parse_args()
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    log = results / "latest.txt"
    with log.open("w") as out:
        out.write(f"# make bench{' --quick' if args.quick else ''} at {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n")
        for script, full, quick in BENCHMARKS:
            if args.only and args.only not in script:
                continue
            cmd = [sys.executable, str(HERE / script), *(quick if args.quick else full)]
            header = f"\n## {' '.join(cmd[1:])}\n"
            print(header, flush=True)
            out.write(header)
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            elapsed = time.perf_counter() - start
            text = proc.stdout + (f"\n[stderr]\n{proc.stderr[-2000:]}" if proc.returncode else "")
            text += f"\n(exit {proc.returncode}, {elapsed:.1f} s)\n"
            print(text, flush=True)
            out.write(text)
            out.flush()
    print(f"Results: {log}")


if __name__ == "__main__":
    main()
