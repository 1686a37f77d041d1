"""Benchmark ``abscopal response derive`` end to end (target: <= 10 s wall, <= 3 GB peak for 100,000
patients x 12 assessments x 6 lesions, about 7 million rows), against a bare polars read of the same file
(the floor) and, on a subset, the PyPI package pyrecist (target lesions only, RECIST 1.1 only).

    .venv/bin/python bench/response_derive.py [--quick] [--patients N] [--pyrecist-patients N]

Each timed step runs in its own process under /usr/bin/time -v: wall clock and peak resident memory.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_model

sys.path.insert(0, str(Path(__file__).parent))
from make_measurements import generate

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")


def machine() -> str:
    cpu = cpu_model()
    return (
        f"{os.cpu_count()} cores (nproc {os.sched_getaffinity(0).__len__()}), {cpu}, Python {platform.python_version()}"
    )


def timed(cmd: list[str]) -> tuple[float, float, str, str]:
    """Run ``cmd`` under /usr/bin/time -v: (wall seconds, peak RSS in MB, stdout); prints CPU seconds too,
    which depend less than wall time on other work sharing the machine."""
    t0 = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", done.stderr))
    note = f"[{cpu:.2f} s CPU user+sys; load average {os.getloadavg()[0]:.1f}]"
    return wall, (int(rss.group(1)) / 1024 if rss else float("nan")), done.stdout, note


BARE_READ = "import polars as pl, sys; f = pl.read_csv(sys.argv[1]); print(f.height)"

PYRECIST = """
import sys, time
import polars as pl
from pyrecist.data import Reader
from pyrecist.assessment import Evaluator
src, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
f = pl.read_csv(src, infer_schema=False)
ids = f["subject_id"].unique().sort().head(n)
t = (f.filter(pl.col("subject_id").is_in(ids.implode()) & (pl.col("lesion_class") == "target"))
      .select(pl.col("subject_id").str.slice(1).cast(pl.Int64).alias("patient_id"),
              pl.col("assessment_date").str.replace_all("-", "").cast(pl.Int64).alias("study_date"),
              pl.col("diameter_mm").cast(pl.Float64, strict=False).fill_null(0.0).alias("measurement"),
              pl.col("lesion_id").alias("lesion_label_alias"),
              pl.lit("target").alias("lesion_category")))
t.write_csv(out)
t0 = time.perf_counter()
r = Reader(); r.read_measurements(out); res = Evaluator(r).evaluate_recist()
print(f"{time.perf_counter() - t0:.3f} {len(res)}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark abscopal response derive.")
    parser.add_argument("--quick", action="store_true", help="2,000 patients instead of 100,000.")
    parser.add_argument("--patients", type=int, default=None)
    parser.add_argument("--pyrecist-patients", type=int, default=2000, help="pyrecist subset (0 to skip).")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "abscopal-bench")
    args = parser.parse_args()
    n = args.patients or (2000 if args.quick else 100_000)
    args.workdir.mkdir(parents=True, exist_ok=True)
    src = args.workdir / f"measurements_{n}.csv"
    print(f"machine: {machine()}")
    if not src.exists():
        t0 = time.perf_counter()
        frame = generate(n)
        frame.write_csv(src)
        print(f"generated {frame.height:,} rows ({n:,} patients, seed 20250106) in {time.perf_counter() - t0:.1f} s")
        del frame
    size = src.stat().st_size / 1e6
    print(f"input: {src} ({size:,.0f} MB)")

    wall, rss, out, note = timed([PY, "-c", BARE_READ, str(src)])
    print(f"bare polars read_csv:             {wall:6.2f} s wall, {rss:7.0f} MB peak ({int(out):,} rows) {note}")
    results = {}
    for criteria in ("irecist", "recist11"):
        with tempfile.TemporaryDirectory(dir=args.workdir) as outdir:
            cmd = [
                str(ROOT / ".venv" / "bin" / "abscopal"),
                "response",
                "derive",
                "--input",
                str(src),
                "--output",
                str(Path(outdir) / "out"),
                "--criteria",
                criteria,
                "--json",
            ]
            wall, rss, _, note = timed(cmd)
            results[criteria] = wall
            print(
                f"abscopal response derive {criteria:8s}: {wall:6.2f} s wall, {rss:7.0f} MB peak {note}"
                f"  (target <= 10 s, <= 3072 MB: {'met' if wall <= 10 and rss <= 3072 else 'MISSED'})"
            )
    if args.pyrecist_patients:
        m = min(args.pyrecist_patients, n)
        with tempfile.TemporaryDirectory(dir=args.workdir) as d:
            _, _, out, _ = timed([PY, "-c", PYRECIST, str(src), str(m), str(Path(d) / "pyrecist.csv")])
        secs, rows = out.split()
        py_per = float(secs) / m
        ours_per = results["recist11"] / n
        print(
            f"pyrecist 0.1.0 on {m:,} patients (targets only): {float(secs):.2f} s for {int(rows):,} follow-ups "
            f"= {py_per * 1000:.2f} ms/patient; abscopal (all lesions, recist11, end to end) "
            f"{ours_per * 1000:.4f} ms/patient: ratio {py_per / ours_per:,.0f}x"
        )


if __name__ == "__main__":
    main()
