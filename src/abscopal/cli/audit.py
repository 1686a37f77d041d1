"""``abscopal audit``: verify the HMAC-chained audit trail, sign checkpoints, and show a record's history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import Connection, select

from abscopal.cli._common import console, fail, print_json, user_errors
from abscopal.errors import InputFileError, NotFound, Problem, ValidationError
from abscopal.settings import Settings
from abscopal.store.audit import checkpoint, history, verify
from abscopal.store.audit_key import load_key
from abscopal.store.database import make_engine, require_schema
from abscopal.store.tables import ENTITIES

app = typer.Typer(
    help="Verify the audit trail, sign a checkpoint of it, and read the history of a record.", no_args_is_help=True
)

UrlOpt = Annotated[
    str | None, typer.Option("--database-url", envvar="ABSCOPAL_DATABASE_URL", help="Database URL (default: SQLite).")
]


def _read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(str(path), [Problem(None, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(str(path), [Problem(None, "", f"is not a checkpoint file ({exc})")]) from None
    if not isinstance(data, dict):
        raise InputFileError(str(path), [Problem(None, "", "is not a checkpoint file (expected a JSON object)")])
    return data


@app.command("verify")
@user_errors
def verify_cmd(
    database_url: UrlOpt = None,
    checkpoint_file: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="A statement from `abscopal audit checkpoint`: also detect a rollback."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Check the head, every audit record's HMAC chain, then every trial-data row against the trail.

    Exit 0 when intact; exit 1 naming each finding (the first 50, then how many more of each kind).

    Example: abscopal audit verify --checkpoint ~/checkpoints/2026-12-01.json
    """
    engine = make_engine(database_url or Settings().resolved_database_url(), read_only=True)
    require_schema(engine)
    key = load_key(engine.url, create=False)
    statement = _read_checkpoint(checkpoint_file) if checkpoint_file is not None else None
    with console.status("Verifying the audit trail…"), engine.connect() as conn:
        report = verify(conn, key, checkpoint_statement=statement)
    if as_json:
        print_json(
            {
                "ok": report.ok,
                "records": report.records,
                "rows": report.rows,
                "total_findings": report.total,
                "findings_by_kind": report.by_kind,
                "findings": [f.__dict__ for f in report.findings],
            }
        )
        if not report.ok:
            raise typer.Exit(1)
        return
    if report.ok:
        extra = " and extend the checkpoint" if statement is not None else ""
        console.print(
            f"[green]Intact:[/] {report.records:,} audit records chain correctly and match {report.rows:,} data "
            f"rows{extra}."
        )
        return
    for finding in report.findings:
        console.print(f"[red]✗[/] {finding.message}", highlight=False)
    if report.not_shown:
        kinds = ", ".join(f"{n:,} {k}" for k, n in sorted(report.by_kind.items()))
        console.print(f"… and {report.not_shown:,} more ({kinds} in all)", highlight=False)
    raise fail(f"the audit trail has {report.total:,} problem(s); see above")


@app.command("checkpoint")
@user_errors
def checkpoint_cmd(
    database_url: UrlOpt = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the statement to this file (default: print it).")
    ] = None,
) -> None:
    """Print a signed statement of the trail's head (sequence, hash, row counts, time) to keep OUTSIDE the database.

    Later, `abscopal audit verify --checkpoint FILE` detects any rollback or truncation since.

    Example: abscopal audit checkpoint -o ~/checkpoints/$(date +%F).json
    """
    engine = make_engine(database_url or Settings().resolved_database_url(), read_only=True)
    require_schema(engine)
    key = load_key(engine.url, create=False)
    with engine.connect() as conn:
        statement = checkpoint(conn, key)
    text = json.dumps(statement, indent=2, sort_keys=True)
    if output is None:
        console.print_json(text)
        return
    try:
        output.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise ValidationError("--output", f"cannot write {output} ({exc.strerror})") from None
    console.print(f"Checkpoint of record {statement['seq']:,} written to {output}.")


