"""``abscopal protocol``: show the protocol in force and check a protocol file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from abscopal.cli._common import console, print_json, user_errors
from abscopal.protocol.model import bundled_protocol_path, load_protocol_file

app = typer.Typer(help="Show the trial's protocol (the rules as data) or check a protocol file.", no_args_is_help=True)

FileOpt = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="A protocol TOML file (default: the bundled NCT05906329 protocol)."),
]


@app.command("show")
@user_errors
def show(
    file: FileOpt = None,
    version: Annotated[str | None, typer.Option(help="Show this version (default: the latest).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole protocol as JSON.")] = False,
) -> None:
    """Print the trial, its versions and every eligibility criterion, dose rule and schedule default."""
    pf = load_protocol_file(file or bundled_protocol_path())
    p = pf.version(version) if version else pf.current
    if as_json:
        print_json(p.model_dump(mode="json"))
        return
    console.print(f"[bold]{p.trial.id}[/] — {p.trial.title}")
    console.print(
        f"Version {p.version.number} (effective {p.version.effective_date}); versions: {', '.join(pf.versions)}"
    )
    for kind, criteria in (("Inclusion", p.eligibility.inclusion), ("Exclusion", p.eligibility.exclusion)):
        table = Table(title=f"{kind} criteria", show_lines=False)
        table.add_column("id")
        table.add_column("criterion")
        table.add_column("checks")
        for cid, crit in criteria.items():
            checks = []
            for check in crit.checks.values():
                d = check.model_dump(exclude={"name", "note", "kind", "order"}, exclude_none=True)
                detail = ", ".join(f"{k}={v}" for k, v in d.items())
                checks.append(f"{check.kind}({detail})" + (" [yellow]*[/]" if check.note else ""))
            table.add_row(cid, crit.label, "\n".join(checks))
        console.print(table)
    rt = p.radiotherapy
    console.print(
        f"Conventional RT: {rt.conventional.dose_per_fraction_gy.min}-{rt.conventional.dose_per_fraction_gy.max} Gy/f, "
        f"{rt.conventional.total_dose_gy.min:g}-{rt.conventional.total_dose_gy.max:g} Gy; "
        f"low-dose RT: {rt.low_dose.dose_per_fraction_gy} Gy once every {rt.low_dose.interval_days} days x "
        f"{rt.low_dose.fractions.min:g}-{rt.low_dose.fractions.max:g}, at most {rt.low_dose.max_lesions} lesions; "
        f"at least {rt.observation.min_lesions} measurable observation lesion."
    )
    console.print(
        f"Immunotherapy every {p.immunotherapy.interval_days} days; tumour assessments every "
        f"{p.schedule.assessment_interval_days} ± {p.schedule.assessment_window_days} days; "
        f"response by {p.response.criteria}."
    )
    notes = [
        f"{cid}.{name}: {check.note}"
        for criteria in (p.eligibility.inclusion, p.eligibility.exclusion)
        for cid, crit in criteria.items()
        for name, check in crit.checks.items()
        if check.note
    ]
    for note in notes:
        console.print(f"[yellow]*[/] {note}")


@app.command("check")
@user_errors
def check(file: Annotated[Path, typer.Argument(help="The protocol TOML file to validate.")]) -> None:
    """Validate a protocol file and its amendments; print the versions it defines, or what is wrong and where."""
    pf = load_protocol_file(file)
    console.print(f"[green]OK[/] {file}: {pf.current.trial.id}, versions {', '.join(pf.versions)}")
