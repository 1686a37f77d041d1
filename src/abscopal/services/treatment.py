"""Treatment given: radiotherapy fractions and immunotherapy cycles (web.md §4).

Recording a fraction re-runs the radiotherapy engine's delivery checks for its lesion and records each failed
check as a protocol deviation with the engine's class (radiotherapy.md §2), in the same transaction.
"""

from __future__ import annotations

import datetime as dt

from abscopal import domain as d
from abscopal.errors import ValidationError
from abscopal.messages import N_, Message
from abscopal.protocol.model import ProtocolFile
from abscopal.services.common import (
    Action,
    Actor,
    add_or_update,
    authorise,
    check_values,
    patient_of,
    protocol_of,
    site_today,
)
from abscopal.services.lesions import RadiotherapyRecorded, record_rt_deviations
from abscopal.services.ports import UnitOfWorkLike
from abscopal.store.records import Stored

_ON_STUDY = (d.PatientStatus.ENROLLED, d.PatientStatus.ON_TREATMENT)


def _refuse_not_on_study(patient: d.Patient, field: str) -> None:
    if patient.status not in _ON_STUDY:
        raise ValidationError(
            field,
            Message(
                N_("{subject} is {status}: treatment needs an enrolled patient"),
                subject=patient.subject_id,
                status=patient.status.value,
            ),
        )


def record_fraction(
    uow: UnitOfWorkLike, actor: Actor, fraction: d.Fraction, *, record_id: str | None = None,
    version: int | None = None, protocols: ProtocolFile | None = None, at: dt.datetime | None = None,
) -> RadiotherapyRecorded:  # fmt: skip
    """Add or edit one fraction (a radiation oncologist); deviations it causes are recorded automatically."""
    authorise(uow, actor, Action.RADIOTHERAPY)
    patient = patient_of(uow, actor, fraction.subject_id)
    _refuse_not_on_study(patient.value, "fraction")
    today = site_today(uow, patient.value, at)
    protocol = protocol_of(patient.value, protocols, today)
    check_values(fraction, protocol, today)
    if uow.lesions.find(subject_id=fraction.subject_id, lesion_id=fraction.lesion_id) is None:
        raise ValidationError(
            "lesion_id",
            Message(N_("{subject} has no lesion {lesion}"), subject=fraction.subject_id, lesion=fraction.lesion_id),
        )
    stored = add_or_update(uow.fractions, fraction, record_id, version)
    checks, deviations = record_rt_deviations(
        uow, fraction.subject_id, fraction.lesion_id, protocol, fraction.date, actor.username
    )
    uow.commit()
    return RadiotherapyRecorded(stored, checks, deviations)


def record_immunotherapy_cycle(
    uow: UnitOfWorkLike, actor: Actor, cycle: d.ImmunotherapyCycle, *, record_id: str | None = None,
    version: int | None = None, protocols: ProtocolFile | None = None, at: dt.datetime | None = None,
) -> Stored[d.ImmunotherapyCycle]:  # fmt: skip
    """Add or edit one immunotherapy cycle (a coordinator or investigator)."""
    authorise(uow, actor, Action.IMMUNOTHERAPY)
    patient = patient_of(uow, actor, cycle.subject_id)
    _refuse_not_on_study(patient.value, "cycle")
    today = site_today(uow, patient.value, at)
    check_values(cycle, protocol_of(patient.value, protocols, today), today)
    if cycle.cycle_number < 1:
        raise ValidationError("cycle_number", Message(N_("cycles are numbered from 1")))
    if cycle.date > today:
        raise ValidationError("date", Message(N_("{date} is in the future"), date=str(cycle.date)))
    stored = add_or_update(uow.immunotherapy_cycles, cycle, record_id, version)
    uow.commit()
    return stored
