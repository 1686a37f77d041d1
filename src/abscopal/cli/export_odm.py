"""``abscopal export odm``: the whole database as one CDISC ODM 1.3.2 Snapshot file (interop.md §4, §7)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from abscopal.cli._common import console, user_errors
from abscopal.errors import ValidationError


def _parse_created(value: str | None) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        created = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            "--created", f"{value!r} is not a date-time; use ISO 8601, e.g. 2025-06-30T12:00:00Z"
        ) from None
    return created.replace(tzinfo=dt.UTC) if created.tzinfo is None else created.astimezone(dt.UTC)


def register(app: typer.Typer) -> None:
    @app.command("odm")
    @user_errors
    def export_odm(
        output: Annotated[Path, typer.Option("--output", "-o", help="The ODM file to write.")],
        created: Annotated[
            str | None,
            typer.Option("--created", help="The file's CreationDateTime (ISO 8601, UTC when no offset; default now)."),
        ] = None,
        strict: Annotated[
            bool,
            typer.Option("--strict", help="Plain ODM 1.3.2 without Abscopal's abs: extension (cannot be restored)."),
        ] = False,
        database_url: Annotated[
            str | None,
            typer.Option("--database-url", envvar="ABSCOPAL_DATABASE_URL", help="Database URL (default: settings)."),
        ] = None,
    ) -> None:
        """Write metadata (events from the protocol schedule, forms, item groups, items, codelists), AdminData and
        every record with its last change's AuditRecord. Without --strict the file also carries stable ids,
        versions, queries, locks, SDV marks, signatures and the whole audit trail (`abscopal import odm` restores
        it); with --strict it validates against the plain ODM 1.3.2 schema.

        The same database and --created give a byte-identical file.

        Example: abscopal export odm --output trial.odm.xml --created 2025-06-30T12:00:00Z
        """
        stamp = _parse_created(created)
        if not output.parent.exists():
            raise ValidationError("--output", f"the folder {output.parent} does not exist")
        from abscopal.interop.odm import write_odm
        from abscopal.protocol.model import load_bundled
        from abscopal.store.database import make_engine

        engine = make_engine(database_url, read_only=True)
        try:
            with console.status("Writing the ODM file"), engine.connect() as conn, conn.begin():
                summary = write_odm(conn, output, created=stamp, strict=strict, protocols=load_bundled())
        finally:
            engine.dispose()
        kind = "plain ODM 1.3.2" if strict else "ODM 1.3.2 with the Abscopal extension"
        console.print(
            f"Wrote [bold]{summary.path}[/] ({kind}): {summary.subjects} subjects, "
            f"{sum(summary.rows.values())} records, {summary.records} audit records."
        )
