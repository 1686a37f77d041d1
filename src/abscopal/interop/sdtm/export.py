"""One SDTM export: read the store at a cut-off, build the registry's datasets, check, write, manifest."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import tempfile
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
from abscopal.interop.sdtm.writers import FORMATS, WrittenFile, check_datasets, manifest_bytes, write_dataset
from abscopal.protocol.model import ProtocolFile


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
) -> ExportResult:
    """Write the selected datasets into ``output``; nothing is written when any value is refused.

    Each dataset is built, checked and written (into a staging folder beside ``output``) before the next is
    built, so only one dataset's rows are held at a time; the staged files move into ``output`` once every
    dataset has passed. With ``define_context`` (``"Other"`` or ``"Submission"``) define.xml 2.1 is written too,
    from each dataset's :func:`define_digest` (the same bytes as from its rows), and named in manifest.json.
    """
    step = on_step or (lambda _name: None)
    names = registry.selected(domains)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValidationError("--format", f"{', '.join(unknown)} is not one of {', '.join(FORMATS)}")
    with engine.connect() as conn:
        source = load_source(conn, protocols, cutoff, created, options)
        head = audit_state(conn)
    step("read")
    protocol = protocols.current
    studyid = protocol.interop.studyid or protocol.trial.id
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent))
    try:
        files: list[WrittenFile] = []
        substitutions: list[str] = []
        kept: list[Dataset] = []  # what define.xml needs of each dataset (define_digest), not its rows
        for name in names:
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
        shutil.rmtree(staging, ignore_errors=True)
    step("manifest")
    return ExportResult(files, substitutions, define_file)


def steps(domains: Sequence[str] | None, *, define: bool = False) -> list[str]:
    """The progress steps of an export: read, one per dataset, define (when written), manifest."""
    return ["read", *registry.selected(domains), *(["define"] if define else []), "manifest"]
