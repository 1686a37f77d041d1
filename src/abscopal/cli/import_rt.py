"""``abscopal import rtplan`` / ``rtrecord``: DICOM RT Plans as prescriptions, treatment records as fractions.

The files are checked against the trial record (identity) and the protocol (interop.md §6); a refused import
writes nothing and exits 1 with one sentence; ``--dry-run`` shows what would be recorded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from abscopal.cli._common import console, user_errors
from abscopal.errors import AbscopalError, ValidationError

UserOpt = Annotated[
    str | None,
    typer.Option("--user", envvar="ABSCOPAL_USER", help="Who imports (a radiation oncologist or data manager)."),
]
UrlOpt = Annotated[
    str | None, typer.Option("--database-url", envvar="ABSCOPAL_DATABASE_URL", help="Database URL (default: SQLite).")
]
PatientOpt = Annotated[
    str | None,
    typer.Option("--patient", help="Trial subject id (default: the patient whose hospital ID is PatientID)."),
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show what would be recorded; write nothing.")]
ReportOpt = Annotated[Path | None, typer.Option("--report", help="Also write the outcome as JSON (also when refused).")]


def _write_report(path: Path | None, outcome: object | None, error: Exception | None = None) -> None:
    """The import's outcome (or its refusal) as JSON for scripts (interop.md §7 ``--report``)."""
    if path is None:
        return
    data: dict[str, object] = {"ok": error is None}
    if outcome is not None:
        data["outcome"] = dataclasses.asdict(outcome)  # type: ignore[call-overload]
    if error is not None:
        data["error"] = str(error)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def _user(user: str | None) -> str:
    from abscopal.settings import Settings

    return user or Settings().user


def rtplan(
    file: Annotated[Path, typer.Argument(help="The RT Plan (.dcm).", exists=False)],
    structure_set: Annotated[
        Path | None, typer.Option("--structure-set", help="The plan's RT Structure Set (for the ROI names).")
    ] = None,
    patient: PatientOpt = None,
    map_: Annotated[
        list[str] | None, typer.Option("--map", help="TARGET=LESION: the lesion of a target (repeatable).")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="First treatment day, YYYY-MM-DD (default: RTPlanDate).")
    ] = None,
    allow_unapproved: Annotated[
        bool, typer.Option("--allow-unapproved", help="Accept a plan whose ApprovalStatus is UNAPPROVED.")
    ] = False,
    dry_run: DryRunOpt = False,
    user: UserOpt = None,
    database_url: UrlOpt = None,
    report: ReportOpt = None,
) -> None:
    """Record an RT Plan's targets as radiotherapy courses, checked against the protocol (interop.md §6).

    Each TARGET dose reference becomes one course: dose per fraction = TargetPrescriptionDose / fractions
    planned; the lesion is --map TARGET=LESION, else the ROI name, else the description, equal to a lesion's label.

    Example: abscopal import rtplan RP.1.2.3.dcm --structure-set RS.1.2.3.dcm --map PTV=L01 --dry-run
    """
    from abscopal.interop import dicom_rt
    from abscopal.store.database import make_engine

    try:
        first = dt.date.fromisoformat(start) if start else None
    except ValueError:
        raise ValidationError("--start", f"{start!r} is not a date (YYYY-MM-DD)") from None
    engine = make_engine(database_url)
    try:
        result = dicom_rt.import_plan(
            engine, file, user=_user(user), structure_set=structure_set, patient=patient,
            mapping=dicom_rt.parse_mapping(map_ or []), start=first, allow_unapproved=allow_unapproved, dry_run=dry_run,
        )  # fmt: skip
    except AbscopalError as exc:
        _write_report(report, None, exc)
        raise
    finally:
        engine.dispose()
    _write_report(report, result)
    for w in result.warnings:
        console.print(f"[yellow]Warning:[/] {w}", highlight=False)
    verb = "would record" if dry_run else "recorded"
    for c in result.courses:
        course = c.course
        what = "already recorded (no change)" if c.unchanged else verb
        console.print(
            f"{result.subject_id} lesion {course.lesion_id} ({course.role.value}), target {c.target}: "
            f"{course.dose_per_fraction_gy:.4g} Gy x {course.fractions} = {course.total_dose_gy:.4g} Gy from "
            f"{course.start_date}; BED {c.bed_gy:.4g} Gy, EQD2 {c.eqd2_gy:.4g} Gy "
            f"(α/β {course.alpha_beta_gy:g}): {what}",
            highlight=False,
        )
        for dev in c.deviations:
            console.print(
                f"  deviation ({'would be ' if dry_run else ''}proposed): {dev.check.value} "
                f"{dev.deviation_class.value}: {dev.reason}",
                highlight=False,
            )


def rtrecord(
    files: Annotated[list[Path], typer.Argument(help="RT Beams Treatment Records (.dcm), in any order.")],
    patient: PatientOpt = None,
    dry_run: DryRunOpt = False,
    user: UserOpt = None,
    database_url: UrlOpt = None,
    report: ReportOpt = None,
) -> None:
    """Record RT Beams Treatment Records as delivered fractions of imported plans (interop.md §6).

    Records are applied in treatment date, time and fraction order; one seen before is skipped; two records of
    one fraction, or fraction numbers going down over time, refuse the whole import.

    Example: abscopal import rtrecord RT.*.dcm --dry-run
    """
    from abscopal.interop import dicom_rt
    from abscopal.store.database import make_engine

    engine = make_engine(database_url)
    try:
        result = dicom_rt.import_records(engine, files, user=_user(user), patient=patient, dry_run=dry_run)
    except AbscopalError as exc:
        _write_report(report, None, exc)
        raise
    finally:
        engine.dispose()
    _write_report(report, result)
    for w in result.warnings:
        console.print(f"[yellow]Warning:[/] {w}", highlight=False)
    verb = "would record" if dry_run else "recorded"
    for f in result.fractions:
        if f.fraction is None:
            console.print(f"{f.file}: skipped ({f.skipped})", highlight=False)
            continue
        fr = f.fraction
        console.print(
            f"{f.file}: {result.subject_id} lesion {fr.lesion_id} fraction {fr.fraction_number} on {fr.date}: "
            f"{fr.dose_gy:.4g} Gy {fr.status.value} (MU ratio {fr.meterset_ratio:.3f}): {verb}",
            highlight=False,
        )
        for dev in f.deviations:
            console.print(
                f"  deviation ({'would be ' if dry_run else ''}proposed): {dev.check.value} "
                f"{dev.deviation_class.value}: {dev.reason}",
                highlight=False,
            )


def register(app: typer.Typer) -> None:
    """Add ``rtplan`` and ``rtrecord`` to ``abscopal import``."""
    app.command("rtplan")(user_errors(rtplan))
    app.command("rtrecord")(user_errors(rtrecord))
