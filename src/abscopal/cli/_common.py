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


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Decorator for commands: an :class:`AbscopalError` becomes one sentence and exit code 1."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except AbscopalError as exc:
            raise fail(str(exc)) from None

    return wrapper


def print_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout (plain, no colour, so that it pipes into jq)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
