"""Benchmark: `abscopal export sdtm` (XPT + define.xml) wall time and peak RSS on a 10,000-patient database.

Usage: .venv/bin/python bench/sdtm_export.py [--patients 10000] [--database sqlite|postgresql] [--reuse PATH]
Builds the database with `abscopal demo --patients N --seed 3` (or reuses --reuse, a SQLite file, when it
exists; built there when it does not), then runs `abscopal export sdtm` once as its own process and reports its
wall time, user and system CPU and peak RSS (os.wait4: that process only), the load average before it, and the files
written. Prints one JSON line per step.
Target (issue 13, deliverable 1): <= 60 s and <= 2 GB on 10,000 patients.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_model

ABSCOPAL = str(Path(sys.executable).with_name("abscopal"))


CPU: dict[str, float] = {}  # user and system CPU seconds of the last child run (os.wait4)


def _run(cmd: list[str]) -> tuple[float, float, int, str]:
    """Wall seconds, peak RSS (MiB) and exit code of one child process, and its stderr tail (its user and
    system CPU seconds in :data:`CPU`: on a shared machine they are steadier than the wall time)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    CPU.update(user=usage.ru_utime, system=usage.ru_stime)
    return time.perf_counter() - t0, usage.ru_maxrss / 1024, proc.returncode, err[-2000:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--reuse", help="SQLite file to reuse (built there first if missing).")
    parser.add_argument("--quick", action="store_true", help="300 patients: checks that the benchmark runs.")
    args = parser.parse_args()
    patients = 300 if args.quick else args.patients
    tmp = tempfile.mkdtemp(prefix="abscopal-bench-sdtm-")
    os.environ.setdefault("ABSCOPAL_AUDIT_KEY_DIR", tmp)
    common = {"benchmark": "sdtm_export", "database": args.database, "patients": patients}
    server = None
    try:
        if args.database == "sqlite":
            path = Path(args.reuse) if args.reuse else Path(tmp) / "sdtm.sqlite"
            url = f"sqlite:///{path}"
            fresh = not path.exists()
        else:
            from abscopal.store.pgserver import TemporaryPostgres

            server = TemporaryPostgres().start()
            url = server.create_database("sdtm")
            fresh = True
        if fresh:
            seconds, mib, rc, err = _run(
                [ABSCOPAL, "demo", "--patients", str(patients), "--seed", "3", "--database-url", url]
            )
            step = {"step": "build", "seconds": round(seconds, 1), "exit": rc}
            print(json.dumps({**common, **step, **({"error": err} if rc else {})}), flush=True)
            if rc:
                return
        out = Path(tmp) / "sdtm"
        cmd = [ABSCOPAL, "export", "sdtm", "--output", str(out), "--database-url", url]
        load_before = [round(x, 2) for x in os.getloadavg()]
        seconds, mib, rc, err = _run([*cmd, "--created", "2026-12-01T00:00:00"])
        files = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
        size = sum(p.stat().st_size for p in out.iterdir()) / 2**20 if out.is_dir() else 0.0
        step = {
            "step": "export sdtm (xpt + define.xml)",
            "seconds": round(seconds, 1),
            "user_cpu_s": round(CPU["user"], 1),
            "system_cpu_s": round(CPU["system"], 1),
            "peak_rss_mib": round(mib),
            "load_average_before": load_before,
            "files": len(files),
            "define": "define.xml" in files,
            "output_mib": round(size, 1),
            "exit": rc,
            "target": "<= 60 s, <= 2048 MiB",
        }
        print(json.dumps({**common, **step, **({"error": err} if rc else {})}), flush=True)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()
    machine = f"{os.cpu_count()} cores, {cpu_model()}"
    print(json.dumps({**common, "machine": machine, "load_average": [round(x, 2) for x in load]}))


if __name__ == "__main__":
    main()
