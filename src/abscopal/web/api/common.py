"""What the API's routers share: ETag / If-Match (web.md §3, §7), record envelopes, pagination."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, Field

from abscopal.errors import ValidationError
from abscopal.services.common import Actor
from abscopal.store.records import Stored
from abscopal.web.problems import PreconditionRequired
from abscopal.web.records import PatientMarks, RecordState, record_data, record_state


class StateOut(BaseModel):
    status: str = Field(description="entered | edited | verified | signed | locked")
    verified_by: str | None = None
    signatures: list[dict[str, Any]] = []
    voided_signatures: list[dict[str, Any]] = []
    locked_by: str | None = None
    locked_at: dt.datetime | None = None
    lock_id: str | None = None
    open_queries: int = 0


class RecordOut(BaseModel):
    id: str
    version: int
    etag: str
    entity: str
    state: StateOut
    data: dict[str, Any]


def state_out(s: RecordState) -> StateOut:
    return StateOut(
        status=s.status, verified_by=s.verified_by, signatures=list(s.signatures), voided_signatures=list(s.voided),
        locked_by=s.locked_by, locked_at=s.locked_at, lock_id=s.lock_id, open_queries=s.open_queries,
    )  # fmt: skip


def record_out(entity: str, record: Stored[Any], marks: PatientMarks, subject_id: str, actor: Actor) -> RecordOut:
    state = record_state(entity, record, marks, subject_id)
    return RecordOut(
        id=record.id, version=record.version, etag=record.etag, entity=entity, state=state_out(state),
        data=record_data(record.value, actor),
    )  # fmt: skip


def parse_if_match(request: Request, record_id: str | None = None) -> int:
    """The version a write is based on, from ``If-Match: W/"<id>.<version>"`` (428 when missing)."""
    header = request.headers.get("if-match")
    if not header:
        raise PreconditionRequired(
            "A write must send If-Match with the ETag of the version it was based on (GET the record first)"
        )
    tag = header.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    tag = tag.strip('"')
    rid, _, version = tag.rpartition(".")
    if not version.isdigit() or (record_id is not None and rid and rid != record_id):
        raise ValidationError("If-Match", f'{header!r} is not an ETag of this record (expected W/"<id>.<version>")')
    return int(version)


def set_etag(response: Response, record: Stored[Any]) -> None:
    response.headers["ETag"] = record.etag


class Page(BaseModel):
    items: list[Any]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page; null on the last page")


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("cursor", "is not a cursor this API returned") from None
