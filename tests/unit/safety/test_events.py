"""AE record rules: CTCAE grade validity, ICH E2A seriousness, NCI/CTEP attribution, TEAE, SAE clock (ae-qol.md A4)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from abscopal.domain import AdverseEvent, AeOutcome, Attribution, Fraction, FractionStatus, ImmunotherapyCycle
from abscopal.errors import ValidationError
from abscopal.protocol.model import load_bundled
from abscopal.safety.ctcae import load_ctcae
from abscopal.safety.events import (
    Component,
    Exposure,
    SeriousnessCriterion,
    check_adverse_event,
    check_grade,
    data_queries,
    exposure_for,
    impute_onset,
    is_serious,
    is_treatment_emergent,
    relatedness,
    sae_report_status,
    seriousness_criteria,
    treatment_emergence,
)

D = load_ctcae()
OPTIONS = load_bundled().current.safety  # windows 30 / 90 days, SAE report 24 h
U, UL, PO, PR, DE = (
    Attribution.UNRELATED,
    Attribution.UNLIKELY,
    Attribution.POSSIBLE,
    Attribution.PROBABLE,
    Attribution.DEFINITE,
)


def ae(**changes: object) -> AdverseEvent:
    base = AdverseEvent(
        subject_id="P1",
        ae_id="AE1",
        term="Fatigue",
        meddra_code=10016256,
        grade=2,
        onset_date=dt.date(2024, 3, 1),
        attribution_cfrt=U,
        attribution_ldrt=U,
        attribution_io=U,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# --- grades


def test_an_undefined_grade_is_refused_with_the_grades_the_term_allows():
    with pytest.raises(ValidationError) as info:
        check_grade(D.get("Fatigue"), 4)
    assert info.value.reason == "Fatigue: grade 4 is not defined in CTCAE v5.0 (Fatigue allows grades 1-3)"


@pytest.mark.parametrize(
    ("term", "grade", "accepted"),
    [
        ("Fatigue", 3, True),
        ("Fatigue", 5, False),
        ("Myocarditis", 1, False),
        ("Myocarditis", 2, True),
        ("Acute kidney injury", 2, False),
        ("Acute kidney injury", 3, True),
        ("Disease progression", 4, False),
        ("Disease progression", 5, True),
        ("Thyroid stimulating hormone increased", 2, False),
        ("Pneumonitis", 5, True),
        ("Pneumonitis", 0, False),
        ("Pneumonitis", 6, False),
    ],
)
def test_a_grade_is_accepted_only_where_the_term_defines_it(term, grade, accepted):
    if accepted:
        check_grade(D.get(term), grade)
    else:
        with pytest.raises(ValidationError):
            check_grade(D.get(term), grade)


def test_a_valid_record_has_no_problems():
    assert check_adverse_event(ae(), D) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"term": "Tiredness"}, "term"),
        ({"meddra_code": 10035742}, "meddra_code"),
        ({"grade": 4}, "grade"),
        ({"baseline_grade": 4}, "baseline_grade"),
        ({"resolution_date": dt.date(2024, 2, 28)}, "resolution_date"),
        ({"term": "Hepatobiliary disorders - Other, specify", "meddra_code": 10019805}, "verbatim"),
        ({"outcome": AeOutcome.FATAL}, "grade"),
        (
            {
                "awareness_at": dt.datetime(2024, 3, 2, 9),
                "reported_at": dt.datetime(2024, 3, 2, 8),
            },
            "reported_at",
        ),
    ],
)
def test_each_inconsistency_is_named_by_its_field(changes, field):
    assert [p.field for p in check_adverse_event(ae(**changes), D)] == [field]


def test_grade_5_needs_a_fatal_outcome_and_the_death_criterion():
    record = ae(term="Pneumonitis", meddra_code=10035742, grade=5)
    assert {p.field for p in check_adverse_event(record, D)} == {"outcome", "serious_death"}
    fixed = dataclasses.replace(record, outcome=AeOutcome.FATAL, serious_death=True)
    assert check_adverse_event(fixed, D) == []


def test_onset_on_the_resolution_day_is_allowed():
    assert check_adverse_event(ae(resolution_date=dt.date(2024, 3, 1)), D) == []


# --- seriousness (ICH E2A)


@pytest.mark.parametrize(
    ("flag", "criterion"),
    [
        ("serious_death", SeriousnessCriterion.DEATH),
        ("serious_life_threatening", SeriousnessCriterion.LIFE_THREATENING),
        ("serious_hospitalisation", SeriousnessCriterion.HOSPITALISATION),
        ("serious_disability", SeriousnessCriterion.DISABILITY),
        ("serious_congenital", SeriousnessCriterion.CONGENITAL_ANOMALY),
        ("serious_medically_important", SeriousnessCriterion.MEDICALLY_IMPORTANT),
    ],
)
def test_each_of_the_six_e2a_criteria_alone_makes_the_event_serious(flag, criterion):
    record = ae(**{flag: True})
    assert is_serious(record)
    assert seriousness_criteria(record) == (criterion,)


def test_seriousness_is_not_severity_a_grade_3_event_without_criteria_is_not_serious():
    assert not is_serious(ae(grade=3))


def test_a_grade_2_event_with_hospitalisation_is_serious():
    assert is_serious(ae(grade=2, serious_hospitalisation=True))


# --- attribution


@pytest.mark.parametrize(("level", "related"), [(U, False), (UL, False), (PO, True), (PR, True), (DE, True)])
def test_possible_probable_and_definite_are_treatment_related(level, related):
    assert relatedness(ae(attribution_io=level)).io is related


def test_attribution_is_kept_per_component_and_any_is_at_least_one():
    rel = relatedness(ae(attribution_cfrt=PR, attribution_ldrt=U, attribution_io=UL))
    assert (rel.cfrt, rel.ldrt, rel.io, rel.any) == (True, False, False, True)


def test_a_missing_attribution_is_analysed_as_related_and_flagged():
    rel = relatedness(ae(attribution_ldrt=None), "related")
    assert rel.ldrt and rel.missing == (Component.LDRT,)
    assert any("attribution to LDRT is missing" in q for q in data_queries(ae(attribution_ldrt=None)))


def test_a_missing_attribution_can_be_analysed_as_unrelated_by_protocol_option():
    rel = relatedness(ae(attribution_ldrt=None), "unrelated")
    assert not rel.ldrt and rel.missing == (Component.LDRT,)


def test_a_missing_grade_raises_a_query():
    assert any("grade is missing" in q for q in data_queries(ae(grade=None)))


# --- treatment emergence (anchor 2024-03-01, last dose 2024-04-10)

EXPOSURE = Exposure(anchor=dt.date(2024, 3, 1), last_dose=dt.date(2024, 4, 10))


@pytest.mark.parametrize(
    ("changes", "emergent"),
    [
        ({"onset_date": dt.date(2024, 2, 29)}, False),  # the day before the anchor
        ({"onset_date": dt.date(2024, 3, 1)}, True),  # on the anchor day
        ({"onset_date": dt.date(2024, 5, 10)}, True),  # last dose + 30 days
        ({"onset_date": dt.date(2024, 5, 11)}, False),  # last dose + 31 days
        ({"onset_date": dt.date(2024, 7, 9), "serious_hospitalisation": True}, True),  # SAE: + 90 days
        ({"onset_date": dt.date(2024, 7, 10), "serious_hospitalisation": True}, False),  # + 91 days
        ({"onset_date": dt.date(2024, 6, 1), "immune_related": True}, True),  # irAE: 90-day window
        ({"onset_date": dt.date(2024, 2, 1), "baseline_grade": 1, "grade": 2}, True),  # pre-existing, worse
        ({"onset_date": dt.date(2024, 2, 1), "baseline_grade": 2, "grade": 2}, False),  # pre-existing, same
        ({"onset_date": dt.date(2024, 3, 20), "baseline_grade": 2, "grade": 2}, False),  # persisting after anchor
    ],
)
def test_treatment_emergence_follows_the_anchor_windows_and_worsening_rules(changes, emergent):
    assert is_treatment_emergent(ae(**changes), EXPOSURE, OPTIONS) is emergent


def test_while_still_on_treatment_there_is_no_upper_window():
    assert is_treatment_emergent(ae(onset_date=dt.date(2025, 1, 1)), Exposure(dt.date(2024, 3, 1)), OPTIONS)


def test_a_patient_without_rt_has_no_treatment_emergent_events():
    decision = treatment_emergence(ae(), None, OPTIONS)
    assert not decision.emergent
    assert "safety population" in decision.reason


def _fraction(day: int, status: FractionStatus = FractionStatus.DELIVERED) -> Fraction:
    return Fraction("P1", "L1", day, dt.date(2024, 3, day), 2.0, status)


def test_the_default_anchor_is_the_first_delivered_rt_fraction():
    fractions = [_fraction(4, FractionStatus.MISSED), _fraction(5), _fraction(6)]
    cycles = [ImmunotherapyCycle("P1", 1, dt.date(2024, 3, 1), "pembrolizumab")]
    exposure = exposure_for("first_rt_fraction", fractions, cycles)
    assert exposure == Exposure(dt.date(2024, 3, 5), dt.date(2024, 3, 6))


def test_the_last_dose_includes_immunotherapy_given_after_the_anchor():
    cycles = [ImmunotherapyCycle("P1", 2, dt.date(2024, 3, 22), "pembrolizumab")]
    assert exposure_for("first_rt_fraction", [_fraction(5)], cycles).last_dose == dt.date(2024, 3, 22)


def test_first_study_treatment_anchor_takes_an_earlier_on_study_immunotherapy_cycle():
    cycles = [ImmunotherapyCycle("P1", 1, dt.date(2024, 3, 2), "pembrolizumab")]
    exposure = exposure_for("first_study_treatment", [_fraction(5)], cycles, enrolment_date=dt.date(2024, 3, 1))
    assert exposure is not None and exposure.anchor == dt.date(2024, 3, 2)


def test_no_rt_fraction_means_no_exposure():
    assert exposure_for("first_rt_fraction", [_fraction(5, FractionStatus.MISSED)]) is None


@pytest.mark.parametrize(
    ("year", "month", "resolution", "expected"),
    [
        (2024, 3, None, dt.date(2024, 3, 5)),  # the month contains the anchor: counted as TE
        (2024, 2, None, dt.date(2024, 2, 1)),  # an earlier month proves onset before the anchor
        (2024, 4, None, dt.date(2024, 4, 1)),
        (2024, None, None, dt.date(2024, 3, 5)),
        (2024, 3, dt.date(2024, 3, 2), dt.date(2024, 3, 1)),  # resolved before the anchor: not TE
    ],
)
def test_a_partial_onset_date_is_imputed_so_it_counts_as_te_unless_known_dates_prove_otherwise(
    year, month, resolution, expected
):
    assert impute_onset(year, month, None, dt.date(2024, 3, 5), resolution) == expected


# --- expedited reporting

AWARE = dt.datetime(2024, 3, 2, 9, 0)


def test_an_unreported_sae_past_24_hours_from_awareness_is_overdue():
    status = sae_report_status(ae(serious_hospitalisation=True, awareness_at=AWARE), 24, AWARE + dt.timedelta(hours=25))
    assert status.required and status.overdue
    assert status.due_at == dt.datetime(2024, 3, 3, 9, 0)


def test_an_unreported_sae_within_24_hours_is_due_not_overdue():
    status = sae_report_status(ae(serious_hospitalisation=True, awareness_at=AWARE), 24, AWARE + dt.timedelta(hours=24))
    assert status.required and not status.overdue


def test_an_sae_reported_after_24_hours_is_late():
    record = ae(serious_hospitalisation=True, awareness_at=AWARE, reported_at=AWARE + dt.timedelta(hours=30))
    status = sae_report_status(record, 24, AWARE + dt.timedelta(days=5))
    assert status.late and not status.overdue


def test_a_non_serious_event_needs_no_expedited_report():
    assert not sae_report_status(ae(grade=3), 24, AWARE).required


def test_an_sae_without_awareness_time_is_queried():
    assert any("aware" in q for q in data_queries(ae(serious_life_threatening=True)))
