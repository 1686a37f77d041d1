"""Connecting to the trial database: SQLite (embedded default, WAL, foreign keys on) or PostgreSQL.

Bad URLs and unreachable servers become a :class:`StoreError` sentence, never a driver traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError

from abscopal.errors import StoreError
from abscopal.settings import Settings


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def make_engine(url: str | None = None, *, check: bool = True) -> Engine:
    """Create an engine for ``url`` (default: settings); with ``check``, prove the server answers."""
    url = url or Settings().resolved_database_url()
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"The database URL {url!r} is not valid; expected e.g. sqlite:///path/abscopal.sqlite or "
            "postgresql+psycopg://user:password@host:5432/dbname"
        ) from None
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    elif parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs["connect_args"] = {"connect_timeout": 5}
        kwargs["pool_pre_ping"] = True
    else:
        raise StoreError(
            f"The database URL {_redact(url)!r} names {parsed.get_backend_name()!r}; Abscopal supports "
            "sqlite and postgresql"
        )
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ArgumentError) as exc:
        raise StoreError(f"The database URL {_redact(url)!r} cannot be used: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if check:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StoreError(f"Cannot reach the database at {_redact(url)}: {reason}") from None
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def schema_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at, or None for an empty database."""
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError as exc:
        raise StoreError(f"Cannot read the database schema version: {exc.__class__.__name__}") from None


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
