"""The unit of work: one transaction in which trial data and its audit records are written together.

Every change to trial data goes through here (cosmicpython's unit of work): ``add`` inserts domain objects,
``update`` writes the changed fields of one, ``delete`` removes one, each with an audit record carrying who,
when and why. Leaving the ``with`` block commits; an exception rolls everything back, so a failed import
writes nothing and a crash loses nothing that was committed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from abscopal.errors import NotFound, StoreError, ValidationError
from abscopal.store.audit import ROW, AuditWriter, Change, canonical
from abscopal.store.mapping import to_row
from abscopal.store.tables import CHILD_KEYS, CHILD_PARENT_COLUMN, ENTITIES, ENTITY_BY_CLASS

_BATCH = 5_000


def _utc(row: dict[str, Any]) -> dict[str, Any]:
    for k, v in row.items():
        if isinstance(v, dt.datetime):
            row[k] = (v if v.tzinfo else v.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    return row


def _state(row: dict[str, Any]) -> str:
    return canonical({k: v for k, v in row.items() if k != "key"})


class UnitOfWork:
    """``with UnitOfWork(engine, user="alice", reason="baseline CT entered") as uow: uow.add(lesion)``."""

    def __init__(self, engine: Engine, user: str, reason: str) -> None:
        if not user or not user.strip():
            raise ValidationError("user", "every change to trial data needs the user who made it")
        if not reason or not reason.strip():
            raise ValidationError("reason", "every change to trial data needs a reason")
        self.engine = engine
        self.user = user
        self.reason = reason
        self._conn: Connection | None = None
        self._audit: AuditWriter | None = None

    def __enter__(self) -> UnitOfWork:
        try:
            self._conn = self.engine.connect()
            self._conn.begin()
            self._audit = AuditWriter(self._conn, self.user, self.reason)
        except SQLAlchemyError as exc:
            self._close()
            raise StoreError(f"Cannot start a transaction: {exc.__class__.__name__}: {exc}") from None
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._conn is not None
        try:
            if exc_type is None:
                assert self._audit is not None
                self._audit.flush()
                self._conn.commit()
            else:
                self._conn.rollback()
        except IntegrityError as err:
            self._conn.rollback()
            raise StoreError(f"Nothing was saved: {_integrity_sentence(err)}") from None
        finally:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def connection(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("the unit of work is not open (use it in a with block)")
        return self._conn

    # --- writes

    def add(self, obj: Any, reason: str | None = None) -> None:
        self.add_all([obj], reason)

    def add_all(self, objects: Iterable[Any], reason: str | None = None) -> int:
        """Insert domain objects (any mix of types, children included) with one audit record per row."""
        by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for obj in objects:
            entity = ENTITY_BY_CLASS.get(type(obj))
            if entity is None:
                raise ValidationError(type(obj).__name__, "is not a kind of trial data the store knows")
            e = ENTITIES[entity]
            row = _utc(to_row(obj, frozenset(e.children)))
            key = e.key(obj)
            if e.key_column == "key":
                row["key"] = key
            by_table[entity].append(row)
            for field_name, child_entity in e.children.items():
                parent_col = CHILD_PARENT_COLUMN[child_entity]
                for child in getattr(obj, field_name):
                    crow = _utc(to_row(child))
                    crow["key"] = CHILD_KEYS[child_entity](key, child)
                    crow[parent_col] = key
                    by_table[child_entity].append(crow)
        # parents before children, in schema order (foreign keys are on)
        total = 0
        for entity in ENTITIES:
            rows = by_table.get(entity)
            if not rows:
                continue
            self._insert(entity, rows, reason)
            total += len(rows)
        return total

    def _insert(self, entity: str, rows: list[dict[str, Any]], reason: str | None) -> None:
        e = ENTITIES[entity]
        assert self._audit is not None
        try:
            for i in range(0, len(rows), _BATCH):
                batch = rows[i : i + _BATCH]
                self.connection.execute(e.table.insert(), batch)
                self._audit.add((Change(entity, str(r[e.key_column]), ROW, None, _state(r)) for r in batch), reason)
        except IntegrityError as err:
            raise StoreError(f"Nothing was saved: {_integrity_sentence(err)}") from None

    def update(self, obj: Any, reason: str | None = None) -> list[str]:
        """Store the new version of ``obj``; one audit record per changed field. Returns the changed fields."""
        entity = ENTITY_BY_CLASS.get(type(obj))
        if entity is None:
            raise ValidationError(type(obj).__name__, "is not a kind of trial data the store knows")
        e = ENTITIES[entity]
        key = e.key(obj)
        key_col = e.table.c[e.key_column]
        current = self.connection.execute(select(e.table).where(key_col == key)).mappings().first()
        if current is None:
            raise NotFound(f"No {entity} record {key!r} to change")
        new = _utc(to_row(obj, frozenset(e.children)))
        old_state = dict(canonical_row(dict(current)))
        changes: dict[str, Any] = {}
        audit: list[Change] = []
        for name, value in new.items():
            before, after = old_state.get(name), _json_value(value)
            if before != after:
                changes[name] = value
                audit.append(Change(entity, key, name, canonical(before), canonical(after)))
        if changes:
            self.connection.execute(update(e.table).where(key_col == key).values(**changes))
            assert self._audit is not None
            self._audit.add(audit, reason)
        return list(changes)

    def delete(self, obj: Any, reason: str | None = None) -> None:
        """Remove ``obj`` (and its children); the audit keeps the removed values."""
        entity = ENTITY_BY_CLASS.get(type(obj))
        if entity is None:
            raise ValidationError(type(obj).__name__, "is not a kind of trial data the store knows")
        e = ENTITIES[entity]
        key = e.key(obj)
        assert self._audit is not None
        for child_entity in e.children.values():
            ce = ENTITIES[child_entity]
            parent_col = ce.table.c[CHILD_PARENT_COLUMN[child_entity]]
            for crow in self.connection.execute(select(ce.table).where(parent_col == key)).mappings():
                self._audit.add([Change(child_entity, crow["key"], ROW, _state(dict(crow)), None)], reason)
            self.connection.execute(delete(ce.table).where(parent_col == key))
        key_col = e.table.c[e.key_column]
        current = self.connection.execute(select(e.table).where(key_col == key)).mappings().first()
        if current is None:
            raise NotFound(f"No {entity} record {key!r} to delete")
        self.connection.execute(delete(e.table).where(key_col == key))
        self._audit.add([Change(entity, key, ROW, _state(dict(current)), None)], reason)


def _json_value(value: Any) -> Any:
    return json.loads(canonical(value))


def canonical_row(row: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(_state(row)))


def _integrity_sentence(err: IntegrityError) -> str:
    msg = str(err.orig).strip().splitlines()[0] if err.orig else str(err)
    low = msg.lower()
    if "unique" in low or "duplicate key" in low:
        return f"a record with the same identity already exists ({msg})"
    if "foreign key" in low:
        return f"a record refers to something that does not exist, e.g. an unknown patient ({msg})"
    if "not null" in low or "null value" in low:
        return f"a required value is missing ({msg})"
    return msg
