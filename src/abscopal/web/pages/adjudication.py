"""Immunotherapy-resistance adjudication with its two DCP signatures (web.md §4, §5; issue 12 item 2).

The page shows what the adjudicators decide on: the prior immunotherapy, the exposure and the classification
(primary / acquired / not resistant / undetermined) with the sentences of the rule that applied, all from the
resistance engine (:func:`abscopal.protocol.resistance.classify`), and the progression and confirmation scans the
classification rests on. A coordinator or investigator proposes the adjudication; two distinct deputy chief
physicians sign it with their password typed again (:func:`abscopal.web.context.confirm_signing_password`). The
proposer cannot sign and nobody signs twice: those are the services' and the engine's refusals
(:mod:`abscopal.services.adjudication`), shown as their sentences beside the password. Until enough signatures are
in, the page shows every reason :func:`abscopal.services.enrolment.eligibility_of` gives for refusing enrolment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from abscopal import domain as d
from abscopal.errors import ConflictError, NotFound, PermissionDenied, RecordLocked, ValidationError
from abscopal.messages import Message
from abscopal.protocol import resistance
from abscopal.services import adjudication, enrolment
from abscopal.services.common import Action, protocol_of
from abscopal.services.signing import Meaning
from abscopal.web.accounts import LoginRefused, load_account, security_event
from abscopal.web.context import Principal, confirm_signing_password, reading, refuse, requires, state_of, unit_of_work
from abscopal.web.i18n import N_, gettext, sentences_in
from abscopal.web.pages.records import is_patient, posted_form
from abscopal.web.records import visible_patient
from abscopal.web.templating import language_of, render

router = APIRouter(include_in_schema=False)


def beside(exc: Exception) -> str:
    """The sentence shown beside a field: a ValidationError's reason without its field name, else the message."""
    return exc.reason if isinstance(exc, ValidationError) else str(exc)


BASE = "/patients/{subject_id}/adjudication"

#: What a redirect may ask the page to say (codes, never text from the URL).
NOTICES = {
    "proposed": N_("The adjudication was proposed. Two deputy chief physicians must now sign it."),
    "signed": N_("Your signature was added to the adjudication."),
}
#: The classes as the page names them (the values stay the engine's).
CLASS_LABELS = {
    d.ResistanceType.PRIMARY: N_("primary resistance"),
    d.ResistanceType.ACQUIRED: N_("acquired resistance"),
    d.ResistanceType.NOT_RESISTANT: N_("not resistant"),
    d.ResistanceType.UNDETERMINED: N_("undetermined"),
}


def _full_names(uow: Any, usernames: list[str]) -> dict[str, str]:
    """Each signer's full name: the web account's (what the sign-in knows), else the trial's users table."""
    names: dict[str, str] = {}
    for u in dict.fromkeys(usernames):
        account = load_account(uow.connection, u)
        found = uow.users.find(username=u) if account is None else None
        names[u] = account.full_name if account is not None else found.value.full_name if found is not None else u
    return names


def adjudication_context(request: Request, principal: Principal, subject_id: str) -> dict[str, Any]:
    """Everything the page shows, read in one transaction; every derived value is an engine's or a service's."""
    if is_patient(principal):  # a patient's account sees only its own questionnaires (web.md §1)
        raise NotFound(Message(N_("No adjudication of {subject} for you"), subject=repr(subject_id)))
    protocols = state_of(request).protocols
    with reading(request, principal) as uow:
        patient, actor = visible_patient(uow, principal, subject_id)
        rules = protocol_of(patient.value, protocols, dt.date.today()).resistance
        histories = sorted(uow.immunotherapy_histories.for_subject(subject_id), key=lambda s: s.value.start_date)
        assessment: resistance.ResistanceAssessment | None = None
        assessment_error: str | None = None
        if histories:
            try:
                assessment = resistance.classify(histories[-1].value, rules)
            except ValidationError as exc:
                assessment_error = str(exc)
        current = adjudication.current_adjudication(uow, subject_id)
        signers = resistance.valid_signers(current.value, rules) if current else []
        names = _full_names(uow, [s.username for s in current.value.signatures]) if current else {}
        proposer = _full_names(uow, [current.value.proposed_by]) if current else {}
        _, reasons = enrolment.eligibility_of(uow, actor, subject_id, protocols=protocols)
    effective = current is not None and resistance.is_effective(current.value, rules)
    signatures = (
        [{"username": s.username, "full_name": names.get(s.username, s.username), "role": s.role.value,
          "at": s.signed_at, "meaning": Meaning.ADJUDICATED.value, "statement": s.meaning}
         for s in current.value.signatures]
        if current else []
    )  # fmt: skip
    username = principal.username
    already_signed = current is not None and any(s.username == username for s in current.value.signatures)
    return {
        "subject_id": subject_id, "patient": patient.value, "histories": histories, "latest": histories[-1]
        if histories else None, "assessment": assessment, "assessment_error": assessment_error, "current": current,
        "signatures": signatures, "signers": signers, "required": rules.required_signatures,
        "signer_role": rules.signer_role, "effective": effective, "proposer_name": proposer.get(
            current.value.proposed_by, "") if current else "",
        "enrolment_reasons": sentences_in(language_of(request), reasons),
        "rule_reasons": sentences_in(language_of(request), assessment.reasons) if assessment else [],
        "at_screening": patient.value.status is d.PatientStatus.SCREENING,
        "may_propose": principal.may(Action.PROPOSE_ADJUDICATION) and current is None,
        "may_sign": principal.may(Action.SIGN_ADJUDICATION) and current is not None and not effective,
        "is_proposer": current is not None and current.value.proposed_by == username,
        "already_signed": already_signed, "class_labels": CLASS_LABELS,
        "classes": [(t.value, CLASS_LABELS[t]) for t in d.ResistanceType], "base_url": BASE.format(
            subject_id=subject_id), "rules": rules,
    }  # fmt: skip


