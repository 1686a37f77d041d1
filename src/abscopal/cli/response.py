"""``abscopal response``: derive RECIST 1.1 / iRECIST responses, BOR, PFS and DOR from a measurement file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from abscopal.cli._common import console, print_json, user_errors
from abscopal.errors import ValidationError
from abscopal.inputs import check_output_dir
from abscopal.protocol.model import ResponseOptions, load_bundled
from abscopal.response.codes import Criteria
from abscopal.response.engine import derive_table
from abscopal.response.io import read_measurements, read_subjects, write_outputs

app = typer.Typer(help="Tumour response by RECIST 1.1 and iRECIST (docs/response.md).", no_args_is_help=True)


def _options(base: ResponseOptions, settings: list[str]) -> ResponseOptions:
    """Apply ``--option key=value`` overrides to the protocol's [response] options."""
    data: dict[str, Any] = base.model_dump()
    for item in settings:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in data:
            raise ValidationError("--option", f"'{item}' is not key=value with a key of [response]: {', '.join(data)}")
        try:
            data[key] = json.loads(value)
        except json.JSONDecodeError:
            data[key] = value
    try:
        return ResponseOptions.model_validate(data)
    except Exception as exc:  # pydantic's message names the option
        raise ValidationError("--option", str(exc).splitlines()[0] + ": " + str(exc).splitlines()[-1]) from None


@app.command("derive")
@user_errors
def derive(
    input: Annotated[Path, typer.Option("--input", "-i", help="Measurement CSV (one row per lesion per assessment).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory for the CSV outputs and options.json.")],
    criteria: Annotated[
        Criteria | None, typer.Option(help="irecist or recist11 (default: the protocol's response.criteria).")
    ] = None,
    subjects: Annotated[
        Path | None,
        typer.Option(help="CSV: subject_id, reference_date, death_date, new_therapy_date (for PFS)."),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", help="Override a response option, e.g. --option sd_min_days=35 (repeatable)."),
    ] = None,
    per_lesion: Annotated[
        bool, typer.Option("--per-lesion", help="Also write lesions.csv (% change per lesion).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Derive timepoint responses, best overall response, ORR/DCR, PFS and DOR, and response by RT role.

    Writes timepoints.csv, subjects.csv, lesion_roles.csv, role_rates.csv and options.json (the options used);
    nothing is written when the input has a problem. Formats and codes: docs/response.md.

    Example: abscopal response derive --input meas.csv --output out/ --criteria irecist --subjects subj.csv
    """
    check_output_dir(output)
    protocol = load_bundled().current
    opts = _options(protocol.response, option or [])
    crit = Criteria(criteria or opts.criteria)
    steps = ["read", "derive", "write"]
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json,
    ) as progress:
        task = progress.add_task(f"Reading {input.name}", total=len(steps) + 5)
        meas = read_measurements(input, protocol.plausibility)
        days = read_subjects(subjects, meas.table.subject_ids) if subjects else None
        progress.update(task, advance=1, description=f"Deriving {len(meas.table.subject_ids):,} subjects")
        arrays = derive_table(
            meas.table,
            {},
            opts,
            crit,
            reference_day=days.reference_day if days else None,
            death_day=days.death_day if days else None,
            new_therapy_day=days.new_therapy_day if days else None,
        )
        progress.update(task, advance=1, description="Writing")
        used = {
            "criteria": str(crit),
            "input": str(input),
            "subjects_file": str(subjects) if subjects else None,
            "protocol_version": protocol.version.number,
            "options": opts.model_dump(mode="json"),
            "conventions": {
                "durations": "days = end - start + 1 (ADaM)",
                "category_responses": "target/non-target responses are RECIST 1.1 codes under both criteria",
                "diameters": "held in integer micrometres; thresholds compare exactly",
            },
        }
        files = write_outputs(
            output,
            arrays,
            used,
            investigator=meas.investigator,
            per_lesion=per_lesion,
            on_file=lambda name: progress.update(task, advance=1, description=f"Wrote {name}"),
        )
    n = len(arrays.subject_ids)
    summary = {
        "criteria": str(crit),
        "subjects": n,
        "assessments": int(arrays.tp.valid.sum()),
        "orr": int(arrays.objective_response.sum()),
        "dcr": int(arrays.disease_control.sum()),
        "pfs_events": int(arrays.pfs.event.sum()),
        "files": [str(f) for f in files],
    }
    if as_json:
        print_json(summary)
        return
    console.print(
        f"{n:,} subjects, {summary['assessments']:,} assessments ({crit}): ORR {summary['orr']}/{n}, "
        f"DCR {summary['dcr']}/{n}, PFS events {summary['pfs_events']}. Wrote {len(files)} files to {output}."
    )
