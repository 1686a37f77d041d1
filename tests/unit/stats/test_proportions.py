"""Proportions (ORR, DCR) with Clopper-Pearson and Wilson intervals, checked against R 4.2.2.

Reference values: tests/fixtures/stats/reference.json ("binom"), from binom.test(x, n, conf.level)$conf.int and
prop.test(x, n, conf.level, correct = FALSE)$conf.int; see tests/fixtures/stats/README.md.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from abscopal.errors import ValidationError
from abscopal.stats.proportions import proportion_ci

REFERENCE = json.loads((Path(__file__).parents[2] / "fixtures" / "stats" / "reference.json").read_text())
BINOM_CASES = REFERENCE["binom"]


@pytest.mark.parametrize(
    "case", BINOM_CASES, ids=[f"{c['method']}-{c['x']}/{c['n']}-{c['conf_level']}" for c in BINOM_CASES]
)
def test_interval_equals_r_to_1e_9(case: dict[str, object]) -> None:
    ci = proportion_ci(int(case["x"]), int(case["n"]), method=case["method"], conf_level=case["conf_level"])  # type: ignore[arg-type]
    assert ci.estimate == pytest.approx(case["estimate"], abs=1e-12)
    assert ci.lower == pytest.approx(case["lower"], abs=1e-9)
    assert ci.upper == pytest.approx(case["upper"], abs=1e-9)


def test_clopper_pearson_is_the_default_method() -> None:
    # binom.test(7, 24)$conf.int = 0.1261521 0.5109478 (R 4.2.2).
    ci = proportion_ci(7, 24)
    assert ci.method == "clopper-pearson"
    assert (round(ci.lower, 7), round(ci.upper, 7)) == (0.1261521, 0.5109478)


def test_zero_responders_give_a_lower_limit_of_zero_and_the_rule_of_three_like_upper_limit() -> None:
    # Hand-worked: with x = 0 the exact upper limit solves (1 - p)^n = alpha/2, so p = 1 - 0.025^(1/n).
    ci = proportion_ci(0, 10)
    assert ci.lower == 0.0
    assert ci.upper == pytest.approx(1 - 0.025 ** (1 / 10), rel=1e-12)


def test_all_responders_give_an_upper_limit_of_one() -> None:
    # Hand-worked: with x = n the exact lower limit solves p^n = alpha/2, so p = 0.025^(1/n).
    ci = proportion_ci(5, 5)
    assert ci.upper == 1.0
    assert ci.lower == pytest.approx(0.025 ** (1 / 5), rel=1e-12)


def test_wilson_interval_matches_the_score_formula_by_hand() -> None:
    # Wilson (1927): (x + z^2/2 +/- z sqrt(x(n-x)/n + z^2/4)) / (n + z^2), z = 1.959964 for 95%.
    x, n, z = 12, 40, 1.959963984540054
    centre, half = x + z * z / 2, z * math.sqrt(x * (n - x) / n + z * z / 4)
    ci = proportion_ci(x, n, method="wilson")
    assert ci.lower == pytest.approx((centre - half) / (n + z * z), rel=1e-12)
    assert ci.upper == pytest.approx((centre + half) / (n + z * z), rel=1e-12)


@pytest.mark.parametrize(
    ("x", "n", "kwargs", "field"),
    [
        (11, 10, {}, "x"),
        (0, 0, {}, "n"),
        (-1, 10, {}, "x"),
        (1, 10, {"method": "agresti"}, "method"),
        (1, 10, {"conf_level": 95}, "conf_level"),
        (1, 10, {"conf_level": 0.0}, "conf_level"),
    ],
)
def test_impossible_input_is_refused_naming_the_field(x: int, n: int, kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        proportion_ci(x, n, **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field


def test_more_responders_than_patients_is_refused_in_one_sentence() -> None:
    with pytest.raises(ValidationError, match="7 responders cannot exceed the 5 patients"):
        proportion_ci(7, 5)


counts = st.integers(min_value=1, max_value=400).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))
levels = st.sampled_from([0.8, 0.9, 0.95, 0.99])


@settings(deadline=None)
@given(counts, levels, st.sampled_from(["clopper-pearson", "wilson"]))
def test_interval_contains_the_estimate_and_stays_within_zero_and_one(
    xn: tuple[int, int], level: float, method: str
) -> None:
    ci = proportion_ci(*xn, method=method, conf_level=level)  # type: ignore[arg-type]
    assert 0.0 <= ci.lower <= ci.estimate <= ci.upper <= 1.0


@settings(deadline=None)
@given(counts, st.sampled_from(["clopper-pearson", "wilson"]))
def test_interval_for_failures_mirrors_the_interval_for_responses(xn: tuple[int, int], method: str) -> None:
    x, n = xn
    a = proportion_ci(x, n, method=method)  # type: ignore[arg-type]
    b = proportion_ci(n - x, n, method=method)  # type: ignore[arg-type]
    assert a.lower == pytest.approx(1 - b.upper, abs=1e-9)
    assert a.upper == pytest.approx(1 - b.lower, abs=1e-9)


@settings(deadline=None)
@given(counts, levels)
def test_a_higher_confidence_level_never_narrows_the_exact_interval(xn: tuple[int, int], level: float) -> None:
    narrow = proportion_ci(*xn, conf_level=level)
    wide = proportion_ci(*xn, conf_level=min(0.999, level + 0.009))
    assert wide.lower <= narrow.lower + 1e-12
    assert wide.upper >= narrow.upper - 1e-12


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=1, max_value=60), st.floats(min_value=0.01, max_value=0.99))
def test_clopper_pearson_covers_the_true_rate_at_least_at_the_nominal_level(n: int, p: float) -> None:
    # Clopper & Pearson (1934): the exact interval is conservative, its coverage is >= 1 - alpha for every p.
    coverage = 0.0
    for x in range(n + 1):
        ci = proportion_ci(x, n)
        if ci.lower <= p <= ci.upper:
            coverage += float(binom.pmf(x, n, p))
    assert coverage >= 0.95 - 1e-9


@pytest.mark.parametrize("n", [5, 10, 20])
def test_clopper_pearson_is_wider_than_wilson_at_zero_responders_in_small_samples(n: int) -> None:
    # Hand-worked at x = 0: exact upper 1 - 0.025^(1/n) (0.522, 0.308, 0.168) exceeds Wilson's z^2/(n + z^2)
    # (0.435, 0.278, 0.161). From n = 46 on the order reverses (checked for n < 200), so this is no general rule.
    exact, wilson = proportion_ci(0, n), proportion_ci(0, n, method="wilson")
    assert exact.upper > wilson.upper
    assert exact.lower == wilson.lower == 0.0
