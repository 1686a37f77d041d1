"""The ``abscopal`` command: one sub-command group per area of the trial.

Every command validates its input and turns errors into one sentence (see ``_common.user_errors``);
``main`` is the last guard so that no traceback reaches a user. ``main`` imports only the area a command
belongs to (the areas pull in scipy, matplotlib, WeasyPrint...), so every command starts quickly;
``abscopal.cli.app`` is the full application, built on first use (for ``--help`` and tests).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import typer

from abscopal import __version__
from abscopal.cli._common import err_console
from abscopal.errors import AbscopalError

HELP = (
    "Run the NCT05906329 radiotherapy + immunotherapy trial: protocol, eligibility, radiotherapy, "
    "tumour response, safety, quality of life, statistics and reports.\n\n"
    "Start with `abscopal demo` to create a database with a synthetic cohort."
)

# (command name, module, is a group). A group module defines ``app`` (a Typer); a top-level command
# module defines ``register(app)``.
AREAS: list[tuple[str, str, bool]] = [
    ("demo", "abscopal.cli.demo", False),
    ("serve", "abscopal.cli.serve", False),
    ("user", "abscopal.cli.users", True),
    ("site", "abscopal.cli.sites", True),
    ("db", "abscopal.cli.db", True),
    ("audit", "abscopal.cli.audit", True),
    ("protocol", "abscopal.cli.protocol", True),
    ("eligibility", "abscopal.cli.eligibility", True),
    ("rt", "abscopal.cli.rt", True),
    ("schedule", "abscopal.cli.schedule", False),
    ("response", "abscopal.cli.response", True),
    ("qol", "abscopal.cli.qol", True),
    ("ae", "abscopal.cli.ae", True),
    ("stats", "abscopal.cli.stats", True),
    ("design", "abscopal.cli.design", True),
    ("report", "abscopal.cli.report", False),
    ("export", "abscopal.cli.export", True),
    ("import", "abscopal.cli.imports", True),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"abscopal {__version__}")
        raise typer.Exit()


def build_app(only: str | None = None) -> typer.Typer:
    """The Typer application with every area, or with the one area named ``only``."""
    application = typer.Typer(
        name="abscopal", help=HELP, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="rich"
    )

    @application.callback()
    def _root(
        version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    ) -> None:
        """Keeps sub-commands as sub-commands even when only one area is loaded."""

    for name, module_name, is_group in AREAS:
        if only is not None and name != only:
            continue
        module = importlib.import_module(module_name)
        if is_group:
            application.add_typer(module.app, name=name)
        else:
            module.register(application)
    return application


_full_app: typer.Typer | None = None


def __getattr__(name: str) -> Any:
    if name == "app":
        global _full_app
        if _full_app is None:
            _full_app = build_app()
        return _full_app
    raise AttributeError(name)


def _command_of(argv: list[str]) -> str | None:
    names = {name for name, _, _ in AREAS}
    first = next((a for a in argv if not a.startswith("-")), None)
    return first if first in names else None


def main() -> None:
    """Entry point: run the app; any error that escapes a command becomes a sentence, never a traceback."""
    try:
        build_app(_command_of(sys.argv[1:]))()
    except AbscopalError as exc:
        err_console.print(f"[bold red]Error:[/] {exc}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("Interrupted; nothing further was written.")
        sys.exit(130)
    except Exception as exc:  # last guard: a bug, said plainly, with the way to see details
        if os.environ.get("ABSCOPAL_DEBUG"):
            raise
        detail = (str(exc).strip().splitlines() or [""])[0][:300]
        err_console.print(
            f"[bold red]Internal error:[/] {exc.__class__.__name__}: {detail}. "
            "This is a bug in Abscopal; set ABSCOPAL_DEBUG=1 to see the traceback.",
            highlight=False,
        )
        sys.exit(2)
