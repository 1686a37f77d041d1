"""The patient's path steps that are not plain record edits (web.md §4, §5): resistance adjudication (propose, then
two distinct deputy chief physicians sign with their password), questionnaires answered item by item, and the
radiotherapy roles of the whole lesion registry at once.

Each route calls one use case of :mod:`abscopal.services`; the rules (who may sign, role rules, scoring) are
theirs. A signature re-checks the signer's password first (21 CFR 11.200(a)) in a transaction of its own, so that
a wrong password is counted (three lock the account, like failed logins) even though nothing is signed.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from abscopal import domain as d
from abscopal.errors import NotFound
from abscopal.services import adjudication, lesions, questionnaires
from abscopal.services.common import Action
from abscopal.web.accounts import security_event
from abscopal.web.api.common import RecordOut, parse_if_match, record_out, set_etag
from abscopal.web.context import Principal, confirm_signing_password, reading, requires, state_of, unit_of_work
from abscopal.web.records import patient_marks, visible_patient

router = APIRouter(tags=["patients"])
_FORBID = ConfigDict(extra="forbid")
Version = Annotated[int, Field(ge=1, le=2**31 - 1)]


# --- resistance adjudication


class ProposeBody(BaseModel):
    model_config = _FORBID
    classification: d.ResistanceType | None = Field(
        None, description="Default: the resistance engine's class from the latest prior immunotherapy"
    )


class SignBody(BaseModel):
    model_config = _FORBID
    password: str = Field(min_length=1, max_length=1000, description="Your password, typed again to sign")


@router.post("/patients/{subject_id}/adjudications", status_code=201, summary="Propose a resistance adjudication")
def propose_adjudication(
    subject_id: str, body: ProposeBody, request: Request, response: Response,
    principal: Annotated[Principal, Depends(requires(Action.PROPOSE_ADJUDICATION))],
) -> RecordOut:  # fmt: skip
    with unit_of_work(request, principal, "resistance adjudication proposed") as uow:
        _, actor = visible_patient(uow, principal, subject_id)
        stored = adjudication.propose_adjudication(
            uow, actor, subject_id, body.classification, protocols=state_of(request).protocols
        )
    with reading(request, principal) as uow:
        set_etag(response, stored)
        response.headers["Location"] = f"{request.url.path}/{stored.id}"
        return record_out("adjudications", stored, patient_marks(uow, subject_id), subject_id, actor)


@router.post(
    "/patients/{subject_id}/adjudications/{adjudication_id}/signatures",
    summary="Sign a resistance adjudication (a deputy chief physician; password again; If-Match)",
)  # fmt: skip
def sign_adjudication(
    subject_id: str, adjudication_id: str, body: SignBody, request: Request, response: Response,
    principal: Annotated[Principal, Depends(requires(Action.SIGN_ADJUDICATION))],
) -> RecordOut:  # fmt: skip
    version = parse_if_match(request, adjudication_id)
    state = state_of(request)
    with reading(request, principal) as uow:  # the patient and the record first: a 404 counts no password
        visible_patient(uow, principal, subject_id)
        if uow.adjudications.get(adjudication_id).value.subject_id != subject_id:
            raise NotFound(f"No adjudication {adjudication_id!r} for patient {subject_id}")
    confirm_signing_password(request, principal, body.password)
    with unit_of_work(request, principal, "resistance adjudication signed") as uow:
        _, actor = visible_patient(uow, principal, subject_id)
        stored = adjudication.sign_adjudication(uow, actor, adjudication_id, version=version, protocols=state.protocols)
    with state.write() as conn:
        security_event(
            conn, principal.username, "signed",
            f"adjudicated: resistance adjudication {adjudication_id} of {subject_id} (version {stored.version})",
        )  # fmt: skip
    with reading(request, principal) as uow:
        set_etag(response, stored)
        return record_out("adjudications", stored, patient_marks(uow, subject_id), subject_id, actor)


# --- questionnaires


Item = Annotated[int, Field(ge=1, le=1000)]
Answer = Annotated[int, Field(ge=0, le=100)]


class QuestionnaireBody(BaseModel):
    model_config = _FORBID
    visit: str = Field(min_length=1, max_length=100, description="The visit code, e.g. QOL1")
    instrument: d.Instrument
    completed_on: dt.date
    answers: dict[Item, Answer | None] = Field(
        description="Item number -> answer (null: left blank); send one item at a time or all of them"
    )
    versions: dict[Item, Version] = Field(
        default_factory=dict, description="Item number -> version of an item already answered that changes"
    )
    on_behalf_reason: str | None = Field(
        None, max_length=2000, description="A coordinator entering a paper form says why"
    )


class ScaleScoreOut(BaseModel):
    scale: str
    score: float | None


class AnswerOut(BaseModel):
    id: str
    item: int
    answer: int | None
    version: int
    etag: str


class QuestionnaireOut(BaseModel):
    subject_id: str
    visit: str
    instrument: d.Instrument
    complete: bool = Field(description="Every item answered or left blank")
    answered: int
    items: list[AnswerOut]
    scores: list[ScaleScoreOut] = Field(description="The EORTC scale scores, once complete")


@router.post("/patients/{subject_id}/questionnaires", summary="Record questionnaire answers (item by item or all)")
def record_questionnaire(
    subject_id: str, body: QuestionnaireBody, request: Request,
    principal: Annotated[Principal, Depends(requires(Action.QUESTIONNAIRES))],
) -> QuestionnaireOut:  # fmt: skip
    reason = body.on_behalf_reason or "questionnaire answered"
    with unit_of_work(request, principal, reason) as uow:
        _, actor = visible_patient(uow, principal, subject_id)
        result = questionnaires.record_questionnaire(
            uow, actor, subject_id, body.visit, body.instrument, body.answers, completed_on=body.completed_on,
            versions=body.versions, on_behalf_reason=body.on_behalf_reason, protocols=state_of(request).protocols,
        )  # fmt: skip
    items = sorted(result.answers, key=lambda s: s.value.item)
    return QuestionnaireOut(
        subject_id=subject_id, visit=body.visit.strip(), instrument=body.instrument, complete=result.complete,
        answered=len(items),
        items=[AnswerOut(id=s.id, item=s.value.item, answer=s.value.answer, version=s.version, etag=s.etag)
               for s in items],
        scores=[ScaleScoreOut(scale=s.scale, score=s.score) for s in result.scores],
    )  # fmt: skip


# --- radiotherapy roles


class RtRolesBody(BaseModel):
    model_config = _FORBID
    roles: dict[Annotated[str, Field(min_length=1, max_length=100)], d.RtRole] = Field(
        description="Lesion id -> RT role; the role rules are checked on the whole registry"
    )
    versions: dict[Annotated[str, Field(min_length=1, max_length=100)], Version] = Field(
        default_factory=dict, description="Lesion id -> the version of each lesion whose role changes"
    )
    conventional_selection: str | None = Field(None, max_length=200, description="Why this lesion takes CFRT")


@router.put("/patients/{subject_id}/lesions/rt-roles", summary="Assign the RT roles of the lesions (all at once)")
def assign_rt_roles(
    subject_id: str, body: RtRolesBody, request: Request,
    principal: Annotated[Principal, Depends(requires(Action.RADIOTHERAPY))],
) -> list[RecordOut]:  # fmt: skip
    with unit_of_work(request, principal, "radiotherapy roles assigned") as uow:
        _, actor = visible_patient(uow, principal, subject_id)
        stored = lesions.assign_rt_roles(
            uow, actor, subject_id, body.roles, body.versions, conventional_selection=body.conventional_selection,
            protocols=state_of(request).protocols,
        )  # fmt: skip
    with reading(request, principal) as uow:
        marks = patient_marks(uow, subject_id)
        return [record_out("lesions", s, marks, subject_id, actor) for s in stored]
