"""Settings in one place (FastAPI-template style): environment variables prefixed ``ABSCOPAL_``."""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_data_dir
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_database_url() -> str:
    """SQLite file under the user's data directory (``~/.local/share/abscopal/abscopal.sqlite`` on Linux)."""
    return f"sqlite:///{Path(user_data_dir('abscopal', appauthor=False)) / 'abscopal.sqlite'}"


class Settings(BaseSettings):
    """``ABSCOPAL_DATABASE_URL`` overrides the embedded SQLite database (e.g. ``postgresql+psycopg://...``)."""

    model_config = SettingsConfigDict(env_prefix="ABSCOPAL_", extra="ignore")

    database_url: str = ""
    user: str = "system"
    host: str = "127.0.0.1"
    port: int = 8000

    def resolved_database_url(self) -> str:
        return self.database_url or default_database_url()
