"""The unit of work: one transaction in which trial data and its audit records are written together.

Every change to trial data goes through here (cosmicpython's unit of work): ``add`` inserts domain objects,
``update`` writes the changed fields of one, ``delete`` removes one, each with an audit record carrying who,
when and why. Leaving the ``with`` block commits; an exception rolls everything back, so a failed import
writes nothing and a crash loses nothing that was committed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from abscopal.errors import NotFound, StoreError, ValidationError
from abscopal.store.audit import ROW, ROWS, AuditWriter, Change
from abscopal.store.codec import canonical, codec, insert_rows
from abscopal.store.tables import CHILD_KEYS, CHILD_PARENT_COLUMN, ENTITIES, ENTITY_BY_CLASS

_BATCH = 5_000


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
        """Insert domain objects (any mix of types, children included); return the rows written.

        A single row gets an audit record of its own; many rows of one table get one record per batch
        (field ``*rows``) holding every row's key and values, so bulk imports stay fast and still replayable.
        """
        by_class: dict[type[Any], list[Any]] = defaultdict(list)
        for obj in objects:
            by_class[type(obj)].append(obj)
        by_table: dict[str, list[tuple[str, tuple[Any, ...]]]] = defaultdict(list)
        for cls, objs in by_class.items():
            entity = ENTITY_BY_CLASS.get(cls)
            if entity is None:
                raise ValidationError(cls.__name__, "is not a kind of trial data the store knows")
            e = ENTITIES[entity]
            key_of, values_of = e.key, codec(entity).values
            keyed = [(key_of(obj), obj) for obj in objs]
            by_table[entity].extend((key, values_of(obj)) for key, obj in keyed)
            for field_name, child_entity in e.children.items():
                child_key, child_values = CHILD_KEYS[child_entity], codec(child_entity).values
                by_table[child_entity].extend(
                    (child_key(key, child), (key, *child_values(child)))
                    for key, obj in keyed
                    for child in getattr(obj, field_name)
                )
        total = 0
        for entity in ENTITIES:  # parents before children, in schema order (foreign keys are on)
            rows = by_table.get(entity)
            if rows:
                self._insert(entity, rows, reason)
                total += len(rows)
        return total

    def _insert(self, entity: str, rows: list[tuple[str, tuple[Any, ...]]], reason: str | None) -> None:
        c = codec(entity)
        e = ENTITIES[entity]
        assert self._audit is not None
        has_key = e.key_column == "key"
        state_cols = ((c.parent_column,) if c.parent_column else ()) + c.field_columns
        columns = (("key",) if has_key else ()) + state_cols
        try:
            for i in range(0, len(rows), _BATCH):
                batch = rows[i : i + _BATCH]
                insert_rows(self.connection, e.table, columns, [((k, *v) if has_key else v) for k, v in batch])
                if len(batch) == 1:
                    key, values = batch[0]
                    state = canonical(dict(zip(state_cols, values, strict=True)))
                    self._audit.add([Change(entity, key, ROW, None, state)], reason)
                else:  # {"columns": [...], "rows": {key: [values]}}: one record, every row replayable
                    label = f"{len(batch)} rows: {batch[0][0]} … {batch[-1][0]}"[:200]
                    payload = canonical({"columns": state_cols, "rows": dict(batch)})
                    self._audit.add([Change(entity, label, ROWS, None, payload)], reason)
        except IntegrityError as err:
            raise StoreError(f"Nothing was saved: {_integrity_sentence(err)}") from None

    def _current(self, entity: str, key: str) -> dict[str, Any] | None:
        e = ENTITIES[entity]
        row = self.connection.execute(select(e.table).where(e.table.c[e.key_column] == key)).mappings().first()
        return None if row is None else codec(entity).state_from_db(row)

    def update(self, obj: Any, reason: str | None = None) -> list[str]:
        """Store the new version of ``obj``; one audit record per changed field. Returns the changed fields."""
        entity = ENTITY_BY_CLASS.get(type(obj))
        if entity is None:
            raise ValidationError(type(obj).__name__, "is not a kind of trial data the store knows")
        e = ENTITIES[entity]
        c = codec(entity)
        key = e.key(obj)
        current = self._current(entity, key)
        if current is None:
            raise NotFound(f"No {entity} record {key!r} to change")
        new = dict(zip(c.field_columns, c.values(obj), strict=True))
        changes = {n: v for n, v in new.items() if canonical(v) != canonical(current.get(n))}
        if changes:
            self.connection.execute(update(e.table).where(e.table.c[e.key_column] == key).values(**changes))
            assert self._audit is not None
            self._audit.add(
                [Change(entity, key, n, canonical(current.get(n)), canonical(v)) for n, v in changes.items()], reason
            )
        return list(changes)

    def delete(self, obj: Any, reason: str | None = None) -> None:
        """Remove ``obj`` (and its children); the audit keeps the removed values."""
        entity = ENTITY_BY_CLASS.get(type(obj))
        if entity is None:
            raise ValidationError(type(obj).__name__, "is not a kind of trial data the store knows")
        e = ENTITIES[entity]
        key = e.key(obj)
        assert self._audit is not None
        current = self._current(entity, key)
        if current is None:
            raise NotFound(f"No {entity} record {key!r} to delete")
        for child_entity in e.children.values():
            ce = ENTITIES[child_entity]
            parent_col = ce.table.c[CHILD_PARENT_COLUMN[child_entity]]
            for crow in self.connection.execute(select(ce.table).where(parent_col == key)).mappings():
                state = codec(child_entity).state_from_db(crow)
                self._audit.add([Change(child_entity, crow["key"], ROW, canonical(state), None)], reason)
            self.connection.execute(delete(ce.table).where(parent_col == key))
        self.connection.execute(delete(e.table).where(e.table.c[e.key_column] == key))
        self._audit.add([Change(entity, key, ROW, canonical(current), None)], reason)


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
