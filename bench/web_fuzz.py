"""Long fuzz of the JSON API (``make fuzz``): ``tests/web/test_api_fuzz.py`` with more examples and every role.

Usage: .venv/bin/python bench/web_fuzz.py [--examples 200] [--roles all|name,name] [--quick]
Runs the test module with pytest (SQLite only, in-process ASGI, no server), ``ABSCOPAL_FUZZ_EXAMPLES`` examples
per operation and role (positive and negative cases, derandomised: the same cases on every run) and
``ABSCOPAL_FUZZ_ROLES`` roles (``all``: every account of the test world, the administrator last). Prints pytest's
report (every failing operation with its case and, for a 5xx, the traceback's cause), the wall time and one JSON
line. Exit status: pytest's. ``--quick``: 3 examples, checks that it runs (``run_all.py --quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _machine import cpu_model

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=200, help="Examples per operation and role.")
    parser.add_argument("--roles", default="all", help="'all' or comma-separated usernames of tests/web/world.py.")
    parser.add_argument("--quick", action="store_true", help="3 examples per operation and role.")
    args = parser.parse_args()
    examples = 3 if args.quick else args.examples
    env = {
        **os.environ,
        "ABSCOPAL_FUZZ_EXAMPLES": str(examples),
        "ABSCOPAL_FUZZ_ROLES": args.roles,
        "ABSCOPAL_TEST_POSTGRES": "0",  # the fuzz runs on SQLite only (see the test module's docstring)
    }
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "tests/web/test_api_fuzz.py"]
    print("$ " + " ".join(cmd), f"(examples {examples}, roles {args.roles})", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
    elapsed = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "benchmark": "web_fuzz", "examples": examples, "roles": args.roles, "exit": proc.returncode,
                "seconds": round(elapsed, 1), "cores": os.cpu_count(), "cpu": cpu_model(),
            }
        )
    )  # fmt: skip
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
