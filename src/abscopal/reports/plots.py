"""The trial report's figures: Kaplan-Meier with numbers at risk, waterfall, spider, swimmer, response by RT
role, adverse-event heat map, QoL over time and the CONSORT flow diagram.

Each function takes plain typed data (the small records below, or a :class:`~abscopal.stats.KMResult`) and an
optional ``ax``, draws in the house style of :mod:`abscopal.reports.style` and returns the Figure. No database
access here: the analysis engines (:mod:`abscopal.analysis`) assemble the data and define its records.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch

from abscopal.analysis.figures import QolSeries, SpiderSeries, SwimmerLane, WaterfallBar
from abscopal.analysis.populations import ConsortFlow
from abscopal.reports import style
from abscopal.reports.style import response_colour, response_key, styled
from abscopal.stats import KMResult, ProportionCI


def _axes(ax: Axes | None, width: float, height: float) -> tuple[Figure, Axes]:
    if ax is not None:
        fig = ax.figure
        assert isinstance(fig, Figure)
        return fig, ax
    fig = style.new_figure(width, height)
    return fig, fig.add_subplot(1, 1, 1)


def _empty(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color=style.MUTED)
    ax.set_xticks([])
    ax.set_yticks([])


# --- Kaplan-Meier


@dataclass(frozen=True)
class KMCurve:
    """One curve to draw: its label and the fitted result of :func:`abscopal.stats.kaplan_meier`."""

    label: str
    result: KMResult


def risk_times(horizon: float, step: float) -> list[float]:
    """The times of the at-risk table: 0, step, 2 step, ... up to ``horizon``."""
    if step <= 0 or horizon < 0:
        return [0.0]
    n = math.floor(horizon / step + 1e-9)
    return [i * step for i in range(n + 1)]


@styled
def km_plot(
    curves: Sequence[KMCurve],
    *,
    xlabel: str = "Months",
    ylabel: str = "Probability",
    title: str | None = None,
    time_scale: float = 1.0,
    risk_step: float | None = None,
    show_ci: bool = True,
    show_median: bool = True,
    ax: Axes | None = None,
) -> Figure:
    """Kaplan-Meier step curves with censor marks (|), optional pointwise CI band and median line, and the
    number at risk under the axis. ``time_scale`` divides the result's times (e.g. 30.4375 days -> months)."""
    fig, ax = _axes(ax, 7.0, 4.2)
    live = [c for c in curves if c.result.n > 0]
    if not live:
        _empty(ax, "No patients")
        return fig
    horizon = max(float(np.max(c.result.durations)) for c in live) / time_scale
    step = risk_step if risk_step is not None else _nice_step(horizon)
    times = risk_times(horizon, step)
    for i, curve in enumerate(live):
        colour = style.SERIES_COLOURS[i % len(style.SERIES_COLOURS)]
        r = curve.result
        x = np.concatenate(([0.0], r.time / time_scale))
        y = np.concatenate(([1.0], r.surv))
        ax.step(x, y, where="post", color=colour, label=f"{curve.label} (n={r.n}, events={r.events})")
        if show_ci:
            lo = np.concatenate(([1.0], r.lower))
            hi = np.concatenate(([1.0], r.upper))
            ax.fill_between(x, lo, hi, step="post", color=colour, alpha=0.12, linewidth=0)
        censored = r.n_censor > 0
        if censored.any():
            ax.plot(
                r.time[censored] / time_scale,
                r.surv[censored],
                linestyle="none",
                marker="|",
                markersize=7,
                color=colour,
                gid="censor",
            )
        if show_median and r.median is not None:
            m = r.median / time_scale
            ax.plot([0, m, m], [0.5, 0.5, 0.0], linestyle=":", color=colour, linewidth=0.9, gid="median")
    ax.set_ylim(0, 1.03)
    ax.set_xlim(0, max(times[-1], horizon) * 1.02 if horizon > 0 else 1.0)
    ax.set_xticks(times)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, loc="left")
    ax.grid(axis="y")
    ax.legend(loc="upper right")
    # number at risk: one row per curve, below the x axis label
    ax.text(0.0, -0.30, "Number at risk", transform=ax.transAxes, fontweight="bold", ha="left", va="top")
    for i, curve in enumerate(live):
        colour = style.SERIES_COLOURS[i % len(style.SERIES_COLOURS)]
        row_y = -0.38 - 0.08 * i
        ax.text(-0.02, row_y, curve.label, transform=ax.transAxes, ha="right", va="top", color=colour)
        for t, n in zip(times, curve.result.at_risk([t * time_scale for t in times]), strict=True):
            ax.text(t, row_y, str(n), transform=ax.get_xaxis_transform(), ha="center", va="top", gid="at_risk")
    fig.subplots_adjust(bottom=0.30 + 0.05 * len(live), left=0.16)
    return fig


