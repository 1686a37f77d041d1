"""A patient's casebook: the PI's signature over every record and the data manager's lock (issue 12 item 10).

``GET /patients/{id}/casebook`` lists every record of the patient with its state (entered, edited, verified,
signed, locked: :func:`abscopal.web.records.record_state`) and the open queries; the site's PI signs the whole
casebook with a meaning and the password typed again (:func:`abscopal.services.casebook.sign_casebook`: its
content hash covers every record), and any later change to any record voids that signature, visibly and in the
audit trail (the store voids on an edit or a removal; a record added since is found by the digest and voided by
:func:`abscopal.services.casebook.void_changed_signatures` when the page is next read). The data manager locks the
casebook (:func:`abscopal.services.locking.lock_patient`: every record refuses edits) and unlocks it with a reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from abscopal import domain as d
from abscopal.errors import ConflictError, NotFound, PermissionDenied, RecordLocked, ValidationError
from abscopal.messages import Message
from abscopal.services import casebook, locking
from abscopal.services.common import SYSTEM_USER, Action
from abscopal.services.signing import Meaning
from abscopal.store.unit_of_work import UnitOfWork
from abscopal.web.accounts import LoginRefused, security_event
from abscopal.web.context import Principal, confirm_signing_password, reading, refuse, requires, state_of, unit_of_work
from abscopal.web.i18n import N_, gettext
from abscopal.web.pages.records import is_patient, posted_form
from abscopal.web.records import (
    RESOURCES,
    STATE_LABELS,
    RecordState,
    combined_state,
    patient_marks,
    pseudonymised,
    record_state,
    records_for,
    visible_patient,
)
from abscopal.web.templating import language_of, render

router = APIRouter(include_in_schema=False)


def beside(exc: Exception) -> str:
    """The sentence shown beside a field: a ValidationError's reason without its field name, else the message."""
    return exc.reason if isinstance(exc, ValidationError) else str(exc)


BASE = "/patients/{subject_id}/casebook"
NOTICES = {
    "signed": N_("You signed the casebook."),
    "locked": N_("The casebook is locked: every record of the patient now refuses edits."),
    "unlocked": N_("The casebook is unlocked."),
}
#: The meanings a casebook signature may have (the adjudication's is its own).
MEANINGS = tuple(m for m in Meaning if m is not Meaning.ADJUDICATED)
STATES = ("entered", "edited", "verified", "signed", "locked")


def _rows(res: Any, records: list[Any], marks: Any, patient_id: str) -> list[dict[str, Any]]:
    """A section's rows: one per record; questionnaire items one per questionnaire (visit x instrument)."""
    if res.entity != "questionnaire_answers":
        return [
            {"href": f"/patients/{{sid}}/{res.slug}/{r.id}", "label": res.label(r.value) or r.id, "version": r.version,
             "state": record_state(res.entity, r, marks, patient_id)}
            for r in records
        ]  # fmt: skip
    groups: dict[tuple[str, str], list[Any]] = {}
    for r in records:
        groups.setdefault((r.value.visit, r.value.instrument.value), []).append(r)
    rows = []
    for (visit, instrument), items in groups.items():
        states = [record_state(res.entity, r, marks, patient_id) for r in items]
        answered = sum(1 for r in items if r.value.answer is not None)
        rows.append(
            {"href": f"/patients/{{sid}}/{res.slug}/{items[0].id}",
             "label": f"{visit} · {instrument} · {answered}/{len(items)}", "version": max(r.version for r in items),
             "state": combined_state(states)}
        )  # fmt: skip
    return rows


def _void_stale(request: Request, subject_id: str) -> None:
    """Void, audited, the casebook signatures whose casebook changed since signing in a way the store does not void
    by itself (a record added); the system user makes that finding, not the person reading the page."""
    with UnitOfWork(state_of(request).engine, SYSTEM_USER, "casebook changed after its signature") as uow:
        casebook.void_changed_signatures(uow, subject_id)


