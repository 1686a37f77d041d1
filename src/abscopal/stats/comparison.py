"""The log-rank test comparing survival between subgroups, equal to R's ``survival::survdiff`` (rho = 0).

Observed and expected events per group and the hypergeometric variance (Mantel 1966; Peto & Peto 1972) are summed
over the distinct event times; the statistic drops groups with no expected events and then the first group, and
solves the remaining variance system, as survdiff does. SciPy gives the chi-square tail probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import chi2

from abscopal.errors import ValidationError
from abscopal.stats.survival import merge_near_ties, validate_survival_data


@dataclass(frozen=True)
class GroupEvents:
    """One group's line in survdiff's table: N, observed and expected events, and the variance diagonal."""

    group: str
    n: int
    observed: int
    expected: float
    variance: float

    @property
    def o_minus_e_sq_over_e(self) -> float:
        """(O - E)^2 / E, survdiff's fourth column."""
        return (self.observed - self.expected) ** 2 / self.expected if self.expected > 0 else float("nan")

    @property
    def o_minus_e_sq_over_v(self) -> float:
        """(O - E)^2 / V, survdiff's fifth column."""
        return (self.observed - self.expected) ** 2 / self.variance if self.variance > 0 else float("nan")


@dataclass(frozen=True)
class LogRankResult:
    """Chi-square statistic, its degrees of freedom and p-value, and the per-group table."""

    chisq: float
    df: int
    p: float
    groups: tuple[GroupEvents, ...]


def _group_key(label: object) -> tuple[int, float | str]:
    # Numbers sort numerically and before text, as R orders the levels of factor(x).
    try:
        return (0, float(str(label)))
    except ValueError:
        return (1, str(label))


def logrank(
    durations: Sequence[float] | npt.ArrayLike, events: Sequence[int] | npt.ArrayLike, groups: Sequence[object]
) -> LogRankResult:
    """Log-rank test of equal survival across ``groups``; chisq, df and p equal R ``survdiff(Surv(t, e) ~ g)``."""
    t, e = validate_survival_data(durations, events)
    t = merge_near_ties(t)
    labels = [str(g) for g in groups]
    if len(labels) != t.size:
        raise ValidationError("groups", f"has {len(labels)} values but durations has {t.size}; they must pair up")
    if any(label.strip() == "" for label in labels):
        raise ValidationError("groups", "a group label is empty; every patient needs a subgroup")
    names = sorted(set(labels), key=_group_key)
    if len(names) < 2:
        raise ValidationError("groups", "the log-rank test needs at least two groups")
    code = np.array([names.index(label) for label in labels], dtype=np.int64)
    k = len(names)

    event_times = np.unique(t[e == 1])
    observed = np.zeros(k)
    expected = np.zeros(k)
    variance = np.zeros((k, k))
    for time in event_times:
        at_risk = t >= time
        died = at_risk & (t == time) & (e == 1)
        n_j = np.bincount(code[at_risk], minlength=k).astype(np.float64)
        d_j = np.bincount(code[died], minlength=k).astype(np.float64)
        n, d = n_j.sum(), d_j.sum()
        observed += d_j
        expected += d * n_j / n
        if n > 1:
            share = n_j / n
            variance += d * (n - d) / (n - 1) * (np.diag(share) - np.outer(share, share))

    keep = np.flatnonzero(expected > 0)
    df = int(keep.size) - 1
    if df < 1:
        chisq = 0.0
    else:
        sub = keep[1:]
        diff = (observed - expected)[sub]
        v = variance[np.ix_(sub, sub)]
        try:
            chisq = float(diff @ np.linalg.solve(v, diff))
        except np.linalg.LinAlgError:
            # survdiff stops here too ("system is exactly singular"): the data cannot tell the groups apart.
            raise ValidationError(
                "groups",
                "the log-rank variance is singular (for example every event at one time), so the groups "
                "cannot be compared",
            ) from None
    p = float(chi2.sf(chisq, df)) if df >= 1 else 1.0
    table = tuple(
        GroupEvents(
            group=name,
            n=int((code == i).sum()),
            observed=int(observed[i]),
            expected=float(expected[i]),
            variance=float(variance[i, i]),
        )
        for i, name in enumerate(names)
    )
    return LogRankResult(chisq=chisq, df=df, p=p, groups=table)
