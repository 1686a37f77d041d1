"""``abscopal report``: the trial report (HTML and PDF) from the database at a data cut-off."""

from __future__ import annotations

import datetime as dt
import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from abscopal.cli._common import console, user_errors
from abscopal.errors import ValidationError
from abscopal.store.database import make_engine, redact

_STEP_TEXT = {
    "read": "Reading the trial from the database",
    "analyse": "Deriving responses, survival, safety and QoL",
    "figures": "Drawing the figures",
    "html": "Writing report.html",
    "pdf": "Printing report.pdf",
}


def _parse_cutoff(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationError("--cutoff", f"{value!r} is not a date; use YYYY-MM-DD, e.g. 2025-06-30") from None


def register(app: typer.Typer) -> None:
    @app.command("report")
    @user_errors
    def report(
        output: Annotated[Path, typer.Option("--output", "-o", help="Directory for report.html and report.pdf.")],
        cutoff: Annotated[
            str | None,
            typer.Option("--cutoff", help="Data cut-off date YYYY-MM-DD; later records are ignored (default: today)."),
        ] = None,
        database_url: Annotated[
            str | None,
            typer.Option("--database-url", envvar="ABSCOPAL_DATABASE_URL", help="Database URL (default: settings)."),
        ] = None,
        title: Annotated[str | None, typer.Option("--title", help="Title of the report.")] = None,
    ) -> None:
        """Write the trial report: CONSORT, baseline, ORR/DCR (iRECIST and RECIST 1.1), waterfall, spider,
        swimmer, PFS/OS/DOR, response by RT role, safety, QoL, the options used and a reproducibility footer.

        report.html is self-contained (figures embedded); report.pdf is the same document printed.

        Example: abscopal report --output out/ --cutoff 2025-06-30
        """
        cut = _parse_cutoff(cutoff)
        # the report only reads: prove the database exists and opens read-only before any work (a missing file,
        # an in-memory URL or a corrupt file is one sentence here)
        make_engine(database_url, read_only=True).dispose()
        from abscopal.reports.report import STEPS, build_report

        # the command that reproduces this report: options as resolved (cut-off fixed, password hidden)
        words = ["abscopal", "report", "--output", str(output), "--cutoff", (cut or dt.date.today()).isoformat()]
        if database_url:
            words += ["--database-url", redact(database_url)]
        if title:
            words += ["--title", title]
        command_line = shlex.join(words)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("Starting", total=len(STEPS))
            seen: list[str] = []

            def on_step(name: str) -> None:
                progress.update(task, description=_STEP_TEXT.get(name, name), completed=len(seen))
                seen.append(name)

            files = build_report(
                output, database_url=database_url, cutoff=cut, title=title, command_line=command_line, on_step=on_step
            )
            progress.update(task, completed=len(STEPS))
        a = files.analysis
        console.print(
            f"Report at cut-off {a.cutoff.isoformat()}: {len(a.populations.enrolled)} enrolled, "
            f"{len(a.populations.efficacy)} in the efficacy set, {len(a.populations.safety)} in the safety set."
        )
        console.print(f"Wrote [bold]{files.html}[/] and [bold]{files.pdf}[/] ({files.pages} pages).")
