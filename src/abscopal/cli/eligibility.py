"""``abscopal eligibility``: check a patient against every inclusion and exclusion criterion."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from abscopal.cli._common import console, print_json, user_errors
from abscopal.protocol import eligibility as elig
from abscopal.protocol import resistance as res
from abscopal.protocol.io import load_patient
from abscopal.protocol.model import load_bundled

app = typer.Typer(help="Check eligibility for the trial: each criterion met / not met / unknown, with its reason.",
                  no_args_is_help=True)  # fmt: skip

_STYLE = {
    ("inclusion", "met"): "green",
    ("inclusion", "not_met"): "red",
    ("exclusion", "met"): "red",
    ("exclusion", "not_met"): "green",
}
_VERDICT_STYLE = {"eligible": "bold green", "ineligible": "bold red", "incomplete": "bold yellow"}


@app.command("check")
@user_errors
def check(
    patient: Annotated[Path, typer.Argument(help="PATIENT.json (schema: docs/eligibility.md).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the checklist as JSON.")] = False,
    protocol_version: Annotated[
        str | None, typer.Option("--protocol-version", help="Evaluate under this protocol version (default: latest).")
    ] = None,
) -> None:
    """Print the eligibility checklist of PATIENT.json: every criterion with one sentence, then the verdict.

    Inclusion criteria met are green and not met red; exclusion criteria present are red; unknown (data missing)
    is yellow. If the file has the prior immunotherapy and the resistance adjudication, the proposed resistance
    class and whether the patient may be enrolled are printed too.

    Example: abscopal eligibility check docs/examples/patient.json
    """
    pf = load_bundled()
    protocol = pf.version(protocol_version) if protocol_version else pf.current
    data = load_patient(patient, protocol.plausibility)
    screening = data.screening
    if screening.immunotherapy_resistance_confirmed is None and data.adjudication is not None:
        screening = replace(
            screening,
            immunotherapy_resistance_confirmed=res.resistance_confirmed(data.adjudication, protocol.resistance),
        )
    checklist = elig.evaluate(screening, protocol.eligibility, protocol.version.number)
    assessment = res.classify(data.immunotherapy, protocol.resistance) if data.immunotherapy else None
    refusals = res.can_enrol(checklist, data.adjudication, protocol.resistance)
    if as_json:
        out: dict[str, Any] = elig.as_dict(checklist)
        out["resistance"] = (
            None
            if assessment is None
            else {
                "proposed": assessment.classification.value,
                "reasons": list(assessment.reasons),
                "exposure_days": assessment.exposure_days,
            }
        )
        out["adjudication"] = (
            None
            if data.adjudication is None
            else {
                "classification": data.adjudication.classification.value,
                "signed_by": res.valid_signers(data.adjudication, protocol.resistance),
                "effective": res.is_effective(data.adjudication, protocol.resistance),
            }
        )
        out["enrolment"] = {"allowed": not refusals, "reasons": refusals}
        print_json(out)
        return
    table = Table(
        title=f"Eligibility of {checklist.subject_id} (protocol {protocol.trial.id} v{protocol.version.number})"
    )
    table.add_column("id", no_wrap=True)
    table.add_column("criterion")
    table.add_column("status", no_wrap=True)
    table.add_column("reason")
    for r in checklist.results:
        style = _STYLE.get((r.section, r.status.value), "yellow")
        table.add_row(r.criterion_id, r.label, f"[{style}]{r.status.value.replace('_', ' ')}[/]", r.reason)
    console.print(table)
    verdict = checklist.verdict.value
    console.print(f"Verdict: [{_VERDICT_STYLE[verdict]}]{verdict}[/]")
    if assessment is not None:
        console.print(
            f"Immunotherapy resistance (proposed): [bold]{assessment.classification.value}[/] — "
            + "; ".join(assessment.reasons)
        )
    if refusals:
        console.print("[red]Enrolment refused:[/] " + " ".join(f"{r}." for r in refusals))
    else:
        console.print("[green]Enrolment allowed.[/]")
