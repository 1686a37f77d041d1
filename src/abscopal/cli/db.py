"""``abscopal db``: create or upgrade the trial database, and say where it is and what it holds."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from abscopal.cli._common import console, user_errors
from abscopal.settings import Settings
from abscopal.store.database import make_engine, redact, schema_revision
from abscopal.store.migrate import head_revision, upgrade
from abscopal.store.repository import Repository

app = typer.Typer(
    help=(
        "Create, upgrade and inspect the trial database. SQLite under your data directory by default; "
        "set ABSCOPAL_DATABASE_URL (e.g. postgresql+psycopg://user:pw@host/db) for the multi-site server."
    ),
    no_args_is_help=True,
)

UrlOpt = Annotated[
    str | None, typer.Option("--database-url", envvar="ABSCOPAL_DATABASE_URL", help="Database URL (default: SQLite).")
]


@app.command("upgrade")
@user_errors
def upgrade_cmd(database_url: UrlOpt = None) -> None:
    """Create the schema, or bring it to the newest version (safe to run again).

    Example: abscopal db upgrade --database-url sqlite:///trial.sqlite
    """
    url = database_url or Settings().resolved_database_url()
    engine = make_engine(url)
    before = schema_revision(engine)
    upgrade(engine)
    after = schema_revision(engine)
    if before == after:
        console.print(f"[green]Up to date[/] at schema {after}: {redact(url)}")
    else:
        console.print(f"[green]Upgraded[/] {before or 'empty database'} → {after}: {redact(url)}")


@app.command("status")
@user_errors
def status_cmd(database_url: UrlOpt = None) -> None:
    """Where the database is, its schema version, and how many rows each table holds (opened read-only).

    Example: abscopal db status --database-url sqlite:///trial.sqlite
    """
    url = database_url or Settings().resolved_database_url()
    engine = make_engine(url, read_only=True)
    rev = schema_revision(engine)
    console.print(f"Database: {redact(url)}")
    console.print(f"Schema: {rev or 'empty (run `abscopal db upgrade`)'}; newest: {head_revision()}")
    if rev is None:
        return
    with engine.connect() as conn:
        counts = Repository(conn).counts()
    table = Table("table", "rows")
    for name, n in counts.items():
        table.add_row(name, f"{n:,}")
    console.print(table)
