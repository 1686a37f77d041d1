"""Patients through the API: the list (paginated, filtered), one patient, registration and the path's steps."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from abscopal import domain as d
from abscopal.services import enrolment, follow_up, screening
from abscopal.services.common import Action
from abscopal.web.api.common import RecordOut, decode_cursor, encode_cursor, parse_if_match, record_out, set_etag
from abscopal.web.context import Principal, reading, requires, state_of, unit_of_work
from abscopal.web.patient_list import list_patients
from abscopal.web.records import input_model, patient_marks, visible_patient

router = APIRouter(tags=["patients"])
PatientInput = input_model(d.Patient)


class PatientSummary(BaseModel):
    subject_id: str
    site_code: str
    status: d.PatientStatus
    sex: str
    enrolment_date: dt.date | None
    birth_year: int
    version: int
    etag: str


class PatientPage(BaseModel):
    items: list[PatientSummary]
    total: int = Field(description="How many patients match the filters")
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page; null on the last page")


@router.get("/patients", summary="Patients at your sites (the statistician: every site, pseudonymised)")
def patients_list(
    request: Request,
    principal: Annotated[Principal, Depends(requires(Action.READ))],
    site: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(max_length=40)] = None,
    q: Annotated[str | None, Query(max_length=100, description="Part of the subject id")] = None,
    updated_since: Annotated[dt.datetime | None, Query(description="ISO 8601; patient record changed since")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> PatientPage:  # fmt: skip
    with state_of(request).read() as conn:
        listing = list_patients(
            conn, principal.actor(), site=site, status=status, q=q, updated_since=updated_since, limit=limit,
            after=decode_cursor(cursor),
        )  # fmt: skip
    items = [
        PatientSummary(
            subject_id=r.subject_id, site_code=r.site_code, status=r.status, sex=r.sex, enrolment_date=r.enrolment_date,
            birth_year=r.birth_year, version=r.version, etag=f'W/"{r.id}.{r.version}"',
        )
        for r in listing.rows
    ]  # fmt: skip
    return PatientPage(
        items=items, total=listing.total, next_cursor=encode_cursor(listing.next_after) if listing.next_after else None
    )


@router.post("/patients", status_code=201, summary="Register a patient for screening")
def patients_register(
    body: PatientInput, request: Request, response: Response,  # type: ignore[valid-type]
    principal: Annotated[Principal, Depends(requires(Action.SCREENING))],
    subject_id: Annotated[str, Query(min_length=1, max_length=100, description="The new subject id")],
) -> RecordOut:  # fmt: skip
    values: dict[str, Any] = dict(body)
    patient = d.Patient(subject_id=subject_id.strip(), **values)
    with unit_of_work(request, principal, "patient registered for screening") as uow:
        stored = screening.register_patient(
            uow, principal.actor(patient.site_code), patient, protocols=state_of(request).protocols
        )
    with reading(request, principal) as uow:
        set_etag(response, stored)
        response.headers["Location"] = f"{request.url.path}/{stored.value.subject_id}"
        return record_out("patients", stored, patient_marks(uow, subject_id), subject_id, principal.actor())


@router.get("/patients/{subject_id}", summary="One patient (its ETag is the patient record's version)")
def patient_get(
    subject_id: str, request: Request, response: Response,
    principal: Annotated[Principal, Depends(requires(Action.READ))],
) -> RecordOut:  # fmt: skip
    with reading(request, principal) as uow:
        patient, actor = visible_patient(uow, principal, subject_id)
        set_etag(response, patient)
        return record_out("patients", patient, patient_marks(uow, subject_id), subject_id, actor)


class EnrolBody(BaseModel):
    on: dt.date = Field(description="Enrolment date")


class ScreenFailureBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class EndStudyBody(BaseModel):
    status: d.PatientStatus = Field(description="completed, withdrawn, died or lost_to_follow_up")
    on: dt.date
    death_cause: str | None = Field(None, max_length=2000)
    reason: str = Field(min_length=1, max_length=2000, description="Why (audit trail)")


@router.post("/patients/{subject_id}/enrol", summary="Enrol (refused while a criterion or the adjudication is open)")
def patient_enrol(
    subject_id: str, body: EnrolBody, request: Request, response: Response,
    principal: Annotated[Principal, Depends(requires(Action.ENROL))],
) -> RecordOut:  # fmt: skip
    version = parse_if_match(request)
    with unit_of_work(request, principal, f"enrolled on {body.on}") as uow:
        _, actor = visible_patient(uow, principal, subject_id)
        stored = enrolment.enrol(
            uow, actor, subject_id, version=version, on=body.on, protocols=state_of(request).protocols
        )
    with reading(request, principal) as uow:
        set_etag(response, stored)
        return record_out("patients", stored, patient_marks(uow, subject_id), subject_id, actor)


@router.post("/patients/{subject_id}/screen-failure", summary="Record a screen failure, with the reason")
def patient_screen_failure(
    subject_id: str, body: ScreenFailureBody, request: Request, response: Response,
    principal: Annotated[Principal, Depends(requires(Action.ENROL))],
) -> RecordOut:  # fmt: skip
    version = parse_if_match(request)
    with unit_of_work(request, principal, body.reason) as uow:
        _, actor = visible_patient(uow, principal, subject_id)
        stored = enrolment.record_screen_failure(uow, actor, subject_id, version=version, reason=body.reason)
    with reading(request, principal) as uow:
        set_etag(response, stored)
        return record_out("patients", stored, patient_marks(uow, subject_id), subject_id, actor)


@router.post("/patients/{subject_id}/end-study", summary="Take the patient off study (completed, died, …)")
def patient_end_study(
    subject_id: str, body: EndStudyBody, request: Request, response: Response,
    principal: Annotated[Principal, Depends(requires(Action.ENROL))],
) -> RecordOut:  # fmt: skip
    version = parse_if_match(request)
    with unit_of_work(request, principal, body.reason) as uow:
        _, actor = visible_patient(uow, principal, subject_id)
        stored = follow_up.end_study(
            uow, actor, subject_id, version=version, status=body.status, on=body.on, death_cause=body.death_cause,
            protocols=state_of(request).protocols,
        )  # fmt: skip
    with reading(request, principal) as uow:
        set_etag(response, stored)
        return record_out("patients", stored, patient_marks(uow, subject_id), subject_id, actor)
