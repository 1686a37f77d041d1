"""Questionnaires (ePRO): QLQ-C30 and QLQ-LC13 for the patient on a phone, and paper transcription (issue 12 item 8).

The patient answers one item per screen (``/patients/{subject_id}/epro/{visit}``); each answer is its own POST
(htmx, or a plain form post without JavaScript) that stores that one item through
:func:`abscopal.services.questionnaires.record_questionnaire` at once, so a dropped connection loses at most the
answer being given, and reopening the visit shows the next unanswered item
(:func:`abscopal.services.questionnaires.questionnaire_progress`). When every item of an instrument is stored the
QoL engine scores it (:func:`abscopal.qol.score_answers`, the EORTC scoring manual) and the last screen shows the
scale scores. Coordinators transcribe a paper form with a reason (``/patients/{subject_id}/epro/transcribe``).

**Item wording.** The EORTC questionnaires' wording is copyright: Abscopal shows the item numbers and the QoL
engine's short labels (:data:`abscopal.qol.ITEMS`). A site holding an EORTC licence sets the environment variable
``ABSCOPAL_EPRO_WORDING`` to a JSON file of the official wording, by language and item number (QLQ-LC13 item k is
number 30 + k, as everywhere in Abscopal)::

    {"en": {"1": "<item 1 as licensed>", "31": "..."}, "zh_Hans": {"1": "..."}}

and, optionally, the answer categories, by scale length ("4" or "7") and value:
``{"options": {"en": {"4": {"1": "...", "2": "..."}}}}``. An item or language the file does not hold keeps its
short label; the file is re-read when it changes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from abscopal import domain as d
from abscopal.errors import ConflictError, NotFound, RecordLocked, ValidationError
from abscopal.messages import Message
from abscopal.protocol.calendar import questionnaire_visit_codes, questionnaire_visit_number
from abscopal.protocol.model import Protocol
from abscopal.qol import ITEMS
from abscopal.qol.eortc import SCALES, ItemDefinition
from abscopal.services import questionnaires as q
from abscopal.services.common import Action, Actor, StaffRole, protocol_of
from abscopal.services.ports import UnitOfWorkLike
from abscopal.web.context import Principal, reading, requires, state_of, unit_of_work
from abscopal.web.i18n import N_, error_text, gettext, translate
from abscopal.web.pages.records import is_patient, posted_form, today_in
from abscopal.web.problems import status_of
from abscopal.web.records import visible_patient
from abscopal.web.templating import language_of, render

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)

#: The environment variable naming a licensed site's file of the official item wording (module docstring).
WORDING_ENV = "ABSCOPAL_EPRO_WORDING"
#: The answer categories shown when no licensed wording is configured: the value and a short anchor.
DEFAULT_OPTIONS: dict[int, dict[int, str]] = {
    4: {1: N_("Not at all"), 2: N_("A little"), 3: N_("Quite a bit"), 4: N_("Very much")},
    7: {1: N_("Very poor"), 7: N_("Excellent")},
}
NOTICES = {"transcribed": N_("The paper form was transcribed."), "saved": N_("Your answer was saved.")}
BLANK = "blank"  # a transcribed item the patient left blank on paper (stored as no answer)


# --- the licensed wording (the configuration point)


@lru_cache(maxsize=4)
def _wording_file(path: str, mtime: float) -> dict[str, Any]:
    """The file's JSON object, read once per version of the file; a broken file is logged once and ignored (a
    patient must still be able to answer: the short labels are shown)."""
    try:
        with Path(path).open(encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict):
            raise ValueError("the file does not hold a JSON object")
    except (OSError, ValueError) as exc:
        log.warning(
            "%s=%s: the ePRO wording file cannot be read (%s); showing the short labels", WORDING_ENV, path, exc
        )
        return {}
    return data


def wording() -> dict[str, Any]:
    """The licensed wording file named by ``ABSCOPAL_EPRO_WORDING`` (empty when unset or unreadable, which is
    logged; re-read when it changes)."""
    path = os.environ.get(WORDING_ENV, "").strip()
    if not path:
        return {}
    try:
        mtime = Path(path).stat().st_mtime
    except OSError:
        mtime = -1.0
    return _wording_file(path, mtime)


def item_text(item: ItemDefinition, language: str) -> tuple[str, str | None]:
    """(the item's short label in ``language``, the licensed wording when the site configured it, else None)."""
    label = gettext(language, item.label)
    texts = wording().get(language) or {}
    official = texts.get(str(item.number)) if isinstance(texts, dict) else None
    return label, official if isinstance(official, str) and official.strip() else None


def answer_options(item: ItemDefinition, language: str) -> list[dict[str, Any]]:
    """The item's answers (value and anchor text): the licensed categories, else the defaults."""
    size = item.high - item.low + 1
    licensed = ((wording().get("options") or {}).get(language) or {}).get(str(size)) or {}
    anchors = DEFAULT_OPTIONS.get(size, {})
    out = []
    for value in range(item.low, item.high + 1):
        text = licensed.get(str(value)) if isinstance(licensed, dict) else None
        out.append({"value": value, "text": text or (gettext(language, anchors[value]) if value in anchors else "")})
    return out


# --- shared reads


def _protocol(uow: UnitOfWorkLike, request: Request, patient: Any) -> Protocol:
    return protocol_of(patient.value, state_of(request).protocols)


def instruments_of(protocol: Protocol) -> tuple[d.Instrument, ...]:
    """The protocol's questionnaires, in the order the patient answers them (QLQ-C30 first, then QLQ-LC13)."""
    return tuple(i for i in (d.Instrument.QLQ_C30, d.Instrument.QLQ_LC13) if i.value in protocol.qol.instruments)


def _visible(uow: UnitOfWorkLike, principal: Principal, subject_id: str) -> tuple[Any, Actor]:
    return visible_patient(uow, principal, subject_id)


def _check_visit(visit: str, protocol: Protocol) -> None:
    try:
        questionnaire_visit_number(visit, protocol.schedule)
    except ValidationError as exc:
        raise NotFound(
            Message(N_("No questionnaire visit {visit}: {reason}"), visit=repr(visit), reason=exc.reason)
        ) from None


def score_rows(progress: q.QuestionnaireProgress, language: str) -> list[dict[str, Any]]:
    """The QoL engine's scale scores of the complete instruments, with the scales' names, in report order."""
    names = {s.code: s.name for s in SCALES}
    rows = []
    for s in progress.scores:
        name = names.get(s.scale, N_("Summary score") if s.scale == "SUMSC" else s.scale)
        rows.append(
            {"instrument": s.instrument.value, "code": s.scale, "name": gettext(language, name),
             "score": None if s.score is None else f"{s.score:.1f}"}
        )  # fmt: skip
    return rows


# --- the patient's start page


@router.get("/epro", name="epro_start")
def epro_start(request: Request, principal: Annotated[Principal, Depends(requires(Action.QUESTIONNAIRES))]) -> Response:
    """The patient's own start page: straight to their questionnaires; staff are told where paper forms go."""
    subject_id = principal.account.subject_id
    if is_patient(principal) and subject_id:
        return RedirectResponse(f"/patients/{subject_id}/epro", status_code=303)
    return render(request, "epro_start.html")


@router.get("/patients/{subject_id}/epro", name="epro_overview")
def epro_overview(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.QUESTIONNAIRES))],
) -> Response:  # fmt: skip
    """The visits' questionnaires: the one to fill next (start or continue), and those already answered."""
    with reading(request, principal) as uow:
        patient, actor = _visible(uow, principal, subject_id)
        protocol = _protocol(uow, request, patient)
        instruments = instruments_of(protocol)
        codes = questionnaire_visit_codes(protocol.schedule)
        upcoming = q.next_visit(uow, actor, subject_id, codes, instruments)
        visits = [c for c in codes if c in q.visits_with_answers(uow, actor, subject_id)]
        progress = {v: q.questionnaire_progress(uow, actor, subject_id, v, instruments) for v in visits}
        if upcoming is not None and upcoming not in progress:
            progress[upcoming] = q.questionnaire_progress(uow, actor, subject_id, upcoming, instruments)
    rows = [
        {"visit": v, "answered": progress[v].answered, "total": len(progress[v].items),
         "complete": progress[v].complete}
        for v in reversed(visits)
    ]  # fmt: skip
    return render(
        request, "epro.html", subject_id=subject_id, upcoming=upcoming,
        upcoming_progress=progress.get(upcoming) if upcoming else None, rows=rows,
        patient_view=is_patient(principal), instruments=[i.value for i in instruments],
    )  # fmt: skip


