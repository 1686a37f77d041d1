"""CDISC ODM 1.3.2 export (a Snapshot of the whole database) and restore of Abscopal's own files.

The export (:func:`write_odm`) is deterministic: fixed element and attribute order, OIDs made from names, rows in
stable-id order, the creation time a parameter. MetaData: one MetaDataVersion per protocol version, events from the
protocol schedule, one FormDef per domain class and one ItemGroupDef per table (generated from
``store.tables.ENTITIES``), ``IT.<TABLE>.<FIELD>`` items typed from the columns, a CodeList per enum.
ClinicalData: one ItemGroupData per stored row (ItemGroupRepeatKey = its stable id) with the AuditRecord of the
row's last whole-row record (its insert), which every ItemData inherits unless it has its own (its field's last
change, when the field was changed alone). The full file adds the ``urn:abscopal:odm:1`` namespace (``abs:``):
stable ids, versions and removals of records, queries, locks, SDV marks and record signatures, and the whole
HMAC-chained audit trail verbatim, so that :func:`restore_odm` can rebuild an empty database from it and verify
the chain. ``strict=True`` leaves every ``abs:`` out and validates against the plain ODM 1.3.2 XSD (interop.md §4).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import enum
import os
import re
import tempfile
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from lxml import etree
from sqlalchemy import JSON, Boolean, Connection, Date, DateTime, Engine, Float, Integer, func, select, update
from sqlalchemy.exc import SQLAlchemyError

import abscopal
from abscopal.errors import InputFileError, Problem, StoreError
from abscopal.protocol.model import Protocol, ProtocolFile
from abscopal.store import audit as audit_mod
from abscopal.store.audit_key import key_id, key_location, load_key
from abscopal.store.codec import _field_type, codec, insert_rows
from abscopal.store.tables import DATA_MANAGEMENT, ENTITIES, audit_head, audit_log

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
ABS_NS = "urn:abscopal:odm:1"
XML_NS = "http://www.w3.org/XML/1998/namespace"
_O = "{" + ODM_NS + "}"
_A = "{" + ABS_NS + "}"
_LANG = "{" + XML_NS + "}lang"

SCHEMA_DIR = resources.files("abscopal.interop") / "schemas"
EXTENSION_SCHEMA = "abscopal-odm1-3-2.xsd"
"""The top schema of the full (non-strict) file: ODM 1.3.2 with abscopal-odm1-3-2-extension.xsd."""

# --- the study's shape: which event and form each table belongs to

EVENTS: tuple[tuple[str, str, bool, str], ...] = (
    # OID, name, repeating, type (ODM StudyEventDef/@Type)
    ("SE.SCREENING", "Screening", False, "Scheduled"),
    ("SE.BASELINE", "Baseline", False, "Scheduled"),
    ("SE.ASSESSMENT", "Tumour assessment", True, "Scheduled"),
    ("SE.IO", "Immunotherapy cycle", True, "Scheduled"),
    ("SE.FOLLOWUP", "Follow-up", False, "Scheduled"),
    ("SE.LOG", "Log forms", False, "Common"),
)
EVENT_OF: dict[str, str] = {
    "patients": "SE.SCREENING",
    "screenings": "SE.SCREENING",
    "immunotherapy_histories": "SE.SCREENING",
    "adjudications": "SE.SCREENING",
    "lesions": "SE.BASELINE",
    "tumour_assessments": "SE.ASSESSMENT",  # one event per assessment (repeat key = its stable id)
    "immunotherapy_cycles": "SE.IO",  # one event per cycle (repeat key = its stable id)
    "questionnaire_answers": "SE.FOLLOWUP",
    "radiotherapy_courses": "SE.LOG",
    "fractions": "SE.LOG",
    "protocol_deviations": "SE.LOG",
    "adverse_events": "SE.LOG",
}
"""Tables with clinical data, in the order their forms appear; every other table is AdminData or ``abs:`` only."""
REPEATING_EVENTS = frozenset(oid for oid, _, repeating, _ in EVENTS if repeating)
MANAGEMENT_ELEMENTS: dict[str, str] = {
    "data_queries": "Query",
    "record_locks": "Lock",
    "sdv_marks": "SDV",
    "record_signatures": "Signature",
}
"""The ``abs:`` element of each data-management table (in SubjectData, in the extension schema's order)."""
assert set(MANAGEMENT_ELEMENTS) == set(DATA_MANAGEMENT) | {"data_queries"}
JSON_GROUPS = {("screenings", "labs"): "LAB"}
"""JSON columns written as a repeating item group (``IG.LAB``: one row per lab, keyed by the lab's name)."""
LAB_FIELDS = (("name", "text"), ("value", "float"), ("unit", "text"), ("uln", "float"), ("lln", "float"))
CENTRAL = "LOC.CENTRAL"


def _children(table: str) -> list[str]:
    return [n for n, e in ENTITIES.items() if e.parent == table]


def _item_columns(table: str) -> tuple[str, ...]:
    """The columns written as ItemData: the parent's id (children) and the fields, JSON groups excepted."""
    return tuple(c for c in codec(table).state_columns if (table, c) not in JSON_GROUPS)


def _data_type(table: str, column: str) -> str:
    t = ENTITIES[table].table.c[column].type
    if isinstance(t, Boolean):
        return "boolean"
    if isinstance(t, Integer):
        return "integer"
    if isinstance(t, Float):
        return "float"
    if isinstance(t, DateTime):
        return "datetime"
    if isinstance(t, Date):
        return "date"
    return "text"


def _enum_of(table: str, column: str) -> type[enum.Enum] | None:
    e = ENTITIES[table]
    if column not in typing.get_type_hints(e.cls):
        return None
    hint = _field_type(e.cls, column)
    return hint if isinstance(hint, type) and issubclass(hint, enum.Enum) else None


def _oid_part(name: str) -> str:
    return name.upper()


def _codelist_oid(cls: type[enum.Enum]) -> str:
    return f"CL.{cls.__name__.upper()}"


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


# --- values as text


def _text(value: Any) -> str:
    """One value as ODM text: ISO 8601 dates and UTC datetimes, shortest floats, true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return _utc(value).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, dict | list):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return str(value)


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _sub(parent: etree._Element, tag: str, attrs: Iterable[tuple[str, str | None]] = ()) -> etree._Element:
    """A child element with its attributes in the given order (None values left out)."""
    el = etree.SubElement(parent, tag)
    for k, v in attrs:
        if v is not None:
            el.set(k, v)
    return el


def _translated(parent: etree._Element, tag: str, text: str) -> None:
    holder = etree.SubElement(parent, _O + tag)
    tt = etree.SubElement(holder, _O + "TranslatedText")
    tt.set(_LANG, "en")
    tt.text = text


# --- what the export reads


@dataclass
class _Snapshot:
    """Everything the export writes, read in one transaction."""

    rows: dict[str, list[dict[str, Any]]]  # table -> rows (id and every column, normalised), in id order
    audit: list[Any]  # audit_log rows in seq order
    head: Any
    last_change: dict[tuple[str, str], dict[str, Any]]  # (table, id) -> field or "*" -> the audit row
    audit_records: dict[int, etree._Element] = dataclasses.field(
        default_factory=dict
    )  # seq -> its AuditRecord, built once


def _read(conn: Connection) -> _Snapshot:
    rows: dict[str, list[dict[str, Any]]] = {}
    for name, e in ENTITIES.items():
        c = codec(name)
        out = []
        for r in conn.execute(select(e.table).order_by(e.table.c.id)):
            state = c.state_from_db(r._mapping)
            state["id"] = str(r.id)
            out.append(state)
        rows[name] = out
    trail = list(conn.execute(select(audit_log).order_by(audit_log.c.seq)))
    head = conn.execute(select(audit_head).where(audit_head.c.id == 1)).first()
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for r in trail:
        if r.entity not in ENTITIES:
            continue
        if r.field == audit_mod.ROWS:
            for key in orjson.loads(r.new_value)["rows"]:
                last.setdefault((r.entity, key), {})["*"] = r
        elif r.field == audit_mod.ROW:
            last.setdefault((r.entity, r.entity_key), {})["*"] = r
        else:
            last.setdefault((r.entity, r.entity_key), {})[r.field] = r
    return _Snapshot(rows, trail, head, last)


# --- the document


def _study_oid(protocol: Protocol) -> str:
    return f"ST.{_oid_part(protocol.trial.id)}"


def _mdv_oid(version: str) -> str:
    return f"MDV.{version}"


def _user_oid(username: str) -> str:
    return f"USR.{username}"


def _site_oid(code: str) -> str:
    return f"LOC.{code}"


def _metadata(study: etree._Element, version: str, protocol: Protocol) -> None:
    mdv = _sub(
        study,
        _O + "MetaDataVersion",
        [("OID", _mdv_oid(version)), ("Name", f"Protocol version {version}"),
         ("Description", f"{protocol.trial.short_title}, protocol version {version}")],
    )  # fmt: skip
    proto = _sub(mdv, _O + "Protocol")
    for i, (oid, _, _, _) in enumerate(EVENTS, start=1):
        _sub(proto, _O + "StudyEventRef", [("StudyEventOID", oid), ("OrderNumber", str(i)), ("Mandatory", "No")])
    s = protocol.schedule
    described = {
        "SE.ASSESSMENT": f"Every {s.assessment_interval_days} days (window ±{s.assessment_window_days} days)",
        "SE.FOLLOWUP": f"Every {s.follow_up_interval_days} days (window ±{s.follow_up_window_days} days) up to "
        f"{s.max_follow_up_days} days; questionnaires every {s.questionnaire_interval_days} days",
    }
    for oid, name, repeating, kind in EVENTS:
        sed = _sub(
            mdv,
            _O + "StudyEventDef",
            [("OID", oid), ("Name", name), ("Repeating", "Yes" if repeating else "No"), ("Type", kind)],
        )
        if oid in described:
            _sub(sed, _O + "Description")
            _translated_text(sed[-1], described[oid])
        forms = [t for t, ev in EVENT_OF.items() if ev == oid]
        for i, table in enumerate(forms, start=1):
            _sub(
                sed,
                _O + "FormRef",
                [("FormOID", f"F.{_oid_part(table)}"), ("OrderNumber", str(i)), ("Mandatory", "No")],
            )
    for table in EVENT_OF:
        form = _sub(
            mdv, _O + "FormDef", [("OID", f"F.{_oid_part(table)}"), ("Name", _label(table)), ("Repeating", "No")]
        )
        for i, group in enumerate(_groups_of(table), start=1):
            _sub(form, _O + "ItemGroupRef", [("ItemGroupOID", group), ("OrderNumber", str(i)), ("Mandatory", "No")])
    for table in EVENT_OF:
        for sub_table in (table, *_children(table)):
            igd = _sub(
                mdv,
                _O + "ItemGroupDef",
                [("OID", f"IG.{_oid_part(sub_table)}"), ("Name", _label(sub_table)), ("Repeating", "Yes")],
            )
            for i, column in enumerate(_item_columns(sub_table), start=1):
                _sub(
                    igd,
                    _O + "ItemRef",
                    [("ItemOID", f"IT.{_oid_part(sub_table)}.{_oid_part(column)}"), ("OrderNumber", str(i)),
                     ("Mandatory", "No" if ENTITIES[sub_table].table.c[column].nullable else "Yes")],
                )  # fmt: skip
            for (t, _), group in JSON_GROUPS.items():
                if t == sub_table:
                    attrs = [("OID", f"IG.{group}"), ("Name", _label(group.lower())), ("Repeating", "Yes")]
                    lab = _sub(mdv, _O + "ItemGroupDef", attrs)
                    for i, (name, _) in enumerate(LAB_FIELDS, start=1):
                        mandatory = "Yes" if name in ("name", "value", "unit") else "No"
                        oid = f"IT.{group}.{_oid_part(name)}"
                        _sub(lab, _O + "ItemRef", [("ItemOID", oid), ("OrderNumber", str(i)), ("Mandatory", mandatory)])
    enums: dict[str, type[enum.Enum]] = {}
    for table in EVENT_OF:
        for sub_table in (table, *_children(table)):
            for column in _item_columns(sub_table):
                item = _sub(
                    mdv,
                    _O + "ItemDef",
                    [("OID", f"IT.{_oid_part(sub_table)}.{_oid_part(column)}"), ("Name", f"{sub_table}.{column}"),
                     ("DataType", _data_type(sub_table, column))],
                )  # fmt: skip
                _translated(item, "Question", _label(column))
                cls = _enum_of(sub_table, column)
                if cls is not None:
                    enums[_codelist_oid(cls)] = cls
                    _sub(item, _O + "CodeListRef", [("CodeListOID", _codelist_oid(cls))])
            for (t, _), group in JSON_GROUPS.items():
                if t == sub_table:
                    for name, kind in LAB_FIELDS:
                        oid = f"IT.{group}.{_oid_part(name)}"
                        item = _sub(mdv, _O + "ItemDef", [("OID", oid), ("Name", f"{group.lower()}.{name}"),
                                                          ("DataType", kind)])  # fmt: skip
                        _translated(item, "Question", f"Lab {name}")
    for oid in sorted(enums):
        cls = enums[oid]
        cl = _sub(mdv, _O + "CodeList", [("OID", oid), ("Name", cls.__name__), ("DataType", "text")])
        for member in cls:
            cli = _sub(cl, _O + "CodeListItem", [("CodedValue", str(member.value))])
            _translated(cli, "Decode", _label(member.name.lower()))


def _translated_text(holder: etree._Element, text: str) -> None:
    tt = etree.SubElement(holder, _O + "TranslatedText")
    tt.set(_LANG, "en")
    tt.text = text


def _groups_of(table: str) -> list[str]:
    groups = [f"IG.{_oid_part(table)}"] + [f"IG.{_oid_part(c)}" for c in _children(table)]
    groups += [f"IG.{g}" for (t, _), g in JSON_GROUPS.items() if t == table]
    return groups


def _admin(root: etree._Element, snap: _Snapshot, versions: list[str], study_oid: str, protocols: ProtocolFile) -> None:
    admin = _sub(root, _O + "AdminData", [("StudyOID", study_oid)])
    site_of = {u["username"]: u["site_code"] for u in snap.rows["users"]}
    usernames = sorted({str(r.username) for r in snap.audit} | set(site_of))
    for username in usernames:
        user = _sub(admin, _O + "User", [("OID", _user_oid(username))])
        _sub(user, _O + "LoginName").text = username
        _sub(user, _O + "LocationRef", [("LocationOID", _location_of(username, site_of))])
    effective = {v: protocols.version(v).version.effective_date.isoformat() for v in protocols.versions}
    locations = [(CENTRAL, "Central data management", "Sponsor")]
    locations += [
        (_site_oid(s["code"]), s["name"], "Site") for s in sorted(snap.rows["sites"], key=lambda s: s["code"])
    ]
    for oid, name, kind in locations:
        loc = _sub(admin, _O + "Location", [("OID", oid), ("Name", name), ("LocationType", kind)])
        for v in versions:
            when = effective.get(v, effective[protocols.versions[0]])
            attrs = [("StudyOID", study_oid), ("MetaDataVersionOID", _mdv_oid(v)), ("EffectiveDate", when)]
            _sub(loc, _O + "MetaDataVersionRef", attrs)


def _location_of(username: str, site_of: dict[str, Any]) -> str:
    site = site_of.get(username)
    return _site_oid(site) if site else CENTRAL


def _subject_of(snap: _Snapshot) -> Callable[[str, dict[str, Any]], str | None]:
    parents = {name: {r["id"]: r for r in snap.rows[name]} for name, e in ENTITIES.items() if _children(name)}

    def subject(table: str, row: dict[str, Any]) -> str | None:
        e = ENTITIES[table]
        if e.parent is not None:
            parent = parents[e.parent].get(row[e.parent_column or ""])
            return None if parent is None else parent.get("subject_id")
        return row.get("subject_id")

    return subject


def _clinical(root: etree._Element, snap: _Snapshot, version: str, study_oid: str, strict: bool) -> etree._Element:
    cd = _sub(root, _O + "ClinicalData", [("StudyOID", study_oid), ("MetaDataVersionOID", _mdv_oid(version))])
    for _ in _subjects(cd, snap, version, strict):
        pass
    return cd


def _subjects(cd: etree._Element, snap: _Snapshot, version: str, strict: bool) -> Iterator[etree._Element]:
    """Append each SubjectData of ``version`` to ``cd`` and yield it (the export writes and drops it)."""
    patients = [p for p in snap.rows["patients"] if p["protocol_version"] == version]
    if strict:
        patients = [p for p in patients if p["removed_reason"] is None]
    subject_of = _subject_of(snap)
    by_subject: dict[str, dict[str, list[dict[str, Any]]]] = {}
    wanted = set(EVENT_OF) | {c for t in EVENT_OF for c in _children(t)} | set(MANAGEMENT_ELEMENTS)
    for table in ENTITIES:
        if table not in wanted:
            continue
        for row in snap.rows[table]:
            if strict and row["removed_reason"] is not None:
                continue
            s = subject_of(table, row)
            if s is not None:
                by_subject.setdefault(s, {}).setdefault(table, []).append(row)
    site_of = {u["username"]: u["site_code"] for u in snap.rows["users"]}
    for p in sorted(patients, key=lambda p: (p["subject_id"], p["id"])):
        rows = by_subject.get(p["subject_id"], {})
        subject = _sub(cd, _O + "SubjectData", [("SubjectKey", p["subject_id"])])
        _sub(subject, _O + "SiteRef", [("LocationOID", _site_oid(p["site_code"]))])
        for event_oid, _, repeating, _ in EVENTS:
            tables = [t for t, ev in EVENT_OF.items() if ev == event_oid and rows.get(t)]
            if not tables:
                continue
            if repeating:
                (table,) = tables
                for row in rows[table]:
                    sed = _sub(subject, _O + "StudyEventData", [("StudyEventOID", event_oid),
                                                                ("StudyEventRepeatKey", row["id"])])  # fmt: skip
                    _form(sed, snap, table, [row], rows, strict, site_of)
            else:
                sed = _sub(subject, _O + "StudyEventData", [("StudyEventOID", event_oid)])
                for table in tables:
                    _form(sed, snap, table, rows[table], rows, strict, site_of)
        if not strict:
            for table, tag in MANAGEMENT_ELEMENTS.items():
                for row in rows.get(table, []):
                    attrs: list[tuple[str, str | None]] = [
                        ("StableID", row["id"]), ("Version", str(row["version"])),
                        ("RemovedReason", row["removed_reason"]),
                    ]  # fmt: skip
                    attrs += [(c, None if row[c] is None else _text(row[c])) for c in codec(table).state_columns]
                    _sub(subject, _A + tag, attrs)
        yield subject


def _form(
    sed: etree._Element,
    snap: _Snapshot,
    table: str,
    parents: list[dict[str, Any]],
    rows: dict[str, list[dict[str, Any]]],
    strict: bool,
    site_of: dict[str, Any],
) -> None:
    form = _sub(sed, _O + "FormData", [("FormOID", f"F.{_oid_part(table)}")])
    for row in parents:
        _group(form, snap, table, row, strict, site_of)
    ids = {r["id"] for r in parents}
    for child in _children(table):
        column = ENTITIES[child].parent_column or ""
        kids = sorted((r for r in rows.get(child, []) if r[column] in ids), key=lambda r: (r[column], r["id"]))
        for row in kids:
            _group(form, snap, child, row, strict, site_of)
    for (t, column), group in JSON_GROUPS.items():
        if t != table:
            continue
        for row in parents:
            for name, lab in sorted((row[column] or {}).items()):
                ig = _sub(form, _O + "ItemGroupData", [("ItemGroupOID", f"IG.{group}"),
                                                       ("ItemGroupRepeatKey", f"{row['id']}:{name}")])  # fmt: skip
                values = {"name": name, **lab}
                record = snap.last_change.get((table, row["id"]), {}).get(column)
                _audit_record(ig, record, site_of, snap.audit_records)  # the JSON column's last change
                for field, _ in LAB_FIELDS:
                    if values.get(field) is not None:
                        _sub(ig, _O + "ItemData", [("ItemOID", f"IT.{group}.{_oid_part(field)}"),
                                                   ("Value", _text(values[field]))])  # fmt: skip


def _group(form: etree._Element, snap: _Snapshot, table: str, row: dict[str, Any], strict: bool,
           site_of: dict[str, Any]) -> None:  # fmt: skip
    attrs: list[tuple[str, str | None]] = [
        ("ItemGroupOID", f"IG.{_oid_part(table)}"),
        ("ItemGroupRepeatKey", row["id"]),
    ]
    if not strict:
        attrs += [(_A + "StableID", row["id"]), (_A + "Version", str(row["version"])),
                  (_A + "RemovedReason", row["removed_reason"])]  # fmt: skip
    ig = _sub(form, _O + "ItemGroupData", attrs)
    changes = snap.last_change.get((table, row["id"]), {})
    _audit_record(ig, changes.get("*"), site_of, snap.audit_records)  # the row's: every item's unless its own
    for column in _item_columns(table):
        value = row[column]
        record = changes.get(column)
        if value is None and record is None:
            continue
        oid = f"IT.{_oid_part(table)}.{_oid_part(column)}"
        item = _sub(ig, _O + "ItemData", [("ItemOID", oid), ("Value", None if value is None else _text(value))])
        if value is None:
            item.set("IsNull", "Yes")
        _audit_record(item, record, site_of, snap.audit_records)  # a change of this field alone


def _audit_record(item: etree._Element, record: Any, site_of: dict[str, Any], built: dict[int, etree._Element]) -> None:
    """The AuditRecord of ``record`` under ``item`` (an ItemGroupData or ItemData): a copy of the one built for its
    seq (a bulk record covers thousands of rows)."""
    if record is None:
        return
    template = built.get(record.seq)
    if template is None:
        template = etree.Element(_O + "AuditRecord")
        _sub(template, _O + "UserRef", [("UserOID", _user_oid(str(record.username)))])
        _sub(template, _O + "LocationRef", [("LocationOID", _location_of(str(record.username), site_of))])
        _sub(template, _O + "DateTimeStamp").text = _utc(record.at).isoformat()
        _sub(template, _O + "ReasonForChange").text = str(record.reason)
        _sub(template, _O + "SourceID").text = f"audit:{record.seq}"
        built[record.seq] = template
    item.append(copy.deepcopy(template))


def _trail(root: etree._Element, snap: _Snapshot) -> etree._Element:
    trail = _trail_element(root, snap)
    for _ in _entries_of(trail, snap):
        pass
    return trail


def _trail_element(root: etree._Element, snap: _Snapshot) -> etree._Element:
    head = snap.head
    trail = _sub(
        root,
        _A + "AuditTrail",
        [("LastSeq", str(head.last_seq)), ("LastHash", str(head.last_hash)), ("LegacySeq", str(head.legacy_seq or 0)),
         ("KeyID", head.key_id)],
    )  # fmt: skip
    return trail


def _entries_of(trail: etree._Element, snap: _Snapshot) -> Iterator[etree._Element]:
    """Append each audit record's abs:Entry to ``trail`` and yield it."""
    for r in snap.audit:
        entry = _sub(
            trail,
            _A + "Entry",
            [("Seq", str(r.seq)), ("At", _utc(r.at).isoformat()), ("User", r.username), ("Entity", r.entity),
             ("EntityKey", r.entity_key), ("Field", r.field), ("Reason", r.reason), ("PrevHash", r.prev_hash),
             ("Hash", r.hash), ("Version", None if r.version is None else str(r.version)),
             ("KeyFirst", r.key_first), ("KeyLast", r.key_last)],
        )  # fmt: skip
        if r.old_value is not None:
            _sub(entry, _A + "OldValue").text = r.old_value
        if r.new_value is not None:
            _sub(entry, _A + "NewValue").text = r.new_value
        yield entry


def _versions(snap: _Snapshot, protocols: ProtocolFile) -> list[str]:
    known = list(protocols.versions)
    extra = sorted({p["protocol_version"] for p in snap.rows["patients"]} - set(known))
    return known + extra


def _document(
    snap: _Snapshot, *, created: dt.datetime, strict: bool, protocols: ProtocolFile, body: bool = True
) -> etree._Element:
    """The whole document, or (``body=False``) the ODM element with Study and AdminData only."""
    current = protocols.current
    study_oid = _study_oid(current)
    nsmap = {None: ODM_NS} if strict else {None: ODM_NS, "abs": ABS_NS}
    root = etree.Element(_O + "ODM", nsmap=nsmap)
    stamp = _utc(created)
    for k, v in [
        ("FileType", "Snapshot"), ("FileOID", f"ODM.{_oid_part(current.trial.id)}.{stamp:%Y%m%dT%H%M%SZ}"),
        ("CreationDateTime", stamp.isoformat()), ("ODMVersion", "1.3.2"), ("Originator", "Abscopal"),
        ("SourceSystem", "Abscopal"), ("SourceSystemVersion", abscopal.__version__),
    ]:  # fmt: skip
        root.set(k, v)
    versions = _versions(snap, protocols)
    study = _sub(root, _O + "Study", [("OID", study_oid)])
    gv = _sub(study, _O + "GlobalVariables")
    _sub(gv, _O + "StudyName").text = current.trial.short_title
    _sub(gv, _O + "StudyDescription").text = current.trial.title
    _sub(gv, _O + "ProtocolName").text = current.trial.id
    for v in versions:
        _metadata(study, v, protocols.version(v) if v in protocols.versions else current)
    _admin(root, snap, versions, study_oid, protocols)
    if not body:
        return root
    for v in versions:
        _clinical(root, snap, v, study_oid, strict)
    if not strict:
        _trail(root, snap)
    return root


@dataclass(frozen=True)
class OdmSummary:
    """What an export wrote or a restore read."""

    path: Path
    subjects: int
    records: int  # audit records
    rows: dict[str, int]


def write_odm(
    conn: Connection,
    path: Path | str,
    *,
    created: dt.datetime,
    strict: bool = False,
    protocols: ProtocolFile,
) -> OdmSummary:
    """Write the database as one ODM 1.3.2 Snapshot file (atomically: a temporary file renamed into place)."""
    from abscopal.interop.odm_export import stream_odm

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "wb") as fh:
            try:
                written = stream_odm(fh, conn, created=created, strict=strict, protocols=protocols)
            except ValueError as exc:  # a control character in a value: XML 1.0 cannot hold it
                raise StoreError(f"A value in the database cannot be written as XML ({exc}); correct it first") from exc
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return OdmSummary(path, written.subjects, written.records, written.rows)


