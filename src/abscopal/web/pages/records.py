"""One record's pages (web.md §3, §8): the record with its state, queries and history; the edit and new-record
forms; the small forms of its life (SDV mark, e-signature, lock/unlock, raise a query, remove).

Every write goes through the services (the API calls the same ones). A stale version re-renders the form with
409, naming who changed which fields when and showing their value beside yours; a locked record is 423 with the
sentence naming who locked it and when; a refused value is 422 with the message beside its field.
"""

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from abscopal import domain as d
from abscopal.errors import ConflictError, NotFound, RecordLocked, ValidationError
from abscopal.messages import Message
from abscopal.services import locking, monitoring, queries, signing
from abscopal.services.common import ACTION_OF_ENTITY, PERMISSIONS, Action, Actor
from abscopal.services.ports import UnitOfWorkLike, records_of
from abscopal.services.records import remove_record
from abscopal.store.records import Stored
from abscopal.web import audit_view
from abscopal.web.context import Principal, confirm_signing_password, reading, requires, state_of, unit_of_work
from abscopal.web.forms import display, editable_fields, errors_of, form_fields, items_of, label_of, parse
from abscopal.web.i18n import N_, gettext
from abscopal.web.records import (
    RESOURCES,
    Resource,
    build,
    entry_page,
    patient_marks,
    pseudonymised,
    record_state,
    resource,
    visible_patient,
)
from abscopal.web.templating import language_of, render

router = APIRouter(include_in_schema=False)
FIRST_ENTRY = "entered in the web application"
#: The notices a redirect may ask the record page to show (codes, never text from the URL).
NOTICES = {
    "saved": N_("Saved."),
    "created": N_("The record was entered."),
    "verified": N_("Marked as verified against the source."),
    "signed": N_("Signed."),
    "locked": N_("Locked."),
    "unlocked": N_("Unlocked."),
    "query": N_("The query was raised."),
}
PATIENT_SLUGS = frozenset({"questionnaires"})  # what a patient's own account sees of its records (web.md §1)


def is_patient(principal: Principal) -> bool:
    return d.Role.PATIENT in principal.account.roles


def zone_of(request: Request) -> str:
    """The signed-in user's site's time zone (web.md §8: times shown in the site's zone)."""
    principal = getattr(request.state, "principal", None)
    return state_of(request).time_zone_of(principal.account if principal is not None else None)


def today_in(request: Request) -> dt.date:
    """Today in the signed-in user's site's time zone: the calendar day a record made there today carries (the
    services check "not in the future" against the patient's site's day, ``services.common.site_today``)."""
    return dt.datetime.now(ZoneInfo(zone_of(request))).date()


def visible_record(
    uow: UnitOfWorkLike, principal: Principal, res: Resource, subject_id: str, record_id: str
) -> tuple[Stored[d.Patient], Actor, Stored[Any]]:
    """The patient, the actor at its site and the record (404: another site, another patient, a patient's
    account asking for anything but its questionnaires)."""
    patient, actor = visible_patient(uow, principal, subject_id)
    if is_patient(principal) and res.slug not in PATIENT_SLUGS:
        raise NotFound(
            Message(N_("{kind}: no record {record} for you"), kind=Message(res.title), record=repr(record_id))
        )
    record = records_of(uow, res.entity).get(record_id)
    if getattr(record.value, "subject_id", subject_id) != subject_id:
        raise NotFound(
            Message(
                N_("{kind}: no record {record} for patient {subject}"),
                kind=Message(res.title),
                record=repr(record_id),
                subject=subject_id,
            )
        )
    return patient, actor, record


def may_write(principal: Principal, res: Resource) -> bool:
    return res.write_action is not None and res.save is not None and principal.may(res.write_action)


def may_sign(actor: Actor, entity: str) -> bool:
    action = ACTION_OF_ENTITY.get(entity)
    if action is None or entity == "adjudications":
        return False
    return actor.role in PERMISSIONS[action] or actor.role in PERMISSIONS[Action.SIGN_CASEBOOK]


def _value_of(text: str | None) -> str:
    """An audit trail value (canonical JSON) as text."""
    if text is None:
        return "—"
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    if isinstance(value, str):
        return value
    if value is None:
        return "—"
    return text


