"""Queries, SDV, locks, signatures, AEs and questionnaires (web.md §2, §3, §5)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from abscopal import domain as d
from abscopal.errors import PermissionDenied, RecordLocked, ValidationError
from abscopal.services import lesions, locking, monitoring, queries, questionnaires, safety, signing
from abscopal.services.common import StaffRole
from abscopal.services.ports import REPOSITORY_OF_ENTITY
from abscopal.store.tables import REPOSITORY_NAMES
from abscopal.store.unit_of_work import UnitOfWork


def _lesion(trial: Any) -> Any:
    return trial.act(trial.RADIOLOGIST, lesions.record_lesion, trial.lesion("L1", 30.0))


def test_the_entity_map_is_the_stores() -> None:
    assert {v: k for k, v in REPOSITORY_NAMES.items()} == REPOSITORY_OF_ENTITY
    assert all(hasattr(UnitOfWork, a) or a in UnitOfWork.__annotations__ for a in REPOSITORY_NAMES)


def test_a_monitor_cannot_close_another_monitors_query(trial: Any) -> None:
    raised = trial.act(trial.DATA_MANAGER, queries.raise_query, "S-001", "lesions", "location", "Which lobe?")
    with pytest.raises(PermissionDenied, match="only the queries they raised"):
        trial.act(trial.MONITOR, queries.close_query, raised.id, version=raised.version)


def test_an_answered_query_closes_with_who_and_when(trial: Any) -> None:
    raised = trial.act(trial.MONITOR, queries.raise_query, "S-001", "lesions", "location", "Which lobe?")
    answered = trial.act(trial.COORDINATOR, queries.answer_query, raised.id, version=1, answer="right upper")
    closed = trial.act(trial.MONITOR, queries.close_query, raised.id, version=answered.version)
    assert (closed.value.status, closed.value.closed_by, closed.value.closed_at) == (
        d.QueryStatus.CLOSED,
        trial.MONITOR.username,
        trial.AT,
    )


def test_reopening_a_query_needs_a_reason(trial: Any) -> None:
    raised = trial.act(trial.DATA_MANAGER, queries.raise_query, "S-001", "lesions", "location", "Which lobe?")
    closed = trial.act(trial.DATA_MANAGER, queries.close_query, raised.id, version=1)
    with pytest.raises(ValidationError, match="reason"):
        trial.act(trial.DATA_MANAGER, queries.reopen_query, raised.id, version=closed.version, reason=" ")


def test_an_edit_clears_the_sdv_mark(trial: Any) -> None:
    stored = _lesion(trial)
    trial.act(trial.MONITOR, monitoring.mark_sdv, "lesions", stored.id, version=1)
    trial.act(trial.RADIOLOGIST, lesions.record_lesion, trial.lesion("L1", 31.0), record_id=stored.id, version=1)
    assert trial.read().sdv_marks.all() == []


def test_unlocking_needs_a_reason(trial: Any) -> None:
    lock = trial.act(trial.DATA_MANAGER, locking.lock_patient, "S-001", reason="database lock")
    with pytest.raises(ValidationError, match="reason"):
        trial.act(trial.DATA_MANAGER, locking.unlock, lock.id, version=lock.version, reason="")
    assert len(trial.read().locks.all()) == 1


def test_a_locked_record_refuses_an_edit(trial: Any) -> None:
    stored = _lesion(trial)
    trial.act(trial.DATA_MANAGER, locking.lock_record, "lesions", stored.id, reason="verified")
    with pytest.raises(RecordLocked):
        trial.act(trial.RADIOLOGIST, lesions.record_lesion, trial.lesion("L1", 31.0), record_id=stored.id, version=1)


def test_only_the_pi_signs_the_casebook(trial: Any) -> None:
    patient = trial.read().patients.find(subject_id="S-001")
    not_pi = dataclasses.replace(trial.INVESTIGATOR, pi=False)
    with pytest.raises(PermissionDenied, match="principal investigator"):
        trial.act(not_pi, signing.sign_record, "patients", patient.id, version=1, meaning=signing.Meaning.APPROVED)


def test_an_edit_voids_the_signature_on_the_record(trial: Any) -> None:
    stored = _lesion(trial)
    sig = trial.act(
        trial.RADIOLOGIST, signing.sign_record, "lesions", stored.id, version=1, meaning=signing.Meaning.AUTHORED
    )
    assert signing.signature_holds(trial.read(), sig.id)
    trial.act(trial.RADIOLOGIST, lesions.record_lesion, trial.lesion("L1", 31.0), record_id=stored.id, version=1)
    assert not signing.signature_holds(trial.read(), sig.id)


def test_the_signature_hash_changes_with_the_record_content(trial: Any) -> None:
    stored = _lesion(trial)
    changed = dataclasses.replace(stored, value=dataclasses.replace(stored.value, baseline_diameter_mm=31.0))
    assert signing.content_hash("lesions", stored) != signing.content_hash("lesions", changed)


def _ae(**kw: Any) -> d.AdverseEvent:
    base = d.AdverseEvent("S-001", "AE1", "Fatigue", 10016256, None, dt.date(2024, 4, 1))
    return dataclasses.replace(base, **kw)


def test_a_coordinator_cannot_grade_an_adverse_event(trial: Any) -> None:
    with pytest.raises(PermissionDenied, match="grade"):
        trial.act(trial.COORDINATOR, safety.record_adverse_event, _ae(grade=2))


def test_a_radiation_oncologist_records_only_rt_related_events(trial: Any) -> None:
    with pytest.raises(PermissionDenied, match="radiotherapy-related"):
        trial.act(trial.RADONC, safety.record_adverse_event, _ae(grade=1, attribution_io=d.Attribution.PROBABLE))


def test_an_adverse_event_resolving_before_onset_is_refused(trial: Any) -> None:
    with pytest.raises(ValidationError, match="resolution_date"):
        trial.act(trial.INVESTIGATOR, safety.record_adverse_event, _ae(grade=1, resolution_date=dt.date(2024, 3, 1)))


def test_a_coordinator_enters_a_paper_questionnaire_only_with_a_reason(trial: Any) -> None:
    with pytest.raises(ValidationError, match="on_behalf_reason"):
        trial.act(
            trial.COORDINATOR, questionnaires.record_questionnaire, "S-001", "week_6", d.Instrument.QLQ_C30, {1: 1},
            completed_on=dt.date(2024, 4, 12),
        )  # fmt: skip


def test_a_questionnaire_is_scored_once_every_item_is_recorded(trial: Any) -> None:
    patient = dataclasses.replace(trial.COORDINATOR, username="S-001", role=StaffRole.PATIENT, subject_id="S-001")
    half = {i: 1 for i in range(1, 16)}
    first = trial.act(
        patient, questionnaires.record_questionnaire, "S-001", "week_6", d.Instrument.QLQ_C30, half,
        completed_on=dt.date(2024, 4, 12),
    )  # fmt: skip
    assert (first.complete, first.scores) == (False, ())
    rest = {i: 1 for i in range(16, 29)} | {29: 7, 30: 7}
    done = trial.act(
        patient, questionnaires.record_questionnaire, "S-001", "week_6", d.Instrument.QLQ_C30, rest,
        completed_on=dt.date(2024, 4, 12),
    )  # fmt: skip
    scores = {s.scale: s.score for s in done.scores}
    # every item at its best answer: functioning and global health 100, symptoms 0 (EORTC scoring manual)
    assert (done.complete, scores["QL2"], scores["PF2"], scores["FA"]) == (True, 100.0, 100.0, 0.0)


def test_a_questionnaire_at_a_visit_off_the_protocol_schedule_is_refused_naming_the_visit(trial: Any) -> None:
    patient = dataclasses.replace(trial.COORDINATOR, username="S-001", role=StaffRole.PATIENT, subject_id="S-001")
    with pytest.raises(ValidationError, match="visit: 'W6' is not a visit of the protocol schedule"):
        trial.act(
            patient, questionnaires.record_questionnaire, "S-001", "W6", d.Instrument.QLQ_C30, {1: 1},
            completed_on=dt.date(2024, 4, 12),
        )  # fmt: skip


def test_a_query_on_a_kind_of_record_that_does_not_exist_is_refused_naming_it(trial: Any) -> None:
    with pytest.raises(ValidationError, match="'lesion_sizes' is not a kind of trial record"):
        trial.act(trial.DATA_MANAGER, queries.raise_query, "S-001", "lesion_sizes", "location", "Which lobe?")
