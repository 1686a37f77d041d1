"""Screening: register a patient, record the screening data and prior immunotherapy (web.md §4, first step).

Coordinators and investigators write these (web.md §2); every value passes the shared value rules
(:mod:`abscopal.validation`) and the result shows the eligibility checklist as it now stands.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from abscopal import domain as d
from abscopal.errors import ValidationError
from abscopal.messages import N_, Message
from abscopal.protocol import eligibility, resistance
from abscopal.protocol.model import ProtocolFile
from abscopal.services.common import (
    Action,
    Actor,
    add_or_update,
    authorise,
    check_values,
    patient_of,
    protocol_of,
    protocols_or_bundled,
    site_today,
)
from abscopal.services.ports import UnitOfWorkLike
from abscopal.store.records import Stored


@dataclass(frozen=True)
class ScreeningRecorded:
    """The stored screening and the eligibility checklist it gives now (unknown criteria listed)."""

    screening: Stored[d.Screening]
    checklist: eligibility.Checklist


def register_patient(
    uow: UnitOfWorkLike, actor: Actor, patient: d.Patient, *, protocols: ProtocolFile | None = None,
    at: dt.datetime | None = None,
) -> Stored[d.Patient]:  # fmt: skip
    """Register a person for screening at one of the actor's sites; status is ``screening`` until enrolment."""
    authorise(uow, actor, Action.SCREENING)
    if patient.site_code not in actor.sites:
        raise ValidationError("site_code", Message(N_("{site} is not one of your sites"), site=repr(patient.site_code)))
    if patient.status is not d.PatientStatus.SCREENING or patient.enrolment_date is not None:
        raise ValidationError("status", Message(N_("a new patient starts at screening; enrolment is its own step")))
    today = site_today(uow, patient, at)
    protocol = protocols_or_bundled(protocols).version_on(today)
    patient = dataclasses.replace(patient, protocol_version=protocol.version.number)
    check_values(patient, protocol, today)
    stored = uow.patients.add(patient)
    uow.commit()
    return stored


def record_screening(
    uow: UnitOfWorkLike, actor: Actor, screening: d.Screening, *, record_id: str | None = None,
    version: int | None = None, protocols: ProtocolFile | None = None, at: dt.datetime | None = None,
) -> ScreeningRecorded:  # fmt: skip
    """Add the screening (no ``record_id``) or edit it (``record_id`` + the ``version`` it was based on)."""
    authorise(uow, actor, Action.SCREENING)
    patient = patient_of(uow, actor, screening.subject_id)
    today = site_today(uow, patient.value, at)
    protocol = protocol_of(patient.value, protocols, screening.screening_date)
    check_values(screening, protocol, today)
    stored = add_or_update(uow.screenings, screening, record_id, version)
    checklist = eligibility.evaluate(stored.value, protocol.eligibility, protocol.version.number)
    uow.commit()
    return ScreeningRecorded(stored, checklist)


def record_immunotherapy_history(
    uow: UnitOfWorkLike, actor: Actor, history: d.ImmunotherapyHistory, *, record_id: str | None = None,
    version: int | None = None, protocols: ProtocolFile | None = None, at: dt.datetime | None = None,
) -> Stored[d.ImmunotherapyHistory]:  # fmt: skip
    """Add or edit one prior immunotherapy (the data the resistance classification reads)."""
    authorise(uow, actor, Action.SCREENING)
    patient = patient_of(uow, actor, history.subject_id)
    today = site_today(uow, patient.value, at)
    protocol = protocol_of(patient.value, protocols, today)
    check_values(history, protocol, today)
    resistance.validate_history(history)
    stored = add_or_update(uow.immunotherapy_histories, history, record_id, version)
    uow.commit()
    return stored