def _nice_step(horizon: float) -> float:
    """A round tick step giving about 6-10 ticks over ``horizon``."""
    if horizon <= 0:
        return 1.0
    raw = horizon / 8
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 3, 5, 10):
        if raw <= m * magnitude:
            return float(m * magnitude)
    return float(10 * magnitude)


# --- waterfall


WATERFALL_MAX_PATCHES = 150  # above this, the bars are one PolyCollection


@styled
def waterfall_plot(bars: Sequence[WaterfallBar], *, title: str | None = None, ax: Axes | None = None) -> Figure:
    """Bars sorted from largest increase to largest decrease, coloured by best overall response, with the
    RECIST 1.1 reference lines at -30% (partial response) and +20% (progression)."""
    fig, ax = _axes(ax, 7.0, 3.8)
    if not bars:
        _empty(ax, "No patient with a measured post-baseline target sum")
        return fig
    ordered = sorted(bars, key=lambda b: (-b.best_pct, b.subject_id))
    x = np.arange(len(ordered))
    heights = [max(min(b.best_pct, 100.0), -100.0) for b in ordered]
    colours = [response_colour(b.response) for b in ordered]
    if len(ordered) <= WATERFALL_MAX_PATCHES:
        ax.bar(x, heights, color=colours, width=0.85 if len(ordered) < 80 else 1.0, linewidth=0)
    else:  # one collection of rectangles: thousands of bars draw in milliseconds
        quads = [[(i - 0.5, 0.0), (i - 0.5, h), (i + 0.5, h), (i + 0.5, 0.0)] for i, h in enumerate(heights)]
        ax.add_collection(PolyCollection(quads, facecolors=colours, linewidths=0, gid="bars"))
    ax.axhline(20, color=style.RESPONSE_COLOURS["PD"], linestyle="--", linewidth=0.9, gid="ref+20")
    ax.axhline(-30, color=style.RESPONSE_COLOURS["PR"], linestyle="--", linewidth=0.9, gid="ref-30")
    ax.axhline(0, color=style.MUTED, linewidth=0.6)
    ax.set_xticks([])
    ax.set_xlim(-1, len(ordered))
    ax.set_ylim(-105, max(30.0, max(heights) + 10))
    ax.set_ylabel("Best change in target sum from baseline (%)")
    ax.set_xlabel(f"Patients (n={len(ordered)})")
    if title:
        ax.set_title(title, loc="left")
    present = [k for k in style.RESPONSE_ORDER if any(response_key(b.response) == k for b in ordered)]
    labels = {b_key: b.response for b in ordered for b_key in [response_key(b.response)]}
    handles = [Patch(color=style.RESPONSE_COLOURS[k], label=labels.get(k, k)) for k in present]
    ax.legend(handles=handles, loc="upper right", ncol=min(len(handles), 4))
    return fig


# --- spider


SPIDER_MAX_LINES = 80  # above this, one LineCollection without markers (fast, and as readable)


