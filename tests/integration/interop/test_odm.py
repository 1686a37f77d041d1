"""ODM 1.3.2 export and restore (interop.md §4, §8): XSD-valid files, odmlib reads them, restore is exact.

The database: a synthetic cohort of 3 patients (abscopal.synth, seed 7) stored in bulk, then three single-record
edits through the unit of work (a lesion's organ corrected, a patient's death cause set, an adverse event removed)
so that the trail holds insert, field and removal records; then, through the services, a data query on the
corrected lesion, a lock on it, an SDV mark on it and the PI's signature on the patient's casebook (the ``abs:``
data-management elements).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from lxml import etree
from odmlib.schema_manager import get_schema_path
from sqlalchemy import Engine, func, select

from abscopal.errors import InputFileError, StoreError
from abscopal.interop import odm
from abscopal.protocol.model import load_bundled
from abscopal.services import locking, monitoring, queries, signing
from abscopal.services.common import Actor, StaffRole
from abscopal.store.audit import verify
from abscopal.store.audit_key import load_key
from abscopal.store.cohort_loader import store_cohort_chunks
from abscopal.store.database import make_engine
from abscopal.store.migrate import upgrade
from abscopal.store.tables import ENTITIES, audit_head, audit_log
from abscopal.store.unit_of_work import UnitOfWork
from abscopal.synth import iter_cohort_chunks

CREATED = dt.datetime(2025, 6, 30, 12, 0, tzinfo=dt.UTC)
MANAGED_AT = dt.datetime(2025, 6, 1, 8, 30, tzinfo=dt.UTC)  # the time the services are given for every action
PROTOCOLS = load_bundled()


def _populate(engine: Engine) -> None:
    chunks = iter_cohort_chunks(3, seed=7, protocol=PROTOCOLS.current, chunk_size=3)
    store_cohort_chunks(engine, chunks, user="loader", reason="synthetic cohort for the ODM tests")
    with UnitOfWork(engine, user="dm.wang", reason="source document check") as uow:
        first = _all(uow, "patients")[0]
        lesions = uow.lesions.for_subject(first.value.subject_id)
        assert lesions, "the synthetic patient has lesions"
        les = lesions[0]
        uow.lesions.update(les.id, dataclasses.replace(les.value, organ="liver"), version=les.version)
        uow.patients.update(first.id, dataclasses.replace(first.value, death_cause="不详"), version=first.version)
        uow.commit()
    with UnitOfWork(engine, user="dm.li", reason="entered twice") as uow:
        events = [e for p in _all(uow, "patients") for e in uow.adverse_events.for_subject(p.value.subject_id)]
        if events:
            ev = sorted(events, key=lambda e: e.id)[0]
            uow.adverse_events.remove(ev.id, version=ev.version, reason="entered twice")
        uow.commit()
    _manage(engine)


def _manage(engine: Engine) -> None:
    """A query, a lock and an SDV mark on the first patient's corrected lesion; the PI signs the casebook."""
    with UnitOfWork(engine, user="dm.wang", reason="read") as uow:
        patient = _all(uow, "patients")[0]
        lesion = sorted(uow.lesions.for_subject(patient.value.subject_id), key=lambda s: s.id)[0]
    subject, site = patient.value.subject_id, frozenset({patient.value.site_code})
    dm = Actor("dm.wang", "Wang Data", StaffRole.DATA_MANAGER, site)
    cra = Actor("cra.wu", "Wu Monitor", StaffRole.MONITOR, site)
    pi = Actor("dr.li", "Li Investigator", StaffRole.INVESTIGATOR, site, pi=True)
    with UnitOfWork(engine, user=dm.username, reason="query on the organ") as uow:
        queries.raise_query(uow, dm, subject, "lesions", "organ", "Which lobe?", record_id=lesion.id, at=MANAGED_AT)
    with UnitOfWork(engine, user=cra.username, reason="source data verified") as uow:
        monitoring.mark_sdv(uow, cra, "lesions", lesion.id, version=lesion.version, at=MANAGED_AT)
    with UnitOfWork(engine, user=dm.username, reason="lesion verified") as uow:
        locking.lock_record(uow, dm, "lesions", lesion.id, reason="verified against CT", at=MANAGED_AT)
    with UnitOfWork(engine, user=pi.username, reason="casebook approved") as uow:
        signing.sign_record(
            uow, pi, "patients", patient.id, version=patient.version, meaning=signing.Meaning.APPROVED, at=MANAGED_AT
        )


