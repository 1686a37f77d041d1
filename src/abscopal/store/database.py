"""Connecting to the trial database: SQLite (embedded default, WAL, foreign keys on) or PostgreSQL.

Writers on SQLite start every transaction with ``BEGIN IMMEDIATE`` and wait up to the busy timeout
(``ABSCOPAL_SQLITE_BUSY_TIMEOUT_MS``) for the write lock, so concurrent writers queue instead of failing
half-way (SQLite docs, "Transaction" §2; SQLAlchemy's pysqlite recipe "Enabling Non-Legacy SQLite Transactional
Modes"). Read-only engines (``read_only=True``) open SQLite with ``mode=ro`` and ``PRAGMA query_only`` and
PostgreSQL with ``default_transaction_read_only``, and begin with a deferred ``BEGIN``: they never take the write
lock. Bad URLs, missing folders, unreachable servers, corrupt files and driver errors become an
:class:`~abscopal.errors.AbscopalError` sentence (:func:`database_error`), never a driver traceback.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError, SQLAlchemyError

from abscopal.errors import (
    AbscopalError,
    DatabaseBusy,
    DuplicateRecord,
    MissingParent,
    StoreError,
    ValidationError,
)
from abscopal.settings import Settings, default_data_dir

#: Execution option naming how a SQLite transaction begins on this connection, e.g.
#: ``engine.connect().execution_options(**{BEGIN_OPTION: "DEFERRED"})`` for a long read inside a writer process.
BEGIN_OPTION = "abscopal_sqlite_begin"
BeginMode = Literal["DEFERRED", "IMMEDIATE", "EXCLUSIVE"]
_BEGIN_MODES = ("DEFERRED", "IMMEDIATE", "EXCLUSIVE")


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (safe to print or log)."""
    return _redact(url)


