"""``abscopal import odm``: restore an Abscopal ODM 1.3.2 file into an empty database, all or nothing (§4)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from abscopal.cli._common import console, user_errors
from abscopal.errors import StoreError


def _read_key(path: Path | None) -> bytes | None:
    if path is None:
        return None  # restore_odm falls back to ABSCOPAL_AUDIT_KEY, or refuses
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise StoreError(f"The audit key file {path} cannot be read ({exc.strerror})") from None
    if len(text) < 32:
        raise StoreError(f"The audit key file {path} is too short to be a key (at least 32 characters)")
    return text.encode("utf-8")


def register(app: typer.Typer) -> None:
    @app.command("odm")
    @user_errors
    def import_odm(
        file: Annotated[Path, typer.Argument(help="An ODM file written by `abscopal export odm` (not --strict).")],
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Check everything, then keep nothing (exit 1 if it would fail).")
        ] = False,
        audit_key_file: Annotated[
            Path | None,
            typer.Option(
                "--audit-key-file",
                help="The original database's audit key file (else ABSCOPAL_AUDIT_KEY); it becomes this one's.",
            ),
        ] = None,
        database_url: Annotated[
            str | None,
            typer.Option("--database-url", envvar="ABSCOPAL_DATABASE_URL", help="Database URL (default: settings)."),
        ] = None,
    ) -> None:
        """Rebuild an EMPTY database (`abscopal db upgrade` on a new one) from an Abscopal ODM file: every record
        and the audit trail verbatim, in one transaction. The trail must verify under the original database's
        audit key, which never travels in the file: give it with --audit-key-file or ABSCOPAL_AUDIT_KEY.

        Example: abscopal import odm trial.odm.xml --audit-key-file old.sqlite.audit-key --database-url sqlite:///new.sqlite
        """
        key = _read_key(audit_key_file)
        from abscopal.interop.odm import restore_odm
        from abscopal.store.database import make_engine

        engine = make_engine(database_url)
        try:
            with console.status("Restoring the ODM file"):
                summary = restore_odm(engine, file, key=key, dry_run=dry_run)
        finally:
            engine.dispose()
        verb = "Would restore" if dry_run else "Restored"
        console.print(
            f"{verb} {summary.subjects} subjects, {sum(summary.rows.values())} records and {summary.records} audit "
            f"records from [bold]{file}[/]; the audit trail verifies."
        )
