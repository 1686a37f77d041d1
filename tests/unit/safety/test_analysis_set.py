"""The safety population and analysis set, defined once in :mod:`abscopal.safety.analysis_set` (ae-qol.md A4).

Hand-made patients: S1 had two RT fractions, S2 only a missed fraction, S3 only immunotherapy; the bundled
protocol anchors treatment emergence on the first RT fraction (window 30 days after the last dose).
"""

from __future__ import annotations

import datetime as dt

from abscopal import domain as d
from abscopal.protocol.model import load_bundled
from abscopal.safety.analysis_set import safety_analysis_set, safety_population
from abscopal.safety.events import in_safety_population

OPTIONS = load_bundled().current.safety
DAY = [dt.date(2024, 2, 1) + dt.timedelta(days=i) for i in range(60)]


def patient(sid: str) -> d.Patient:
    return d.Patient(sid, "QFS", d.Sex.MALE, dt.date(1960, 1, 1), "1.0", d.PatientStatus.FOLLOW_UP, DAY[0])


FRACTIONS = [
    d.Fraction("S1", "L1", 1, DAY[2], 2.0),
    d.Fraction("S1", "L1", 2, DAY[3], 2.0),
    d.Fraction("S2", "L1", 1, DAY[2], 0.0, d.FractionStatus.MISSED),
]
CYCLES = [d.ImmunotherapyCycle("S3", 1, DAY[2], "toripalimab")]
PATIENTS = [patient("S1"), patient("S2"), patient("S3")]


def ae(sid: str, onset: dt.date) -> d.AdverseEvent:
    return d.AdverseEvent(sid, f"{sid}-1", "Fatigue", 10025482, 1, onset)


def test_a_patient_with_a_delivered_fraction_is_in_the_safety_population():
    assert in_safety_population(FRACTIONS[:1])


def test_a_patient_whose_only_fraction_was_missed_is_not_in_the_safety_population():
    assert not in_safety_population(FRACTIONS[2:])


def test_the_safety_population_is_the_patients_given_radiotherapy():
    assert safety_population(PATIENTS, FRACTIONS).subjects == frozenset({"S1"})


def test_immunotherapy_alone_does_not_enter_the_safety_population():
    assert safety_population([patient("S3")], FRACTIONS).size == 0


def test_only_the_safety_population_has_an_exposure():
    result = safety_analysis_set(PATIENTS, FRACTIONS, CYCLES, [], OPTIONS)
    assert set(result.exposures) == {"S1"}


def test_an_event_of_a_patient_outside_the_population_is_not_treatment_emergent():
    result = safety_analysis_set(PATIENTS, FRACTIONS, CYCLES, [ae("S3", DAY[5])], OPTIONS)
    assert (result.events, result.excluded_not_emergent) == ([], 1)


def test_an_event_after_the_first_fraction_is_kept():
    event = ae("S1", DAY[5])
    assert safety_analysis_set(PATIENTS, FRACTIONS, CYCLES, [event], OPTIONS).events == [event]
