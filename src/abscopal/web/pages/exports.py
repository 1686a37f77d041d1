"""The exports page: SDTM and ODM from the browser, in the background with progress (issue 13 item 7).

``POST /exports/sdtm`` and ``POST /exports/odm`` start the jobs the API runs (:func:`abscopal.web.api.trial.export_sdtm`
and :func:`~abscopal.web.api.trial.export_odm`, the library functions ``abscopal export sdtm`` / ``export odm`` call,
audited as exports), so the page, the API and the CLI write the same files. The page lists the signed-in user's
export jobs (started here or through the API), each with a progress bar that htmx polls
(``GET /exports/jobs/{id}``, a fragment that stops polling once the job has finished) and its download.

The statistician's SDTM is pseudonymised (birth year only) and the ODM snapshot, which holds direct identifiers and
the whole audit trail, is not offered to them (web.md §2; the API refuses it with the same sentence).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from abscopal.errors import ValidationError
from abscopal.services.common import Action, StaffRole
from abscopal.web.api import trial
from abscopal.web.context import Principal, requires
from abscopal.web.i18n import N_, gettext
from abscopal.web.jobs import Job, JobStatus, runner_of
from abscopal.web.pages.records import posted_form
from abscopal.web.pages.report import STATUS_TEXT  # a job's status as the report page names it
from abscopal.web.templating import language_of, render

router = APIRouter(include_in_schema=False)
Exporter = Annotated[Principal, Depends(requires(Action.EXPORT))]
KINDS = frozenset({"SDTM export", "ODM export"})
FORMATS: tuple[tuple[trial.SdtmFormat, str], ...] = (
    ("xpt", N_("SAS XPORT v5 (.xpt), for submission")),
    ("csv", N_("CSV, for spreadsheets and R")),
    ("json", N_("Dataset-JSON v1.1")),
)
#: The jobs' sentences (the API's, in English) as the page shows them, translated.
STEP_TEXT = {
    "The SDTM export is waiting for a free worker": N_("The SDTM export is waiting for a free worker"),
    "The SDTM export has started": N_("The SDTM export has started"),
    "The SDTM export is ready to download": N_("The SDTM export is ready to download"),
    "Packing the datasets into one zip file": N_("Packing the datasets into one zip file"),
    "The ODM export is waiting for a free worker": N_("The ODM export is waiting for a free worker"),
    "The ODM export has started": N_("The ODM export has started"),
    "The ODM export is ready to download": N_("The ODM export is ready to download"),
    "Writing the ODM file": N_("Writing the ODM file"),
}
KIND_TEXT = {"SDTM export": N_("SDTM export"), "ODM export": N_("ODM export")}


def _message(language: str, job: Job) -> str:
    """The job's sentence in the user's language (an export's failure reason stays as the exporter wrote it)."""
    if job.message in STEP_TEXT:
        return gettext(language, STEP_TEXT[job.message])
    if job.message.startswith("Built ") and job.status is JobStatus.RUNNING:
        return gettext(language, N_("Built %(dataset)s")) % {"dataset": job.message.removeprefix("Built ")}
    return job.message


def _view(request: Request, job: Job) -> dict[str, Any]:
    return {
        "job": job, "kind": KIND_TEXT.get(job.kind, job.kind), "status_text": STATUS_TEXT[job.status],
        "message": _message(language_of(request), job), "finished": job.status in (JobStatus.DONE, JobStatus.FAILED),
        "downloadable": job.status is JobStatus.DONE and job.path is not None and job.path.is_file(),
    }  # fmt: skip


def is_statistician(principal: Principal) -> bool:
    return principal.actor().role is StaffRole.STATISTICIAN


def exports_page(
    request: Request, principal: Principal, *, status: int = 200, errors: Mapping[str, str] | None = None,
    posted: Mapping[str, Any] | None = None, notice: str | None = None,
) -> Response:  # fmt: skip
    jobs = [_view(request, j) for j in runner_of(request.app).owned(principal.username, KINDS)]
    return render(
        request, "exports.html", status_code=status, jobs=jobs, errors=dict(errors or {}),
        posted=dict(posted or {}), today=dt.date.today().isoformat(), notice=notice, formats=FORMATS,
        statistician=is_statistician(principal),
    )  # fmt: skip


@router.get("/exports", name="page_exports")
def show(request: Request, principal: Exporter, notice: str | None = None) -> Response:
    started = {"sdtm": N_("The SDTM export has started."), "odm": N_("The ODM export has started.")}
    return exports_page(request, principal, notice=started.get(notice or ""))


def _date(language: str, text: str, errors: dict[str, str]) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        errors["cutoff"] = gettext(language, N_("Give the data cut-off as a date (YYYY-MM-DD)."))
        return None


@router.post("/exports/sdtm", name="page_exports_sdtm")
async def start_sdtm(request: Request, principal: Exporter) -> Response:
    form = await request.form()
    posted: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    chosen = [v for v in form.getlist("formats") if isinstance(v, str)]
    posted["formats"] = chosen

    def run() -> Response:
        language = language_of(request)
        errors: dict[str, str] = {}
        cutoff = _date(language, posted.get("cutoff", ""), errors)
        known = [code for code, _ in FORMATS]
        if not chosen or any(c not in known for c in chosen):
            errors["formats"] = gettext(language, N_("Choose at least one format: XPT, CSV or Dataset-JSON."))
        birth = posted.get("birth_date", "year")
        if birth not in ("year", "day"):
            errors["birth_date"] = gettext(language, N_("The birth date is exported as a year or as a full date."))
        elif birth == "day" and is_statistician(principal):
            errors["birth_date"] = gettext(
                language, N_("Your export is pseudonymised: the birth date is exported as a year only.")
            )
        if errors:
            return exports_page(request, principal, status=422, errors=errors, posted=posted)
        body = trial.SdtmIn(
            cutoff=cutoff, formats=cast(list[trial.SdtmFormat], chosen),
            birth_date=cast(Literal["year", "day"], birth),
        )  # fmt: skip
        trial.export_sdtm(body, request, Response(), principal)
        return RedirectResponse("/exports?notice=sdtm", status_code=303)

    return await run_in_threadpool(run)


@router.post("/exports/odm", name="page_exports_odm")
async def start_odm(request: Request, principal: Exporter) -> Response:
    posted = await posted_form(request)

    def run() -> Response:
        try:
            trial.export_odm(trial.OdmIn(strict=posted.get("strict") == "on"), request, Response(), principal)
        except ValidationError:
            message = N_(
                "The ODM snapshot holds direct identifiers (hospital ID, birth date) and the whole audit trail, so it "
                "is not given to the statistician; the SDTM export is pseudonymised."
            )
            return exports_page(
                request, principal, status=422, errors={"odm": gettext(language_of(request), message)}, posted=posted
            )
        return RedirectResponse("/exports?notice=odm", status_code=303)

    return await run_in_threadpool(run)


@router.get("/exports/jobs/{job_id}", name="page_exports_job")
def job_fragment(job_id: str, request: Request, principal: Exporter) -> Response:
    """One export's row, polled by htmx while it runs (another user's job: 404)."""
    job = runner_of(request.app).get(job_id, principal.username)
    if job.kind not in KINDS or not request.headers.get("hx-request"):
        return exports_page(request, principal)
    return render(request, "exports_job.html", j=_view(request, job))


@router.get("/exports/jobs/{job_id}/download", name="page_exports_download")
def download(job_id: str, request: Request, principal: Exporter) -> Response:
    """The export's file (a zip of the SDTM datasets and define.xml, or the ODM XML), once the job is done."""
    job = runner_of(request.app).get(job_id, principal.username)
    if job.kind not in KINDS:
        return exports_page(request, principal)
    if job.status is not JobStatus.DONE or job.path is None or not job.path.is_file():
        raise ValidationError("job", f"the {job.kind} has no file to download yet: it is {job.status.value}")
    return FileResponse(job.path, media_type=job.media_type, filename=job.filename)
