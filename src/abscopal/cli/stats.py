"""``abscopal stats``: Kaplan-Meier and log-rank from a CSV, and proportions with exact CIs, printed like R."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
import typer

from abscopal.cli._common import console, print_json, user_errors
from abscopal.errors import ValidationError
from abscopal.stats.comparison import LogRankResult, logrank
from abscopal.stats.io import read_survival_csv
from abscopal.stats.proportions import PROPORTION_METHODS, ProportionMethod, proportion_ci
from abscopal.stats.survival import CONF_TYPES, ConfType, KMResult, kaplan_meier, median_follow_up

app = typer.Typer(
    help="Statistics equal to R's: Kaplan-Meier (survfit), log-rank (survdiff), exact binomial CIs (binom.test).",
    no_args_is_help=True,
)


def parse_times(text: str) -> list[float]:
    """Parse "180,365" into [180.0, 365.0]; each time must be a non-negative number."""
    out = []
    for part in text.split(","):
        item = part.strip()
        if not item:
            continue
        try:
            value = float(item)
        except ValueError:
            raise ValidationError("--times", f"{item!r} is not a number; give times like 180,365") from None
        if not math.isfinite(value) or value < 0:
            raise ValidationError("--times", f"{item} must be a finite, non-negative time")
        out.append(value)
    if not out:
        raise ValidationError("--times", "give at least one time, like 180,365")
    return out


def _num(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def km_summary(fit: KMResult, times: list[float]) -> dict[str, Any]:
    """The JSON record of one curve: counts, median with CI, survival at the requested times, median follow-up."""
    follow = median_follow_up(fit.durations, fit.event_flags, conf_type=fit.conf_type, conf_level=fit.conf_level)
    return {
        "n": fit.n,
        "events": fit.events,
        "conf_type": fit.conf_type,
        "conf_level": fit.conf_level,
        "median": fit.median,
        "median_ci": list(fit.median_ci),
        "survival": [
            {
                "time": s.time,
                "n_risk": s.n_risk,
                "n_event": s.n_event,
                "surv": _num(s.surv),
                "std_err": _num(s.std_err),
                "lower": _num(s.lower),
                "upper": _num(s.upper),
            }
            for s in fit.survival_at(times)
        ],
        "median_follow_up": {"median": follow.median, "median_ci": list(follow.median_ci)},
    }


def logrank_summary(result: LogRankResult) -> dict[str, Any]:
    """The JSON record of a log-rank test: chisq, df, p and survdiff's per-group table."""
    return {
        "chisq": result.chisq,
        "df": result.df,
        "p": result.p,
        "groups": [
            {"group": g.group, "n": g.n, "observed": g.observed, "expected": g.expected, "variance": g.variance}
            for g in result.groups
        ],
    }


def _rows_by_group(groups: tuple[str, ...]) -> dict[str, npt.NDArray[np.intp]]:
    """Row numbers of each group's patients, found with one sort (not one scan of the file per group)."""
    labels = np.asarray(groups, dtype=np.str_)
    names, code = np.unique(labels, return_inverse=True)
    order = np.argsort(code.reshape(-1), kind="stable")
    bounds = np.searchsorted(code.reshape(-1)[order], np.arange(names.size + 1))
    return {str(name): order[bounds[i] : bounds[i + 1]] for i, name in enumerate(names)}


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NA"
    return f"{value:.{digits}g}"


def _fmt_p(p: float) -> str:
    # Like R's format.pval with digits = 1 for small p, as survdiff prints it.
    return "<2e-16" if p < 2e-16 else f"{p:.2g}" if p < 0.001 else f"{p:.3f}".rstrip("0").rstrip(".")


def _text_table(title: str | None, headers: list[str], rows: list[list[str]], labelled: bool = True) -> str:
    """A borderless table as R prints one: the label column (when ``labelled``) left-aligned, numbers right-aligned.

    Plain text rather than a Rich table: with 1,000 groups Rich's layout took seconds, this takes milliseconds.
    """
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0]) if labelled else cells[0].rjust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return " " + "  ".join([first, *rest]).rstrip()

    out = ([title] if title else []) + [line(headers)] + [line(r) for r in rows]
    return "\n".join(out)


def _print_km(fits: dict[str, KMResult], times: list[float]) -> None:
    first = next(iter(fits.values()))
    level = first.conf_level
    grouped = len(fits) > 1
    head = ["n", "events", "median", f"{level:g}LCL", f"{level:g}UCL"]
    rows = [
        ([name] if grouped else [])
        + [str(fit.n), str(fit.events), _fmt(fit.median, 6), _fmt(fit.median_ci[0], 6), _fmt(fit.median_ci[1], 6)]
        for name, fit in fits.items()
    ]
    blocks = [_text_table(f"Kaplan-Meier ({first.conf_type} CI)", ([""] if grouped else []) + head, rows, grouped)]
    pct = f"{level * 100:g}%"
    columns = ["time", "n.risk", "n.event", "survival", "std.err", f"lower {pct} CI", f"upper {pct} CI"]
    for name, fit in fits.items():
        cells = [
            [f"{s.time:g}", str(s.n_risk), str(s.n_event), _fmt(s.surv), _fmt(s.std_err, 3), _fmt(s.lower),
             _fmt(s.upper)]
            for s in fit.survival_at(times)
        ]  # fmt: skip
        blocks.append(_text_table(name if grouped else None, columns, cells, labelled=False))
    console.print("\n\n".join(blocks), markup=False, highlight=False, soft_wrap=True)


