"""``abscopal audit``: verify the hash-chained audit trail and show a record's history."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from abscopal.cli._common import console, fail, print_json, user_errors
from abscopal.settings import Settings
from abscopal.store.audit import history, verify
from abscopal.store.database import make_engine, require_schema

app = typer.Typer(help="Verify the audit trail and read the history of a record.", no_args_is_help=True)

UrlOpt = Annotated[
    str | None, typer.Option("--database-url", envvar="ABSCOPAL_DATABASE_URL", help="Database URL (default: SQLite).")
]


@app.command("verify")
@user_errors
def verify_cmd(
    database_url: UrlOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Check every audit record's hash chain, then every trial-data row against the trail.

    Exit 0 when intact; exit 1 naming each edited, deleted or unaudited record.
    """
    engine = make_engine(database_url or Settings().resolved_database_url())
    require_schema(engine)
    with console.status("Verifying the audit trail…"), engine.connect() as conn:
        report = verify(conn)
    if as_json:
        print_json(
            {
                "ok": report.ok,
                "records": report.records,
                "rows": report.rows,
                "findings": [f.__dict__ for f in report.findings],
            }
        )
        if not report.ok:
            raise typer.Exit(1)
        return
    if report.ok:
        console.print(
            f"[green]Intact:[/] {report.records:,} audit records chain correctly and match {report.rows:,} data rows."
        )
        return
    for finding in report.findings:
        console.print(f"[red]✗[/] {finding.message}", highlight=False)
    raise fail(f"the audit trail found {len(report.findings)} problem(s); see above")


@app.command("history")
@user_errors
def history_cmd(
    entity: Annotated[str, typer.Argument(help="Table, e.g. patients, lesions, adverse_events.")],
    key: Annotated[str, typer.Argument(help="The record's key, e.g. S0001 or S0001/L1.")],
    database_url: UrlOpt = None,
) -> None:
    """Every change to one record: who, when, which field, old and new value, and why."""
    engine = make_engine(database_url or Settings().resolved_database_url())
    require_schema(engine)
    with engine.connect() as conn:
        rows = history(conn, entity, key)
    if not rows:
        console.print(f"No audit records for {entity} {key!r}.")
        return
    table = Table("seq", "when (UTC)", "who", "field", "old", "new", "reason")
    for r in rows:
        when = f"{r.at:%Y-%m-%d %H:%M:%S}"
        table.add_row(str(r.seq), when, r.username, r.field, r.old_value or "", r.new_value or "", r.reason)
    console.print(table)
