"""Settings in one place (FastAPI-template style): environment variables prefixed ``ABSCOPAL_``."""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """The user's data directory (``~/.local/share/abscopal`` on Linux): the one folder Abscopal creates itself."""
    return Path(user_data_dir("abscopal", appauthor=False))


def default_database_url() -> str:
    """SQLite file under the user's data directory (``~/.local/share/abscopal/abscopal.sqlite`` on Linux)."""
    return f"sqlite:///{default_data_dir() / 'abscopal.sqlite'}"


class Settings(BaseSettings):
    """``ABSCOPAL_DATABASE_URL`` overrides the embedded SQLite database (e.g. ``postgresql+psycopg://...``).

    ``ABSCOPAL_SQLITE_BUSY_TIMEOUT_MS``: how long a SQLite writer waits for another writer to finish before the
    write fails with "database busy" (SQLite's busy timeout; writers queue for up to this long).
    """

    model_config = SettingsConfigDict(env_prefix="ABSCOPAL_", extra="ignore")

    database_url: str = ""
    sqlite_busy_timeout_ms: int = Field(default=10_000, ge=0, le=3_600_000)
    user: str = "system"
    host: str = "127.0.0.1"
    port: int = 8000

    def resolved_database_url(self) -> str:
        return self.database_url or default_database_url()