def _print_logrank(result: LogRankResult, group_col: str) -> None:
    rows = [
        [f"{group_col}={g.group}", str(g.n), str(g.observed), _fmt(g.expected, 3), _fmt(g.o_minus_e_sq_over_e, 3),
         _fmt(g.o_minus_e_sq_over_v, 3)]
        for g in result.groups
    ]  # fmt: skip
    table = _text_table(
        "Log-rank test (survdiff, rho = 0)", ["", "N", "Observed", "Expected", "(O-E)^2/E", "(O-E)^2/V"], rows
    )
    console.print()
    console.print(table, markup=False, highlight=False, soft_wrap=True)
    console.print(f"\n Chisq= {result.chisq:.1f}  on {result.df} degrees of freedom, p= {_fmt_p(result.p)}")


@app.command("km")
@user_errors
def km(
    input: Annotated[Path, typer.Option("--input", "-i", help="CSV file with a header row.")],
    time: Annotated[str, typer.Option("--time", help="Column with the time to event or censoring (>= 0).")],
    event: Annotated[str, typer.Option("--event", help="Column with 1 = event, 0 = censored.")],
    group: Annotated[
        str | None, typer.Option("--group", help="Column with subgroups: per-group curves + log-rank.")
    ] = None,
    conf_type: Annotated[
        str, typer.Option("--conf-type", help="Pointwise CI: log-log (default, as SAS), log (R's default) or plain.")
    ] = "log-log",
    conf_level: Annotated[float, typer.Option("--conf-level", help="Confidence level.")] = 0.95,
    times: Annotated[
        str, typer.Option("--times", help="Landmark times, comma-separated, in the data's unit.")
    ] = "180,365",
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Kaplan-Meier curve(s): median with Brookmeyer-Crowley CI, survival at landmarks, median follow-up, log-rank.

    Numbers equal R: survfit(Surv(time, event) ~ 1, conf.type = ...), quantile(fit, 0.5), summary(fit, times = ...),
    survdiff(Surv(time, event) ~ group). Landmarks default to 180 and 365 (days); give months if your times are months.

    Example: abscopal stats km --input pfs.csv --time days --event progressed --group arm --times 180,365 --json
    """
    if conf_type not in CONF_TYPES:
        raise ValidationError("--conf-type", f"must be one of {', '.join(CONF_TYPES)}, got {conf_type!r}")
    kind: ConfType = conf_type  # type: ignore[assignment]
    landmarks = parse_times(times)
    data = read_survival_csv(input, time, event, group)
    overall = kaplan_meier(data.durations, data.events, conf_type=kind, conf_level=conf_level)
    result: dict[str, Any] = km_summary(overall, landmarks)
    fits: dict[str, KMResult] = {}
    test: LogRankResult | None = None
    if data.groups is not None:
        test = logrank(data.durations, data.events, data.groups)
        durations, events = np.asarray(data.durations), np.asarray(data.events)
        for name, rows in _rows_by_group(data.groups).items():
            fits[name] = kaplan_meier(durations[rows], events[rows], conf_type=kind, conf_level=conf_level)
        fits = {g.group: fits[g.group] for g in test.groups}  # the log-rank table's order (R's factor levels)
        result["groups"] = {name: km_summary(fit, landmarks) for name, fit in fits.items()}
        result["logrank"] = logrank_summary(test)
    if as_json:
        print_json(result)
        return
    if fits and test is not None and group is not None:
        _print_km({f"{group}={name}": fit for name, fit in fits.items()}, landmarks)
        _print_logrank(test, group)
    else:
        _print_km({"all": overall}, landmarks)
    follow = result["median_follow_up"]
    lo, hi = follow["median_ci"]
    console.print(
        f"\nMedian follow-up (reverse Kaplan-Meier): {_fmt(follow['median'], 6)} ({_fmt(lo, 6)}, {_fmt(hi, 6)})"
    )


def _parse_count(text: str, field: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValidationError(field, f"{text!r} is not a whole number") from None
    return value


@app.command("binom")
@user_errors
def binom(
    x: Annotated[str, typer.Argument(help="Number of responders (successes).")],
    n: Annotated[str, typer.Argument(help="Number of patients evaluated.")],
    method: Annotated[
        str, typer.Option("--method", help="clopper-pearson (exact, R binom.test) or wilson (R prop.test).")
    ] = "clopper-pearson",
    conf_level: Annotated[float, typer.Option("--conf-level", help="Confidence level.")] = 0.95,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """A proportion (ORR, DCR) with its two-sided CI; Clopper-Pearson equals R's binom.test(x, n)$conf.int.

    Example: abscopal stats binom 7 24 --json
    """
    if method not in PROPORTION_METHODS:
        raise ValidationError("--method", f"must be one of {', '.join(PROPORTION_METHODS)}, got {method!r}")
    chosen: ProportionMethod = method  # type: ignore[assignment]
    ci = proportion_ci(_parse_count(x, "X"), _parse_count(n, "N"), method=chosen, conf_level=conf_level)
    if as_json:
        print_json(
            {
                "x": ci.x,
                "n": ci.n,
                "estimate": ci.estimate,
                "lower": ci.lower,
                "upper": ci.upper,
                "method": ci.method,
                "conf_level": ci.conf_level,
            }
        )
        return
    console.print(
        f"{ci.x}/{ci.n} = {ci.estimate:.4f}\n{ci.conf_level * 100:g} percent confidence interval ({ci.method}):\n"
        f" {ci.lower:.7f} {ci.upper:.7f}",
        highlight=False,
    )
