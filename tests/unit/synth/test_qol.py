"""Questionnaires: QLQ-C30 items 1-30 and QLQ-LC13 items 31-43 in range (ae-qol.md §B1, §C1), tied to the course."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict

from abscopal.domain import Instrument

from .conftest import Subject


def test_answers_are_within_the_item_ranges(enrolled: list[Subject]) -> None:
    for s in enrolled:
        for a in s.answers:
            if a.answer is None:
                continue
            high = 7 if a.item in (29, 30) else 4
            assert 1 <= a.answer <= high, (a.item, a.answer)


def test_each_completed_visit_has_items_1_to_30_of_the_c30_and_31_to_43_of_the_lc13(enrolled: list[Subject]) -> None:
    for s in enrolled:
        visits: dict[str, list[int]] = defaultdict(list)
        for a in s.answers:
            visits[a.visit].append(a.item)
            assert a.instrument is (Instrument.QLQ_C30 if a.item <= 30 else Instrument.QLQ_LC13)
        for items in visits.values():
            assert sorted(items) == list(range(1, 44))


def test_about_3_percent_of_items_are_left_blank(enrolled: list[Subject]) -> None:
    answers = [a for s in enrolled for a in s.answers if a.item not in (35, 43)]
    blank = sum(a.answer is None for a in answers) / len(answers)
    assert 0.02 <= blank <= 0.045
    stairs = [a for s in enrolled for a in s.answers if a.item == 35]
    assert sum(a.answer is None for a in stairs) / len(stairs) > blank


def test_questionnaires_start_at_baseline_before_treatment_and_follow_every_6_weeks(enrolled: list[Subject]) -> None:
    labels = Counter()
    for s in enrolled:
        for a in s.answers:
            labels[a.visit] += 1
            if a.visit == "baseline":
                assert s.first_fraction is not None and a.completed_on is not None
                assert a.completed_on <= s.first_fraction
    assert {"baseline", "week_6", "week_12"} <= set(labels)
    assert all(v == "baseline" or (v.startswith("week_") and int(v[5:]) % 6 == 0) for v in labels)


def test_a_whole_visit_is_occasionally_missing(enrolled: list[Subject]) -> None:
    scans = sum(len(s.assessments) for s in enrolled)
    forms = sum(len({a.visit for a in s.answers}) for s in enrolled)
    assert 0.85 * scans < forms < scans


def test_symptoms_worsen_and_global_quality_of_life_falls_at_progression(enrolled: list[Subject]) -> None:
    baseline_symptoms, progression_symptoms, baseline_ql, progression_ql = [], [], [], []
    for s in enrolled:
        if s.truth.iupd_date is None:
            continue
        for a in s.answers:
            if a.answer is None or a.item == 43:
                continue
            at_progression = a.completed_on is not None and a.completed_on >= s.truth.iupd_date
            if a.visit == "baseline" or at_progression:
                if a.item in (29, 30):
                    (progression_ql if at_progression else baseline_ql).append(a.answer)
                else:
                    (progression_symptoms if at_progression else baseline_symptoms).append(a.answer)
    assert statistics.mean(progression_symptoms) > statistics.mean(baseline_symptoms) + 0.1
    assert statistics.mean(progression_ql) < statistics.mean(baseline_ql) - 0.2
