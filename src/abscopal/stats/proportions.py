"""Response proportions (ORR, DCR) with exact or score confidence intervals.

Clopper-Pearson (1934) is the default: the exact interval R's ``binom.test`` reports, from SciPy's beta quantiles
(R's ``qbeta``). Wilson (1927) is the score interval R's ``prop.test(correct = FALSE)`` reports, in closed form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from scipy.stats import beta, norm

from abscopal.errors import ValidationError

ProportionMethod = Literal["clopper-pearson", "wilson"]
PROPORTION_METHODS: tuple[str, ...] = get_args(ProportionMethod)


@dataclass(frozen=True)
class ProportionCI:
    """A proportion x/n with its two-sided confidence interval (``lower`` <= ``estimate`` <= ``upper``)."""

    x: int
    n: int
    estimate: float
    lower: float
    upper: float
    method: ProportionMethod
    conf_level: float

    def __str__(self) -> str:
        pct = f"{self.conf_level * 100:g}%"
        return f"{self.x}/{self.n} = {self.estimate:.4f} ({pct} CI {self.lower:.4f} to {self.upper:.4f}, {self.method})"


def check_conf_level(conf_level: float, field: str = "conf_level") -> float:
    """Refuse a confidence level outside (0, 1); it is a probability."""
    if not isinstance(conf_level, int | float) or isinstance(conf_level, bool) or not math.isfinite(conf_level):
        raise ValidationError(field, f"must be a number between 0 and 1, got {conf_level!r}")
    if not 0.0 < float(conf_level) < 1.0:
        raise ValidationError(field, f"must be strictly between 0 and 1 (for example 0.95), got {conf_level}")
    return float(conf_level)


def _check_count(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be a whole number, got {value!r}")
    if value < 0:
        raise ValidationError(field, f"must not be negative, got {value}")
    return value


def proportion_ci(
    x: int, n: int, method: ProportionMethod = "clopper-pearson", conf_level: float = 0.95
) -> ProportionCI:
    """Estimate x/n with a two-sided CI: Clopper-Pearson (R ``binom.test``) or Wilson (R ``prop.test(correct=FALSE)``).

    At x = 0 the lower limit is 0 and at x = n the upper limit is 1 for both methods, as in R.
    """
    x = _check_count(x, "x")
    n = _check_count(n, "n")
    if n == 0:
        raise ValidationError("n", "must be at least 1 (no patients, no proportion)")
    if x > n:
        raise ValidationError("x", f"{x} responders cannot exceed the {n} patients evaluated")
    if method not in PROPORTION_METHODS:
        raise ValidationError("method", f"must be one of {', '.join(PROPORTION_METHODS)}, got {method!r}")
    level = check_conf_level(conf_level)
    tail = (1.0 - level) / 2.0
    if method == "clopper-pearson":
        lower = 0.0 if x == 0 else float(beta.ppf(tail, x, n - x + 1))
        upper = 1.0 if x == n else float(beta.ppf(1.0 - tail, x + 1, n - x))
    else:
        z = float(norm.ppf(1.0 - tail))
        centre = x + z * z / 2.0
        half = z * math.sqrt(x * (n - x) / n + z * z / 4.0)
        lower = 0.0 if x == 0 else (centre - half) / (n + z * z)
        upper = 1.0 if x == n else (centre + half) / (n + z * z)
    return ProportionCI(
        x=x, n=n, estimate=x / n, lower=max(0.0, lower), upper=min(1.0, upper), method=method, conf_level=level
    )
