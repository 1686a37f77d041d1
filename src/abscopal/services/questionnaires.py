"""ePRO questionnaires (EORTC QLQ-C30 / QLQ-LC13): the patient's own answers, or a coordinator's entry from
paper with a reason (web.md §2). A questionnaire with every item answered or left blank is complete and scored
with :func:`abscopal.qol.score_answers` (the EORTC scoring manual, docs/qol.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from abscopal import domain as d
from abscopal.errors import AbscopalError, ValidationError
from abscopal.messages import N_, Message
from abscopal.protocol.model import ProtocolFile
from abscopal.qol import ITEMS, ScaleScore, score_answers
from abscopal.qol.eortc import ItemDefinition, check_answer
from abscopal.services.common import (
    Action,
    Actor,
    StaffRole,
    authorise,
    check_values,
    patient_of,
    protocol_of,
    require,
    site_today,
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
    today = site_today(uow, patient.value, at)  # the patient answers on their site's day (the page dates it so)
    protocol = protocol_of(patient.value, protocols, today)
    items = {i.number for i in ITEMS if i.instrument is instrument}
    versions = versions or {}
    # the visit's stored items, read once; new items are added as one batch (add_many: the checks, rows and
    # audit records of one add after another), changed ones updated one by one with their versions
    by_item = {
        s.value.item: s
        for s in uow.answers.for_subject(subject_id)
        if s.value.visit == visit and s.value.instrument is instrument
    }
    new: list[d.QuestionnaireAnswer] = []

    def add_new() -> None:  # before an update or a refusal: the items before it are written first, as they were
        batch = new.copy()
        new.clear()
        by_item.update((s.value.item, s) for s in uow.answers.add_many(batch))

    try:
        for number, answer in sorted(answers.items()):
            if number not in items:
                missing = Message(
                    N_("{instrument} has no item {number}"), instrument=instrument.value, number=str(number)
                )
                raise ValidationError("item", missing)
            check_answer(instrument, number, answer)
            record = d.QuestionnaireAnswer(subject_id, visit, instrument, number, answer, completed_on)
            check_values(record, protocol, today)
            found = by_item.get(number)
            if found is None:
                new.append(record)
            elif found.value != record:
                if number not in versions:
                    raise ValidationError(
                        f"items.{number}", Message(N_("is already answered; send its version to change it"))
                    )
                add_new()
                by_item[number] = uow.answers.update(found.id, dataclasses.replace(record), version=versions[number])
    except AbscopalError:
        add_new()  # an earlier item's refusal (a locked patient) comes first, as when each was written in turn
        raise
    add_new()
    stored = tuple(sorted(by_item.values(), key=lambda s: s.id))  # oldest first, as for_subject reads them
    complete = {s.value.item for s in stored} >= items
    scores = tuple(score_answers(s.value for s in stored)) if complete else ()
    uow.commit()
    return QuestionnaireRecorded(stored, complete, scores)


# --- reading a questionnaire's progress (the ePRO pages: resumable, one item at a time)


@dataclass(frozen=True)
class QuestionnaireProgress:
    """One visit's questionnaires as stored so far: each item's stored answer, the next item to ask, the scores.

    Every answer is its own record, written as it is given (:func:`record_questionnaire` with one item), so a
    partial questionnaire is simply the items stored so far: nothing is lost when the patient stops, and the
    scores are those of the complete instruments only (an instrument is scored when every item is stored).
    """

    subject_id: str
    visit: str
    instruments: tuple[d.Instrument, ...]
    stored: Mapping[int, Stored[d.QuestionnaireAnswer]]
    scores: tuple[ScaleScore, ...]

    @property
    def items(self) -> tuple[ItemDefinition, ...]:
        """The items to ask, in the order of the instruments, then of their numbers."""
        return tuple(i for instrument in self.instruments for i in ITEMS if i.instrument is instrument)

    @property
    def next_item(self) -> ItemDefinition | None:
        """The first item without a stored answer (a blank counts as given), or None when all are stored."""
        return next((i for i in self.items if i.number not in self.stored), None)

    @property
    def answered(self) -> int:
        return sum(1 for i in self.items if i.number in self.stored)

    @property
    def complete(self) -> bool:
        return self.next_item is None

    def complete_instrument(self, instrument: d.Instrument) -> bool:
        return all(i.number in self.stored for i in self.items if i.instrument is instrument)

    @property
    def started(self) -> bool:
        return bool(self.stored)


def questionnaire_progress(
    uow: UnitOfWorkLike, actor: Actor, subject_id: str, visit: str, instruments: Sequence[d.Instrument],
) -> QuestionnaireProgress:  # fmt: skip
    """The stored answers of ``visit``'s questionnaires and the QoL engine's scores of the complete ones."""
    patient_of(uow, actor, subject_id)
    wanted = tuple(instruments)
    stored = {
        s.value.item: s
        for s in uow.answers.for_subject(subject_id)
        if s.value.visit == visit and s.value.instrument in wanted
    }
    complete = [inst for inst in wanted if all(i.number in stored for i in ITEMS if i.instrument is inst)]
    scores = tuple(score_answers(s.value for s in stored.values() if s.value.instrument in complete))
    return QuestionnaireProgress(subject_id, visit, wanted, stored, scores)


def visits_with_answers(uow: UnitOfWorkLike, actor: Actor, subject_id: str) -> set[str]:
    """The visits of the patient that have at least one stored answer."""
    patient_of(uow, actor, subject_id)
    return {s.value.visit for s in uow.answers.for_subject(subject_id)}


def next_visit(
    uow: UnitOfWorkLike, actor: Actor, subject_id: str, visit_codes: Sequence[str], instruments: Sequence[d.Instrument]
) -> str | None:
    """The questionnaire visit to fill next: the earliest one started but not complete (resume it), else the
    first of ``visit_codes`` after the latest visit with any answer (baseline when there is none); None when
    every visit of the schedule is done. Visits skipped in the past are not offered again: a missed
    questionnaire is missing data, transcribed from paper by the coordinator if it exists."""
    patient_of(uow, actor, subject_id)
    wanted = set(instruments)
    items = {i.number for i in ITEMS if i.instrument in wanted}
    by_visit: dict[str, set[int]] = {}
    for s in uow.answers.for_subject(subject_id):
        if s.value.instrument in wanted:
            by_visit.setdefault(s.value.visit, set()).add(s.value.item)
    for code in visit_codes:
        if code in by_visit and not by_visit[code] >= items:
            return code
    started = [i for i, code in enumerate(visit_codes) if code in by_visit]
    position = started[-1] + 1 if started else 0
    return visit_codes[position] if position < len(visit_codes) else None
