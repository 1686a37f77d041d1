"""Safety tables on a hand-made cohort; every expected n and % counted by hand (ae-qol.md A4).

Safety population N = 5 (P1-P5); P6 is not in it. Events (attribution CFRT / LDRT / IO):
  P1  Pneumonitis g2 (possible / unlikely / unrelated), onset 2024-02-20, resolved 2024-03-01
      Pneumonitis g3 (probable / unlikely / possible), serious (hospitalised), 2024-03-01 -> 2024-03-31
      Fatigue g1 (unrelated x3)
  P2  Pneumonitis g1 (definite / unrelated / unrelated), onset 2024-03-15, unresolved
      Cough g2 (attribution missing for all three -> analysed as related, queried)
  P3  Fatigue g3 (unrelated / unrelated / probable), immunotherapy interrupted
      ALT increased g4 (unrelated / unrelated / definite), immune-related, serious (medically important),
      immunotherapy withdrawn
  P4  Colitis, grade missing (unrelated / unrelated / possible)
  P5  no AE
  P6  Nausea g1: not in the safety population
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from abscopal.domain import AdverseEvent, AeAction, Attribution
from abscopal.errors import ValidationError
from abscopal.protocol.model import load_bundled
from abscopal.safety.ctcae import load_ctcae
from abscopal.safety.events import Exposure
from abscopal.safety.summaries import (
    CountPct,
    SafetyPopulation,
    aesi_summary,
    by_maximum_grade,
    incidence_by_soc_term,
    overall_summary,
    safety_tables,
    serious_listing,
    treatment_related,
    worst_grades,
)

D = load_ctcae()
OPTIONS = load_bundled().current.safety
U, UL, PO, PR, DE = (
    Attribution.UNRELATED,
    Attribution.UNLIKELY,
    Attribution.POSSIBLE,
    Attribution.PROBABLE,
    Attribution.DEFINITE,
)
POP = SafetyPopulation.of(["P1", "P2", "P3", "P4", "P5"])


def _ae(subject, ae_id, term, grade, attr, onset="2024-03-01", resolved=None, **kw) -> AdverseEvent:
    t = D.get(term)
    cfrt, ldrt, io = attr
    return AdverseEvent(
        subject_id=subject,
        ae_id=ae_id,
        term=t.term,
        meddra_code=t.meddra_code,
        grade=grade,
        onset_date=dt.date.fromisoformat(onset),
        resolution_date=dt.date.fromisoformat(resolved) if resolved else None,
        attribution_cfrt=cfrt,
        attribution_ldrt=ldrt,
        attribution_io=io,
        **kw,
    )


COHORT = [
    _ae("P1", "1", "Pneumonitis", 2, (PO, UL, U), "2024-02-20", "2024-03-01"),
    _ae("P1", "2", "Pneumonitis", 3, (PR, UL, PO), "2024-03-01", "2024-03-31", serious_hospitalisation=True),
    _ae("P1", "3", "Fatigue", 1, (U, U, U)),
    _ae("P2", "4", "Pneumonitis", 1, (DE, U, U), "2024-03-15"),
    _ae("P2", "5", "Cough", 2, (None, None, None)),
    _ae("P3", "6", "Fatigue", 3, (U, U, PR), action_io=AeAction.DRUG_INTERRUPTED),
    _ae(
        "P3",
        "7",
        "ALT increased",
        4,
        (U, U, DE),
        immune_related=True,
        serious_medically_important=True,
        action_io=AeAction.DRUG_WITHDRAWN,
    ),
    _ae("P4", "8", "Colitis", None, (U, U, PO)),
    _ae("P6", "9", "Nausea", 1, (U, U, U)),
]


def c(n: int) -> CountPct:
    return CountPct(n, n * 100 / 5)


def test_worst_grade_is_kept_once_per_patient_and_term():
    worst = worst_grades(COHORT)
    assert worst[("P1", "Pneumonitis")] == 3
    assert worst[("P4", "Colitis")] is None


def test_incidence_by_soc_and_term_counts_each_patient_once_at_the_worst_grade():
    rows = incidence_by_soc_term(COHORT, POP, D)
    table = [
        (r.level, r.soc, r.term, r.counts.any_grade.n, r.counts.grade_1_2.n, r.counts.grade_3_plus.n) for r in rows
    ]
    resp, gi, gen, inv = (
        "Respiratory, thoracic and mediastinal disorders",
        "Gastrointestinal disorders",
        "General disorders and administration site conditions",
        "Investigations",
    )
    assert table == [
        ("any", None, None, 4, 1, 2),  # worst: P1 3, P2 2, P3 4, P4 missing (any only)
        ("soc", resp, None, 2, 1, 1),  # P1 worst 3, P2 worst 2
        ("term", resp, "Pneumonitis", 2, 1, 1),  # P1 3, P2 1
        ("term", resp, "Cough", 1, 1, 0),
        ("soc", gi, None, 1, 0, 0),  # Colitis with a missing grade: any grade only
        ("term", gi, "Colitis", 1, 0, 0),
        ("soc", gen, None, 2, 1, 1),
        ("term", gen, "Fatigue", 2, 1, 1),  # P1 g1, P3 g3
        ("soc", inv, None, 1, 0, 1),
        ("term", inv, "Alanine aminotransferase increased", 1, 0, 1),
    ]


def test_percentages_use_the_safety_population_as_denominator():
    rows = incidence_by_soc_term(COHORT, POP, D)
    assert rows[0].counts.any_grade == CountPct(4, 80.0)
    assert rows[2].counts.grade_3_plus == CountPct(1, 20.0)
    assert str(rows[0].counts.any_grade) == "4 (80.0%)"


def test_socs_can_be_ordered_by_descending_frequency():
    rows = incidence_by_soc_term(COHORT, POP, D, order="frequency")
    socs = [r.soc for r in rows if r.level == "soc"]
    assert socs[:2] == [
        "General disorders and administration site conditions",
        "Respiratory, thoracic and mediastinal disorders",
    ]  # 2 patients each, then by name


def test_overall_summary_matches_the_hand_count():
    got = {r.label: r.count for r in overall_summary(COHORT, POP)}
    assert got == {
        "Any AE": c(4),
        "Any treatment-related AE": c(4),  # P1, P2 (cough: missing = related; pneumonitis definite), P3, P4
        "Grade >= 3 AE": c(2),  # P1, P3
        "Grade >= 3 treatment-related AE": c(2),
        "Serious AE": c(2),  # P1, P3
        "Treatment-related serious AE": c(2),
        "Immune-related AE": c(1),
        "AE leading to immunotherapy interruption": c(1),
        "AE leading to immunotherapy discontinuation": c(1),
        "AE leading to death": c(0),
    }


def test_patients_by_maximum_grade():
    table = by_maximum_grade(COHORT, POP)
    assert {g: v.n for g, v in table.by_grade.items()} == {1: 0, 2: 1, 3: 1, 4: 1, 5: 0}
    assert (table.missing.n, table.no_ae.n) == (1, 1)


def test_treatment_related_by_component_with_missing_attribution_as_related():
    rows = {r.component: (r.any_grade.n, r.grade_3_plus.n, r.serious.n) for r in treatment_related(COHORT, POP)}
    assert rows == {
        "CFRT": (2, 1, 1),  # P1 (g2 possible, g3 probable + serious), P2 (definite; cough missing)
        "LDRT": (1, 0, 0),  # only P2's cough, through its missing attribution
        "IO": (4, 2, 2),  # P1 g3 possible (serious), P2 cough (missing), P3 g3 + g4 (serious), P4 colitis
        "Any study treatment": (4, 2, 2),
    }


def test_treatment_related_with_missing_attribution_as_unrelated():
    rows = {r.component: r.any_grade.n for r in treatment_related(COHORT, POP, "unrelated")}
    assert rows == {"CFRT": 2, "LDRT": 0, "IO": 3, "Any study treatment": 4}


def test_adverse_events_of_special_interest_use_the_configured_categories():
    exposures = {"P1": Exposure(dt.date(2024, 1, 10)), "P2": Exposure(dt.date(2024, 1, 15))}
    rows = {r.category: r for r in aesi_summary(COHORT, POP, OPTIONS.aesi, exposures)}
    assert (rows["Pneumonitis"].any_grade.n, rows["Pneumonitis"].grade_3_plus.n) == (2, 1)
    # first onset: P1 2024-02-20 (41 days after 2024-01-10), P2 2024-03-15 (60 days after 2024-01-15)
    assert rows["Pneumonitis"].median_days_to_onset == 50.5
    # resolved episodes: 10 days (02-20 -> 03-01) and 30 days (03-01 -> 03-31); P2 unresolved
    assert rows["Pneumonitis"].median_days_to_resolution == 20
    assert (rows["Hepatitis / transaminases"].any_grade.n, rows["Hepatitis / transaminases"].grade_3_plus.n) == (1, 1)
    assert rows["Fatigue"].any_grade == c(2)
    assert rows["Colitis"].any_grade == c(1)
    assert rows["Thyroid"].any_grade == c(0)


def test_a_custom_aesi_category_counts_its_terms_together():
    rows = aesi_summary(COHORT, POP, {"Lung": ["Pneumonitis", "Cough"]})
    assert rows[0].any_grade.n == 2


def test_serious_listing_names_the_criteria_and_components():
    listing = serious_listing(COHORT)
    assert [(e.subject_id, e.term, e.criteria, e.related_to) for e in listing] == [
        ("P1", "Pneumonitis", ("AESHOSP",), ("CFRT", "IO")),
        ("P3", "Alanine aminotransferase increased", ("AESMIE",), ("IO",)),
    ]


def test_safety_tables_raise_queries_for_missing_grade_attribution_and_outsiders():
    tables = safety_tables(COHORT, POP, OPTIONS, D)
    assert any("P6 AE 9: P6 is not in the safety population" in q for q in tables.queries)
    assert any("P4 AE 8: grade is missing" in q for q in tables.queries)
    assert any("P2 AE 5: attribution to CFRT, LDRT, IO is missing" in q for q in tables.queries)


def test_a_population_given_as_a_number_cannot_be_smaller_than_the_patients_with_aes():
    with pytest.raises(ValidationError, match="safety population has only 3"):
        overall_summary(COHORT[:-1], SafetyPopulation(3))


def test_a_population_given_as_a_number_counts_every_event():
    got = {r.label: r.count for r in overall_summary(COHORT, SafetyPopulation(10))}
    assert got["Any AE"] == CountPct(5, 50.0)


# --- invariants on random cohorts

_TERMS = ["Pneumonitis", "Cough", "Fatigue", "Colitis", "Myocarditis", "Esophagitis"]


@st.composite
def cohorts(draw: st.DrawFn) -> list[AdverseEvent]:
    events = []
    for k in range(draw(st.integers(0, 25))):
        term = D.get(draw(st.sampled_from(_TERMS)))
        grade = draw(st.one_of(st.none(), st.sampled_from(term.grades)))
        subject = f"P{draw(st.integers(1, 6))}"
        events.append(_ae(subject, str(k), term.term, grade, (U, U, draw(st.sampled_from([None, U, PO])))))
    return events


@given(cohorts())
def test_any_ae_counts_at_least_every_soc_and_every_soc_at_least_each_of_its_terms(events):
    pop = SafetyPopulation.of(f"P{i}" for i in range(1, 7))
    rows = incidence_by_soc_term(events, pop, D)
    any_row = rows[0].counts
    for r in rows[1:]:
        assert r.counts.any_grade.n <= any_row.any_grade.n
        assert r.counts.grade_3_plus.n <= r.counts.any_grade.n
        assert r.counts.grade_1_2.n + r.counts.grade_3_plus.n <= r.counts.any_grade.n
    for soc in (r for r in rows if r.level == "soc"):
        for term in (r for r in rows if r.level == "term" and r.soc == soc.soc):
            assert term.counts.any_grade.n <= soc.counts.any_grade.n
            assert term.counts.grade_3_plus.n <= soc.counts.grade_3_plus.n


@given(cohorts())
def test_patients_by_maximum_grade_add_up_to_the_population(events):
    pop = SafetyPopulation.of(f"P{i}" for i in range(1, 7))
    table = by_maximum_grade(events, pop)
    assert sum(v.n for v in table.by_grade.values()) + table.missing.n + table.no_ae.n == 6


@given(cohorts())
def test_related_to_any_component_counts_at_least_each_component(events):
    pop = SafetyPopulation.of(f"P{i}" for i in range(1, 7))
    rows = {r.component: r.any_grade.n for r in treatment_related(events, pop)}
    assert rows["Any study treatment"] >= max(rows["CFRT"], rows["LDRT"], rows["IO"])
