"""Kaplan-Meier estimates for PFS, OS and duration of response, numerically equal to R's ``survival::survfit``.

The product-limit estimate is computed here with NumPy (one sort, risk sets by cumulative counts, S(t) as the running
product of (n - d) / n, as survfit's C code does), with Greenwood standard errors and the ``log-log``, ``log`` and
``plain`` pointwise intervals of ``survfit``'s ``conf.type``, and the median with the Brookmeyer-Crowley (1982)
interval read off those bands the way ``quantile.survfit`` does (survival 3.5). The median follow-up is the median
of the reverse Kaplan-Meier curve (Schemper & Smith 1996).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
from scipy.stats import norm

from abscopal.errors import ValidationError
from abscopal.stats.proportions import check_conf_level

ConfType = Literal["log-log", "log", "plain"]
CONF_TYPES: tuple[str, ...] = get_args(ConfType)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# quantile.survfit's default tolerance: sqrt(.Machine$double.eps).
_QUANTILE_TOLERANCE = math.sqrt(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class KMRow:
    """One row of the curve at an observed time, as R's ``summary(survfit(...), censored = TRUE)`` prints it."""

    time: float
    n_risk: int
    n_event: int
    n_censor: int
    surv: float
    std_err: float | None
    lower: float | None
    upper: float | None


@dataclass(frozen=True)
class SurvivalAt:
    """The curve read at a chosen time (a landmark), as R's ``summary(fit, times = ...)`` reports it.

    ``surv`` is None beyond the last observed time, where the curve is not estimated (R drops such times).
    ``n_event`` counts events after the previous requested time up to and including this one.
    """

    time: float
    n_risk: int
    n_event: int
    surv: float | None
    std_err: float | None
    lower: float | None
    upper: float | None


