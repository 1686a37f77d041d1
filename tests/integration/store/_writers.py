"""Writer processes for the concurrency and crash tests (run as ``python _writers.py MODE URL ...``).

Modes:

- ``race URL LESION_ID VERSION DIAMETER USER GO_FILE``: wait until GO_FILE exists, then write the lesion's
  baseline diameter as of VERSION; print ``won <version>`` or ``conflict <current>``.
- ``distinct URL SUBJECT COUNT``: add COUNT lesions to SUBJECT, one unit of work each; print ``ok`` per write.
- ``crash URL SUBJECT ACK_FILE SEED``: forever: edit one of SUBJECT's lesions, or add an assessment with three
  measurements to SUBJECT; append ``edit <id> <version> <diameter>`` / ``add <id> <n_measurements>`` to ACK_FILE
  only after ``commit()`` returned. The crash test kills it with SIGKILL at a random moment.

Also used in-process: :func:`seed` builds a site, patients and lesions (every write audited).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import random
import sys
import time
from pathlib import Path

from sqlalchemy import Engine

from abscopal import domain as d
from abscopal.errors import ConflictError
from abscopal.store.database import make_engine
from abscopal.store.unit_of_work import UnitOfWork

HERE = Path(__file__).resolve()
SUBJECTS = tuple(f"JN-{i:03d}" for i in range(1, 21))


def patient(subject: str) -> d.Patient:
    return d.Patient(subject, "JN", d.Sex.FEMALE, dt.date(1961, 5, 2), "1.0")


def lesion(subject: str, lesion_id: str, diameter: float = 31.0) -> d.Lesion:
    return d.Lesion(subject, lesion_id, "lung", "RUL", False, True, diameter, d.RtRole.CONVENTIONAL)


def assessment(subject: str, day: int, n: int = 3) -> d.TumourAssessment:
    measurements = tuple(
        d.LesionMeasurement(f"L{i}", d.LesionClass.TARGET, "lung", False, 10.0 + i) for i in range(1, n + 1)
    )
    return d.TumourAssessment(subject, dt.date(2023, 1, 1) + dt.timedelta(days=day), measurements)


def seed(engine: Engine, subjects: int = 2, lesions: int = 2) -> dict[str, list[str]]:
    """A site, ``subjects`` patients with ``lesions`` lesions each; returns subject -> lesion record ids."""
    out: dict[str, list[str]] = {}
    with UnitOfWork(engine, user="coordinator1", reason="baseline") as uow:
        uow.sites.add(d.Site("JN", "Qianfoshan Hospital"))
        for s in SUBJECTS[:subjects]:
            uow.patients.add(patient(s))
            out[s] = [uow.lesions.add(lesion(s, f"L{i}")).id for i in range(1, lesions + 1)]
        uow.commit()
    return out


def edit_diameter(engine: Engine, lesion_id: str, version: int, diameter: float, user: str) -> int:
    """One optimistic edit of a lesion's baseline diameter; the new version (ConflictError when stale)."""
    with UnitOfWork(engine, user=user, reason="re-measured") as uow:
        current = uow.lesions.get(lesion_id)
        stored = uow.lesions.update(
            lesion_id, dataclasses.replace(current.value, baseline_diameter_mm=diameter), version=version
        )
        uow.commit()
    return stored.version


def _race(url: str, lesion_id: str, version: str, diameter: str, user: str, go: str) -> None:
    engine = make_engine(url)
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.001)
    try:
        print(f"won {edit_diameter(engine, lesion_id, int(version), float(diameter), user)}", flush=True)
    except ConflictError as exc:
        print(f"conflict {exc.current}", flush=True)


def _distinct(url: str, subject: str, count: str) -> None:
    engine = make_engine(url)
    for i in range(int(count)):
        with UnitOfWork(engine, user=f"writer-{subject}", reason="baseline") as uow:
            uow.lesions.add(lesion(subject, f"N{i}"))
            uow.commit()
        print("ok", flush=True)


def _crash(url: str, subject: str, ack_file: str, seed_text: str) -> None:
    rng = random.Random(int(seed_text))
    engine = make_engine(url)
    fd = os.open(ack_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    day = rng.randrange(1_000_000)  # assessment dates unique per round with high probability; retried if not
    while True:
        if rng.random() < 0.6:
            with UnitOfWork(engine, user=f"w-{subject}", reason="re-measured") as uow:
                stored = rng.choice(uow.lesions.for_subject(subject))
                diameter = round(rng.uniform(5, 100), 1)
                new = uow.lesions.update(
                    stored.id, dataclasses.replace(stored.value, baseline_diameter_mm=diameter), version=stored.version
                )
                uow.commit()
            os.write(fd, f"edit {new.id} {new.version} {diameter}\n".encode())
        else:
            day += 1
            with UnitOfWork(engine, user=f"w-{subject}", reason="week 6 CT") as uow:
                if uow.assessments.find(subject_id=subject, assessment_date=assessment(subject, day).assessment_date):
                    continue
                added = uow.assessments.add(assessment(subject, day))
                uow.commit()
            os.write(fd, f"add {added.id} {len(added.value.measurements)}\n".encode())


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    {"race": _race, "distinct": _distinct, "crash": _crash}[mode](*rest)