def _resolve(conn: Connection, entity: str, key: str) -> str:
    """A record id from an id or a natural key written with slashes (``QFS-000002/L1``)."""
    e = ENTITIES.get(entity)
    if e is None:
        raise ValidationError("ENTITY", f"{entity!r} is not a table; one of {', '.join(ENTITIES)}")
    if conn.execute(select(e.table.c.id).where(e.table.c.id == key)).first() is not None:
        return key
    own = [c for c in e.natural_key if c != e.parent_column]
    parts = key.split("/", len(own) - 1) if own else []
    if len(parts) == len(own) and e.parent_column is None:
        query = select(e.table.c.id)
        for col, value in zip(own, parts, strict=True):
            column = e.table.c[col]
            query = query.where(column.cast(e.table.c.id.type) == value)
        found = conn.execute(query.order_by(e.table.c.id.desc()).limit(1)).scalar()
        if found is not None:
            return str(found)
    return key


@app.command("history")
@user_errors
def history_cmd(
    entity: Annotated[str, typer.Argument(help="Table, e.g. patients, lesions, adverse_events.")],
    key: Annotated[
        str,
        typer.Argument(help="The record's id, or its natural key joined with '/': QFS-000002, QFS-000002/L01."),
    ],
    database_url: UrlOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the changes as JSON.")] = False,
) -> None:
    """Every change to one record: who, when, which field, old and new value, version, and why.

    Examples (on the demo database):

      abscopal audit history patients QFS-000002

      abscopal audit history lesions QFS-000002/L01

      abscopal audit history adverse_events QFS-000002/QFS-000002-AE01

      abscopal audit history tumour_assessments QFS-000002/2023-05-20
    """
    engine = make_engine(database_url or Settings().resolved_database_url(), read_only=True)
    require_schema(engine)
    with engine.connect() as conn:
        record_id = _resolve(conn, entity, key)
        rows = history(conn, entity, record_id)
    if not rows:
        raise NotFound(f"No audit records for {entity} {key!r} (give the record's id or its natural key)")
    if as_json:
        print_json(
            {
                "entity": entity,
                "id": record_id,
                "changes": [
                    {
                        "seq": r.seq, "at": r.at.isoformat(), "user": r.username, "field": r.field,
                        "old": None if r.old_value is None else json.loads(r.old_value),
                        "new": None if r.new_value is None else json.loads(r.new_value),
                        "version": r.version, "reason": r.reason,
                    }
                    for r in rows
                ],
            }
        )  # fmt: skip
        return
    shown = f"{entity} {key}" + (f" (id {record_id})" if record_id != key else "")
    table = Table("seq", "when (UTC)", "who", title=shown, show_lines=True)
    table.add_column("change", min_width=28, overflow="fold")
    table.add_column("v", justify="right")
    table.add_column("reason", min_width=12)
    for r in rows:
        when = f"{r.at:%Y-%m-%d}\n{r.at:%H:%M:%S}"
        version = "" if r.version is None else str(r.version)
        table.add_row(str(r.seq), when, r.username, _describe(r.field, r.old_value, r.new_value), version, r.reason)
    console.print(table)


def _value(raw: str | None) -> str:
    if raw is None:
        return "∅"
    value = json.loads(raw)
    return "∅" if value is None else str(value)


def _describe(field: str, old: str | None, new: str | None) -> str:
    """One change as a person reads it: "created" with the values, or "field: old → new"."""
    if field == "*" and new is not None:
        values = json.loads(new)
        filled = [f"{k}: {v}" for k, v in values.items() if v not in (None, "", {}, [])]
        return "created\n" + "\n".join(filled)
    if field == "*":
        return "deleted (schema 0001)"
    if field == "removed_reason":
        return f"removed: {_value(new)}" if new not in (None, "null") else "restored"
    return f"{field}: {_value(old)} → {_value(new)}"
