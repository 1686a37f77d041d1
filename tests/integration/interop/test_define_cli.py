"""`abscopal export define --sdtm DIR`: define.xml 2.1 for a folder written by the SDTM writers (interop.md §3, §7).

The folder is written with the SDTM engineer's writers (XPT + CSV + manifest.json) from the registry's own DM and
AE specs, and the result is checked by independent readers: xmlschema (the XSD shipped with odmlib), lxml, and
pyreadstat's XPT widths against define.xml's Length.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pyreadstat
import pytest
import xmlschema
from lxml import etree
from odmlib import schema_manager

from abscopal.interop.define.folder import registry_specs
from abscopal.interop.sdtm.spec import Dataset, Value
from abscopal.interop.sdtm.writers import manifest_bytes, write_datasets
from abscopal.protocol.model import load_bundled

NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3", "def": "http://www.cdisc.org/ns/def/v2.1"}
CREATED = dt.datetime(2026, 3, 1, 9, 0, 0)
S = "NCT05906329"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "abscopal", *args], capture_output=True, text=True, env=env, timeout=120
    )


def _dm_rows() -> list[dict[str, Value]]:
    spec = registry_specs(load_bundled())["DM"]
    rows = []
    for n, (sex, age) in enumerate((("M", 61), ("F", 7), ("M", 58)), start=1):
        row: dict[str, Value] = dict.fromkeys(spec.names)
        row |= {
            "STUDYID": S,
            "DOMAIN": "DM",
            "USUBJID": f"{S}-QFS-00000{n}",
            "SUBJID": f"QFS-00000{n}",
            "SITEID": "QFS",
            "AGE": age,
            "AGEU": "YEARS",
            "SEX": sex,
            "COUNTRY": "CHN",
            "RFSTDTC": f"2024-0{n}-15",
        }
        rows.append(row)
    return rows


def write_folder(folder: Path, sex: str = "M") -> Path:
    specs = registry_specs(load_bundled())
    rows = _dm_rows()
    rows[0]["SEX"] = sex
    datasets = [Dataset(specs["DM"], rows), Dataset(specs["AE"], [])]
    files = write_datasets(datasets, folder, formats=["xpt", "csv"], created=CREATED, studyid=S, version="0.1.0")
    manifest = manifest_bytes(
        files,
        versions={"abscopal": "0.1.0"},
        cutoff=dt.date(2026, 2, 28),
        created=CREATED,
        audit_seq=0,
        audit_hash="0" * 64,
        options={},
    )
    (folder / "manifest.json").write_bytes(manifest)
    return folder


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = write_folder(tmp_path_factory.mktemp("sdtm"))
    result = run("export", "define", "--sdtm", str(folder))
    assert result.returncode == 0, result.stderr
    return folder


def test_export_define_writes_a_define_xml_that_the_2_1_schema_accepts(exported: Path) -> None:
    schema = xmlschema.XMLSchema(schema_manager.get_schema_path("define", "2.1"))
    assert [e.reason for e in schema.iter_errors(str(exported / "define.xml"))] == []


def test_export_define_takes_the_creation_time_from_the_manifest(exported: Path) -> None:
    root = etree.parse(str(exported / "define.xml")).getroot()
    assert root.get("CreationDateTime") == CREATED.isoformat()


def test_character_lengths_equal_the_xpt_widths_pyreadstat_reads(exported: Path) -> None:
    _, meta = pyreadstat.read_xport(str(exported / "dm.xpt"), metadataonly=True)
    tree = etree.parse(str(exported / "define.xml"))
    checked = 0
    for name, width in meta.variable_storage_width.items():
        (item,) = tree.xpath(f"//odm:ItemDef[@OID='IT.DM.{name}']", namespaces=NS)
        if item.get("DataType") == "text":
            assert item.get("Length") == str(width), name
            checked += 1
    assert checked > 10


def test_the_empty_dataset_is_marked_as_having_no_data(exported: Path) -> None:
    tree = etree.parse(str(exported / "define.xml"))
    assert tree.xpath("//odm:ItemGroupDef[@def:HasNoData='Yes']/@Name", namespaces=NS) == ["AE"]
    assert tree.xpath("//def:leaf/@xlink:href", namespaces={**NS, "xlink": "http://www.w3.org/1999/xlink"}) == [
        "dm.xpt",
        "ae.xpt",
    ]


def test_export_define_writes_the_reviewers_html_page(exported: Path) -> None:
    html = (exported / "define.html").read_text(encoding="utf-8")
    assert "Demographics" in html and "C66731" in html and "<script" not in html


def test_a_rerun_on_the_same_folder_gives_identical_bytes(exported: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.xml"
    result = run("export", "define", "--sdtm", str(exported), "--output", str(again), "--no-html")
    assert result.returncode == 0, result.stderr
    assert again.read_bytes() == (exported / "define.xml").read_bytes()


def test_a_file_edited_after_export_is_refused_with_a_sentence(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "sdtm")
    with (folder / "dm.csv").open("a", encoding="utf-8") as fh:
        fh.write("\n")
    result = run("export", "define", "--sdtm", str(folder))
    assert result.returncode == 1
    assert "differs from its sha256 in manifest.json" in result.stderr
    assert not (folder / "define.xml").exists()


def test_submission_context_is_refused_while_a_term_lacks_a_c_code(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "sdtm", sex="INTERSEX")
    result = run("export", "define", "--sdtm", str(folder), "--context", "submission")
    assert result.returncode == 1
    assert "SEX 'INTERSEX'" in result.stderr
    assert not (folder / "define.xml").exists()


def test_every_codelist_ref_of_the_registry_specs_has_a_codelist(exported: Path) -> None:
    tree = etree.parse(str(exported / "define.xml"))
    defined = set(tree.xpath("//odm:CodeList/@OID", namespaces=NS))
    referenced = set(tree.xpath("//odm:CodeListRef/@CodeListOID", namespaces=NS))
    assert {"CL.SEX", "CL.NY", "CL.ISO3166"} <= referenced <= defined