# --- the coordinator's transcription of a paper form (before the {visit} routes: "transcribe" is no visit)


def _transcribe_page(
    request: Request, subject_id: str, *, visit: str, codes: tuple[str, ...], progress: q.QuestionnaireProgress,
    posted: Mapping[str, str] | None = None, errors: Mapping[str, str] | None = None, error: str | None = None,
    status: int = 200, completed_on: str = "",
) -> Response:  # fmt: skip
    language = language_of(request)
    items = []
    for item in progress.items:
        stored = progress.stored.get(item.number)
        if posted is not None:
            value = posted.get(f"item_{item.number}", "")
        elif stored is not None:
            value = BLANK if stored.value.answer is None else str(stored.value.answer)
        else:
            value = ""
        label, _ = item_text(item, language)
        items.append(
            {"number": item.number, "instrument": item.instrument.value, "label": label, "value": value,
             "version": stored.version if stored else None, "options": list(range(item.low, item.high + 1)),
             "error": (errors or {}).get(f"item_{item.number}")}
        )  # fmt: skip
    return render(
        request, "epro_transcribe.html", status_code=status, subject_id=subject_id, visit=visit, codes=codes,
        items=items, errors=errors or {}, error=error, reason=(posted or {}).get("reason", ""),
        completed_on=completed_on or today_in(request).isoformat(), blank=BLANK,
    )  # fmt: skip


