"""ePRO questionnaires (EORTC QLQ-C30 / QLQ-LC13): the patient's own answers, or a coordinator's entry from
paper with a reason (web.md §2). A questionnaire with every item answered or left blank is complete and scored
with :func:`abscopal.qol.score_answers` (the EORTC scoring manual, docs/qol.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from abscopal import domain as d
from abscopal.errors import ValidationError
from abscopal.protocol.model import ProtocolFile
from abscopal.qol import ITEMS, ScaleScore, score_answers
from abscopal.qol.eortc import check_answer
from abscopal.services.common import (
    Action,
    Actor,
    StaffRole,
    authorise,
    check_values,
    patient_of,
    protocol_of,
    require,
    utc_now,
)
from abscopal.services.ports import UnitOfWorkLike
from abscopal.store.records import Stored


@dataclass(frozen=True)
class QuestionnaireRecorded:
    """Every stored item of the questionnaire and, once it is complete, its scale scores."""

    answers: tuple[Stored[d.QuestionnaireAnswer], ...]
    complete: bool
    scores: tuple[ScaleScore, ...]


def record_questionnaire(
    uow: UnitOfWorkLike, actor: Actor, subject_id: str, visit: str, instrument: d.Instrument,
    answers: Mapping[int, int | None], *, completed_on: dt.date, versions: Mapping[int, int] | None = None,
    on_behalf_reason: str | None = None, protocols: ProtocolFile | None = None, at: dt.datetime | None = None,
) -> QuestionnaireRecorded:  # fmt: skip
    """Record item answers (item number -> answer, None for a blank); an item already stored changes only with
    its version (``versions``). A coordinator entering a paper form gives ``on_behalf_reason``."""
    authorise(uow, actor, Action.QUESTIONNAIRES)
    patient = patient_of(uow, actor, subject_id)
    if actor.role is StaffRole.COORDINATOR:
        require(on_behalf_reason, "on_behalf_reason", "a coordinator enters a patient's answers with a reason")
    visit = require(visit, "visit", "a questionnaire belongs to a visit")
    today = utc_now(at).date()
    protocol = protocol_of(patient.value, protocols, today)
    items = {i.number for i in ITEMS if i.instrument is instrument}
    versions = versions or {}
    for number, answer in sorted(answers.items()):
        if number not in items:
            raise ValidationError("item", f"{instrument.value} has no item {number}")
        check_answer(instrument, number, answer)
        record = d.QuestionnaireAnswer(subject_id, visit, instrument, number, answer, completed_on)
        check_values(record, protocol, today)
        found = uow.answers.find(subject_id=subject_id, visit=visit, instrument=instrument, item=number)
        if found is None:
            uow.answers.add(record)
        elif found.value != record:
            if number not in versions:
                raise ValidationError(f"items.{number}", "is already answered; send its version to change it")
            uow.answers.update(found.id, dataclasses.replace(record), version=versions[number])
    stored = tuple(
        s for s in uow.answers.for_subject(subject_id) if s.value.visit == visit and s.value.instrument is instrument
    )
    complete = {s.value.item for s in stored} >= items
    scores = tuple(score_answers(s.value for s in stored)) if complete else ()
    uow.commit()
    return QuestionnaireRecorded(stored, complete, scores)
