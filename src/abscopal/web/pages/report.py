"""The trial report page: generate in the background with progress, then download HTML/PDF (issue 12 item 10).

``POST /report`` starts the report job the API runs (:func:`abscopal.web.api.trial.report`: the library's
``build_report`` on a worker thread of :mod:`abscopal.web.jobs`, audited as an export), asking for the PDF so that
the job writes ``report.html`` and ``report.pdf`` side by side. The page lists the signed-in user's own report jobs
(the runner refuses another user's job as not found), each with a progress bar that htmx polls
(``GET /report/jobs/{id}``, a fragment that stops polling once the job has finished), and the two downloads.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool

from abscopal.errors import NotFound, ValidationError
from abscopal.messages import Message
from abscopal.services.common import Action
from abscopal.web.api import trial
from abscopal.web.context import Principal, requires
from abscopal.web.i18n import N_, gettext
from abscopal.web.jobs import Job, JobStatus, runner_of
from abscopal.web.pages.records import posted_form
from abscopal.web.templating import language_of, render

router = APIRouter(include_in_schema=False)
Exporter = Annotated[Principal, Depends(requires(Action.EXPORT))]
FILES: dict[str, tuple[str, str]] = {
    "html": ("report.html", "text/html; charset=utf-8"),
    "pdf": ("report.pdf", "application/pdf"),
}
#: The job's sentences (the API's, in English) as the page shows them, translated.
STEP_TEXT = {
    "Reading the trial from the database": N_("Reading the trial from the database"),
    "Deriving responses, survival, safety and QoL": N_("Deriving responses, survival, safety and QoL"),
    "Drawing the figures": N_("Drawing the figures"),
    "Writing report.html": N_("Writing report.html"),
    "Printing report.pdf": N_("Printing report.pdf"),
    "The report is waiting for a free worker": N_("The report is waiting for a free worker"),
    "The report has started": N_("The report has started"),
    "The report is ready to download": N_("The report is ready to download"),
}
STATUS_TEXT = {
    JobStatus.QUEUED: N_("queued"), JobStatus.RUNNING: N_("running"), JobStatus.DONE: N_("done"),
    JobStatus.FAILED: N_("failed"),
}  # fmt: skip
_registry_lock = threading.Lock()


def _registry(app: Any) -> dict[str, list[str]]:
    """username -> the ids of the report jobs they started from this page, newest first (kept on the app, like the
    job runner: a restart forgets both)."""
    with _registry_lock:
        found: dict[str, list[str]] | None = getattr(app.state, "report_jobs", None)
        if found is None:
            found = app.state.report_jobs = {}
        return found


def own_jobs(request: Request, principal: Principal) -> list[Job]:
    """The user's report jobs still known to the runner, newest first."""
    runner = runner_of(request.app)
    jobs = []
    for job_id in list(_registry(request.app).get(principal.username, [])):
        try:
            jobs.append(runner.get(job_id, principal.username))
        except NotFound:  # pruned by the runner
            continue
    return jobs


def _view(job: Job) -> dict[str, Any]:
    html = job.path.parent / FILES["html"][0] if job.path is not None else None
    return {
        "job": job, "status_text": STATUS_TEXT[job.status], "message": STEP_TEXT.get(job.message, job.message),
        "translated": job.message in STEP_TEXT, "done": job.status is JobStatus.DONE,
        "finished": job.status in (JobStatus.DONE, JobStatus.FAILED),
        "has_html": html is not None and html.is_file(), "has_pdf": job.path is not None and job.path.is_file(),
    }  # fmt: skip


def report_page(
    request: Request, principal: Principal, *, status: int = 200, errors: Mapping[str, str] | None = None,
    posted: Mapping[str, str] | None = None, notice: str | None = None,
) -> Response:  # fmt: skip
    jobs = [_view(j) for j in own_jobs(request, principal)]
    return render(
        request, "report.html", status_code=status, jobs=jobs, errors=dict(errors or {}), posted=dict(posted or {}),
        today=dt.date.today().isoformat(), notice=notice,
    )  # fmt: skip


@router.get("/report", name="page_report")
def show(request: Request, principal: Exporter, notice: str | None = None) -> Response:
    return report_page(request, principal, notice=N_("The report is being generated.") if notice == "started" else None)


@router.post("/report", name="page_report_start")
async def start(request: Request, principal: Exporter) -> Response:
    posted = await posted_form(request)

    def run() -> Response:
        language = language_of(request)
        errors: dict[str, str] = {}
        cutoff: dt.date | None = None
        text = (posted.get("cutoff") or "").strip()
        try:
            cutoff = dt.date.fromisoformat(text)
        except ValueError:
            errors["cutoff"] = gettext(language, N_("Give the data cut-off as a date (YYYY-MM-DD)."))
        title = (posted.get("title") or "").strip() or None
        fmt: Literal["pdf"] = "pdf"  # the PDF job writes report.html beside report.pdf: both downloads
        body: trial.ReportIn | None = None
        if not errors:
            try:
                body = trial.ReportIn(format=fmt, cutoff=cutoff, title=title)
            except PydanticValidationError:
                errors["title"] = gettext(
                    language, N_("A title is at most 200 characters, without control characters.")
                )
        if errors or body is None:
            return report_page(request, principal, status=422, errors=errors, posted=posted)
        out = trial.report(body, request, Response(), principal)
        registry = _registry(request.app)
        with _registry_lock:
            registry.setdefault(principal.username, []).insert(0, out.id)
        return RedirectResponse("/report?notice=started", status_code=303)

    return await run_in_threadpool(run)


@router.get("/report/jobs/{job_id}", name="page_report_job")
def job_fragment(job_id: str, request: Request, principal: Exporter) -> Response:
    """One job's row: polled by htmx while it runs (the fragment stops polling once the job has finished)."""
    job = runner_of(request.app).get(job_id, principal.username)  # another user's job: 404
    if not request.headers.get("hx-request"):
        return report_page(request, principal)
    return render(request, "report_job.html", j=_view(job))


@router.get("/report/jobs/{job_id}/{fmt}", name="page_report_download")
def download(job_id: str, fmt: str, request: Request, principal: Exporter) -> Response:
    """The report as HTML or PDF, once the job is done (the job's owner only)."""
    job = runner_of(request.app).get(job_id, principal.username)
    if fmt not in FILES:
        raise NotFound(Message(N_("There is no {format} version of the report (html or pdf)"), format=repr(fmt)))
    if job.status is not JobStatus.DONE or job.path is None:
        raise ValidationError("job", f"the report has no file to download yet: it is {job.status.value}")
    name, media = FILES[fmt]
    path: Path = job.path.parent / name
    if not path.is_file():
        raise NotFound(
            Message(N_("The report's {format} file is no longer there; generate the report again"), format=fmt.upper())
        )
    return FileResponse(path, media_type=media, filename=name)
