"""The SDTM export's input read from the store: live records with their stable ids, at a clinical cut-off.

The cut-off is :func:`abscopal.analysis.cutoff.apply_cutoff` (the report's rule, docs/report.md): the records it
keeps are matched back to their stored ids by natural key, so a record and its id never part. Protocol
deviations and immunotherapy histories are not covered by that rule: deviations dated after the cut-off are
dropped (the same "dated after it, dropped" rule of interop.md §2.0), histories are prior therapy and all kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import sqlite3
import types
import typing
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Select, select

from abscopal import domain as d
from abscopal.analysis.cutoff import TrialData, apply_cutoff
from abscopal.interop.sdtm.spec import SdtmSource
from abscopal.protocol.model import ProtocolFile
from abscopal.store.mapping import from_row
from abscopal.store.records import Stored
from abscopal.store.tables import ENTITIES, audit_head, audit_log

T = TypeVar("T")


class _Members(dict[Any, Any]):
    """An enum's members by value, looked up as ``enum(value)`` would find them (a dict lookup instead of the
    enum's call); a value not found is handed to the enum itself (its own error, or its ``_missing_``)."""

    def __init__(self, kind: type[enum.Enum]) -> None:
        super().__init__((m.value, m) for m in kind)
        self.kind = kind

    def __missing__(self, value: Any) -> Any:
        return self.kind(value)


def _converter(hint: Any) -> Callable[[Any], Any] | None:
    """The conversion :func:`abscopal.store.mapping.from_row` applies to a non-null value of a field typed
    ``hint`` (an optional's inner type), decided once per field instead of once per value; None: as stored."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _Members(hint).__getitem__
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


class _Processed(dict[Any, Any]):
    """A result processor's output per stored value, computed once per distinct value (a date's text)."""

    def __init__(self, processor: Callable[[Any], Any]) -> None:
        super().__init__()
        self.processor = processor

    def __missing__(self, value: Any) -> Any:
        out = self[value] = self.processor(value)
        return out


def _reader(
    cls: type[Any],
    columns: Sequence[str],
    skip: Collection[str] = (),
    *,
    stored: bool = False,
    processors: Mapping[int, Callable[[Any], Any]] | None = None,
) -> Callable[..., Any]:
    """Row tuple (in ``columns`` order) -> ``cls`` built as :func:`from_row` would build it (a function compiled
    once per table: each field read by position, no kwargs dict per row); equal text and date values of one field
    share one object (1.7 M answers repeat a few thousand subject ids and dates). The fields in ``skip`` (the
    children) are given as ``children[field].get(id, ())``; with ``stored``, the result is the record's
    :class:`Stored` (its id and version from the row). ``processors`` (by position) are the column types' result
    processors for a row read from the driver as it is (:func:`_fetch`): a shared field's once per distinct
    value."""
    processors = processors or {}
    hints = typing.get_type_hints(cls)
    at = {c: i for i, c in enumerate(columns)}
    env: dict[str, Any] = {"_cls": cls, "_Stored": Stored, "_str": str, "_int": int}
    args: list[str] = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            args.append(f"{f.name}=_tuple(children[{f.name!r}].get(_rid, ()))")
            env["_tuple"] = tuple
            continue
        i = at[f.name]
        conv = _converter(hints[f.name])
        processor = processors.get(i)
        raw = f"row[{i}]"
        if processor is not None:
            env[f"_p{i}"] = processor
            raw = f"_p{i}(row[{i}])"
        if conv is not None:
            env[f"_c{i}"] = conv
            args.append(f"{f.name}=None if row[{i}] is None else _c{i}({raw})")
        elif _shared(hints[f.name]) and processor is not None:
            env[f"_s{i}"] = _Processed(processor).__getitem__
            args.append(f"{f.name}=_s{i}(row[{i}])")
        elif _shared(hints[f.name]):
            env[f"_s{i}"] = {}.setdefault
            args.append(f"{f.name}=_s{i}(row[{i}], row[{i}])")
        else:
            args.append(f"{f.name}={raw}")
    value = f"_cls({', '.join(args)})"
    if stored:
        body = f"    _rid = _str(row[{at['id']}])\n    return _Stored(_rid, _int(row[{at['version']}]), {value})\n"
    else:
        body = f"    return {value}\n"
    code = f"def read(row, children=None):\n{body}"
    exec(compile(code, f"<sdtm reader {cls.__name__}>", "exec"), env)  # the code is built from field names only
    read: Callable[..., Any] = env["read"]
    return read


#: rows fetched at a time (a server-side cursor on PostgreSQL, whose driver would otherwise hold a whole
#: table's rows, 1.7 M answers at 10,000 patients, before the first is read)
_BATCH = 20_000


def _fetch(conn: Connection, query: Select[Any]) -> tuple[list[str], Iterable[Sequence[Any]], dict[int, Any]]:
    """``query``'s column names, its rows and, by position, the result processors still to apply to them.

    On SQLite the rows come from the driver's own cursor (in the connection's transaction) as plain tuples, with
    the column types' result processors given back for :func:`_reader` to apply, a shared value's once: the same
    values as SQLAlchemy's result rows for about half the CPU (1.7 M answers at 10,000 patients). Elsewhere, or
    for a query with parameters, SQLAlchemy's result (a server-side cursor on PostgreSQL)."""
    if conn.dialect.name == "sqlite":
        compiled = query.compile(dialect=conn.dialect)
        if not compiled.params:
            processors: dict[int, Any] = {}
            for i, column in enumerate(query.selected_columns):
                processor = column.type.dialect_impl(conn.dialect).result_processor(conn.dialect, None)
                if processor is not None:
                    processors[i] = processor
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            cursor.arraysize = _BATCH
            cursor.execute(str(compiled))
            return [c.name for c in query.selected_columns], _drain(cursor), processors
    result = conn.execute(query.execution_options(yield_per=_BATCH))
    return list(result.keys()), result, {}


