"""Read time-to-event data from CSV for the statistics commands; every problem is reported with its line.

The file has a header row (line 1); the time column holds non-negative numbers, the event column 1 (event) or
0 (censored), and an optional group column a non-empty label. Nothing is guessed: a bad cell is an error.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from abscopal.errors import InputFileError, Problem
from abscopal.inputs import read_csv, read_input_text


@dataclass(frozen=True)
class SurvivalData:
    """Times, event flags and (optionally) group labels read from one CSV file."""

    durations: tuple[float, ...]
    events: tuple[int, ...]
    groups: tuple[str, ...] | None


def read_survival_csv(path: Path, time_col: str, event_col: str, group_col: str | None = None) -> SurvivalData:
    """Read TIME, EVENT (0/1) and GROUP columns; raise InputFileError listing every bad line."""
    wanted = [time_col, event_col] + ([group_col] if group_col else [])
    try:
        table = read_csv(path, wanted, missing_reason="no such column")
    except InputFileError as exc:
        header = _header_of(exc, path)
        if header is not None:  # name the columns there are, to help with a typo
            listed = ", ".join(header) if header else "none (the file is empty)"
            exc = InputFileError(
                exc.path,
                [
                    Problem(p.line, p.field, f"{p.reason}; the columns are: {listed}")
                    if p.reason == "no such column"
                    else p
                    for p in exc.problems
                ],
            )
        raise exc from None
    durations: list[float] = []
    events: list[int] = []
    groups: list[str] = []
    problems: list[Problem] = []
    for row in table:
        line = row.line
        time = _parse_time(row.get(time_col), line, time_col, problems)
        event = _parse_event(row.get(event_col), line, event_col, problems)
        label = ""
        if group_col:
            label = row.get(group_col)
            if not label:
                problems.append(Problem(line, group_col, "is empty; every patient needs a group"))
        if time is not None and event is not None:
            durations.append(time)
            events.append(event)
            groups.append(label)
    if not problems and not durations:
        problems.append(Problem(None, "", "has a header but no data rows"))
    if problems:
        raise InputFileError(str(path), problems)
    return SurvivalData(tuple(durations), tuple(events), tuple(groups) if group_col else None)


def _header_of(exc: InputFileError, path: Path) -> list[str] | None:
    """The header of a file refused for a missing column (None when it was refused for another reason)."""
    if not any(p.reason == "no such column" for p in exc.problems):
        return None
    first = read_input_text(path).removeprefix("\ufeff").splitlines()[0]
    return [c.strip() for c in next(csv.reader([first]))]


def _parse_time(raw: str, line: int, field: str, problems: list[Problem]) -> float | None:
    if raw == "":
        problems.append(Problem(line, field, "is empty; a time is required"))
        return None
    try:
        value = float(raw)
    except ValueError:
        problems.append(Problem(line, field, f"{raw!r} is not a number"))
        return None
    if not math.isfinite(value):
        problems.append(Problem(line, field, f"{raw!r} is not a finite number"))
        return None
    if value < 0:
        problems.append(Problem(line, field, f"{raw} is negative; times are counted from the origin"))
        return None
    return value


def _parse_event(raw: str, line: int, field: str, problems: list[Problem]) -> int | None:
    if raw in ("0", "1", "0.0", "1.0"):
        return int(float(raw))
    shown = repr(raw) if raw else "empty"
    problems.append(Problem(line, field, f"is {shown}; use 1 for an event and 0 for censored"))
    return None
