"""``abscopal export sdtm``: CDISC SDTM datasets (SAS XPORT v5, CSV, Dataset-JSON 1.1) at a data cut-off."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from abscopal.cli._common import console, user_errors
from abscopal.errors import ValidationError
from abscopal.store.database import make_engine


def _date(value: str | None, option: str) -> dt.date:
    if value is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationError(option, f"{value!r} is not a date; use YYYY-MM-DD, e.g. 2025-06-30") from None


def _datetime(value: str | None) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            "--created", f"{value!r} is not a date and time; use YYYY-MM-DDTHH:MM:SS, e.g. 2025-07-01T09:00:00"
        ) from None


def _list(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def register(app: typer.Typer) -> None:
    @app.command("sdtm")
    @user_errors
    def sdtm(
        output: Annotated[Path, typer.Option("--output", "-o", help="Directory for dm.xpt, ae.csv, manifest.json.")],
        cutoff: Annotated[
            str | None, typer.Option("--cutoff", help="Clinical data cut-off YYYY-MM-DD: later records are dropped.")
        ] = None,
        formats: Annotated[str, typer.Option("--format", help="Comma-separated: xpt, csv, json.")] = "xpt",
        domains: Annotated[
            str | None, typer.Option("--domains", help="Comma-separated datasets, e.g. DM,AE (default: all).")
        ] = None,
        created: Annotated[
            str | None,
            typer.Option("--created", help="Creation time stamped into every file (same input -> same bytes)."),
        ] = None,
        transliterate: Annotated[
            bool, typer.Option("--transliterate", help="Map typographic quotes, dashes, ≥ ≤ × ° µ to ASCII.")
        ] = False,
        birth_date: Annotated[str, typer.Option("--birth-date", help="BRTHDTC precision: year or day.")] = "year",
        database_url: Annotated[
            str | None,
            typer.Option("--database-url", envvar="ABSCOPAL_DATABASE_URL", help="Database URL (default: settings)."),
        ] = None,
        define: Annotated[
            bool | None,
            typer.Option(
                "--define/--no-define",
                help="Write define.xml 2.1 with the datasets (default: yes for a whole export, no with --domains).",
            ),
        ] = None,
        context: Annotated[
            str, typer.Option("--context", help="define.xml context: other (default) or submission.")
        ] = "other",
    ) -> None:
        """Export SDTMIG 3.4 datasets; every value is checked before a file is written (no silent truncation).

        Writes define.xml 2.1 beside the datasets (context other unless --context submission; --no-define skips
        it), named in manifest.json.

        Example: abscopal export sdtm -o sdtm/ --cutoff 2025-06-30 --format xpt,csv --created 2025-07-01T09:00:00
        """
        from abscopal.interop.sdtm.export import export_sdtm, steps
        from abscopal.protocol.model import load_bundled

        if birth_date not in ("year", "day"):
            raise ValidationError("--birth-date", f"{birth_date!r} is not year or day")
        cut = _date(cutoff, "--cutoff")
        when = _datetime(created)
        fmts = _list(formats) or ["xpt"]
        wanted = _list(domains)
        contexts = {"submission": "Submission", "other": "Other"}
        if context.lower() not in contexts:
            raise ValidationError("--context", f"{context!r} is not submission or other")
        write_define = wanted is None if define is None else define
        engine = make_engine(database_url, read_only=True)
        try:
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as progress:
                plan = steps(wanted, define=write_define)
                task = progress.add_task("Reading the trial", total=len(plan))

                def on_step(name: str) -> None:
                    progress.update(task, advance=1, description=f"Built {name}")

                result = export_sdtm(
                    engine,
                    load_bundled(),
                    output,
                    cutoff=cut,
                    created=when,
                    formats=fmts,
                    domains=wanted,
                    transliterate=transliterate,
                    options={"birth_date": birth_date},
                    on_step=on_step,
                    define_context=contexts[context.lower()] if write_define else None,
                )
        finally:
            engine.dispose()
        for line in result.substitutions:
            console.print(f"transliterated {line}")
        rows = {f.dataset: f.rows for f in result.files}
        shown = ", ".join(f"{k} {v}" for k, v in rows.items())
        console.print(f"Wrote {len(result.files)} files to {output} (cut-off {cut}): {shown}")
        if result.define is not None:
            console.print(f"Wrote {output / result.define.name} (context {contexts[context.lower()]}).")
