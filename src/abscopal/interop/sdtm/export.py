"""One SDTM export: read the store at a cut-off, build the registry's datasets, check, write, manifest."""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

import abscopal
from abscopal.errors import ValidationError
from abscopal.interop.sdtm import registry
from abscopal.interop.sdtm.define_digest import define_digest
from abscopal.interop.sdtm.source import audit_state, load_source
from abscopal.interop.sdtm.spec import Dataset
from abscopal.interop.sdtm.worker import Done
from abscopal.interop.sdtm.writers import FORMATS, WrittenFile, check_datasets, manifest_bytes, write_dataset
from abscopal.protocol.model import ProtocolFile
from abscopal.store.tables import ENTITIES


@dataclass(frozen=True)
class ExportResult:
    files: list[WrittenFile]
    substitutions: list[str]
    define: WrittenFile | None = None


def export_sdtm(
    engine: Engine,
    protocols: ProtocolFile,
    output: Path,
    *,
    cutoff: dt.date,
    created: dt.datetime,
    formats: Sequence[str] = ("xpt",),
    domains: Sequence[str] | None = None,
    transliterate: bool = False,
    options: dict[str, str] | None = None,
    on_step: Callable[[str], None] | None = None,
    define_context: str | None = None,
    parallel: bool | None = None,
) -> ExportResult:
    """Write the selected datasets into ``output``; nothing is written when any value is refused.

    Each dataset is built, checked and written (into a staging folder beside ``output``) before the next is
    built, so only one dataset's rows are held at a time; the staged files move into ``output`` once every
    dataset has passed. With ``define_context`` (``"Other"`` or ``"Submission"``) define.xml 2.1 is written too,
    from each dataset's :func:`define_digest` (the same bytes as from its rows), and named in manifest.json.

    ``parallel`` (None: when there are two cores, QS and another dataset are asked and the database is a file or
    a server): QS is built by a second process (:mod:`abscopal.interop.sdtm.worker`) while this one builds the
    others without reading the answers; the same files, byte for byte. When the two processes read different
    audit heads (a write between their reads), the export is done again in this process alone.
    """
    collecting = gc.isenabled()
    gc.disable()  # the export builds millions of tuples and records, none in a reference cycle (see the worker)
    try:
        return _export(
            engine,
            protocols,
            output,
            cutoff=cutoff,
            created=created,
            formats=formats,
            domains=domains,
            transliterate=transliterate,
            options=options,
            on_step=on_step,
            define_context=define_context,
            parallel=parallel,
        )
    finally:
        if collecting:
            gc.enable()


