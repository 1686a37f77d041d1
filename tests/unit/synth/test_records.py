"""The fast questionnaire-answer builder gives exactly what the dataclass constructor gives."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from abscopal.domain import Instrument, QuestionnaireAnswer
from abscopal.synth.records import ANSWER_FIELDS, UNSET_FIELDS, questionnaire_answers


def test_the_builder_knows_every_field_of_the_answer_record() -> None:
    assert tuple(f.name for f in dataclasses.fields(QuestionnaireAnswer)) == ANSWER_FIELDS + UNSET_FIELDS


@given(
    st.lists(
        st.tuples(
            st.text(max_size=8),
            st.sampled_from(["baseline", "week_6"]),
            st.sampled_from(list(Instrument)),
            st.integers(1, 43),
            st.none() | st.integers(1, 7),
            st.none() | st.dates(),
        ),
        max_size=5,
    )
)
def test_built_answers_equal_constructed_ones(
    rows: list[tuple[str, str, Instrument, int, int | None, dt.date | None]],
) -> None:
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in ANSWER_FIELDS]
    assert questionnaire_answers(*columns) == [QuestionnaireAnswer(*row) for row in rows]  # type: ignore[arg-type]


def test_generated_answers_are_plain_python_ints(enrolled: list) -> None:  # type: ignore[type-arg]
    answers = [a.answer for s in enrolled[:20] for a in s.answers if a.answer is not None]
    assert answers and {type(a) for a in answers} == {int}
