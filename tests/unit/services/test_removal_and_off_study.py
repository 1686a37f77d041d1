"""Removing a record (logical, with a reason, by who may write it) and leaving the study (web.md §3, §4)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from abscopal import domain as d
from abscopal.errors import ConflictError, NotFound, PermissionDenied, ValidationError
from abscopal.services import follow_up, records


def _patient(trial: Any) -> Any:
    found = trial.read().patients.find(subject_id="S-001")
    assert found is not None
    return found


def test_a_removed_lesion_is_no_longer_read_and_keeps_its_reason(trial: Any) -> None:
    (lesion_id,) = trial.seed(trial.lesion("L1"))
    trial.act(trial.RADIOLOGIST, records.remove_record, "lesions", lesion_id, version=1, reason="wrong patient")
    uow = trial.read()
    assert uow.lesions.all() == []
    assert uow.lesions.get(lesion_id, include_removed=True).removed_reason == "wrong patient"


def test_removing_needs_a_reason(trial: Any) -> None:
    (lesion_id,) = trial.seed(trial.lesion("L1"))
    with pytest.raises(ValidationError, match="reason"):
        trial.act(trial.RADIOLOGIST, records.remove_record, "lesions", lesion_id, version=1, reason="  ")


def test_only_someone_who_may_write_the_record_may_remove_it(trial: Any) -> None:
    (lesion_id,) = trial.seed(trial.lesion("L1"))
    with pytest.raises(PermissionDenied, match="lesions: registry"):
        trial.act(trial.MONITOR, records.remove_record, "lesions", lesion_id, version=1, reason="x")


def test_removing_a_stale_version_is_a_conflict(trial: Any) -> None:
    (lesion_id,) = trial.seed(trial.lesion("L1"))
    with pytest.raises(ConflictError):
        trial.act(trial.RADIOLOGIST, records.remove_record, "lesions", lesion_id, version=7, reason="x")


def test_removing_a_missing_record_is_not_found(trial: Any) -> None:
    with pytest.raises(NotFound):
        trial.act(trial.RADIOLOGIST, records.remove_record, "lesions", "nope", version=1, reason="x")


def test_a_patient_who_died_leaves_the_study_with_the_death_date(enrolled: Any) -> None:
    p = _patient(enrolled)
    stored = enrolled.act(
        enrolled.INVESTIGATOR, follow_up.end_study, "S-001", version=p.version, status=d.PatientStatus.DIED,
        on=dt.date(2024, 5, 2), death_cause="disease progression",
    )  # fmt: skip
    assert (stored.value.status, stored.value.death_date) == (d.PatientStatus.DIED, dt.date(2024, 5, 2))


def test_leaving_the_study_before_enrolment_is_refused(enrolled: Any) -> None:
    p = _patient(enrolled)
    with pytest.raises(ValidationError, match="before the enrolment"):
        enrolled.act(
            enrolled.INVESTIGATOR, follow_up.end_study, "S-001", version=p.version,
            status=d.PatientStatus.WITHDRAWN, on=dt.date(2024, 2, 1),
        )  # fmt: skip


def test_a_patient_at_screening_cannot_leave_the_study(trial: Any) -> None:
    p = _patient(trial)
    with pytest.raises(ValidationError, match="not on study"):
        trial.act(
            trial.INVESTIGATOR, follow_up.end_study, "S-001", version=p.version,
            status=d.PatientStatus.COMPLETED, on=dt.date(2024, 5, 1),
        )  # fmt: skip


def test_enrolled_is_not_a_way_of_leaving_the_study(enrolled: Any) -> None:
    p = _patient(enrolled)
    with pytest.raises(ValidationError, match="not a way of leaving"):
        enrolled.act(
            enrolled.INVESTIGATOR, follow_up.end_study, "S-001", version=p.version,
            status=d.PatientStatus.ENROLLED, on=dt.date(2024, 5, 1),
        )  # fmt: skip
