"""``abscopal export define``: define.xml 2.1 (and its HTML page) for an SDTM export folder (interop.md §3, §7)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from abscopal.cli._common import console, user_errors
from abscopal.errors import ValidationError


def _created(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            "--created", f"{value!r} is not a date and time; use YYYY-MM-DDTHH:MM:SS, e.g. 2025-07-01T09:00:00"
        ) from None


def register(app: typer.Typer) -> None:
    """Add ``export define`` to ``app``."""

    @app.command("define")
    @user_errors
    def define(
        sdtm: Annotated[Path, typer.Option("--sdtm", help="The folder written by `abscopal export sdtm`.")],
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="define.xml to write (default: DIR/define.xml).")
        ] = None,
        context: Annotated[
            str, typer.Option("--context", help="submission (every term needs an NCI C-code) or other.")
        ] = "other",
        created: Annotated[
            str | None,
            typer.Option("--created", help="CreationDateTime (default: the manifest's, so reruns are identical)."),
        ] = None,
        html: Annotated[
            bool, typer.Option("--html/--no-html", help="Also write define.html beside it for reviewers.")
        ] = True,
    ) -> None:
        """Write define.xml 2.1 for the SDTM datasets in a folder (checked against its manifest.json).

        Example: abscopal export define --sdtm out/sdtm --context other
        """
        from abscopal.interop.define import write_define, write_define_html
        from abscopal.interop.define.folder import read_folder
        from abscopal.protocol.model import load_bundled

        contexts = {"submission": "Submission", "other": "Other"}
        if context.lower() not in contexts:
            raise ValidationError("--context", f"{context!r} is not submission or other")
        protocols = load_bundled()
        folder = read_folder(sdtm, protocols)
        when = _created(created) or folder.created or dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
        path = output or sdtm / "define.xml"
        write_define(
            folder.datasets,
            protocols=protocols,
            created=when,
            context="Submission" if contexts[context.lower()] == "Submission" else "Other",
            leaf_format=folder.leaf_format,
            path=path,
        )
        console.print(f"Wrote {path} ({len(folder.datasets)} datasets, context {contexts[context.lower()]}).")
        if html:
            page = write_define_html(path, path.with_suffix(".html"))
            console.print(f"Wrote {page}.")
