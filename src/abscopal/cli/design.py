"""``abscopal design``: plan a single-arm phase II trial with Simon's two-stage designs."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from abscopal.cli._common import console, print_json, user_errors
from abscopal.stats.designs import SimonDesign, simon_two_stage

app = typer.Typer(
    help="Trial designs: Simon's optimal and minimax two-stage designs (Simon 1989).", no_args_is_help=True
)


def design_record(d: SimonDesign) -> dict[str, Any]:
    """JSON record of one design (Simon's convention: stop if <= r1 of n1 respond; promising if > r of n)."""
    return {
        "n1": d.n1,
        "r1": d.r1,
        "n": d.n,
        "r": d.r,
        "en0": d.en0,
        "pet0": d.pet0,
        "alpha": d.alpha_actual,
        "power": d.power_actual,
    }


@app.command("simon")
@user_errors
def simon(
    p0: Annotated[float, typer.Option("--p0", help="Response rate not worth pursuing (H0).")],
    p1: Annotated[float, typer.Option("--p1", help="Target response rate (H1), larger than p0.")],
    alpha: Annotated[float, typer.Option("--alpha", help="Type I error: P(declare promising | p0) < alpha.")],
    beta: Annotated[float, typer.Option("--beta", help="Type II error: P(declare not promising | p1) < beta.")],
    nmax: Annotated[int, typer.Option("--nmax", help="Largest total sample size searched.")] = 100,
    stage1_responses: Annotated[
        int | None,
        typer.Option("--stage1-responses", help="Also say what to do after stage 1 with this many responses."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print both designs as JSON.")] = False,
) -> None:
    """Simon's optimal (smallest expected size under p0) and minimax (smallest maximum size) designs.

    Stop after stage 1 if at most r1 of n1 patients respond; the treatment is promising if more than r of n
    respond. Equal to R's clinfun::ph2simon(p0, p1, alpha, beta, nmax).

    Example: abscopal design simon --p0 0.2 --p1 0.4 --alpha 0.05 --beta 0.2 --json
    """
    designs = simon_two_stage(p0, p1, alpha, beta, nmax=nmax)
    pair = {"optimal": designs.optimal, "minimax": designs.minimax}
    result: dict[str, Any] = {name: design_record(d) for name, d in pair.items()}
    if stage1_responses is not None:
        result["interim"] = {name: str(d.interim(stage1_responses)) for name, d in pair.items()}
    if as_json:
        print_json(result)
        return
    console.print(
        f"Simon two-stage designs: p0 = {p0:g}, p1 = {p1:g}, alpha = {alpha:g}, beta = {beta:g} (n <= {nmax})"
    )
    table = Table(box=None)
    for col in ("", "r1", "n1", "r", "n", "EN(p0)", "PET(p0)", "alpha", "power"):
        table.add_column(col, justify="right" if col else "left")
    for name, d in pair.items():
        table.add_row(
            name.capitalize(), str(d.r1), str(d.n1), str(d.r), str(d.n), f"{d.en0:.2f}", f"{d.pet0:.4f}",
            f"{d.alpha_actual:.4f}", f"{d.power_actual:.4f}",
        )  # fmt: skip
    console.print(table)
    console.print("Stop after stage 1 if responses <= r1 of n1; promising if responses > r of n.")
    if stage1_responses is not None:
        for name, d in pair.items():
            console.print(
                f"{name.capitalize()}: {stage1_responses} of {d.n1} responded -> {d.interim(stage1_responses)}"
            )