@styled
def spider_plot(series: Sequence[SpiderSeries], *, title: str | None = None, ax: Axes | None = None) -> Figure:
    """One line per patient from (0, 0%), coloured by best overall response, with the -30% / +20% lines."""
    fig, ax = _axes(ax, 7.0, 4.0)
    drawn = [s for s in series if len(s.weeks) > 0]
    if not drawn:
        _empty(ax, "No patient with a measured post-baseline target sum")
        return fig
    if len(drawn) > SPIDER_MAX_LINES:
        segments = [
            np.column_stack(([0.0, *s.weeks], [0.0, *(max(min(p, 150.0), -100.0) for p in s.pct)])) for s in drawn
        ]
        collection = LineCollection(
            segments, colors=[response_colour(s.response) for s in drawn], linewidths=0.7, alpha=0.45, gid="patients"
        )
        ax.add_collection(collection)
        ax.set_xlim(0, max(max(s.weeks) for s in drawn) * 1.03)
    alpha = 0.9
    for s in drawn if len(drawn) <= SPIDER_MAX_LINES else ():
        ax.plot(
            [0.0, *s.weeks],
            [0.0, *(max(min(p, 150.0), -100.0) for p in s.pct)],
            color=response_colour(s.response),
            marker="o",
            markersize=2.5,
            linewidth=1.0,
            alpha=alpha,
            gid=f"patient:{s.subject_id}",
        )
    ax.axhline(20, color=style.RESPONSE_COLOURS["PD"], linestyle="--", linewidth=0.9)
    ax.axhline(-30, color=style.RESPONSE_COLOURS["PR"], linestyle="--", linewidth=0.9)
    ax.axhline(0, color=style.MUTED, linewidth=0.6)
    ax.set_xlabel("Weeks from first study treatment")
    ax.set_ylabel("Change in target sum from baseline (%)")
    ax.set_ylim(-105, 155)
    if title:
        ax.set_title(title, loc="left")
    present = [k for k in style.RESPONSE_ORDER if any(response_key(s.response) == k for s in drawn)]
    ax.legend(
        handles=[Line2D([], [], color=style.RESPONSE_COLOURS[k], label=k) for k in present],
        loc="upper left",
        ncol=min(len(present), 4),
    )
    return fig


# --- swimmer


@styled
def swimmer_plot(lanes: Sequence[SwimmerLane], *, title: str | None = None, ax: Axes | None = None) -> Figure:
    """One horizontal lane per patient (longest at the top): the bar to the last contact coloured by best
    response, the RT period, immunotherapy cycles as ticks, responses (CR/PR markers), first progression,
    death, and an arrow for patients still being followed."""
    height = max(2.5, 0.22 * len(lanes) + 1.2)
    fig, ax = _axes(ax, 7.0, height)
    if not lanes:
        _empty(ax, "No treated patient")
        return fig
    ordered = sorted(lanes, key=lambda lane: (lane.end, lane.subject_id))
    ys = np.arange(len(ordered))
    for patch in ax.barh(
        ys,
        [lane.end for lane in ordered],
        height=0.6,
        color=[response_colour(lane.best_response) for lane in ordered],
        alpha=0.35,
        linewidth=0,
    ):
        patch.set_gid("lane")
    with_rt = [(y, lane.rt) for y, lane in enumerate(ordered) if lane.rt is not None]
    if with_rt:
        rt_bars = ax.barh(
            [y for y, _ in with_rt],
            [rt[1] - rt[0] for _, rt in with_rt],
            left=[rt[0] for _, rt in with_rt],
            height=0.6,
            color=style.RT_COLOUR,
            linewidth=0,
        )
        for patch in rt_bars:
            patch.set_gid("rt")
    # one artist per kind of mark (not per lane): hundreds of lanes stay fast to draw
    marks: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for y, lane in enumerate(ordered):
        for week in lane.io:
            marks["io"][0].append(week)
            marks["io"][1].append(y)
        for week, code in lane.responses:
            key = response_key(code)
            if key in ("CR", "PR"):
                marks[key][0].append(week)
                marks[key][1].append(y)
        if lane.progression is not None:
            marks["progression"][0].append(lane.progression)
            marks["progression"][1].append(y)
        if lane.death is not None:
            marks["death"][0].append(lane.death)
            marks["death"][1].append(y)
        if lane.ongoing:
            ax.annotate(
                "",
                xy=(lane.end + 3.0, y),
                xytext=(lane.end, y),
                arrowprops={"arrowstyle": "->", "color": style.INK, "lw": 0.9},
            )
    kinds = {
        "io": ("|", 6.0, style.IO_COLOUR),
        "CR": ("*", 6.0, style.RESPONSE_COLOURS["CR"]),
        "PR": ("^", 6.0, style.RESPONSE_COLOURS["PR"]),
        "progression": ("D", 4.5, style.RESPONSE_COLOURS["PD"]),
        "death": ("X", 6.0, style.DEATH_COLOUR),
    }
    for kind, (marker, size, colour) in kinds.items():
        if kind in marks:
            mark_x, mark_y = marks[kind]
            ax.plot(mark_x, mark_y, linestyle="none", marker=marker, markersize=size, color=colour, gid=kind)
    ax.set_yticks(range(len(ordered)))
    ax.set_yticklabels([lane.subject_id for lane in ordered], fontsize=6 if len(ordered) > 40 else 7)
    ax.set_ylim(-0.8, len(ordered) - 0.2)
    ax.set_xlim(0, max(lane.end for lane in ordered) + 6.0)
    ax.set_xlabel("Weeks from first study treatment")
    if title:
        ax.set_title(title, loc="left")
    handles: list[Any] = [
        Patch(color=style.RT_COLOUR, label="Radiotherapy"),
        Line2D([], [], linestyle="none", marker="|", color=style.IO_COLOUR, label="Immunotherapy cycle"),
        Line2D([], [], linestyle="none", marker="*", color=style.RESPONSE_COLOURS["CR"], label="CR"),
        Line2D([], [], linestyle="none", marker="^", color=style.RESPONSE_COLOURS["PR"], label="PR"),
        Line2D([], [], linestyle="none", marker="D", color=style.RESPONSE_COLOURS["PD"], label="Progression"),
        Line2D([], [], linestyle="none", marker="X", color=style.DEATH_COLOUR, label="Death"),
        Line2D([], [], marker=">", color=style.INK, label="Ongoing"),
    ]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.5 / height - 0.06), ncol=4)
    return fig


