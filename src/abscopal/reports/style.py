"""The report's one house style: colours for responses, RT roles and grades, fonts, and figure creation.

Every plot in :mod:`abscopal.reports.plots` draws through :func:`styled` and :func:`new_figure`, so that a
change here changes every figure. Figures are made with ``matplotlib.figure.Figure`` (no pyplot state), which
renders with the Agg canvas: safe in a server and in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, ParamSpec, TypeVar, cast

import matplotlib

matplotlib.use("Agg")

from matplotlib import rc_context
from matplotlib.figure import Figure

P = ParamSpec("P")
R = TypeVar("R")

#: Best overall response colours; RECIST 1.1 and iRECIST codes of the same rank share a colour.
RESPONSE_COLOURS: dict[str, str] = {
    "CR": "#1b7837",
    "PR": "#5aae61",
    "SD": "#4393c3",
    "NonCR/NonPD": "#92c5de",
    "UPD": "#f4a582",
    "PD": "#b2182b",
    "NE": "#9e9e9e",
}
RESPONSE_ORDER: tuple[str, ...] = ("CR", "PR", "SD", "NonCR/NonPD", "UPD", "PD", "NE")

ROLE_COLOURS: dict[str, str] = {
    "conventional": "#d6604d",
    "low_dose": "#f4a582",
    "observation": "#4393c3",
}
ROLE_LABELS: dict[str, str] = {
    "conventional": "Conventional RT (in-field)",
    "low_dose": "Low-dose RT (in-field)",
    "observation": "Observation (out-of-field, abscopal)",
}

INK = "#222222"
MUTED = "#777777"
GRID = "#dddddd"
ACCENT = "#2c5d8a"
IO_COLOUR = "#6a3d9a"
RT_COLOUR = "#fdb863"
DEATH_COLOUR = "#000000"
SERIES_COLOURS: tuple[str, ...] = ("#2c5d8a", "#d6604d", "#1b7837", "#8c510a", "#6a3d9a", "#01665e")
HEATMAP_CMAP = "Reds"

DPI = 110
FONT_SIZE = 9.0

RC: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": FONT_SIZE,
    "axes.titlesize": FONT_SIZE + 1,
    "axes.titleweight": "bold",
    "axes.labelsize": FONT_SIZE,
    "axes.edgecolor": MUTED,
    "axes.labelcolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "grid.color": GRID,
    "xtick.color": INK,
    "ytick.color": INK,
    "xtick.labelsize": FONT_SIZE - 1,
    "ytick.labelsize": FONT_SIZE - 1,
    "legend.fontsize": FONT_SIZE - 1,
    "legend.frameon": False,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "savefig.bbox": "tight",
    "lines.linewidth": 1.4,
    "svg.fonttype": "none",
}


def response_key(code: str | None) -> str:
    """The colour key of a RECIST 1.1 or iRECIST code: iCR -> CR, iCPD -> PD, iUPD -> UPD, iNN -> NonCR/NonPD."""
    if not code:
        return "NE"
    c = code.strip()
    mapping = {"iCR": "CR", "iPR": "PR", "iSD": "SD", "iNN": "NonCR/NonPD", "iUPD": "UPD", "iCPD": "PD"}
    c = mapping.get(c, c)
    return c if c in RESPONSE_COLOURS else "NE"


def response_colour(code: str | None) -> str:
    """The colour of a response code (either criteria); unknown codes are grey like NE."""
    return RESPONSE_COLOURS[response_key(code)]


@contextmanager
def house_style() -> Iterator[None]:
    """Matplotlib rc settings of the house style, for the duration of a drawing."""
    with rc_context(cast(Any, RC)):
        yield


def styled(func: Callable[P, R]) -> Callable[P, R]:
    """Run a plot function inside :func:`house_style` (artists read rc settings when they are created)."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with house_style():
            return func(*args, **kwargs)

    return wrapper


def new_figure(width: float = 7.0, height: float = 4.0) -> Figure:
    """A figure of ``width`` x ``height`` inches, not registered with pyplot (garbage-collected normally)."""
    return Figure(figsize=(width, height), dpi=DPI, layout=None)


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes at the house DPI, cropped to its content (labels under the axes included)."""
    import io

    buffer = io.BytesIO()
    with house_style():
        fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    return buffer.getvalue()
