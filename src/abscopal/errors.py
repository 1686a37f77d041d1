"""Typed errors that reach users as one sentence each.

Every error Abscopal raises on purpose derives from :class:`AbscopalError`. It carries where the
problem is (``field``, and for files ``line``) and why (``reason``); ``str(error)`` is the sentence the
CLI prints and the web shows. Callers catch at the level they care about, as with httpx's hierarchy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


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
        who: dict[str, list[str]] = {}
        for c in self.changes:
            who.setdefault(f"{c.username} at {c.at}", [])
            if c.field not in who[f"{c.username} at {c.at}"]:
                who[f"{c.username} at {c.at}"].append(c.field)
        detail = "; ".join(f"{k} changed {', '.join(v)}" for k, v in who.items()) or "it was changed"
        super().__init__(
            f"Nothing was saved: {entity} record {record_id} was changed after you opened it "
            f"(you had version {based_on}, it is now version {current}): {detail}. "
            "Reload it and apply your change again."
        )


class RecordLocked(StoreError):
    """The record (or its patient) is locked by a data manager; says who locked it and when."""


class DuplicateRecord(StoreError):
    """A record with the same natural key (e.g. the same patient and lesion id) already exists."""


class MissingParent(StoreError):
    """A record refers to something that does not exist (an unknown patient, lesion or assessment)."""


class DatabaseBusy(StoreError):
    """The database stayed locked by other writers for longer than the busy timeout; nothing was saved."""