def casebook_context(
    request: Request, principal: Principal, subject_id: str, *, settled: bool = False
) -> dict[str, Any]:
    """Every record with its state, the signatures, the lock and the open queries, read in one transaction."""
    if is_patient(principal):  # a patient's account sees only its own questionnaires (web.md §1)
        raise NotFound(Message(N_("No casebook of {subject} for you"), subject=repr(subject_id)))
    with reading(request, principal) as uow:
        patient, actor = visible_patient(uow, principal, subject_id)
        everything = casebook.casebook_records(uow, subject_id)
        signatures = casebook.casebook_signatures(uow, subject_id, everything)
        if not settled and any(s.void_reason is None and not s.holds for s in signatures):
            stale = True
        else:
            stale = False
            marks = patient_marks(uow, subject_id)
            sections: list[dict[str, Any]] = []
            for res in RESOURCES.values():
                rows = _rows(res, records_for(uow, res.entity, subject_id), marks, patient.id)
                for row in rows:
                    row["href"] = row["href"].replace("{sid}", subject_id)
                by_state = dict.fromkeys(STATES, 0)
                for row in rows:
                    by_state[row["state"].status] = by_state.get(row["state"].status, 0) + 1
                opened = any(row["state"].open_queries for row in rows)  # what needs an answer is shown open
                sections.append({"res": res, "rows": rows, "counts": by_state, "open": opened})
            lock = marks.locks.get(("patients", patient.id))
            open_queries = [
                q for q in uow.queries.for_subject(subject_id) if q.value.status is not d.QueryStatus.CLOSED
            ]
            record_count = len(everything)
    if stale:
        _void_stale(request, subject_id)
        return casebook_context(request, principal, subject_id, settled=True)
    counts = dict.fromkeys(STATES, 0)
    for section in sections:
        for row in section["rows"]:
            state: RecordState = row["state"]
            counts[state.status] = counts.get(state.status, 0) + 1
    live = [s for s in signatures if s.holds]
    return {
        "subject_id": subject_id, "patient": patient.value, "patient_record": patient, "sections": sections,
        "signatures": signatures, "live_signatures": live, "lock": lock, "queries": open_queries,
        "counts": counts, "state_labels": STATE_LABELS, "record_count": record_count,
        "hidden_identifiers": pseudonymised(actor), "may_sign": principal.may(Action.SIGN_CASEBOOK) and actor.pi,
        "may_lock": principal.may(Action.LOCK), "meanings": [m.value for m in MEANINGS],
        "base_url": BASE.format(subject_id=subject_id),
    }  # fmt: skip


def casebook_page(
    request: Request, principal: Principal, subject_id: str, *, status: int = 200, notice: str | None = None,
    errors: Mapping[str, str] | None = None, error: str | None = None,
) -> Response:  # fmt: skip
    context = casebook_context(request, principal, subject_id)
    return render(
        request, "casebook.html", status_code=status, notice=notice, errors=dict(errors or {}), error=error, **context
    )


@router.get(BASE, name="page_casebook")
def show(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.READ))],
    notice: str | None = None,
) -> Response:  # fmt: skip
    return casebook_page(request, principal, subject_id, notice=NOTICES.get(notice or ""))


def _version(posted: Mapping[str, str], name: str = "version") -> int | None:
    text = (posted.get(name) or "").strip()
    return int(text) if text.isdigit() else None


def _done(subject_id: str, notice: str) -> Response:
    return RedirectResponse(f"{BASE.format(subject_id=subject_id)}?notice={notice}", status_code=303)


def _status(exc: Exception) -> int:
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, RecordLocked):
        return 423
    if isinstance(exc, PermissionDenied | LoginRefused):
        return 403
    return 422


