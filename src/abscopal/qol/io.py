"""Read questionnaire item answers from CSV and write scale scores to CSV (the file edge of the QoL engine).

ITEMS.csv (long): ``subject_id, visit, instrument, item, answer``; answer empty when the item was left blank.
SCORES.csv (long): ``subject_id, visit, instrument, scale, score``; score empty when not computable. Every
problem of an input file is reported with its line (header = line 1) and nothing is written (docs/qol.md).
A visit is any non-empty label, unless the protocol ``schedule`` is given: then it must be one of the schedule's
questionnaire visit codes (baseline, week_6, ...; abscopal.protocol.calendar), checked by abscopal.validation.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from abscopal import validation
from abscopal.domain import Instrument, QuestionnaireAnswer
from abscopal.errors import InputFileError, Problem, ValidationError
from abscopal.inputs import CsvTable, check_output_file, parse_csv, read_csv
from abscopal.protocol.model import Schedule
from abscopal.qol.eortc import ScaleScore, check_answer, item_definition

ITEM_COLUMNS = ("subject_id", "visit", "instrument", "item", "answer")
SCORE_COLUMNS = ("subject_id", "visit", "instrument", "scale", "score")


def _integer(text: str) -> int | None:
    text = text.strip()
    if text.startswith(("+", "-")):
        sign, digits = text[0], text[1:]
    else:
        sign, digits = "", text
    return int(sign + digits) if digits.isdigit() and digits.isascii() else None


def read_item_answers(path: str | Path, schedule: Schedule | None = None) -> list[QuestionnaireAnswer]:
    """Parse and check ITEMS.csv; raise :class:`InputFileError` listing every bad line. With ``schedule``, a
    visit that is not one of its questionnaire visit codes is a problem of that line (field ``visit``)."""
    return _item_answers(read_csv(path, ITEM_COLUMNS), schedule)


def parse_item_answers(
    text: str, source: str = "<items>", schedule: Schedule | None = None
) -> list[QuestionnaireAnswer]:
    """Parse ITEMS.csv text: known instrument, an item of it, integer answer in range, no duplicate item (and,
    with ``schedule``, a visit code of the protocol schedule)."""
    return _item_answers(parse_csv(text, source, ITEM_COLUMNS), schedule)


def _item_answers(table: CsvTable, schedule: Schedule | None = None) -> list[QuestionnaireAnswer]:
    problems: list[Problem] = []
    answers: list[QuestionnaireAnswer] = []
    seen: dict[tuple[str, str, str, int], int] = {}
    for row in table:
        line = row.line
        cell = {name: row.get(name) for name in ITEM_COLUMNS}
        bad = len(problems)
        for name in ("subject_id", "visit"):
            if not cell[name]:
                problems.append(Problem(line, name, "is empty"))
        if schedule is not None and (off := validation.visit_problem(cell["visit"], schedule)) is not None:
            problems.append(Problem(line, off.field, off.reason))
        try:
            instrument: Instrument | None = Instrument(cell["instrument"])
        except ValueError:
            instrument = None
            known = " or ".join(i.value for i in Instrument)
            problems.append(Problem(line, "instrument", f"{cell['instrument']!r} is not {known}"))
        item = _integer(cell["item"])
        if item is None:
            problems.append(Problem(line, "item", f"{cell['item']!r} is not an item number (an integer)"))
        answer: int | None = None
        if cell["answer"]:
            answer = _integer(cell["answer"])
            if answer is None:
                problems.append(Problem(line, "answer", f"{cell['answer']!r} is not an integer answer"))
        if instrument is not None and item is not None:
            try:
                item_definition(instrument, item)
            except ValidationError as exc:
                problems.append(Problem(line, "item", exc.reason))
            else:
                if answer is not None:
                    try:
                        check_answer(instrument, item, answer)
                    except ValidationError as exc:
                        problems.append(Problem(line, "answer", exc.reason))
                key = (cell["subject_id"], cell["visit"], instrument.value, item)
                if key in seen:
                    problems.append(
                        Problem(line, "item", f"item {item} is given twice for this form (first on line {seen[key]})")
                    )
                else:
                    seen[key] = line
        if len(problems) == bad and instrument is not None and item is not None:
            answers.append(QuestionnaireAnswer(cell["subject_id"], cell["visit"], instrument, item, answer))
    if problems:
        raise InputFileError(table.source, problems)
    return answers


def format_score(score: float | None) -> str:
    """Unrounded score as text (shortest repr that round-trips), empty when not computable (manual B3)."""
    return "" if score is None else repr(score)


def write_scores(path: str | Path, scores: Iterable[ScaleScore]) -> int:
    """Write SCORES.csv atomically (a temporary file renamed into place); return the number of rows."""
    p = Path(path)
    check_output_file(p)
    n = 0
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent if str(p.parent) else ".")
    except OSError as exc:
        raise ValidationError("--output", f"{p} cannot be written ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(SCORE_COLUMNS)
            for s in scores:
                writer.writerow([s.subject_id, s.visit, s.instrument.value, s.scale, format_score(s.score)])
                n += 1
        os.replace(tmp, p)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ValidationError("--output", f"{p} cannot be written ({exc.strerror})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n
