"""One typed repository per kind of record, owned by a unit of work: ``uow.lesions.update(id, lesion, version=3)``.

A stored record is a :class:`Stored` (surrogate id, version, the domain object). Adds check the natural key
(a duplicate is refused with the key named) and the patient (an unknown one is refused); updates diff every
field and every child (added, changed, removed children each get their own audit records) and are refused when
stale; removals are logical (``removed_reason``), never a ``DELETE``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import select

from abscopal.errors import DuplicateRecord, MissingParent, NotFound, ValidationError
from abscopal.store.codec import canonical, codec
from abscopal.store.ids import new_id
from abscopal.store.tables import ENTITIES

if TYPE_CHECKING:
    from abscopal.store.unit_of_work import UnitOfWork

T = TypeVar("T")


@dataclass(frozen=True)
class Stored(Generic[T]):
    """A record as stored: its id (never changes), its version (for optimistic concurrency) and its value."""

    id: str
    version: int
    value: T
    removed_reason: str | None = None

    @property
    def etag(self) -> str:
        """The HTTP entity tag of this version (web.md §7)."""
        return f'W/"{self.id}.{self.version}"'


def _describe_key(entity: str, values: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v!s}" for k, v in values.items())


class RecordRepository(Generic[T]):
    """Reads and audited writes of one table inside a unit of work."""

    def __init__(self, uow: UnitOfWork, entity: str) -> None:
        self.uow = uow
        self.entity = entity
        self.e = ENTITIES[entity]
        self.table = self.e.table

    # --- reads

    def get(self, record_id: str, *, include_removed: bool = False) -> Stored[T]:
        """The record with this id, or :class:`NotFound` (also for a removed one, unless asked)."""
        row = self.uow.current_row(self.entity, record_id)
        if row is None or (row["removed_reason"] is not None and not include_removed):
            raise NotFound(f"No {self.entity} record {record_id!r}")
        return self.uow.load(self.entity, row)

    def find(self, **natural_key: Any) -> Stored[T] | None:
        """The live record with this natural key (``uow.lesions.find(subject_id="S1", lesion_id="L1")``)."""
        if set(natural_key) != set(self.e.natural_key):
            raise ValidationError(self.entity, f"find() needs exactly {', '.join(self.e.natural_key)}")
        query = select(self.table).where(self.table.c.removed_reason.is_(None))
        for k, v in natural_key.items():
            query = query.where(self.table.c[k].is_(None) if v is None else self.table.c[k] == v)
        row = self.uow.execute(query.limit(1)).mappings().first()
        return None if row is None else self.uow.load(self.entity, dict(row))

    def for_subject(self, subject_id: str) -> list[Stored[T]]:
        """The live records of one patient, oldest first."""
        rows = self.uow.execute(
            select(self.table)
            .where(self.table.c.subject_id == subject_id)
            .where(self.table.c.removed_reason.is_(None))
            .order_by(self.table.c.id)
        ).mappings()
        return self.uow.load_many(self.entity, [dict(r) for r in rows])

    def all(self, limit: int | None = None) -> list[Stored[T]]:
        """Every live record of the table, oldest first."""
        query = select(self.table).where(self.table.c.removed_reason.is_(None)).order_by(self.table.c.id)
        if limit is not None:
            query = query.limit(limit)
        return [self.uow.load(self.entity, dict(r)) for r in self.uow.execute(query).mappings()]

    # --- writes

    def _natural(self, values: dict[str, Any]) -> dict[str, Any]:
        return {k: values[k] for k in self.e.natural_key}

    def _refuse_duplicate(
        self, values: dict[str, Any], parent_id: str | None = None, own_id: str | None = None
    ) -> None:
        key = self._natural({**values, **({self.e.parent_column: parent_id} if self.e.parent_column else {})})
        query = select(self.table.c.id).where(self.table.c.removed_reason.is_(None))
        for k, v in key.items():
            query = query.where(self.table.c[k].is_(None) if v is None else self.table.c[k] == v)
        if own_id is not None:
            query = query.where(self.table.c.id != own_id)
        found = self.uow.execute(query.limit(1)).scalar()
        if found is not None:
            shown = {k: v for k, v in key.items() if k != self.e.parent_column}
            raise DuplicateRecord(
                f"Nothing was saved: a {self.entity} record with {_describe_key(self.entity, shown)} already exists "
                f"(id {found})"
            )

    def _refuse_unknown_patient(self, values: dict[str, Any]) -> None:
        subject = values.get("subject_id")
        if subject is None or self.entity == "patients":
            return
        patients = ENTITIES["patients"].table
        if self.uow.execute(select(patients.c.id).where(patients.c.subject_id == subject)).first() is None:
            raise MissingParent(f"Nothing was saved: there is no patient {subject!r} for this {self.entity} record")

    def add(self, obj: T, reason: str | None = None) -> Stored[T]:
        """Insert one record (and its children) at version 1; refuse a duplicate natural key or unknown patient."""
        c = codec(self.entity)
        if type(obj) is not self.e.cls:
            raise ValidationError(self.entity, f"expects a {self.e.cls.__name__}, not a {type(obj).__name__}")
        values = dict(zip(c.field_columns, c.values(obj), strict=True))
        self._refuse_duplicate(values)
        self._refuse_unknown_patient(values)
        subject = values.get("subject_id")
        if subject is not None:  # a locked patient takes no new trial data (queries, SDV, signatures still may)
            self.uow.check_unlocked(self.entity, "", subject)
        record_id = new_id()
        self.uow.insert_rows(self.entity, [(record_id, c.values(obj))], reason)
        for field_name, child_entity in self.e.children.items():
            kids = list(getattr(obj, field_name))
            self._refuse_duplicate_children(child_entity, kids)
            if kids:
                cc = codec(child_entity)
                self.uow.insert_rows(child_entity, [(new_id(), (record_id, *cc.values(k))) for k in kids], reason)
        if subject is not None and self.entity != "patients":
            self.uow.after_change(self.entity, record_id, subject, 1)  # a signed casebook gained a record
        return self.get(record_id)

    def _refuse_duplicate_children(self, child_entity: str, kids: Sequence[Any]) -> None:
        ce = ENTITIES[child_entity]
        own = [k for k in ce.natural_key if k != ce.parent_column]
        seen: set[tuple[Any, ...]] = set()
        for kid in kids:
            ident = tuple(getattr(kid, k) for k in own)
            if ident in seen:
                same = ", ".join(f"{k} {v}" for k, v in zip(own, ident, strict=True))
                raise DuplicateRecord(f"Nothing was saved: two {child_entity} rows have {same}")
            seen.add(ident)

    def update(self, record_id: str, obj: T, *, version: int, reason: str | None = None) -> Stored[T]:
        """Store ``obj`` as the new state of the record, if it is still at ``version``; audit every change.

        Child collections are diffed by their natural key inside the parent (a measurement's lesion id, a
        signature's user): added children are inserted, changed ones updated field by field, missing ones
        removed logically. A write that changes nothing returns the record as it is, at the same version.
        """
        if type(obj) is not self.e.cls:
            raise ValidationError(self.entity, f"expects a {self.e.cls.__name__}, not a {type(obj).__name__}")
        row = self.uow.current_row(self.entity, record_id, for_update=True)
        if row is None:
            raise NotFound(f"No {self.entity} record {record_id!r} to change")
        if row["removed_reason"] is not None:
            raise NotFound(
                f"The {self.entity} record {record_id!r} was removed ({row['removed_reason']}); it cannot change"
            )
        current_version = int(row["version"])
        if current_version != version:
            raise self.uow.conflict(self.entity, record_id, version, current_version)
        subject = row.get("subject_id")
        self.uow.check_unlocked(self.entity, record_id, subject)
        c = codec(self.entity)
        current = c.state_from_db(row)
        new = dict(zip(c.field_columns, c.values(obj), strict=True))
        if self.entity == "patients" and new["subject_id"] != current["subject_id"]:
            raise ValidationError("subject_id", "is the patient's identity in every record and cannot be changed")
        changes = {n: (current.get(n), v) for n, v in new.items() if canonical(v) != canonical(current.get(n))}
        if changes:
            self._refuse_duplicate(new, own_id=record_id)
        child_changed = False
        for field_name, child_entity in self.e.children.items():
            child_changed |= self._diff_children(record_id, child_entity, list(getattr(obj, field_name)), reason)
        if not changes and not child_changed:
            return self.uow.load(self.entity, row)
        new_version = self.uow.update_fields(self.entity, record_id, version, changes, reason)
        self.uow.after_change(self.entity, record_id, subject, new_version)
        return self.get(record_id)

    def _diff_children(self, parent_id: str, child_entity: str, kids: list[Any], reason: str | None) -> bool:
        ce = ENTITIES[child_entity]
        cc = codec(child_entity)
        assert ce.parent_column is not None
        own = [k for k in ce.natural_key if k != ce.parent_column]
        self._refuse_duplicate_children(child_entity, kids)
        existing = {
            tuple(r[k] for k in own): dict(r)
            for r in self.uow.execute(
                select(ce.table)
                .where(ce.table.c[ce.parent_column] == parent_id)
                .where(ce.table.c.removed_reason.is_(None))
            ).mappings()
        }
        changed = False
        added: list[tuple[str, tuple[Any, ...]]] = []
        for kid in kids:
            values = dict(zip(cc.field_columns, cc.values(kid), strict=True))
            ident = tuple(values[k] for k in own)
            old = existing.pop(ident, None)
            if old is None:
                added.append((new_id(), (parent_id, *cc.values(kid))))
                continue
            state = cc.state_from_db(old)
            diff = {n: (state.get(n), v) for n, v in values.items() if canonical(v) != canonical(state.get(n))}
            if diff:
                self.uow.update_fields(child_entity, str(old["id"]), int(old["version"]), diff, reason)
                changed = True
        if added:
            self.uow.insert_rows(child_entity, added, reason)
            changed = True
        for old in existing.values():
            self.uow.mark_removed(child_entity, str(old["id"]), int(old["version"]), reason or self.uow.reason)
            changed = True
        return changed

    def remove(self, record_id: str, *, version: int, reason: str) -> None:
        """Remove the record logically (kept, with the reason, in the table and the trail); children with it."""
        if not reason or not reason.strip():
            raise ValidationError("reason", "removing trial data needs a reason")
        row = self.uow.current_row(self.entity, record_id, for_update=True)
        if row is None or row["removed_reason"] is not None:
            raise NotFound(f"No {self.entity} record {record_id!r} to remove")
        if int(row["version"]) != version:
            raise self.uow.conflict(self.entity, record_id, version, int(row["version"]))
        subject = row.get("subject_id")
        self.uow.check_unlocked(self.entity, record_id, subject)
        for child_entity in self.e.children.values():
            ce = ENTITIES[child_entity]
            assert ce.parent_column is not None
            for kid in self.uow.execute(
                select(ce.table.c.id, ce.table.c.version)
                .where(ce.table.c[ce.parent_column] == record_id)
                .where(ce.table.c.removed_reason.is_(None))
            ):
                self.uow.mark_removed(child_entity, kid.id, int(kid.version), reason)
        self.uow.mark_removed(self.entity, record_id, version, reason)
        self.uow.after_change(self.entity, record_id, subject, version + 1)

    def replace(self, record_id: str, version: int, **changes: Any) -> Stored[T]:
        """``update`` with some fields changed: ``uow.lesions.replace(id, 3, rt_role=RtRole.LOW_DOSE)``."""
        current = self.get(record_id)
        return self.update(record_id, dataclasses.replace(current.value, **changes), version=version)  # type: ignore[type-var]
