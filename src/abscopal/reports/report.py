"""The trial report: one self-contained HTML file (figures embedded as base64 PNG) and the same as PDF.

:func:`render_html` lays an :class:`~abscopal.analysis.Analysis` (the analysis engines' output) out as HTML
through the Jinja2 template ``templates/report.html.j2``; :func:`write_pdf` prints it with WeasyPrint;
:func:`build_report` does the whole run (read the database, analyse at the cut-off, draw, write both files) and
reports each step. This is the report layer: it reads the store and lays results out; it computes nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

import abscopal
from abscopal.analysis import Analysis
from abscopal.analysis.endpoints import BOR_RANKS, DAYS_PER_MONTH, SurvivalSummary
from abscopal.analysis.figures import DAYS_PER_WEEK
from abscopal.errors import ValidationError
from abscopal.reports import plots, style
from abscopal.stats import KMResult, ProportionCI

STEPS = ("read", "analyse", "figures", "html", "pdf")


@dataclass(frozen=True)
class ReportMeta:
    """What the title page and the reproducibility footer print besides the analysis."""

    title: str
    generated_at: dt.datetime
    software_version: str
    content_hash: str
    command_line: str
    database: str


# --- formatting (used by the template)


def fmt_pct(ci: ProportionCI | None) -> str:
    """'15/45 = 33.3% (95% CI 20.0% to 49.0%)' or an em dash when there is no denominator."""
    if ci is None:
        return "—"
    level = f"{ci.conf_level * 100:g}%"
    return f"{ci.x}/{ci.n} = {100 * ci.estimate:.1f}% ({level} CI {100 * ci.lower:.1f}% to {100 * ci.upper:.1f}%)"


def fmt_months(days: float | None) -> str:
    """Days shown as months (days / 30.4375) to one decimal; 'not reached' for None."""
    return "not reached" if days is None else f"{days / DAYS_PER_MONTH:.1f}"


def fmt_median(km: KMResult | None, unit_days: bool = True) -> str:
    """Median with its Brookmeyer-Crowley 95% CI, in months (from days) or in the result's own unit."""
    if km is None:
        return "—"

    def show(x: float | None) -> str:
        if x is None:
            return "NR"
        return fmt_months(x) if unit_days else f"{x:.1f}"

    lo, hi = km.median_ci
    return f"{show(km.median)} (95% CI {show(lo)} to {show(hi)})"


