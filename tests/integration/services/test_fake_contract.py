"""The fake unit of work behaves as the real one where services can tell (ids, versions, conflicts, locks,
logical removal, rollback without commit): one scenario, both units of work, the same outcome."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine

from abscopal import domain as d
from abscopal.errors import ConflictError, DuplicateRecord, MissingParent, NotFound, RecordLocked
from abscopal.store.fake_unit_of_work import FakeUnitOfWork
from abscopal.store.unit_of_work import UnitOfWork

LESION = d.Lesion("S1", "L1", "lung", "RUL", False, True, 31.0, d.RtRole.NONE)
AT = dt.datetime(2024, 3, 1, 9, tzinfo=dt.UTC)


def scenario(open_uow: Callable[[str], Any]) -> list[Any]:
    """Every step's observable outcome: versions, error types, what survives without commit."""
    out: list[Any] = []
    with open_uow("crc") as uow:
        uow.sites.add(d.Site("JN", "Qianfoshan"))
        uow.patients.add(d.Patient("S1", "JN", d.Sex.FEMALE, dt.date(1960, 1, 1), "1.0"))
        lesion = uow.lesions.add(LESION)
        out.append(lesion.version)
        uow.commit()
        out.append(uow.committed)
    with open_uow("radiologist") as uow:
        out.append(uow.lesions.update(lesion.id, LESION, version=1).version)  # no change: same version
        out.append(uow.lesions.update(lesion.id, dataclasses.replace(LESION, location="RLL"), version=1).version)
        for attempt in (
            lambda: uow.lesions.update(lesion.id, LESION, version=1),
            lambda: uow.lesions.add(LESION),
            lambda: uow.lesions.add(dataclasses.replace(LESION, subject_id="S9")),
        ):
            try:
                attempt()
            except (ConflictError, DuplicateRecord, MissingParent) as exc:
                out.append(type(exc).__name__)
        uow.sdv_marks.add(d.SdvMark("lesions", lesion.id, "S1", 2, "cra", AT))
        uow.commit()
    with open_uow("radiologist") as uow:  # an edit clears the SDV mark
        uow.lesions.update(lesion.id, dataclasses.replace(LESION, location="LUL"), version=2)
        out.append(len(uow.sdv_marks.all()))
        # not committed: gone when the block ends
    with open_uow("dm") as uow:
        out.append(uow.lesions.get(lesion.id).value.location)
        lock = uow.locks.add(d.RecordLock("patients", "p", "S1", "dm", AT, "database lock"))
        uow.commit()
    with open_uow("radiologist") as uow:
        try:
            uow.lesions.update(lesion.id, LESION, version=2)
        except RecordLocked as exc:
            out.append(type(exc).__name__)
    with open_uow("dm") as uow:
        uow.locks.remove(lock.id, version=1, reason="query resolved")
        uow.lesions.remove(lesion.id, version=2, reason="entered for the wrong patient")
        uow.commit()
    with open_uow("dm") as uow:
        try:
            uow.lesions.get(lesion.id)
        except NotFound as exc:
            out.append(type(exc).__name__)
        removed = uow.lesions.get(lesion.id, include_removed=True)
        out.append((removed.version, removed.removed_reason, uow.lesions.find(subject_id="S1", lesion_id="L1")))
    return out


EXPECTED = [1, True, 1, 2, "ConflictError", "DuplicateRecord", "MissingParent", 0, "RLL", "RecordLocked",
            "NotFound", (3, "entered for the wrong patient", None)]  # fmt: skip


def test_the_fake_unit_of_work_gives_the_expected_outcomes() -> None:
    fake = FakeUnitOfWork("setup")
    assert scenario(lambda user: fake.as_user(user, "contract")) == EXPECTED


@pytest.mark.postgres
def test_the_real_unit_of_work_gives_the_same_outcomes_as_the_fake(engine: Engine) -> None:
    assert scenario(lambda user: UnitOfWork(engine, user, "contract")) == EXPECTED
