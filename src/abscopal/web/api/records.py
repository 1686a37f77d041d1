"""Per-patient records through the API: list, read, create, edit with If-Match and a reason, remove (web.md §3, §7).

One set of routes per :data:`abscopal.web.records.RESOURCES` entry, each with its own typed body (the domain
dataclass as a Pydantic model) so that OpenAPI documents every field. Writes go through the services; a stale
``If-Match`` is 409 naming who changed which fields, a locked record 423, a refused rule 422 with every reason.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field, create_model

from abscopal.errors import NotFound
from abscopal.services.common import Action, require
from abscopal.services.records import remove_record
from abscopal.web.api.common import RecordOut, parse_if_match, record_out, set_etag
from abscopal.web.context import Principal, reading, requires, state_of, unit_of_work
from abscopal.web.records import RESOURCES, Resource, build, input_model, patient_marks, records_for, visible_patient

router = APIRouter(tags=["records"])
FIRST_ENTRY = "entered in the web application"


def _get(uow: Any, res: Resource, subject_id: str, record_id: str) -> Any:
    from abscopal.services.ports import records_of

    record = records_of(uow, res.entity).get(record_id)
    if getattr(record.value, "subject_id", subject_id) != subject_id:
        raise NotFound(f"No {res.title.lower()} record {record_id!r} for patient {subject_id}")
    return record


def _routes(res: Resource) -> None:
    slug = res.slug
    base = f"/patients/{{subject_id}}/{slug}"
    Input = input_model(res.cls)
    Edit: type[BaseModel] = create_model(
        f"{res.cls.__name__}Edit",
        reason=(str, Field(min_length=1, max_length=2000, description="Why the record changes (audit trail)")),
        data=(Input, ...),
    )

    @router.get(base, name=f"list_{slug}", summary=f"{res.title}: every record of one patient")
    def list_records(
        subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.READ))],
    ) -> list[RecordOut]:  # fmt: skip
        with reading(request, principal) as uow:
            _, actor = visible_patient(uow, principal, subject_id)
            marks = patient_marks(uow, subject_id)
            return [
                record_out(res.entity, r, marks, subject_id, actor) for r in records_for(uow, res.entity, subject_id)
            ]

    @router.get(f"{base}/{{record_id}}", name=f"get_{slug}", summary=f"{res.title}: one record, with its ETag")
    def get_record(
        subject_id: str, record_id: str, request: Request, response: Response,
        principal: Annotated[Principal, Depends(requires(Action.READ))],
    ) -> RecordOut:  # fmt: skip
        with reading(request, principal) as uow:
            _, actor = visible_patient(uow, principal, subject_id)
            record = _get(uow, res, subject_id, record_id)
            set_etag(response, record)
            return record_out(res.entity, record, patient_marks(uow, subject_id), subject_id, actor)

    if res.write_action is None or res.save is None:
        return
    action = res.write_action
    save = res.save

    @router.post(base, name=f"create_{slug}", status_code=201, summary=f"{res.title}: enter a record")
    def create_record(
        subject_id: str, body: Input, request: Request, response: Response,  # type: ignore[valid-type]
        principal: Annotated[Principal, Depends(requires(action))],
    ) -> RecordOut:  # fmt: skip
        with unit_of_work(request, principal, FIRST_ENTRY) as uow:
            _, actor = visible_patient(uow, principal, subject_id)
            stored = save(uow, actor, build(res.cls, subject_id, body), None, None, state_of(request).protocols)
        with reading(request, principal) as uow:
            set_etag(response, stored)
            response.headers["Location"] = f"{request.url.path}/{stored.id}"
            return record_out(res.entity, stored, patient_marks(uow, subject_id), subject_id, actor)

    @router.put(f"{base}/{{record_id}}", name=f"edit_{slug}", summary=f"{res.title}: edit a record (If-Match)")
    def edit_record(
        subject_id: str, record_id: str, body: Edit, request: Request, response: Response,
        principal: Annotated[Principal, Depends(requires(action))],
    ) -> RecordOut:  # fmt: skip
        version = parse_if_match(request, record_id)
        reason = require(body.reason, "reason", "every edit after the first save needs a reason")  # type: ignore[attr-defined]
        with unit_of_work(request, principal, reason) as uow:
            _, actor = visible_patient(uow, principal, subject_id)
            _get(uow, res, subject_id, record_id)
            obj = build(res.cls, subject_id, body.data)  # type: ignore[attr-defined]
            stored = save(uow, actor, obj, record_id, version, state_of(request).protocols)
        with reading(request, principal) as uow:
            set_etag(response, stored)
            return record_out(res.entity, stored, patient_marks(uow, subject_id), subject_id, actor)

    @router.delete(f"{base}/{{record_id}}", name=f"remove_{slug}", status_code=204,
                   summary=f"{res.title}: remove a record (logical, with a reason; If-Match)")  # fmt: skip
    def remove(
        subject_id: str, record_id: str, request: Request,
        principal: Annotated[Principal, Depends(requires(action))],
        reason: Annotated[str, Query(min_length=1, max_length=2000, description="Why (audit trail)")],
    ) -> Response:  # fmt: skip
        version = parse_if_match(request, record_id)
        with unit_of_work(request, principal, reason) as uow:
            _, actor = visible_patient(uow, principal, subject_id)
            _get(uow, res, subject_id, record_id)
            remove_record(uow, actor, res.entity, record_id, version=version, reason=reason)
        return Response(status_code=204)


for _res in RESOURCES.values():
    _routes(_res)
