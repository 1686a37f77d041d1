"""Benchmark: eligibility of 1,000,000 synthetic candidates through the vectorised path (target <= 10 s).

Run: .venv/bin/python bench/eligibility_vectorised.py [--quick] [--rows N]
Prints wall time of building the columns and of evaluating them, rows per second, peak RSS, and the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import time
from typing import Any

import numpy as np
import pandas as pd
from _machine import cpu_model as _cpu_model

from abscopal.domain import LabValue, Screening
from abscopal.protocol.eligibility import VERDICT_OF_CODE, evaluate
from abscopal.protocol.eligibility_vectorised import evaluate_columns
from abscopal.protocol.model import load_bundled

LABS = ("haemoglobin", "wbc", "neutrophils", "platelets", "ast", "alt", "alp")


def synthetic_columns(n: int, seed: int = 20240301) -> pd.DataFrame:
    """Candidates near the thresholds, ~2% of each datum missing, lab units mixed as clinicians write them."""
    rng = np.random.default_rng(seed)

    def missing(x: np.ndarray, p: float = 0.02) -> np.ndarray:
        x = x.astype(np.float64)
        x[rng.random(n) < p] = np.nan
        return x

    def flag(p_true: float) -> np.ndarray:
        return missing((rng.random(n) < p_true).astype(np.float64))

    def categorical(values: list[str], p: list[float]) -> Any:
        codes = rng.choice(len(values), size=n, p=p)
        codes[rng.random(n) < 0.02] = -1
        return pd.Categorical.from_codes(codes.tolist(), categories=pd.Index(values))

    cols: dict[str, object] = {
        "consent_date": np.where(rng.random(n) < 0.99, 1.0, np.nan),
        "age_years": missing(rng.integers(16, 80, n)),
        "ecog": missing(rng.integers(0, 3, n)),
        "life_expectancy_months": missing(rng.choice([3.0, 6.0, 9.0, 12.0, 24.0], n)),
        "diet": categorical(["none", "liquid", "semi_liquid", "soft", "normal"], [0.05, 0.1, 0.15, 0.2, 0.5]),
        "severe_allergy_history": flag(0.05),
        "histology": categorical(
            ["adenocarcinoma", "squamous_cell_carcinoma", "large_cell_carcinoma", "small_cell_carcinoma", "other"],
            [0.6, 0.25, 0.05, 0.05, 0.05],
        ),
        "histology_confirmed_by": categorical(["histology", "cytology", "clinical"], [0.7, 0.25, 0.05]),
        "lesion_count": missing(rng.integers(1, 14, n)),
        "metastatic_organ_count": missing(rng.integers(0, 7, n)),
        "has_measurable_disease": flag(0.95),
        "immunotherapy_resistance_confirmed": flag(0.8),
        "no_standard_treatment_option": flag(0.9),
    }
    for name in (
        "refuses_cooperation",
        "other_trial_within_3_months",
        "brain_metastases",
        "investigator_judges_unsuitable",
        "severe_infection",
        "serious_comorbidity",
        "prior_immune_related_toxicity",
        "prior_radiotherapy",
    ):
        cols[name] = flag(0.04)
    g_l = rng.random(n) < 0.5
    cols["lab_haemoglobin"] = missing(np.where(g_l, rng.normal(120, 15, n), rng.normal(12, 1.5, n)))
    cols["lab_haemoglobin_unit"] = pd.Categorical(np.where(g_l, "g/L", "g/dL"))
    for lab, mean, sd in (("wbc", 6.0, 2.0), ("neutrophils", 3.5, 1.2), ("platelets", 200.0, 60.0)):
        per_ul = rng.random(n) < 0.3
        value = rng.normal(mean, sd, n)
        cols[f"lab_{lab}"] = missing(np.where(per_ul, value * 1000, value))
        cols[f"lab_{lab}_unit"] = pd.Categorical(np.where(per_ul, "cells/uL", "x10^9/L"))
    for lab in ("ast", "alt", "alp"):
        uln = np.where(lab == "alp", 120.0, 40.0)
        cols[f"lab_{lab}"] = missing(rng.gamma(4.0, 10.0 if lab != "alp" else 30.0, n))
        cols[f"lab_{lab}_unit"] = pd.Categorical(np.full(n, "U/L"))
        cols[f"lab_{lab}_uln"] = np.full(n, float(uln))
    return pd.DataFrame(cols)


def screenings_from_columns(frame: pd.DataFrame, k: int) -> list[Screening]:
    """The first ``k`` synthetic candidates as Screening objects, for the scalar path."""

    def plain(v: object) -> object:
        return None if v is None or (isinstance(v, float) and np.isnan(v)) else v

    out = []
    for i, row in enumerate(frame.head(k).to_dict(orient="records")):
        labs = {}
        for lab in LABS:
            value = plain(row[f"lab_{lab}"])
            if value is not None:
                labs[lab] = LabValue(float(value), str(row[f"lab_{lab}_unit"]), plain(row.get(f"lab_{lab}_uln")))  # type: ignore[arg-type]
        fields = {
            name: plain(row[name]) for name in frame.columns if not name.startswith("lab_") and name != "consent_date"
        }
        for name in ("age_years", "ecog", "lesion_count", "metastatic_organ_count"):
            if fields[name] is not None:
                fields[name] = int(fields[name])  # type: ignore[call-overload]
        for name, value in list(fields.items()):
            if isinstance(value, float) and name not in ("life_expectancy_months",):
                fields[name] = bool(value)
        consent = dt.date(2024, 3, 1) if plain(row["consent_date"]) is not None else None
        out.append(
            Screening(f"S{i}", dt.date(2024, 3, 1), consent_date=consent, labs=labs, **fields)  # type: ignore[arg-type]
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100,000 rows instead of 1,000,000")
    parser.add_argument("--rows", type=int, default=None)
    args = parser.parse_args()
    n = args.rows or (100_000 if args.quick else 1_000_000)
    eligibility = load_bundled().current.eligibility

    t0 = time.perf_counter()
    frame = synthetic_columns(n)
    t1 = time.perf_counter()
    result = evaluate_columns(frame, eligibility)
    t2 = time.perf_counter()
    log = result.screening_log()
    t3 = time.perf_counter()

    k = min(n, 2_000)
    sample = screenings_from_columns(frame, k)
    t4 = time.perf_counter()
    scalar = [evaluate(s, eligibility) for s in sample]
    t5 = time.perf_counter()
    agree = all(
        c.verdict is VERDICT_OF_CODE[int(result.verdict[i])]
        and all(r.status.value == result.status(r.criterion_id, i) for r in c.results)
        for i, c in enumerate(scalar)
    )

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {_cpu_model()}")
    print(f"rows: {n:,}; criteria: {len(result.criteria)}")
    print(f"build synthetic columns: {t1 - t0:.2f} s")
    print(f"evaluate (vectorised): {t2 - t1:.2f} s ({n / (t2 - t1):,.0f} candidates/s); target <= 10 s for 1,000,000")
    print(f"screening log: {t3 - t2:.2f} s")
    print(
        f"scalar path on the first {k:,}: {t5 - t4:.2f} s ({k / (t5 - t4):,.0f} candidates/s); "
        f"agrees with vectorised: {agree}"
    )
    print(f"peak RSS: {peak_mib:.0f} MiB")
    print(f"verdicts: eligible {log['eligible']:,}, ineligible {log['ineligible']:,}, incomplete {log['incomplete']:,}")
    print("top screen-failure reasons:", dict(sorted(log["reasons"].items(), key=lambda kv: -kv[1])[:5]))


if __name__ == "__main__":
    main()