def history_rows(conn: Any, entity: str, record_id: str, language: str = "en") -> list[dict[str, Any]]:
    """The record's audit history (its child rows included), newest first, for the templates."""
    entered = gettext(language, N_("(record entered)"))
    rows = []
    for e in reversed(audit_view.record_history(conn, entity, record_id)):
        child = "" if e.entity == entity else f"{e.entity} {e.record_id}: "
        rows.append(
            {"at": e.at, "username": e.username, "field": child + (entered if e.field == "*" else e.field),
             "created": e.field == "*", "old": e.old or "—", "new": e.new or "—", "reason": e.reason,
             "version": e.version}
        )  # fmt: skip
    return rows


def record_context(
    request: Request, principal: Principal, res: Resource, subject_id: str, record_id: str
) -> dict[str, Any]:
    zone = zone_of(request)
    with reading(request, principal) as uow:
        patient, actor, record = visible_record(uow, principal, res, subject_id, record_id)
        marks = patient_marks(uow, subject_id)
        state = record_state(res.entity, record, marks, patient.id)
        lock = marks.locks.get((res.entity, record.id)) or marks.locks.get(("patients", patient.id))
        open_queries = [
            q for q in uow.queries.for_subject(subject_id)
            if q.value.entity == res.entity and q.value.record_id == record.id
            and q.value.status is not d.QueryStatus.CLOSED
        ]  # fmt: skip
        trail = (
            history_rows(uow.connection, res.entity, record.id, language_of(request))
            if principal.may(Action.AUDIT_VIEW)
            else None
        )
    names = [f.name for f in editable_fields(res.cls)]
    fields = [
        {"name": n, "label": label_of(n), "value": display(getattr(record.value, n), zone),
         "lines": items_of(getattr(record.value, n), zone) if isinstance(getattr(record.value, n), tuple | dict)
         else ()}
        for n in names
    ]  # fmt: skip
    return {
        "res": res, "subject_id": subject_id, "patient": patient.value, "record": record, "fields": fields,
        "field_names": names, "state": state, "lock": lock, "queries": open_queries, "history": trail,
        "label": res.label(record.value) or record.id, "may_edit": may_write(principal, res),
        "may_sdv": principal.may(Action.SDV), "may_sign": may_sign(actor, res.entity),
        "may_lock": principal.may(Action.LOCK), "may_query": principal.may(Action.RAISE_QUERY),
        "meanings": [m.value for m in signing.Meaning if m is not signing.Meaning.ADJUDICATED],
        "hidden_identifiers": pseudonymised(actor), "base_url": f"/patients/{subject_id}/{res.slug}/{record.id}",
    }  # fmt: skip


def record_page(
    request: Request, principal: Principal, res: Resource, subject_id: str, record_id: str,
    *, status: int = 200, error: str | None = None, notice: str | None = None,
) -> Response:  # fmt: skip
    context = record_context(request, principal, res, subject_id, record_id)
    return render(request, "record.html", status_code=status, error=error, notice=notice, **context)


# --- the edit and new-record forms


def _version(posted: Mapping[str, str], name: str = "version") -> int | None:
    text = (posted.get(name) or "").strip()
    return int(text) if text.isdigit() else None


def form_page(
    request: Request, res: Resource, subject_id: str, *, record: Stored[Any] | None, posted: Mapping[str, str] | None,
    version: int | None, errors: Mapping[str, str] | None = None, error: str | None = None, status: int = 200,
    conflict: list[dict[str, Any]] | None = None, locked: str | None = None,
) -> Response:  # fmt: skip
    fields = form_fields(
        res.cls, record.value if record is not None else None, posted=posted, errors=errors, zone=zone_of(request)
    )
    return render(
        request, "record_form.html", status_code=status, res=res, subject_id=subject_id, record=record,
        fields=fields, version=version, reason=(posted or {}).get("reason", ""),
        reason_error=(errors or {}).get("reason"), error=error, conflict=conflict or [], locked=locked,
        has_readonly=any(f.kind == "readonly" for f in fields),
        entry_url=entry_page(res.slug, subject_id, record.id if record is not None else None),
    )  # fmt: skip


