"""Small server-drawn SVG charts for the pages (no script, no inline style: the CSP allows neither).

Only geometry lives here: the numbers come from the engines, and every chart has a table beside it for screen
readers and for anyone who would rather read than look.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LineChart:
    """A line over equally spaced labels, scaled into a ``width`` × ``height`` box with a margin for the axes."""

    width: int
    height: int
    points: str  # the polyline's "x,y x,y ..."
    dots: tuple[tuple[float, float, str, int], ...]  # (x, y, label, value)
    y_max: int
    target_y: float | None
    baseline_y: float
    first_label: str
    last_label: str


def cumulative_line(
    series: Sequence[tuple[str, int]], target: int | None = None, width: int = 360, height: int = 140
) -> LineChart | None:
    """The geometry of a cumulative count by label (e.g. patients enrolled by month), with an optional target."""
    if not series:
        return None
    left, right, top, bottom = 36.0, 8.0, 10.0, 22.0
    y_max = max([v for _, v in series] + ([target] if target else []) + [1])
    span = max(len(series) - 1, 1)

    def x(i: int) -> float:
        return round(left + (width - left - right) * (i / span if len(series) > 1 else 0.5), 1)

    def y(v: float) -> float:
        return round(top + (height - top - bottom) * (1 - v / y_max), 1)

    dots = tuple((x(i), y(v), label, v) for i, (label, v) in enumerate(series))
    return LineChart(
        width=width, height=height, points=" ".join(f"{px},{py}" for px, py, _, _ in dots), dots=dots, y_max=y_max,
        target_y=y(target) if target else None, baseline_y=y(0), first_label=series[0][0], last_label=series[-1][0],
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class TimelineDot:
    x: float
    y: float
    lane: str
    number: int
    planned: str
    status: str
    colour: str


@dataclass(frozen=True, slots=True)
class Timeline:
    """Visits as dots on lanes (one per visit kind) over the days from the first to the last visit."""

    width: int
    height: int
    lanes: tuple[tuple[str, float], ...]  # (kind, y)
    dots: tuple[TimelineDot, ...]
    today_x: float | None
    first_day: str
    last_day: str


#: Dot colours by visit status (protocol.calendar.VisitStatus values); the legend and the table carry the words.
STATUS_COLOURS = {
    "done": "#116329",
    "done_out_of_window": "#7d4e00",
    "overdue": "#a40e26",
    "due": "#0b5cad",
    "upcoming": "#8c959f",
    "unscheduled": "#57606a",
    "not_expected": "#d0d7de",
}


def timeline(
    visits: Sequence[tuple[str, int, dt.date, str]], as_of: dt.date, kinds: Sequence[str], width: int = 720
) -> Timeline | None:
    """The geometry of a patient's visit calendar: ``visits`` are (kind, number, planned day, status)."""
    if not visits:
        return None
    left, right, top, lane_h = 150.0, 12.0, 12.0, 22.0
    used = [k for k in kinds if any(v[0] == k for v in visits)]
    lanes = {k: top + lane_h * i + lane_h / 2 for i, k in enumerate(used)}
    first = min(v[2] for v in visits)
    last = max(max(v[2] for v in visits), first + dt.timedelta(days=1))
    span = (last - first).days

    def x(day: dt.date) -> float:
        return round(left + (width - left - right) * (day - first).days / span, 1)

    dots = tuple(
        TimelineDot(x(day), lanes[kind], kind, number, day.isoformat(), status, STATUS_COLOURS.get(status, "#57606a"))
        for kind, number, day, status in visits
        if kind in lanes
    )
    return Timeline(
        width=width, height=int(top * 2 + lane_h * len(used) + 14), lanes=tuple(lanes.items()), dots=dots,
        today_x=x(as_of) if first <= as_of <= last else None, first_day=first.isoformat(), last_day=last.isoformat(),
    )  # fmt: skip
