"""The mean and its t-based confidence interval (for QoL scores over time)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean with its t-based confidence interval, mean ± t(n-1) s/√n (as R's ``t.test``); the mean when n = 1."""
    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return mean, mean, mean
    from scipy.stats import t

    half = float(t.ppf(0.5 + level / 2, n - 1)) * statistics.stdev(values) / math.sqrt(n)
    return mean, mean - half, mean + half
