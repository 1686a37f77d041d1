"""The ODM export's streaming writer: the database read a chunk of subjects at a time, ClinicalData written as text.

:func:`abscopal.interop.odm.write_odm` calls :func:`stream_odm`. It writes the same bytes as the reference tree
(``odm._serialise(odm._document(odm._read(conn)))``, which a restore still builds to compare; tested), but never
holds the database: the header (Study, AdminData) is built with lxml from the small tables, then each
ClinicalData's subjects are read :data:`CHUNK` at a time (one query per table and chunk, on the ``subject_id``
indexes) and written as text, each ``AuditRecord`` serialised once per audit record by lxml and reused; the trail
is read twice, streamed: once for the last change of every row and field (audit seqs, not rows), once for the
``abs:Entry`` elements. The whole-table read held every row as a dict (3.4 GB at 10,000 patients) and built
~100 M elements (most of the 320 s).
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from lxml import etree
from sqlalchemy import Connection, Select, func, select

from abscopal.interop import odm
from abscopal.protocol.model import ProtocolFile
from abscopal.store import audit as audit_mod
from abscopal.store.codec import _utc as codec_utc
from abscopal.store.codec import codec
from abscopal.store.tables import ENTITIES, audit_head, audit_log

CHUNK = 250
"""Subjects read and written per round of queries (a few MB of rows each)."""

_O, _A = odm._O, odm._A


class _Record(NamedTuple):
    """What an ItemData's AuditRecord and the AdminData's users need of one audit record (no values)."""

    seq: int
    at: Any
    username: str
    reason: str | None


@dataclass
class _Changes:
    """The last change of every row and field, as audit seqs (what ``odm._read``'s ``last_change`` holds)."""

    records: dict[int, _Record]
    bulk: dict[str, dict[str, int]]  # table -> row id -> seq of the last *rows record inserting it
    single: dict[tuple[str, str], dict[str, int]]  # (table, id) -> field or "*" (a *row record) -> seq

    def of(self, table: str, key: str) -> dict[str, int]:
        """field or "*" -> seq, as ``odm._read`` computes: the later of a row's *rows and *row records is "*"."""
        fields = self.single.get((table, key))
        star = self.bulk.get(table, {}).get(key)
        if fields is None:
            return {} if star is None else {"*": star}
        if star is not None and star > fields.get("*", -1):
            return {**fields, "*": star}
        return fields


def _changes(conn: Connection) -> _Changes:
    """One streamed pass over the trail; the *rows records' values are parsed for their keys and dropped."""
    cols = [audit_log.c.seq, audit_log.c.at, audit_log.c.username, audit_log.c.reason, audit_log.c.entity,
            audit_log.c.entity_key, audit_log.c.field, audit_log.c.new_value]  # fmt: skip
    records: dict[int, _Record] = {}
    bulk: dict[str, dict[str, int]] = {}
    single: dict[tuple[str, str], dict[str, int]] = {}
    result = conn.execution_options(yield_per=64).execute(select(*cols).order_by(audit_log.c.seq))
    for seq, at, username, reason, entity, entity_key, field, new_value in result:
        records[seq] = _Record(seq, at, username, reason)
        if entity not in ENTITIES:
            continue
        if field == audit_mod.ROWS:
            bulk.setdefault(entity, {}).update(dict.fromkeys(orjson.loads(new_value)["rows"], seq))
        elif field == audit_mod.ROW:
            single.setdefault((entity, entity_key), {})["*"] = seq
        else:
            single.setdefault((entity, entity_key), {})[field] = seq
    return _Changes(records, bulk, single)


def _rows(conn: Connection, stmt: Select[Any], table: str) -> list[dict[str, Any]]:
    """The rows of ``stmt`` (every column of ``table``) as ``codec.state_from_db`` gives them, ``id`` added: the
    same normalisation on plain tuples (a few per cent faster than through each row's mapping)."""
    result = conn.execute(stmt)
    names = tuple(result.keys())
    position = {name: i for i, name in enumerate(names)}
    plan = [(position[name], kind) for name, kind in codec(table)._read_plan if kind]
    at_id = position["id"]
    out = []
    for r in result:
        if plan:
            values = list(r)
            for i, kind in plan:
                if values[i] is not None:
                    values[i] = codec_utc(values[i]) if kind == 1 else float(values[i])
            state = dict(zip(names, values, strict=True))
        else:
            state = dict(zip(names, r, strict=True))
        state["id"] = str(r[at_id])
        out.append(state)
    return out


def _all_rows(conn: Connection, table: str) -> list[dict[str, Any]]:
    t = ENTITIES[table].table
    return _rows(conn, select(t).order_by(t.c.id), table)


# --- text exactly as lxml serialises it

_PLAIN = re.compile(r"[\x20-\x21\x23-\x25\x27-\x3b\x3d\x3f-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
"""Characters lxml writes verbatim in an attribute (no escape, no refusal); anything else goes through lxml."""


def _attr(value: str) -> str:
    """``value`` as lxml writes it in an attribute: verbatim, or (rare) escaped or refused by lxml itself."""
    if _PLAIN.fullmatch(value):
        return value
    el = etree.Element("a")
    el.set("v", value)  # a control character: ValueError, as building the tree raises
    data = bytes(etree.tostring(el, encoding="UTF-8")).decode()
    return data[data.index('"') + 1 : data.rindex('"')]


def _start(tag: str, attrs: Iterable[tuple[str, str | None]]) -> str:
    return "<" + tag + "".join(f' {k}="{_attr(v)}"' for k, v in attrs if v is not None)


class _Writer:
    """The SubjectData of a chunk's patients as text, the bytes of ``odm._subjects`` pretty-printed at level 2."""

    def __init__(self, changes: _Changes, site_of: dict[str, Any], strict: bool) -> None:
        self.changes, self.site_of, self.strict = changes, site_of, strict
        self.records: dict[tuple[int, int], str] = {}  # (seq, level) -> what :meth:`_record` gives
        self.items = {t: [(c, f'            <ItemData ItemOID="IT.{odm._oid_part(t)}.{odm._oid_part(c)}" Value="',
                           f'            <ItemData ItemOID="IT.{odm._oid_part(t)}.{odm._oid_part(c)}" IsNull="Yes')
                          for c in odm._item_columns(t)] for t in ENTITIES}  # fmt: skip
        self.children = {t: odm._children(t) for t in ENTITIES}
        self.forms = {ev: [t for t, e in odm.EVENT_OF.items() if e == ev] for ev, _, _, _ in odm.EVENTS}

    def _record(self, seq: int, level: int) -> str:
        """The AuditRecord of ``seq`` at ``level`` (6 in an ItemGroupData, 7 in an ItemData), one line per element."""
        text = self.records.get((seq, level))
        if text is None:
            item = etree.Element(_O + "ItemData", nsmap={None: odm.ODM_NS})
            odm._audit_record(item, self.changes.records[seq], self.site_of, {})
            (record,) = item
            etree.indent(record, space="  ", level=level)
            data = bytes(etree.tostring(record, encoding="UTF-8", with_tail=False)).decode()
            data = data.replace(f' xmlns="{odm.ODM_NS}"', "", 1)
            text = self.records[seq, level] = "  " * level + data + "\n"
        return text

    def _tail(self, seq: int) -> str:
        """What follows the last attribute value (its closing quote) of an ItemData with its own AuditRecord."""
        return '">\n' + self._record(seq, 7) + "            </ItemData>\n"

    def _group(self, out: list[str], table: str, row: dict[str, Any]) -> None:
        key = row["id"]
        key = key if _PLAIN.fullmatch(key) else _attr(key)
        start = f'          <ItemGroupData ItemGroupOID="IG.{odm._oid_part(table)}" ItemGroupRepeatKey="{key}"'
        if not self.strict:
            start += f' abs:StableID="{key}" abs:Version="{row["version"]}"'
            if row["removed_reason"] is not None:
                start += f' abs:RemovedReason="{_attr(row["removed_reason"])}"'
        changes = self.changes.of(table, row["id"])
        mark = len(out)
        out.append(start + ">\n")
        star = changes.get("*")
        if star is not None:
            out.append(self._record(star, 6))
        if len(changes) == (star is not None):  # no field changed alone: no ItemData has its own AuditRecord
            for column, value_prefix, _ in self.items[table]:
                value = row[column]
                if value is None:
                    continue
                kind = type(value)
                if kind is str:
                    text = value if _PLAIN.fullmatch(value) else _attr(value)
                elif kind is int:
                    text = str(value)
                elif kind is float:
                    text = repr(value)
                elif kind is dt.date:
                    text = value.isoformat()
                else:
                    text = _attr(odm._text(value))
                out.append(value_prefix + text + '"/>\n')
        else:
            for column, value_prefix, null_prefix in self.items[table]:
                value = row[column]
                seq = changes.get(column)
                if value is None:
                    if seq is not None:
                        out.append(null_prefix + self._tail(seq))
                    continue
                out.append(value_prefix + _attr(odm._text(value)) + ('"/>\n' if seq is None else self._tail(seq)))
        if len(out) == mark + 1:
            out[mark] = start + "/>\n"
        else:
            out.append("          </ItemGroupData>\n")

    def _form(self, out: list[str], table: str, parents: list[dict[str, Any]],
              rows: dict[str, list[dict[str, Any]]]) -> None:  # fmt: skip
        out.append(f'        <FormData FormOID="F.{odm._oid_part(table)}">\n')
        for row in parents:
            self._group(out, table, row)
        ids = {r["id"] for r in parents}
        for child in self.children[table]:
            column = ENTITIES[child].parent_column or ""
            kids = sorted((r for r in rows.get(child, []) if r[column] in ids), key=lambda r: (r[column], r["id"]))
            for row in kids:
                self._group(out, child, row)
        for (t, column), group in odm.JSON_GROUPS.items():
            if t != table:
                continue
            for row in parents:
                seq = self.changes.of(table, row["id"]).get(column)
                for name, lab in sorted((row[column] or {}).items()):
                    key = _attr(f"{row['id']}:{name}")
                    values = {"name": name, **lab}
                    written = [(f, values[f]) for f, _ in odm.LAB_FIELDS if values.get(f) is not None]
                    start = f'          <ItemGroupData ItemGroupOID="IG.{group}" ItemGroupRepeatKey="{key}"'
                    if not written and seq is None:
                        out.append(start + "/>\n")
                        continue
                    out.append(start + ">\n")
                    if seq is not None:
                        out.append(self._record(seq, 6))
                    for f, v in written:
                        value = _attr(odm._text(v))
                        out.append(f'            <ItemData ItemOID="IT.{group}.{odm._oid_part(f)}" Value="{value}"/>\n')
                    out.append("          </ItemGroupData>\n")
        out.append("        </FormData>\n")

    def subject(self, p: dict[str, Any], rows: dict[str, list[dict[str, Any]]]) -> str:
        out = [f'    <SubjectData SubjectKey="{_attr(p["subject_id"])}">\n',
               f'      <SiteRef LocationOID="{_attr(odm._site_oid(p["site_code"]))}"/>\n']  # fmt: skip
        for event_oid, _, repeating, _ in odm.EVENTS:
            tables = [t for t in self.forms[event_oid] if rows.get(t)]
            if not tables:
                continue
            if repeating:
                (table,) = tables
                for row in rows[table]:
                    out.append(f'      <StudyEventData StudyEventOID="{event_oid}" '
                               f'StudyEventRepeatKey="{_attr(row["id"])}">\n')  # fmt: skip
                    self._form(out, table, [row], rows)
                    out.append("      </StudyEventData>\n")
            else:
                out.append(f'      <StudyEventData StudyEventOID="{event_oid}">\n')
                for table in tables:
                    self._form(out, table, rows[table], rows)
                out.append("      </StudyEventData>\n")
        if not self.strict:
            for table, tag in odm.MANAGEMENT_ELEMENTS.items():
                for row in rows.get(table, []):
                    attrs: list[tuple[str, str | None]] = [
                        ("StableID", row["id"]), ("Version", str(row["version"])),
                        ("RemovedReason", row["removed_reason"]),
                    ]  # fmt: skip
                    attrs += [(c, None if row[c] is None else odm._text(row[c])) for c in codec(table).state_columns]
                    out.append("      " + _start("abs:" + tag, attrs) + "/>\n")
        out.append("    </SubjectData>\n")
        return "".join(out)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


_WANTED = [t for t in ENTITIES if t in set(odm.EVENT_OF) | set(odm.MANAGEMENT_ELEMENTS)]
"""The tables with a ``subject_id`` that SubjectData holds; their children are read through them."""


def _read_chunk(conn: Connection, subjects: list[str], strict: bool) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """subject_id -> table -> rows (id order) of ``subjects``, children through their parents (as ``odm._subjects``
    groups the whole tables)."""
    by_subject: dict[str, dict[str, list[dict[str, Any]]]] = {}
    parent_subject: dict[str, dict[str, str]] = {}
    for table in _WANTED:
        t = ENTITIES[table].table
        rows = _rows(conn, select(t).where(t.c.subject_id.in_(subjects)).order_by(t.c.id), table)
        if odm._children(table):
            parent_subject[table] = {r["id"]: r["subject_id"] for r in rows}
        for row in rows:
            if not (strict and row["removed_reason"] is not None):
                by_subject.setdefault(row["subject_id"], {}).setdefault(table, []).append(row)
        for child in odm._children(table):
            e = ENTITIES[child]
            c, column = e.table, e.parent_column or ""
            ids = select(t.c.id).where(t.c.subject_id.in_(subjects))
            of = parent_subject[table]
            for row in _rows(conn, select(c).where(c.c[column].in_(ids)).order_by(c.c.id), child):
                if not (strict and row["removed_reason"] is not None):
                    by_subject.setdefault(of[row[column]], {}).setdefault(child, []).append(row)
    return by_subject


def _piece(el: etree._Element, level: int, declared: list[bytes], *, open_only: bool = False) -> bytes:
    """``el`` serialised at ``level`` (its namespace declarations are the root's, so left out)."""
    if open_only:
        el = copy.copy(el)
        for child in list(el):
            el.remove(child)
        etree.SubElement(el, el.tag)  # so that the start tag is not self-closing
    else:
        etree.indent(el, space="  ", level=level)
    data = bytes(etree.tostring(el, encoding="UTF-8", xml_declaration=False, with_tail=False))
    close = data.index(b">")
    tag = data[:close]
    for declaration in declared:  # the root declares them; lxml repeats them on a subtree it serialises
        tag = tag.replace(declaration, b"", 1)
    data = tag + data[close:]
    if open_only:
        data = data[: data.index(b">") + 1]  # lxml escapes ">" in attribute values
    return b"  " * level + data + (b"" if open_only else b"\n")


def _end(el: etree._Element, level: int) -> bytes:
    prefix = el.prefix.encode() + b":" if el.prefix else b""
    return b"  " * level + b"</" + prefix + str(etree.QName(el).localname).encode() + b">\n"


@dataclass(frozen=True)
class Written:
    subjects: int
    records: int
    rows: dict[str, int]


def stream_odm(
    fh: typing.BinaryIO, conn: Connection, *, created: Any, strict: bool, protocols: ProtocolFile
) -> Written:
    """Write the document to ``fh``: the bytes of ``odm._serialise(odm._document(odm._read(conn), ...))``."""
    counts = {n: conn.execute(select(func.count()).select_from(e.table)).scalar_one() for n, e in ENTITIES.items()}
    changes = _changes(conn)
    small = {t: _all_rows(conn, t) for t in ("sites", "users")}
    patients = _all_rows(conn, "patients")
    head = conn.execute(select(audit_head).where(audit_head.c.id == 1)).first()
    snap = odm._Snapshot({**small, "patients": patients}, list(changes.records.values()), head, {})
    root = odm._document(snap, created=created, strict=strict, protocols=protocols, body=False)
    declared = [
        b' xmlns="%s"' % uri.encode() if prefix is None else b' xmlns:%s="%s"' % (prefix.encode(), uri.encode())
        for prefix, uri in root.nsmap.items()
    ]
    site_of = {u["username"]: u["site_code"] for u in small["users"]}
    writer = _Writer(changes, site_of, strict)
    head_bytes = odm._serialise(root).split(b"\n", 2)
    fh.write(head_bytes[0] + b"\n" + head_bytes[1] + b"\n")  # the declaration and the ODM start tag
    for child in root:
        fh.write(_piece(child, 1, declared))
    study_oid = odm._study_oid(protocols.current)
    for v in odm._versions(snap, protocols):
        cd = odm._sub(root, _O + "ClinicalData", [("StudyOID", study_oid), ("MetaDataVersionOID", odm._mdv_oid(v))])
        mine = [p for p in patients if p["protocol_version"] == v and not (strict and p["removed_reason"] is not None)]
        mine.sort(key=lambda p: (p["subject_id"], p["id"]))
        if not mine:
            fh.write(_piece(cd, 1, declared))
            continue
        fh.write(_piece(cd, 1, declared, open_only=True) + b"\n")
        subjects = list(dict.fromkeys(p["subject_id"] for p in mine))
        by_id: dict[str, list[dict[str, Any]]] = {}
        for p in mine:
            by_id.setdefault(p["subject_id"], []).append(p)
        for chunk in _chunks(subjects, CHUNK):
            rows = _read_chunk(conn, chunk, strict)
            for s in chunk:
                for p in by_id[s]:
                    fh.write(writer.subject(p, rows.get(s, {})).encode())
        fh.write(_end(cd, 1))
    if not strict:
        trail = odm._trail_element(root, snap)
        if not changes.records:
            fh.write(_piece(trail, 1, declared))
        else:
            fh.write(_piece(trail, 1, declared, open_only=True) + b"\n")
            stream = conn.execution_options(yield_per=64).execute(select(audit_log).order_by(audit_log.c.seq))
            for entry in odm._entries_of(trail, odm._Snapshot({}, typing.cast(list[Any], stream), head, {})):
                fh.write(_piece(entry, 2, declared))
                entry.clear()
                trail.remove(entry)
            fh.write(_end(trail, 1))
    fh.write(b"</ODM>\n")
    return Written(len(patients), len(changes.records), counts)
