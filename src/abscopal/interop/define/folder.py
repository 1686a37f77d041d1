"""Read an SDTM export folder back (CSV or XPT files, checked against manifest.json) as Datasets for define.xml.

Specs come from the SDTM registry (each builder run on an empty source gives its datasets' specs), so the
define.xml of a folder describes exactly what ``abscopal export sdtm`` wrote (interop.md §3, §7).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from abscopal.errors import ValidationError
from abscopal.interop.sdtm.spec import Dataset, DatasetSpec, SdtmSource, Value
from abscopal.protocol.model import ProtocolFile

_INT = re.compile(r"^-?\d+$")
_PREFERENCE = ("csv", "xpt")  # CSV keeps values as written; XPT when it is all there is


@dataclass(frozen=True)
class Folder:
    """The datasets of one export folder, the format its files are in, and the manifest's creation time."""

    datasets: list[Dataset]
    leaf_format: str
    created: dt.datetime | None


def registry_specs(protocols: ProtocolFile) -> dict[str, DatasetSpec]:
    """Every dataset spec the SDTM registry builds (domains and SUPP-- datasets), by dataset name."""
    from abscopal.interop.sdtm import registry

    today = dt.date(2000, 1, 1)
    empty = SdtmSource(protocols=protocols, cutoff=today, created=dt.datetime(2000, 1, 1))
    specs: dict[str, DatasetSpec] = {}
    for name in registry.DATASETS:
        for ds in registry.builder(name)(empty):
            specs[ds.spec.name] = ds.spec
    return specs


def _manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / "manifest.json"
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationError(str(path), f"is not readable JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
        raise ValidationError(str(path), "has no list of files: it is not an SDTM export manifest")
    return doc


def _check_files(folder: Path, manifest: dict[str, Any]) -> None:
    for entry in manifest["files"]:
        path = folder / str(entry.get("name", ""))
        if not path.is_file():
            raise ValidationError(str(path), "is listed in manifest.json but missing; re-run abscopal export sdtm")
        if hashlib.sha256(path.read_bytes()).hexdigest() != entry.get("sha256"):
            raise ValidationError(
                str(path), "differs from its sha256 in manifest.json (edited after export); re-run abscopal export sdtm"
            )


def _cell(spec: DatasetSpec, name: str, text: str) -> Value:
    if text == "":
        return None
    if spec.variable(name).type == "Num":
        return int(text) if _INT.match(text) else float(text)
    return text


def _read_csv(path: Path, spec: DatasetSpec) -> list[dict[str, Value]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(header) != spec.names:
            raise ValidationError(
                str(path), f"its columns {header} differ from the {spec.name} spec {list(spec.names)}"
            )
        try:
            return [{n: _cell(spec, n, t) for n, t in zip(spec.names, row, strict=True)} for row in reader]
        except ValueError as exc:
            raise ValidationError(str(path), f"has a value that does not fit its spec ({exc})") from None


def _xpt_value(value: Any) -> Value:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int | float) else str(value)


def _read_xpt(path: Path, spec: DatasetSpec) -> list[dict[str, Value]]:
    import pyreadstat

    frame, _meta = pyreadstat.read_xport(str(path))
    if tuple(frame.columns) != spec.names:
        raise ValidationError(str(path), f"its columns {list(frame.columns)} differ from the {spec.name} spec")
    return [{n: _xpt_value(v) for n, v in zip(spec.names, rec, strict=True)} for rec in frame.itertuples(index=False)]


def read_folder(folder: Path, protocols: ProtocolFile) -> Folder:
    """The datasets of an ``abscopal export sdtm`` folder, in the manifest's order (refused if files changed)."""
    if not folder.is_dir():
        raise ValidationError(str(folder), "is not a folder; give the --output folder of abscopal export sdtm")
    manifest = _manifest(folder)
    if manifest is not None:
        _check_files(folder, manifest)
        names = [str(f["name"]) for f in manifest["files"]]
    else:
        names = sorted(p.name for p in folder.iterdir() if p.suffix in (".csv", ".xpt"))
    by_dataset: dict[str, dict[str, str]] = {}
    for name in names:
        stem, _, fmt = name.rpartition(".")
        if fmt in _PREFERENCE:
            by_dataset.setdefault(stem.upper(), {})[fmt] = name
    if not by_dataset:
        raise ValidationError(str(folder), "has no SDTM .csv or .xpt files; run abscopal export sdtm first")
    specs = registry_specs(protocols)
    datasets: list[Dataset] = []
    formats: set[str] = set()
    for dataset, files in by_dataset.items():
        if dataset not in specs:
            raise ValidationError(
                str(folder / next(iter(files.values()))), f"{dataset} is not a dataset Abscopal builds"
            )
        spec = specs[dataset]
        formats.update(files)
        rows = _read_csv(folder / files["csv"], spec) if "csv" in files else _read_xpt(folder / files["xpt"], spec)
        datasets.append(Dataset(spec, rows))
    created = None
    if manifest is not None and manifest.get("created"):
        created = dt.datetime.fromisoformat(str(manifest["created"]))
    return Folder(datasets, "xpt" if "xpt" in formats else "csv", created)