def show_form(
    request: Request, principal: Principal, res: Resource, subject_id: str, record_id: str | None
) -> Response:
    with reading(request, principal) as uow:
        if record_id is None:
            patient, _ = visible_patient(uow, principal, subject_id)
            return form_page(request, res, subject_id, record=None, posted=None, version=None)
        patient, _, record = visible_record(uow, principal, res, subject_id, record_id)
        marks = patient_marks(uow, subject_id, with_voided=False)
        state = record_state(res.entity, record, marks, patient.id)
    locked = None
    if state.status == "locked":
        locked = (
            gettext(language_of(request), N_("%(user)s at %(at)s UTC"))
            % {"user": state.locked_by, "at": f"{state.locked_at:%Y-%m-%d %H:%M}"}
            if state.locked_at
            else state.locked_by
        )
    return form_page(request, res, subject_id, record=record, posted=None, version=record.version, locked=locked)


def _conflict_rows(exc: ConflictError, posted: Mapping[str, str]) -> list[dict[str, Any]]:
    rows = []
    for c in exc.changes:
        rows.append(
            {"username": c.username, "at": c.at, "field": c.field, "label": label_of(c.field),
             "theirs": _value_of(c.new_value), "yours": posted.get(c.field, "—") or "—"}
        )  # fmt: skip
    return rows


def save_form(
    request: Request, principal: Principal, res: Resource, subject_id: str, record_id: str | None,
    posted: Mapping[str, str],
) -> Response:  # fmt: skip
    assert res.save is not None
    zone = zone_of(request)
    with reading(request, principal) as uow:
        if record_id is None:
            visible_patient(uow, principal, subject_id)
            current = None
        else:
            _, _, current = visible_record(uow, principal, res, subject_id, record_id)
    names = {f.name for f in editable_fields(res.cls)}
    errors: dict[str, str] = {}
    top: str | None = None
    version = _version(posted) if current is not None else None
    reason = (posted.get("reason") or "").strip()
    if current is not None:
        if version is None:
            top = gettext(
                language_of(request),
                N_("The form did not say which version of the record it was based on; reload the page and try again."),
            )
        if not reason:
            errors["reason"] = gettext(
                language_of(request), N_("Every edit after the first save needs a reason (it goes to the audit trail).")
            )
    body: dict[str, Any] | None = None
    try:
        body = parse(res.cls, posted, base=current.value if current else None, zone=zone)
    except ValidationError as exc:
        found, sentence = errors_of(exc, names)
        errors.update(found)
        top = top or sentence
    if errors or top or body is None:
        return form_page(
            request, res, subject_id, record=current, posted=posted, version=version, errors=errors, error=top,
            status=422,
        )  # fmt: skip
    obj = build(res.cls, subject_id, body)
    try:
        with unit_of_work(request, principal, reason if current is not None else FIRST_ENTRY) as uow:
            _, actor = visible_patient(uow, principal, subject_id)
            stored = res.save(uow, actor, obj, record_id, version, state_of(request).protocols)
    except ConflictError as exc:
        return form_page(
            request, res, subject_id, record=current, posted=posted, version=exc.current, error=str(exc),
            status=409, conflict=_conflict_rows(exc, posted),
        )  # fmt: skip
    except RecordLocked as exc:
        return form_page(
            request, res, subject_id, record=current, posted=posted, version=version, error=str(exc), status=423,
            locked=str(exc),
        )  # fmt: skip
    except ValidationError as exc:
        found, sentence = errors_of(exc, names)
        return form_page(
            request, res, subject_id, record=current, posted=posted, version=version, errors=found, error=sentence,
            status=422,
        )  # fmt: skip
    notice = "saved" if current is not None else "created"
    return RedirectResponse(f"/patients/{subject_id}/{res.slug}/{stored.id}?notice={notice}", status_code=303)


