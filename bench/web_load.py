"""Benchmark: the web application under 50 concurrent users (issue 11: p95 <= 100 ms per step, zero errors).

Usage: .venv/bin/python bench/web_load.py [--database sqlite|postgresql] [--patients 10000] [--users 50]
       [--spawn-rate 10] [--seconds 60] [--reuse FILE] [--workers 1] [--profile OUT.svg] [--quick]

Builds a database with a synthetic cohort of ``--patients`` screened patients (the demo's generator, bulk-loaded
with ``store_cohort_chunks``; ``--reuse FILE`` keeps a SQLite file between runs) and one account per role at the
cohort's site (password :data:`PASSWORD`), serves it on loopback with ``abscopal serve`` (or uvicorn over
``create_app`` when that command is not available), and runs ``bench/locustfile.py`` headless against it::

    locust -f bench/locustfile.py --headless -u 50 -r 10 -t 60s --host http://127.0.0.1:PORT --csv PREFIX

It prints requests/s, p50/p95/p99 and failures per step (locust's ``_stats.csv``) as a table and one JSON line
per step. ``--profile OUT.svg|OUT.txt`` runs the server under ``py-spy record`` (``pip install py-spy``): a flame graph
or collapsed stacks.
Locust and the server share the machine's cores: on a 2-core machine the figures include that contention.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from _machine import cpu_model

HERE = Path(__file__).resolve().parent
ABSCOPAL = str(Path(sys.executable).with_name("abscopal"))
PASSWORD = "correct horse battery staple"
SEED = 3
#: The steps of the scenario, in the order the table shows them.
STEPS = [
    "login",
    "dashboard",
    "patient list",
    "patient list (API fallback)",
    "patient page",
    "patient page (API fallback)",
    "lesions",
    "lesion edit",
]


def build(url: str, patients: int) -> int:
    """Migrate the empty database at ``url``, load the cohort and add one account per role; return rows written."""
    from abscopal import domain as d
    from abscopal.protocol.model import load_bundled
    from abscopal.store.audit_key import load_key
    from abscopal.store.cohort_loader import store_cohort_chunks
    from abscopal.store.database import make_engine
    from abscopal.store.migrate import upgrade
    from abscopal.synth.cohort import iter_cohort_chunks
    from abscopal.synth.staff import SITE
    from abscopal.web.accounts import Membership, create_account

    engine = make_engine(url)
    try:
        upgrade(engine)
        load_key(engine.url, create=True)
        protocol = load_bundled().current
        rows = store_cohort_chunks(
            engine,
            iter_cohort_chunks(patients, SEED, protocol, chunk_size=1000),
            user="synth",
            reason=f"synthetic demo cohort (seed {SEED})",
        )
        every_site = {d.Role.STATISTICIAN, d.Role.ADMIN}
        with engine.begin() as conn:
            for role in d.Role:
                name = role.value.replace("_", "")
                site = "*" if role in every_site else SITE.code
                if role == d.Role.PATIENT:
                    continue  # a patient account needs its subject id; the scenario does not use one
                create_account(
                    conn, by="setup", username=name, full_name=f"Load {name}", password=PASSWORD,
                    memberships_=[Membership(site, role)], check_policy=False,
                )  # fmt: skip
    finally:
        engine.dispose()
    return rows


def new_database(kind: str, folder: Path, name: str) -> tuple[str, Any]:
    """An empty database for a benchmark: a SQLite file ``name``.sqlite in ``folder``, or database ``name`` in a
    new throw-away PostgreSQL server. Returns its URL and the server (None for SQLite), which the caller stops."""
    if kind == "sqlite":
        return f"sqlite:///{folder / f'{name}.sqlite'}", None
    from abscopal.store.pgserver import TemporaryPostgres

    server = TemporaryPostgres().start()
    return server.create_database(name), server


def subjects_with_lesions(url: str, path: Path) -> int:
    from sqlalchemy import select

    from abscopal.store.database import make_engine
    from abscopal.store.tables import ENTITIES

    lesions = ENTITIES["lesions"].table
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ids = conn.execute(select(lesions.c.subject_id).distinct().order_by(lesions.c.subject_id)).scalars().all()
    finally:
        engine.dispose()
    path.write_text("".join(f"{sid}\n" for sid in ids))
    return len(ids)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_command(url: str, port: int, workers: int, threads: int | None = None) -> list[str]:
    """``abscopal serve`` when it is there and works; else uvicorn over ``create_app`` in a child process."""
    probe = subprocess.run([ABSCOPAL, "serve", "--help"], capture_output=True, text=True, check=False)
    if probe.returncode == 0 and "--database-url" in probe.stdout:
        cmd = [ABSCOPAL, "serve", "--database-url", url, "--host", "127.0.0.1", "--port", str(port)]
        if workers > 1:
            cmd += ["--workers", str(workers)]
        if threads is not None:
            cmd += ["--threads", str(threads)]
        return cmd
    code = (
        "import sys, uvicorn; from abscopal.web.app import create_app; "
        "uvicorn.run(create_app(sys.argv[1]), host='127.0.0.1', port=int(sys.argv[2]), log_level='warning', "
        "access_log=False)"
    )
    return [sys.executable, "-c", code, url, str(port)]


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode} before it answered")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("the server did not answer within a minute")


def warm_dashboard(port: int, timeout: float = 600) -> float:
    """Sign in as the investigator and ask for the dashboard until its figures are there (a large trial's first
    figures are computed in the background after start: 10,000 patients take ~40 s); the seconds it took."""
    import httpx

    t0 = time.perf_counter()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        client.post("/api/v1/login", json={"username": "investigator", "password": PASSWORD}).raise_for_status()
        while time.perf_counter() - t0 < timeout:
            # several workers each compute their own: ask each (a new connection per request, so that every worker
            # gets some: a kept-alive connection stays with one worker)
            pages = [client.get("/", headers={"Connection": "close"}) for _ in range(12)]
            if all(p.status_code == 200 and "being computed" not in p.text for p in pages):
                return time.perf_counter() - t0
            time.sleep(2)
    raise SystemExit(f"the dashboard's figures were not there after {timeout:.0f} s")


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in process group ``pgid`` (the server and its workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the command: state, ppid, pgrp, ..., utime (12), stime (13)
            total += int(fields[11]) + int(fields[12])
    return total / tick


def read_stats(prefix: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with open(f"{prefix}_stats.csv", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["Name"].startswith("probe") or int(r["Request Count"]) == 0:  # 0: e.g. sign-ins before a restart
                continue
            rows.append(
                {
                    "step": "all" if r["Name"] == "Aggregated" else r["Name"],
                    "method": r["Type"],
                    "requests": int(r["Request Count"]),
                    "failures": int(r["Failure Count"]),
                    "rps": float(r["Requests/s"]),
                    "p50": float(r["50%"] or 0),
                    "p95": float(r["95%"] or 0),
                    "p99": float(r["99%"] or 0),
                    "max": float(r["Max Response Time"] or 0),
                }
            )
    order = {s: i for i, s in enumerate(STEPS)}
    rows.sort(key=lambda r: order.get(str(r["step"]), len(order)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--spawn-rate", type=float, default=10)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=1, help="Server worker processes (abscopal serve only).")
    parser.add_argument("--threads", type=int, help="Requests each worker runs at once (abscopal serve --threads).")
    parser.add_argument("--reuse", help="SQLite file to reuse (built there first when it does not exist).")
    parser.add_argument("--profile", help="Record the server with py-spy: OUT.svg (flame graph) or OUT.txt (stacks).")
    parser.add_argument("--build-only", action="store_true", help="Build the --reuse database and stop.")
    parser.add_argument(
        "--keep-csv", metavar="DIR",
        help="Copy locust's CSV files into DIR, with the per-second history (_stats_history.csv): when the slow "
        "requests happened.",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="300 patients, 10 users, 15 s: checks that it runs.")
    parser.add_argument(
        "--steady", action="store_true",
        help="Restart the statistics once every user has signed in: the steady state, without the sign-in storm "
        "of the first seconds (the sign-ins are then measured in the run without --steady); --seconds still counts "
        "from the start.",
    )  # fmt: skip
    parser.add_argument(
        "--cold", action="store_true",
        help="Start locust at once, while the server computes the dashboard's first figures in the background "
        "(by default the run waits for them: a server that has been up for a while has them).",
    )  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.patients, args.users, args.seconds = 300, 10, 15
    tmp = tempfile.mkdtemp(prefix="abscopal-bench-web-")
    key_dir = Path(args.reuse).resolve().parent / "audit-keys" if args.reuse else Path(tmp)
    os.environ.setdefault("ABSCOPAL_AUDIT_KEY_DIR", str(key_dir))
    common = {"benchmark": "web_load", "database": args.database, "patients": args.patients, "users": args.users}
    server = None
    proc: subprocess.Popen[bytes] | None = None
    try:
        if args.database == "sqlite":
            path = Path(args.reuse) if args.reuse else Path(tmp) / "web.sqlite"
            url = f"sqlite:///{path}"
            fresh = not path.exists()
        else:
            from abscopal.store.pgserver import TemporaryPostgres

            server = TemporaryPostgres().start()
            url = server.create_database("web")
            fresh = True
        if fresh:
            t0 = time.perf_counter()
            rows = build(url, args.patients)
            print(json.dumps({**common, "step": "build", "rows": rows, "seconds": round(time.perf_counter() - t0, 1)}))
        if args.build_only:
            return
        if server is not None:
            from sqlalchemy import text

            from abscopal.store.database import make_engine

            engine = make_engine(url)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
            engine.dispose()
        subjects = Path(tmp) / "subjects.txt"
        n_subjects = subjects_with_lesions(url, subjects)
        port = _free_port()
        cmd = _serve_command(url, port, args.workers, args.threads)
        if args.profile:
            fmt = "raw" if args.profile.endswith(".txt") else "flamegraph"  # raw: collapsed stacks, one per line
            spy = str(Path(sys.executable).with_name("py-spy"))
            cmd = [spy, "record", "--format", fmt, "-r", "50", "--subprocesses", "-o", args.profile, "--", *cmd]
        print(json.dumps({**common, "step": "serve", "command": " ".join(cmd[:4]) + " ...", "subjects": n_subjects}))
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, start_new_session=True)
        _wait_ready(port, proc)
        if not args.cold:
            seconds = warm_dashboard(port)
            print(json.dumps({**common, "step": "dashboard's first figures", "seconds": round(seconds, 1)}), flush=True)
        prefix = str(Path(tmp) / "locust")
        locust = [
            str(Path(sys.executable).with_name("locust")), "-f", str(HERE / "locustfile.py"), "--headless",
            "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{args.seconds}s",
            "--host", f"http://127.0.0.1:{port}", "--csv", prefix, "--only-summary",
        ]  # fmt: skip
        if args.keep_csv:
            locust.append("--csv-full-history")
        env = {**os.environ, "ABSCOPAL_LOAD_SUBJECTS": str(subjects), "ABSCOPAL_LOAD_PASSWORD": PASSWORD}
        if args.steady:  # the statistics restart once every user has signed in (bench/locustfile.py)
            env["ABSCOPAL_LOAD_RESET_AFTER"] = str(args.users)
        print("$ " + " ".join(locust), flush=True)
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        load_before = os.getloadavg()[0]
        server_cpu = group_cpu_seconds(proc.pid)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        run = subprocess.run(locust, env=env, capture_output=True, text=True, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_cpu = group_cpu_seconds(proc.pid) - server_cpu
        locust_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
        load_after = os.getloadavg()[0]
        if not Path(f"{prefix}_stats.csv").exists():
            raise SystemExit(f"locust wrote no statistics (exit {run.returncode}):\n{run.stderr[-3000:]}")
        rows_ = read_stats(prefix)
        if args.keep_csv:
            Path(args.keep_csv).mkdir(parents=True, exist_ok=True)
            for csv in Path(tmp).glob("locust_*.csv"):
                shutil.copy(csv, Path(args.keep_csv) / csv.name)
        failures = Path(f"{prefix}_failures.csv").read_text() if Path(f"{prefix}_failures.csv").exists() else ""
        print(
            f"\n{args.database}, {args.patients:,} patients, {args.users} users, {args.seconds} s, started {started}, "
            f"load {load_before:.1f} -> {load_after:.1f}; {os.cpu_count()} cores, {cpu_model()}, "
            f"Python {platform.python_version()}"
        )
        print(
            f"CPU during the run: server {server_cpu:.1f} s (its workers included), locust {locust_cpu:.1f} s, "
            f"over {args.seconds} s on {os.cpu_count()} cores"
        )
        print(f"{'step':30} {'requests':>9} {'fails':>6} {'req/s':>7} {'p50':>6} {'p95':>6} {'p99':>6} {'max':>7}")
        for r in rows_:
            print(
                f"{r['step']!s:30} {r['requests']:>9} {r['failures']:>6} {r['rps']:>7.1f} {r['p50']:>6.0f} "
                f"{r['p95']:>6.0f} {r['p99']:>6.0f} {r['max']:>7.0f}"
            )
        for r in rows_:
            print(json.dumps({**common, **r}))
        print(json.dumps({**common, "step": "cpu", "server_seconds": round(server_cpu, 1),
                          "locust_seconds": round(locust_cpu, 1), "workers": args.workers}))  # fmt: skip
        if failures.count("\n") > 1:
            print("\nfailures:\n" + failures[-3000:])
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # py-spy writes its flame graph on SIGINT
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