# --- response rates by RT role


@dataclass(frozen=True)
class RateBar:
    """One rate with its confidence interval (None when no patient is evaluable)."""

    label: str
    ci: ProportionCI | None
    colour: str = style.ACCENT


@styled
def response_rate_plot(
    rates: Sequence[RateBar], *, title: str | None = None, ylabel: str = "Response rate (%)", ax: Axes | None = None
) -> Figure:
    """Bars of x/n with Clopper-Pearson (or the given) CI as error bars, the count printed above each bar."""
    fig, ax = _axes(ax, 6.0, 3.6)
    if not rates:
        _empty(ax, "No rates")
        return fig
    x = np.arange(len(rates))
    for i, r in enumerate(rates):
        if r.ci is None:
            ax.text(i, 2, "not evaluable", ha="center", va="bottom", color=style.MUTED, rotation=90)
            continue
        est = 100 * r.ci.estimate
        ax.bar(i, est, color=r.colour, width=0.6, linewidth=0)
        ax.errorbar(
            i,
            est,
            yerr=[[est - 100 * r.ci.lower], [100 * r.ci.upper - est]],
            color=style.INK,
            capsize=4,
            linewidth=1,
        )
        ax.text(i, 100 * r.ci.upper + 2, f"{r.ci.x}/{r.ci.n}", ha="center", va="bottom")
    ax.set_xticks(x)
    ax.set_xticklabels([r.label for r in rates])
    ax.set_ylim(0, 110)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, loc="left")
    return fig


# --- adverse-event heat map


