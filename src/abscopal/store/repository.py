"""Reading trial data back as domain objects (the repository of cosmicpython): the engines never see SQL.

Only live records are read (a logically removed one, ``removed_reason`` set, is history, not data).
Writes go through :class:`~abscopal.store.unit_of_work.UnitOfWork` and its repositories (``store.records``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any, TypeVar

from sqlalchemy import Connection, func, select

from abscopal import domain as d
from abscopal.errors import NotFound
from abscopal.store.mapping import from_row
from abscopal.store.tables import ENTITIES, ENTITY_BY_CLASS, audit_log

T = TypeVar("T")


class Repository:
    """Typed reads over one connection: ``Repository(conn).all(d.Patient)``, ``.for_subject(d.Lesion, "S001")``."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _children(self, entity: str, parent_keys: list[str] | None) -> dict[str, dict[str, list[Any]]]:
        """child field -> parent key -> child objects."""
        e = ENTITIES[entity]
        out: dict[str, dict[str, list[Any]]] = {}
        for field_name, child_entity in e.children.items():
            ce = ENTITIES[child_entity]
            assert ce.parent_column is not None
            parent_col = ce.table.c[ce.parent_column]
            query = select(ce.table).where(ce.table.c.removed_reason.is_(None)).order_by(ce.table.c.id)
            if parent_keys is not None:
                query = query.where(parent_col.in_(parent_keys))
            grouped: dict[str, list[Any]] = defaultdict(list)
            for row in self.conn.execute(query).mappings():
                grouped[row[parent_col.name]].append(from_row(ce.cls, row))
            out[field_name] = grouped
        return out

    def _load(self, cls: type[T], where: Any = None) -> list[T]:
        entity = ENTITY_BY_CLASS[cls]
        e = ENTITIES[entity]
        order = [e.table.c[c] for c in e.natural_key if c in e.table.c] + [e.table.c.id]
        query = select(e.table).where(e.table.c.removed_reason.is_(None)).order_by(*order)
        if where is not None:
            query = query.where(where)
        rows = list(self.conn.execute(query).mappings())
        if not e.children:
            return [from_row(cls, r) for r in rows]
        keys = [r["id"] for r in rows]
        children = self._children(entity, keys if len(keys) < 5_000 else None)
        return [from_row(cls, r, **{f: tuple(children[f].get(r["id"], ())) for f in e.children}) for r in rows]

    def all(self, cls: type[T]) -> list[T]:
        """Every stored object of a domain class, in key order."""
        return self._load(cls)

    def matching(self, cls: type[T], where: Any = None) -> list[T]:
        """The stored objects of a class whose row meets a SQLAlchemy condition (every one when ``where`` is None)."""
        return self._load(cls, where)

    def for_subject(self, cls: type[T], subject_id: str) -> list[T]:
        """The objects of one subject (for classes with a ``subject_id`` field)."""
        table = ENTITIES[ENTITY_BY_CLASS[cls]].table
        return self._load(cls, table.c.subject_id == subject_id)

    def patient(self, subject_id: str) -> d.Patient:
        found = self._load(d.Patient, ENTITIES["patients"].table.c.subject_id == subject_id)
        if not found:
            raise NotFound(f"No patient {subject_id!r} in the database")
        return found[0]

    def iter_patients(self, batch: int = 1_000) -> Iterator[d.Patient]:
        table = ENTITIES["patients"].table
        query = select(table).where(table.c.removed_reason.is_(None)).order_by(table.c.subject_id)
        for row in self.conn.execute(query.execution_options(yield_per=batch)):  # per statement, not the connection
            yield from_row(d.Patient, row._mapping)

    def counts(self) -> dict[str, int]:
        """Rows per table, audit trail included: what ``abscopal demo`` reports."""
        out = {
            name: int(self.conn.execute(select(func.count()).select_from(e.table)).scalar_one())
            for name, e in ENTITIES.items()
        }
        out["audit_log"] = int(self.conn.execute(select(func.count()).select_from(audit_log)).scalar_one())
        return out

    def patients_by_status(self) -> dict[str, int]:
        table = ENTITIES["patients"].table
        rows = self.conn.execute(
            select(table.c.status, func.count()).where(table.c.removed_reason.is_(None)).group_by(table.c.status)
        )
        return {str(status): int(n) for status, n in rows}
