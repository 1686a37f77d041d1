"""``abscopal demo``: a database with a synthetic cohort, ready to explore.

The demo only ever replaces a demo: a database is recognised as one when every audit record in it was written
by the demo's generator (user :data:`DEMO_USER`, reason starting :data:`DEMO_REASON`) and it holds no other
data. Anything else is refused before a byte is written. One demo at a time per database: a lock file next to
the SQLite file (``flock``) or a PostgreSQL advisory lock is held for the whole build.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Connection, Engine, inspect, text

from abscopal.cli._common import console, user_errors
from abscopal.errors import StoreError, ValidationError
from abscopal.settings import default_data_dir
from abscopal.store.database import database_error, make_engine, redact, sqlite_path

#: Who the demo's audit records are written as, and how their reason starts: what marks a database as a demo.
DEMO_USER = "synth"
DEMO_REASON = "synthetic demo cohort"
#: Key of the PostgreSQL advisory lock one demo holds while it builds (ASCII "abscdemo").
_PG_DEMO_LOCK = 0x6162_7363_6465_6D6F
#: Tables that say what the schema is, not trial data.
_BOOKKEEPING = {"alembic_version", "audit_head"}


def default_demo_url() -> str:
    return f"sqlite:///{default_data_dir() / 'demo.sqlite'}"


def build_demo_database(url: str, patients: int, seed: int, *, fresh: bool = True, chunk_size: int = 500) -> int:
    """Create (or replace the demo at) ``url`` and load a synthetic cohort; return rows written.

    Refuses, writing nothing, when the database holds anything but a demo or another demo is being built there.
    With ``fresh=False`` the cohort is added to the existing demo.
    """
    from abscopal.protocol.model import load_bundled
    from abscopal.store.cohort_loader import store_cohort_chunks
    from abscopal.synth.cohort import iter_cohort_chunks

    engine = make_engine(url)
    try:
        with demo_lock(url, engine):
            _prepare_schema(engine, url, fresh=fresh)
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
                    user=DEMO_USER,
                    reason=f"{DEMO_REASON} (seed {seed})",
                    on_chunk=advance,
                )
    finally:
        engine.dispose()
    return written


def _prepare_schema(engine: Engine, url: str, *, fresh: bool) -> None:
    """In one write transaction: check that the database holds only a demo, drop it (``fresh``), create the schema."""
    from alembic import command

    from abscopal.store.migrate import alembic_config

    try:
        with engine.connect() as conn, conn.begin():  # BEGIN IMMEDIATE on SQLite: no writer slips in between
            if conn.dialect.name == "postgresql" and inspect(conn).has_table("audit_log"):
                conn.execute(text("LOCK TABLE audit_log IN EXCLUSIVE MODE"))
            problem = not_demo_reason(conn)
            if problem is not None:
                raise StoreError(
                    f"{redact(url)} holds data that is not an Abscopal demo ({problem}); the demo wrote nothing. "
                    "Give the demo its own database with --database-url (e.g. sqlite:///demo.sqlite)"
                )
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            cfg.attributes["discard_data"] = True  # checked above: only a demo's data is discarded
            if fresh and inspect(conn).has_table("alembic_version"):
                cfg.attributes["discard_data"] = True  # checked above: only demo data is discarded
                command.downgrade(cfg, "base")
            command.upgrade(cfg, "head")
    except StoreError:
        raise
    except Exception as exc:  # alembic or driver: one sentence
        if "Can't locate revision" in str(exc):
            raise StoreError(
                f"{redact(url)} was made by another version of Abscopal; the demo wrote nothing. "
                "Delete it or give the demo another --database-url"
            ) from None
        raise database_error(exc, url=url) from None


def not_demo_reason(conn: Connection) -> str | None:
    """Why the database on ``conn`` is not (only) an Abscopal demo, or None when the demo may replace it.

    A demo is an empty database, or one whose every audit record was written by the demo generator and whose
    every row of trial data is covered by that (no tables of other applications with rows).
    """
    from abscopal.store.tables import metadata

    names = set(inspect(conn).get_table_names())
    if not names:
        return None
    known = set(metadata.tables) | _BOOKKEEPING
    for name in sorted(names - known):
        if conn.execute(text(f'SELECT 1 FROM "{name}" LIMIT 1')).first() is not None:
            return f"table {name!r}, which Abscopal does not manage, has rows"
    audited = 0
    if "audit_log" in names:
        audited = int(conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one())
        other = conn.execute(
            text(
                "SELECT username, count(*) FROM audit_log WHERE username <> :user OR reason NOT LIKE :reason "
                "GROUP BY username ORDER BY count(*) DESC"
            ),
            {"user": DEMO_USER, "reason": f"{DEMO_REASON}%"},
        ).all()
        if other:
            n = sum(int(row[1]) for row in other)
            who = ", ".join(str(row[0]) for row in other[:3]) + (" and others" if len(other) > 3 else "")
            return f"{n:,} audit record{'s' if n != 1 else ''} written by {who}, not by the demo generator"
    if audited == 0:
        for name in sorted((names & known) - _BOOKKEEPING - {"audit_log"}):
            if conn.execute(text(f'SELECT 1 FROM "{name}" LIMIT 1')).first() is not None:
                return f"table {name!r} has rows that no demo audit record accounts for"
    return None


@contextmanager
def demo_lock(url: str, engine: Engine) -> Iterator[None]:
    """Hold the one-demo-at-a-time lock for ``url``, or raise a :class:`StoreError` sentence at once."""
    busy = (
        f"Another `abscopal demo` is building {redact(url)} right now; this one wrote nothing. "
        "Wait for it to finish, or give this one another --database-url"
    )
    path = sqlite_path(url)
    if path is not None:
        with _file_lock(Path(f"{path}.demo-lock"), busy):
            yield
        return
    if engine.dialect.name != "postgresql":  # pragma: no cover - make_engine accepts only these two
        yield
        return
    with engine.connect() as conn:
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _PG_DEMO_LOCK}).scalar_one()
        conn.commit()
        if not got:
            raise StoreError(busy)
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_DEMO_LOCK})
            conn.commit()


@contextmanager
def _file_lock(lock_path: Path, busy: str) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock_path`` (created, and removed when released); ``busy`` if it is held."""
    import fcntl

    for _ in range(5):
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(busy) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a file the previous holder removed after we opened it
            break
        os.close(fd)
    else:  # pragma: no cover - five removals in a row
        raise StoreError(busy)
    try:
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        lock_path.unlink(missing_ok=True)
        os.close(fd)


