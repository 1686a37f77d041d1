"""Shared synthetic cohorts for the generator's tests (built once per session: ~2 s for 500 patients)."""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest

from abscopal.domain import (
    AdverseEvent,
    Fraction,
    ImmunotherapyCycle,
    Lesion,
    Patient,
    ProtocolDeviation,
    QuestionnaireAnswer,
    RadiotherapyCourse,
    Screening,
    TumourAssessment,
)
from abscopal.protocol.model import Protocol, load_bundled
from abscopal.synth import Cohort, generate_cohort
from abscopal.synth.cohort import SyntheticTruth

# ABSCOPAL_SYNTH_SEED runs the same rules on another cohort (the rules must hold for every seed).
SEED = int(os.environ.get("ABSCOPAL_SYNTH_SEED", "20240611"))
N = 500
START = dt.date(2022, 12, 31)
CUTOFF = dt.date(2024, 12, 31)


@dataclass
class Subject:
    """Every record of one patient, for per-patient rules."""

    patient: Patient
    screening: Screening
    truth: SyntheticTruth
    lesions: list[Lesion] = field(default_factory=list)
    courses: list[RadiotherapyCourse] = field(default_factory=list)
    fractions: list[Fraction] = field(default_factory=list)
    deviations: list[ProtocolDeviation] = field(default_factory=list)
    assessments: list[TumourAssessment] = field(default_factory=list)
    cycles: list[ImmunotherapyCycle] = field(default_factory=list)
    events: list[AdverseEvent] = field(default_factory=list)
    answers: list[QuestionnaireAnswer] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def enrolled(self) -> bool:
        return self.patient.enrolment_date is not None

    @property
    def first_fraction(self) -> dt.date | None:
        return min((f.date for f in self.fractions), default=None)

    @property
    def end(self) -> dt.date:
        """The last date the patient's data may carry."""
        p = self.patient
        ends = [CUTOFF, p.death_date, p.withdrawal_date]
        if p.status.value == "lost_to_follow_up":
            ends.append(p.last_contact_date)
        return min(d for d in ends if d is not None)


@pytest.fixture(scope="session")
def protocol() -> Protocol:
    return load_bundled().current


@pytest.fixture(scope="session")
def cohort(protocol: Protocol) -> Cohort:
    return generate_cohort(N, SEED, protocol, start_date=START, cutoff_date=CUTOFF)


@pytest.fixture(scope="session")
def subjects(cohort: Cohort) -> dict[str, Subject]:
    screenings = {s.subject_id: s for s in cohort.screenings}
    truths = {t.subject_id: t for t in cohort.truths}
    out = {p.subject_id: Subject(p, screenings[p.subject_id], truths[p.subject_id]) for p in cohort.patients}
    groups: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for name, records in (
        ("lesions", cohort.lesions),
        ("courses", cohort.radiotherapy_courses),
        ("fractions", cohort.fractions),
        ("deviations", cohort.protocol_deviations),
        ("assessments", cohort.tumour_assessments),
        ("cycles", cohort.immunotherapy_cycles),
        ("events", cohort.adverse_events),
        ("answers", cohort.questionnaire_answers),
    ):
        for record in records:
            getattr(out[record.subject_id], name).append(record)
    del groups
    return out


@pytest.fixture(scope="session")
def enrolled(subjects: dict[str, Subject]) -> list[Subject]:
    return [s for s in subjects.values() if s.enrolled]