@router.get("/patients/{subject_id}/epro/transcribe", name="epro_transcribe")
def transcribe_form(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.QUESTIONNAIRES))],
    visit: str = "",
) -> Response:  # fmt: skip
    """The paper form's items for one visit (the stored answers filled in), with the reason the service needs."""
    if is_patient(principal):
        return RedirectResponse(f"/patients/{subject_id}/epro", status_code=303)
    with reading(request, principal) as uow:
        patient, actor = _visible(uow, principal, subject_id)
        protocol = _protocol(uow, request, patient)
        codes = questionnaire_visit_codes(protocol.schedule)
        instruments = instruments_of(protocol)
        visit = visit or q.next_visit(uow, actor, subject_id, codes, instruments) or codes[0]
        _check_visit(visit, protocol)
        progress = q.questionnaire_progress(uow, actor, subject_id, visit, instruments)
    return _transcribe_page(request, subject_id, visit=visit, codes=codes, progress=progress)


def _transcribe(request: Request, principal: Principal, subject_id: str, posted: Mapping[str, str]) -> Response:
    language = language_of(request)
    with reading(request, principal) as uow:
        patient, actor = _visible(uow, principal, subject_id)
        protocol = _protocol(uow, request, patient)
        codes = questionnaire_visit_codes(protocol.schedule)
        instruments = instruments_of(protocol)
        visit = (posted.get("visit") or "").strip()
        if visit not in codes:
            visit = codes[0]
            bad_visit = True
        else:
            bad_visit = False
        progress = q.questionnaire_progress(uow, actor, subject_id, visit, instruments)
    errors: dict[str, str] = {}
    if bad_visit:
        errors["visit"] = gettext(language, N_("Choose the visit of the paper form."))
    reason = (posted.get("reason") or "").strip()
    if not reason:
        errors["reason"] = gettext(
            language, N_("Say why the answers are entered on the patient's behalf (it goes to the audit trail).")
        )
    completed_text = (posted.get("completed_on") or "").strip()
    try:
        completed_on = dt.date.fromisoformat(completed_text)
    except ValueError:
        errors["completed_on"] = gettext(language, N_("Give the date the patient filled in the paper form."))
        completed_on = today_in(request)
    answers: dict[d.Instrument, dict[int, int | None]] = {i: {} for i in instruments}
    versions: dict[int, int] = {}
    for item in progress.items:
        raw = (posted.get(f"item_{item.number}") or "").strip()
        if raw == "":
            continue  # not transcribed (yet)
        if raw == BLANK:
            answers[item.instrument][item.number] = None
        elif raw.isdigit():
            answers[item.instrument][item.number] = int(raw)
        else:
            errors[f"item_{item.number}"] = gettext(language, N_("Choose one of the answers, or “left blank”."))
        version = (posted.get(f"v_{item.number}") or "").strip()
        if version.isdigit():
            versions[item.number] = int(version)
    if not errors and not any(answers.values()):
        errors["items"] = gettext(language, N_("Transcribe at least one answer of the paper form."))

    def again(status: int, error: str | None = None) -> Response:
        return _transcribe_page(
            request, subject_id, visit=visit, codes=codes, progress=progress, posted=posted, errors=errors,
            error=error, status=status, completed_on=completed_text,
        )  # fmt: skip

    if errors:
        return again(422)
    try:
        with unit_of_work(request, principal, reason) as uow:
            _, actor = _visible(uow, principal, subject_id)
            for instrument, given in answers.items():
                if given:
                    q.record_questionnaire(
                        uow, actor, subject_id, visit, instrument, given, completed_on=completed_on,
                        versions=versions, on_behalf_reason=reason, protocols=state_of(request).protocols,
                    )  # fmt: skip
    except ConflictError as exc:
        return again(409, error_text(language, exc))
    except RecordLocked as exc:
        return again(423, error_text(language, exc))
    except ValidationError as exc:
        field = exc.field.replace("items.", "item_") if exc.field else ""
        if field in {f"item_{i.number}" for i in progress.items} | {"completed_on", "visit"}:
            errors[field] = translate(language, exc.reason)
            return again(422)
        return again(422, error_text(language, exc))
    return RedirectResponse(f"/patients/{subject_id}/epro/{visit}?notice=transcribed", status_code=303)


