"""The DICOM RT import page: an RT Plan or RT Beams Treatment Records from the browser (issue 13 items 5 and 7).

The uploaded files are written to a private temporary folder under their own names and handed to the importer the
CLI uses (:func:`abscopal.interop.dicom_rt.import_plan` / :func:`~abscopal.interop.dicom_rt.import_records`) with
the signed-in user as the actor, so the identity check, the protocol's plan and delivery checks, the deviations,
the all-or-nothing transaction and the audit reason (the file's SOP instance UID and SHA-256) are the CLI's.
"Check" runs everything but the commit and shows what would be recorded; "Import" records it. A refusal shows
the file, the DICOM element and the reason, and writes nothing. The radiation oncologist and the data manager
may import (web.md §2, interop.md §6); the temporary files are removed when the request ends.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from abscopal.errors import AbscopalError, InputFileError, Problem
from abscopal.interop import dicom_rt
from abscopal.services.common import Action
from abscopal.web.context import Principal, requires, state_of
from abscopal.web.i18n import N_, gettext
from abscopal.web.templating import language_of, render

router = APIRouter(include_in_schema=False)
Importer = Annotated[Principal, Depends(requires(Action.DICOM_IMPORT))]
#: An upload larger than this is refused before it is read (a plan or record is kilobytes; a structure set with
#: many contours a few megabytes).
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_RECORD_FILES = 200
#: The importer's sentences name the CLI's options; on the page they name its fields.
_OPTION_TEXT = {
    "--patient": "the “Trial patient” field",
    "--start": "the “First treatment day” field",
    "--map": "the “Targets to lesions” field",
    "--allow-unapproved": "“Accept an unapproved plan”",
}


@dataclass(frozen=True)
class Outcome:
    """What the page shows after a check or an import: the result, or the refusal (file and reasons)."""

    kind: str  # "plan" | "records"
    committed: bool = False
    plan: dicom_rt.PlanImported | None = None
    records: dicom_rt.RecordsImported | None = None
    refused_file: str | None = None
    reasons: tuple[str, ...] = ()


def _for_browser(text: str) -> str:
    for option, field in _OPTION_TEXT.items():
        text = text.replace(option, field)
    return text


def _refusal(kind: str, exc: AbscopalError, folder: Path) -> Outcome:
    """The refusal as the page lists it: the uploaded file's own name, then one line per problem."""
    if isinstance(exc, InputFileError):
        name = Path(exc.path).name if exc.path.startswith(str(folder)) else exc.path
        return Outcome(kind, refused_file=name, reasons=tuple(_for_browser(p.sentence()) for p in exc.problems))
    return Outcome(kind, reasons=(_for_browser(str(exc).replace(str(folder) + "/", "")),))


def _safe_name(upload: UploadFile, fallback: str) -> str:
    """The upload's own file name without any folder, safe on disk (it names the file in messages and the audit)."""
    name = Path((upload.filename or "").replace("\\", "/")).name
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return name or fallback


def _save(upload: UploadFile, folder: Path, fallback: str) -> Path:
    """Write the upload into ``folder`` (renamed if two uploads share a name); refuse an oversized one."""
    name = _safe_name(upload, fallback)
    target = folder / name
    n = 1
    while target.exists():
        n += 1
        target = folder / f"{Path(name).stem}-{n}{Path(name).suffix}"
    size = 0
    with target.open("wb") as out:
        while chunk := upload.file.read(1024 * 1024):
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise InputFileError(
                    name, [Problem(None, "", f"is larger than {MAX_FILE_BYTES // 2**20} MB; no DICOM RT "
                                                    "plan or record is that large")]
                )  # fmt: skip
            out.write(chunk)
    return target


def _uploads(form: FormData, field: str) -> list[UploadFile]:
    return [u for u in form.getlist(field) if isinstance(u, UploadFile) and (u.filename or u.size)]


def _text(form: FormData, field: str) -> str:
    value = form.get(field)
    return value.strip() if isinstance(value, str) else ""


def page(
    request: Request, *, status: int = 200, outcome: Outcome | None = None, errors: dict[str, str] | None = None,
    posted: dict[str, Any] | None = None,
) -> Response:  # fmt: skip
    return render(
        request, "dicom_import.html", status_code=status, outcome=outcome, errors=errors or {}, posted=posted or {},
        max_mb=MAX_FILE_BYTES // 2**20,
    )  # fmt: skip


