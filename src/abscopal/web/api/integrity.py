"""Data integrity through the API: e-signatures, SDV marks, locks, data queries and the audit trail (web.md §2-§5).

Every route declares its action from :data:`abscopal.services.common.PERMISSIONS`; every patient route first
makes the site check (:func:`abscopal.web.records.visible_patient`: another site's patient is 404). Writes
send ``If-Match`` with the ETag of the version they were based on (the record's for a signature or an SDV
mark, the lock's for an unlock, the query's for an answer, close or reopen); a stale one is 409 naming who
changed which field. ``{entity}`` in a path is the store's table name of a patient's record (``lesions``,
``tumour_assessments``, ``data_queries`` …; :data:`abscopal.services.ports.REPOSITORY_OF_ENTITY`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from abscopal import domain as d
from abscopal.errors import NotFound, PermissionDenied, ValidationError
from abscopal.services import locking, monitoring, queries, signing
from abscopal.services.common import Action, StaffRole
from abscopal.services.ports import REPOSITORY_OF_ENTITY, UnitOfWorkLike, records_of
from abscopal.services.signing import Meaning
from abscopal.store.records import Stored
from abscopal.store.tables import ENTITIES
from abscopal.web.accounts import security_event
from abscopal.web.api.common import RecordOut, decode_cursor, encode_cursor, parse_if_match, record_out, set_etag
from abscopal.web.audit_view import HistoryRow, TrailRow, record_history, trail
from abscopal.web.context import (
    Principal,
    RouteAction,
    confirm_signing_password,
    reading,
    refuse,
    requires,
    state_of,
    unit_of_work,
)
from abscopal.web.inbox import InboxRow, query_inbox
from abscopal.web.records import patient_marks, visible_patient

router = APIRouter(tags=["integrity"])
_FORBID = ConfigDict(extra="forbid")

#: The kinds of record a signature, SDV mark, lock, query or audit view may name: a patient's records.
PATIENT_ENTITIES: tuple[str, ...] = tuple(
    sorted(name for name in REPOSITORY_OF_ENTITY if "subject_id" in ENTITIES[name].table.c)
)
#: Who sees the whole trail (web.md §2: "R"); an investigator sees their own sites' records ("R (own sites)").
WHOLE_TRAIL = frozenset({StaffRole.DATA_MANAGER, StaffRole.MONITOR, StaffRole.ADMIN})

SubjectId = Annotated[str, Path(max_length=100, description="The patient's subject id")]
Entity = Annotated[
    str, Path(max_length=60, description=f"The record's kind, a store table: {', '.join(PATIENT_ENTITIES)}")
]
RecordId = Annotated[str, Path(max_length=200, description="The record's id")]


# --- bodies and responses


class SignBody(BaseModel):
    model_config = _FORBID
    meaning: Meaning = Field(description="What the signature means (21 CFR 11.50(a)(3))")
    password: str = Field(min_length=1, max_length=1024, description="Your password, typed again (11.200(a))")


class ReasonBody(BaseModel):
    model_config = _FORBID
    reason: str = Field(min_length=1, max_length=2000, description="Why (audit trail)")


class RaiseQueryBody(BaseModel):
    model_config = _FORBID
    entity: str = Field(min_length=1, max_length=60, description="The record's kind (a store table)")
    record_id: str | None = Field(None, max_length=200, description="The record, when the query is about one")
    field: str = Field(min_length=1, max_length=100, description="The field the query is about")
    text: str = Field(min_length=1, max_length=4000, description="The question")


class AnswerBody(BaseModel):
    model_config = _FORBID
    answer: str = Field(min_length=1, max_length=4000)


class SignatureOut(BaseModel):
    id: str
    entity: str
    record_id: str
    subject_id: str
    username: str
    full_name: str = Field(description="The signer's full name, as signed (11.50(a)(1))")
    meaning: str
    signed_at: dt.datetime = Field(description="UTC")
    live: bool = Field(description="False once voided by a later change to the record")
    void_reason: str | None = None
    holds: bool = Field(description="The record's current content still has the signed hash")


class LockOut(BaseModel):
    id: str
    version: int
    etag: str
    entity: str
    record_id: str
    subject_id: str
    locked_by: str
    locked_at: dt.datetime
    reason: str
    live: bool = Field(description="False once unlocked")
    unlock_reason: str | None = None


class QueryOut(BaseModel):
    id: str
    version: int
    etag: str
    subject_id: str
    entity: str
    record_id: str | None
    field: str
    text: str
    status: d.QueryStatus
    raised_by: str
    raised_at: dt.datetime
    answer: str | None = None
    answered_by: str | None = None
    answered_at: dt.datetime | None = None
    closed_by: str | None = None
    closed_at: dt.datetime | None = None
    age_days: int = Field(description="Whole days since it was raised")


class QueryPage(BaseModel):
    items: list[QueryOut]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page; null on the last page")


class HistoryOut(BaseModel):
    seq: int
    at: dt.datetime = Field(description="UTC")
    username: str
    entity: str = Field(description="The record's table, or a child table (lesion_measurements …)")
    record_id: str
    field: str = Field(description="A column; '*' the whole row at entry; 'version' a child row changed")
    old: str = Field(description="The value before, as shown")
    new: str = Field(description="The value after, as shown")
    reason: str
    version: int | None


class TrailOut(BaseModel):
    seq: int
    at: dt.datetime = Field(description="UTC")
    username: str
    entity: str
    entity_key: str
    field: str
    old: str
    new: str
    reason: str
    version: int | None
    subject_id: str | None


class TrailPageOut(BaseModel):
    items: list[TrailOut]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next (older) page")


# --- helpers


def _entity(entity: str) -> str:
    if entity not in PATIENT_ENTITIES:
        raise ValidationError(
            "entity", f"{entity!r} is not a kind of patient record (known: {', '.join(PATIENT_ENTITIES)})"
        )
    return entity


def _record(
    uow: UnitOfWorkLike, entity: str, subject_id: str, record_id: str, *, include_removed: bool = False
) -> Stored[Any]:
    """The patient's record (a patient's own record for ``patients``), or NotFound."""
    record = records_of(uow, _entity(entity)).get(record_id, include_removed=include_removed)
    if str(getattr(record.value, "subject_id", "")) != subject_id:
        raise NotFound(f"No {entity} record {record_id!r} for patient {subject_id}")
    return record


def _stale(uow: UnitOfWorkLike, entity: str, record: Stored[Any], version: int) -> None:
    """A write based on an older version is 409 naming who changed which field since (the store's sentence)."""
    if record.version != version:
        conflict = getattr(uow, "conflict", None)
        if conflict is not None:
            raise conflict(entity, record.id, version, record.version)
        from abscopal.errors import ConflictError

        raise ConflictError(entity, record.id, version, record.version)


@contextmanager
def _refusals_audited(request: Request, principal: Principal, action: RouteAction) -> Iterator[None]:
    """A use case's refusal (PermissionDenied) is a 403 written to the audit trail like a route's (web.md §6)."""
    try:
        yield
    except PermissionDenied as exc:
        raise refuse(request, principal, action, str(exc)) from None


def _signature_out(uow: UnitOfWorkLike, s: Stored[d.RecordSignature]) -> SignatureOut:
    v = s.value
    try:
        holds = signing.signature_holds(uow, s.id)
    except NotFound:  # the signed record was removed
        holds = False
    return SignatureOut(
        id=s.id, entity=v.entity, record_id=v.record_id, subject_id=v.subject_id, username=v.username,
        full_name=v.full_name, meaning=v.meaning, signed_at=v.signed_at, live=s.removed_reason is None,
        void_reason=s.removed_reason, holds=holds,
    )  # fmt: skip


def _lock_out(s: Stored[d.RecordLock]) -> LockOut:
    v = s.value
    return LockOut(
        id=s.id, version=s.version, etag=s.etag, entity=v.entity, record_id=v.record_id, subject_id=v.subject_id,
        locked_by=v.locked_by, locked_at=v.locked_at, reason=v.reason, live=s.removed_reason is None,
        unlock_reason=s.removed_reason,
    )  # fmt: skip


def _age(raised_at: dt.datetime) -> int:
    at = raised_at if raised_at.tzinfo else raised_at.replace(tzinfo=dt.UTC)
    return max(0, (dt.datetime.now(dt.UTC) - at).days)


def _query_out(s: Stored[d.DataQuery]) -> QueryOut:
    q = s.value
    return QueryOut(
        id=s.id, version=s.version, etag=s.etag, subject_id=q.subject_id, entity=q.entity, record_id=q.record_id,
        field=q.field, text=q.text, status=q.status, raised_by=q.raised_by, raised_at=q.raised_at, answer=q.answer,
        answered_by=q.answered_by, answered_at=q.answered_at, closed_by=q.closed_by, closed_at=q.closed_at,
        age_days=_age(q.raised_at),
    )  # fmt: skip


def _inbox_out(r: InboxRow) -> QueryOut:
    return QueryOut(
        id=r.id, version=r.version, etag=r.etag, subject_id=r.subject_id, entity=r.entity, record_id=r.record_id,
        field=r.field, text=r.text, status=r.status, raised_by=r.raised_by, raised_at=r.raised_at, answer=r.answer,
        answered_by=r.answered_by, answered_at=r.answered_at, closed_by=r.closed_by, closed_at=r.closed_at,
        age_days=r.age_days,
    )  # fmt: skip


def _history_out(h: HistoryRow) -> HistoryOut:
    return HistoryOut(
        seq=h.seq, at=h.at, username=h.username, entity=h.entity, record_id=h.record_id, field=h.field, old=h.old,
        new=h.new, reason=h.reason, version=h.version,
    )  # fmt: skip


def _trail_out(r: TrailRow) -> TrailOut:
    return TrailOut(
        seq=r.seq, at=r.at, username=r.username, entity=r.entity, entity_key=r.entity_key, field=r.field, old=r.old,
        new=r.new, reason=r.reason, version=r.version, subject_id=r.subject_id,
    )  # fmt: skip


def _ids_of(uow: UnitOfWorkLike, entity: str, subject_id: str) -> list[str]:
    """Every row of a data-management table for the patient, removed ones included (voided, unlocked)."""
    table = ENTITIES[entity].table
    conn = getattr(uow, "connection")  # noqa: B009 - the real unit of work (the fake has no SQL)
    return [
        str(i)
        for i in conn.execute(select(table.c.id).where(table.c.subject_id == subject_id).order_by(table.c.id)).scalars()
    ]


def _utc_or_refuse(value: dt.datetime | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    except (OverflowError, ValueError):
        raise ValidationError(name, "is not a time this trail can hold (out of range in UTC)") from None


# --- signatures (web.md §5; 21 CFR Part 11 §11.50, §11.70, §11.200)


def _sign(
    request: Request, response: Response, principal: Principal, subject_id: str, entity: str, record_id: str | None,
    body: SignBody, action: RouteAction,
) -> RecordOut:  # fmt: skip
    version = parse_if_match(request, record_id)
    with reading(request, principal) as uow:  # the site check and the record before the password is asked for
        patient, _ = visible_patient(uow, principal, subject_id)
        rid = patient.id if entity == "patients" else (record_id or "")
        if entity == "patients":
            parse_if_match(request, rid)
        else:
            _record(uow, entity, subject_id, rid)
    confirm_signing_password(request, principal, body.password)
    reason = f"e-signature ({body.meaning.value})"
    with _refusals_audited(request, principal, action), unit_of_work(request, principal, reason) as uow:
        _, actor = visible_patient(uow, principal, subject_id)
        record = uow.patients.get(rid) if entity == "patients" else _record(uow, entity, subject_id, rid)
        _stale(uow, entity, record, version)
        signing.sign_record(uow, actor, entity, rid, version=version, meaning=body.meaning)
    with state_of(request).write() as conn:
        security_event(conn, principal.username, "signed",
                       f"{entity} {rid} version {version} signed ({body.meaning.value}) for {subject_id}")  # fmt: skip
    with reading(request, principal) as uow:
        record = records_of(uow, entity).get(rid)
        set_etag(response, record)
        return record_out(entity, record, patient_marks(uow, subject_id), subject_id, actor)


@router.post(
    "/patients/{subject_id}/records/{entity}/{record_id}/signatures",
    summary="E-sign one version of a record (password again, a meaning; If-Match)",
)
def sign_record(
    subject_id: SubjectId, entity: Entity, record_id: RecordId, body: SignBody, request: Request, response: Response,
    # Action.READ at the route: who may sign depends on the record (a role that may write it, or the PI), which
    # only the use case knows (signing.sign_record); a narrower route action would refuse a role the service
    # accepts. The service's refusal is a 403 audited like a route's.
    principal: Annotated[Principal, Depends(requires(Action.READ))],
) -> RecordOut:  # fmt: skip
    return _sign(request, response, principal, subject_id, entity, record_id, body, Action.READ)


@router.post(
    "/patients/{subject_id}/casebook-signature",
    summary="The PI signs the patient's casebook (password again, a meaning; If-Match of the patient)",
)
def sign_casebook(
    subject_id: SubjectId, body: SignBody, request: Request, response: Response,
    principal: Annotated[Principal, Depends(requires(Action.SIGN_CASEBOOK))],
) -> RecordOut:  # fmt: skip
    return _sign(request, response, principal, subject_id, "patients", None, body, Action.SIGN_CASEBOOK)


@router.get("/patients/{subject_id}/signatures", summary="The patient's e-signatures, live and voided")
def list_signatures(
    subject_id: SubjectId, request: Request, principal: Annotated[Principal, Depends(requires(Action.READ))],
) -> list[SignatureOut]:  # fmt: skip
    with reading(request, principal) as uow:
        visible_patient(uow, principal, subject_id)
        return [
            _signature_out(uow, uow.signatures.get(i, include_removed=True))
            for i in _ids_of(uow, "record_signatures", subject_id)
        ]


# --- source-data verification


@router.post(
    "/patients/{subject_id}/records/{entity}/{record_id}/sdv",
    summary="Mark one version of a record verified against source (If-Match)",
)
def mark_sdv(
    subject_id: SubjectId, entity: Entity, record_id: RecordId, request: Request, response: Response,
    principal: Annotated[Principal, Depends(requires(Action.SDV))],
) -> RecordOut:  # fmt: skip
    with unit_of_work(request, principal, "source data verified") as uow:
        _, actor = visible_patient(uow, principal, subject_id)  # before If-Match: another site's patient is 404
        version = parse_if_match(request, record_id)
        record = _record(uow, entity, subject_id, record_id)
        _stale(uow, entity, record, version)
        monitoring.mark_sdv(uow, actor, entity, record_id, version=version)
    with reading(request, principal) as uow:
        record = _record(uow, entity, subject_id, record_id)
        set_etag(response, record)
        return record_out(entity, record, patient_marks(uow, subject_id), subject_id, actor)


# --- locks


@router.post(
    "/patients/{subject_id}/records/{entity}/{record_id}/lock", status_code=201,
    summary="Lock one record (a data manager; with a reason)",
)  # fmt: skip
def lock_record(
    subject_id: SubjectId, entity: Entity, record_id: RecordId, body: ReasonBody, request: Request,
    response: Response, principal: Annotated[Principal, Depends(requires(Action.LOCK))],
) -> LockOut:  # fmt: skip
    with unit_of_work(request, principal, body.reason) as uow:
        _, actor = visible_patient(uow, principal, subject_id)
        _record(uow, entity, subject_id, record_id)
        lock = locking.lock_record(uow, actor, entity, record_id, reason=body.reason)
    set_etag(response, lock)
    return _lock_out(lock)


@router.post("/patients/{subject_id}/lock", status_code=201, summary="Lock every record of the patient")
def lock_patient(
    subject_id: SubjectId, body: ReasonBody, request: Request, response: Response,
    principal: Annotated[Principal, Depends(requires(Action.LOCK))],
) -> LockOut:  # fmt: skip
    with unit_of_work(request, principal, body.reason) as uow:
        _, actor = visible_patient(uow, principal, subject_id)
        lock = locking.lock_patient(uow, actor, subject_id, reason=body.reason)
    set_etag(response, lock)
    return _lock_out(lock)


@router.post("/patients/{subject_id}/locks/{lock_id}/unlock", summary="Unlock (with a reason; If-Match of the lock)")
def unlock(
    subject_id: SubjectId, lock_id: Annotated[str, Path(max_length=200)], body: ReasonBody, request: Request,
    principal: Annotated[Principal, Depends(requires(Action.LOCK))],
) -> LockOut:  # fmt: skip
    version = parse_if_match(request, lock_id)
    with unit_of_work(request, principal, body.reason) as uow:
        _, actor = visible_patient(uow, principal, subject_id)
        lock = uow.locks.get(lock_id)
        if lock.value.subject_id != subject_id:
            raise NotFound(f"No lock {lock_id!r} for patient {subject_id}")
        locking.unlock(uow, actor, lock_id, version=version, reason=body.reason)
    with reading(request, principal) as uow:
        return _lock_out(uow.locks.get(lock_id, include_removed=True))


@router.get("/patients/{subject_id}/locks", summary="The patient's locks, live and released")
def list_locks(
    subject_id: SubjectId, request: Request, principal: Annotated[Principal, Depends(requires(Action.READ))],
) -> list[LockOut]:  # fmt: skip
    with reading(request, principal) as uow:
        visible_patient(uow, principal, subject_id)
        return [_lock_out(uow.locks.get(i, include_removed=True)) for i in _ids_of(uow, "record_locks", subject_id)]


# --- data queries


@router.get(
    "/queries", summary="Your queries inbox (site staff: open ones to answer; data managers, monitors: to close)"
)
def inbox(
    request: Request, principal: Annotated[Principal, Depends(requires(Action.READ))],
    status: Annotated[d.QueryStatus | None, Query(description="Every query of this status at your sites")] = None,
    subject_id: Annotated[str | None, Query(max_length=100)] = None,
    mine: Annotated[bool, Query(description="Only the ones you raised (or answered)")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> QueryPage:  # fmt: skip
    with state_of(request).read() as conn:
        rows = query_inbox(
            conn, principal.actor(), status=status, subject_id=subject_id, mine=mine, limit=limit + 1,
            after=decode_cursor(cursor),
        )  # fmt: skip
    page = rows[:limit]
    more = len(rows) > limit and page
    return QueryPage(items=[_inbox_out(r) for r in page], next_cursor=encode_cursor(page[-1].id) if more else None)


@router.get("/patients/{subject_id}/queries", summary="The patient's data queries (every status)")
def patient_queries(
    subject_id: SubjectId, request: Request, principal: Annotated[Principal, Depends(requires(Action.READ))],
) -> list[QueryOut]:  # fmt: skip
    with reading(request, principal) as uow:
        _, actor = visible_patient(uow, principal, subject_id)
        found = uow.queries.for_subject(subject_id)
        if actor.role is StaffRole.PATIENT:  # a patient sees only their own questionnaires (web.md §2)
            found = [q for q in found if q.value.entity == "questionnaire_answers"]
        return [_query_out(q) for q in found]


@router.post("/patients/{subject_id}/queries", status_code=201, summary="Raise a query on a field of a record")
def raise_query(
    subject_id: SubjectId, body: RaiseQueryBody, request: Request, response: Response,
    principal: Annotated[Principal, Depends(requires(Action.RAISE_QUERY))],
) -> QueryOut:  # fmt: skip
    with unit_of_work(request, principal, "query raised") as uow:
        _, actor = visible_patient(uow, principal, subject_id)
        entity = _entity(body.entity)
        if body.record_id is not None:
            _record(uow, entity, subject_id, body.record_id)
        stored = queries.raise_query(uow, actor, subject_id, entity, body.field, body.text, record_id=body.record_id)
    set_etag(response, stored)
    response.headers["Location"] = f"/api/v1/patients/{subject_id}/queries"
    return _query_out(stored)


def _on_query(
    request: Request, response: Response, principal: Principal, query_id: str, reason: str, action: RouteAction,
    step: Any,
) -> QueryOut:  # fmt: skip
    """Answer, close or reopen: the query's patient is checked first (another site's query is 404)."""
    version = parse_if_match(request, query_id)
    with _refusals_audited(request, principal, action), unit_of_work(request, principal, reason) as uow:
        found = uow.queries.get(query_id)
        _, actor = visible_patient(uow, principal, found.value.subject_id)
        stored: Stored[d.DataQuery] = step(uow, actor, version)
    set_etag(response, stored)
    return _query_out(stored)


QueryId = Annotated[str, Path(max_length=200, description="The query's id")]


@router.post("/queries/{query_id}/answer", summary="Answer an open query (site staff; If-Match)")
def answer_query(
    query_id: QueryId, body: AnswerBody, request: Request, response: Response,
    principal: Annotated[Principal, Depends(requires(Action.ANSWER_QUERY))],
) -> QueryOut:  # fmt: skip
    return _on_query(
        request, response, principal, query_id, "query answered", Action.ANSWER_QUERY,
        lambda uow, actor, v: queries.answer_query(uow, actor, query_id, version=v, answer=body.answer),
    )  # fmt: skip


@router.post("/queries/{query_id}/close", summary="Close a query (a data manager, or the monitor who raised it)")
def close_query(
    query_id: QueryId, request: Request, response: Response,
    principal: Annotated[Principal, Depends(requires(Action.CLOSE_QUERY))],
) -> QueryOut:  # fmt: skip
    return _on_query(
        request, response, principal, query_id, "query closed", Action.CLOSE_QUERY,
        lambda uow, actor, v: queries.close_query(uow, actor, query_id, version=v),
    )  # fmt: skip


@router.post("/queries/{query_id}/reopen", summary="Reopen an answered or closed query, with the reason")
def reopen_query(
    query_id: QueryId, body: ReasonBody, request: Request, response: Response,
    principal: Annotated[Principal, Depends(requires(Action.CLOSE_QUERY))],
) -> QueryOut:  # fmt: skip
    return _on_query(
        request, response, principal, query_id, body.reason, Action.CLOSE_QUERY,
        lambda uow, actor, v: queries.reopen_query(uow, actor, query_id, version=v, reason=body.reason),
    )  # fmt: skip


# --- the audit trail


@router.get(
    "/patients/{subject_id}/records/{entity}/{record_id}/audit",
    summary="A record's history: who, when (UTC), which field, old and new value, why",
)
def record_audit(
    subject_id: SubjectId, entity: Entity, record_id: RecordId, request: Request,
    principal: Annotated[Principal, Depends(requires(Action.AUDIT_VIEW))],
) -> list[HistoryOut]:  # fmt: skip
    with reading(request, principal) as uow:
        patient, _ = visible_patient(uow, principal, subject_id)
        if not (entity == "patients" and record_id == patient.id):
            _record(uow, entity, subject_id, record_id, include_removed=True)
        return [_history_out(h) for h in record_history(uow.connection, entity, record_id)]


@router.get("/audit", summary="The audit trail, newest first (an investigator: their own sites' records)")
def audit_trail(
    request: Request, principal: Annotated[Principal, Depends(requires(Action.AUDIT_VIEW))],
    user: Annotated[str | None, Query(max_length=100)] = None,
    entity: Annotated[str | None, Query(max_length=60)] = None,
    event: Annotated[str | None, Query(max_length=100, description="A security event (login, signed …)")] = None,
    subject_id: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[dt.datetime | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[dt.datetime | None, Query(description="ISO 8601, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> TrailPageOut:  # fmt: skip
    before = decode_cursor(cursor)
    if before is not None and not (before.isascii() and before.isdigit() and len(before) <= 18):
        raise ValidationError("cursor", "is not a cursor this API returned")
    since, until = _utc_or_refuse(since, "since"), _utc_or_refuse(until, "until")
    roles = principal.account.roles
    sites = None if roles & WHOLE_TRAIL else principal.account.sites_as(StaffRole.INVESTIGATOR)
    with state_of(request).read() as conn:
        page = trail(
            conn, user=user, entity=entity, event=event, subject_id=subject_id, since=since, until=until,
            limit=limit, before_seq=int(before) if before is not None else None, sites=sites,
        )  # fmt: skip
    nxt = encode_cursor(str(page.next_before_seq)) if page.next_before_seq is not None else None
    return TrailPageOut(items=[_trail_out(r) for r in page.rows], next_cursor=nxt)
