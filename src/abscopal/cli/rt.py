"""``abscopal rt``: radiotherapy checks of a plan, and BED/EQD2 of a fractionation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from abscopal.cli._common import console, print_json, user_errors
from abscopal.protocol import radiotherapy as rt
from abscopal.protocol.calendar import WorkingDays
from abscopal.protocol.io import load_plan
from abscopal.protocol.model import load_bundled

app = typer.Typer(help="Radiotherapy: check a plan against the protocol, compute BED and EQD2.", no_args_is_help=True)


@app.command("check")
@user_errors
def check(
    plan: Annotated[Path, typer.Argument(help="PLAN.json (schema: docs/radiotherapy.md).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print checks, doses and deviations as JSON.")] = False,
) -> None:
    """Check lesion roles, prescriptions and delivered fractions; print BED/EQD2 per lesion and proposed deviations.

    Example: abscopal rt check docs/examples/plan.json
    """
    protocol = load_bundled().current
    rules = protocol.radiotherapy
    data = load_plan(plan, rules.radiobiology.alpha_beta_tumour_gy, protocol.plausibility)
    report = rt.check_plan(
        data.subject_id,
        data.lesions,
        data.courses,
        data.fractions,
        rules,
        WorkingDays(protocol.schedule.holidays_country),
        data.conventional_selection,
        data.completed,
    )
    if as_json:
        print_json(rt.as_dict(report))
        return
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
    for d in report.doses:
        doses.add_row(
            d.lesion_id,
            d.role.value,
            f"{d.alpha_beta_gy:g}",
            f"{d.prescribed_gy:.2f} / {d.prescribed_bed_gy:.2f} / {d.prescribed_eqd2_gy:.2f}",
            f"{d.delivered_gy:.2f} / {d.delivered_bed_gy:.2f} / {d.delivered_eqd2_gy:.2f}",
            f"{d.late_alpha_beta_gy:g}",
            f"{d.prescribed_bed_late_gy:.2f} / {d.prescribed_eqd2_late_gy:.2f}",
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
