"""Commands of `abscopal import` for this format: not written yet (issue 13)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app`` (none yet)."""
