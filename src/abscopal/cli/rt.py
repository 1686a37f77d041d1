"""``abscopal rt``: radiotherapy checks of a plan, and BED/EQD2 of a fractionation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from abscopal import domain as d
from abscopal.cli._common import console, fail, print_json, user_errors
from abscopal.protocol import radiotherapy as rt
from abscopal.protocol.calendar import WorkingDays
from abscopal.protocol.io import load_plan
from abscopal.protocol.model import load_bundled
from abscopal.services.common import protocol_of
from abscopal.store.plan_input import load_stored_plan

app = typer.Typer(help="Radiotherapy: check a plan against the protocol, compute BED and EQD2.", no_args_is_help=True)


@app.command("check")
@user_errors
def check(
    plan: Annotated[
        Path | None, typer.Argument(help="PLAN.json (schema: docs/radiotherapy.md); or give --patient instead.")
    ] = None,
    patient: Annotated[
        str | None,
        typer.Option(
            "--patient",
            help="Check a patient's stored lesions, prescriptions (typed in or imported from a DICOM RT plan) and "
            "delivered fractions, and list the deviations recorded for them.",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", envvar="ABSCOPAL_DATABASE_URL", help="Database URL for --patient."),
    ] = None,
    completed: Annotated[
        list[str] | None,
        typer.Option(
            "--completed",
            help="A lesion whose course has ended (repeat for each): its delivered total and fraction count are "
            "judged even if fewer fractions than prescribed were given. Default: the plan file's list, or (with "
            "--patient) every course with all its prescribed fractions recorded.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print checks, doses and deviations as JSON.")] = False,
) -> None:
    """Check lesion roles, prescriptions and delivered fractions; print BED/EQD2 per lesion and proposed deviations.

    With --patient, the records come from the database (opened read-only; nothing is written) under the protocol
    version the patient was enrolled under, and the deviations already recorded (by the web pages or by
    `abscopal import rtplan` / `rtrecord`) are listed after the engine's.

    Examples: abscopal rt check docs/examples/plan.json;  abscopal rt check --patient QFS-000002
    """
    if (plan is None) == (patient is None):
        raise fail("give either PLAN.json or --patient ID (not both)")
    recorded: list[d.ProtocolDeviation] | None = None
    if patient is not None:
        stored = load_stored_plan(patient, database_url)
        protocol = protocol_of(stored.patient, None, dt.date.today())
        subject_id, lesions = patient, tuple(stored.lesions)
        courses, fractions = tuple(stored.courses), tuple(stored.fractions)
        selection, ended, recorded = None, None, stored.deviations
    else:
        assert plan is not None
        protocol = load_bundled().current
        data = load_plan(plan, protocol.radiotherapy.radiobiology.alpha_beta_tumour_gy, protocol.plausibility)
        subject_id, lesions, courses, fractions = data.subject_id, data.lesions, data.courses, data.fractions
        selection, ended = data.conventional_selection, data.completed
    report = rt.check_plan(
        subject_id,
        lesions,
        courses,
        fractions,
        protocol.radiotherapy,
        WorkingDays(protocol.schedule.holidays_country),
        selection,
        set(completed) if completed else ended,
    )
    if as_json:
        out = rt.as_dict(report)
        if recorded is not None:
            out["recorded_deviations"] = [_recorded(x) for x in recorded]
        print_json(out)
        return
    _print_report(report)
    if recorded is not None:
        _print_recorded(subject_id, recorded)


def _recorded(x: d.ProtocolDeviation) -> dict[str, object]:
    return {
        "check": str(x.check), "lesion_id": x.lesion_id, "class": x.deviation_class.value,
        "date": x.date.isoformat() if x.date else None, "values": x.values, "reason": x.reason,
        "recorded_by": x.recorded_by, "confirmed_by": x.confirmed_by,
    }  # fmt: skip


def _print_recorded(subject_id: str, recorded: list[d.ProtocolDeviation]) -> None:
    if not recorded:
        console.print(f"No deviation is recorded for {subject_id}.")
        return
    table = Table(title=f"Deviations recorded for {subject_id}")
    for col in ("date", "lesion", "check", "class", "values", "recorded by", "status"):
        table.add_column(col)
    for x in recorded:
        colour = "red" if x.deviation_class is d.DeviationClass.MAJOR else "yellow"
        table.add_row(
            x.date.isoformat() if x.date else "-",
            x.lesion_id or "-",
            str(x.check),
            f"[{colour}]{x.deviation_class.value}[/]",
            x.values,
            x.recorded_by or "-",
            f"confirmed by {x.confirmed_by}" if x.confirmed_by else "proposed",
        )
    console.print(table)


def _print_report(report: rt.PlanReport) -> None:
    checks = Table(title=f"Radiotherapy checks of {report.subject_id}")
    for col in ("lesion", "check", "result", "message"):
        checks.add_column(col)
    for c in report.checks:
        if c.ok:
            result = "[green]ok[/]"
        else:
            colour = "red" if c.deviation_class and c.deviation_class.value == "major" else "yellow"
            result = f"[{colour}]{c.deviation_class.value if c.deviation_class else 'failed'}[/]"
        checks.add_row(c.lesion_id or "-", c.check, result, c.message)
    console.print(checks)
    doses = Table(title="Dose per lesion, Gy: physical / BED / EQD2 (never summed across lesions)")
    for col in ("lesion", "role", "α/β", "prescribed", "delivered", "late α/β", "prescribed, late"):
        doses.add_column(col)
    for x in report.doses:
        doses.add_row(
            x.lesion_id,
            x.role.value,
            f"{x.alpha_beta_gy:g}",
            f"{x.prescribed_gy:.2f} / {x.prescribed_bed_gy:.2f} / {x.prescribed_eqd2_gy:.2f}",
            f"{x.delivered_gy:.2f} / {x.delivered_bed_gy:.2f} / {x.delivered_eqd2_gy:.2f}",
            f"{x.late_alpha_beta_gy:g}",
            f"{x.prescribed_bed_late_gy:.2f} / {x.prescribed_eqd2_late_gy:.2f}",
        )
    console.print(doses)
    if report.deviations:
        console.print(f"[bold]{len(report.deviations)} proposed deviation(s)[/] (to be confirmed by a person):")
        for dev in report.deviations:
            colour = "red" if dev.deviation_class.value == "major" else "yellow"
            console.print(
                f"  [{colour}]{dev.deviation_class.value}[/] {dev.lesion_id or '-'} {dev.check}: {dev.values}"
            )
    else:
        console.print("[green]No deviation.[/]")


@app.command("bed")
@user_errors
def bed_command(
    dose_per_fraction: Annotated[float, typer.Option("--dose-per-fraction", help="Dose per fraction, Gy.")],
    fractions: Annotated[int, typer.Option("--fractions", help="Number of fractions.")],
    alpha_beta: Annotated[
        float | None, typer.Option("--alpha-beta", help="α/β in Gy (default: the protocol's tumour value, 10).")
    ] = None,
    overall_days: Annotated[
        float | None,
        typer.Option(
            "--overall-days", help="Overall time T in days: subtract tumour repopulation (protocol Tk, Tp, α)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"bed": ..., "eqd2": ...}.')] = False,
) -> None:
    """BED = n·d·(1 + d/(α/β)) and EQD2 = BED / (1 + 2/(α/β)).

    Example: abscopal rt bed --dose-per-fraction 2 --fractions 30 --alpha-beta 10 --json  ->  72 and 60
    """
    rb = load_bundled().current.radiotherapy.radiobiology
    ab = alpha_beta if alpha_beta is not None else rb.alpha_beta_tumour_gy
    value = rt.bed(dose_per_fraction, fractions, ab)
    loss = rt.repopulation_loss(overall_days, rb) if overall_days is not None else 0.0
    value -= loss
    result = {"bed": round(value, 6), "eqd2": round(rt.eqd2_of_bed(value, ab), 6)}
    if as_json:
        print_json(result)
        return
    extra = f" (repopulation -{loss:.2f} Gy over {overall_days:g} days)" if overall_days is not None else ""
    console.print(
        f"{dose_per_fraction:g} Gy x {fractions} = {dose_per_fraction * fractions:g} Gy, α/β {ab:g} Gy: "
        f"BED {result['bed']:g} Gy, EQD2 {result['eqd2']:g} Gy{extra}"
    )
