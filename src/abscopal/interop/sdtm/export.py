"""One SDTM export: read the store at a cut-off, build the registry's datasets, check, write, manifest."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

import abscopal
from abscopal.interop.sdtm import registry
from abscopal.interop.sdtm.source import audit_state, load_source
from abscopal.interop.sdtm.writers import WrittenFile, check_datasets, manifest_bytes, write_datasets
from abscopal.protocol.model import ProtocolFile


@dataclass(frozen=True)
class ExportResult:
    files: list[WrittenFile]
    substitutions: list[str]


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
) -> ExportResult:
    """Write the selected datasets into ``output``; nothing is written when any value is refused."""
    step = on_step or (lambda _name: None)
    names = registry.selected(domains)
    with engine.connect() as conn:
        source = load_source(conn, protocols, cutoff, created, options)
        head = audit_state(conn)
    step("read")
    datasets = []
    for name in names:
        datasets.extend(registry.builder(name)(source))
        step(name)
    checked, report = check_datasets(datasets, transliterate=transliterate)
    protocol = protocols.current
    studyid = protocol.interop.studyid or protocol.trial.id
    files = write_datasets(
        checked,
        output,
        formats=formats,
        created=created,
        studyid=studyid,
        version=abscopal.__version__,
        last_modified=head.last_at,
    )
    (output / "manifest.json").write_bytes(
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
        )
    )
    step("manifest")
    return ExportResult(files, report.substitutions)


def steps(domains: Sequence[str] | None) -> list[str]:
    """The progress steps of an export: read, one per dataset, manifest."""
    return ["read", *registry.selected(domains), "manifest"]
