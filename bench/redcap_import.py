"""Benchmark: ``abscopal import redcap`` of a REDCap project of this trial, dry run and real run, as whole processes.

Run: .venv/bin/python bench/redcap_import.py [--records N] [--database sqlite|postgresql] [--quick]
Full: 1,000 records, each with demographics, screening, 3 lesions, 2 adverse events and 3 QLQ-C30 visits
(tests/fixtures/interop/redcap_project.py ``many_rows``: 8,000 export rows), exported both ways (the "CDISC ODM
(XML)" project export, and the raw CSV + data dictionary) and imported with the tests' mapping file into an empty
database (migrated, the site registered). Each command runs in its own process: wall time and peak RSS are that
process's own (``os.wait4``). Then the same file is imported again (every record identical: nothing written).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_model

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "fixtures" / "interop"))

import redcap_project as rp  # noqa: E402  (the tests' REDCap project builders)

ABSCOPAL = [sys.executable, "-m", "abscopal"]


def _empty_database(url: str) -> None:
    from abscopal import domain as d
    from abscopal.store.database import make_engine
    from abscopal.store.migrate import upgrade
    from abscopal.store.unit_of_work import UnitOfWork

    engine = make_engine(url)
    upgrade(engine)
    with UnitOfWork(engine, "bench", "benchmark set-up: the trial's site") as uow:
        uow.sites.add(d.Site("QFS", "Qianfoshan Hospital"))
        uow.commit()
    engine.dispose()


def _counts(url: str) -> dict[str, int]:
    import sqlalchemy as sa

    from abscopal.store.database import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        out = {
            t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("patients", "screenings", "lesions", "adverse_events", "questionnaire_answers", "audit_log")
        }
    engine.dispose()
    return out


def _timed(cmd: list[str], log: Path) -> dict[str, object]:
    """Run one command; its wall time, CPU time, peak RSS (the child's own rusage, from ``os.wait4``), exit code
    and the load average before and after (the machine is shared: CPU time is what the import itself costs)."""
    load_before = [round(x, 2) for x in os.getloadavg()]
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=os.environ)
        _, status, rusage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # reaped here, not by Popen
    result: dict[str, object] = {
        "seconds": round(wall, 2), "user_seconds": round(rusage.ru_utime, 2),
        "system_seconds": round(rusage.ru_stime, 2), "peak_rss_mib": round(rusage.ru_maxrss / 1024), "exit": code,
        "load_before": load_before, "load_after": [round(x, 2) for x in os.getloadavg()],
    }  # fmt: skip
    if code:
        result["output"] = log.read_text(errors="replace")[-1500:]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--quick", action="store_true", help="100 records: checks that the benchmark runs.")
    parser.add_argument("--route", choices=["odm", "csv", "both"], default="both")
    args = parser.parse_args()
    records = 100 if args.quick else args.records
    tmp = Path(tempfile.mkdtemp(prefix="abscopal-bench-redcap-"))
    os.environ.setdefault("ABSCOPAL_AUDIT_KEY_DIR", str(tmp))
    start = time.perf_counter()
    rows = rp.many_rows(records)
    files = {
        "export.xml": rp.odm_xml(rows),
        "export.csv": rp.raw_csv(rows),
        "dictionary.csv": rp.dictionary_csv(),
        "mapping.toml": rp.MAPPING_TOML.encode(),
    }
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    common = {"benchmark": "redcap_import", "database": args.database, "records": records, "rows": len(rows)}
    sizes = {"odm_bytes": len(files["export.xml"]), "csv_bytes": len(files["export.csv"])}
    print(json.dumps({**common, "generate_seconds": round(time.perf_counter() - start, 2), **sizes}), flush=True)
    server = None
    if args.database == "postgresql":
        from abscopal.store.pgserver import TemporaryPostgres

        server = TemporaryPostgres().start()
    try:
        for route in ("odm", "csv") if args.route == "both" else (args.route,):
            url = server.create_database(f"redcap_{route}") if server else f"sqlite:///{tmp}/{route}.sqlite"
            _empty_database(url)
            export = ["export.xml"] if route == "odm" else ["export.csv", "--dictionary", str(tmp / "dictionary.csv")]
            cmd = [*ABSCOPAL, "import", "redcap", str(tmp / export[0]), *export[1:],
                   "--mapping", str(tmp / "mapping.toml"), "--user", "dm.bench", "--database-url", url]  # fmt: skip
            for step, extra in (("dry run", ["--dry-run"]), ("import", []), ("re-import (identical)", [])):
                result = _timed([*cmd, *extra], tmp / f"{route}-{step.split()[0]}.log")
                print(json.dumps({**common, "route": route, "step": step, **result}), flush=True)
            print(json.dumps({**common, "route": route, "stored": _counts(url)}), flush=True)
    finally:
        if server is not None:
            server.stop()
    load = os.getloadavg()
    print(json.dumps({**common, "machine": f"{os.cpu_count()} cores, {cpu_model()}",
                      "load_average": [round(x, 2) for x in load]}))  # fmt: skip


if __name__ == "__main__":
    main()