@router.get("/imports/dicom", name="page_dicom_import")
def show(request: Request, principal: Importer, patient: str | None = None) -> Response:
    return page(request, posted={"patient": (patient or "").strip()[:40]})


@router.post("/imports/dicom/plan", name="page_dicom_import_plan")
async def import_plan(request: Request, principal: Importer) -> Response:
    form = await request.form()
    posted: dict[str, Any] = {k: _text(form, k) for k in ("patient", "map", "start", "mode")}
    posted["allow_unapproved"] = _text(form, "allow_unapproved") == "on"
    plans, structures = _uploads(form, "plan"), _uploads(form, "structure_set")

    def run() -> Response:
        language = language_of(request)
        errors: dict[str, str] = {}
        if len(plans) != 1:
            errors["plan"] = gettext(language, N_("Choose the RT Plan file (one .dcm file)."))
        if len(structures) > 1:
            errors["structure_set"] = gettext(language, N_("Choose at most one RT Structure Set."))
        start: dt.date | None = None
        if posted["start"]:
            try:
                start = dt.date.fromisoformat(posted["start"])
            except ValueError:
                errors["start"] = gettext(language, N_("Give the first treatment day as a date (YYYY-MM-DD)."))
        mapping: dict[str, str] = {}
        try:
            mapping = dicom_rt.parse_mapping([x for x in re.split(r"[\n,;]+", posted["map"]) if x.strip()], "map")
        except AbscopalError:
            errors["map"] = gettext(language, N_("Write one TARGET=LESION pair per line, e.g. PTV=L01."))
        if errors:
            return page(request, status=422, errors=errors, posted=posted)
        dry_run = posted["mode"] != "import"
        folder = Path(tempfile.mkdtemp(prefix="abscopal-dicom-"))
        try:
            try:
                plan = _save(plans[0], folder, "plan.dcm")
                structure = _save(structures[0], folder, "structure-set.dcm") if structures else None
                state = state_of(request)
                result = dicom_rt.import_plan(
                    state.engine, plan, user=principal.username, structure_set=structure,
                    patient=posted["patient"] or None, mapping=mapping, start=start,
                    allow_unapproved=bool(posted["allow_unapproved"]), dry_run=dry_run, protocols=state.protocols,
                    actor=principal.actor(),
                )  # fmt: skip
            except AbscopalError as exc:
                return page(request, status=422, outcome=_refusal("plan", exc, folder), posted=posted)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return page(request, outcome=Outcome("plan", committed=result.committed, plan=result), posted=posted)

    return await run_in_threadpool(run)


@router.post("/imports/dicom/records", name="page_dicom_import_records")
async def import_records(request: Request, principal: Importer) -> Response:
    form = await request.form()
    posted: dict[str, Any] = {k: _text(form, k) for k in ("patient", "mode")}
    records = _uploads(form, "records")

    def run() -> Response:
        language = language_of(request)
        if not records or len(records) > MAX_RECORD_FILES:
            message = gettext(language, N_("Choose one or more RT Beams Treatment Record files."))
            if records:
                message = gettext(language, N_("Import at most %(n)s treatment records at a time.")) % {
                    "n": MAX_RECORD_FILES
                }
            return page(request, status=422, errors={"records": message}, posted=posted)
        dry_run = posted["mode"] != "import"
        folder = Path(tempfile.mkdtemp(prefix="abscopal-dicom-"))
        try:
            try:
                paths = [_save(u, folder, f"record-{i + 1}.dcm") for i, u in enumerate(records)]
                state = state_of(request)
                result = dicom_rt.import_records(
                    state.engine, paths, user=principal.username, patient=posted["patient"] or None, dry_run=dry_run,
                    protocols=state.protocols, actor=principal.actor(),
                )  # fmt: skip
            except AbscopalError as exc:
                return page(request, status=422, outcome=_refusal("records", exc, folder), posted=posted)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return page(request, outcome=Outcome("records", committed=result.committed, records=result), posted=posted)

    return await run_in_threadpool(run)
