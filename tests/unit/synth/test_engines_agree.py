"""The synthetic data agree with the platform's own engines: eligibility, resistance, radiotherapy checks.

These complement the restatements in the other test files: if an engine and the generator disagree, one of
them has misread the protocol.
"""

from __future__ import annotations

import pytest

from abscopal.domain import LesionClass
from abscopal.protocol.model import Protocol
from abscopal.synth import Cohort

from .conftest import Subject

eligibility = pytest.importorskip("abscopal.protocol.eligibility")
resistance = pytest.importorskip("abscopal.protocol.resistance")
radiotherapy = pytest.importorskip("abscopal.protocol.radiotherapy")
calendar = pytest.importorskip("abscopal.protocol.calendar")


def test_the_eligibility_engine_finds_every_enrolled_patient_eligible_and_every_failure_not(
    protocol: Protocol, subjects: dict[str, Subject]
) -> None:
    for s in subjects.values():
        verdict = eligibility.evaluate(s.screening, protocol.eligibility, protocol.version.number).verdict.value
        if s.enrolled:
            assert verdict == "eligible", s.patient.subject_id
        else:
            assert verdict in ("ineligible", "incomplete"), s.patient.subject_id


def test_the_resistance_engine_proposes_the_adjudicated_class_and_the_signatures_make_it_effective(
    protocol: Protocol, cohort: Cohort, enrolled: list[Subject]
) -> None:
    histories = {h.subject_id: h for h in cohort.immunotherapy_histories}
    adjudications = {a.subject_id: a for a in cohort.adjudications}
    for s in enrolled:
        sid = s.patient.subject_id
        proposed = resistance.classify(histories[sid], protocol.resistance).classification
        assert proposed == adjudications[sid].classification
        assert resistance.is_effective(adjudications[sid], protocol.resistance)


def test_the_radiotherapy_engine_proposes_exactly_the_recorded_deviations(
    protocol: Protocol, enrolled: list[Subject]
) -> None:
    days = calendar.WorkingDays(protocol.schedule.holidays_country, range(2022, 2027))
    for s in enrolled:
        lesions = [x for x in s.lesions if x.lesion_class is not LesionClass.NEW]
        conventional = next(k for k in s.courses if k.role.value == "conventional")
        selection = (conventional.plan_label or "").rsplit("(", 1)[-1].rstrip(")")
        stopped = s.patient.status.value in ("died", "withdrawn", "lost_to_follow_up")
        declined = any("declined" in d.reason for d in s.deviations)
        completed = set()
        for course in s.courses:
            given = [f for f in s.fractions if f.lesion_id == course.lesion_id]
            if given and (
                given[-1].fraction_number == course.fractions or stopped or (declined and course is conventional)
            ):
                completed.add(course.lesion_id)
        report = radiotherapy.check_plan(
            s.patient.subject_id, lesions, s.courses, s.fractions, protocol.radiotherapy, days, selection, completed
        )
        proposed = {(d.lesion_id, d.check, d.deviation_class) for d in report.deviations}
        recorded = {(d.lesion_id, d.check, d.deviation_class) for d in s.deviations}
        assert proposed == recorded, s.patient.subject_id


def test_the_response_engine_sees_the_intended_irecist_events(protocol: Protocol, enrolled: list[Subject]) -> None:
    engine = pytest.importorskip("abscopal.response.engine")
    facts = [
        engine.SubjectFacts(s.patient.subject_id, s.first_fraction, s.patient.death_date, s.patient.new_therapy_date)
        for s in enrolled
    ]
    results = engine.derive_cohort([a for s in enrolled for a in s.assessments], facts, protocol.response)
    for s in enrolled:
        t = s.truth
        overall = {tp.assessment_date: str(tp.overall) for tp in results[s.patient.subject_id].timepoints}
        if t.iupd_date is not None:
            assert overall[t.iupd_date] == "iUPD", s.patient.subject_id
        if t.icpd_date is not None:
            assert overall[t.icpd_date] == "iCPD", s.patient.subject_id
        if t.pseudo_iupd_date is not None:
            assert overall[t.pseudo_iupd_date] == "iUPD", s.patient.subject_id
            after = [v for d, v in sorted(overall.items()) if d > t.pseudo_iupd_date]
            assert not after or after[0] not in ("iUPD", "iCPD"), s.patient.subject_id  # reset, not confirmed
