"""Read adverse events (AE.csv) and a safety population (subject list) from CSV; the file edge of the safety engine.

Columns are documented in docs/safety.md. Every problem is reported with its line (header = line 1); each
record is checked against CTCAE v5.0 with :func:`abscopal.safety.events.check_adverse_event`.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from abscopal.domain import AdverseEvent, AeAction, AeOutcome, Attribution
from abscopal.errors import InputFileError, Problem
from abscopal.inputs import read_csv
from abscopal.safety.ctcae import CtcaeDictionary
from abscopal.safety.events import check_adverse_event

REQUIRED_COLUMNS = ("subject_id", "term", "grade", "onset_date")
OPTIONAL_COLUMNS = (
    "ae_id",
    "meddra_code",
    "resolution_date",
    "aesdth",
    "aeslife",
    "aeshosp",
    "aesdisab",
    "aescong",
    "aesmie",
    "attribution_cfrt",
    "attribution_ldrt",
    "attribution_io",
    "immune_related",
    "action_io",
    "outcome",
    "verbatim",
    "baseline_grade",
    "awareness_at",
    "reported_at",
    "treatment_emergent",
)
#: The six ICH E2A criteria as SDTM flag columns, in the order of AdverseEvent's fields.
SERIOUS_COLUMNS = ("aesdth", "aeslife", "aeshosp", "aesdisab", "aescong", "aesmie")
_YES = {"y", "yes", "true", "1"}
_NO = {"n", "no", "false", "0", ""}

E = TypeVar("E", bound=StrEnum)


class _Row:
    """One CSV row's cells, collecting problems as they are parsed."""

    def __init__(self, line: int, cells: dict[str, str], problems: list[Problem]) -> None:
        self.line, self.cells, self.problems = line, cells, problems

    def text(self, name: str) -> str:
        return self.cells.get(name, "").strip()

    def bad(self, name: str, reason: str) -> None:
        self.problems.append(Problem(self.line, name, reason))

    def flag(self, name: str) -> bool:
        value = self.text(name).lower()
        if value in _YES:
            return True
        if value not in _NO:
            self.bad(name, f"{self.text(name)!r} is not Y or N")
        return False

    def integer(self, name: str) -> int | None:
        value = self.text(name)
        if not value:
            return None
        if value.isdigit():
            return int(value)
        self.bad(name, f"{value!r} is not a whole number")
        return None

    def date(self, name: str) -> dt.date | None:
        value = self.text(name)
        if not value:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.bad(name, f"{value!r} is not a date (YYYY-MM-DD)")
            return None

    def timestamp(self, name: str) -> dt.datetime | None:
        value = self.text(name)
        if not value:
            return None
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            self.bad(name, f"{value!r} is not a date and time (YYYY-MM-DDTHH:MM)")
            return None

    def code(self, name: str, enum: type[E]) -> E | None:
        value = self.text(name).lower().replace(" ", "_").replace("/", "_")
        if not value:
            return None
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(m.value for m in enum)
            self.bad(name, f"{self.text(name)!r} is not one of {allowed}")
            return None


def _read_rows(path: str | Path, required: tuple[str, ...]) -> tuple[str, list[str], list[tuple[int, dict[str, str]]]]:
    """The shared CSV reader (abscopal.inputs): header names lower-cased, each record with its start line."""
    table = read_csv(path, required, header_case="lower")
    return table.source, list(table.header), [(row.line, dict(row.cells)) for row in table]


def read_adverse_events(
    path: str | Path, dictionary: CtcaeDictionary, treatment_emergent_only: bool = True
) -> list[AdverseEvent]:
    """Parse and check AE.csv; rows with ``treatment_emergent`` = N are left out when ``treatment_emergent_only``."""
    source, header, body = _read_rows(path, REQUIRED_COLUMNS)
    unknown = [h for h in header if h not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    problems: list[Problem] = [Problem(1, h, "unknown column (a typo?)") for h in unknown]
    events: list[AdverseEvent] = []
    ids: dict[tuple[str, str], int] = {}
    for line, cells in body:
        row = _Row(line, cells, problems)
        before = len(problems)
        subject = row.text("subject_id")
        if not subject:
            row.bad("subject_id", "is empty")
        ae_id = row.text("ae_id") or f"line {line}"
        if (subject, ae_id) in ids:
            row.bad("ae_id", f"{ae_id!r} is used twice for {subject} (first on line {ids[(subject, ae_id)]})")
        ids[(subject, ae_id)] = line
        code = row.integer("meddra_code")
        name = row.text("term")
        term = dictionary.find(name) if name else (dictionary.by_code(code) if code is not None else None)
        if term is None:
            if name:
                hints = [h.term.term for h in dictionary.search(name, limit=3)]
                hint = f"; did you mean {', '.join(repr(h) for h in hints)}?" if hints else ""
                row.bad("term", f"{name!r} is not a CTCAE v5.0 term{hint}")
            else:
                row.bad("term", "is empty" if code is None else f"{code} is not the MedDRA code of a CTCAE v5.0 term")
        grade = row.integer("grade")
        onset = row.date("onset_date")
        if onset is None and not row.text("onset_date"):
            row.bad("onset_date", "is empty")
        aesdth, aeslife, aeshosp, aesdisab, aescong, aesmie = (row.flag(c) for c in SERIOUS_COLUMNS)
        resolution = row.date("resolution_date")
        attributions = [row.code(f"attribution_{c}", Attribution) for c in ("cfrt", "ldrt", "io")]
        immune_related = row.flag("immune_related")
        action = row.code("action_io", AeAction) or AeAction.DOSE_NOT_CHANGED
        outcome = row.code("outcome", AeOutcome) or AeOutcome.UNKNOWN
        baseline_grade = row.integer("baseline_grade")
        awareness, reported = row.timestamp("awareness_at"), row.timestamp("reported_at")
        emergent = row.flag("treatment_emergent") if row.text("treatment_emergent") else True
        if len(problems) > before or term is None or onset is None:
            continue
        ae = AdverseEvent(
            subject_id=subject,
            ae_id=ae_id,
            term=term.term,
            meddra_code=code if code is not None else term.meddra_code,
            grade=grade,
            onset_date=onset,
            resolution_date=resolution,
            serious_death=aesdth,
            serious_life_threatening=aeslife,
            serious_hospitalisation=aeshosp,
            serious_disability=aesdisab,
            serious_congenital=aescong,
            serious_medically_important=aesmie,
            attribution_cfrt=attributions[0],
            attribution_ldrt=attributions[1],
            attribution_io=attributions[2],
            immune_related=immune_related,
            action_io=action,
            outcome=outcome,
            verbatim=row.text("verbatim") or None,
            baseline_grade=baseline_grade,
            awareness_at=awareness,
            reported_at=reported,
        )
        for error in check_adverse_event(ae, dictionary):
            row.bad(error.field, error.reason)
        if emergent or not treatment_emergent_only:
            events.append(ae)
    if problems:
        raise InputFileError(source, problems)
    return events


def read_safety_population(path: str | Path) -> frozenset[str]:
    """A CSV with a ``subject_id`` column: the patients who received at least one RT fraction."""
    source, _, body = _read_rows(path, ("subject_id",))
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for line, cells in body:
        subject = cells["subject_id"].strip()
        if not subject:
            problems.append(Problem(line, "subject_id", "is empty"))
        elif subject in seen:
            problems.append(Problem(line, "subject_id", f"{subject} is listed twice (first on line {seen[subject]})"))
        else:
            seen[subject] = line
    if problems:
        raise InputFileError(source, problems)
    return frozenset(seen)
