"""The lesion registry, radiotherapy roles and prescriptions (web.md §4; radiotherapy.md §1-§2).

Radiologists and investigators keep the registry (lesions and their measurements); radiation oncologists set the
RT roles and prescriptions. Role rules are the radiotherapy engine's (:func:`check_lesion_roles`): a role
assignment or a registry edit that breaks one is refused with the rule named. A prescription outside the
protocol's regimen is stored with its deviation recorded automatically (the engine's class), as a fraction is.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from abscopal import domain as d
from abscopal.errors import NotFound, ValidationError
from abscopal.messages import N_, Message
from abscopal.protocol import radiotherapy as rt
from abscopal.protocol.calendar import WorkingDays
from abscopal.protocol.model import Protocol, ProtocolFile
from abscopal.services.common import (
    Action,
    Actor,
    Refused,
    add_or_update,
    authorise,
    check_values,
    patient_of,
    protocol_of,
    site_today,
)
from abscopal.services.ports import UnitOfWorkLike
from abscopal.store.records import Stored


@dataclass(frozen=True)
class RadiotherapyRecorded:
    """What a radiotherapy write stored, the engine's checks on it and the deviations it recorded."""

    stored: Stored[d.RadiotherapyCourse] | Stored[d.Fraction]
    checks: tuple[rt.RtCheck, ...]
    deviations: tuple[Stored[d.ProtocolDeviation], ...]


def _broken(lesions: Sequence[d.Lesion], protocol: Protocol, irradiated: set[str]) -> list[rt.RtCheck]:
    if all(lesion.rt_role is d.RtRole.NONE for lesion in lesions):
        return []  # roles not assigned yet: the registry is being built
    return [c for c in rt.check_lesion_roles(lesions, protocol.radiotherapy, None, irradiated) if not c.ok]


_BREAK_ROLES = Message(N_("the RT roles break the protocol"))


def _broken_rule(check: rt.RtCheck) -> Message:
    """``"limits_organs: 7 organ(s) with metastases ..."``: a broken rule named in a refusal."""
    return Message(N_("{check}: {message}"), check=check.check.value, message=check.message)


def _refuse_role_rules(
    lesions: Sequence[d.Lesion], protocol: Protocol, irradiated: set[str], before: Sequence[d.Lesion] | None = None
) -> None:
    """Refuse a registry that breaks a role rule, naming each rule (radiotherapy.md §1).

    With ``before`` (the registry as it is), only what the change breaks is refused: a registry that already
    breaks a rule (a recorded deviation) can still have a typo corrected; a change that makes it worse is refused,
    because the rule's message then differs (7 organs instead of 6)."""
    already = {(c.check, c.message) for c in _broken(before, protocol, irradiated)} if before is not None else set()
    failed = [c for c in _broken(lesions, protocol, irradiated) if (c.check, c.message) not in already]
    if failed:
        raise Refused("rt_role", _BREAK_ROLES, [_broken_rule(c) for c in failed])


def record_lesion(
    uow: UnitOfWorkLike, actor: Actor, lesion: d.Lesion, *, record_id: str | None = None,
    version: int | None = None, protocols: ProtocolFile | None = None, at: dt.datetime | None = None,
) -> Stored[d.Lesion]:  # fmt: skip
    """Add or edit a lesion of the registry; its RT role is not the registry's to change (see assign_rt_roles)."""
    authorise(uow, actor, Action.LESION_REGISTRY)
    patient = patient_of(uow, actor, lesion.subject_id)
    today = site_today(uow, patient.value, at)
    protocol = protocol_of(patient.value, protocols, today)
    check_values(lesion, protocol, today)
    others = [s for s in uow.lesions.for_subject(lesion.subject_id) if s.id != record_id]
    if record_id is None:
        if lesion.rt_role is not d.RtRole.NONE:
            raise ValidationError(
                "rt_role", Message(N_("a new lesion has no RT role; a radiation oncologist assigns it"))
            )
    else:
        if uow.lesions.get(record_id).value.rt_role is not lesion.rt_role:
            raise ValidationError("rt_role", Message(N_("is assigned by a radiation oncologist (assign_rt_roles)")))
    irradiated = rt.irradiated_lesions(s.value for s in uow.fractions.for_subject(lesion.subject_id))
    current = [*(s.value for s in others), *([uow.lesions.get(record_id).value] if record_id else [])]
    _refuse_role_rules([*(s.value for s in others), lesion], protocol, irradiated, before=current)
    stored = add_or_update(uow.lesions, lesion, record_id, version)
    uow.commit()
    return stored