def _opt(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else float(value)


def validate_survival_data(
    durations: Sequence[float] | npt.ArrayLike, events: Sequence[int] | npt.ArrayLike
) -> tuple[FloatArray, IntArray]:
    """Check times (finite, not negative) and events (0 = censored, 1 = event) and return them as arrays."""
    try:
        t = np.asarray(durations, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValidationError("durations", "must be numbers (times since the origin)") from None
    try:
        e_raw = np.asarray(events, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValidationError("events", "must be 0 (censored) or 1 (event)") from None
    if t.size == 0:
        raise ValidationError("durations", "no observations: a survival curve needs at least one patient")
    if t.size != e_raw.size:
        raise ValidationError("events", f"has {e_raw.size} values but durations has {t.size}; they must pair up")
    bad_t = np.flatnonzero(~np.isfinite(t))
    if bad_t.size:
        raise ValidationError("durations", f"value {bad_t[0] + 1} is not a finite number")
    neg = np.flatnonzero(t < 0)
    if neg.size:
        raise ValidationError("durations", f"value {neg[0] + 1} is negative ({t[neg[0]]:g}); times start at 0")
    bad_e = np.flatnonzero((e_raw != 0) & (e_raw != 1))
    if bad_e.size:
        raise ValidationError(
            "events", f"value {bad_e[0] + 1} is {e_raw[bad_e[0]]:g}; use 1 for an event and 0 for censored"
        )
    return t, e_raw.astype(np.int64)


def merge_near_ties(durations: FloatArray, tolerance: float = _QUANTILE_TOLERANCE) -> FloatArray:
    """Treat times that differ only by rounding as tied, as R's ``aeqSurv`` does (survfit and survdiff, timefix).

    Distinct sorted times closer than ``tolerance`` in absolute value, or relative to the mean absolute time, are
    merged into the first of their run (so 0.1 + 0.2 and 0.3 are one time, as in R).
    """
    unique = np.unique(durations)
    if unique.size < 2:
        return durations
    gaps = np.diff(unique)
    scale = float(np.mean(np.abs(unique)))
    tied = (gaps <= tolerance) | (gaps / scale <= tolerance if scale > 0 else np.zeros_like(gaps, dtype=bool))
    if not tied.any():
        return durations
    cuts = unique[np.concatenate(([True], ~tied))]
    merged: FloatArray = cuts[np.searchsorted(cuts, durations, side="right") - 1]
    return merged


@functools.lru_cache(maxsize=16)
def _normal_quantile(q: float) -> float:
    # Cached: SciPy's ppf costs a third of a millisecond a call, more than a 200-patient curve (1,000 groups).
    return float(norm.ppf(q))


def _confidence_band(
    surv: FloatArray, se_log: FloatArray, conf_type: ConfType, conf_level: float
) -> tuple[FloatArray, FloatArray]:
    """Pointwise limits of S(t) as survival:::survfit_confint computes them (survival 3.5).

    Where S = 1 (no event yet) the limits are [1, 1]; R leaves them NA for ``log-log`` apart from time 0.
    """
    z = _normal_quantile(1.0 - (1.0 - conf_level) / 2.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "plain":
            half = z * se_log * surv
            lower = np.maximum(surv - half, 0.0)
            upper = np.minimum(surv + half, 1.0)
            lower = np.where(np.isnan(half), np.nan, lower)
            upper = np.where(np.isnan(half), np.nan, upper)
        elif conf_type == "log":
            s = np.where(surv == 0.0, np.nan, surv)
            lower = np.exp(np.log(s) - z * se_log)
            upper = np.minimum(np.exp(np.log(s) + z * se_log), 1.0)
        else:  # log-log (Kalbfleisch & Prentice 1980), SAS PROC LIFETEST's default
            s = np.where((surv == 0.0) | (surv == 1.0), np.nan, surv)
            shift = z * se_log / np.log(s)
            lower = np.exp(-np.exp(np.log(-np.log(s)) - shift))
            upper = np.exp(-np.exp(np.log(-np.log(s)) + shift))
    start = (surv == 1.0) & (se_log == 0.0)
    lower = np.where(start, 1.0, lower)
    upper = np.where(start, 1.0, upper)
    return lower.astype(np.float64), upper.astype(np.float64)


def _quantile_time(times: FloatArray, curve: FloatArray, p: float, tol: float = _QUANTILE_TOLERANCE) -> float | None:
    """Time at which the step curve ``curve`` (a survival curve or one of its bands) first reaches 1 - p.

    Follows survival:::findq: a curve lying exactly at 1 - p over an interval gives the midpoint of that interval,
    and a curve ending exactly at 1 - p gives the midpoint up to the last observed time.
    """
    x = np.concatenate(([0.0], times))
    y = np.concatenate(([0.0], 1.0 - curve))
    finite = ~np.isnan(y)
    if not finite.any() or float(np.max(y[finite])) < p:
        return None
    xmax = float(x[-1])
    # Keep the first of each distinct value (censored rows repeat the value above them; NaNs count as equal),
    # as R's duplicated() does.
    steps = np.diff(y[finite])
    if bool((steps >= 0).all()):
        # The usual case, a curve that never rises: repeated numbers are adjacent once the NaNs are set aside, and
        # the kept ones are already in increasing order (no sort needed). The first NaN is kept, as duplicated().
        keep = np.zeros(y.size, dtype=bool)
        keep[np.flatnonzero(finite)[np.concatenate(([True], steps > 0))]] = True
        if not finite.all():
            keep[int(np.argmin(finite))] = True
        x, y = x[keep], y[keep]
        n = y.size
        iv = np.flatnonzero(~np.isnan(y))
        yv = y[iv]
    else:
        _, first = np.unique(y, return_index=True, equal_nan=True)
        keep = np.sort(first)
        x, y = x[keep], y[keep]
        n = y.size
        valid = ~np.isnan(y)
        yv, iv = y[valid], np.arange(n)[valid]
        order = np.argsort(yv, kind="stable")
        yv, iv = yv[order], iv[order]

    def first_at_or_above(level: float) -> int | None:
        # approx(y, 1:n, level, method = "constant", f = 1): the index paired with the smallest y >= level.
        pos = int(np.searchsorted(yv, level, side="left"))
        return int(iv[pos]) if pos < yv.size else None

    i1 = first_at_or_above(p - tol)
    i2 = first_at_or_above(p + tol)
    quant: float | None = None
    if i1 is not None and i2 is not None:
        quant = (float(x[i1]) + float(x[i2])) / 2.0
    if not math.isnan(float(y[n - 1])) and abs(p - float(y[n - 1])) < tol and i1 is not None:
        quant = (float(x[i1]) + xmax) / 2.0
    return quant


@dataclass(frozen=True, eq=False)
class KMResult:
    """A fitted Kaplan-Meier curve; read ``median``, ``median_ci``, ``table``, ``survival_at(...)``, ``at_risk(...)``.

    Arrays hold one entry per distinct observed time (events and censorings), like ``survfit``'s components.
    """

    n: int
    events: int
    conf_type: ConfType
    conf_level: float
    time: FloatArray = field(repr=False)
    n_risk: IntArray = field(repr=False)
    n_event: IntArray = field(repr=False)
    n_censor: IntArray = field(repr=False)
    surv: FloatArray = field(repr=False)
    std_err_log: FloatArray = field(repr=False)
    lower: FloatArray = field(repr=False)
    upper: FloatArray = field(repr=False)
    durations: FloatArray = field(repr=False)
    event_flags: IntArray = field(repr=False)
    median: float | None
    median_ci: tuple[float | None, float | None]

    @property
    def table(self) -> list[KMRow]:
        """Every distinct observed time with risk set, events, censorings, S(t), its standard error and CI."""
        rows = []
        for i in range(self.time.size):
            with np.errstate(invalid="ignore"):  # S = 0 with an infinite log-scale error: R prints NaN
                se = float(self.surv[i] * self.std_err_log[i])
            rows.append(
                KMRow(
                    time=float(self.time[i]),
                    n_risk=int(self.n_risk[i]),
                    n_event=int(self.n_event[i]),
                    n_censor=int(self.n_censor[i]),
                    surv=float(self.surv[i]),
                    std_err=_opt(se),
                    lower=_opt(float(self.lower[i])),
                    upper=_opt(float(self.upper[i])),
                )
            )
        return rows

    def at_risk(self, times: Iterable[float]) -> list[int]:
        """Number of patients still at risk at each time: observed time >= t (the risk table under a KM plot)."""
        sorted_t = np.sort(self.durations)
        out = []
        for t in _check_times(times):
            out.append(int(sorted_t.size - np.searchsorted(sorted_t, t, side="left")))
        return out

    def survival_at(self, times: Iterable[float]) -> list[SurvivalAt]:
        """S(t) with standard error and CI at each time, in increasing order, as R's ``summary(fit, times=)``."""
        requested = sorted(_check_times(times))
        last_time = float(self.time[-1])
        at_risk = self.at_risk(requested)
        event_times = np.sort(self.durations[self.event_flags == 1])
        out = []
        previous = -math.inf
        for t, n_risk in zip(requested, at_risk, strict=True):
            n_event = int(
                np.searchsorted(event_times, t, side="right") - np.searchsorted(event_times, previous, side="right")
            )
            previous = t
            i = int(np.searchsorted(self.time, t, side="right")) - 1
            if t > last_time:
                out.append(SurvivalAt(t, n_risk, n_event, None, None, None, None))
            elif i < 0:
                out.append(SurvivalAt(t, n_risk, n_event, 1.0, 0.0, 1.0, 1.0))
            else:
                s = float(self.surv[i])
                out.append(
                    SurvivalAt(
                        time=t,
                        n_risk=n_risk,
                        n_event=n_event,
                        surv=s,
                        std_err=_opt(s * float(self.std_err_log[i])),
                        lower=_opt(float(self.lower[i])),
                        upper=_opt(float(self.upper[i])),
                    )
                )
        return out

    def quantile(self, p: float) -> tuple[float | None, float | None, float | None]:
        """Time by which a fraction ``p`` has had the event, with its CI: R's ``quantile(fit, p)``."""
        if not 0.0 < p < 1.0:
            raise ValidationError("p", f"must be strictly between 0 and 1, got {p}")
        return (
            _quantile_time(self.time, self.surv, p),
            _quantile_time(self.time, self.lower, p),
            _quantile_time(self.time, self.upper, p),
        )


def _check_times(times: Iterable[float]) -> list[float]:
    out = []
    for t in times:
        value = float(t)
        if not math.isfinite(value) or value < 0:
            raise ValidationError("times", f"must be finite and not negative, got {t!r}")
        out.append(value)
    return out


def _check_conf_type(conf_type: str) -> ConfType:
    if conf_type not in CONF_TYPES:
        raise ValidationError("conf_type", f"must be one of {', '.join(CONF_TYPES)}, got {conf_type!r}")
    return conf_type  # type: ignore[return-value]


def kaplan_meier(
    durations: Sequence[float] | npt.ArrayLike,
    events: Sequence[int] | npt.ArrayLike,
    conf_type: ConfType = "log-log",
    conf_level: float = 0.95,
) -> KMResult:
    """Fit the Kaplan-Meier curve with Greenwood errors; equal to R ``survfit(Surv(t, e) ~ 1, conf.type = ...)``.

    The median and its Brookmeyer-Crowley CI follow R's ``quantile.survfit``; ``log-log`` is the default as in SAS.
    """
    t, e = validate_survival_data(durations, events)
    t = merge_near_ties(t)
    kind = _check_conf_type(conf_type)
    level = check_conf_level(conf_level)
    time, position = np.unique(t, return_inverse=True)
    removed = np.bincount(position.reshape(-1), minlength=time.size).astype(np.int64)
    n_event = np.bincount(position.reshape(-1), weights=e, minlength=time.size).astype(np.int64)
    n_censor = removed - n_event
    n_risk = (t.size - np.concatenate(([0], np.cumsum(removed)[:-1]))).astype(np.int64)
    surv = np.cumprod(1.0 - n_event / n_risk).astype(np.float64)
    # Greenwood (1926) on the log scale, as survfit's std.err: sqrt(sum d / (n (n - d))).
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event).astype(np.float64)), 0.0)
    std_err_log = np.sqrt(np.cumsum(terms)).astype(np.float64)
    lower, upper = _confidence_band(surv, std_err_log, kind, level)
    median = _quantile_time(time, surv, 0.5)
    median_ci = (_quantile_time(time, lower, 0.5), _quantile_time(time, upper, 0.5))
    return KMResult(
        n=int(t.size),
        events=int(e.sum()),
        conf_type=kind,
        conf_level=level,
        time=time,
        n_risk=n_risk,
        n_event=n_event,
        n_censor=n_censor,
        surv=surv,
        std_err_log=std_err_log,
        lower=lower,
        upper=upper,
        durations=t,
        event_flags=e,
        median=median,
        median_ci=median_ci,
    )


def duration_of_response(
    durations: Sequence[float] | npt.ArrayLike,
    events: Sequence[int] | npt.ArrayLike,
    conf_type: ConfType = "log-log",
    conf_level: float = 0.95,
) -> KMResult:
    """Kaplan-Meier of duration of response: responders only, from first response to progression or death."""
    return kaplan_meier(durations, events, conf_type=conf_type, conf_level=conf_level)


def median_follow_up(
    durations: Sequence[float] | npt.ArrayLike,
    events: Sequence[int] | npt.ArrayLike,
    conf_type: ConfType = "log-log",
    conf_level: float = 0.95,
) -> KMResult:
    """Reverse Kaplan-Meier (Schemper & Smith 1996): censorings become the events; ``.median`` is the median follow-up.

    Equal to R ``survfit(Surv(t, 1 - e) ~ 1)``.
    """
    t, e = validate_survival_data(durations, events)
    return kaplan_meier(t, 1 - e, conf_type=conf_type, conf_level=conf_level)
