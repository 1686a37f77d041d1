"""Benchmark: QLQ-C30 + LC13 scoring through the CSV path, and the safety tables, on synthetic data.

Run: .venv/bin/python bench/qol_safety.py [--quick]
Full: 10,000 patient-visits (430,000 item rows, ~5 % blank) scored from CSV to CSV; 2,000 patients with
10 AEs each through `safety_tables`. Prints wall times, rows per second, peak RSS and the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import resource
import tempfile
import time
from pathlib import Path

from _machine import cpu_model as _cpu_model

from abscopal.domain import AdverseEvent, Attribution
from abscopal.protocol.model import load_bundled
from abscopal.qol.eortc import ITEMS, score_answers
from abscopal.qol.io import read_item_answers, write_scores
from abscopal.safety.ctcae import load_ctcae
from abscopal.safety.monitor import monitor
from abscopal.safety.summaries import SafetyPopulation, safety_tables


def _items_csv(path: Path, forms: int, rng: random.Random) -> int:
    rows = 0
    with path.open("w", encoding="utf-8") as fh:
        fh.write("subject_id,visit,instrument,item,answer\n")
        for f in range(forms):
            subject, visit = f"P{f // 8:05d}", f"V{f % 8}"
            for item in ITEMS:
                answer = "" if rng.random() < 0.05 else str(rng.randint(item.low, item.high))
                fh.write(f"{subject},{visit},{item.instrument.value},{item.number},{answer}\n")
                rows += 1
    return rows


def _events(patients: int, per_patient: int, rng: random.Random) -> list[AdverseEvent]:
    dictionary = load_ctcae()
    terms = [t for t in dictionary if not t.is_other_specify]
    levels = list(Attribution)
    events = []
    for p in range(patients):
        for k in range(per_patient):
            term = rng.choice(terms)
            grade = rng.choice(term.grades)
            events.append(
                AdverseEvent(
                    subject_id=f"P{p:05d}",
                    ae_id=str(k),
                    term=term.term,
                    meddra_code=term.meddra_code,
                    grade=grade,
                    onset_date=dt.date(2024, 1, 1) + dt.timedelta(days=rng.randint(0, 300)),
                    serious_hospitalisation=rng.random() < 0.05,
                    attribution_cfrt=rng.choice(levels),
                    attribution_ldrt=rng.choice(levels),
                    attribution_io=rng.choice([*levels, None]),
                )
            )
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 forms and 200 patients")
    args = parser.parse_args()
    forms, patients = (1_000, 200) if args.quick else (10_000, 2_000)
    rng = random.Random(20240301)
    print(f"machine: {os.cpu_count()} CPUs ({_cpu_model()}), Python {platform.python_version()}")

    with tempfile.TemporaryDirectory() as tmp:
        items, scores = Path(tmp) / "items.csv", Path(tmp) / "scores.csv"
        rows = _items_csv(items, forms, rng)
        t0 = time.perf_counter()
        answers = read_item_answers(items)
        t1 = time.perf_counter()
        scored = score_answers(answers)
        t2 = time.perf_counter()
        written = write_scores(scores, scored)
        t3 = time.perf_counter()
    print(
        f"QoL: {forms:,} forms / {rows:,} item rows -> {written:,} scores: read+check {t1 - t0:.2f} s, "
        f"score {t2 - t1:.2f} s, write {t3 - t2:.2f} s, total {t3 - t0:.2f} s ({rows / (t3 - t0):,.0f} rows/s)"
    )

    events = _events(patients, 10, rng)
    options = load_bundled().current.safety
    population = SafetyPopulation.of(e.subject_id for e in events)
    t0 = time.perf_counter()
    tables = safety_tables(events, population, options, load_ctcae())
    t1 = time.perf_counter()
    verdict = monitor(events, population.size, options.monitor)
    t2 = time.perf_counter()
    print(
        f"Safety: {len(events):,} AEs of {patients:,} patients -> {len(tables.by_soc_term):,} SOC/term rows, "
        f"{len(tables.queries):,} queries: tables {t1 - t0:.2f} s, monitor {t2 - t1:.3f} s "
        f"({'alert' if verdict.alert else 'no alert'})"
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
