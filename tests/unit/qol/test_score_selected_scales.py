"""Scoring only some scales (what the report shows) is the QoL engine's :func:`score_answers`, not a copy.

QLQ-C30 manual (Fayers 2001): QL2 = items 29-30 (1-7), PF2 = items 1-5 (1-4); hand-worked below.
"""

from __future__ import annotations

import pytest

from abscopal.domain import Instrument, QuestionnaireAnswer
from abscopal.errors import ValidationError
from abscopal.qol.eortc import score_answers


def answers(values: dict[int, int]) -> list[QuestionnaireAnswer]:
    return [QuestionnaireAnswer("S1", "baseline", Instrument.QLQ_C30, item, v) for item, v in values.items()]


FORM = answers({1: 1, 2: 2, 3: 1, 4: 1, 5: 1, 29: 6, 30: 5})


def test_only_the_chosen_scales_are_scored_in_the_order_given():
    assert [r.scale for r in score_answers(FORM, ["QL2", "PF2"])] == ["QL2", "PF2"]


def test_a_chosen_scale_scores_as_the_manual_says():
    # QL2: raw (6 + 5) / 2 = 5.5; (5.5 - 1) / 6 * 100 = 75
    (row,) = score_answers(FORM, ["QL2"])
    assert row.score == pytest.approx(75.0)


def test_a_scale_of_another_instrument_is_not_scored_for_this_form():
    assert score_answers(FORM, ["LCDY"]) == []


def test_an_answer_outside_the_item_scale_is_refused_when_scoring_chosen_scales():
    with pytest.raises(ValidationError):
        score_answers(answers({29: 8}), ["QL2"])
