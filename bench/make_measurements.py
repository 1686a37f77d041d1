"""Generate a synthetic measurement CSV for ``abscopal response derive`` (deterministic seed).

Each patient has 12 assessments 42 +/- 7 days apart and 6 lesions: 4 targets (one a lymph node; RT roles
conventional, low-dose, observation, observation), 1 non-target, and a 6th lesion that is a non-target or,
for 30 % of patients, a new lesion appearing at a random follow-up. Diameters follow a per-lesion
log-linear trend with noise; 1 % of measurements are missing.

    .venv/bin/python bench/make_measurements.py --patients 2000 --output /tmp/meas.csv
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

N_VISITS = 12
N_LESIONS = 6


def generate(n_patients: int, seed: int = 20250106) -> pl.DataFrame:
    """The measurement table as a polars frame (strings exactly as the CSV holds them)."""
    rng = np.random.default_rng(seed)
    p, v, k = n_patients, N_VISITS, N_LESIONS
    gaps = 42 + rng.integers(-7, 8, size=(p, v))
    gaps[:, 0] = 0
    start = rng.integers(0, 700, size=p)
    # from 2021 so that the last visit (mid-2024) is not in the future, which the readers refuse
    days = start[:, None] + np.cumsum(gaps, axis=1) + (dt.date(2021, 1, 1) - dt.date(1970, 1, 1)).days
    # lesion 0-3 targets, 4 non-target, 5 non-target or new
    has_new = rng.random(p) < 0.3
    appear = rng.integers(1, v, size=p)
    base = np.empty((p, k))
    base[:, 0] = rng.uniform(15, 60, p)  # lung
    base[:, 1] = rng.uniform(10, 40, p)  # liver
    base[:, 2] = rng.uniform(15, 30, p)  # node short axis
    base[:, 3] = rng.uniform(10, 50, p)  # adrenal
    base[:, 4:] = 0
    slope = rng.normal(-0.04, 0.08, size=(p, 1)) + rng.normal(0, 0.03, size=(p, k))
    noise = rng.normal(0, 0.05, size=(p, v, k))
    t = np.arange(v)[None, :, None]
    diam = np.round(base[:, None, :] * np.exp(slope[:, None, :] * t + noise), 1)
    diam[:, 0, :] = np.round(base[:, None, :], 1)[:, 0, :]
    diam = np.where(diam < 4.0, 0.0, np.minimum(diam, 500.0))  # within the plausibility limit (0-500 mm)
    missing = rng.random((p, v, k)) < 0.01
    missing[:, 0, :] = False
    # non-target statuses
    u = rng.random((p, v, k))
    status = np.where(
        u < 0.03, "unequivocal_progression", np.where(u < 0.08, "increased", np.where(u < 0.15, "absent", "present"))
    )
    status[:, 0, :] = "present"
    new_mm = np.round(rng.uniform(5, 25, size=(p, v)), 1)

    pid = np.repeat(np.arange(p), v * k)
    vis = np.tile(np.repeat(np.arange(v), k), p)
    les = np.tile(np.arange(k), p * v)
    is_new_row = has_new[pid] & (les == 5)
    keep = ~(is_new_row & (vis < appear[pid]))
    cls = np.where(les < 4, "target", np.where(is_new_row, "new", "non_target"))
    organs = np.array(["lung", "liver", "mediastinum", "adrenal", "bone", "brain"])
    roles = np.array(["conventional", "low_dose", "observation", "observation", "none", "none"])
    d = diam.reshape(-1)
    m = missing.reshape(-1)
    st = status.reshape(-1)
    diameter = np.where(les < 4, np.where(m, "", d.astype(str)), np.where(is_new_row, new_mm[pid, vis].astype(str), ""))
    stat = np.where(les < 4, "", np.where(is_new_row, "", np.where(m, "", st)))
    frame = pl.DataFrame(
        {
            "subject_id": np.char.add("P", np.char.zfill(pid.astype(str), 6)),
            "assessment_date": pl.Series(days[pid, vis].astype(np.int32)).cast(pl.Date).cast(pl.String),
            "lesion_id": np.char.add("L", les.astype(str)),
            "lesion_class": cls,
            "organ": organs[les],
            "is_node": np.where(les == 2, "true", "false"),
            "diameter_mm": diameter,
            "status": stat,
            "rt_role": roles[les],
        }
    )
    return frame.filter(pl.Series(keep))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20250106)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    frame = generate(args.patients, args.seed)
    frame.write_csv(args.output)
    print(f"wrote {frame.height:,} rows for {args.patients:,} patients to {args.output}")


if __name__ == "__main__":
    main()