def _export(
    engine: Engine,
    protocols: ProtocolFile,
    output: Path,
    *,
    cutoff: dt.date,
    created: dt.datetime,
    formats: Sequence[str],
    domains: Sequence[str] | None,
    transliterate: bool,
    options: dict[str, str] | None,
    on_step: Callable[[str], None] | None,
    define_context: str | None,
    parallel: bool | None,
) -> ExportResult:
    step = on_step or (lambda _name: None)
    names = registry.selected(domains)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValidationError("--format", f"{', '.join(unknown)} is not one of {', '.join(FORMATS)}")
    url = _worker_url(engine) if parallel is not False and "QS" in names and len(names) > 1 else None
    if parallel is None and (os.cpu_count() or 1) < 2:
        url = None
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent))
    worker: subprocess.Popen[bytes] | None = None
    here = names  # the datasets this process builds
    try:
        if url is not None:
            from abscopal.interop.sdtm.worker import Job

            job = Job(
                url=url,
                protocols=protocols,
                cutoff=cutoff,
                created=created,
                options=dict(options or {}),
                formats=list(formats),
                transliterate=transliterate,
                version=abscopal.__version__,
                staging=staging,
                digest=define_context is not None,
                result=staging / ".qs-worker.pickle",
            )
            worker = subprocess.Popen(
                [sys.executable, "-m", "abscopal.interop.sdtm.worker"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
            )
            assert worker.stdin is not None
            worker.stdin.write(pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
            worker.stdin.close()
            here = [n for n in names if n != "QS"]
            only = [n for n in ENTITIES if n != "questionnaire_answers"]  # the answers: QS's alone
        with engine.connect() as conn:
            source = load_source(conn, protocols, cutoff, created, options, only=None if worker is None else only)
            head = audit_state(conn)
        step("read")
        protocol = protocols.current
        studyid = protocol.interop.studyid or protocol.trial.id
        files: list[WrittenFile] = []
        substitutions: list[str] = []
        kept: list[Dataset] = []  # what define.xml needs of each dataset (define_digest), not its rows
        for name in here:
            built = registry.builder(name)(source)
            checked, report = check_datasets(built, transliterate=transliterate)
            del built
            substitutions.extend(report.substitutions)
            for ds in checked:
                for fmt in formats:
                    files.append(
                        write_dataset(
                            ds,
                            staging,
                            fmt,
                            created=created,
                            studyid=studyid,
                            version=abscopal.__version__,
                            last_modified=head.last_at,
                        )
                    )
            if define_context is not None:
                kept.extend(define_digest(ds) for ds in checked)
            del checked
            step(name)
        del source
        if worker is not None:
            done = _worker_done(worker, job.result)
            worker = None
            if done.head != head:  # the database changed between the two reads: once more, in one process
                shutil.rmtree(staging, ignore_errors=True)
                return _export(
                    engine,
                    protocols,
                    output,
                    cutoff=cutoff,
                    created=created,
                    formats=formats,
                    domains=domains,
                    transliterate=transliterate,
                    options=options,
                    on_step=None,
                    define_context=define_context,
                    parallel=False,
                )
            files.extend(done.files)
            substitutions.extend(done.substitutions)
            kept.extend(done.digests)
            step("QS")
        define_file: WrittenFile | None = None
        if define_context is not None:
            from abscopal.interop.define import write_define

            path = write_define(
                kept,
                protocols=protocols,
                created=created,
                context="Submission" if define_context == "Submission" else "Other",
                leaf_format="xpt" if "xpt" in formats else "csv",
                path=staging / "define.xml",
            )
            kept.clear()
            define_file = WrittenFile(path.name, "define.xml", 0, hashlib.sha256(path.read_bytes()).hexdigest())
            step("define")
        (staging / "manifest.json").write_bytes(
            manifest_bytes(
                files,
                versions={
                    "abscopal": abscopal.__version__,
                    "protocol": protocol.version.number,
                    "sdtmig": protocol.interop.sdtmig_version,
                    "ct": protocol.interop.ct_version,
                },
                cutoff=cutoff,
                created=created,
                audit_seq=head.seq,
                audit_hash=head.hash,
                options={
                    "formats": list(formats),
                    "domains": names,
                    "transliterate": transliterate,
                    **(options or {}),
                },
                define=None
                if define_file is None
                else {"name": define_file.name, "context": define_context, "sha256": define_file.sha256},
            )
        )
        output.mkdir(parents=True, exist_ok=True)
        for staged in sorted(staging.iterdir()):
            os.replace(staged, output / staged.name)
    finally:
        if worker is not None:  # this process refused a dataset (or was interrupted): QS is not wanted
            worker.kill()
            worker.wait()
        shutil.rmtree(staging, ignore_errors=True)
    step("manifest")
    return ExportResult(files, substitutions, define_file)


def _worker_done(worker: subprocess.Popen[bytes], result: Path) -> Done:
    """The QS worker's result once it has ended; its error raised here (after this process's datasets passed,
    where the one-process export would raise it)."""
    code = worker.wait()
    try:
        with result.open("rb") as fh:
            outcome = pickle.load(fh)
    except (OSError, EOFError, pickle.UnpicklingError):
        raise RuntimeError(f"the SDTM export's QS process ended without a result (exit code {code})") from None
    result.unlink()
    if isinstance(outcome, BaseException):
        raise outcome
    assert isinstance(outcome, Done)
    return outcome


def _worker_url(engine: Engine) -> str | None:
    """The URL a second process opens ``engine``'s database with (read-only), or None when it cannot (an
    in-memory SQLite database, or a file not found)."""
    url = engine.url
    backend = url.get_backend_name()
    if backend == "postgresql":
        return url.render_as_string(hide_password=False)
    if backend != "sqlite" or not url.database:
        return None
    path = url.database
    if path.startswith("file:"):
        if "memory" in str(url.query.get("mode", "")):
            return None
        path = urllib.parse.unquote(path[len("file:") :])
        if path.startswith("///"):
            path = path[2:]
    if path in ("", ":memory:") or not Path(path).is_file():
        return None
    return f"sqlite:///{path}"


def steps(domains: Sequence[str] | None, *, define: bool = False) -> list[str]:
    """The progress steps of an export: read, one per dataset, define (when written), manifest."""
    return ["read", *registry.selected(domains), *(["define"] if define else []), "manifest"]