def _serialise(root: etree._Element) -> bytes:
    """The whole document in memory, pretty-printed (what :func:`_stream` writes piece by piece)."""
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


# --- schemas


def odm_schema_dir() -> Path:
    """The ODM 1.3.2 schemas bundled in odmlib's wheel."""
    from odmlib.schema_manager import get_schema_dir

    return Path(get_schema_dir("odm", "1.3.2"))


@cache
def extension_schema() -> Any:
    """Our ODM 1.3.2 + ``abs:`` schema, with its ``odm-1.3.2/`` locations mapped to odmlib's copies."""
    import xmlschema

    odm_dir = odm_schema_dir()
    marker = "odm-1.3.2/"

    def mapper(url: str) -> str:
        if url.startswith(marker) or "/" + marker in url:
            return (odm_dir / url.rsplit(marker, 1)[1]).as_uri()
        return url

    with resources.as_file(SCHEMA_DIR / EXTENSION_SCHEMA) as top:
        return xmlschema.XMLSchema(str(top), uri_mapper=mapper)


class _OdmSchemaResolver(etree.Resolver):  # type: ignore[misc]  # lxml-stubs: Resolver untyped
    """Maps our schemas' ``odm-1.3.2/`` locations to odmlib's copies (as :func:`extension_schema` does)."""

    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:
        marker = "odm-1.3.2/"
        if marker in system_url:
            return self.resolve_filename(str(odm_schema_dir() / system_url.rsplit(marker, 1)[1]), context)
        return None


