"""``abscopal qol``: score EORTC QLQ-C30 / QLQ-LC13 questionnaires from item answers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from abscopal.cli._common import console, user_errors
from abscopal.inputs import check_output_file
from abscopal.protocol.model import load_bundled
from abscopal.qol.eortc import score_answers
from abscopal.qol.io import read_item_answers, write_scores

app = typer.Typer(
    help="Quality of life: score EORTC QLQ-C30 v3.0 and QLQ-LC13 (scoring manual, 3rd ed.).", no_args_is_help=True
)


@app.command("score")
@user_errors
def score(
    input: Annotated[
        Path, typer.Option("--input", "-i", help="ITEMS.csv: subject_id, visit, instrument, item, answer.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="SCORES.csv to write: subject_id, visit, instrument, scale, score.")
    ],
    protocol_visits: Annotated[
        bool,
        typer.Option(
            "--protocol-visits",
            help="Refuse a visit that is not a questionnaire visit of the protocol schedule (baseline, week_6, "
            "week_12, ...); without it any non-empty visit label is accepted.",
        ),
    ] = False,
) -> None:
    """Score every questionnaire in ITEMS.csv and write one row per scale to SCORES.csv.

    Items are numbered 1-30 (QLQ-C30) and 31-43 (QLQ-LC13); an empty answer is a blank item. A scale is
    scored when at least half its items are answered (LCDY needs all three); scores are unrounded, empty when
    not computable. Any invalid line (unknown item, answer out of range, duplicate item, non-integer) is
    reported with its line number and nothing is written. Visits are free labels of your file; with
    --protocol-visits each must be a visit code of the protocol schedule (baseline, week_6, week_12, ...).

    Example: abscopal qol score --input items.csv --output scores.csv --protocol-visits
    """
    check_output_file(output)
    answers = read_item_answers(input, load_bundled().current.schedule if protocol_visits else None)
    rows = score_answers(answers)
    n = write_scores(output, rows)
    forms = len({(r.subject_id, r.visit, r.instrument) for r in rows})
    missing = sum(1 for r in rows if r.score is None)
    console.print(
        f"Scored {forms} questionnaire{'s' if forms != 1 else ''}: {n} scale scores written to {output} "
        f"({missing} not computable)."
    )