async def posted_form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _routes(res: Resource) -> None:
    base = f"/patients/{{subject_id}}/{res.slug}"

    if may_be_written(res):
        write = res.write_action
        assert write is not None

        @router.get(f"{base}/new", name=f"page_new_{res.slug}")
        def new_page(
            subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(write))]
        ) -> Response:
            return show_form(request, principal, res, subject_id, None)

        @router.post(f"{base}/new", name=f"page_create_{res.slug}")
        async def create(
            subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(write))]
        ) -> Response:
            posted = await posted_form(request)
            return await run_in_threadpool(save_form, request, principal, res, subject_id, None, posted)

    @router.get(f"{base}/{{record_id}}", name=f"page_{res.slug}")
    def view(
        subject_id: str, record_id: str, request: Request,
        principal: Annotated[Principal, Depends(requires(Action.READ))], notice: str | None = None,
    ) -> Response:  # fmt: skip
        return record_page(request, principal, res, subject_id, record_id, notice=NOTICES.get(notice or ""))

    @router.get(f"{base}/{{record_id}}/history", name=f"page_history_{res.slug}")
    def history_page(
        subject_id: str, record_id: str, request: Request,
        principal: Annotated[Principal, Depends(requires(Action.AUDIT_VIEW))],
    ) -> Response:  # fmt: skip
        with reading(request, principal) as uow:
            _, _, record = visible_record(uow, principal, res, subject_id, record_id)
            rows = history_rows(uow.connection, res.entity, record.id, language_of(request))
        return render(
            request, "record_history.html", res=res, subject_id=subject_id, record=record, history=rows,
            label=res.label(record.value) or record.id,
        )  # fmt: skip

    if not may_be_written(res):
        return
    write_action = res.write_action
    assert write_action is not None

    @router.get(f"{base}/{{record_id}}/edit", name=f"page_edit_{res.slug}")
    def edit_page(
        subject_id: str, record_id: str, request: Request,
        principal: Annotated[Principal, Depends(requires(write_action))],
    ) -> Response:  # fmt: skip
        return show_form(request, principal, res, subject_id, record_id)

    @router.post(f"{base}/{{record_id}}/edit", name=f"page_save_{res.slug}")
    async def save(
        subject_id: str, record_id: str, request: Request,
        principal: Annotated[Principal, Depends(requires(write_action))],
    ) -> Response:  # fmt: skip
        posted = await posted_form(request)
        return await run_in_threadpool(save_form, request, principal, res, subject_id, record_id, posted)

    @router.post(f"{base}/{{record_id}}/remove", name=f"page_remove_{res.slug}")
    async def remove(
        subject_id: str, record_id: str, request: Request,
        principal: Annotated[Principal, Depends(requires(write_action))],
    ) -> Response:  # fmt: skip
        posted = await posted_form(request)

        def run() -> Response:
            with reading(request, principal) as uow:  # another site's patient is 404 before the form is read
                visible_record(uow, principal, res, subject_id, record_id)
            version, reason = _version(posted), (posted.get("reason") or "").strip()
            if version is None or not reason:
                return record_page(
                    request, principal, res, subject_id, record_id, status=422,
                    error=gettext(
                        language_of(request),
                        N_("Removing a record needs the reason (it goes to the audit trail) and the form's version."),
                    ),
                )  # fmt: skip
            try:
                with unit_of_work(request, principal, reason) as uow:
                    _, actor, _ = visible_record(uow, principal, res, subject_id, record_id)
                    remove_record(uow, actor, res.entity, record_id, version=version, reason=reason)
            except (ConflictError, RecordLocked, ValidationError) as exc:
                return record_page(request, principal, res, subject_id, record_id, status=_status(exc), error=str(exc))
            return RedirectResponse(f"/patients/{subject_id}?notice=removed", status_code=303)

        return await run_in_threadpool(run)


def may_be_written(res: Resource) -> bool:
    return res.write_action is not None and res.save is not None


def _status(exc: Exception) -> int:
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, RecordLocked):
        return 423
    return 422


for _res in RESOURCES.values():
    _routes(_res)


# --- the small forms of a record's life (one route each, for every kind of record)

ACTION_PATH = "/patients/{subject_id}/{slug}/{record_id}"


def _act(
    request: Request, principal: Principal, slug: str, subject_id: str, record_id: str, notice: str, work: Any
) -> Response:
    """Run ``work(uow, actor, record)`` in a unit of work; redirect to the record with ``notice``, or re-render
    the record page with the refusal's sentence."""
    res = resource(slug)
    with reading(request, principal) as uow:  # another site's patient is 404 before the form is read
        visible_record(uow, principal, res, subject_id, record_id)
    try:
        work(res)
    except (ConflictError, RecordLocked, ValidationError) as exc:
        return record_page(request, principal, res, subject_id, record_id, status=_status(exc), error=str(exc))
    return RedirectResponse(f"/patients/{subject_id}/{slug}/{record_id}?notice={notice}", status_code=303)


@router.post(f"{ACTION_PATH}/sdv", name="page_sdv")
async def sdv(
    subject_id: str, slug: str, record_id: str, request: Request,
    principal: Annotated[Principal, Depends(requires(Action.SDV))],
) -> Response:  # fmt: skip
    posted = await posted_form(request)

    def work(res: Resource) -> None:
        version = _version(posted)
        if version is None:
            raise ValidationError("version", "the form did not say which version you verified; reload the page")
        with unit_of_work(request, principal, "source data verified") as uow:
            _, actor, _ = visible_record(uow, principal, res, subject_id, record_id)
            monitoring.mark_sdv(uow, actor, res.entity, record_id, version=version)

    return await run_in_threadpool(_act, request, principal, slug, subject_id, record_id, "verified", work)


