"""``abscopal ae``: adverse-event tables (CTCAE v5.0), dictionary search and grade definitions."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from abscopal.cli._common import console, print_json, user_errors
from abscopal.errors import ValidationError
from abscopal.protocol.model import load_bundled
from abscopal.safety.ctcae import GRADES, load_ctcae
from abscopal.safety.io import read_adverse_events, read_safety_population
from abscopal.safety.monitor import monitor
from abscopal.safety.summaries import CountPct, SafetyPopulation, safety_tables

app = typer.Typer(
    help="Adverse events: incidence tables, CTCAE v5.0 dictionary search and grade definitions.",
    no_args_is_help=True,
)


def _pct(c: CountPct) -> str:
    return f"{c.n} ({c.pct:.1f})"


@app.command("summary")
@user_errors
def summary(
    input: Annotated[
        Path | None, typer.Option("--input", "-i", help="AE.csv (columns in docs/safety.md); default: the database.")
    ] = None,
    population: Annotated[
        int | None, typer.Option("--population", "-n", help="Size of the safety population (denominator).")
    ] = None,
    safety_population: Annotated[
        Path | None,
        typer.Option("--safety-population", help="CSV with a subject_id column: patients with >= 1 RT fraction."),
    ] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", envvar="ABSCOPAL_DATABASE_URL", help="Database URL.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the tables as JSON.")] = False,
) -> None:
    """Print the standard safety tables: overall summary, SOC/term incidence, maximum grade, TRAEs, AESIs, SAEs.

    Each patient counts once per term at the worst grade. Without --input the trial database is read: the
    safety population is every patient with >= 1 RT fraction and only treatment-emergent events count (anchor
    and windows from the protocol). With --input AE.csv, give the denominator as a number (--population) or a
    subject list (--safety-population); rows with treatment_emergent = N are left out. The protocol's
    pneumonitis monitoring rule is evaluated on the same data.

    Examples: abscopal ae summary
              abscopal ae summary --input ae.csv --safety-population safety.csv
    """
    dictionary = load_ctcae()
    options = load_bundled().current.safety
    exposures = None
    if input is None:
        if population is not None or safety_population is not None:
            raise ValidationError("population", "--population and --safety-population go with --input AE.csv")
        from abscopal.store.safety_input import load_safety_analysis_set

        analysis = load_safety_analysis_set(options, database_url)
        events, pop, exposures = analysis.events, analysis.population, analysis.exposures
    else:
        if (population is None) == (safety_population is None):
            raise ValidationError("population", "give either --population N or --safety-population FILE")
        if population is not None and population <= 0:
            raise ValidationError("population", f"{population} must be a positive number of patients")
        pop = (
            SafetyPopulation(population)
            if population is not None
            else SafetyPopulation.of(read_safety_population(safety_population))  # type: ignore[arg-type]
        )
        events = read_adverse_events(input, dictionary)
    tables = safety_tables(events, pop, options, dictionary, exposures)
    check = monitor(events, pop.size, options.monitor)
    if as_json:
        print_json({"tables": dataclasses.asdict(tables), "monitor": dataclasses.asdict(check)})
        return
    console.print(f"[bold]Safety population:[/] {pop.size} patients; {len(events)} adverse events. n (%)")

    overall = Table(title="Overall summary")
    overall.add_column("")
    overall.add_column("patients n (%)", justify="right")
    for row in tables.overall:
        overall.add_row(row.label, _pct(row.count))
    console.print(overall)

    soc = Table(title="Adverse events by SOC and term (worst grade per patient)")
    for name in ("SOC / term", "any grade", "grade 1-2", "grade >= 3", "grade 5"):
        soc.add_column(name, justify="left" if name == "SOC / term" else "right")
    for inc in tables.by_soc_term:
        label = "Any AE" if inc.level == "any" else (f"[bold]{inc.soc}[/]" if inc.level == "soc" else f"  {inc.term}")
        c = inc.counts
        soc.add_row(label, _pct(c.any_grade), _pct(c.grade_1_2), _pct(c.grade_3_plus), _pct(c.grade_5))
    console.print(soc)

    mg = Table(title="Patients by maximum grade")
    mg.add_column("maximum grade")
    mg.add_column("n (%)", justify="right")
    for g in GRADES:
        mg.add_row(str(g), _pct(tables.by_max_grade.by_grade[g]))
    mg.add_row("grade missing", _pct(tables.by_max_grade.missing))
    mg.add_row("no AE", _pct(tables.by_max_grade.no_ae))
    console.print(mg)

    rel = Table(title=f"Treatment-related AEs (missing attribution analysed as {options.missing_attribution})")
    for name in ("attributed to", "any grade", "grade >= 3", "serious"):
        rel.add_column(name, justify="left" if name == "attributed to" else "right")
    for r in tables.related:
        rel.add_row(r.component, _pct(r.any_grade), _pct(r.grade_3_plus), _pct(r.serious))
    console.print(rel)

    aesi = Table(title="Adverse events of special interest")
    for name in ("category", "any grade", "grade >= 3", "median days onset->resolution"):
        aesi.add_column(name, justify="left" if name == "category" else "right")
    for a in tables.aesi:
        days = "-" if a.median_days_to_resolution is None else f"{a.median_days_to_resolution:g}"
        aesi.add_row(a.category, _pct(a.any_grade), _pct(a.grade_3_plus), days)
    console.print(aesi)

    if tables.serious:
        sae = Table(title="Serious adverse events")
        for name in ("subject", "AE", "term", "grade", "onset", "criteria", "related to", "outcome"):
            sae.add_column(name)
        for e in tables.serious:
            grade = "?" if e.grade is None else str(e.grade)
            related = ", ".join(e.related_to) or "none"
            sae.add_row(e.subject_id, e.ae_id, e.term, grade, e.onset_date, ", ".join(e.criteria), related, e.outcome)
        console.print(sae)
    console.print(("[bold red]" if check.alert else "") + check.sentence(), highlight=False)
    for q in tables.queries:
        console.print(f"[yellow]query[/] {q}", highlight=False)


@app.command("search")
@user_errors
def search(
    words: Annotated[list[str], typer.Argument(help="Words of a term or grade definition, or a MedDRA code.")],
    limit: Annotated[int, typer.Option(help="Show at most this many terms.")] = 15,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Find CTCAE v5.0 terms by name, MedDRA code or words of their grade definitions, best match first.

    Example: abscopal ae search pneumonitis ; abscopal ae search self care ADL ; abscopal ae search 10035742
    """
    hits = load_ctcae().search(" ".join(words), limit=limit)
    if as_json:
        print_json(
            [
                {
                    "term": h.term.term,
                    "meddra_code": h.term.meddra_code,
                    "soc": h.term.soc,
                    "grades": list(h.term.grades),
                    "score": h.score,
                    "matched": list(h.matched),
                }
                for h in hits
            ]
        )
        return
    if not hits:
        console.print(f"No CTCAE v5.0 term matches {' '.join(words)!r}.")
        return
    table = Table(title=f"CTCAE v5.0 terms matching {' '.join(words)!r}")
    for name in ("term", "MedDRA", "SOC", "grades", "matched in"):
        table.add_column(name)
    for h in hits:
        table.add_row(h.term.term, str(h.term.meddra_code), h.term.soc, h.term.grades_label, ", ".join(h.matched))
    console.print(table)


@app.command("grades")
@user_errors
def grades(
    term: Annotated[list[str], typer.Argument(help="A CTCAE v5.0 term (any case) or its MedDRA code.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the term as JSON.")] = False,
) -> None:
    """Show a term's grade definitions ('not available' where CTCAE v5.0 has '-') and its navigational note.

    Example: abscopal ae grades Pneumonitis ; abscopal ae grades 10016256
    """
    t = load_ctcae().get(" ".join(term))
    if as_json:
        print_json(dataclasses.asdict(t) | {"grades": list(t.grades)})
        return
    console.print(f"[bold]{t.term}[/] (MedDRA {t.meddra_code}) — {t.soc}; grades {t.grades_label}")
    if t.definition:
        console.print(f"Definition: {t.definition}", highlight=False)
    table = Table(show_header=True)
    table.add_column("grade")
    table.add_column("description")
    for g in GRADES:
        text = t.describe(g)
        table.add_row(str(g), text if text is not None else "[dim]not available[/]")
    console.print(table)
    if t.navigational_note:
        console.print(f"[yellow]Navigational note:[/] {t.navigational_note}", highlight=False)
    if t.is_other_specify:
        console.print("Record the investigator's verbatim term with this term.")
