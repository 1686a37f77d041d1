"""``abscopal demo``: a database with a synthetic two-site cohort and its demo accounts, served by the web app.

The demo only ever replaces a demo: a database is recognised as one when every audit record in it was written
by the demo's generator (user :data:`DEMO_USER`, reason starting :data:`DEMO_REASON`) or by one of the accounts
the generator itself created (people sign in to the served demo and edit it), every account in it is one of
those, and it holds no other data. Anything else is refused before a byte is written. One demo at a time per
database: a lock file next to the SQLite file (``flock``) or a PostgreSQL advisory lock is held for the build.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import shlex
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Connection, Engine, inspect, text

from abscopal.cli._common import console, user_errors
from abscopal.domain import Role
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
#: How long a generated demo password is (``secrets.token_urlsafe``: 6 bits a character).
_PASSWORD_CHARS = 20


@dataclass(frozen=True)
class DemoAccount:
    """One account the demo creates: its role at one site (``*``: every site)."""

    username: str
    full_name: str
    role: Role
    site: str
    pi: bool = False
    language: str = "en"
    subject_id: str | None = None


def demo_accounts(subject_id: str | None = None) -> tuple[DemoAccount, ...]:
    """The demo's accounts: every role at the first site, a coordinator at the second, and ``subject_id``'s own.

    Where the synthetic staff roster (``abscopal.synth.staff``) has a person in the role, the account has their
    name, so that the synthetic data's signatures and the signed-in person agree.
    """
    from abscopal.synth.staff import SECOND_SITE, SITE

    first, second = SITE.code, SECOND_SITE.code
    people = (
        DemoAccount("coordinator", "Xu Fang", Role.COORDINATOR, first),
        DemoAccount("investigator", "Chen Wei", Role.INVESTIGATOR, first),
        DemoAccount("pi", "Wang Jianguo", Role.INVESTIGATOR, first, pi=True),
        DemoAccount("dcp1", "Zhang Jiandong", Role.DEPUTY_CHIEF_PHYSICIAN, first),
        DemoAccount("dcp2", "Li Wenjing", Role.DEPUTY_CHIEF_PHYSICIAN, first),
        DemoAccount("radonc", "Liu Yang", Role.RADIATION_ONCOLOGIST, first),
        DemoAccount("radiologist", "Sun Hui", Role.RADIOLOGIST, first),
        DemoAccount("datamanager", "Guo Ying", Role.DATA_MANAGER, first),
        DemoAccount("monitor", "He Ping", Role.MONITOR, first),
        DemoAccount("statistician", "Lin Tao", Role.STATISTICIAN, "*"),
        DemoAccount("admin", "Qian Hong", Role.ADMIN, "*"),
        DemoAccount("coordinator2", "Zhao Min", Role.COORDINATOR, second, language="zh_Hans"),
    )
    if subject_id is None:
        return people
    patient = DemoAccount("patient", "Song Guoqiang", Role.PATIENT, first, language="zh_Hans", subject_id=subject_id)
    return (*people, patient)


#: Every username the demo may create (the patient's account only when the cohort has an enrolled patient).
DEMO_USERNAMES: tuple[str, ...] = tuple(a.username for a in demo_accounts("-"))


def demo_password(given: str | None) -> str:
    """``given`` when the password policy accepts it for every demo user (else a sentence), or a new random one."""
    from abscopal.web.accounts import password_problems

    if given is not None:
        problems: list[str] = []
        for username in DEMO_USERNAMES:
            problems += [p for p in password_problems(given, username) if p not in problems]
        if problems:
            raise ValidationError("--demo-password", f"is refused ({'; '.join(problems)}); the demo wrote nothing")
        return given
    while True:  # a random one almost always passes; one that happens to contain e.g. "pi" is drawn again
        password = secrets.token_urlsafe(_PASSWORD_CHARS)[:_PASSWORD_CHARS]
        if not any(password_problems(password, u) for u in DEMO_USERNAMES):
            return password


def demo_start_date(today: dt.date) -> dt.date:
    """Two years before ``today`` (29 February → 28 February): the synthetic trial then ends today."""
    try:
        return today.replace(year=today.year - 2)
    except ValueError:
        return today.replace(year=today.year - 2, day=28)


def default_demo_url() -> str:
    return f"sqlite:///{default_data_dir() / 'demo.sqlite'}"


def build_demo_database(
    url: str,
    patients: int,
    seed: int,
    *,
    fresh: bool = True,
    chunk_size: int = 500,
    sites: int = 1,
    start_date: dt.date | None = None,
) -> int:
    """Create (or replace the demo at) ``url`` and load a synthetic cohort at ``sites`` sites; return rows written.

    The cohort's trial runs two years from ``start_date`` (default: the protocol's ``trial.start_date``).

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
                    iter_cohort_chunks(
                        patients, seed, protocol, chunk_size=chunk_size, start_date=start_date, sites=sites
                    ),
                    user=DEMO_USER,
                    reason=f"{DEMO_REASON} (seed {seed})",
                    on_chunk=advance,
                )
    finally:
        engine.dispose()
    return written


