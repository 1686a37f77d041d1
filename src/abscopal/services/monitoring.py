"""Source-data verification (web.md §3): a monitor marks one version of a record verified; the store clears the
mark when the record changes."""

from __future__ import annotations

import datetime as dt

from abscopal import domain as d
from abscopal.services.common import Action, Actor, authorise, patient_of, utc_now
from abscopal.services.ports import UnitOfWorkLike, patient_record
from abscopal.store.records import Stored


def mark_sdv(
    uow: UnitOfWorkLike, actor: Actor, entity: str, record_id: str, *, version: int, at: dt.datetime | None = None,
) -> Stored[d.SdvMark]:  # fmt: skip
    """Mark ``version`` of the record verified against source; a record changed since is a ConflictError."""
    authorise(uow, actor, Action.SDV)
    record, subject_id = patient_record(uow, entity, record_id)
    patient_of(uow, actor, subject_id)
    if record.version != version:
        raise uow.conflict(entity, record_id, version, record.version)
    mark = d.SdvMark(entity, record_id, subject_id, version, actor.username, utc_now(at))
    stored = uow.sdv_marks.add(mark)
    uow.commit()
    return stored
