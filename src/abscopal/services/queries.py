"""Data queries: raise, answer, close, reopen (web.md §2-§3). Open -> answered -> closed; reopen sends it back.

Data managers and monitors raise and close (a monitor only their own); site staff answer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from abscopal import domain as d
from abscopal.errors import PermissionDenied, ValidationError
from abscopal.messages import N_, Message
from abscopal.services.common import Action, Actor, StaffRole, authorise, patient_of, require, utc_now
from abscopal.services.ports import UnitOfWorkLike, records_of
from abscopal.store.records import Stored


def open_query(
    uow: UnitOfWorkLike, subject_id: str, entity: str, field: str, text: str, raised_by: str,
    record_id: str | None, at: dt.datetime,
) -> Stored[d.DataQuery]:  # fmt: skip
    """Add an open query without committing (for use cases that raise one as part of their own transaction);
    an open query on the same record and field is returned instead of a second one."""
    for s in uow.queries.for_subject(subject_id):
        q = s.value
        if q.entity == entity and q.field == field and q.record_id == record_id and q.status is d.QueryStatus.OPEN:
            return s
    return uow.queries.add(d.DataQuery(subject_id, entity, field, text, raised_by, at, record_id=record_id))


def raise_query(
    uow: UnitOfWorkLike, actor: Actor, subject_id: str, entity: str, field: str, text: str, *,
    record_id: str | None = None, at: dt.datetime | None = None,
) -> Stored[d.DataQuery]:  # fmt: skip
    """Raise a query on one field of a record (or of a patient's records of ``entity``)."""
    authorise(uow, actor, Action.RAISE_QUERY)
    patient_of(uow, actor, subject_id)
    text = require(text, "text", "a query needs its question")
    require(field, "field", "a query names the field it is about")
    records = records_of(uow, entity)  # an unknown kind of record is a ValidationError naming it
    if record_id is not None and records.get(record_id).value.subject_id != subject_id:
        raise ValidationError(
            "record_id", Message(N_("record {record} is not one of {subject}'s"), record=record_id, subject=subject_id)
        )
    stored = open_query(uow, subject_id, entity, field, text, actor.username, record_id, utc_now(at))
    uow.commit()
    return stored


def _query(uow: UnitOfWorkLike, actor: Actor, query_id: str) -> Stored[d.DataQuery]:
    stored = uow.queries.get(query_id)
    patient_of(uow, actor, stored.value.subject_id)
    return stored


def answer_query(
    uow: UnitOfWorkLike, actor: Actor, query_id: str, *, version: int, answer: str, at: dt.datetime | None = None,
) -> Stored[d.DataQuery]:  # fmt: skip
    """Answer an open query (site staff)."""
    authorise(uow, actor, Action.ANSWER_QUERY)
    stored = _query(uow, actor, query_id)
    if stored.value.status is not d.QueryStatus.OPEN:
        raise ValidationError(
            "status",
            Message(N_("the query is {status}; only an open query is answered"), status=stored.value.status.value),
        )
    answered = dataclasses.replace(
        stored.value,
        status=d.QueryStatus.ANSWERED,
        answer=require(answer, "answer", "an answer cannot be empty"),
        answered_by=actor.username,
        answered_at=utc_now(at),
    )
    result = uow.queries.update(query_id, answered, version=version)
    uow.commit()
    return result


_DOING = {"close": N_("a monitor may close only the queries they raised; {user} raised this one"),
          "reopen": N_("a monitor may reopen only the queries they raised; {user} raised this one")}  # fmt: skip


def _refuse_other_monitors_query(actor: Actor, query: d.DataQuery, doing: str) -> None:
    if actor.role is StaffRole.MONITOR and query.raised_by != actor.username:
        raise PermissionDenied(Message(_DOING[doing], user=query.raised_by))


def close_query(
    uow: UnitOfWorkLike, actor: Actor, query_id: str, *, version: int, at: dt.datetime | None = None,
) -> Stored[d.DataQuery]:  # fmt: skip
    """Close an answered (or open) query: data managers, or the monitor who raised it."""
    authorise(uow, actor, Action.CLOSE_QUERY)
    stored = _query(uow, actor, query_id)
    _refuse_other_monitors_query(actor, stored.value, "close")
    if stored.value.status is d.QueryStatus.CLOSED:
        raise ValidationError("status", Message(N_("the query is already closed")))
    closed = dataclasses.replace(
        stored.value, status=d.QueryStatus.CLOSED, closed_by=actor.username, closed_at=utc_now(at)
    )
    result = uow.queries.update(query_id, closed, version=version)
    uow.commit()
    return result


def reopen_query(
    uow: UnitOfWorkLike, actor: Actor, query_id: str, *, version: int, reason: str,
) -> Stored[d.DataQuery]:  # fmt: skip
    """Send an answered or closed query back to open, with the reason (appended to its text)."""
    authorise(uow, actor, Action.CLOSE_QUERY)
    stored = _query(uow, actor, query_id)
    _refuse_other_monitors_query(actor, stored.value, "reopen")
    if stored.value.status is d.QueryStatus.OPEN:
        raise ValidationError("status", Message(N_("the query is already open")))
    why = require(reason, "reason", "reopening a query needs a reason")
    reopened = dataclasses.replace(
        stored.value,
        status=d.QueryStatus.OPEN,
        text=f"{stored.value.text}\nReopened by {actor.username}: {why}",
        closed_by=None,
        closed_at=None,
    )
    result = uow.queries.update(query_id, reopened, version=version)
    uow.commit()
    return result
