"""The ``abscopal`` command: one sub-command group per area of the trial.

Every command validates its input and turns errors into one sentence (see ``_common.user_errors``);
``main`` is the last guard so that no traceback reaches a user.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from abscopal.cli._common import err_console
from abscopal.errors import AbscopalError

app = typer.Typer(
    name="abscopal",
    help=(
        "Run the NCT05906329 radiotherapy + immunotherapy trial: protocol, eligibility, radiotherapy, "
        "tumour response, safety, quality of life, statistics and reports.\n\n"
        "Start with `abscopal demo` to create a database with a synthetic cohort."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# (module, command-group name or None for top-level commands). Each module defines ``app`` (a Typer group)
# or ``register(app)`` for top-level commands.
_AREAS: list[tuple[str, str | None]] = [
    ("abscopal.cli.db", "db"),
    ("abscopal.cli.protocol", "protocol"),
    ("abscopal.cli.audit", "audit"),
    ("abscopal.cli.demo", None),
    ("abscopal.cli.eligibility", "eligibility"),
    ("abscopal.cli.rt", "rt"),
    ("abscopal.cli.schedule", None),
    ("abscopal.cli.response", "response"),
    ("abscopal.cli.qol", "qol"),
    ("abscopal.cli.ae", "ae"),
    ("abscopal.cli.stats", "stats"),
    ("abscopal.cli.design", "design"),
    ("abscopal.cli.report", None),
]

for _module_name, _group in _AREAS:
    try:
        _module = importlib.import_module(_module_name)
    except ModuleNotFoundError as _exc:  # an area not built yet
        if _exc.name != _module_name:
            raise
        continue
    if _group is None:
        _module.register(app)
    else:
        app.add_typer(_module.app, name=_group)


def main() -> None:
    """Entry point: run the app; any error that escapes a command becomes a sentence, never a traceback."""
    try:
        app()
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
