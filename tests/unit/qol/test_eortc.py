"""QLQ-C30 v3.0 / QLQ-LC13 scoring against the scoring manual (ae-qol.md B1-B5, C1), values worked by hand.

Hand-worked: RS = mean of answered items; functional S = (1 - (RS-1)/range)*100; symptom and global
S = ((RS-1)/range)*100 (Fayers et al. 2001). Expected values are written as exact fractions.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from abscopal.domain import Instrument, QuestionnaireAnswer
from abscopal.errors import ValidationError
from abscopal.qol.eortc import (
    ITEMS,
    SCALES,
    SUMMARY_SCALES,
    ScaleKind,
    check_answer,
    scale,
    scale_codes,
    score_answers,
    score_instrument,
    score_scale,
    summary_score,
)

C30, LC13 = Instrument.QLQ_C30, Instrument.QLQ_LC13
F, G, S = ScaleKind.FUNCTIONAL, ScaleKind.GLOBAL, ScaleKind.SYMPTOM

# ae-qol.md B2 and C1: code, items, type, item range, minimum answered items (B4; LCDY all three, C1).
SCALE_TABLE = [
    ("QL2", (29, 30), G, 6, 1),
    ("PF2", (1, 2, 3, 4, 5), F, 3, 3),
    ("RF2", (6, 7), F, 3, 1),
    ("EF", (21, 22, 23, 24), F, 3, 2),
    ("CF", (20, 25), F, 3, 1),
    ("SF", (26, 27), F, 3, 1),
    ("FA", (10, 12, 18), S, 3, 2),
    ("NV", (14, 15), S, 3, 1),
    ("PA", (9, 19), S, 3, 1),
    ("DY", (8,), S, 3, 1),
    ("SL", (11,), S, 3, 1),
    ("AP", (13,), S, 3, 1),
    ("CO", (16,), S, 3, 1),
    ("DI", (17,), S, 3, 1),
    ("FI", (28,), S, 3, 1),
    ("LCDY", (33, 34, 35), S, 3, 3),
    ("LCCO", (31,), S, 3, 1),
    ("LCHA", (32,), S, 3, 1),
    ("LCSM", (36,), S, 3, 1),
    ("LCDS", (37,), S, 3, 1),
    ("LCPN", (38,), S, 3, 1),
    ("LCHR", (39,), S, 3, 1),
    ("LCPC", (40,), S, 3, 1),
    ("LCPA", (41,), S, 3, 1),
    ("LCPO", (42,), S, 3, 1),
]


@pytest.mark.parametrize(("code", "items", "kind", "item_range", "min_answered"), SCALE_TABLE)
def test_scale_definition_matches_the_scoring_manual(code, items, kind, item_range, min_answered):
    definition = scale(code)
    assert (definition.items, definition.kind, definition.item_range, definition.min_answered) == (
        items,
        kind,
        item_range,
        min_answered,
    )


def test_the_scale_table_has_exactly_the_fifteen_c30_and_ten_lc13_scales():
    assert [s.code for s in SCALES] == [row[0] for row in SCALE_TABLE]


def test_every_c30_item_except_28_to_30_and_every_lc13_item_but_43_belongs_to_exactly_one_scale():
    owners = {n: [s.code for s in SCALES if n in s.items] for n in range(1, 44)}
    assert all(len(owners[n]) == 1 for n in range(1, 43))
    assert owners[43] == []  # pain-medication item: descriptive only (C1)


@pytest.mark.parametrize(
    ("number", "low", "high"), [(1, 1, 4), (28, 1, 4), (29, 1, 7), (30, 1, 7), (31, 1, 4), (43, 1, 4)]
)
def test_item_answer_ranges_follow_the_manual(number, low, high):
    item = next(i for i in ITEMS if i.number == number)
    assert (item.low, item.high) == (low, high)


# One hand-worked answer set per scale: (code, answers, expected score).
WORKED = [
    ("QL2", {29: 5, 30: 6}, 75),  # RS 5.5 -> 4.5/6*100
    ("PF2", {1: 1, 2: 2, 3: 2, 4: 1, 5: 1}, 260 / 3),  # RS 1.4 -> (1 - 0.4/3)*100
    ("RF2", {6: 2, 7: 3}, 50),  # RS 2.5 -> (1 - 1.5/3)*100
    ("EF", {21: 1, 22: 1, 23: 2, 24: 4}, 200 / 3),  # RS 2 -> (1 - 1/3)*100
    ("CF", {20: 1, 25: 2}, 250 / 3),  # RS 1.5 -> (1 - 0.5/3)*100
    ("SF", {26: 4, 27: 4}, 0),  # RS 4 -> (1 - 3/3)*100
    ("FA", {10: 2, 12: 3, 18: 4}, 200 / 3),  # RS 3 -> 2/3*100
    ("NV", {14: 1, 15: 2}, 50 / 3),  # RS 1.5 -> 0.5/3*100
    ("PA", {9: 3, 19: 2}, 50),  # RS 2.5 -> 1.5/3*100
    ("DY", {8: 2}, 100 / 3),
    ("SL", {11: 4}, 100),
    ("AP", {13: 1}, 0),
    ("CO", {16: 3}, 200 / 3),
    ("DI", {17: 2}, 100 / 3),
    ("FI", {28: 1}, 0),
    ("LCDY", {33: 1, 34: 2, 35: 4}, 400 / 9),  # RS 7/3 -> (4/3)/3*100
    ("LCCO", {31: 2}, 100 / 3),
    ("LCHA", {32: 1}, 0),
    ("LCSM", {36: 3}, 200 / 3),
    ("LCDS", {37: 4}, 100),
    ("LCPN", {38: 2}, 100 / 3),
    ("LCHR", {39: 1}, 0),
    ("LCPC", {40: 3}, 200 / 3),
    ("LCPA", {41: 2}, 100 / 3),
    ("LCPO", {42: 4}, 100),
]


@pytest.mark.parametrize(("code", "answers", "expected"), WORKED)
def test_scale_score_equals_the_hand_worked_linear_transformation(code, answers, expected):
    assert score_scale(answers, scale(code)) == pytest.approx(expected, rel=1e-12)


# Missing-item rule at its boundary: exactly the minimum answered is scored (hand-worked), one fewer is not.
BOUNDARY = [
    ("PF2", {1: 2, 2: 2, 3: 3}, 500 / 9),  # 3 of 5: RS 7/3 -> (1 - (4/3)/3)*100
    ("EF", {21: 2, 22: 3}, 50),  # 2 of 4: RS 2.5
    ("FA", {10: 2, 12: 4}, 200 / 3),  # 2 of 3: RS 3
    ("QL2", {29: 4}, 50),  # 1 of 2: RS 4 -> 3/6*100
    ("RF2", {7: 3}, 100 / 3),  # 1 of 2: RS 3 -> (1 - 2/3)*100
    ("CF", {20: 2}, 200 / 3),
    ("SF", {27: 1}, 100),
    ("NV", {15: 4}, 100),
    ("PA", {9: 2}, 100 / 3),
    ("LCDY", {33: 2, 34: 2, 35: 3}, 400 / 9),  # all 3 required: RS 7/3
]


@pytest.mark.parametrize(("code", "answers", "expected"), BOUNDARY)
def test_a_scale_with_exactly_the_minimum_answered_items_is_scored(code, answers, expected):
    assert score_scale(answers, scale(code)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("code", "answers", "_expected"), BOUNDARY)
def test_a_scale_with_one_answer_fewer_than_the_minimum_is_not_scored(code, answers, _expected):
    fewer = dict(answers)
    del fewer[max(fewer)]
    fewer[max(answers)] = None  # left blank
    assert score_scale(fewer, scale(code)) is None


@pytest.mark.parametrize("code", [row[0] for row in SCALE_TABLE if len(row[1]) == 1])
def test_an_unanswered_single_item_is_not_scored(code):
    assert score_scale({scale(code).items[0]: None}, scale(code)) is None


def test_lc13_dyspnoea_is_not_scored_from_two_of_three_items_unlike_the_generic_half_rule():
    # Manual (ae-qol.md C1): patients who never climb stairs skip item 35; LCDY then stays missing.
    assert score_scale({33: 2, 34: 3, 35: None}, scale("LCDY")) is None


def test_single_items_take_only_four_values():
    assert [score_scale({8: a}, scale("DY")) for a in (1, 2, 3, 4)] == pytest.approx([0, 100 / 3, 200 / 3, 100])


def test_global_health_status_takes_thirteen_values():
    values = {round(score_scale({29: a, 30: b}, scale("QL2")), 9) for a in range(1, 8) for b in range(1, 8)}
    assert len(values) == 13


FULL_C30 = {k: v for _, answers, _ in WORKED[:15] for k, v in answers.items()}


def test_summary_score_is_the_mean_of_thirteen_scales_with_symptoms_reversed():
    # Hand-worked from WORKED: PF 260/3 + RF 50 + EF 200/3 + CF 250/3 + SF 0 + (100-FA) 100/3 + (100-NV) 250/3
    # + (100-PA) 50 + (100-DY) 200/3 + (100-SL) 0 + (100-AP) 100 + (100-CO) 100/3 + (100-DI) 200/3 = 720; /13.
    scores = score_instrument(C30, FULL_C30)
    assert scores["SUMSC"] == pytest.approx(720 / 13, rel=1e-12)


def test_summary_score_excludes_global_health_and_financial_difficulties():
    changed = dict(FULL_C30) | {29: 1, 30: 1, 28: 4}
    assert score_instrument(C30, changed)["SUMSC"] == pytest.approx(720 / 13, rel=1e-12)


def test_summary_score_is_missing_when_any_of_its_thirteen_scales_is_missing():
    scores = score_instrument(C30, dict(FULL_C30) | {17: None})
    assert scores["DI"] is None
    assert scores["SUMSC"] is None


def test_summary_score_uses_scales_scored_under_the_half_rule():
    # PF from items 1-3 only (1, 2, 2): RS 5/3 -> (1 - (2/3)/3)*100 = 700/9 instead of 260/3.
    answers = dict(FULL_C30) | {4: None, 5: None}
    expected = (720 - 260 / 3 + 700 / 9) / 13
    assert score_instrument(C30, answers)["SUMSC"] == pytest.approx(expected, rel=1e-12)


def test_summary_score_function_reverses_exactly_the_symptom_scales():
    scores = dict.fromkeys(SUMMARY_SCALES, 0.0)
    # functional PF2, RF2, EF, CF, SF at 0; eight symptom scales at 0 -> reversed to 100 each: 800 / 13.
    assert summary_score(scores) == pytest.approx(800 / 13)


@pytest.mark.parametrize(
    ("instrument", "number", "answer"),
    [(C30, 1, 0), (C30, 1, 5), (C30, 28, 5), (C30, 29, 8), (C30, 30, 0), (LC13, 31, 5), (LC13, 43, 0)],
)
def test_an_answer_outside_the_item_scale_is_refused_not_treated_as_missing(instrument, number, answer):
    with pytest.raises(ValidationError, match="not a valid answer"):
        check_answer(instrument, number, answer)


@pytest.mark.parametrize(("instrument", "number"), [(C30, 0), (C30, 31), (LC13, 30), (LC13, 44)])
def test_an_item_number_outside_the_instrument_is_refused(instrument, number):
    with pytest.raises(ValidationError, match="is not an item of"):
        check_answer(instrument, number, 1)


def test_scoring_refuses_an_invalid_answer_inside_a_scale():
    with pytest.raises(ValidationError):
        score_scale({29: 9, 30: 4}, scale("QL2"))


def test_score_answers_refuses_an_item_answered_twice_in_one_form():
    answers = [QuestionnaireAnswer("P1", "BL", C30, 8, 2), QuestionnaireAnswer("P1", "BL", C30, 8, 3)]
    with pytest.raises(ValidationError, match="answered twice"):
        score_answers(answers)


def test_score_answers_gives_every_scale_of_each_form_in_report_order():
    answers = [QuestionnaireAnswer("P1", "BL", C30, 8, 2), QuestionnaireAnswer("P1", "BL", LC13, 31, 4)]
    rows = score_answers(answers)
    assert [r.scale for r in rows] == [*scale_codes(C30), *scale_codes(LC13)]
    assert {r.scale: r.score for r in rows}["DY"] == pytest.approx(100 / 3)
    assert {r.scale: r.score for r in rows}["LCCO"] == pytest.approx(100)


@given(st.lists(st.one_of(st.none(), st.integers(1, 4)), min_size=28, max_size=28), st.integers(1, 7))
def test_every_score_lies_between_0_and_100(answers, global_answer):
    form = {i + 1: a for i, a in enumerate(answers)} | {29: global_answer, 30: None}
    for value in score_instrument(C30, form).values():
        assert value is None or 0 <= value <= 100 + 1e-9


@given(st.integers(1, 3), st.lists(st.integers(1, 4), min_size=5, max_size=5))
def test_a_worse_answer_lowers_physical_functioning(position, answers):
    assume(answers[position] < 4)
    worse = list(answers)
    worse[position] += 1
    pf = scale("PF2")
    assert score_scale(dict(zip(pf.items, worse, strict=True)), pf) < score_scale(
        dict(zip(pf.items, answers, strict=True)), pf
    )


@given(st.lists(st.integers(1, 4), min_size=1, max_size=5))
def test_the_half_rule_equals_imputing_the_mean_of_the_answered_items(answered):
    # Manual B4: scoring from answered items = imputing the person's mean for the blanks (raw score unchanged).
    pf = scale("PF2")
    form = dict(zip(pf.items, [*answered, *([None] * (5 - len(answered)))], strict=True))
    score = score_scale(form, pf)
    if len(answered) < 3:
        assert score is None
    else:
        mean = sum(answered) / len(answered)
        assert score == pytest.approx((1 - (mean - 1) / 3) * 100)
