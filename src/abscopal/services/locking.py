"""Locks (web.md §3): a data manager locks one record or every record of a patient; a locked record refuses
every edit (the store says who locked it and when); unlocking removes the lock logically, with a reason."""

from __future__ import annotations

import datetime as dt

from abscopal import domain as d
from abscopal.services.common import Action, Actor, authorise, patient_of, require, utc_now
from abscopal.services.ports import UnitOfWorkLike, patient_record
from abscopal.store.records import Stored


def lock_record(
    uow: UnitOfWorkLike, actor: Actor, entity: str, record_id: str, *, reason: str, at: dt.datetime | None = None,
) -> Stored[d.RecordLock]:  # fmt: skip
    """Lock one record (``entity`` is the store's name, e.g. ``tumour_assessments``)."""
    authorise(uow, actor, Action.LOCK)
    why = require(reason, "reason", "a lock needs a reason")
    _, subject_id = patient_record(uow, entity, record_id)
    patient_of(uow, actor, subject_id)
    stored = uow.locks.add(d.RecordLock(entity, record_id, subject_id, actor.username, utc_now(at), why))
    uow.commit()
    return stored


def lock_patient(
    uow: UnitOfWorkLike, actor: Actor, subject_id: str, *, reason: str, at: dt.datetime | None = None,
) -> Stored[d.RecordLock]:  # fmt: skip
    """Lock every record of the patient (its casebook)."""
    authorise(uow, actor, Action.LOCK)
    why = require(reason, "reason", "a lock needs a reason")
    patient = patient_of(uow, actor, subject_id)
    stored = uow.locks.add(d.RecordLock("patients", patient.id, subject_id, actor.username, utc_now(at), why))
    uow.commit()
    return stored


def unlock(uow: UnitOfWorkLike, actor: Actor, lock_id: str, *, version: int, reason: str) -> None:
    """Remove a lock (kept in the table and the trail with the reason); the reason is required."""
    authorise(uow, actor, Action.LOCK)
    why = require(reason, "reason", "unlocking needs a reason")
    lock = uow.locks.get(lock_id)
    patient_of(uow, actor, lock.value.subject_id)
    uow.locks.remove(lock_id, version=version, reason=f"unlocked by {actor.username}: {why}")
    uow.commit()