def assign_rt_roles(
    uow: UnitOfWorkLike, actor: Actor, subject_id: str, roles: Mapping[str, d.RtRole],
    versions: Mapping[str, int], *, conventional_selection: str | None = None,
    protocols: ProtocolFile | None = None, at: dt.datetime | None = None,
) -> list[Stored[d.Lesion]]:  # fmt: skip
    """Set the RT roles of the patient's lesions (lesion id -> role, with each lesion's version) all at once, so
    that the role rules are checked on the whole registry; refused with every rule broken."""
    authorise(uow, actor, Action.RADIOTHERAPY)
    patient = patient_of(uow, actor, subject_id)
    protocol = protocol_of(patient.value, protocols, site_today(uow, patient.value, at))
    current = {s.value.lesion_id: s for s in uow.lesions.for_subject(subject_id)}
    unknown = sorted(set(roles) - set(current))
    if unknown:
        raise NotFound(Message(N_("{subject} has no lesion {lesion}"), subject=subject_id, lesion=", ".join(unknown)))
    new = [dataclasses.replace(s.value, rt_role=roles.get(lid, s.value.rt_role)) for lid, s in current.items()]
    irradiated = rt.irradiated_lesions(s.value for s in uow.fractions.for_subject(subject_id))
    checks = rt.check_lesion_roles(new, protocol.radiotherapy, conventional_selection, irradiated)
    failed = [c for c in checks if not c.ok]
    if failed:
        raise Refused("rt_role", _BREAK_ROLES, [_broken_rule(c) for c in failed])
    out = []
    for lesion in new:
        stored = current[lesion.lesion_id]
        if lesion.rt_role is stored.value.rt_role:
            out.append(stored)
            continue
        if lesion.lesion_id not in versions:
            raise ValidationError(
                "versions",
                Message(N_("the role of {lesion} changes but its version was not sent"), lesion=lesion.lesion_id),
            )
        out.append(uow.lesions.update(stored.id, lesion, version=versions[lesion.lesion_id]))
    uow.commit()
    return out


def record_rt_deviations(
    uow: UnitOfWorkLike, subject_id: str, lesion_id: str, protocol: Protocol, on: dt.date, recorded_by: str
) -> tuple[tuple[rt.RtCheck, ...], tuple[Stored[d.ProtocolDeviation], ...]]:
    """Run the patient's plan checks and record each new failed check of ``lesion_id`` as a deviation with the
    engine's class (a deviation already recorded with the same check and values is not recorded again)."""
    lesions = [s.value for s in uow.lesions.for_subject(subject_id)]
    courses = [s.value for s in uow.radiotherapy_courses.for_subject(subject_id)]
    fractions = [s.value for s in uow.fractions.for_subject(subject_id)]
    years = {f.date.year for f in fractions} | {c.start_date.year for c in courses} | {on.year}
    wd = WorkingDays(protocol.schedule.holidays_country, years | {y + 1 for y in years})
    report = rt.check_plan(subject_id, lesions, courses, fractions, protocol.radiotherapy, wd, date=on)
    mine = tuple(c for c in report.checks if c.lesion_id == lesion_id)
    existing = uow.deviations.for_subject(subject_id)
    seen = {(s.value.check, s.value.lesion_id, s.value.values) for s in existing}
    seen_day = {(s.value.check, s.value.lesion_id, s.value.date) for s in existing}
    added = []
    for dev in report.deviations:
        if dev.lesion_id != lesion_id or (dev.check, dev.lesion_id, dev.values) in seen:
            continue
        if (dev.check, dev.lesion_id, dev.date) in seen_day:
            continue  # one deviation per check, lesion and day (the store's natural key)
        added.append(uow.deviations.add(dataclasses.replace(dev, recorded_by=f"abscopal for {recorded_by}")))
        seen_day.add((dev.check, dev.lesion_id, dev.date))
    return mine, tuple(added)


def prescribe_rt_course(
    uow: UnitOfWorkLike, actor: Actor, course: d.RadiotherapyCourse, *, record_id: str | None = None,
    version: int | None = None, protocols: ProtocolFile | None = None, at: dt.datetime | None = None,
) -> RadiotherapyRecorded:  # fmt: skip
    """Add or edit a lesion's prescription (a radiation oncologist); its role must be the lesion's."""
    authorise(uow, actor, Action.RADIOTHERAPY)
    patient = patient_of(uow, actor, course.subject_id)
    today = site_today(uow, patient.value, at)
    protocol = protocol_of(patient.value, protocols, today)
    check_values(course, protocol, today)
    lesions = [s.value for s in uow.lesions.for_subject(course.subject_id)]
    courses = [s.value for s in uow.radiotherapy_courses.for_subject(course.subject_id) if s.id != record_id]
    rt.validate_roles(lesions, [*courses, course])
    stored = add_or_update(uow.radiotherapy_courses, course, record_id, version)
    checks, deviations = record_rt_deviations(
        uow, course.subject_id, course.lesion_id, protocol, course.start_date, actor.username
    )
    uow.commit()
    return RadiotherapyRecorded(stored, checks, deviations)
