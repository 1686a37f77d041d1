"""Typed errors that reach users as one sentence each.

Every error Abscopal raises on purpose derives from :class:`AbscopalError`. It carries where the
problem is (``field``, and for files ``line``) and why (``reason``); ``str(error)`` is the sentence the
CLI prints and the web shows. Callers catch at the level they care about, as with httpx's hierarchy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from abscopal.messages import N_, Joined, Message

#: The field of a :class:`ConcurrentChange` when the audit trail names no field (a change of the record as a whole).
SOME_DETAILS = "its details"


class AbscopalError(Exception):
    """Base of every error Abscopal raises deliberately; its message is a user-facing sentence."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ValidationError(AbscopalError):
    """A value is wrong: says which field and why (for example "neutrophils: unit 'mg' is unknown")."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)


class ProtocolError(AbscopalError):
    """The protocol file is malformed or inconsistent; names the offending key."""

    def __init__(self, key: str, reason: str, source: str | None = None) -> None:
        self.key = key
        self.reason = reason
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key}: {reason}" if key else f"{where}{reason}")


@dataclass(frozen=True)
class Problem:
    """One problem found in an input file: the line (1-based, header = line 1), the field and the reason."""

    line: int | None
    field: str
    reason: str

    def sentence(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        return f"{where}, {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"


class InputFileError(AbscopalError):
    """An import or input file is invalid; lists every problem with its line. Nothing was written."""

    def __init__(self, path: str, problems: Sequence[Problem], limit: int = 20) -> None:
        self.path = path
        self.problems = list(problems)
        shown = "; ".join(p.sentence() for p in self.problems[:limit])
        more = f" (and {len(self.problems) - limit} more)" if len(self.problems) > limit else ""
        n = len(self.problems)
        super().__init__(f"{path}: {n} problem{'s' if n != 1 else ''}, nothing was written: {shown}{more}")


class StoreError(AbscopalError):
    """The database cannot be reached or used (bad URL, server down, schema out of date)."""


class NotFound(AbscopalError):
    """A record the user named does not exist (for example an unknown patient id)."""

    @classmethod
    def record(cls, entity: str, record_id: str, doing: str | None = None) -> NotFound:
        """No ``entity`` record ``record_id`` (to ``doing``: "change", "remove")."""
        if doing == "change":
            return cls(Message(N_("No {entity} record {record} to change"), entity=entity, record=repr(record_id)))
        if doing == "remove":
            return cls(Message(N_("No {entity} record {record} to remove"), entity=entity, record=repr(record_id)))
        return cls(Message(N_("No {entity} record {record}"), entity=entity, record=repr(record_id)))

    @classmethod
    def removed(cls, entity: str, record_id: str, reason: str) -> NotFound:
        """The record was removed (with ``reason``): it cannot change."""
        return cls(
            Message(
                N_("The {entity} record {record} was removed ({reason}); it cannot change"),
                entity=entity,
                record=repr(record_id),
                reason=reason,
            )
        )


class PermissionDenied(AbscopalError):
    """The current user may not do this (for example sign an adjudication without the role)."""


class AuditError(AbscopalError):
    """The audit trail is broken: a row was edited or deleted. Names the first bad record."""


@dataclass(frozen=True)
class ConcurrentChange:
    """One field another user changed after the version a write was based on (for :class:`ConflictError`)."""

    username: str
    at: str  # ISO 8601, UTC
    field: str
    new_value: str | None = None


class ConflictError(StoreError):
    """A write was based on a version of the record that someone else has changed since (optimistic concurrency).

    Names who changed which fields and when, so the web can answer 409 and show their values beside yours.
    """

    def __init__(
        self,
        entity: str,
        record_id: str,
        based_on: int,
        current: int,
        changes: Sequence[ConcurrentChange] = (),
    ) -> None:
        self.entity = entity
        self.record_id = record_id
        self.based_on = based_on
        self.current = current
        self.changes = list(changes)
        who: dict[tuple[str, str], list[str]] = {}
        for c in self.changes:
            fields = who.setdefault((c.username, c.at), [])
            if c.field not in fields:
                fields.append(c.field)
        parts = [
            Message(N_("{username} at {at} changed its details"), username=username, at=at)
            if fields == [SOME_DETAILS]
            else Message(N_("{username} at {at} changed {fields}"), username=username, at=at, fields=", ".join(fields))
            for (username, at), fields in who.items()
        ]
        detail = Joined("; ", parts) if parts else Message(N_("it was changed"))
        super().__init__(
            Message(
                N_(
                    "Nothing was saved: {entity} record {record_id} was changed after you opened it "
                    "(you had version {based_on}, it is now version {current}): {detail}. "
                    "Reload it and apply your change again."
                ),
                entity=entity,
                record_id=record_id,
                based_on=str(based_on),
                current=str(current),
                detail=detail,
            )
        )


class RecordLocked(StoreError):
    """The record (or its patient) is locked by a data manager; says who locked it and when."""

    @classmethod
    def by(
        cls, entity: str, subject_id: str | None, locked_by: str, locked_at: dt.datetime, reason: str
    ) -> RecordLocked:
        """The refusal of a change under the lock of ``entity`` (``"patients"``: the whole patient)."""
        what = (
            Message(N_("patient {subject_id} is locked"), subject_id=str(subject_id))
            if entity == "patients"
            else Message(N_("this record is locked"))
        )
        return cls(
            Message(
                N_(
                    "Nothing was saved: {what} (by {locked_by} at {at} UTC: {reason}); "
                    "a data manager must unlock it, with a reason, before it can change"
                ),
                what=what,
                locked_by=locked_by,
                at=f"{locked_at:%Y-%m-%d %H:%M}",
                reason=reason,
            )
        )


class DuplicateRecord(StoreError):
    """A record with the same natural key (e.g. the same patient and lesion id) already exists."""


class MissingParent(StoreError):
    """A record refers to something that does not exist (an unknown patient, lesion or assessment)."""


class DatabaseBusy(StoreError):
    """The database stayed locked by other writers for longer than the busy timeout; nothing was saved."""