@router.post("/patients/{subject_id}/epro/transcribe", name="epro_transcribe_save")
async def transcribe_save(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.QUESTIONNAIRES))],
) -> Response:  # fmt: skip
    posted = await posted_form(request)
    if is_patient(principal):
        return RedirectResponse(f"/patients/{subject_id}/epro", status_code=303)
    return await run_in_threadpool(_transcribe, request, principal, subject_id, posted)


# --- one visit: the next item, one per screen; the scores at the end


def question_context(
    request: Request, subject_id: str, visit: str, progress: q.QuestionnaireProgress, item: ItemDefinition | None,
) -> dict[str, Any]:  # fmt: skip
    """What the question screen (or, with no item left, the scores screen) shows."""
    language = language_of(request)
    context: dict[str, Any] = {
        "subject_id": subject_id, "visit": visit, "answered": progress.answered, "total": len(progress.items),
        "complete": progress.complete, "scores": score_rows(progress, language), "item": None,
    }  # fmt: skip
    if item is not None:
        label, official = item_text(item, language)
        stored = progress.stored.get(item.number)
        order = [i.number for i in progress.items]
        position = order.index(item.number)
        context |= {
            "item": {"number": item.number, "instrument": item.instrument.value, "label": label, "official": official,
                     "options": answer_options(item, language), "position": position + 1,
                     "current": None if stored is None else stored.value.answer, "stored": stored is not None,
                     "version": stored.version if stored else None,
                     "previous": order[position - 1] if position > 0 else None},
        }  # fmt: skip
    return context


def _visit_progress(
    request: Request, principal: Principal, subject_id: str, visit: str
) -> tuple[q.QuestionnaireProgress, Actor]:
    with reading(request, principal) as uow:
        patient, actor = _visible(uow, principal, subject_id)
        protocol = _protocol(uow, request, patient)
        _check_visit(visit, protocol)
        progress = q.questionnaire_progress(uow, actor, subject_id, visit, instruments_of(protocol))
    return progress, actor


def _item_of(progress: q.QuestionnaireProgress, number: int | None) -> ItemDefinition | None:
    if number is None:
        return progress.next_item
    for item in progress.items:
        if item.number == number:
            return item
    raise NotFound(Message(N_("This questionnaire has no item {number}"), number=str(number)))


