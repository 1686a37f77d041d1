"""The ODM export's streaming writer (interop/odm_export.py): the bytes of the reference tree, chunk after chunk.

``write_odm`` reads the database a chunk of subjects at a time and writes ClinicalData as text; ``odm._document``
(lxml, whole tables; what a restore compares with) is the reference. The test world is test_odm.py's. An
ItemGroupData carries its row's insert record, an ItemData only its own field-level change (interop.md, ODM).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import Engine

from abscopal import domain as d
from abscopal.errors import StoreError
from abscopal.interop import odm, odm_export
from abscopal.store.unit_of_work import UnitOfWork

sys.path.insert(0, str(Path(__file__).parent))
from test_odm import CREATED, PROTOCOLS, _all, _export, _populate


@pytest.fixture
def source(engine: Engine) -> Engine:
    _populate(engine)
    return engine


@pytest.fixture
def full_file(source: Engine, tmp_path: Path) -> Path:
    return _export(source, tmp_path / "full.xml")


def _reference(engine: Engine, strict: bool) -> bytes:
    with engine.connect() as conn:
        return odm._serialise(odm._document(odm._read(conn), created=CREATED, strict=strict, protocols=PROTOCOLS))


@pytest.mark.parametrize("chunk", [1, 2])
@pytest.mark.parametrize("strict", [False, True])
def test_export_read_in_chunks_of_subjects_is_the_reference_document(
    source: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, strict: bool
) -> None:
    """3 patients in chunks of 1 and 2: every chunk boundary (and a last, shorter chunk) gives the same bytes."""
    monkeypatch.setattr(odm_export, "CHUNK", chunk)
    path = _export(source, tmp_path / "chunked.xml", strict=strict)
    assert path.read_bytes() == _reference(source, strict)


def test_a_removed_patient_is_left_out_of_the_strict_file_only(source: Engine, tmp_path: Path) -> None:
    with UnitOfWork(source, user="dm.li", reason="duplicate registration") as uow:
        patient = _all(uow, "patients")[-1]
        uow.patients.remove(patient.id, version=patient.version, reason="duplicate registration")
        uow.commit()
    key = patient.value.subject_id
    for strict in (False, True):
        path = _export(source, tmp_path / f"removed-{strict}.xml", strict=strict)
        assert path.read_bytes() == _reference(source, strict)
        keys = [s.get("SubjectKey") for s in etree.parse(str(path)).iter(f"{{{odm.ODM_NS}}}SubjectData")]
        assert (key in keys) is not strict


def test_summary_counts_every_table(source: Engine, tmp_path: Path) -> None:
    with source.connect() as conn:
        snap = odm._read(conn)
        summary = odm.write_odm(conn, tmp_path / "x.xml", created=CREATED, protocols=PROTOCOLS)
    assert summary.rows == {t: len(r) for t, r in snap.rows.items()}
    assert (summary.subjects, summary.records) == (len(snap.rows["patients"]), len(snap.audit))


TRICKY = [
    "",
    "plain",
    'say "no" & <stop> it',
    "tab\there",
    "line\nbreak\r\nand return",
    "apostrophe's",
    "不详 — ümlaut, emoji \U0001f600",
    "\x7f\x85\x9f",  # C1 controls: allowed in XML 1.0
    "\u2028\u2029\ufeff",
    ">",
]


@pytest.mark.parametrize("value", TRICKY)
def test_attribute_text_is_what_lxml_writes(value: str) -> None:
    el = etree.Element("a")
    el.set("v", value)
    data = bytes(etree.tostring(el, encoding="UTF-8")).decode()
    assert odm_export._attr(value) == data[data.index('"') + 1 : data.rindex('"')]


@pytest.mark.parametrize("value", ["nul\x00", "bell\x07", "esc\x1b", "\ufffe", "\udc80"])
def test_a_value_xml_cannot_hold_is_refused_as_lxml_refuses_it(value: str) -> None:
    with pytest.raises(ValueError):
        etree.Element("a").set("v", value)
    with pytest.raises(ValueError):
        odm_export._attr(value)


def test_export_of_a_value_xml_cannot_hold_is_a_store_error(source: Engine, tmp_path: Path) -> None:
    with UnitOfWork(source, user="dm.wang", reason="typo") as uow:
        patient = _all(uow, "patients")[0]
        bad = dataclasses.replace(patient.value, death_cause="bell\x07")
        uow.patients.update(patient.id, bad, version=patient.version)
        uow.commit()
    with pytest.raises(StoreError, match="cannot be written as XML"):
        _export(source, tmp_path / "bad.xml")
    assert not list(tmp_path.glob("*.xml*"))


def test_an_item_group_carries_the_rows_insert_and_an_item_only_its_own_change(full_file: Path) -> None:
    """The corrected organ: the lesion's ItemGroupData has the bulk load's AuditRecord, its organ ItemData the
    correction's, and its other ItemData none (they inherit the group's)."""
    ns = {"o": odm.ODM_NS}
    tree = etree.parse(str(full_file))
    (organ,) = tree.xpath("//o:ItemData[@ItemOID='IT.LESIONS.ORGAN'][o:AuditRecord]", namespaces=ns)
    assert organ.get("Value") == "liver"
    assert organ.findtext("o:AuditRecord/o:ReasonForChange", namespaces=ns) == "source document check"
    group = organ.getparent()
    (record,) = group.findall("o:AuditRecord", ns)
    assert group.index(record) == 0
    assert record.findtext("o:ReasonForChange", namespaces=ns) == "synthetic cohort for the ODM tests"
    others = [i for i in group.findall("o:ItemData", ns) if i is not organ]
    assert others and all(i.find("o:AuditRecord", ns) is None for i in others)
    groups = tree.xpath("//o:ItemGroupData[not(starts-with(@ItemGroupOID, 'IG.LAB'))]", namespaces=ns)
    assert all(g[0].tag == f"{{{odm.ODM_NS}}}AuditRecord" for g in groups)  # every row has its insert record
    own = tree.xpath("//o:ItemData[o:AuditRecord]", namespaces=ns)
    assert len(own) < len(tree.xpath("//o:ItemData", namespaces=ns)) / 100


def test_a_lab_group_carries_a_change_of_the_labs_column_and_its_items_none(source: Engine, tmp_path: Path) -> None:
    """Labs loaded with the screening have no AuditRecord (as before: only the labs column's own change is one);
    after a correction of the labs, each of that screening's IG.LAB groups carries it."""
    ns = {"o": odm.ODM_NS}
    labs = etree.parse(str(_export(source, tmp_path / "before.xml"))).xpath(
        "//o:ItemGroupData[@ItemGroupOID='IG.LAB']", namespaces=ns
    )
    assert labs and all(lab.find(".//o:AuditRecord", ns) is None for lab in labs)
    with UnitOfWork(source, user="dm.wang", reason="ALT re-read") as uow:
        screening = _all(uow, "screenings")[0]
        corrected = {**screening.value.labs, "alt": d.LabValue(41.0, "U/L", uln=40.0)}
        changed = dataclasses.replace(screening.value, labs=corrected)
        uow.screenings.update(screening.id, changed, version=screening.version)
        uow.commit()
    path = _export(source, tmp_path / "after.xml")
    assert path.read_bytes() == _reference(source, False)
    tree = etree.parse(str(path))
    mine = tree.xpath(f"//o:ItemGroupData[@ItemGroupOID='IG.LAB'][starts-with(@ItemGroupRepeatKey, '{screening.id}:')]",
                      namespaces=ns)  # fmt: skip
    assert len(mine) == len(corrected)
    for lab in mine:
        assert lab[0].findtext("o:ReasonForChange", namespaces=ns) == "ALT re-read"
        assert lab.find("o:ItemData/o:AuditRecord", ns) is None
    others = tree.xpath("//o:ItemGroupData[@ItemGroupOID='IG.LAB'][o:AuditRecord]", namespaces=ns)
    assert len(others) == len(mine)