@router.post(f"{ACTION_PATH}/sign", name="page_sign")
async def sign(
    subject_id: str, slug: str, record_id: str, request: Request,
    principal: Annotated[Principal, Depends(requires(Action.READ))],
) -> Response:  # fmt: skip
    posted = await posted_form(request)

    def work(res: Resource) -> None:
        version = _version(posted)
        meaning_text = posted.get("meaning") or ""
        password = posted.get("password") or ""
        if version is None:
            raise ValidationError("version", "the form did not say which version you sign; reload the page")
        try:
            meaning = signing.Meaning(meaning_text)
        except ValueError:
            raise ValidationError("meaning", "choose what your signature means") from None
        if not password:
            raise ValidationError("password", "type your password again to sign (21 CFR 11.200); nothing was signed")
        with reading(request, principal) as uow:
            visible_record(uow, principal, res, subject_id, record_id)
        confirm_signing_password(request, principal, password)
        with unit_of_work(request, principal, f"signed ({meaning.value})") as uow:
            _, actor, _ = visible_record(uow, principal, res, subject_id, record_id)
            signing.sign_record(uow, actor, res.entity, record_id, version=version, meaning=meaning)

    return await run_in_threadpool(_act, request, principal, slug, subject_id, record_id, "signed", work)


@router.post(f"{ACTION_PATH}/lock", name="page_lock")
async def lock(
    subject_id: str, slug: str, record_id: str, request: Request,
    principal: Annotated[Principal, Depends(requires(Action.LOCK))],
) -> Response:  # fmt: skip
    posted = await posted_form(request)

    def work(res: Resource) -> None:
        reason = (posted.get("reason") or "").strip()
        if not reason:
            raise ValidationError("reason", "a lock needs a reason")
        with unit_of_work(request, principal, reason) as uow:
            _, actor, _ = visible_record(uow, principal, res, subject_id, record_id)
            locking.lock_record(uow, actor, res.entity, record_id, reason=reason)

    return await run_in_threadpool(_act, request, principal, slug, subject_id, record_id, "locked", work)


@router.post(f"{ACTION_PATH}/unlock", name="page_unlock")
async def unlock(
    subject_id: str, slug: str, record_id: str, request: Request,
    principal: Annotated[Principal, Depends(requires(Action.LOCK))],
) -> Response:  # fmt: skip
    posted = await posted_form(request)

    def work(res: Resource) -> None:
        reason = (posted.get("reason") or "").strip()
        lock_id = posted.get("lock_id") or ""
        version = _version(posted, "lock_version")
        if not reason:
            raise ValidationError("reason", "unlocking needs a reason")
        if not lock_id or version is None:
            raise ValidationError("lock_id", "the form did not say which lock to remove; reload the page")
        with unit_of_work(request, principal, reason) as uow:
            _, actor, _ = visible_record(uow, principal, res, subject_id, record_id)
            locking.unlock(uow, actor, lock_id, version=version, reason=reason)

    return await run_in_threadpool(_act, request, principal, slug, subject_id, record_id, "unlocked", work)


@router.post(f"{ACTION_PATH}/query", name="page_raise_query")
async def raise_query(
    subject_id: str, slug: str, record_id: str, request: Request,
    principal: Annotated[Principal, Depends(requires(Action.RAISE_QUERY))],
) -> Response:  # fmt: skip
    posted = await posted_form(request)

    def work(res: Resource) -> None:
        field = (posted.get("field") or "").strip()
        text = (posted.get("text") or "").strip()
        if field not in {f.name for f in editable_fields(res.cls)}:
            raise ValidationError("field", "choose the field the query is about")
        if not text:
            raise ValidationError("text", "a query needs its question")
        with unit_of_work(request, principal, "query raised") as uow:
            _, actor, _ = visible_record(uow, principal, res, subject_id, record_id)
            queries.raise_query(uow, actor, subject_id, res.entity, field, text, record_id=record_id)

    return await run_in_threadpool(_act, request, principal, slug, subject_id, record_id, "query", work)
