"""Analysis sets and the reference date use the one definition of what was given (hand-made records).

S1: RT fraction on 10 Jan and an immunotherapy cycle on 8 Jan (enrolled 5 Jan): reference 8 Jan.
S2: only a missed fraction: enrolled, not treated.
S3: a cycle on 2 Jan before enrolment on 5 Jan (prior therapy) and an RT fraction on 12 Jan: reference 12 Jan.
S4: immunotherapy only (9 Jan): treated, reference 9 Jan, not in the safety population.
"""

from __future__ import annotations

import datetime as dt

from abscopal import domain as d
from abscopal.analysis.cutoff import TrialData
from abscopal.analysis.endpoints import subject_facts
from abscopal.analysis.populations import populations
from abscopal.safety import safety_population

JAN = [dt.date(2024, 1, day) for day in range(1, 32)]


def patient(sid: str) -> d.Patient:
    return d.Patient(sid, "QFS", d.Sex.MALE, dt.date(1960, 1, 1), "1.0", d.PatientStatus.ON_TREATMENT, JAN[4])


DATA = TrialData(
    patients=[patient(s) for s in ("S1", "S2", "S3", "S4")],
    fractions=[
        d.Fraction("S1", "L1", 1, JAN[9], 2.0),
        d.Fraction("S2", "L1", 1, JAN[9], 0.0, d.FractionStatus.MISSED),
        d.Fraction("S3", "L1", 1, JAN[11], 2.0),
    ],
    cycles=[
        d.ImmunotherapyCycle("S1", 1, JAN[7], "toripalimab"),
        d.ImmunotherapyCycle("S3", 1, JAN[1], "toripalimab"),
        d.ImmunotherapyCycle("S4", 1, JAN[8], "toripalimab"),
    ],
)


def test_a_patient_whose_only_fraction_was_missed_is_not_treated():
    assert populations(DATA, ()).treated == ("S1", "S3", "S4")


def test_the_reference_date_is_the_first_study_treatment_of_either_kind():
    assert subject_facts(DATA, ["S1"])["S1"].reference_date == JAN[7]


def test_a_cycle_before_enrolment_is_not_the_reference_date():
    assert subject_facts(DATA, ["S3"])["S3"].reference_date == JAN[11]


def test_a_patient_given_nothing_has_no_reference_date():
    assert subject_facts(DATA, ["S2"])["S2"].reference_date is None


def test_the_safety_population_passed_in_is_the_analysis_safety_set():
    safety = safety_population(DATA.patients, DATA.fractions).subjects or ()
    assert populations(DATA, safety).safety == ("S1", "S3")
