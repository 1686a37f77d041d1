"""Malformed ODM files are refused with a sentence and write nothing (issue 13, "Bad input"; interop.md §4).

Hypothesis makes each bad file from one valid full export of test_odm's database (3 synthetic patients, edits, a
removal, a query, a lock, an SDV mark and a signature): an element deleted, duplicated or renamed, an attribute
or text corrupted, a date moved or made impossible, an OID pointed elsewhere, an audit entry broken, the file
truncated, non-UTF-8 bytes, a DOCTYPE or entity. ``restore_odm`` must raise an AbscopalError (never another
exception) and the target database must stay empty. A mutation that leaves the document the same (same parsed
tree, or only trailing whitespace cut) is not malformed and is skipped. SQLite only (the checks are the same
code on PostgreSQL; 200 restores there would take minutes).
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree
from sqlalchemy import Engine, func, select

from abscopal.errors import AbscopalError
from abscopal.interop import odm
from abscopal.store.audit_key import load_key
from abscopal.store.database import make_engine
from abscopal.store.migrate import upgrade
from abscopal.store.tables import ENTITIES, audit_head, audit_log

_spec = importlib.util.spec_from_file_location("_odm_round_trip", Path(__file__).with_name("test_odm.py"))
assert _spec is not None and _spec.loader is not None
_round_trip = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_round_trip)  # the same database as the round-trip tests (tests are not a package)
_populate, _export = _round_trip._populate, _round_trip._export

SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
_A = "{" + odm.ABS_NS + "}"


class Bad:
    """One malformed file; shown by what was done to it (hypothesis prints its draws)."""

    def __init__(self, what: str, data: bytes) -> None:
        self.what, self.data = what, data

    def __repr__(self) -> str:
        return f"Bad({self.what!r}, {len(self.data)} bytes)"


class Valid:
    """The valid file, its parsed tree and the key of the database it came from."""

    def __init__(self, data: bytes, key: bytes) -> None:
        self.data = data
        self.key = key
        self.tree = etree.fromstring(data, etree.XMLParser(remove_blank_text=True))
        self.canonical = etree.tostring(self.tree)


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> Valid:
    folder = tmp_path_factory.mktemp("odm-source")
    engine = make_engine(f"sqlite:///{folder / 'source.sqlite'}")
    upgrade(engine)
    _populate(engine)
    path = _export(engine, folder / "full.xml")
    key = load_key(engine.url, create=False)
    engine.dispose()
    return Valid(path.read_bytes(), key)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    folder = tmp_path_factory.mktemp("odm-target")
    engine = make_engine(f"sqlite:///{folder / 'target.sqlite'}")
    upgrade(engine)
    return engine


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("odm-bad")


def _state(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        counts: dict[str, Any] = {
            n: conn.execute(select(func.count()).select_from(e.table)).scalar_one() for n, e in ENTITIES.items()
        }
        counts["audit_log"] = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
        counts["audit_head"] = [tuple(r) for r in conn.execute(select(audit_head))]
    return counts


def _assert_refused(data: bytes, what: str, valid: Valid, target: Engine, workdir: Path) -> None:
    before = _state(target)
    assert all(v == 0 for k, v in before.items() if k != "audit_head"), "the target starts empty"
    path = workdir / "bad.xml"
    path.write_bytes(data)
    try:
        odm.restore_odm(target, path, key=valid.key)
    except AbscopalError as exc:
        assert str(exc).strip(), f"{what}: refused without a sentence"
    except Exception as exc:  # the point of the test: any other exception is a bug
        pytest.fail(f"{what}: raised {type(exc).__name__} instead of an AbscopalError: {exc}")
    else:
        pytest.fail(f"{what}: the malformed file was restored")
    assert _state(target) == before, f"{what}: the database changed"


# --- tree mutations


SAFE_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=24)
BAD_VALUES = st.sampled_from([
    "", " ", "0", "-1", "Yes", "No", "NaN", "1e309", "true", "2025-02-30", "2025-06-30T25:00:00Z",
    "99999999999999999999999", "IT.NOPE.X", "USR.nobody", "LOC.NOWHERE", "\u4e0d\u8be6", "a" * 300,
])  # fmt: skip
NAMES = st.sampled_from([
    "ItemData", "ItemGroupData", "FormData", "StudyEventData", "SubjectData", "ClinicalData", "AuditRecord",
    "UserRef", "SiteRef", "Entry", "NewValue", "Lock", "Query", "Signature", "SDV", "Evil",
])  # fmt: skip
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _elements(tree: etree._Element) -> list[etree._Element]:
    return [e for e in tree.iter() if e is not tree]


@st.composite
def tree_mutation(draw: st.DrawFn, valid: Valid) -> Bad:
    tree = copy.deepcopy(valid.tree)
    elements = _elements(tree)
    kind = draw(st.sampled_from(["delete", "duplicate", "rename", "attribute", "date", "oid", "entry", "text"]))
    if kind == "delete":
        el = draw(st.sampled_from(elements))
        el.getparent().remove(el)
        what = f"{etree.QName(el).localname} deleted"
    elif kind == "duplicate":
        el = draw(st.sampled_from(elements))
        parent = el.getparent()
        parent.insert(parent.index(el) + 1, copy.deepcopy(el))
        what = f"{etree.QName(el).localname} duplicated"
    elif kind == "rename":
        el = draw(st.sampled_from(elements))
        name = draw(NAMES)
        ns = draw(st.sampled_from([odm.ODM_NS, odm.ABS_NS, "urn:other"]))
        what = f"{etree.QName(el).localname} renamed {{{ns}}}{name}"
        el.tag = f"{{{ns}}}{name}"
    elif kind in ("attribute", "date", "oid"):
        if kind == "attribute":
            holders = [(e, k) for e in elements for k in e.attrib]
        elif kind == "date":
            holders = [(e, k) for e in elements for k, v in e.attrib.items() if DATE.match(v)]
        else:
            holders = [(e, k) for e in elements for k in e.attrib if k.endswith("OID") or k == "SubjectKey"]
        el, name = draw(st.sampled_from(holders))
        old = el.get(name)
        if kind == "date":
            day = dt.date.fromisoformat(old[:10]) + dt.timedelta(days=draw(st.integers(-400, 400).filter(bool)))
            new = draw(st.sampled_from([day.isoformat() + old[10:], old[:5] + "02-30" + old[10:], old[:10]]))
        elif kind == "oid":
            others = sorted({v for e, k in holders for v in [e.get(k)] if v != old})
            new = draw(st.sampled_from(others) | BAD_VALUES)
        else:
            new = draw(BAD_VALUES | SAFE_TEXT)
        el.set(name, new)
        what = f"{etree.QName(el).localname}/@{name} {old!r} -> {new!r}"
    elif kind == "entry":
        entries = list(tree.iter(_A + "Entry"))
        i = draw(st.integers(0, len(entries) - 1))
        e = entries[i]
        change = draw(st.sampled_from(["seq", "swap", "value", "hash", "drop-value", "field"]))
        if change == "seq":
            e.set("Seq", str(int(e.get("Seq")) + draw(st.sampled_from([1, -1, 1000]))))
        elif change == "swap" and i + 1 < len(entries):
            e.addnext(copy.deepcopy(e))
            e.getparent().remove(e)
        elif change == "hash":
            e.set("Hash", draw(st.from_regex(r"[0-9a-f]{64}", fullmatch=True)))
        elif change == "drop-value" and len(e):
            e.remove(e[-1])
        elif change == "field":
            e.set("Field", draw(st.sampled_from(["*", "organ", "nonsense", "subject_id"])))
        else:
            holder = e.find(_A + "NewValue")
            if holder is None:
                holder = etree.SubElement(e, _A + "NewValue")
            holder.text = draw(st.sampled_from(['"x"', "null", "{", '{"rows": []}', "1", ""]))
        what = f"audit entry {e.get('Seq')}: {change}"
    else:
        holders = [e for e in elements if e.text is not None and e.text.strip()]
        el = draw(st.sampled_from(holders))
        new = draw(BAD_VALUES | SAFE_TEXT)
        what = f"{etree.QName(el).localname} text {el.text!r} -> {new!r}"
        el.text = new
    data = etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
    assume(etree.tostring(tree) != valid.canonical)  # the same document is not malformed
    return Bad(what, data)


@SETTINGS
@given(data=st.data())
def test_a_mutated_document_is_refused_and_writes_nothing(
    data: st.DataObject, valid: Valid, target: Engine, workdir: Path
) -> None:
    bad = data.draw(tree_mutation(valid))
    _assert_refused(bad.data, bad.what, valid, target, workdir)


# --- byte mutations

DECLARATIONS = st.sampled_from([
    b"<!DOCTYPE ODM>", b'<!DOCTYPE ODM SYSTEM "http://127.0.0.1:9/odm.dtd">', b'<!doctype ODM [<!ENTITY a "b">]>',
    b'<!DOCTYPE ODM [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    b'<!DOCTYPE ODM [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    b"<! DOCTYPE ODM>", b'<!ENTITY a "b">',
])  # fmt: skip
BAD_UTF8 = st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xe4\xb8", b"\x80"])


@st.composite
def byte_mutation(draw: st.DrawFn, valid: Valid) -> Bad:
    data = valid.data
    end = len(data.rstrip())  # cutting only the final newline leaves a valid file
    kind = draw(st.sampled_from(["truncate", "utf8", "gb18030", "declaration", "entity-ref"]))
    if kind == "truncate":
        at = draw(st.integers(0, end - 1))
        return Bad(f"truncated at byte {at}", data[:at])
    if kind == "utf8":
        at = draw(st.integers(0, len(data)))
        junk = draw(BAD_UTF8)
        return Bad(f"{junk!r} inserted at byte {at}", data[:at] + junk + data[at:])
    if kind == "gb18030":
        return Bad("re-encoded as GB18030, still declared UTF-8", data.decode("utf-8").encode("gb18030"))
    if kind == "declaration":
        decl = draw(DECLARATIONS)
        head, body = data.split(b"\n", 1)
        return Bad(f"{decl!r} after the XML declaration", head + b"\n" + decl + b"\n" + body)
    return Bad("an undeclared entity reference", data.replace(b'SourceSystem="Abscopal"', b'SourceSystem="&xxe;"', 1))


@SETTINGS
@given(data=st.data())
def test_broken_bytes_are_refused_and_write_nothing(
    data: st.DataObject, valid: Valid, target: Engine, workdir: Path
) -> None:
    bad = data.draw(byte_mutation(valid))
    _assert_refused(bad.data, bad.what, valid, target, workdir)


def test_the_unmutated_file_restores(valid: Valid, tmp_path: Path) -> None:
    """The control: the file every mutation starts from is accepted (so a refusal is the mutation's doing)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'control.sqlite'}")
    upgrade(engine)
    path = tmp_path / "valid.xml"
    path.write_bytes(valid.data)
    summary = odm.restore_odm(engine, path, key=valid.key, dry_run=True)
    assert summary.rows["patients"] == 3
