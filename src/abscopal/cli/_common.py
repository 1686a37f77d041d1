"""What every CLI command shares: one console, and turning typed errors into one sentence and an exit code."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from abscopal.errors import AbscopalError

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as one red sentence on stderr and return the Exit to raise."""
    err_console.print(f"[bold red]Error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


_DATABASE_MODULES = ("sqlalchemy", "sqlite3", "psycopg", "alembic")


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Decorator for commands: an :class:`AbscopalError` becomes one sentence and exit code 1.

    A database error that escaped the store (SQLAlchemy, sqlite3, psycopg) becomes its typed sentence too
    (:func:`abscopal.store.database.database_error`), never a driver traceback.
    """

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except AbscopalError as exc:
            raise fail(str(exc)) from None
        except Exception as exc:
            if not type(exc).__module__.startswith(_DATABASE_MODULES):
                raise
            from abscopal.store.database import database_error  # only now: keeps CLI start-up light

            raise fail(str(database_error(exc))) from None

    return wrapper


def print_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout (plain, no colour, so that it pipes into jq)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