def is_in_memory(url: str) -> bool:
    """True for ``sqlite://``, ``sqlite:///`` and ``sqlite:///:memory:``: a database that vanishes on exit."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return False
    if parsed.get_backend_name() != "sqlite":
        return False
    database = parsed.database or ""
    return database in ("", ":memory:") or "mode=memory" in database or parsed.query.get("mode") == "memory"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other backends and in-memory databases)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or is_in_memory(url):
        return None
    database = parsed.database or ""
    if database.startswith("file:"):  # an SQLite URI filename (uri=true)
        database = database.removeprefix("file:").split("?", 1)[0]
    return Path(database).expanduser()


def make_engine(
    url: str | None = None,
    *,
    check: bool = True,
    read_only: bool = False,
    allow_memory: bool = False,
    busy_timeout_ms: int | None = None,
) -> Engine:
    """Create an engine for ``url`` (default: settings); with ``check``, prove the database answers.

    - SQLite: WAL, ``foreign_keys=ON``, ``synchronous=FULL``, busy timeout ``busy_timeout_ms`` (default the
      setting ``ABSCOPAL_SQLITE_BUSY_TIMEOUT_MS``); every transaction begins ``IMMEDIATE`` (the connection's
      :data:`BEGIN_OPTION` execution option can ask for ``DEFERRED``). The file's folder must exist, except the
      default data directory, which is created.
    - ``read_only``: nothing can be written (SQLite ``mode=ro`` + ``query_only``; PostgreSQL
      ``default_transaction_read_only``); transactions begin ``DEFERRED``; the SQLite file must exist.
    - An in-memory SQLite database is refused unless ``allow_memory`` (it would vanish when the command ends).
    """
    settings = _settings()
    url = url or settings.resolved_database_url()
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"The database URL {url!r} is not valid; expected e.g. sqlite:///path/abscopal.sqlite or "
            "postgresql+psycopg://user:password@host:5432/dbname"
        ) from None
    kwargs: dict[str, Any] = {}
    backend = parsed.get_backend_name()
    timeout_ms = settings.sqlite_busy_timeout_ms if busy_timeout_ms is None else busy_timeout_ms
    if backend == "sqlite":
        parsed = _sqlite_url(url, parsed, read_only=read_only, allow_memory=allow_memory)
        kwargs["connect_args"] = {"timeout": timeout_ms / 1000}
    elif backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        from abscopal.store.pg_cursor import LazyDescriptionCursor

        connect_args: dict[str, Any] = {"connect_timeout": 5, "cursor_factory": LazyDescriptionCursor}
        if read_only:
            connect_args["options"] = "-c default_transaction_read_only=on"
        kwargs["connect_args"] = connect_args
    else:
        raise StoreError(
            f"The database URL {_redact(url)!r} names {backend!r}; Abscopal supports sqlite and postgresql"
        )
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ArgumentError) as exc:
        raise StoreError(f"The database URL {_redact(url)!r} cannot be used: {exc}") from None
    if engine.dialect.name == "sqlite":
        _install_sqlite_transactions(engine, read_only=read_only, busy_timeout_ms=timeout_ms)
    else:
        _install_idle_ping(engine)
    if check:
        try:
            with engine.connect() as conn:
                if backend == "sqlite":  # a read: opening an engine does not queue behind the writers for the lock
                    conn.execution_options(**{BEGIN_OPTION: "DEFERRED"})
                # reading the schema makes SQLite read the file header, so a file that is not a database shows here
                conn.execute(text("SELECT count(*) FROM sqlite_master" if backend == "sqlite" else "SELECT 1"))
        except (SQLAlchemyError, sqlite3.Error) as exc:
            engine.dispose()
            raise database_error(exc, url=url) from None
    return engine


def _settings() -> Settings:
    try:
        return Settings()
    except PydanticValidationError as exc:
        problems = "; ".join(f"ABSCOPAL_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise ValidationError("settings", problems) from None


def _sqlite_url(url: str, parsed: URL, *, read_only: bool, allow_memory: bool) -> URL:
    if is_in_memory(url):
        if not allow_memory:
            raise StoreError(
                f"The database URL {url!r} is an in-memory SQLite database, which is empty and vanishes when the "
                "command ends; give a file, e.g. sqlite:///trial.sqlite"
            )
        return parsed
    path = sqlite_path(url)
    assert path is not None
    folder = path.parent if path.parent != Path("") else Path(".")
    if not folder.is_dir():
        if folder.resolve() == default_data_dir().resolve() and not read_only:
            folder.mkdir(parents=True, exist_ok=True)
        elif folder.exists():
            raise StoreError(f"Cannot use the SQLite database {path}: {folder} is not a folder")
        else:
            raise StoreError(
                f"Cannot use the SQLite database {path}: the folder {folder} does not exist; create it first "
                "(only the default data directory is created automatically)"
            )
    if read_only:
        if not path.is_file():
            raise StoreError(
                f"There is no database at {path}; create it with `abscopal db upgrade` (or `abscopal demo`)"
            )
        query = {k: v for k, v in parsed.query.items() if k not in ("mode", "uri")}
        return parsed.set(database=f"file:{quote(str(path.resolve()))}", query={**query, "mode": "ro", "uri": "true"})
    return parsed


#: A pooled PostgreSQL connection left unused longer than this (seconds) is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 5.0


def _install_idle_ping(engine: Engine) -> None:
    """SQLAlchemy's pre-ping, for connections that sat idle in the pool for :data:`PING_AFTER_IDLE_SECONDS`.

    A connection found dead (a restarted or failed-over server, a firewall's timeout) is replaced, with every
    connection older than it, before the caller sees it, as ``pool_pre_ping`` does; one in constant use is not
    pinged, since each ping is a round trip and two a request were ~4 % of the web server's CPU under load
    (docs/benchmarks.md). A server that dies while a connection is in use fails that statement with the typed
    "database unavailable" sentence either way. Uses the pool's documented ``checkin``/``checkout`` events.
    """
    from sqlalchemy.exc import InvalidatePoolError

    dialect = engine.dialect

    @event.listens_for(engine.pool, "checkin")
    def _idle_from(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None and record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return  # a new connection, or one in use a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise InvalidatePoolError(f"a pooled connection was found dead: {exc}") from exc
            raise


def _install_sqlite_transactions(engine: Engine, *, read_only: bool, busy_timeout_ms: int) -> None:
    default_begin: BeginMode = "DEFERRED" if read_only else "IMMEDIATE"

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy's recipe: stop pysqlite from emitting its own (deferred, DML-only) BEGIN; we emit ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            if read_only:
                cursor.execute("PRAGMA query_only=ON")
            else:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=FULL")
        finally:
            cursor.close()

    def on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        mode = str(options.get(BEGIN_OPTION, default_begin)).upper()
        if mode not in _BEGIN_MODES:
            raise StoreError(f"{BEGIN_OPTION} must be one of {', '.join(_BEGIN_MODES)}, not {mode!r}")
        if read_only and mode != "DEFERRED":
            mode = "DEFERRED"  # a read-only connection never asks for the write lock
        conn.exec_driver_sql(f"BEGIN {mode}")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)


# --- errors -------------------------------------------------------------------------------------------------

_PG_BUSY = {"40001", "40P01", "55P03", "55006", "57014"}  # serialization, deadlock, lock/object busy, lock timeout
_SQLITE_BUSY = {"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY_RECOVERY", "SQLITE_BUSY_TIMEOUT"}


def database_error(exc: BaseException, *, url: str | None = None) -> AbscopalError:
    """The typed, user-facing error for a SQLAlchemy or driver error (``raise database_error(e) from None``).

    :class:`DatabaseBusy` for locks held past the timeout, deadlocks and serialisation failures;
    :class:`DuplicateRecord` for unique violations; :class:`MissingParent` for foreign-key violations;
    :class:`StoreError` otherwise (read-only database, not a database, unreachable server). An
    :class:`AbscopalError` is returned unchanged. ``url`` (password hidden) names the database in the sentence.
    """
    if isinstance(exc, AbscopalError):
        return exc
    orig: BaseException | None = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(orig, DBAPIError):  # pragma: no cover - defensive (wrapped twice)
        orig = orig.orig
    where = f" at {_redact(url)}" if url else ""
    first_line = (str(orig) if orig is not None else str(exc)).strip().splitlines()
    detail = first_line[0] if first_line else exc.__class__.__name__
    if isinstance(orig, sqlite3.Error):
        return _sqlite_error(orig, detail, where)
    sqlstate = getattr(orig, "sqlstate", None)
    if orig is not None and isinstance(sqlstate, str):
        return _postgres_error(orig, sqlstate, detail, where)
    if isinstance(exc, OperationalError):  # the driver could not connect (refused, timed out, unknown host)
        return StoreError(f"Cannot reach the database{where}: {detail}")
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return StoreError(f"Lost the connection to the database{where}; nothing was saved. Try again ({detail})")
    return StoreError(f"The database{where} refused the operation; nothing was saved ({detail})")


def _sqlite_error(orig: sqlite3.Error, detail: str, where: str) -> AbscopalError:
    name = getattr(orig, "sqlite_errorname", "") or ""
    low = detail.lower()
    if name in _SQLITE_BUSY or name.startswith("SQLITE_BUSY") or "database is locked" in low or "is locked" in low:
        return DatabaseBusy(
            f"The database{where} stayed locked by other writers for longer than the busy timeout "
            "(ABSCOPAL_SQLITE_BUSY_TIMEOUT_MS); nothing was saved. Try again in a moment"
        )
    if name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY") or "unique constraint failed" in low:
        columns = detail.split(":", 1)[1].strip() if ":" in detail else ""
        what = f" (same {columns})" if columns else ""
        return DuplicateRecord(f"Nothing was saved: a record with the same identity already exists{what}")
    if name == "SQLITE_CONSTRAINT_FOREIGNKEY" or "foreign key constraint failed" in low:
        return MissingParent(
            "Nothing was saved: a record refers to something that does not exist (e.g. an unknown patient, "
            "lesion or assessment)"
        )
    if name == "SQLITE_CONSTRAINT_NOTNULL" or "not null constraint failed" in low:
        column = detail.split(":", 1)[1].strip() if ":" in detail else "a column"
        return StoreError(f"Nothing was saved: a required value is missing ({column})")
    if name.startswith("SQLITE_CONSTRAINT"):
        return StoreError(f"Nothing was saved: a value breaks a rule of the database ({detail})")
    if name.startswith("SQLITE_READONLY") or "readonly database" in low or "read-only" in low:
        return StoreError(
            f"The database{where} was opened read-only (or its file cannot be written); nothing was saved"
        )
    if name == "SQLITE_NOTADB" or "not a database" in low or name.startswith("SQLITE_CORRUPT") or "malformed" in low:
        return StoreError(
            f"The file{where} is not a usable SQLite database (corrupt, or some other kind of file); "
            "check the path, or restore it from a backup"
        )
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in low:
        return StoreError(f"Cannot open the SQLite database{where}: check that the path and its folder exist")
    if name == "SQLITE_FULL" or "disk is full" in low:
        return StoreError(f"The disk holding the database{where} is full; nothing was saved")
    return StoreError(f"The SQLite database{where} refused the operation; nothing was saved ({detail})")


def _postgres_error(orig: BaseException, sqlstate: str, detail: str, where: str) -> AbscopalError:
    diag = getattr(orig, "diag", None)
    table = getattr(diag, "table_name", None)
    key = getattr(diag, "message_detail", None)
    in_table = f" in {table}" if table else ""
    if sqlstate == "23505":
        more = f" ({key.rstrip('.')})" if key else ""
        return DuplicateRecord(f"Nothing was saved: a record with the same identity already exists{in_table}{more}")
    if sqlstate == "23503":
        more = f" ({key.rstrip('.')})" if key else ""
        return MissingParent(
            f"Nothing was saved: a record{in_table} refers to something that does not exist (e.g. an unknown "
            f"patient, lesion or assessment){more}"
        )
    if sqlstate in _PG_BUSY:
        return DatabaseBusy(
            f"The database{where} could not finish this write because of other writers (lock timeout, deadlock or "
            "serialisation failure); nothing was saved. Try again in a moment"
        )
    if sqlstate == "23502":
        column = getattr(diag, "column_name", None) or "a column"
        return StoreError(f"Nothing was saved: a required value is missing ({column}{in_table})")
    if sqlstate.startswith("23"):
        return StoreError(f"Nothing was saved: a value breaks a rule of the database{in_table} ({detail})")
    if sqlstate == "25006":
        return StoreError(f"The database{where} was opened read-only; nothing was saved")
    if sqlstate.startswith("08") or sqlstate.startswith("57P"):
        return StoreError(f"Cannot reach the database{where}: {detail}")
    if sqlstate.startswith("28"):
        return StoreError(f"The database{where} refused the user name or password: {detail}")
    if sqlstate == "3D000":
        return StoreError(f"The database{where} does not exist: {detail}")
    return StoreError(f"The database{where} refused the operation; nothing was saved ({detail})")


# --- schema ---------------------------------------------------------------------------------------------------


def schema_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at, or None for an empty database."""
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError as exc:
        raise StoreError(f"Cannot read the database schema version: {database_error(exc)}") from None


def require_schema(engine: Engine) -> None:
    """Refuse to work on a database that has not been created by ``abscopal db upgrade``."""
    from abscopal.store.migrate import head_revision

    current = schema_revision(engine)
    head = head_revision()
    if current is None:
        raise StoreError("The database is empty; run `abscopal db upgrade` (or `abscopal demo`) first")
    if current != head:
        raise StoreError(
            f"The database schema is at {current} but this Abscopal needs {head}; run `abscopal db upgrade`"
        )
