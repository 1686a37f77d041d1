"""Benchmark: ODM 1.3.2 export (strict and full) of a 10,000-patient database, and restore of the full file.

Usage: .venv/bin/python bench/odm_export.py [--patients 10000] [--database FILE.sqlite] [--quick] [--no-restore]
Builds the SQLite database as bench/audit_scale.py does (the synthetic cohort bulk-loaded through the unit of
work, then 200 single-record edits), or reuses --database (its ``<file>.audit-key`` must be next to it). Then,
each in a fresh process so that its peak RSS is its own: `write_odm --strict`, `write_odm` (full), and
`restore_odm` of the full file into a new empty database with the source's key. Prints one JSON line per step
(wall seconds, peak RSS, user and system CPU seconds of the step's process, the load average at its end).
Target (issue 13, "Speed"): ODM export of a 10,000-patient database in <= 60 s and <= 2 GB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_model

CREATED = dt.datetime(2025, 6, 30, 12, 0, tzinfo=dt.UTC)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> dict[str, object]:
    """User and system CPU seconds of this process so far, and the load average now (the machine is shared)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"user_s": round(usage.ru_utime, 1), "sys_s": round(usage.ru_stime, 1),
            "load_average": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip


def run_export(url: str, out: str, strict: bool) -> dict[str, object]:
    from abscopal.interop.odm import write_odm
    from abscopal.protocol.model import load_bundled
    from abscopal.store.database import make_engine

    engine = make_engine(url, read_only=True)
    protocols = load_bundled()
    with engine.connect() as conn:
        t0 = time.perf_counter()
        summary = write_odm(conn, out, created=CREATED, strict=strict, protocols=protocols)
        seconds = time.perf_counter() - t0
    return {
        "step": "export --strict" if strict else "export (full)",
        "subjects": summary.subjects,
        "audit_records": summary.records,
        "rows": sum(summary.rows.values()),
        "file_mib": round(os.path.getsize(out) / 2**20, 1),
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(_peak_mib()),
        **_cpu(),
    }


def run_restore(url: str, path: str, key_file: str) -> dict[str, object]:
    from abscopal.interop.odm import restore_odm
    from abscopal.store.database import make_engine
    from abscopal.store.migrate import upgrade

    engine = make_engine(url)
    upgrade(engine)
    key = Path(key_file).read_bytes().strip()
    t0 = time.perf_counter()
    summary = restore_odm(engine, path, key=key)
    seconds = time.perf_counter() - t0
    return {
        "step": "restore (full file into an empty database)",
        "subjects": summary.subjects,
        "audit_records": summary.records,
        "rows": sum(summary.rows.values()),
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(_peak_mib()),
        **_cpu(),
    }


def _child(*args: str) -> dict[str, object]:
    cmd = [sys.executable, __file__, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=os.environ)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args[:2])} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="300 patients: checks that the benchmark runs.")
    parser.add_argument("--database", help="An existing SQLite file to export (with its .audit-key next to it).")
    parser.add_argument("--no-restore", action="store_true", help="Export only.")
    parser.add_argument("--step", choices=["export", "export-strict", "restore"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--key-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step in ("export", "export-strict"):
        print(json.dumps(run_export(args.url, args.file, args.step == "export-strict")))
        return
    if args.step == "restore":
        print(json.dumps(run_restore(args.url, args.file, args.key_file)))
        return
    patients = 300 if args.quick else args.patients
    print(json.dumps({"cpu": cpu_model(), "cores": os.cpu_count(), "load_average": os.getloadavg()}))
    with tempfile.TemporaryDirectory(prefix="abscopal-bench-odm-") as tmp:
        if args.database:
            db = Path(args.database).resolve()
        else:
            from audit_scale import build

            db = Path(tmp) / "source.sqlite"
            print(json.dumps(build(f"sqlite:///{db}", patients)), flush=True)
        url = f"sqlite:///{db}"
        strict, full = Path(tmp) / "strict.odm.xml", Path(tmp) / "full.odm.xml"
        print(json.dumps(_child("--step", "export-strict", "--url", url, "--file", str(strict))), flush=True)
        print(json.dumps(_child("--step", "export", "--url", url, "--file", str(full))), flush=True)
        if not args.no_restore:
            target = Path(tmp) / "restored.sqlite"
            key_file = f"{db}.audit-key"
            print(json.dumps(_child("--step", "restore", "--url", f"sqlite:///{target}", "--file", str(full),
                                    "--key-file", key_file)), flush=True)  # fmt: skip
        print(json.dumps({"load_average_after": os.getloadavg()}))


if __name__ == "__main__":
    main()
