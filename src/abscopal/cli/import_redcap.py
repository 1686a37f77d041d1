"""``abscopal import redcap``: a REDCap project export (ODM XML, or CSV + data dictionary) through a mapping file,
all or nothing (interop.md §5, §7)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from abscopal.cli._common import console, err_console, user_errors
from abscopal.settings import Settings

_MANY = 50  # records: above this a progress bar shows the write


def register(app: typer.Typer) -> None:
    """Add ``abscopal import redcap`` to ``app``."""

    @app.command("redcap")
    @user_errors
    def redcap_cmd(
        file: Annotated[Path, typer.Argument(help="REDCap export: 'CDISC ODM (XML)' or 'CSV (raw data)'.")],
        mapping: Annotated[Path, typer.Option("--mapping", help="The mapping file (TOML, docs/interop.md).")],
        dictionary: Annotated[
            Path | None, typer.Option("--dictionary", help="The project's data dictionary (CSV route only).")
        ] = None,
        instrument_events: Annotated[
            Path | None,
            typer.Option("--instrument-event-map", help="CSV route: the instrument-event designation export."),
        ] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report; write nothing.")] = False,
        update: Annotated[
            bool, typer.Option("--update", help="Replace stored records whose values differ from the export.")
        ] = False,
        user: Annotated[str | None, typer.Option("--user", help="Data manager running the import.")] = None,
        report: Annotated[Path | None, typer.Option("--report", help="Also write the report as JSON.")] = None,
        database_url: Annotated[
            str | None, typer.Option("--database-url", help="Default: ABSCOPAL_DATABASE_URL.")
        ] = None,
    ) -> None:
        """Import a REDCap project into Abscopal through the use cases, in one transaction.

        Example: abscopal import redcap export.xml --mapping docs/examples/redcap-mapping.toml --dry-run
        """
        from abscopal.errors import InputFileError
        from abscopal.interop.redcap import ImportFiles, import_redcap
        from abscopal.store.database import make_engine

        settings = Settings()
        engine = make_engine(database_url or settings.resolved_database_url())
        try:
            with _progress() as progress:
                try:
                    result = import_redcap(
                        engine, ImportFiles(file, mapping, dictionary, instrument_events), user=user or settings.user,
                        dry_run=dry_run, update=update, progress=progress,
                    )  # fmt: skip
                except InputFileError as exc:
                    if report is not None:
                        report.write_text(json.dumps({"problems": [p.sentence() for p in exc.problems]}, indent=2))
                    raise
        finally:
            engine.dispose()
        if report is not None:
            report.write_text(json.dumps(result.as_json(), indent=2, default=str, ensure_ascii=False) + "\n")
        console.print(f"REDCap project [bold]{result.project}[/] — {result.source} (sha256 {result.sha256[:12]}…)")
        console.print(f"events: {', '.join(f'{k} → {v}' for k, v in result.events_mapped.items()) or 'none'}")
        console.print(
            f"instruments: {', '.join(result.instruments_mapped)} mapped"
            + (
                f"; {', '.join(result.instruments_not_mapped)} for the patient or ignored"
                if result.instruments_not_mapped
                else ""
            )
        )
        if result.skipped_records:
            console.print(f"records skipped, their patient's form not complete: {', '.join(result.skipped_records)}")
        if result.events_unmapped:
            console.print(f"events not mapped: {', '.join(result.events_unmapped)}")
        console.print(
            f"fields: {len(result.fields_mapped)} mapped, {len(result.fields_ignored)} ignored, "
            f"{len(result.fields_unaccounted)} unaccounted; {result.skipped_incomplete} form(s) not complete skipped"
        )
        table = Table("entity", "new", "identical", "conflicting")
        for entity, counts in result.counts.items():
            table.add_row(entity, *(str(counts[k]) for k in ("new", "identical", "conflicting")))
        console.print(table)
        if result.problems:
            for problem in result.problems:
                err_console.print(f"  {problem.sentence()}", highlight=False, soft_wrap=True)
            err_console.print(
                f"[bold red]The import would fail:[/] {len(result.problems)} problem(s); nothing written."
            )
            raise typer.Exit(1)
        console.print("Dry run: nothing written." if dry_run else "Imported: every record written in one transaction.")


@contextmanager
def _progress() -> Iterator[Callable[[int], Callable[[int], None]]]:
    """A Rich progress bar, shown only for many records."""
    with Progress(console=err_console, transient=True) as bar:

        def start(total: int) -> Callable[[int], None]:
            if total < _MANY:
                return lambda _n: None
            task = bar.add_task("writing records", total=total)
            return lambda n: bar.advance(task, n)

        yield start
