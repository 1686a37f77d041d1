"""Simon's two-stage designs, checked against clinfun::ph2simon and its published examples.

Reference values: tests/fixtures/stats/reference.json ("simon"): clinfun 1.1.6 ph2simon(p0, p1, alpha, beta,
nmax = 150) over the parameter grid of Simon (1989) Tables 1 and 2 (p1 - p0 = 0.20 and 0.15; (alpha, beta) =
(0.10, 0.10), (0.05, 0.20), (0.05, 0.10)). The printed examples of clinfun's ph2simon help page are a second,
published source (see tests/fixtures/stats/README.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import binom

from abscopal.errors import ValidationError
from abscopal.stats.designs import FinalDecision, InterimDecision, simon_interim_decision, simon_two_stage

REFERENCE = json.loads((Path(__file__).parents[2] / "fixtures" / "stats" / "reference.json").read_text())
SIMON = REFERENCE["simon"]


def _nmax(case: dict[str, Any]) -> int:
    # The search up to nmax returns the same designs for any nmax at least as large as both designs' n (the minimax
    # is the smallest feasible n; the optimal is the smallest EN over n <= nmax); 100 keeps the test fast.
    return 100 if max(case["optimal"]["n"], case["minimax"]["n"]) <= 100 else int(case["nmax"])


@pytest.mark.parametrize("case", SIMON, ids=[f"p0={c['p0']}-p1={c['p1']}-a={c['alpha']}-b={c['beta']}" for c in SIMON])
def test_optimal_and_minimax_designs_equal_clinfun_ph2simon(case: dict[str, Any]) -> None:
    designs = simon_two_stage(case["p0"], case["p1"], case["alpha"], case["beta"], nmax=_nmax(case))
    for kind in ("optimal", "minimax"):
        got, want = getattr(designs, kind), case[kind]
        assert (got.r1, got.n1, got.r, got.n) == (want["r1"], want["n1"], want["r"], want["n"]), kind
        assert got.en0 == pytest.approx(want["en0"], rel=1e-9)
        assert got.pet0 == pytest.approx(want["pet0"], rel=1e-9)


# Printed in clinfun's ph2simon help page (Examples): r1 n1 r n EN(p0) PET(p0).
PUBLISHED = [
    (0.2, 0.4, 0.1, 0.1, 100, "minimax", (3, 19, 10, 36, 28.26, 0.4551)),
    (0.2, 0.4, 0.1, 0.1, 100, "optimal", (3, 17, 10, 37, 26.02, 0.5489)),
    (0.2, 0.35, 0.05, 0.05, 100, "minimax", (15, 68, 25, 95, 75.44, 0.7244)),
    (0.2, 0.35, 0.05, 0.05, 100, "optimal", (11, 53, 26, 99, 69.88, 0.6330)),
    (0.2, 0.35, 0.05, 0.05, 150, "optimal", (11, 50, 28, 109, 67.07, 0.7107)),
]


@pytest.mark.parametrize(("p0", "p1", "alpha", "beta", "nmax", "kind", "row"), PUBLISHED)
def test_designs_reproduce_the_published_clinfun_examples(
    p0: float, p1: float, alpha: float, beta: float, nmax: int, kind: str, row: tuple[float, ...]
) -> None:
    d = getattr(simon_two_stage(p0, p1, alpha, beta, nmax=nmax), kind)
    assert (d.r1, d.n1, d.r, d.n) == row[:4]
    assert round(d.en0, 2) == row[4]
    assert round(d.pet0, 4) == row[5]


def test_the_design_for_p0_5_percent_p1_25_percent_alpha_5_beta_20_is_0_of_9_then_2_of_17() -> None:
    # Simon (1989) Table 1 row, as commonly cited: p0 = 0.05, p1 = 0.25, alpha = 0.05, beta = 0.20: optimal 0/9,
    # 2/17 (EN 12.0, PET 0.63); minimax 0/12, 2/16 (EN 13.8, PET 0.54); the same as clinfun in reference.json.
    d = simon_two_stage(0.05, 0.25, 0.05, 0.20)
    assert (d.optimal.r1, d.optimal.n1, d.optimal.r, d.optimal.n) == (0, 9, 2, 17)
    assert (round(d.optimal.en0, 1), round(d.optimal.pet0, 2)) == (12.0, 0.63)
    assert (d.minimax.r1, d.minimax.n1, d.minimax.r, d.minimax.n) == (0, 12, 2, 16)
    assert (round(d.minimax.en0, 1), round(d.minimax.pet0, 2)) == (13.8, 0.54)


def _reject_probability_by_hand(r1: int, n1: int, r: int, n: int, p: float) -> float:
    # Simon (1989) eq. 1, summed term by term: P(X1 > r1 and X1 + X2 > r).
    total = 0.0
    for x1 in range(r1 + 1, n1 + 1):
        for x2 in range(0, n - n1 + 1):
            if x1 + x2 > r:
                total += binom.pmf(x1, n1, p) * binom.pmf(x2, n - n1, p)
    return total


@pytest.mark.parametrize(("p0", "p1", "alpha", "beta"), [(0.1, 0.3, 0.05, 0.2), (0.3, 0.5, 0.05, 0.1)])
def test_each_design_keeps_type_one_error_below_alpha_and_power_above_one_minus_beta(
    p0: float, p1: float, alpha: float, beta: float
) -> None:
    designs = simon_two_stage(p0, p1, alpha, beta)
    for d in (designs.optimal, designs.minimax):
        size = _reject_probability_by_hand(d.r1, d.n1, d.r, d.n, p0)
        power = _reject_probability_by_hand(d.r1, d.n1, d.r, d.n, p1)
        assert size == pytest.approx(d.alpha_actual, abs=1e-12) and size < alpha
        assert power == pytest.approx(d.power_actual, abs=1e-12) and power > 1 - beta
        assert d.pet0 == pytest.approx(binom.cdf(d.r1, d.n1, p0), abs=1e-12)
        assert d.en0 == pytest.approx(d.n1 + (1 - d.pet0) * (d.n - d.n1), abs=1e-12)


def test_the_minimax_design_is_never_larger_and_the_optimal_never_has_a_larger_expected_size() -> None:
    d = simon_two_stage(0.2, 0.4, 0.05, 0.2)
    assert d.minimax.n <= d.optimal.n
    assert d.optimal.en0 <= d.minimax.en0


def test_r1_responses_in_stage_one_stop_the_trial_for_futility() -> None:
    # Simon's convention: stop if responses <= r1. Optimal design for (0.2, 0.4, 0.05, 0.2) is 3/13, 12/43.
    d = simon_two_stage(0.2, 0.4, 0.05, 0.2).optimal
    assert (d.r1, d.n1) == (3, 13)
    assert simon_interim_decision(d, 3) is InterimDecision.STOP_FOR_FUTILITY


def test_one_more_than_r1_responses_continue_to_stage_two() -> None:
    d = simon_two_stage(0.2, 0.4, 0.05, 0.2).optimal
    assert simon_interim_decision(d, 4) is InterimDecision.CONTINUE


def test_more_than_r_responses_overall_declare_the_treatment_promising() -> None:
    d = simon_two_stage(0.2, 0.4, 0.05, 0.2).optimal
    assert d.r == 12
    assert d.final(13) is FinalDecision.PROMISING
    assert d.final(12) is FinalDecision.NOT_PROMISING


def test_more_stage_one_responses_than_stage_one_patients_are_refused() -> None:
    d = simon_two_stage(0.2, 0.4, 0.05, 0.2).optimal
    with pytest.raises(ValidationError, match="between 0 and 13"):
        d.interim(14)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((0.4, 0.2, 0.05, 0.2), "p1"),
        ((0.0, 0.2, 0.05, 0.2), "p0"),
        ((0.2, 0.4, 1.5, 0.2), "alpha"),
        ((0.2, 0.4, 0.05, 0.0), "beta"),
    ],
)
def test_impossible_design_parameters_are_refused_naming_the_field(args: tuple[float, ...], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        simon_two_stage(*args)
    assert err.value.field == field


def test_no_design_within_nmax_is_reported_with_advice_to_raise_it() -> None:
    with pytest.raises(ValidationError, match="raise nmax"):
        simon_two_stage(0.2, 0.3, 0.05, 0.1, nmax=30)


def test_the_neyman_pearson_bound_used_to_skip_sample_sizes_matches_a_hand_worked_case() -> None:
    # Hand-worked: S ~ Bin(2, p). Under p0 = 0.5, P(S = 2) = 0.25 > alpha = 0.05, so the size-0.05 test rejects at
    # S = 2 with probability 0.05 / 0.25 = 0.2; under p1 = 0.8 its power is 0.2 * 0.64 = 0.128.
    from abscopal.stats.designs import _most_powerful_test_power

    pmf0, pmf1 = binom.pmf([0, 1, 2], 2, 0.5), binom.pmf([0, 1, 2], 2, 0.8)
    assert _most_powerful_test_power(pmf0, pmf1, 0.05) == pytest.approx(0.128, rel=1e-12)
    # alpha = 0.5 takes S = 2 whole (0.25) and (0.5 - 0.25) / 0.5 = half of S = 1: power 0.64 + 0.5 * 0.32 = 0.8.
    assert _most_powerful_test_power(pmf0, pmf1, 0.5) == pytest.approx(0.8, rel=1e-12)