def _all(uow: UnitOfWork, name: str) -> list[Any]:
    repo = getattr(uow, name)
    table = ENTITIES[name].table
    ids = [r.id for r in uow.connection.execute(select(table.c.id).order_by(table.c.id))]
    return [repo.get(i) for i in ids]


@pytest.fixture(scope="module")
def source(module_engine: Engine) -> Engine:
    """The populated database, once per backend: every test only reads it (restores go to ``target``)."""
    _populate(module_engine)
    return module_engine


def _export(engine: Engine, path: Path, *, strict: bool = False) -> Path:
    with engine.connect() as conn:
        odm.write_odm(conn, path, created=CREATED, strict=strict, protocols=PROTOCOLS)
    return path


@pytest.fixture(scope="module")
def full_file(source: Engine, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(source, tmp_path_factory.mktemp("odm") / "full.xml")


@pytest.fixture(scope="module")
def strict_file(source: Engine, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(source, tmp_path_factory.mktemp("odm") / "strict.xml", strict=True)


@pytest.fixture
def target(source: Engine, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A second, empty database of the same kind as ``source``."""
    if source.dialect.name == "sqlite":
        url = f"sqlite:///{tmp_path / 'restored.sqlite'}"
        drop = None
    else:
        server = request.getfixturevalue("postgres_server")
        name = f"restored_{os.getpid()}_{abs(hash(str(tmp_path))) % 10**8}"
        url = server.create_database(name)
        drop = (server, name)
    e = make_engine(url)
    upgrade(e)
    yield e
    e.dispose()
    if drop:
        drop[0].drop_database(drop[1])


@pytest.fixture(scope="module")
def source_key(source: Engine) -> bytes:
    return load_key(source.url, create=False)


def _tables(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for name, e in ENTITIES.items():
            out[name] = [tuple(r) for r in conn.execute(select(e.table).order_by(e.table.c.id))]
        out["audit_log"] = [tuple(r) for r in conn.execute(select(audit_log).order_by(audit_log.c.seq))]
        out["audit_head"] = [tuple(r) for r in conn.execute(select(audit_head))]
    return out


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        counts = {n: conn.execute(select(func.count()).select_from(e.table)).scalar_one() for n, e in ENTITIES.items()}
        counts["audit_log"] = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
    return counts


# --- the files


def test_strict_file_validates_against_the_plain_odm_1_3_2_schema(strict_file: Path) -> None:
    schema = xmlschema.XMLSchema(get_schema_path("odm", "1.3.2"))
    errors = list(schema.iter_errors(str(strict_file)))
    assert errors == []


def test_strict_file_has_no_abscopal_namespace(strict_file: Path) -> None:
    assert odm.ABS_NS.encode() not in strict_file.read_bytes()


def test_full_file_fails_the_plain_schema_because_of_its_extension(full_file: Path) -> None:
    schema = xmlschema.XMLSchema(get_schema_path("odm", "1.3.2"))
    assert not schema.is_valid(str(full_file))


def test_full_file_validates_against_the_extension_schema(full_file: Path) -> None:
    errors = list(odm.extension_schema().iter_errors(str(full_file)))
    assert errors == []


def test_odmlib_loads_the_strict_file_with_every_subject(strict_file: Path, source: Engine) -> None:
    from odmlib import loader as LD
    from odmlib import odm_loader as OL

    loader = LD.ODMLoader(OL.XMLODMLoader(model_package="odm_1_3_2", ns_uri=odm.ODM_NS))
    loader.open_odm_document(str(strict_file))
    document = loader.load_odm()
    with source.connect() as conn:
        live = conn.execute(
            select(ENTITIES["patients"].table.c.subject_id).where(ENTITIES["patients"].table.c.removed_reason.is_(None))
        ).scalars()
        expected = sorted(live)
    keys = sorted(s.SubjectKey for cd in document.ClinicalData for s in cd.SubjectData)
    assert keys == expected


def test_item_data_carries_the_last_change_of_the_current_value(full_file: Path, source: Engine) -> None:
    tree = etree.parse(str(full_file))
    ns = {"o": odm.ODM_NS}
    items = tree.xpath("//o:ItemData[@ItemOID='IT.PATIENTS.DEATH_CAUSE'][@Value='不详']", namespaces=ns)
    assert len(items) == 1
    (record,) = items[0].findall("o:AuditRecord", ns)
    assert record.findtext("o:ReasonForChange", namespaces=ns) == "source document check"
    assert record.find("o:UserRef", ns).get("UserOID") == "USR.dm.wang"
    seq = int(record.findtext("o:SourceID", namespaces=ns).removeprefix("audit:"))
    with source.connect() as conn:
        row = conn.execute(select(audit_log).where(audit_log.c.seq == seq)).one()
    assert (row.entity, row.field) == ("patients", "death_cause")


def test_export_with_the_same_created_is_byte_identical(source: Engine, tmp_path: Path) -> None:
    a = _export(source, tmp_path / "a.xml").read_bytes()
    b = _export(source, tmp_path / "b.xml").read_bytes()
    assert a == b


@pytest.mark.parametrize("strict", [False, True])
def test_streamed_file_is_the_in_memory_document_byte_for_byte(source: Engine, tmp_path: Path, strict: bool) -> None:
    """write_odm writes one SubjectData at a time; it must give the bytes of the whole tree pretty-printed."""
    path = _export(source, tmp_path / "streamed.xml", strict=strict)
    with source.connect() as conn:
        whole = odm._serialise(odm._document(odm._read(conn), created=CREATED, strict=strict, protocols=PROTOCOLS))
    assert path.read_bytes() == whole


def test_full_file_holds_every_audit_record_verbatim(full_file: Path, source: Engine) -> None:
    tree = etree.parse(str(full_file))
    entries = tree.getroot().find(f"{{{odm.ABS_NS}}}AuditTrail")
    with source.connect() as conn:
        hashes = list(conn.execute(select(audit_log.c.hash).order_by(audit_log.c.seq)).scalars())
    assert [e.get("Hash") for e in entries] == hashes


def _management_elements(path: Path) -> dict[str, list[dict[str, str]]]:
    tree = etree.parse(str(path))
    out: dict[str, list[dict[str, str]]] = {}
    for tag in ("Query", "Lock", "SDV", "Signature"):
        found = tree.getroot().iter(f"{{{odm.ABS_NS}}}{tag}")
        out[tag] = [dict(e.attrib) | {"subject": e.getparent().get("SubjectKey")} for e in found]
    return out


def test_full_file_has_each_data_management_record_with_its_columns(full_file: Path, source: Engine) -> None:
    with UnitOfWork(source, user="dm.wang", reason="read") as uow:
        patient = _all(uow, "patients")[0]
        lesion = sorted(uow.lesions.for_subject(patient.value.subject_id), key=lambda s: s.id)[0]
        (query,), (lock,), (mark,), (sig,) = (uow.queries.all(), uow.locks.all(), uow.sdv_marks.all(),
                                              uow.signatures.all())  # fmt: skip
    subject, at = patient.value.subject_id, "2025-06-01T08:30:00+00:00"
    common = {"Version": "1", "subject_id": subject, "subject": subject}
    assert _management_elements(full_file) == {
        "Query": [common | {"StableID": query.id, "entity": "lesions", "record_id": lesion.id, "field": "organ",
                            "text": "Which lobe?", "raised_by": "dm.wang", "raised_at": at, "status": "open"}],
        "Lock": [common | {"StableID": lock.id, "entity": "lesions", "record_id": lesion.id, "locked_by": "dm.wang",
                           "locked_at": at, "reason": "verified against CT"}],
        # the lesion was corrected once (organ = liver) before it was verified: version 2
        "SDV": [common | {"StableID": mark.id, "entity": "lesions", "record_id": lesion.id, "record_version": "2",
                          "verified_by": "cra.wu", "verified_at": at}],
        "Signature": [common | {"StableID": sig.id, "entity": "patients", "record_id": patient.id,
                                "username": "dr.li", "full_name": "Li Investigator", "meaning": "approved",
                                "signed_at": at, "content_hash": sig.value.content_hash}],
    }  # fmt: skip
    assert len(sig.value.content_hash) == 64


def test_data_management_elements_follow_the_subjects_study_events(full_file: Path) -> None:
    """ODM's SubjectData content model: the extension group comes after SiteRef and StudyEventData."""
    tree = etree.parse(str(full_file))
    (subject,) = [e.getparent() for e in tree.getroot().iter(f"{{{odm.ABS_NS}}}Lock")]
    tags = [etree.QName(c).localname for c in subject]
    first_abs = tags.index("Query")
    assert set(tags[:first_abs]) == {"SiteRef", "StudyEventData"}
    assert tags[first_abs:] == ["Query", "Lock", "SDV", "Signature"]


def test_a_data_management_element_missing_its_stable_id_fails_the_extension_schema(full_file: Path) -> None:
    tree = etree.parse(str(full_file))
    lock = next(tree.getroot().iter(f"{{{odm.ABS_NS}}}Lock"))
    del lock.attrib["StableID"]
    errors = list(odm.extension_schema().iter_errors(tree))
    assert len(errors) == 1 and "StableID" in str(errors[0].reason)


# --- restore


def test_restore_then_export_is_byte_identical_and_tables_equal(
    full_file: Path, source: Engine, target: Engine, source_key: bytes, tmp_path: Path
) -> None:
    summary = odm.restore_odm(target, full_file, key=source_key)
    assert summary.records == _counts(source)["audit_log"]
    again = _export(target, tmp_path / "again.xml")
    assert again.read_bytes() == full_file.read_bytes()
    assert _tables(target) == _tables(source)


def test_restored_database_keeps_the_data_management_records_and_the_signature_holds(
    full_file: Path, source: Engine, target: Engine, source_key: bytes, tmp_path: Path
) -> None:
    odm.restore_odm(target, full_file, key=source_key)
    again = _export(target, tmp_path / "again.xml")
    assert _management_elements(again) == _management_elements(full_file)
    with UnitOfWork(target, user="dr.li", reason="check") as uow:
        (sig,) = uow.signatures.all()
        (lock,) = uow.locks.all()
        assert signing.signature_holds(uow, sig.id)  # the signed record's id, version and content came back
        assert lock.value.reason == "verified against CT"


def test_restored_trail_verifies_with_the_database_key(full_file: Path, target: Engine, source_key: bytes) -> None:
    odm.restore_odm(target, full_file, key=source_key)
    with target.connect() as conn:
        report = verify(conn)  # the key the database now loads by itself
    assert report.ok and report.records > 0


def test_dry_run_writes_nothing(full_file: Path, target: Engine, source_key: bytes) -> None:
    before = _tables(target)
    summary = odm.restore_odm(target, full_file, key=source_key, dry_run=True)
    assert summary.rows["patients"] == 3
    assert _tables(target) == before


def test_restore_without_the_original_key_is_refused(
    full_file: Path, target: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ABSCOPAL_AUDIT_KEY", raising=False)
    before = _tables(target)
    with pytest.raises(StoreError, match="needs the audit key"):
        odm.restore_odm(target, full_file)
    assert _tables(target) == before


def test_restore_with_another_key_is_refused(full_file: Path, target: Engine) -> None:
    before = _tables(target)
    with pytest.raises(StoreError, match="not the key"):
        odm.restore_odm(target, full_file, key=b"f" * 64)
    assert _tables(target) == before


def test_restore_into_a_non_empty_database_is_refused(full_file: Path, source: Engine, source_key: bytes) -> None:
    before = _tables(source)
    with pytest.raises(StoreError, match="not empty"):
        odm.restore_odm(source, full_file, key=source_key)
    assert _tables(source) == before


def test_strict_file_cannot_be_restored(strict_file: Path, target: Engine, source_key: bytes) -> None:
    before = _tables(target)
    with pytest.raises(InputFileError, match="no abs:AuditTrail"):
        odm.restore_odm(target, strict_file, key=source_key)
    assert _tables(target) == before


def _refused(path: Path, target: Engine, key: bytes, match: str) -> None:
    before = _tables(target)
    with pytest.raises(InputFileError, match=match):
        odm.restore_odm(target, path, key=key)
    assert _tables(target) == before


def test_truncated_file_is_refused_as_not_well_formed(
    full_file: Path, target: Engine, source_key: bytes, tmp_path: Path
) -> None:
    bad = tmp_path / "truncated.xml"
    data = full_file.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    _refused(bad, target, source_key, "not well-formed XML")


def test_wrong_root_element_is_refused(target: Engine, source_key: bytes, tmp_path: Path) -> None:
    bad = tmp_path / "root.xml"
    bad.write_bytes(b'<?xml version="1.0"?><CDISC xmlns="http://www.cdisc.org/ns/odm/v1.3"/>')
    _refused(bad, target, source_key, "root element")


def test_entity_declaration_is_refused_and_never_expanded(
    full_file: Path, target: Engine, source_key: bytes, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    data = full_file.read_text(encoding="utf-8")
    head, body = data.split("\n", 1)
    doctype = f'<!DOCTYPE ODM [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>'
    body = body.replace('SourceSystem="Abscopal"', 'SourceSystem="&xxe;"', 1)
    bad = tmp_path / "xxe.xml"
    bad.write_text(f"{head}\n{doctype}\n{body}", encoding="utf-8")
    with pytest.raises(InputFileError, match="DTD") as info:
        odm.restore_odm(target, bad, key=source_key)
    assert "TOP-SECRET" not in str(info.value)
    assert _counts(target)["audit_log"] == 0


def test_tampered_audit_record_is_refused(full_file: Path, target: Engine, source_key: bytes, tmp_path: Path) -> None:
    tree = etree.parse(str(full_file))
    entry = tree.xpath("//abs:Entry[@Field='death_cause']", namespaces={"abs": odm.ABS_NS})[0]
    entry.find(f"{{{odm.ABS_NS}}}NewValue").text = '"heart failure"'
    bad = tmp_path / "tampered.xml"
    tree.write(str(bad), xml_declaration=True, encoding="UTF-8")
    _refused(bad, target, source_key, "does not verify")


def test_edited_clinical_value_is_refused(full_file: Path, target: Engine, source_key: bytes, tmp_path: Path) -> None:
    tree = etree.parse(str(full_file))
    item = tree.xpath("//o:ItemData[@Value='不详']", namespaces={"o": odm.ODM_NS})[0]
    item.set("Value", "heart failure")
    bad = tmp_path / "edited.xml"
    tree.write(str(bad), xml_declaration=True, encoding="UTF-8")
    _refused(bad, target, source_key, "does not match")


def test_edited_lock_reason_is_refused(full_file: Path, target: Engine, source_key: bytes, tmp_path: Path) -> None:
    tree = etree.parse(str(full_file))
    next(tree.getroot().iter(f"{{{odm.ABS_NS}}}Lock")).set("reason", "never verified")
    bad = tmp_path / "lock.xml"
    tree.write(str(bad), xml_declaration=True, encoding="UTF-8")
    _refused(bad, target, source_key, "does not match")


def test_foreign_element_fails_the_extension_schema(
    full_file: Path, target: Engine, source_key: bytes, tmp_path: Path
) -> None:
    data = full_file.read_bytes().replace(b"<GlobalVariables>", b"<GlobalVariables><Evil/>", 1)
    bad = tmp_path / "foreign.xml"
    bad.write_bytes(data)
    _refused(bad, target, source_key, "not valid ODM 1.3.2")


# --- the command line (SQLite: the same functions as above run on PostgreSQL)


def _cli(args: list[str]) -> Any:
    from typer.testing import CliRunner

    from abscopal.cli import build_app

    return CliRunner().invoke(build_app(args[0]), args)


def test_cli_export_import_export_round_trip_is_identical(source: Engine, tmp_path: Path) -> None:
    if source.dialect.name != "sqlite":
        pytest.skip("the command line is tested on SQLite")
    created = "2025-06-30T12:00:00Z"
    first, second = tmp_path / "first.xml", tmp_path / "second.xml"
    result = _cli(["export", "odm", "--output", str(first), "--created", created, "--database-url", str(source.url)])
    assert result.exit_code == 0, result.output
    new = make_engine(f"sqlite:///{tmp_path / 'new.sqlite'}")
    upgrade(new)
    key_file = str(source.url.database) + ".audit-key"
    result = _cli(["import", "odm", str(first), "--audit-key-file", key_file, "--database-url", str(new.url)])
    assert result.exit_code == 0, result.output
    result = _cli(["export", "odm", "--output", str(second), "--created", created, "--database-url", str(new.url)])
    assert result.exit_code == 0, result.output
    new.dispose()
    assert second.read_bytes() == first.read_bytes()


def test_cli_import_without_a_key_exits_one_with_a_sentence(
    full_file: Path, target: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    if target.dialect.name != "sqlite":
        pytest.skip("the command line is tested on SQLite")
    monkeypatch.delenv("ABSCOPAL_AUDIT_KEY", raising=False)
    result = _cli(["import", "odm", str(full_file), "--database-url", str(target.url)])
    assert result.exit_code == 1
    assert "needs the audit key" in result.output
    assert _counts(target)["audit_log"] == 0