@styled
def ae_heatmap(
    terms: Sequence[str],
    counts: Sequence[Sequence[int]],
    *,
    population: int | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Terms (rows) x CTCAE grades 1-5 (columns): patients whose worst grade of the term is that grade."""
    height = max(2.2, 0.24 * len(terms) + 1.2)
    fig, ax = _axes(ax, 6.5, height)
    if not terms:
        _empty(ax, "No adverse events")
        return fig
    matrix = np.asarray(counts, dtype=float)
    if matrix.shape != (len(terms), 5):
        raise ValueError(f"counts must be {len(terms)} x 5 (grades 1-5), got {matrix.shape}")
    image = ax.imshow(matrix, cmap=style.HEATMAP_CMAP, aspect="auto", vmin=0, vmax=max(1.0, float(matrix.max())))
    vmax = max(1.0, float(matrix.max()))
    for i in range(matrix.shape[0]):
        for j in range(5):
            n = int(matrix[i, j])
            if n:
                ax.text(j, i, str(n), ha="center", va="center", fontsize=7, color="white" if n > vmax / 2 else "black")
    ax.set_xticks(range(5))
    ax.set_xticklabels([f"G{g}" for g in range(1, 6)])
    ax.set_yticks(range(len(terms)))
    ax.set_yticklabels(list(terms))
    ax.spines[:].set_visible(False)
    ax.set_xlabel("Worst CTCAE grade per patient")
    cbar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    cbar.set_label("Patients" + (f" (of {population})" if population else ""))
    if title:
        ax.set_title(title, loc="left")
    return fig


# --- QoL over time


@styled
def qol_plot(series: Sequence[QolSeries], *, title: str | None = None, ax: Axes | None = None) -> Figure:
    """Mean scale scores (0-100) over visits with 95% CI error bars, one line per scale."""
    fig, ax = _axes(ax, 7.0, 3.8)
    drawn = [s for s in series if len(s.weeks) > 0]
    if not drawn:
        _empty(ax, "No scored questionnaires")
        return fig
    offset_step = 0.35
    for i, s in enumerate(drawn):
        colour = style.SERIES_COLOURS[i % len(style.SERIES_COLOURS)]
        x = np.asarray(s.weeks, dtype=float) + (i - (len(drawn) - 1) / 2) * offset_step
        m = np.asarray(s.mean, dtype=float)
        lo = np.asarray(s.lower, dtype=float)
        hi = np.asarray(s.upper, dtype=float)
        yerr = np.vstack([np.nan_to_num(m - lo), np.nan_to_num(hi - m)])
        ax.errorbar(x, m, yerr=yerr, color=colour, marker="o", markersize=3, capsize=2, linewidth=1.2, label=s.label)
    ax.set_ylim(0, 100)
    ax.set_xlabel("Weeks from enrolment (visit)")
    ax.set_ylabel("Mean score (0-100), 95% CI")
    ax.grid(axis="y")
    ax.legend(loc="lower left", ncol=2)
    if title:
        ax.set_title(title, loc="left")
    return fig


# --- CONSORT


def _box(
    ax: Axes, x: float, y: float, w: float, h: float, text: str, *, fill: str = "white", left: bool = False
) -> None:
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0.005,rounding_size=0.01",
            linewidth=1.0,
            edgecolor=style.INK,
            facecolor=fill,
            gid="box",
        )
    )
    if left:
        ax.text(x - w / 2 + 0.015, y, text, ha="left", va="center", fontsize=7.0)
    else:
        ax.text(x, y, text, ha="center", va="center", fontsize=7.5)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=9, color=style.INK, lw=0.9, gid="arrow"))


@styled
def consort_plot(flow: ConsortFlow, *, title: str | None = None, ax: Axes | None = None) -> Figure:
    """Boxes and arrows: assessed for eligibility -> excluded (reasons) / enrolled -> treated -> analysed."""
    fig, ax = _axes(ax, 7.0, 6.0)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    reasons = list(flow.exclusion_reasons)
    shown = reasons[:8]
    rest = sum(n for _, n in reasons[8:])
    lines = [f"Excluded (n={flow.excluded})"] + [f"  {label}: {n}" for label, n in shown]
    if rest:
        lines.append(f"  other reasons: {rest}")
    excl_h = 0.04 + 0.028 * len(lines)
    left, right = 0.26, 0.735
    _box(ax, left, 0.92, 0.36, 0.08, f"Assessed for eligibility\n(n={flow.screened})", fill="#eef3f8")
    _box(ax, right, 0.74, 0.51, excl_h, "\n".join(lines), left=True)
    _box(ax, left, 0.56, 0.36, 0.08, f"Enrolled\n(n={flow.enrolled})", fill="#eef3f8")
    _box(ax, left, 0.36, 0.36, 0.08, f"Received study treatment\n(n={flow.treated})")
    _box(ax, right, 0.46, 0.36, 0.07, f"Not treated (n={flow.not_treated})")
    disc = [f"{label}: {n}" for label, n in flow.discontinued]
    _box(ax, left, 0.13, 0.36, 0.10, f"Analysed for efficacy\n(n={flow.analysed})", fill="#eef3f8")
    if disc or flow.not_analysed:
        text = "\n".join([f"Not in analysis (n={flow.not_analysed})", *disc])
        _box(ax, right, 0.24, 0.44, 0.04 + 0.028 * (len(disc) + 1), text)
        _arrow(ax, (left, 0.24), (right - 0.22, 0.24))
    _arrow(ax, (left, 0.88), (left, 0.60))
    _arrow(ax, (left, 0.74), (right - 0.255, 0.74))
    _arrow(ax, (left, 0.52), (left, 0.40))
    _arrow(ax, (left, 0.46), (right - 0.18, 0.46))
    _arrow(ax, (left, 0.32), (left, 0.18))
    if title:
        ax.set_title(title, loc="left")
    return fig


__all__ = [
    "ConsortFlow",
    "KMCurve",
    "QolSeries",
    "RateBar",
    "SpiderSeries",
    "SwimmerLane",
    "WaterfallBar",
    "ae_heatmap",
    "consort_plot",
    "km_plot",
    "qol_plot",
    "response_rate_plot",
    "risk_times",
    "spider_plot",
    "swimmer_plot",
    "waterfall_plot",
]