def follow_up_lines(url: str) -> list[str]:
    """The commands to explore the demo, one per line, safe to copy (the password, if any, is hidden)."""
    shown = redact(url)
    lines = [f"export ABSCOPAL_DATABASE_URL={shlex.quote(shown)}", "abscopal audit verify"]
    return lines


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

        The demo database is rebuilt each time; a database holding anything but a demo is refused.
        Explore it afterwards with the two printed lines, for example:

            export ABSCOPAL_DATABASE_URL=sqlite:///demo.sqlite

            abscopal db status
        """
        from abscopal.store.repository import Repository

        url = database_url or default_demo_url()
        if not url.startswith(("sqlite", "postgresql")):
            raise ValidationError("--database-url", "must start with sqlite:/// or postgresql+psycopg://")
        build_demo_database(url, patients, seed)
        engine = make_engine(url, read_only=True)
        try:
            with engine.connect() as conn:
                repo = Repository(conn)
                counts = repo.counts()
                by_status = repo.patients_by_status()
        finally:
            engine.dispose()
        table = Table(title=f"Demo cohort (seed {seed})", show_header=True)
        table.add_column("what")
        table.add_column("count", justify="right")
        for name, n in by_status.items():
            table.add_row(f"patients: {name}", f"{n:,}")
        for name in ("lesions", "fractions", "tumour_assessments", "adverse_events", "questionnaire_answers",
                     "protocol_deviations", "audit_log"):  # fmt: skip
            table.add_row(name.replace("_", " "), f"{counts.get(name, 0):,}")
        console.print(table)
        shown = redact(url)
        console.print("Database: ", shown, sep="", markup=False, highlight=False, soft_wrap=True)
        console.print("Explore it: copy these lines into your shell", markup=False, highlight=False)
        for line in follow_up_lines(url):
            console.print(f"    {line}", markup=False, highlight=False, soft_wrap=True)
        if shown != url:
            console.print(
                "(the password is shown as ***: put yours in its place, or set ABSCOPAL_DATABASE_URL yourself)",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        if os.environ.get("ABSCOPAL_DEMO_SERVE") == "1":  # reserved for the web app
            console.print("The web app is not built yet; nothing to serve.")
