"""The SDTM export's input read from the store: live records with their stable ids, at a clinical cut-off.

The cut-off is :func:`abscopal.analysis.cutoff.apply_cutoff` (the report's rule, docs/report.md): the records it
keeps are matched back to their stored ids by natural key, so a record and its id never part. Protocol
deviations and immunotherapy histories are not covered by that rule: deviations dated after the cut-off are
dropped (the same "dated after it, dropped" rule of interop.md §2.0), histories are prior therapy and all kept.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, select

from abscopal import domain as d
from abscopal.analysis.cutoff import TrialData, apply_cutoff
from abscopal.interop.sdtm.spec import SdtmSource
from abscopal.protocol.model import ProtocolFile
from abscopal.store.mapping import from_row
from abscopal.store.records import Stored
from abscopal.store.tables import ENTITIES, audit_head, audit_log

T = TypeVar("T")


def _converter(hint: Any) -> Callable[[Any], Any] | None:
    """The conversion :func:`abscopal.store.mapping.from_row` applies to a non-null value of a field typed
    ``hint`` (an optional's inner type), decided once per field instead of once per value; None: as stored."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return cast(Callable[[Any], Any], hint)
    if typing.get_origin(hint) is dict:
        if typing.get_args(hint)[1] is d.LabValue:
            return lambda v: {k: d.LabValue(**x) for k, x in v.items()}
        return dict
    if hint is dt.datetime:
        return lambda v: v.replace(tzinfo=dt.UTC) if isinstance(v, dt.datetime) and v.tzinfo is None else v
    if hint is float:
        return float
    return None


def _shared(hint: Any) -> bool:
    """Whether values of a field typed ``hint`` are text or dates (hashable, and repeated across records: a
    subject id, a visit code, a date), which :func:`_reader` keeps one object of per distinct value."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint is str or hint is dt.date


def _reader(cls: type[Any], columns: Sequence[str], skip: Collection[str] = ()) -> Callable[[Sequence[Any]], Any]:
    """Row tuple (in ``columns`` order) -> the kwargs of ``cls`` as :func:`from_row` would build them; equal text
    and date values of one field share one object (1.7 M answers repeat a few thousand subject ids and dates)."""
    hints = typing.get_type_hints(cls)
    at = {c: i for i, c in enumerate(columns)}
    plan = [(f.name, at[f.name], _converter(hints[f.name])) for f in dataclasses.fields(cls) if f.name not in skip]
    plain = [(n, i) for n, i, conv in plan if conv is None and not _shared(hints[n])]
    shared: list[tuple[str, int, dict[Any, Any]]] = [
        (n, i, {}) for n, i, conv in plan if conv is None and _shared(hints[n])
    ]
    converted = [(n, i, conv) for n, i, conv in plan if conv is not None]

    def read(row: Sequence[Any]) -> dict[str, Any]:
        kwargs = {n: row[i] for n, i in plain}
        for n, i, seen in shared:
            v = row[i]
            kwargs[n] = seen.setdefault(v, v)
        for n, i, conv in converted:
            v = row[i]
            kwargs[n] = None if v is None else conv(v)
        return kwargs

    return read


#: rows fetched at a time (a server-side cursor on PostgreSQL, whose driver would otherwise hold a whole
#: table's rows, 1.7 M answers at 10,000 patients, before the first is read)
_BATCH = 20_000


def _stored(conn: Connection, entity: str) -> list[Stored[Any]]:
    """Every live record of ``entity`` (with its live children) in natural-key order, ties by id."""
    e = ENTITIES[entity]
    order = [e.table.c[c] for c in e.natural_key if c in e.table.c] + [e.table.c.id]
    children: dict[str, dict[str, list[Any]]] = {}
    for field_name, child_entity in e.children.items():
        ce = ENTITIES[child_entity]
        assert ce.parent_column is not None
        grouped: dict[str, list[Any]] = defaultdict(list)
        query = select(ce.table).where(ce.table.c.removed_reason.is_(None)).order_by(ce.table.c.id)
        result = conn.execute(query.execution_options(yield_per=_BATCH))
        columns = list(result.keys())
        read_child = _reader(ce.cls, columns)
        parent_at = columns.index(ce.parent_column)
        for row in result:
            grouped[str(row[parent_at])].append(ce.cls(**read_child(row)))
        children[field_name] = grouped
    query = select(e.table).where(e.table.c.removed_reason.is_(None)).order_by(*order)
    result = conn.execute(query.execution_options(yield_per=_BATCH))
    columns = list(result.keys())
    read = _reader(e.cls, columns, e.children)
    id_at, version_at = columns.index("id"), columns.index("version")
    out: list[Stored[Any]] = []
    for r in result:
        kwargs = read(r)
        rid = str(r[id_at])
        for f in e.children:
            kwargs[f] = tuple(children[f].get(rid, ()))
        out.append(Stored(rid, int(r[version_at]), e.cls(**kwargs)))
    return out


def _key(entity: str) -> Callable[[Any], tuple[Any, ...]]:
    names = ENTITIES[entity].natural_key
    return lambda obj: tuple(getattr(obj, n) for n in names)


def _match(entity: str, stored: Sequence[Stored[Any]], kept: Sequence[Any]) -> list[Stored[Any]]:
    """The records ``apply_cutoff`` kept (possibly with dates cleared), each with its stored id and version.

    ``kept`` is ``stored``'s values in order, some dropped, some replaced by a copy with a date cleared, and the
    natural key is unique among live records (the store's index), so one walk pairs them: a kept record that is
    the stored value keeps its ``Stored``, a copy gets the stored id and version of the record with its key.
    When a key holds a null (which the unique index does not police) records are matched by key as a table.
    """
    key = _key(entity)
    if any(None in key(s.value) for s in stored):
        by_key = {key(s.value): s for s in stored}
        return [Stored(by_key[key(v)].id, by_key[key(v)].version, v) for v in kept]
    out: list[Stored[Any]] = []
    walk = iter(stored)
    for v in kept:
        for s in walk:
            if s.value is v:
                out.append(s)
                break
            if key(s.value) == key(v):
                out.append(Stored(s.id, s.version, v))
                break
        else:
            raise KeyError(key(v))
    return out


@dataclass(frozen=True)
class AuditHead:
    """The audit trail's end when the export read the database (manifest.json)."""

    seq: int
    hash: str
    last_at: dt.datetime | None


def audit_state(conn: Connection) -> AuditHead:
    head = conn.execute(select(audit_head.c.last_seq, audit_head.c.last_hash).where(audit_head.c.id == 1)).first()
    last = conn.execute(select(audit_log.c.at).order_by(audit_log.c.seq.desc()).limit(1)).scalar()
    if head is None:
        return AuditHead(0, "", last)
    return AuditHead(int(head[0]), str(head[1]), last)


def load_source(
    conn: Connection,
    protocols: ProtocolFile,
    cutoff: dt.date,
    created: dt.datetime,
    options: Mapping[str, str] | None = None,
) -> SdtmSource:
    """The trial as known on ``cutoff`` (records dated after it dropped, later dates cleared), with stored ids."""
    s = {
        name: _stored(conn, name)
        for name in ENTITIES
        if name not in ("users", "sites") and not ENTITIES[name].parent_column
    }
    values = {name: [x.value for x in rows] for name, rows in s.items()}
    cut = apply_cutoff(
        TrialData(
            patients=values["patients"],
            screenings=values["screenings"],
            adjudications=values["adjudications"],
            lesions=values["lesions"],
            courses=values["radiotherapy_courses"],
            fractions=values["fractions"],
            cycles=values["immunotherapy_cycles"],
            assessments=values["tumour_assessments"],
            adverse_events=values["adverse_events"],
            answers=values["questionnaire_answers"],
        ),
        cutoff,
    )
    sites = [
        from_row(d.Site, r)
        for r in conn.execute(select(ENTITIES["sites"].table).order_by(ENTITIES["sites"].table.c.code)).mappings()
    ]
    deviations = [x for x in s["protocol_deviations"] if x.value.date is None or x.value.date <= cutoff]
    return SdtmSource(
        protocols=protocols,
        cutoff=cutoff,
        created=created,
        sites=sites,
        patients=_match("patients", s["patients"], cut.patients),
        screenings=_match("screenings", s["screenings"], cut.screenings),
        histories=s["immunotherapy_histories"],
        adjudications=_match("adjudications", s["adjudications"], cut.adjudications),
        lesions=_match("lesions", s["lesions"], cut.lesions),
        courses=_match("radiotherapy_courses", s["radiotherapy_courses"], cut.courses),
        fractions=_match("fractions", s["fractions"], cut.fractions),
        cycles=_match("immunotherapy_cycles", s["immunotherapy_cycles"], cut.cycles),
        deviations=deviations,
        assessments=_match("tumour_assessments", s["tumour_assessments"], cut.assessments),
        adverse_events=_match("adverse_events", s["adverse_events"], cut.adverse_events),
        answers=_match("questionnaire_answers", s["questionnaire_answers"], cut.answers),
        options=dict(options or {}),
    )
