"""Eligibility decision and enrolment (web.md §4): refused while any criterion is not met or unknown, or while
the resistance adjudication lacks its signatures; records the protocol version in force that day.

Inclusion criterion 10 (immunotherapy resistance confirmed) is read from the adjudication
(:func:`abscopal.protocol.resistance.resistance_confirmed`), never typed in: unknown until two deputy chief
physicians have signed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from abscopal import domain as d
from abscopal.errors import ValidationError
from abscopal.messages import N_, Message
from abscopal.protocol import eligibility, resistance
from abscopal.protocol.eligibility import Checklist, Status, Verdict
from abscopal.protocol.model import Protocol, ProtocolFile
from abscopal.services.adjudication import current_adjudication
from abscopal.services.common import (
    Action,
    Actor,
    Refused,
    authorise,
    check_values,
    patient_of,
    protocol_of,
    protocols_or_bundled,
    site_today,
)
from abscopal.services.ports import UnitOfWorkLike
from abscopal.store.records import Stored


def _not_at_screening(subject_id: str, status: d.PatientStatus) -> Message:
    return Message(N_("{subject} is {status}, not at screening"), subject=subject_id, status=status.value)


_SECTIONS = {"inclusion": Message(N_("inclusion")), "exclusion": Message(N_("exclusion"))}


def _criterion_reason(r: eligibility.CriterionResult) -> Message:
    """``"inclusion IN3 (ECOG 0-1 ...): ECOG performance status not recorded: unknown (data missing)"``; the
    section, the protocol's label (translated where the catalogs have it) and the engine's reason as messages."""
    label = Message(r.label) if "{" not in r.label else r.label
    return Message(
        N_("{section} {criterion} ({label}): {reason}"),
        section=_SECTIONS.get(r.section, r.section), criterion=r.criterion_id, label=label, reason=r.reason,
    )  # fmt: skip


def _checklist(
    uow: UnitOfWorkLike, subject_id: str, protocol: Protocol, screening: d.Screening | None = None
) -> tuple[Checklist | None, list[str]]:
    """The checklist with the adjudication's datum, and the reasons enrolment would be refused; of the stored
    screening, or of ``screening`` when given (a form's unsaved values)."""
    if screening is None:
        stored = uow.screenings.find(subject_id=subject_id)
        screening = stored.value if stored is not None else None
    adjudication = current_adjudication(uow, subject_id)
    adj = adjudication.value if adjudication else None
    reasons: list[str] = []
    checklist = None
    if screening is None:
        reasons.append(Message(N_("Eligibility has not been checked: there is no screening record")))
    else:
        datum = resistance.resistance_confirmed(adj, protocol.resistance)
        data = dataclasses.replace(screening, immunotherapy_resistance_confirmed=datum)
        checklist = eligibility.evaluate(data, protocol.eligibility, protocol.version.number)
        for r in checklist.results:
            if r.excludes or r.status is Status.UNKNOWN:
                reasons.append(_criterion_reason(r))
    # the adjudication's own reasons (classification, signatures), the checklist having been given above
    reasons += resistance.can_enrol(Checklist(subject_id, Verdict.ELIGIBLE, ()), adj, protocol.resistance)
    return checklist, reasons


def eligibility_of(
    uow: UnitOfWorkLike, actor: Actor, subject_id: str, *, on: dt.date | None = None,
    protocols: ProtocolFile | None = None,
) -> tuple[Checklist | None, list[str]]:  # fmt: skip
    """Read-only: the checklist under the protocol in force ``on`` and every reason enrolment is refused."""
    patient_of(uow, actor, subject_id)
    protocol = protocols_or_bundled(protocols).version_on(on or dt.date.today())
    return _checklist(uow, subject_id, protocol)


def preview_eligibility(
    uow: UnitOfWorkLike, actor: Actor, screening: d.Screening, *, protocols: ProtocolFile | None = None,
) -> tuple[Checklist, list[str]]:  # fmt: skip
    """Read-only: the checklist of unsaved screening values (a form being filled in) as enrolment would see them
    (criterion 10's resistance from the adjudication), under the rules :func:`record_screening` checks them by
    (the patient's version, else the version in force on the screening date). Writes nothing."""
    authorise(uow, actor, Action.SCREENING)
    patient = patient_of(uow, actor, screening.subject_id)
    protocol = protocol_of(patient.value, protocols, screening.screening_date)
    checklist, reasons = _checklist(uow, screening.subject_id, protocol, screening)
    assert checklist is not None
    return checklist, reasons


def enrol(
    uow: UnitOfWorkLike, actor: Actor, subject_id: str, *, version: int, on: dt.date,
    protocols: ProtocolFile | None = None, at: dt.datetime | None = None,
) -> Stored[d.Patient]:  # fmt: skip
    """Enrol the patient on ``on`` (an investigator) under the protocol version in force that day."""
    authorise(uow, actor, Action.ENROL)
    patient = patient_of(uow, actor, subject_id)
    if patient.value.status is not d.PatientStatus.SCREENING:
        raise ValidationError("status", _not_at_screening(subject_id, patient.value.status))
    protocol = protocols_or_bundled(protocols).version_on(on)
    _, reasons = _checklist(uow, subject_id, protocol)
    if reasons:
        raise Refused("enrolment", f"{subject_id} cannot be enrolled", reasons)
    enrolled = dataclasses.replace(
        patient.value,
        status=d.PatientStatus.ENROLLED,
        enrolment_date=on,
        protocol_version=protocol.version.number,
    )
    check_values(enrolled, protocol, site_today(uow, patient.value, at))
    stored = uow.patients.update(patient.id, enrolled, version=version)
    uow.commit()
    return stored


def record_screen_failure(
    uow: UnitOfWorkLike, actor: Actor, subject_id: str, *, version: int, reason: str,
) -> Stored[d.Patient]:  # fmt: skip
    """The investigator's decision that a screened patient will not be enrolled, with the reason."""
    authorise(uow, actor, Action.ENROL)
    patient = patient_of(uow, actor, subject_id)
    if patient.value.status is not d.PatientStatus.SCREENING:
        raise ValidationError("status", _not_at_screening(subject_id, patient.value.status))
    if not reason.strip():
        raise ValidationError("reason", Message(N_("a screen failure needs the reason")))
    stored = uow.patients.update(
        patient.id, dataclasses.replace(patient.value, status=d.PatientStatus.SCREEN_FAILED), version=version
    )
    screening = uow.screenings.find(subject_id=subject_id)
    if screening is not None:  # the reason kept with the screening data (SDTM DS; the CONSORT's screening log)
        kept = dataclasses.replace(screening.value, screen_failure_reason=reason.strip())
        uow.screenings.update(screening.id, kept, version=screening.version)
    uow.commit()
    return stored