@router.get("/patients/{subject_id}/epro/{visit}", name="epro_visit")
def epro_visit(
    subject_id: str, visit: str, request: Request,
    principal: Annotated[Principal, Depends(requires(Action.QUESTIONNAIRES))], item: int | None = None,
    notice: str | None = None,
) -> Response:  # fmt: skip
    """The next unanswered item of the visit (or ``item``, to change an answer); the scores once complete.

    A coordinator sees the answers so far and the scores, and transcribes from paper (the screens are the
    patient's)."""
    progress, actor = _visit_progress(request, principal, subject_id, visit)
    if actor.role is StaffRole.PATIENT:
        context = question_context(request, subject_id, visit, progress, _item_of(progress, item))
    else:
        context = question_context(request, subject_id, visit, progress, None)
    rows = [
        {"number": i.number, "instrument": i.instrument.value, "label": item_text(i, language_of(request))[0],
         "answer": progress.stored[i.number].value.answer if i.number in progress.stored else None,
         "stored": i.number in progress.stored}
        for i in progress.items
    ]  # fmt: skip
    return render(
        request, "epro_visit.html", **context, patient_view=actor.role is StaffRole.PATIENT, rows=rows,
        notice=NOTICES.get(notice or ""), error=None,
    )  # fmt: skip


def _answer(request: Request, principal: Principal, subject_id: str, visit: str, posted: Mapping[str, str]) -> Response:
    language = language_of(request)
    htmx = bool(request.headers.get("hx-request"))
    progress, actor = _visit_progress(request, principal, subject_id, visit)
    number_text = (posted.get("item") or "").strip()
    item = _item_of(progress, int(number_text)) if number_text.isdigit() else None

    def screen(status: int, error: str | None, shown: ItemDefinition | None) -> Response:
        context = question_context(request, subject_id, visit, progress, shown)
        template = "epro_question.html" if htmx else "epro_visit.html"
        return render(request, template, status_code=status, **context, patient_view=True, rows=[], notice=None,
                      error=error)  # fmt: skip

    if actor.role is not StaffRole.PATIENT:
        return screen(422, gettext(language, N_("A coordinator enters a paper form on the transcription page.")), None)
    if item is None:
        return screen(422, gettext(language, N_("The form did not say which question it answers; reload the page.")),
                      progress.next_item)  # fmt: skip
    skip = bool(posted.get("skip"))
    raw = (posted.get("answer") or "").strip()
    if not skip and not (raw.isdigit() and item.low <= int(raw) <= item.high):
        sentence = gettext(language, N_("Choose one of the answers, or skip the question."))
        return screen(422, sentence, item)
    answer = None if skip else int(raw)
    version_text = (posted.get("version") or "").strip()
    versions = {item.number: int(version_text)} if version_text.isdigit() else None
    try:
        with unit_of_work(request, principal, "answered by the patient (ePRO)") as uow:
            _, actor = _visible(uow, principal, subject_id)
            q.record_questionnaire(
                uow, actor, subject_id, visit, item.instrument, {item.number: answer}, completed_on=today_in(request),
                versions=versions, protocols=state_of(request).protocols,
            )  # fmt: skip
    except (ConflictError, RecordLocked, ValidationError) as exc:
        progress, _ = _visit_progress(request, principal, subject_id, visit)
        status = status_of(exc)
        return screen(status, error_text(language, exc), item)
    if not htmx:
        return RedirectResponse(f"/patients/{subject_id}/epro/{visit}", status_code=303)
    progress, _ = _visit_progress(request, principal, subject_id, visit)
    return screen(200, None, progress.next_item)


@router.post("/patients/{subject_id}/epro/{visit}/answer", name="epro_answer")
async def epro_answer(
    subject_id: str, visit: str, request: Request,
    principal: Annotated[Principal, Depends(requires(Action.QUESTIONNAIRES))],
) -> Response:  # fmt: skip
    """Store one answer as it is given (htmx swaps in the next question; without JavaScript, a redirect)."""
    posted = await posted_form(request)
    return await run_in_threadpool(_answer, request, principal, subject_id, visit, posted)


def all_labels() -> tuple[str, ...]:
    """Every item's short label and scale name the pages translate at run time (the catalog test checks them)."""
    return (*(i.label for i in ITEMS), *(s.name for s in SCALES), "Summary score")