@router.post(f"{BASE}/sign", name="page_casebook_sign")
async def sign(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.SIGN_CASEBOOK))],
) -> Response:  # fmt: skip
    posted = await posted_form(request)

    def run() -> Response:
        language = language_of(request)
        with reading(request, principal) as uow:  # another site's patient is 404 before the form is read
            visible_patient(uow, principal, subject_id)
        version = _version(posted)
        password = posted.get("password") or ""
        errors: dict[str, str] = {}
        meaning: Meaning | None = None
        try:
            meaning = Meaning(posted.get("meaning") or "")
        except ValueError:
            errors["meaning"] = gettext(language, N_("Choose what your signature means."))
        if meaning is Meaning.ADJUDICATED:
            errors["meaning"] = gettext(language, N_("A casebook is reviewed or approved, not adjudicated."))
        if not password:
            errors["password"] = gettext(
                language, N_("Type your password again to sign (21 CFR 11.200); nothing was signed.")
            )
        if version is None:
            return casebook_page(
                request, principal, subject_id, status=422, errors=errors,
                error=gettext(language, N_("The form did not say which version of the casebook you sign; reload.")),
            )  # fmt: skip
        if errors or meaning is None:
            return casebook_page(request, principal, subject_id, status=422, errors=errors)
        try:
            confirm_signing_password(request, principal, password)
            with unit_of_work(request, principal, f"casebook signed ({meaning.value})") as uow:
                _, actor = visible_patient(uow, principal, subject_id)
                stored = casebook.sign_casebook(uow, actor, subject_id, version=version, meaning=meaning)
        except PermissionDenied as exc:
            refuse(request, principal, Action.SIGN_CASEBOOK, str(exc))  # audited like a route's refusal
            return casebook_page(request, principal, subject_id, status=403, error=str(exc))
        except ConflictError as exc:
            return casebook_page(request, principal, subject_id, status=409, error=str(exc))
        except (ValidationError, RecordLocked, LoginRefused) as exc:
            return casebook_page(request, principal, subject_id, status=_status(exc), errors={"password": beside(exc)})
        with state_of(request).write() as conn:
            security_event(
                conn, principal.username, "signed",
                f"casebook of {subject_id} signed ({meaning.value}), signature {stored.id}",
            )  # fmt: skip
        return _done(subject_id, "signed")

    return await run_in_threadpool(run)


@router.post(f"{BASE}/lock", name="page_casebook_lock")
async def lock(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.LOCK))],
) -> Response:  # fmt: skip
    posted = await posted_form(request)

    def run() -> Response:
        language = language_of(request)
        with reading(request, principal) as uow:
            visible_patient(uow, principal, subject_id)
        reason = (posted.get("reason") or "").strip()
        if not reason:
            return casebook_page(
                request, principal, subject_id, status=422,
                errors={"lock_reason": gettext(language, N_("A lock needs a reason (it goes to the audit trail)."))},
            )  # fmt: skip
        try:
            with unit_of_work(request, principal, reason) as uow:
                _, actor = visible_patient(uow, principal, subject_id)
                locking.lock_patient(uow, actor, subject_id, reason=reason)
        except (ValidationError, RecordLocked, ConflictError) as exc:
            return casebook_page(
                request, principal, subject_id, status=_status(exc), errors={"lock_reason": beside(exc)}
            )
        return _done(subject_id, "locked")

    return await run_in_threadpool(run)


@router.post(f"{BASE}/unlock", name="page_casebook_unlock")
async def unlock(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.LOCK))],
) -> Response:  # fmt: skip
    posted = await posted_form(request)

    def run() -> Response:
        language = language_of(request)
        with reading(request, principal) as uow:
            visible_patient(uow, principal, subject_id)
            lock_id = (posted.get("lock_id") or "").strip()
            if lock_id:
                try:
                    found = uow.locks.get(lock_id)
                except NotFound:
                    found = None
                if found is None or found.value.subject_id != subject_id or found.value.entity != "patients":
                    raise NotFound(
                        Message(
                            N_("No lock {record} on the casebook of {subject}"),
                            record=repr(lock_id),
                            subject=subject_id,
                        )
                    )
        reason = (posted.get("reason") or "").strip()
        version = _version(posted, "lock_version")
        if not reason:
            return casebook_page(
                request, principal, subject_id, status=422,
                errors={"unlock_reason": gettext(
                    language, N_("Unlocking needs a reason (it goes to the audit trail)."))},
            )  # fmt: skip
        if not lock_id or version is None:
            return casebook_page(
                request, principal, subject_id, status=422,
                error=gettext(language, N_("The form did not say which lock to remove; reload the page.")),
            )  # fmt: skip
        try:
            with unit_of_work(request, principal, reason) as uow:
                _, actor = visible_patient(uow, principal, subject_id)
                locking.unlock(uow, actor, lock_id, version=version, reason=reason)
        except (ValidationError, ConflictError, RecordLocked) as exc:
            return casebook_page(
                request, principal, subject_id, status=_status(exc), errors={"unlock_reason": beside(exc)}
            )
        return _done(subject_id, "unlocked")

    return await run_in_threadpool(run)
