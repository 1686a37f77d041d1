"""Adverse events: valid CTCAE v5.0 terms, codes and grades (shared/data/ctcae_v5.csv), plausible dates and flags."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from abscopal.domain import AeAction, AeOutcome
from abscopal.synth.safety import TERMS

from .conftest import Subject

# The dictionary packaged with Abscopal (copied from shared/data with its provenance, PROVENANCE.md there).
CTCAE = Path(__file__).resolve().parents[3] / "src/abscopal/safety/data/ctcae_v5.csv"


def _allowed() -> dict[tuple[str, int], set[int]]:
    """(term, MedDRA code) -> grades whose cell is not '-' (NCI CTCAE v5.0, 27 Nov 2017)."""
    with CTCAE.open(encoding="utf-8") as f:
        return {
            (row["term"], int(row["meddra_code"])): {g for g in range(1, 6) if row[f"grade{g}"] != "-"}
            for row in csv.DictReader(f)
        }


def test_every_term_of_the_generator_table_exists_with_its_code_and_grades() -> None:
    allowed = _allowed()
    for term in TERMS:
        key = (term.term, term.meddra_code)
        assert key in allowed, key
        assert {g for g, w in term.grades if w > 0} <= allowed[key], term.term


def test_every_generated_event_has_a_term_code_and_grade_valid_in_ctcae(enrolled: list[Subject]) -> None:
    allowed = _allowed()
    events = [e for s in enrolled for e in s.events]
    assert events
    bad = [
        (e.term, e.meddra_code, e.grade) for e in events if e.grade not in allowed.get((e.term, e.meddra_code), set())
    ]
    assert bad == []


def test_fatigue_is_never_graded_above_3(enrolled: list[Subject]) -> None:
    grades = {e.grade for s in enrolled for e in s.events if e.term == "Fatigue"}
    assert grades and max(g or 0 for g in grades) <= 3


def test_events_start_after_consent_mostly_after_the_first_fraction_and_end_after_they_start(
    enrolled: list[Subject],
) -> None:
    after = total = 0
    for s in enrolled:
        assert s.screening.consent_date is not None and s.first_fraction is not None
        for e in s.events:
            assert s.screening.consent_date <= e.onset_date <= s.end
            assert e.resolution_date is None or e.onset_date <= e.resolution_date <= s.end
            total += 1
            after += e.onset_date >= s.first_fraction
    assert 0.9 <= after / total < 1.0


def test_grade_5_events_are_fatal_serious_and_match_the_patients_death(enrolled: list[Subject]) -> None:
    fatal = [(s, e) for s in enrolled for e in s.events if e.grade == 5]
    for s, e in fatal:
        assert e.outcome is AeOutcome.FATAL and e.serious_death and e.serious
        assert s.patient.death_date == e.resolution_date
        assert s.patient.death_cause == e.term
    outcomes = [e.outcome for s in enrolled for e in s.events]
    assert all(
        (o is AeOutcome.FATAL) == (e.grade == 5)
        for o, e in zip(outcomes, (e for s in enrolled for e in s.events), strict=True)
    )


def test_serious_events_are_a_minority_and_carry_awareness_and_report_times(enrolled: list[Subject]) -> None:
    events = [e for s in enrolled for e in s.events]
    serious = [e for e in events if e.serious]
    assert 0 < len(serious) < 0.3 * len(events)
    for e in serious:
        assert e.awareness_at is not None and e.reported_at is not None
        assert e.awareness_at.date() >= e.onset_date and e.reported_at >= e.awareness_at
    assert any(e.grade == 2 for e in serious) or any(e.serious_medically_important for e in serious)
    assert all(e.awareness_at is None for e in events if not e.serious)


def test_grade_4_events_are_life_threatening(enrolled: list[Subject]) -> None:
    assert all(e.serious_life_threatening for s in enrolled for e in s.events if e.grade == 4)


def test_attribution_is_recorded_per_agent_and_immune_related_events_are_flagged(enrolled: list[Subject]) -> None:
    events = [e for s in enrolled for e in s.events]
    oesophagitis = [e for e in events if e.term == "Esophagitis"]
    related = ("possible", "probable", "definite")
    assert sum(str(e.attribution_cfrt) in related for e in oesophagitis) > 0.8 * len(oesophagitis)
    thyroid = [e for e in events if e.term == "Hypothyroidism"]
    assert thyroid and all(e.immune_related for e in thyroid)
    assert not any(e.immune_related for e in oesophagitis)
    missing = sum(e.attribution_io is None for e in events)
    assert 0 < missing < 0.05 * len(events)  # a few to query, analysed as related


def test_immunotherapy_stops_after_a_withdrawing_event(enrolled: list[Subject]) -> None:
    withdrawn = 0
    for s in enrolled:
        stops = [e.onset_date for e in s.events if e.action_io is AeAction.DRUG_WITHDRAWN]
        if stops:
            withdrawn += 1
            assert all(c.date < min(stops) for c in s.cycles)
    assert withdrawn > 0


def test_the_common_rt_toxicities_are_the_most_frequent_terms(enrolled: list[Subject]) -> None:
    terms = Counter(e.term for s in enrolled for e in s.events)
    top = {t for t, _ in terms.most_common(5)}
    assert {"Esophagitis", "Fatigue"} <= top
    assert terms["Pneumonitis"] > terms["Myocarditis"]


def test_event_ids_are_unique(enrolled: list[Subject]) -> None:
    ids = [e.ae_id for s in enrolled for e in s.events]
    assert len(ids) == len(set(ids))
