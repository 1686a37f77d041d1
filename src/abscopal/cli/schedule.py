"""``abscopal schedule``: a patient's visit calendar, with overdue, out-of-window and cancelled visits."""

from __future__ import annotations

import datetime as dt
import importlib
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from abscopal.cli._common import console, fail, print_json, user_errors
from abscopal.protocol import calendar as cal
from abscopal.protocol.io import load_schedule
from abscopal.protocol.model import load_bundled

NO_DATABASE = "Reading patients from the database is not available yet; pass --input FILE.json"

_KIND = {
    "cfrt_fraction": "CFRT",
    "ldrt_fraction": "LDRT",
    "immunotherapy": "IO",
    "tumour_assessment": "assessment",
    "questionnaire": "QoL",
    "follow_up": "follow-up",
}
_STYLE = {
    "done": "green",
    "done_out_of_window": "yellow",
    "overdue": "bold red",
    "due": "cyan",
    "upcoming": "dim",
    "unscheduled": "magenta",
    "not_expected": "dim",
}


def _input_from_store(patient_id: str) -> cal.ScheduleInput:
    try:
        store = importlib.import_module("abscopal.store.schedule_input")
        load_schedule_input = store.load_schedule_input
    except (ImportError, AttributeError):
        raise fail(NO_DATABASE) from None
    result: cal.ScheduleInput = load_schedule_input(patient_id)
    return result


def schedule(
    patient_id: Annotated[str, typer.Argument(help="The patient's subject id.")],
    input_file: Annotated[
        Path | None,
        typer.Option("--input", help="SCHEDULE.json (schema: docs/radiotherapy.md) instead of the database."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="The calendar as known on this date, YYYY-MM-DD (default: today): anything recorded as happening "
            "after it (visits, fractions, cycles, death, withdrawal) is ignored.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the calendar as JSON.")] = False,
) -> None:
    """Print the patient's calendar from enrolment: fractions, immunotherapy cycles, assessments, questionnaires,
    follow-up, each with its window and status; overdue and out-of-window visits are listed at the end. After
    death, withdrawal or the end of study no visit is overdue: those still open are "not expected", with the reason.

    Example: abscopal schedule QFS-0001 --input docs/examples/schedule.json --as-of 2024-10-16
    """
    day = _parse_date(as_of) if as_of else dt.date.today()
    protocol = load_bundled().current
    inp = load_schedule(input_file) if input_file is not None else _input_from_store(patient_id)
    if inp.patient_id != patient_id:
        raise fail(f"patient_id: the input is for {inp.patient_id}, not {patient_id}")
    result = cal.build_schedule(inp, protocol.immunotherapy, protocol.schedule, protocol.radiotherapy.low_dose, day)
    if as_json:
        print_json(cal.as_dict(result))
        return
    table = Table(title=f"Calendar of {patient_id} as of {day} (holidays: {result.country})")
    for col in ("kind", "#", "planned", "window", "actual", "status"):
        table.add_column(col, no_wrap=True)
    table.add_column("note")
    for v in result.visits:
        status = v.status(day).value
        window = (
            f"{v.window_start:%m-%d}..{v.window_end:%m-%d}"
            if v.window_start and v.window_end and v.window_start != v.window_end
            else ""
        )
        table.add_row(
            _KIND[v.kind.value],
            str(v.number or ""),
            str(v.planned or ""),
            window,
            str(v.actual or ""),
            f"[{_STYLE[status]}]{status.replace('_', ' ')}[/]",
            v.not_expected or v.note,
        )
    console.print(table)
    if result.off_study is not None:
        console.print(f"[bold]Off study:[/] {result.off_study_reason}; no visit after that day is expected.")
    for title, visits in (("Overdue", result.overdue), ("Out of window", result.out_of_window)):
        if visits:
            console.print(
                f"[bold]{title}:[/] " + "; ".join(f"{v.kind.value} {v.number} (planned {v.planned})" for v in visits)
            )


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise fail(f"--as-of: {text!r} is not a date (YYYY-MM-DD)") from None


def register(app: typer.Typer) -> None:
    """Add ``abscopal schedule`` as a top-level command."""
    app.command("schedule")(user_errors(schedule))
