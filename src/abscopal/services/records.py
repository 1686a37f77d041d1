"""Removing trial data (web.md §3): a logical operation with a reason, kept in the table and the trail."""

from __future__ import annotations

from abscopal.errors import ValidationError
from abscopal.services.common import ACTION_OF_ENTITY, Actor, authorise, patient_of, require
from abscopal.services.ports import UnitOfWorkLike, records_of


def remove_record(uow: UnitOfWorkLike, actor: Actor, entity: str, record_id: str, *, version: int, reason: str) -> None:
    """Remove one record (and its children) logically, by someone who may write that kind of record.

    Nothing is deleted: the row keeps its values with ``removed_reason`` set, the audit trail has who, when and
    why, and reads no longer return it. A stale ``version`` is a ConflictError; a locked record is refused.
    """
    why = require(reason, "reason", "removing trial data needs a reason (it goes to the audit trail)")
    action = ACTION_OF_ENTITY.get(entity)
    records = records_of(uow, entity)  # an unknown entity is a ValidationError naming it
    if action is None:
        raise ValidationError("entity", f"{entity} records are not removed this way (they have their own use case)")
    authorise(uow, actor, action)
    record = records.get(record_id)
    subject_id = getattr(record.value, "subject_id", None)
    if subject_id is not None:
        patient_of(uow, actor, str(subject_id))
    records.remove(record_id, version=version, reason=why)
    uow.commit()