def _drain(cursor: Any) -> Iterator[Sequence[Any]]:
    """The cursor's rows, the cursor closed after the last (or when a failed read drops the generator, by then
    perhaps with its connection closed: nothing is left to release)."""
    try:
        yield from cursor
    finally:
        with contextlib.suppress(sqlite3.ProgrammingError):
            cursor.close()


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
        columns, result, processors = _fetch(conn, query)
        read_child = _reader(ce.cls, columns, processors=processors)
        parent_at = columns.index(ce.parent_column)
        for row in result:
            grouped[str(row[parent_at])].append(read_child(row))
        children[field_name] = grouped
    query = select(e.table).where(e.table.c.removed_reason.is_(None)).order_by(*order)
    columns, result, processors = _fetch(conn, query)
    read = _reader(e.cls, columns, e.children, stored=True, processors=processors)
    return [read(r, children) for r in result]


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
    columns = ENTITIES[entity].table.c
    nullable = any(n not in columns or columns[n].nullable for n in ENTITIES[entity].natural_key)
    if nullable and any(None in key(s.value) for s in stored):  # a key of NOT NULL columns holds no null
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
    *,
    only: Collection[str] | None = None,
) -> SdtmSource:
    """The trial as known on ``cutoff`` (records dated after it dropped, later dates cleared), with stored ids.

    With ``only`` (entity names), the other entities are not read (empty in the source): a source for the
    builders that need no more (QS: patients, fractions, cycles, answers). When the answers are not read, the
    source's ``answered_visits`` (what SV needs of them) is read instead.
    """
    s = {
        name: _stored(conn, name) if only is None or name in only else []
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
        answered_visits=None if only is None or "questionnaire_answers" in only else answered_visits(conn, cutoff),
    )


def answered_visits(conn: Connection, cutoff: dt.date) -> list[tuple[str, str, dt.date]]:
    """(subject id, visit code, completion date) of the live questionnaire answers completed on or before
    ``cutoff``, each once (sorted): what SV reads of the answers (the cut-off keeps an answer completed by then)."""
    table = ENTITIES["questionnaire_answers"].table
    query = (
        select(table.c.subject_id, table.c.visit, table.c.completed_on)
        .where(table.c.removed_reason.is_(None), table.c.completed_on.is_not(None))
        .distinct()
    )
    rows = {(str(r[0]), str(r[1]), r[2]) for r in conn.execute(query)}
    return sorted(r for r in rows if r[2] <= cutoff)
