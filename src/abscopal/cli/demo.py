"""``abscopal demo``: a database with a synthetic cohort, ready to explore."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from platformdirs import user_data_dir
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from abscopal.cli._common import console, user_errors
from abscopal.errors import ValidationError
from abscopal.protocol.model import load_bundled
from abscopal.store.database import _redact, make_engine
from abscopal.store.migrate import upgrade
from abscopal.store.repository import Repository


def default_demo_url() -> str:
    return f"sqlite:///{Path(user_data_dir('abscopal', appauthor=False)) / 'demo.sqlite'}"


def build_demo_database(url: str, patients: int, seed: int, *, fresh: bool = True, chunk_size: int = 500) -> int:
    """Create (or recreate) the database at ``url`` and load a synthetic cohort; return rows written."""
    from abscopal.store.cohort_loader import store_cohort_chunks
    from abscopal.synth.cohort import iter_cohort_chunks

    if url.startswith("sqlite:///") and fresh:
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = make_engine(url)
    upgrade(engine)
    protocol = load_bundled().current
    with Progress(
        TextColumn("[bold]Synthetic cohort"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("patients · {task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("cohort", total=patients, rows=0)
        written = 0

        def advance(n_patients: int, rows: int) -> None:
            nonlocal written
            written += rows
            progress.update(task, advance=n_patients, rows=written)

        store_cohort_chunks(
            engine,
            iter_cohort_chunks(patients, seed, protocol, chunk_size=chunk_size),
            user="synth",
            reason=f"synthetic demo cohort (seed {seed})",
            on_chunk=advance,
        )
    engine.dispose()
    return written


def register(app: typer.Typer) -> None:
    @app.command("demo")
    @user_errors
    def demo(
        patients: Annotated[int, typer.Option("--patients", "-n", help="How many people to screen.", min=1)] = 200,
        seed: Annotated[int, typer.Option("--seed", help="Same seed, same cohort.")] = 20221231,
        database_url: Annotated[
            str | None,
            typer.Option("--database-url", help="Where to build it (default: demo.sqlite in your data directory)."),
        ] = None,
    ) -> None:
        """Create a database with a deterministic synthetic cohort and summarise it.

        The demo database is rebuilt each time. Explore it afterwards with, for example:
        ABSCOPAL_DATABASE_URL=<the printed URL> abscopal db status
        """
        url = database_url or default_demo_url()
        if not url.startswith(("sqlite", "postgresql")):
            raise ValidationError("--database-url", "must start with sqlite:/// or postgresql+psycopg://")
        build_demo_database(url, patients, seed)
        engine = make_engine(url)
        with engine.connect() as conn:
            repo = Repository(conn)
            counts = repo.counts()
            by_status = repo.patients_by_status()
        table = Table(title=f"Demo cohort (seed {seed})", show_header=True)
        table.add_column("what")
        table.add_column("count", justify="right")
        for name, n in by_status.items():
            table.add_row(f"patients: {name}", f"{n:,}")
        for name in ("lesions", "fractions", "tumour_assessments", "adverse_events", "questionnaire_answers",
                     "protocol_deviations", "audit_log"):  # fmt: skip
            table.add_row(name.replace("_", " "), f"{counts.get(name, 0):,}")
        console.print(table)
        console.print(f"Database: [bold]{_redact(url)}[/]")
        console.print(f"Try: ABSCOPAL_DATABASE_URL='{url}' abscopal audit verify")
        if os.environ.get("ABSCOPAL_DEMO_SERVE") == "1":  # reserved for the web app
            console.print("The web app is not built yet; nothing to serve.")
