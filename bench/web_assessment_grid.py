"""Benchmark: the tumour-assessment grid of a patient with 10 lesions x 20 assessments (issue 12 speed target:
<= 150 ms p95 under the locust mix of issue 11 at 50 users).

Usage: .venv/bin/python bench/web_assessment_grid.py [--database sqlite|postgresql] [--requests 300]
       [--patients 1000] [--users 50] [--spawn-rate 10] [--settle 10] [--workers 1] [--no-load] [--quick]

Builds a database with ``bench/web_load.py``'s synthetic cohort and accounts (``--patients``), then one more patient
at the cohort's site whose 10 lesions (5 targets on three organs, 5 non-targets) and 20 assessments six weeks apart
are recorded through the services (``services.lesions.record_lesion``, ``services.assessments.record_assessment``,
which derives the responses after each write), serves it on loopback (``abscopal serve``, or uvicorn over
``create_app``) and times ``GET /patients/{id}/assessment-grid`` signed in as the investigator (the heaviest view:
the entry column and a response form per assessment):

1. alone: ``--requests`` sequential requests (after 10 warm-up requests): p50/p95/p99/max;
2. under load (unless ``--no-load``): the same while ``locust -f bench/locustfile.py`` runs ``--users`` users (the
   issue-11 mix: sign-in, dashboard, patient list, patient page, lesions read + edit) against the same server; the
   timing starts ``--settle`` seconds after the last user spawned and locust runs until it ends (its own figures
   for the mix are printed too).

Prints a table and one JSON line per phase. Locust, the timing client and the server share the machine's cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _machine import cpu_model
from web_load import (
    PASSWORD,
    _free_port,
    _serve_command,
    _wait_ready,
    build,
    new_database,
    read_stats,
    subjects_with_lesions,
)

HERE = Path(__file__).resolve().parent
SUBJECT = "QFS-900001"
#: (lesion id, organ, node, class, baseline mm): five targets (at most two per organ) and five non-targets.
LESIONS = [
    ("L01", "lung", False, "target", 32.0),
    ("L02", "lung", False, "target", 21.0),
    ("L03", "liver", False, "target", 28.0),
    ("L04", "liver", False, "target", 17.0),
    ("L05", "lymph_node", True, "target", 19.0),
    ("L06", "lymph_node", True, "non_target", 12.0),
    ("L07", "bone", False, "non_target", None),
    ("L08", "pleura", False, "non_target", None),
    ("L09", "adrenal", False, "non_target", None),
    ("L10", "brain", False, "non_target", None),
]
ASSESSMENTS = 20


def add_bench_patient(url: str) -> float:
    """The 10 x 20 patient, written through the services; returns the seconds it took."""
    from abscopal import domain as d
    from abscopal.protocol.model import load_bundled
    from abscopal.services import assessments, lesions
    from abscopal.services.common import Actor, StaffRole
    from abscopal.store.database import make_engine
    from abscopal.store.unit_of_work import UnitOfWork
    from abscopal.synth.staff import SITE

    t0 = time.perf_counter()
    engine = make_engine(url)
    protocol = load_bundled().current
    radiologist = Actor("radiologist", "Load radiologist", StaffRole.RADIOLOGIST, frozenset({SITE.code}))
    first = dt.date.today() - dt.timedelta(weeks=6 * ASSESSMENTS + 4)
    try:
        with UnitOfWork(engine, "setup", "benchmark patient") as uow:
            uow.patients.add(
                d.Patient(
                    subject_id=SUBJECT,
                    site_code=SITE.code,
                    sex=d.Sex.MALE,
                    birth_date=dt.date(1960, 3, 1),
                    protocol_version=protocol.version.number,
                    status=d.PatientStatus.ON_TREATMENT,
                    enrolment_date=first + dt.timedelta(days=7),
                )
            )
            uow.commit()
        registry = []
        for lid, organ, node, cls, size in LESIONS:
            lesion = d.Lesion(
                SUBJECT, lid, organ, f"{organ} site {lid}", node, cls == "target", size, d.RtRole.NONE,
                d.LesionClass(cls),
            )  # fmt: skip
            with UnitOfWork(engine, "radiologist", "benchmark lesion") as uow:
                lesions.record_lesion(uow, radiologist, lesion)
            registry.append(lesion)
        for k in range(ASSESSMENTS):
            factor = 1.0 - 0.02 * k if k < 12 else 0.76 + 0.01 * (k - 12)  # a partial shrinkage, then slow regrowth
            measurements = tuple(
                d.LesionMeasurement(
                    x.lesion_id,
                    x.lesion_class,
                    x.organ,
                    x.is_node,
                    diameter_mm=round((x.baseline_diameter_mm or 0) * factor, 1)
                    if x.lesion_class is d.LesionClass.TARGET
                    else None,
                    status=None if x.lesion_class is d.LesionClass.TARGET else d.LesionStatus.PRESENT,
                    rt_role=x.rt_role,
                )
                for x in registry
            )
            day = first + dt.timedelta(weeks=6 * k)
            with UnitOfWork(engine, "radiologist", "benchmark assessment") as uow:
                assessments.record_assessment(
                    uow, radiologist, d.TumourAssessment(SUBJECT, day, measurements, method="CT")
                )
    finally:
        engine.dispose()
    return time.perf_counter() - t0


def sign_in(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30, follow_redirects=False)
    r = client.post("/api/v1/login", json={"username": username, "password": PASSWORD})
    r.raise_for_status()
    return client


def time_grid(client: httpx.Client, n: int) -> dict[str, float]:
    path = f"/patients/{SUBJECT}/assessment-grid"
    for _ in range(10):
        assert client.get(path).status_code == 200
    times = []
    size = 0
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            raise SystemExit(f"the grid answered {r.status_code}: {r.text[:500]}")
        size = len(r.content)
    q = statistics.quantiles(times, n=100, method="inclusive")
    return {"requests": n, "p50": q[49], "p95": q[94], "p99": q[98], "max": max(times), "kb": size / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--spawn-rate", type=float, default=10)
    parser.add_argument("--workers", type=int, default=1, help="Server worker processes (abscopal serve only).")
    parser.add_argument("--settle", type=int, default=10, help="Seconds of load before the timing starts.")
    parser.add_argument("--no-load", action="store_true", help="Only the grid alone, without locust.")
    parser.add_argument("--quick", action="store_true", help="200 patients, 50 requests, 10 users for 15 s.")
    args = parser.parse_args()
    if args.quick:
        args.patients, args.requests, args.users, args.settle = 200, 50, 10, 3
    tmp = tempfile.mkdtemp(prefix="abscopal-bench-grid-")
    os.environ.setdefault("ABSCOPAL_AUDIT_KEY_DIR", tmp)
    common = {"benchmark": "web_assessment_grid", "database": args.database, "lesions": len(LESIONS),
              "assessments": ASSESSMENTS}  # fmt: skip
    server = None
    proc: subprocess.Popen[bytes] | None = None
    locust: subprocess.Popen[str] | None = None
    try:
        url, server = new_database(args.database, Path(tmp), "grid")
        t0 = time.perf_counter()
        rows = build(url, args.patients)
        print(json.dumps({**common, "step": "build", "rows": rows, "seconds": round(time.perf_counter() - t0, 1)}))
        seconds = add_bench_patient(url)
        print(json.dumps({**common, "step": "bench patient (services)", "seconds": round(seconds, 1)}))
        subjects = Path(tmp) / "subjects.txt"
        subjects_with_lesions(url, subjects)
        port = _free_port()
        serve = _serve_command(url, port, args.workers)
        proc = subprocess.Popen(serve, stdout=subprocess.DEVNULL, start_new_session=True)
        _wait_ready(port, proc)
        base = f"http://127.0.0.1:{port}"
        results = []
        mix: list[dict[str, object]] = []
        client = sign_in(base, "investigator")
        try:
            results.append(("alone", time_grid(client, args.requests)))
            if not args.no_load:
                prefix = str(Path(tmp) / "locust")
                cmd = [
                    str(Path(sys.executable).with_name("locust")), "-f", str(HERE / "locustfile.py"), "--headless",
                    "-u", str(args.users), "-r", str(args.spawn_rate), "-t", "3600s",
                    "--host", base, "--only-summary", "--csv", prefix,
                ]  # fmt: skip
                env = {**os.environ, "ABSCOPAL_LOAD_SUBJECTS": str(subjects), "ABSCOPAL_LOAD_PASSWORD": PASSWORD}
                locust = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
                time.sleep(args.users / args.spawn_rate + args.settle)  # every user spawned and signed in
                results.append((f"under locust, {args.users} users", time_grid(client, args.requests)))
                locust.send_signal(signal.SIGINT)  # locust writes its statistics as it stops
                locust.wait(60)
                mix = [r for r in read_stats(prefix) if r["step"] == "all"]
        finally:
            client.close()
        print(
            f"\n{args.database}, grid of {len(LESIONS)} lesions x {ASSESSMENTS} assessments, "
            f"{args.patients:,} cohort patients; {os.cpu_count()} cores, {cpu_model()}, "
            f"Python {platform.python_version()}"
        )
        print(f"{'phase':28} {'requests':>8} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} {'page KB':>8}")
        for name, r in results:
            print(
                f"{name:28} {r['requests']:>8} {r['p50']:>7.1f} {r['p95']:>7.1f} {r['p99']:>7.1f} {r['max']:>7.1f} "
                f"{r['kb']:>8.0f}"
            )
            print(json.dumps({**common, "phase": name, **{k: round(v, 1) for k, v in r.items()}}))
        for r in mix:  # the locust mix itself while the grid was timed (all its steps together)
            print(
                f"locust mix (all steps)       {r['requests']:>8} {r['p50']:>7.1f} {r['p95']:>7.1f} {r['p99']:>7.1f} "
                f"{r['max']:>7.1f}   failures {r['failures']}, {r['rps']:.1f} req/s"
            )
            print(json.dumps({**common, "phase": "locust mix", **r}))
    finally:
        if locust is not None and locust.poll() is None:
            locust.send_signal(signal.SIGINT)
            try:
                locust.wait(30)
            except subprocess.TimeoutExpired:
                locust.kill()
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