@cache
def _validator() -> etree.XMLSchema:
    """The same schema compiled by libxml2: a restore validates with it (xmlschema needs minutes on a big file)."""
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_OdmSchemaResolver())
    with resources.as_file(SCHEMA_DIR / EXTENSION_SCHEMA) as top:
        return etree.XMLSchema(etree.parse(str(top), parser))


# --- restore


_PARSER_OPTIONS = {
    "resolve_entities": False,
    "no_network": True,
    "huge_tree": False,
    "load_dtd": False,
    "dtd_validation": False,
    "remove_blank_text": True,
}


_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def _refuse(path: Path, reason: str, line: int | None = None, field: str = "") -> InputFileError:
    return InputFileError(str(path), [Problem(line, field, reason)])


def parse_odm(path: Path) -> etree._ElementTree:
    """Parse an Abscopal ODM file safely (no DTD, no entities, no network) and validate it against our XSD."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _refuse(path, f"the file cannot be read ({exc.strerror})") from None
    if _DECLARATION.search(data):  # before parsing: an entity is never expanded, even by mistake
        raise _refuse(path, "the file declares a DTD or entities (never read from an ODM file): refused")
    parser = etree.XMLParser(**_PARSER_OPTIONS)
    try:
        tree = etree.ElementTree(etree.fromstring(data, parser))
    except etree.XMLSyntaxError as exc:
        raise _refuse(path, f"the file is not well-formed XML ({exc.msg})", exc.lineno) from None
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise _refuse(path, "the file declares a DTD (entities are never read from an ODM file): refused")
    root = tree.getroot()
    if root.tag != _O + "ODM":
        raise _refuse(path, f"the root element is {root.tag!r}, not ODM 1.3.2's {{{ODM_NS}}}ODM", root.sourceline)
    schema = _validator()
    problems = []
    if not schema.validate(tree):
        for error in list(schema.error_log)[:20]:
            line = error.line or None
            problems.append(Problem(line, "", f"not valid ODM 1.3.2 with the Abscopal extension: {error.message}"))
    if problems:
        raise InputFileError(str(path), problems)
    if root.find(_A + "AuditTrail") is None:
        raise _refuse(path, "the file has no abs:AuditTrail (a --strict export, or not written by Abscopal), so "
                            "it cannot be restored")  # fmt: skip
    return tree


def _entries(path: Path, trail: etree._Element) -> list[tuple[Any, ...]]:
    out = []
    for e in trail.iterfind(_A + "Entry"):
        try:
            at = dt.datetime.fromisoformat(e.get("At", ""))
        except ValueError:
            raise _refuse(path, "the audit entry's At is not an ISO 8601 time", e.sourceline, "abs:Entry/@At") from None
        old, new = e.find(_A + "OldValue"), e.find(_A + "NewValue")
        version = e.get("Version")
        out.append((
            int(e.get("Seq", "0")), _utc(at), e.get("User"), e.get("Entity"), e.get("EntityKey"), e.get("Field"),
            None if old is None else (old.text or ""), None if new is None else (new.text or ""), e.get("Reason"),
            e.get("PrevHash"), e.get("Hash"), None if version is None else int(version), e.get("KeyFirst"),
            e.get("KeyLast"),
        ))  # fmt: skip
    return out


def _is_empty(conn: Connection) -> list[str]:
    """The tables that hold rows (audit trail included): a restore needs all of them empty."""
    full = [n for n, e in ENTITIES.items() if conn.execute(select(func.count()).select_from(e.table)).scalar_one()]
    if conn.execute(select(func.count()).select_from(audit_log)).scalar_one():
        full.append("audit_log")
    return full


def _column_value(table: str, column: str, value: Any) -> Any:
    t = ENTITIES[table].table.c[column].type
    if value is None or isinstance(t, JSON):
        return value
    if isinstance(t, DateTime):
        return _utc(dt.datetime.fromisoformat(value))
    if isinstance(t, Date):
        return dt.date.fromisoformat(value)
    return value


def _resolve_key(key: bytes | None) -> bytes:
    if key is None:
        env = os.environ.get("ABSCOPAL_AUDIT_KEY")
        if not env:
            raise StoreError(
                "A restore needs the audit key the file's trail was written with: set ABSCOPAL_AUDIT_KEY or pass "
                "--audit-key-file (the key is never in the ODM file)"
            )
        key = env.encode("utf-8")
    return key


def restore_odm(engine: Engine, path: Path | str, *, key: bytes | None = None, dry_run: bool = False) -> OdmSummary:
    """Rebuild an empty database from an Abscopal ODM file: every row and the audit trail verbatim, all or nothing.

    ``key`` is the original database's audit key (default ``ABSCOPAL_AUDIT_KEY``); without it, or with another,
    the restore is refused. The chain must verify under it and the restored rows must give back the file's
    ClinicalData exactly, else nothing is kept. The key is then installed as the new database's key (its key file,
    unless ``ABSCOPAL_AUDIT_KEY`` supplies it).
    """
    path = Path(path)
    key = _resolve_key(key)
    tree = parse_odm(path)
    root = tree.getroot()
    trail = root.find(_A + "AuditTrail")
    assert trail is not None
    file_kid = trail.get("KeyID")
    if file_kid is not None and file_kid != key_id(key):
        raise StoreError(
            f"The audit key given is not the key {path}'s trail was written with (fingerprint {file_kid}); give the "
            "original database's key"
        )
    env = os.environ.get("ABSCOPAL_AUDIT_KEY")
    if env and env.encode("utf-8") != key:
        raise StoreError("ABSCOPAL_AUDIT_KEY holds another key than the one given; unset it or give the same key")
    entries = _entries(path, trail)
    last_seq, last_hash = int(trail.get("LastSeq", "0")), str(trail.get("LastHash"))
    legacy = int(trail.get("LegacySeq", "0"))
    with engine.connect() as conn, conn.begin() as txn:
        full = _is_empty(conn)
        if full:
            raise StoreError(
                f"The database is not empty ({', '.join(full[:5])}{' …' if len(full) > 5 else ''} hold rows), so "
                f"{path} was not restored; restore into a new database (`abscopal db upgrade` on an empty one)"
            )
        try:
            counts = _rebuild(path, conn, root, key, entries, (last_seq, last_hash, legacy))
        except (SQLAlchemyError, ValueError, LookupError, TypeError, AttributeError) as exc:  # a trail not replayable
            raise _refuse(path, f"the audit trail cannot be replayed into the database ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0][:200] if str(exc) else 'no detail'})", None,
                          "abs:AuditTrail") from None  # fmt: skip
        summary = OdmSummary(path, counts["patients"], len(entries), counts)
        if dry_run:
            txn.rollback()
            return summary
        restore_key_file = _install_key(engine, key)
        try:
            txn.commit()
        except BaseException:
            restore_key_file()
            raise
    return summary


def _rebuild(
    path: Path, conn: Connection, root: etree._Element, key: bytes, entries: list[tuple[Any, ...]],
    head: tuple[int, str, int],
) -> dict[str, int]:  # fmt: skip
    """Insert the trail, set the head, replay every table, verify, compare with the file; the rows per table."""
    last_seq, last_hash, legacy = head
    columns = tuple(c.name for c in audit_log.columns)
    insert_rows(conn, audit_log, columns, entries)
    # the head first: replaying the trail leaves this connection streaming (yield_per), which PostgreSQL
    # allows for SELECTs only
    kid = key_id(key)
    conn.execute(
        update(audit_head)
        .where(audit_head.c.id == 1)
        .values(last_seq=last_seq, last_hash=last_hash, legacy_seq=legacy, key_id=kid,
                mac=audit_mod.head_mac(key, last_seq, last_hash, legacy, kid))
    )  # fmt: skip
    counts: dict[str, int] = {}
    for table in ENTITIES:
        c = codec(table)
        replayed = audit_mod.replay_rows(conn, table)
        rows = [
            (k, *(_column_value(table, col, state.get(col)) for col in c.columns[1:]))
            for k, state in sorted(replayed.items())
        ]
        insert_rows(conn, c.table, c.columns, rows)
        counts[table] = len(rows)
    report = audit_mod.verify(conn, key)
    if not report.ok:
        first = report.findings[0].message if report.findings else "unknown"
        raise InputFileError(
            str(path),
            [Problem(None, "abs:AuditTrail", f"the audit trail does not verify under the key given "
                                             f"({report.total} findings; first: {first})")],
        )  # fmt: skip
    _check_document(path, conn, root)
    return counts


def _check_document(path: Path, conn: Connection, root: etree._Element) -> None:
    """The restored rows must give back the whole file, element for element: what this version of Abscopal writes
    for them (metadata, users and sites, ClinicalData, the trail), with the file's creation time."""
    from abscopal.protocol.model import load_bundled

    created = dt.datetime.fromisoformat(root.get("CreationDateTime", ""))
    mine = _document(_read(conn), created=created, strict=False, protocols=load_bundled())
    if dict(mine.attrib) != dict(root.attrib):
        differ = sorted(k for k in set(mine.attrib) | set(root.attrib) if mine.get(k) != root.get(k))
        raise _refuse(path, f"the ODM element's {', '.join(differ)} differ from what this version of Abscopal "
                            f"writes ({abscopal.__version__}; the file was edited or written by another version)",
                      root.sourceline, "ODM")  # fmt: skip
    theirs = list(root)
    for i, ours in enumerate(mine):
        got = theirs[i] if i < len(theirs) else None
        if got is not None and etree.tostring(ours) == etree.tostring(got):
            continue
        where = got if got is not None else root
        name = etree.QName(ours).localname
        if name == "ClinicalData":
            name = f"ClinicalData for {ours.get('MetaDataVersionOID')}"
        raise _refuse(path, f"{name} does not match the rows its audit trail gives (the file was edited)",
                      where.sourceline, etree.QName(ours).localname)  # fmt: skip
    if len(theirs) > len(mine):
        extra = theirs[len(mine)]
        raise _refuse(path, f"{etree.QName(extra).localname} is not part of what the audit trail gives (the file was "
                            "edited)", extra.sourceline, etree.QName(extra).localname)  # fmt: skip


def _install_key(engine: Engine, key: bytes) -> Callable[[], None]:
    """Make ``key`` the database's audit key (its key file); return how to undo that."""
    if os.environ.get("ABSCOPAL_AUDIT_KEY"):
        return lambda: None
    location = key_location(engine.url)
    if location is None:
        return lambda: None
    try:
        current: bytes | None = load_key(engine.url, create=False)
    except StoreError:
        current = None
    if current == key:
        return lambda: None
    location.parent.mkdir(parents=True, exist_ok=True)
    old = location.read_bytes() if location.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f".{location.name}.", dir=location.parent)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key + b"\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, location)

    def undo() -> None:
        if old is None:
            location.unlink(missing_ok=True)
        else:
            location.write_bytes(old)

    return undo


def iter_tables() -> Iterator[str]:
    """The tables an ODM file carries rows of (ClinicalData and ``abs:``), for reports."""
    yield from ENTITIES