def fmt_surv(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


# --- figures


def _png(fig: Any) -> str:
    return base64.b64encode(style.figure_png(fig)).decode("ascii")


def draw_figures(a: Analysis) -> dict[str, str]:
    """Every figure of the report as base64 PNG, keyed by name; figures without data are left out."""
    out: dict[str, str] = {}
    if not a.has_patients and a.consort.screened == 0:
        return out
    out["consort"] = _png(plots.consort_plot(a.consort))
    if a.waterfall:
        out["waterfall"] = _png(plots.waterfall_plot(a.waterfall))
    if a.spider:
        out["spider"] = _png(plots.spider_plot(a.spider))
    if a.swimmer:
        out["swimmer"] = _png(plots.swimmer_plot(a.swimmer))
    for key, summary in (("pfs", a.pfs), ("os", a.os), ("dor", a.dor)):
        if summary.km is not None:
            curve = plots.KMCurve(summary.name.split(" (")[0], summary.km)
            out[key] = _png(plots.km_plot([curve], xlabel="Months", time_scale=DAYS_PER_MONTH))
    if any(r.ci is not None for r in a.role_rates):
        bars = [
            plots.RateBar(style.ROLE_LABELS[str(r.role)].split(" (")[0], r.ci, style.ROLE_COLOURS[str(r.role)])
            for r in a.role_rates
        ]
        out["roles"] = _png(plots.response_rate_plot(bars, ylabel="Best role response CR or PR (%)"))
    if a.heatmap_terms:
        population = a.safety.population if a.safety is not None else None
        out["heatmap"] = _png(plots.ae_heatmap(a.heatmap_terms, a.heatmap_counts, population=population))
    if any(s.weeks for s in a.qol_series):
        out["qol"] = _png(plots.qol_plot(a.qol_series))
    if a.ttd.km is not None:
        out["ttd"] = _png(plots.km_plot([plots.KMCurve("QL2", a.ttd.km)], xlabel=a.ttd.name.split("(")[-1][:-1]))
    return out


# --- HTML and PDF


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("abscopal.reports", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=fmt_pct, months=fmt_months, median=fmt_median, surv=fmt_surv)
    return env


def render_html(a: Analysis, meta: ReportMeta, figures: dict[str, str]) -> str:
    """The whole report as one HTML document with no external reference (CSS inline, images as data URIs)."""

    def km_rows(s: SurvivalSummary) -> list[tuple[str, str]]:
        if s.km is None:
            return []
        rows = [("Patients / events", f"{s.km.n} / {s.km.events}")]
        for months, at in s.landmarks:
            rows.append(
                (
                    f"{months}-month rate",
                    f"{fmt_surv(at.surv)} (95% CI {fmt_surv(at.lower)} to {fmt_surv(at.upper)}); at risk {at.n_risk}",
                )
            )
        return rows

    template = _environment().get_template("report.html.j2")
    return template.render(
        a=a,
        meta=meta,
        fig=figures,
        km_rows=km_rows,
        css=(Path(__file__).parent / "templates" / "report.css").read_text(encoding="utf-8"),
        days_per_week=DAYS_PER_WEEK,
        bor_ranks=BOR_RANKS,
    )


def write_pdf(html: str, path: Path) -> int:
    """Print the HTML with WeasyPrint (A4, the template's print CSS); returns the number of pages."""
    import logging

    from weasyprint import HTML

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    document = HTML(string=html, base_url=None).render()
    document.write_pdf(str(path))
    return len(document.pages)


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    pdf: Path | None  # None when only the HTML was asked for
    pages: int
    analysis: Analysis


def build_report(
    output: Path,
    *,
    database_url: str | None = None,
    cutoff: dt.date | None = None,
    title: str | None = None,
    command_line: str = "abscopal report",
    on_step: Callable[[str], None] | None = None,
    pdf: bool = True,
) -> ReportFiles:
    """Read the trial, analyse it at ``cutoff`` (default: today), draw the figures and write report.html and
    (unless ``pdf=False``) report.pdf into ``output`` (created if needed)."""
    from abscopal.analysis import analyse
    from abscopal.protocol.model import load_bundled
    from abscopal.reports.io import content_hash, load_trial
    from abscopal.store.database import _redact, make_engine, require_schema

    def step(name: str) -> None:
        if on_step is not None:
            on_step(name)

    if output.exists() and not output.is_dir():
        raise ValidationError("--output", f"{output} exists and is not a directory")
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValidationError("--output", f"cannot create {output}: {exc.strerror}") from None
    cut = cutoff or dt.date.today()
    step("read")
    from abscopal.settings import Settings

    engine = make_engine(database_url, read_only=True)
    try:
        require_schema(engine)
        with engine.connect() as conn:
            data = load_trial(conn)
            digest = content_hash(conn)
        url = _redact(database_url or Settings().resolved_database_url())
    finally:
        engine.dispose()
    step("analyse")
    analysis = analyse(data, load_bundled(), cut)
    meta = ReportMeta(
        title=title or f"{analysis.trial_id} trial report",
        generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
        software_version=abscopal.__version__,
        content_hash=digest,
        command_line=command_line,
        database=url,
    )
    step("figures")
    figures = draw_figures(analysis)
    step("html")
    html = render_html(analysis, meta, figures)
    html_path, pdf_path = output / "report.html", output / "report.pdf"
    _write_atomic(html_path, html.encode("utf-8"))
    if not pdf:
        return ReportFiles(html_path, None, 0, analysis)
    step("pdf")
    fd, tmp = tempfile.mkstemp(dir=output, prefix=".report.pdf.")
    os.close(fd)
    try:
        pages = write_pdf(html, Path(tmp))
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, pdf_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return ReportFiles(html_path, pdf_path, pages, analysis)
