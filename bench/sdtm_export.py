"""Benchmark: `abscopal export sdtm` (XPT + define.xml) wall time and peak RSS on a 10,000-patient database.

Usage: .venv/bin/python bench/sdtm_export.py [--patients 10000] [--database sqlite|postgresql] [--reuse PATH]
Builds the database with `abscopal demo --patients N --seed 3` (or reuses --reuse, a SQLite file, when it
exists; built there when it does not), then runs `abscopal export sdtm` once as its own process and reports its
wall time, user and system CPU (os.wait4: with the QS worker process it starts), its peak RSS (os.wait4: the largest
single process) and the peak of the sum of RSS over its process tree (sampled from /proc every 0.1 s: the export and
its QS worker together), the load average before and after it, and the files written. Prints one JSON line per step.
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
import threading
import time
from pathlib import Path

from _machine import cpu_model

ABSCOPAL = str(Path(sys.executable).with_name("abscopal"))


CPU: dict[str, float] = {}  # user and system CPU seconds of the last child run (os.wait4)


def tree_rss_kib(pid: int) -> int:
    """The sum of VmRSS (KiB) over ``pid`` and its descendants (read from /proc; 0 where it cannot be read)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parent = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, ()))
        try:
            with open(f"/proc/{current}/status") as fh:
                total += next((int(line.split()[1]) for line in fh if line.startswith("VmRSS:")), 0)
        except OSError:
            pass
    return total


def _run(cmd: list[str]) -> tuple[float, float, int, str]:
    """Wall seconds, peak RSS (MiB) and exit code of one child process, and its stderr tail (its user and
    system CPU seconds and the peak of its process tree's summed RSS in :data:`CPU`: on a shared machine CPU
    is steadier than the wall time)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_kib(proc.pid))
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    if os.path.isdir("/proc"):
        sampler.start()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    if sampler.is_alive():
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    CPU.update(user=usage.ru_utime, system=usage.ru_stime, tree_rss_mib=peak[0] / 1024)
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
            "peak_tree_rss_mib": round(CPU["tree_rss_mib"]),
            "load_average_before": load_before,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "files": len(files),
            "define": "define.xml" in files,
            "output_mib": round(size, 1),
            "exit": rc,
            "target": "<= 60 s, <= 2048 MiB (the tree's summed RSS)",
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
