"""Leaving the study (web.md §4: off study as completed, progressed, withdrawn, died or lost to follow-up)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from abscopal import domain as d
from abscopal.errors import ValidationError
from abscopal.messages import N_, Message
from abscopal.protocol.model import ProtocolFile
from abscopal.services.common import (
    Action,
    Actor,
    authorise,
    check_values,
    patient_of,
    protocols_or_bundled,
    site_today,
)
from abscopal.services.ports import UnitOfWorkLike
from abscopal.store.records import Stored

OFF_STUDY = {
    d.PatientStatus.COMPLETED,
    d.PatientStatus.WITHDRAWN,
    d.PatientStatus.LOST_TO_FOLLOW_UP,
    d.PatientStatus.DIED,
}
_ON_STUDY = {d.PatientStatus.ENROLLED, d.PatientStatus.ON_TREATMENT, d.PatientStatus.FOLLOW_UP}


def end_study(
    uow: UnitOfWorkLike, actor: Actor, subject_id: str, *, version: int, status: d.PatientStatus, on: dt.date,
    death_cause: str | None = None, protocols: ProtocolFile | None = None, at: dt.datetime | None = None,
) -> Stored[d.Patient]:  # fmt: skip
    """An enrolled patient leaves the study on ``on`` (an investigator's decision); the calendar stops there.

    ``died`` records the death date (and cause), ``withdrawn`` the withdrawal date, ``lost_to_follow_up`` and
    ``completed`` the last contact; the shared schema then checks the dates (after enrolment, not in the future).
    """
    authorise(uow, actor, Action.ENROL)
    patient = patient_of(uow, actor, subject_id)
    if status not in OFF_STUDY:
        allowed = ", ".join(sorted(s.value for s in OFF_STUDY))
        raise ValidationError(
            "status",
            Message(N_("{status} is not a way of leaving the study (one of {allowed})"), status=status.value,
                    allowed=allowed),
        )  # fmt: skip
    if patient.value.status not in _ON_STUDY:
        raise ValidationError(
            "status",
            Message(N_("{subject} is {status}, not on study"), subject=subject_id, status=patient.value.status.value),
        )
    if status is d.PatientStatus.DIED:
        changed = dataclasses.replace(patient.value, status=status, death_date=on, death_cause=death_cause)
    elif status is d.PatientStatus.WITHDRAWN:
        changed = dataclasses.replace(patient.value, status=status, withdrawal_date=on)
    else:
        changed = dataclasses.replace(patient.value, status=status, last_contact_date=on)
    if patient.value.enrolment_date is not None and on < patient.value.enrolment_date:
        raise ValidationError(
            "date",
            Message(N_("{date} is before the enrolment on {enrolled}"), date=str(on),
                    enrolled=str(patient.value.enrolment_date)),
        )  # fmt: skip
    protocol = protocols_or_bundled(protocols).version_on(on)
    check_values(changed, protocol, site_today(uow, patient.value, at))
    stored = uow.patients.update(patient.id, changed, version=version)
    uow.commit()
    return stored
