"""Long work off the request (web.md §8: "long work shows progress and does not block a worker").

A small in-process runner: a thread pool of :data:`WORKERS` threads held on ``app.state.jobs`` (created on first
use), a table of jobs in memory, and one temporary folder per job for its result file. A job belongs to the user
who started it (another user's job is :class:`~abscopal.errors.NotFound`, so that its existence is not leaked);
it is queued, running, done or failed, with a progress of 0-100 and a sentence. A failure keeps the error's
sentence (an :class:`~abscopal.errors.AbscopalError`'s own), never a traceback; an unexpected exception is logged
with the job's id and the job says only that. Jobs live as long as the process: a restart forgets them (the
files they wrote go with the temporary folder); finished jobs older than :data:`KEEP` are pruned.
"""

from __future__ import annotations

import atexit
import dataclasses
import datetime as dt
import logging
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from abscopal.errors import AbscopalError, NotFound

log = logging.getLogger("abscopal.web.jobs")
WORKERS = 2
KEEP = dt.timedelta(hours=24)
MAX_JOBS = 500


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Job:
    """A snapshot of one job (the runner holds the live state; callers get copies)."""

    id: str
    owner: str
    kind: str
    status: JobStatus
    progress: int
    message: str
    created_at: dt.datetime
    finished_at: dt.datetime | None = None
    path: Path | None = None  # the result file, once done
    filename: str = ""  # the name a download is offered under
    media_type: str = "application/octet-stream"


Progress = Callable[[int, str], None]
"""``progress(percent, sentence)``: what a job's work calls as it goes."""
Work = Callable[[Path, Progress], Path]
"""``work(folder, progress) -> result file``: the job's body, run on a worker thread, writing into ``folder``."""


class JobRunner:
    """Runs :data:`Work` on a small thread pool and keeps each job's state."""

    def __init__(self, workers: int = WORKERS) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="abscopal-job")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self.folder = Path(tempfile.mkdtemp(prefix="abscopal-jobs-"))
        atexit.register(self.shutdown)

    def submit(self, owner: str, kind: str, work: Work, *, filename: str, media_type: str) -> Job:
        job = Job(
            uuid.uuid4().hex, owner, kind, JobStatus.QUEUED, 0, f"The {kind} is waiting for a free worker",
            dt.datetime.now(dt.UTC), filename=filename, media_type=media_type,
        )  # fmt: skip
        with self._lock:
            self._prune()
            self._jobs[job.id] = job
        self._executor.submit(self._run, job.id, work)
        return job

    def get(self, job_id: str, owner: str) -> Job:
        """The job, if ``owner`` started it; else NotFound (another user's job is not disclosed)."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.owner != owner:
            raise NotFound(f"No job {job_id!r} of yours (jobs are kept until the server restarts)")
        return job

    def owned(self, owner: str, kinds: frozenset[str]) -> list[Job]:
        """``owner``'s jobs of these kinds still kept, newest first (the exports page lists them)."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.owner == owner and j.kind in kinds]
        return sorted(jobs, key=lambda j: j.created_at, reverse=True)

    def _update(self, job_id: str, **changes: Any) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                self._jobs[job_id] = dataclasses.replace(job, **changes)

    def _run(self, job_id: str, work: Work) -> None:
        folder = self.folder / job_id
        folder.mkdir(parents=True, exist_ok=True)
        kind = self._jobs[job_id].kind
        self._update(job_id, status=JobStatus.RUNNING, message=f"The {kind} has started")

        def progress(percent: int, message: str) -> None:
            self._update(job_id, progress=max(0, min(99, int(percent))), message=message)

        try:
            path = work(folder, progress)
        except AbscopalError as exc:
            self._finish(job_id, JobStatus.FAILED, str(exc))
        except Exception:
            log.exception("job %s (%s) failed", job_id, kind)
            self._finish(job_id, JobStatus.FAILED, f"The {kind} failed on our side; quote job {job_id} to the team")
        else:
            self._finish(job_id, JobStatus.DONE, f"The {kind} is ready to download", path=path, progress=100)

    def _finish(self, job_id: str, status: JobStatus, message: str, **changes: Any) -> None:
        self._update(job_id, status=status, message=message, finished_at=dt.datetime.now(dt.UTC), **changes)

    def _prune(self) -> None:
        """Forget finished jobs older than KEEP, and the oldest finished ones beyond MAX_JOBS (lock held)."""
        now = dt.datetime.now(dt.UTC)
        finished = sorted(
            (j for j in self._jobs.values() if j.finished_at is not None), key=lambda j: j.finished_at or now
        )
        excess = max(0, len(self._jobs) - MAX_JOBS + 1)
        for i, job in enumerate(finished):
            if i < excess or now - (job.finished_at or now) > KEEP:
                del self._jobs[job.id]
                shutil.rmtree(self.folder / job.id, ignore_errors=True)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.folder, ignore_errors=True)


_creating = threading.Lock()


def runner_of(app: Any) -> JobRunner:
    """The app's job runner, created on first use (``app.state.jobs``)."""
    runner: JobRunner | None = getattr(app.state, "jobs", None)
    if runner is None:
        with _creating:
            runner = getattr(app.state, "jobs", None)
            if runner is None:
                runner = app.state.jobs = JobRunner()
    return runner
