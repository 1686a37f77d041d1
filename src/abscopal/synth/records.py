"""Build the generator's most numerous record, the questionnaire answer, quickly (over a million per 10,000 patients).

``QuestionnaireAnswer`` is a frozen, slotted dataclass without ``__post_init__``: its generated ``__init__``
only sets the slots (six given, two left at None). Setting them directly gives equal objects about a third faster;
tests/unit/synth/test_records.py checks the equality and the field list.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from abscopal.domain import Instrument, QuestionnaireAnswer

ANSWER_FIELDS = ("subject_id", "visit", "instrument", "item", "answer", "completed_on")
UNSET_FIELDS = ("instrument_version", "not_done_reason")  # optional fields the generator leaves at None
assert tuple(f.name for f in dataclasses.fields(QuestionnaireAnswer)) == ANSWER_FIELDS + UNSET_FIELDS
assert all(f.default is None for f in dataclasses.fields(QuestionnaireAnswer) if f.name in UNSET_FIELDS)
assert not hasattr(QuestionnaireAnswer, "__post_init__")

_new = object.__new__
_s1, _s2, _s3, _s4, _s5, _s6 = (getattr(QuestionnaireAnswer, n).__set__ for n in ANSWER_FIELDS)
_u1, _u2 = (getattr(QuestionnaireAnswer, n).__set__ for n in UNSET_FIELDS)


def _answer(
    subject_id: str, visit: str, instrument: Instrument, item: int, answer: int | None, completed_on: dt.date | None
) -> QuestionnaireAnswer:
    obj: QuestionnaireAnswer = _new(QuestionnaireAnswer)
    _s1(obj, subject_id)
    _s2(obj, visit)
    _s3(obj, instrument)
    _s4(obj, item)
    _s5(obj, answer)
    _s6(obj, completed_on)
    _u1(obj, None)
    _u2(obj, None)
    return obj


def questionnaire_answers(
    subject_ids: Sequence[str],
    visits: Sequence[str],
    instruments: Sequence[Instrument],
    items: Sequence[int],
    answers: Sequence[int | None],
    completed_on: Sequence[dt.date | None],
) -> list[QuestionnaireAnswer]:
    """``QuestionnaireAnswer(*row)`` for each row of the columns, equal to the constructor's result."""
    return list(map(_answer, subject_ids, visits, instruments, items, answers, completed_on))
