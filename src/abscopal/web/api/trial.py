"""Trial-level outputs: the report (HTML / PDF) and the SDTM and ODM exports, run as background jobs (web.md §7, §8).

Each request starts a job (:mod:`abscopal.web.jobs`) that calls the library function the CLI calls —
:func:`abscopal.reports.report.build_report` (``abscopal report``), :func:`abscopal.interop.sdtm.export.export_sdtm`
(``abscopal export sdtm``; its folder is zipped) and :func:`abscopal.interop.odm.write_odm`
(``abscopal export odm``) — and answers 202 with the job's address; ``GET /jobs/{id}`` shows its progress and
``GET /jobs/{id}/download`` gives the file. Every request is written to the audit trail (web.md §6).

The statistician's exports carry no direct identifiers (web.md §2): SDTM has no hospital id and the birth date
as a year only (``BRTHDTC``, interop.md §2.1); the ODM snapshot holds every column of every table (hospital id,
birth date) and the whole audit trail, so it is refused to the statistician with that sentence.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from abscopal.errors import ValidationError
from abscopal.services.common import Action, StaffRole, protocols_or_bundled
from abscopal.web.accounts import security_event
from abscopal.web.context import Principal, requires, state_of
from abscopal.web.jobs import Job, JobStatus, Progress, Work, runner_of

router = APIRouter(tags=["trial"])
_FORBID = ConfigDict(extra="forbid")
Exporter = Annotated[Principal, Depends(requires(Action.EXPORT))]
_NO_NUL = r"^[^\x00]*$"
MEDIA = {"html": "text/html; charset=utf-8", "pdf": "application/pdf", "zip": "application/zip",
         "xml": "application/xml"}  # fmt: skip
_STEP_TEXT = {
    "read": "Reading the trial from the database",
    "analyse": "Deriving responses, survival, safety and QoL",
    "figures": "Drawing the figures",
    "html": "Writing report.html",
    "pdf": "Printing report.pdf",
}


class JobOut(BaseModel):
    id: str
    kind: str = Field(description="report | SDTM export | ODM export")
    status: JobStatus
    progress: int = Field(ge=0, le=100)
    message: str = Field(description="What the job is doing, or why it failed (a sentence, never a traceback)")
    created_at: dt.datetime
    finished_at: dt.datetime | None
    download: str | None = Field(description="Where to GET the file once the job is done")


def _out(request: Request, job: Job) -> JobOut:
    base = str(request.url_for("job_status", job_id=job.id).path)
    return JobOut(
        id=job.id, kind=job.kind, status=job.status, progress=job.progress, message=job.message,
        created_at=job.created_at, finished_at=job.finished_at,
        download=f"{base}/download" if job.status is JobStatus.DONE else None,
    )  # fmt: skip


def _start(
    request: Request, response: Response, principal: Principal, kind: str, work: Work, filename: str, media: str,
    detail: str,
) -> JobOut:  # fmt: skip
    with state_of(request).write() as conn:
        security_event(conn, principal.username, "exported", f"{kind} requested{detail}")
    job = runner_of(request.app).submit(principal.username, kind, work, filename=filename, media_type=media)
    out = _out(request, job)
    response.headers["Location"] = str(request.url_for("job_status", job_id=job.id).path)
    return out


def _database_url(request: Request) -> str:
    return state_of(request).read_engine.url.render_as_string(hide_password=False)


# --- the report


class ReportIn(BaseModel):
    model_config = _FORBID
    format: Literal["html", "pdf"] = "html"
    cutoff: dt.date | None = Field(None, description="Data cut-off; later records are ignored (default today)")
    title: str | None = Field(None, min_length=1, max_length=200, pattern=_NO_NUL)


@router.post("/report", status_code=202, summary="Generate the trial report (a job: HTML or PDF)")
def report(body: ReportIn, request: Request, response: Response, principal: Exporter) -> JobOut:
    url, fmt, cutoff, title = _database_url(request), body.format, body.cutoff, body.title
    command = f"abscopal report --cutoff {(cutoff or dt.date.today()).isoformat()} (web, by {principal.username})"

    def work(folder: Path, progress: Progress) -> Path:
        from abscopal.reports.report import STEPS, build_report

        steps = STEPS if fmt == "pdf" else STEPS[:-1]

        def on_step(name: str) -> None:
            done = steps.index(name) if name in steps else 0
            progress(done * 100 // len(steps), _STEP_TEXT.get(name, name))

        build_report(
            folder, database_url=url, cutoff=cutoff, title=title, command_line=command, on_step=on_step,
            pdf=fmt == "pdf",
        )  # fmt: skip
        return folder / f"report.{fmt}"

    return _start(request, response, principal, "report", work, f"report.{fmt}", MEDIA[fmt], f" ({fmt})")


# --- exports


def _refuse_identifiers_to_statistician(principal: Principal) -> None:
    if principal.actor().role is StaffRole.STATISTICIAN:
        raise ValidationError(
            "kind",
            "the ODM snapshot holds direct identifiers (hospital id, birth date) and the whole audit trail, so it "
            "is not given to the statistician; the SDTM export is pseudonymised",
        )


SdtmFormat = Literal["xpt", "csv", "json"]
_XPT: SdtmFormat = "xpt"


class SdtmIn(BaseModel):
    model_config = _FORBID
    cutoff: dt.date | None = Field(None, description="Clinical data cut-off; later records are dropped (default today)")
    formats: list[SdtmFormat] = Field(default_factory=lambda: [_XPT], min_length=1, max_length=3)
    domains: list[Annotated[str, Field(pattern=r"^[A-Za-z]{2,8}$")]] | None = Field(
        None, max_length=50, description="Datasets, e.g. DM, AE (default: all)"
    )
    birth_date: Literal["year", "day"] = Field("year", description="BRTHDTC precision (the statistician: year)")


@router.post("/exports/sdtm", status_code=202, summary="Export SDTM datasets (a job: one zip file)")
def export_sdtm(body: SdtmIn, request: Request, response: Response, principal: Exporter) -> JobOut:
    if body.birth_date == "day" and principal.actor().role is StaffRole.STATISTICIAN:
        raise ValidationError("birth_date", "the statistician's export is pseudonymised: the birth year only")
    state = state_of(request)
    engine, protocols = state.read_engine, protocols_or_bundled(state.protocols)
    cutoff = body.cutoff or dt.date.today()
    formats = list(dict.fromkeys(body.formats))
    domains = [x.upper() for x in body.domains] if body.domains else None
    birth = body.birth_date

    def work(folder: Path, progress: Progress) -> Path:
        from abscopal.interop.sdtm.export import export_sdtm, steps

        plan = steps(domains, define=domains is None)
        seen: list[str] = []

        def on_step(name: str) -> None:
            seen.append(name)
            progress(len(seen) * 95 // len(plan), f"Built {name}")

        output = folder / "sdtm"
        export_sdtm(
            engine, protocols, output, cutoff=cutoff, created=dt.datetime.now(dt.UTC).replace(microsecond=0,
            tzinfo=None), formats=formats, domains=domains, options={"birth_date": birth}, on_step=on_step,
            define_context="Other" if domains is None else None,
        )  # fmt: skip
        progress(97, "Packing the datasets into one zip file")
        target = folder / f"sdtm-{cutoff.isoformat()}.zip"
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(output.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(output).as_posix())
        return target

    detail = f" (cut-off {cutoff}, {', '.join(formats)}, {', '.join(domains) if domains else 'all datasets'})"
    return _start(request, response, principal, "SDTM export", work, f"sdtm-{cutoff.isoformat()}.zip", MEDIA["zip"],
                  detail)  # fmt: skip


class OdmIn(BaseModel):
    model_config = _FORBID
    strict: bool = Field(False, description="Plain ODM 1.3.2 without Abscopal's extension (cannot be restored)")


@router.post("/exports/odm", status_code=202, summary="Export the database as one ODM 1.3.2 file (a job)")
def export_odm(body: OdmIn, request: Request, response: Response, principal: Exporter) -> JobOut:
    _refuse_identifiers_to_statistician(principal)
    state = state_of(request)
    engine, protocols, strict = state.read_engine, protocols_or_bundled(state.protocols), body.strict

    def work(folder: Path, progress: Progress) -> Path:
        from abscopal.interop.odm import write_odm

        progress(10, "Writing the ODM file")
        target = folder / "trial.odm.xml"
        with engine.connect() as conn, conn.begin():
            write_odm(conn, target, created=dt.datetime.now(dt.UTC).replace(microsecond=0), strict=strict,
                      protocols=protocols)  # fmt: skip
        return target

    return _start(request, response, principal, "ODM export", work, "trial.odm.xml", MEDIA["xml"],
                  " (strict)" if strict else "")  # fmt: skip


# --- jobs


@router.get("/jobs/{job_id}", name="job_status", summary="A job's status and progress (your own jobs only)")
def job_status(job_id: str, request: Request, principal: Exporter) -> JobOut:
    return _out(request, runner_of(request.app).get(job_id, principal.username))


@router.get(
    "/jobs/{job_id}/download", summary="The job's file, once done",
    response_class=FileResponse,
    responses={200: {"content": {m: {} for m in MEDIA.values()}, "description": "The report or export file"}},
)  # fmt: skip
def job_download(job_id: str, request: Request, principal: Exporter) -> FileResponse:
    job = runner_of(request.app).get(job_id, principal.username)
    if job.status is not JobStatus.DONE or job.path is None or not job.path.is_file():
        state = "failed: " + job.message if job.status is JobStatus.FAILED else f"{job.status.value} ({job.progress}%)"
        raise ValidationError("job", f"the {job.kind} has no file to download yet: it is {state}")
    return FileResponse(job.path, media_type=job.media_type, filename=job.filename)
