"""The SDTM export's input read from the store: live records with their stable ids, at a clinical cut-off.

The cut-off is :func:`abscopal.analysis.cutoff.apply_cutoff` (the report's rule, docs/report.md): the records it
keeps are matched back to their stored ids by natural key, so a record and its id never part. Protocol
deviations and immunotherapy histories are not covered by that rule: deviations dated after the cut-off are
dropped (the same "dated after it, dropped" rule of interop.md §2.0), histories are prior therapy and all kept.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, select

from abscopal import domain as d
from abscopal.analysis.cutoff import TrialData, apply_cutoff
from abscopal.interop.sdtm.spec import SdtmSource
from abscopal.protocol.model import ProtocolFile
from abscopal.store.mapping import from_row
from abscopal.store.records import Stored
from abscopal.store.tables import ENTITIES, audit_head, audit_log

T = TypeVar("T")


def _stored(conn: Connection, entity: str) -> list[Stored[Any]]:
    """Every live record of ``entity`` (with its live children) in natural-key order, ties by id."""
    e = ENTITIES[entity]
    order = [e.table.c[c] for c in e.natural_key if c in e.table.c] + [e.table.c.id]
    rows = [
        dict(r)
        for r in conn.execute(select(e.table).where(e.table.c.removed_reason.is_(None)).order_by(*order)).mappings()
    ]
    children: dict[str, dict[str, list[Any]]] = {}
    for field_name, child_entity in e.children.items():
        ce = ENTITIES[child_entity]
        assert ce.parent_column is not None
        grouped: dict[str, list[Any]] = defaultdict(list)
        query = select(ce.table).where(ce.table.c.removed_reason.is_(None)).order_by(ce.table.c.id)
        for row in conn.execute(query).mappings():
            grouped[str(row[ce.parent_column])].append(from_row(ce.cls, row))
        children[field_name] = grouped
    return [
        Stored(
            str(r["id"]),
            int(r["version"]),
            from_row(e.cls, r, **{f: tuple(children[f].get(str(r["id"]), ())) for f in e.children}),
        )
        for r in rows
    ]


def _key(entity: str) -> Callable[[Any], Hashable]:
    names = ENTITIES[entity].natural_key
    return lambda obj: tuple(getattr(obj, n) for n in names)


def _match(entity: str, stored: Sequence[Stored[Any]], kept: Sequence[Any]) -> list[Stored[Any]]:
    """The records ``apply_cutoff`` kept (possibly with dates cleared), each with its stored id and version."""
    key = _key(entity)
    by_key = {key(s.value): s for s in stored}
    return [Stored(by_key[key(v)].id, by_key[key(v)].version, v) for v in kept]


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