def create_demo_accounts(url: str, password: str, seed: int) -> tuple[DemoAccount, ...]:
    """Add :func:`demo_accounts` (all with ``password``) to the demo at ``url`` in one audited transaction.

    The accounts' audit records are written by :data:`DEMO_USER` with the demo's reason, which is what lets
    :func:`not_demo_reason` recognise them (and whatever their owners later write) as the demo's own. The
    patient's account is for the first patient of the first site who got past screening, when there is one.
    """
    from sqlalchemy import insert, select

    from abscopal.store.audit import AuditWriter, Change
    from abscopal.store.audit_key import load_key
    from abscopal.store.tables import ENTITIES, accounts, memberships
    from abscopal.synth.staff import SITE
    from abscopal.web.accounts import hash_password, utcnow

    patients = ENTITIES["patients"].table
    not_yet = ("screening", "screen_failed")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            subject = conn.execute(
                select(patients.c.subject_id)
                .where(
                    patients.c.site_code == SITE.code,
                    patients.c.status.not_in(not_yet),
                    patients.c.removed_reason.is_(None),
                )
                .order_by(patients.c.subject_id)
                .limit(1)
            ).scalar_one_or_none()
            people = demo_accounts(subject)
            password_hash = hash_password(password)  # one hash: every demo account has the same password
            now = utcnow()
            writer = AuditWriter(
                conn, DEMO_USER, f"{DEMO_REASON} (seed {seed}): demo accounts", load_key(conn.engine.url, create=False)
            )
            for a in people:
                conn.execute(
                    insert(accounts).values(
                        username=a.username, full_name=a.full_name, password_hash=password_hash, disabled=False,
                        language=a.language, subject_id=a.subject_id, created_at=now, password_changed_at=now,
                        version=1,
                    )
                )  # fmt: skip
                conn.execute(
                    insert(memberships).values(username=a.username, site_code=a.site, role=a.role.value, pi=a.pi)
                )
                role = f"{a.role.value}@{a.site}{' (PI)' if a.pi else ''}"
                summary = f"{a.full_name}; {role}; language {a.language}"
                writer.add([Change("accounts", a.username, "*", None, summary, version=1)])
            writer.flush()
    finally:
        engine.dispose()
    return people


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

    A demo is an empty database, or one whose every audit record was written by the demo generator or by an
    account the generator created (found by its creation record: entity ``accounts``, field ``*``, written by
    :data:`DEMO_USER` with the demo's reason), whose every account is such an account, and whose every row of
    trial data is covered by that (no tables of other applications with rows). Security events (logins, failed
    logins, also under usernames that have no account) are accepted once every account is the demo's: they
    record attempts on the demo, not data.
    """
    from abscopal.store.tables import SECURITY_TABLES, metadata

    names = set(inspect(conn).get_table_names())
    if not names:
        return None
    known = set(metadata.tables) | _BOOKKEEPING
    for name in sorted(names - known):
        if conn.execute(text(f'SELECT 1 FROM "{name}" LIMIT 1')).first() is not None:
            return f"table {name!r}, which Abscopal does not manage, has rows"
    demo = {"user": DEMO_USER, "reason": f"{DEMO_REASON}%"}
    audited = 0
    made_by_demo: set[str] = set()
    if "audit_log" in names:
        audited = int(conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one())
        made_by_demo = {
            str(key)
            for key in conn.execute(
                text(
                    "SELECT entity_key FROM audit_log WHERE entity = 'accounts' AND field = '*' "
                    "AND username = :user AND reason LIKE :reason"
                ),
                demo,
            ).scalars()
        }
    if "accounts" in names:
        strangers = [
            str(u)
            for u in conn.execute(text("SELECT username FROM accounts ORDER BY username")).scalars()
            if str(u) not in made_by_demo
        ]
        if strangers:
            who = ", ".join(repr(u) for u in strangers[:3]) + (" and others" if len(strangers) > 3 else "")
            plural = "s" if len(strangers) != 1 else ""
            return f"account{plural} {who}, not created by the demo"
    if "audit_log" in names:
        rows = conn.execute(
            text(
                "SELECT username, CASE WHEN entity = 'security' THEN 1 ELSE 0 END, count(*) FROM audit_log "
                "WHERE username <> :user OR reason NOT LIKE :reason GROUP BY 1, 2"
            ),
            demo,
        ).all()
        counts: dict[str, int] = {}
        for username, security, n in rows:
            if str(username) not in made_by_demo and not security:
                counts[str(username)] = counts.get(str(username), 0) + int(n)
        if counts:
            other = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            n = sum(counts.values())
            who = ", ".join(name for name, _ in other[:3]) + (" and others" if len(other) > 3 else "")
            return f"{n:,} audit record{'s' if n != 1 else ''} written by {who}, not by the demo generator"
    if audited == 0:
        for name in sorted((names & known) - _BOOKKEEPING - {"audit_log", *SECURITY_TABLES}):
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
    lines = [f"export ABSCOPAL_DATABASE_URL={shlex.quote(shown)}", "abscopal audit verify", "abscopal serve"]
    return lines


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: a free port), or a sentence saying why it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        what = f"port {port}" if port else "a free port"
        raise ValidationError("--port", f"cannot listen on {what} of {host} ({exc.strerror or exc})") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def server_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def _summary(url: str, seed: int) -> None:
    from abscopal.store.repository import Repository

    engine = make_engine(url, read_only=True)
    try:
        with engine.connect() as conn:
            repo = Repository(conn)
            counts = repo.counts()
            by_status = repo.patients_by_status()
            by_site: dict[str, int] = dict(
                conn.execute(
                    text("SELECT site_code, count(*) FROM patients WHERE removed_reason IS NULL GROUP BY site_code")
                ).all()
            )
    finally:
        engine.dispose()
    table = Table(title=f"Demo cohort (seed {seed})", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    for code, n in sorted(by_site.items()):
        table.add_row(f"patients at {code}", f"{int(n):,}")
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


def _accounts_table(people: tuple[DemoAccount, ...], password: str, generated: bool) -> None:
    from abscopal.synth.staff import SECOND_SITE, SITE

    table = Table(
        title="Demo users (one password for all)",
        caption=f"{SITE.code}: {SITE.name}; {SECOND_SITE.code}: {SECOND_SITE.name}; *: every site",
        show_header=True,
    )
    for column in ("username", "role", "site", "name"):
        table.add_column(column)
    for a in people:
        role = "investigator (site PI)" if a.pi else a.role.value.replace("_", " ")
        if a.subject_id is not None:
            role = f"patient {a.subject_id}"
        table.add_row(a.username, role, a.site, a.full_name)
    console.print(table)
    console.print(
        f"Password: {password}"
        + ("  (generated now and shown only here; --demo-password PW fixes it)" if generated else ""),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


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
        serve: Annotated[
            bool | None,
            typer.Option(
                "--serve/--no-serve",
                help="Serve the web app afterwards (default: when run in a terminal or given --port; "
                "--no-serve: build, summarise and exit).",
            ),
        ] = None,
        host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")] = (
            "127.0.0.1"
        ),
        port: Annotated[
            int, typer.Option("--port", help="Port to listen on (default: a free one).", min=0, max=65535)
        ] = 0,
        password: Annotated[
            str | None,
            typer.Option(
                "--demo-password",
                help="The demo users' password (at least 12 characters; default: a random one, printed once).",
            ),
        ] = None,
        start_date: Annotated[
            dt.datetime | None,
            typer.Option(
                "--start-date",
                formats=["%Y-%m-%d"],
                help="The synthetic trial's first day (default: two years before today, so that the cohort's "
                "visits are due and overdue around today, as the dashboard shows them; the protocol's own start "
                "is 2022-12-31).",
            ),
        ] = None,
    ) -> None:
        """Create a demo database (synthetic cohort at two sites, one account per role) and serve the web app.

        The demo database is rebuilt each time; a database holding anything but a demo is refused. It prints
        the address, the demo users and their password; sign in as any of them. Ctrl-C stops the server.
        It serves when run in a terminal or given --port; from a script, say --serve or --no-serve. Examples:

            abscopal demo --patients 50 --port 8080

            abscopal demo --no-serve   (build, summarise and exit; serve later with `abscopal serve`)
        """
        url = database_url or default_demo_url()
        if not url.startswith(("sqlite", "postgresql")):
            raise ValidationError("--database-url", "must start with sqlite:/// or postgresql+psycopg://")
        chosen = demo_password(password)
        if serve is None:  # scripts and pipelines that ran `abscopal demo` before it served keep finishing
            serve = port != 0 or (sys.stdin.isatty() and sys.stdout.isatty())
        sock = bind_socket(host, port) if serve else None  # a taken port is refused before anything is built
        try:
            first = start_date.date() if start_date else demo_start_date(dt.date.today())
            build_demo_database(url, patients, seed, sites=2, start_date=first)
            people = create_demo_accounts(url, chosen, seed)
            _summary(url, seed)
            _accounts_table(people, chosen, generated=password is None)
            if sock is not None:
                _serve(url, sock, host)
        finally:
            if sock is not None:
                sock.close()


def _serve(url: str, sock: socket.socket, host: str) -> None:
    import uvicorn

    from abscopal.web.app import create_app

    application = create_app(url, demo=True, serving=True)
    address = server_url(host, sock.getsockname()[1])
    console.print(
        f"Abscopal is running at {address} — open it and sign in as one of the users above. Ctrl-C stops it.",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    sys.stdout.flush()
    server = uvicorn.Server(uvicorn.Config(application, log_level="warning", access_log=False))
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn stops on SIGINT, then raises it again for us
        server.run(sockets=[sock])
    console.print("Stopped.", markup=False, highlight=False)