def adjudication_page(
    request: Request, principal: Principal, subject_id: str, *, status: int = 200, notice: str | None = None,
    errors: Mapping[str, str] | None = None, error: str | None = None,
) -> Response:  # fmt: skip
    context = adjudication_context(request, principal, subject_id)
    return render(
        request, "adjudication.html", status_code=status, notice=notice, errors=dict(errors or {}), error=error,
        **context,
    )  # fmt: skip


@router.get(BASE, name="page_adjudication")
def show(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.READ))],
    notice: str | None = None,
) -> Response:  # fmt: skip
    return adjudication_page(request, principal, subject_id, notice=NOTICES.get(notice or ""))


def _text(language: str, message: str) -> str:
    return gettext(language, message)


@router.post(f"{BASE}/propose", name="page_adjudication_propose")
async def propose(
    subject_id: str, request: Request,
    principal: Annotated[Principal, Depends(requires(Action.PROPOSE_ADJUDICATION))],
) -> Response:  # fmt: skip
    posted = await posted_form(request)

    def run() -> Response:
        language = language_of(request)
        with reading(request, principal) as uow:  # another site's patient is 404 before the form is read
            visible_patient(uow, principal, subject_id)
        try:
            classification = d.ResistanceType(posted.get("classification") or "")
        except ValueError:
            return adjudication_page(
                request, principal, subject_id, status=422,
                errors={"classification": _text(language, N_("Choose the classification you propose."))},
            )  # fmt: skip
        try:
            with unit_of_work(request, principal, "resistance adjudication proposed") as uow:
                _, actor = visible_patient(uow, principal, subject_id)
                adjudication.propose_adjudication(
                    uow, actor, subject_id, classification, protocols=state_of(request).protocols
                )
        except (ValidationError, RecordLocked, ConflictError) as exc:
            return adjudication_page(
                request, principal, subject_id, status=423 if isinstance(exc, RecordLocked) else 422,
                errors={"classification": beside(exc)},
            )  # fmt: skip
        return RedirectResponse(f"{BASE.format(subject_id=subject_id)}?notice=proposed", status_code=303)

    return await run_in_threadpool(run)


def _version(posted: Mapping[str, str]) -> int | None:
    text = (posted.get("version") or "").strip()
    return int(text) if text.isdigit() else None


@router.post(f"{BASE}/sign", name="page_adjudication_sign")
async def sign(
    subject_id: str, request: Request,
    principal: Annotated[Principal, Depends(requires(Action.SIGN_ADJUDICATION))],
) -> Response:  # fmt: skip
    posted = await posted_form(request)

    def run() -> Response:
        language = language_of(request)
        adjudication_id = (posted.get("adjudication_id") or "").strip()
        version = _version(posted)
        password = posted.get("password") or ""
        with reading(request, principal) as uow:  # the patient and the record first: a 404 counts no password
            visible_patient(uow, principal, subject_id)
            if adjudication_id:
                try:
                    found = uow.adjudications.get(adjudication_id)
                except NotFound:
                    found = None
                if found is None or found.value.subject_id != subject_id:
                    raise NotFound(
                        Message(
                            N_("No adjudication {record} for patient {subject}"),
                            record=repr(adjudication_id),
                            subject=subject_id,
                        )
                    )
        if not adjudication_id or version is None:
            return adjudication_page(
                request, principal, subject_id, status=422,
                error=_text(language, N_("The form did not say which adjudication you sign; reload the page.")),
            )  # fmt: skip
        if not password:
            return adjudication_page(
                request, principal, subject_id, status=422,
                errors={"password": _text(
                    language, N_("Type your password again to sign (21 CFR 11.200); nothing was signed."))},
            )  # fmt: skip
        state = state_of(request)
        try:
            confirm_signing_password(request, principal, password)
            with unit_of_work(request, principal, "resistance adjudication signed") as uow:
                _, actor = visible_patient(uow, principal, subject_id)
                stored = adjudication.sign_adjudication(
                    uow, actor, adjudication_id, version=version, protocols=state.protocols
                )
        except PermissionDenied as exc:
            refuse(request, principal, Action.SIGN_ADJUDICATION, str(exc))  # audited like a route's refusal
            return adjudication_page(request, principal, subject_id, status=403, errors={"password": beside(exc)})
        except LoginRefused as exc:  # the account is locked after three wrong passwords at signing
            return adjudication_page(request, principal, subject_id, status=403, errors={"password": beside(exc)})
        except ConflictError as exc:
            return adjudication_page(request, principal, subject_id, status=409, error=str(exc))
        except (ValidationError, RecordLocked) as exc:
            status = 423 if isinstance(exc, RecordLocked) else 422
            return adjudication_page(request, principal, subject_id, status=status, errors={"password": beside(exc)})
        with state.write() as conn:
            security_event(
                conn, principal.username, "signed",
                f"adjudicated: resistance adjudication {adjudication_id} of {subject_id} (version {stored.version})",
            )  # fmt: skip
        return RedirectResponse(f"{BASE.format(subject_id=subject_id)}?notice=signed", status_code=303)

    return await run_in_threadpool(run)
