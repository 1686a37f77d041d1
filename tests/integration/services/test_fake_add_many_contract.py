"""The fake unit of work's ``add_many`` behaves as the store's where a use case can tell: the records it
returns and keeps, and which refusal a bad batch gets (with nothing of it kept)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine

from abscopal import domain as d
from abscopal.errors import AbscopalError
from abscopal.store.fake_unit_of_work import FakeUnitOfWork
from abscopal.store.unit_of_work import UnitOfWork

DAY = dt.date(2024, 4, 12)
AT = dt.datetime(2024, 3, 1, 9, tzinfo=dt.UTC)


def _answer(subject: str, item: int, answer: int | None = 1) -> d.QuestionnaireAnswer:
    return d.QuestionnaireAnswer(subject, "week_6", d.Instrument.QLQ_C30, item, answer, DAY)


def scenario(open_uow: Callable[[str], Any]) -> list[Any]:
    """Each batch's outcome: (item, answer, version) of what it returned, or the refusal's type and the start
    of its sentence; then what is stored."""
    out: list[Any] = []
    with open_uow("crc") as uow:
        uow.sites.add(d.Site("JN", "Qianfoshan"))
        uow.patients.add(d.Patient("S1", "JN", d.Sex.FEMALE, dt.date(1960, 1, 1), "1.0"))
        uow.patients.add(d.Patient("S2", "JN", d.Sex.MALE, dt.date(1961, 1, 1), "1.0"))
        uow.commit()
    batches = [
        [_answer("S1", 3), _answer("S1", 1, None), _answer("S1", 2)],  # stored, in the order given
        [_answer("S1", 4), _answer("S1", 2, 5)],  # item 2 is stored
        [_answer("S1", 5), _answer("S1", 6), _answer("S1", 5, 3)],  # item 5 twice
        [_answer("S1", 7), _answer("S9", 1)],  # no patient S9
        [_answer("S2", 1), _answer("S1", 8)],  # S1 will be locked
    ]
    for n, batch in enumerate(batches):
        if n == 4:
            with open_uow("dm") as uow:
                uow.locks.add(d.RecordLock("patients", "p", "S1", "dm", AT, "database lock"))
                uow.commit()
        with open_uow("crc") as uow:
            try:
                out.append([(s.value.item, s.value.answer, s.version) for s in uow.answers.add_many(batch)])
                uow.commit()
            except AbscopalError as exc:
                out.append((type(exc).__name__, str(exc).split(" (")[0]))
                uow.commit()  # nothing of a refused batch is kept
    with open_uow("reader") as uow:
        out.append(sorted((s.value.subject_id, s.value.item) for s in uow.answers.all()))
    return out


EXPECTED = [
    [(3, 1, 1), (1, None, 1), (2, 1, 1)],
    ("DuplicateRecord", "Nothing was saved: a questionnaire_answers record with subject_id S1, visit week_6, "
                        "instrument QLQ-C30, item 2 already exists"),
    ("DuplicateRecord", "Nothing was saved: two questionnaire_answers records of the batch have subject_id S1, "
                        "visit week_6, instrument QLQ-C30, item 5"),
    ("MissingParent", "Nothing was saved: there is no patient 'S9' for this questionnaire_answers record"),
    ("RecordLocked", "Nothing was saved: patient S1 is locked"),
    [("S1", 1), ("S1", 2), ("S1", 3)],
]  # fmt: skip


def test_the_fake_batch_gives_the_expected_outcomes() -> None:
    fake = FakeUnitOfWork("setup")
    assert scenario(lambda user: fake.as_user(user, "contract")) == EXPECTED


@pytest.mark.postgres
def test_the_store_batch_gives_the_same_outcomes_as_the_fake(engine: Engine) -> None:
    assert scenario(lambda user: UnitOfWork(engine, user, "contract")) == EXPECTED
