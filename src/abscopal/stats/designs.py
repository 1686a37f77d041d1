"""Simon's two-stage phase II designs (Simon 1989, Controlled Clinical Trials 10:1-10) by exact binomial search.

Stage 1 treats n1 patients and stops for futility if at most r1 respond; otherwise n patients in total are treated
and the treatment is declared promising (H0: p <= p0 rejected) if more than r respond. The optimal design minimises
the expected sample size under p0; the minimax design minimises n (ties: the smaller expected size). The search and
its tie-breaking follow clinfun::ph2simon: error rates strictly below alpha and beta, and for a given (n1, r1, n)
the largest feasible r.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy.stats import binom

from abscopal.errors import ValidationError

FloatArray = npt.NDArray[np.float64]


class InterimDecision(StrEnum):
    """What the stage-1 analysis of a Simon design says to do."""

    STOP_FOR_FUTILITY = "stop for futility"
    CONTINUE = "continue to stage 2"


class FinalDecision(StrEnum):
    """What the end-of-trial analysis of a Simon design concludes."""

    PROMISING = "reject H0: the treatment is promising"
    NOT_PROMISING = "do not reject H0: the treatment is not promising"


@dataclass(frozen=True)
class SimonDesign:
    """One two-stage design: stop if <= r1 of n1 respond; promising if > r of n respond.

    ``en0`` is the expected sample size and ``pet0`` the probability of early termination under p0; ``alpha_actual``
    and ``power_actual`` are the exact error rates of the design.
    """

    kind: str
    p0: float
    p1: float
    n1: int
    r1: int
    n: int
    r: int
    en0: float
    pet0: float
    alpha_actual: float
    power_actual: float

    def interim(self, stage1_responses: int) -> InterimDecision:
        """Stage-1 rule (Simon 1989, section 2): stop when responses <= r1 among the first n1 patients."""
        x = _check_responses(stage1_responses, self.n1, "stage1_responses")
        return InterimDecision.STOP_FOR_FUTILITY if x <= self.r1 else InterimDecision.CONTINUE

    def final(self, total_responses: int) -> FinalDecision:
        """End-of-trial rule (Simon 1989): reject H0 only when more than r of the n patients respond."""
        x = _check_responses(total_responses, self.n, "total_responses")
        return FinalDecision.PROMISING if x > self.r else FinalDecision.NOT_PROMISING


@dataclass(frozen=True)
class SimonDesigns:
    """The optimal and minimax designs for one set of (p0, p1, alpha, beta)."""

    p0: float
    p1: float
    alpha: float
    beta: float
    nmax: int
    optimal: SimonDesign
    minimax: SimonDesign


def _check_responses(value: int, limit: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be a whole number, got {value!r}")
    if value < 0 or value > limit:
        raise ValidationError(field, f"must be between 0 and {limit} (the patients in this stage), got {value}")
    return value


def _check_probability(value: float, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(field, f"must be a number strictly between 0 and 1, got {value!r}")
    if not 0.0 < float(value) < 1.0:
        raise ValidationError(field, f"must be strictly between 0 and 1, got {value}")
    return float(value)


def _pmf_table(p: float, nmax: int) -> list[FloatArray]:
    return [binom.pmf(np.arange(m + 1), m, p).astype(np.float64) for m in range(nmax + 1)]


def _sf_table(p: float, nmax: int) -> list[FloatArray]:
    # sf[m][k] = P(X > k - 1) = P(X >= k) for X ~ Bin(m, p), k = 0..m + 1.
    out = []
    for m in range(nmax + 1):
        k = np.arange(m + 2)
        out.append(binom.sf(k - 1, m, p).astype(np.float64))
    return out


def _stage2_index(n1: int, n2: int, cols: int) -> npt.NDArray[np.intp]:
    """Stage-2 responses needed, X2 >= r - x1 + 1, for x1 = 0..n1 (rows) and r = 0..cols - 1, clipped to 0..n2 + 1."""
    x1 = np.arange(n1 + 1)[:, None]
    r = np.arange(cols)[None, :]
    need: npt.NDArray[np.intp] = np.minimum(np.maximum(r - x1 + 1, 0), n2 + 1).astype(np.intp)
    return need


def _reject_probability(pmf1: FloatArray, sf2: FloatArray, need: npt.NDArray[np.intp], rows: int) -> FloatArray:
    """P(X1 > r1 and X1 + X2 > r) for r1 = 0..rows - 1 and the columns r of ``need`` (Simon 1989, equation 1)."""
    term = pmf1[:, None] * sf2[need]
    tail = np.cumsum(term[::-1], axis=0)[::-1]  # tail[x] = sum over x1 >= x
    return tail[1 : rows + 1, :]  # row r1 = sum over x1 >= r1 + 1


# Slack for the necessary conditions used to skip hopeless candidates, so that rounding never drops a design.
_PRUNE_SLACK = 1e-9


def _most_powerful_test_power(pmf0: FloatArray, pmf1: FloatArray, alpha: float) -> float:
    """Power at p1 of the randomised Neyman-Pearson test of size alpha on the total responses S ~ Bin(n, p).

    Given S, a two-stage design's chance to reject does not depend on p (X1 | S is hypergeometric), so no design
    with n patients is more powerful than this test: if it cannot reach 1 - beta, no design of size n can.
    """
    tail0 = np.cumsum(pmf0[::-1])  # tail0[j] = P0(S >= n - j); the likelihood ratio increases with S
    tail1 = np.cumsum(pmf1[::-1])
    j = int(np.searchsorted(tail0, alpha, side="right"))  # first j with P0(S >= n - j) > alpha
    if j >= tail0.size:
        return 1.0
    taken0 = float(tail0[j - 1]) if j > 0 else 0.0
    taken1 = float(tail1[j - 1]) if j > 0 else 0.0
    k = pmf0.size - 1 - j
    gamma = (alpha - taken0) / float(pmf0[k]) if pmf0[k] > 0 else 0.0
    return taken1 + gamma * float(pmf1[k])


Row = tuple[int, int, int, int, float, float, float, float]  # n1, r1, n, r, EN(p0), PET(p0), alpha, power


@lru_cache(maxsize=64)
def _search(p0: float, p1: float, alpha: float, beta: float, nmax: int) -> tuple[Row, Row] | None:
    """Return (minimax, optimal) rows, or None when no design of at most nmax patients exists.

    Equivalent to clinfun's scan of every (n, n1, r1, r): the minimax is the best design at the smallest feasible n;
    the optimal is the first n whose best design has the smallest EN(p0). Once a design is known, candidates whose
    EN(p0) cannot be smaller (a lower bound from the largest r1 that could still reach the power) are skipped.
    """
    pmf0, pmf1 = _pmf_table(p0, nmax), _pmf_table(p1, nmax)
    sf0, sf1 = _sf_table(p0, nmax), _sf_table(p1, nmax)
    cdf0 = [np.cumsum(pm) for pm in pmf0]
    cdf1 = [np.cumsum(pm) for pm in pmf1]
    minimax: Row | None = None
    optimal: Row | None = None
    for n in range(2, nmax + 1):
        # Power of a two-stage design <= P(Bin(n, p1) > r), so r above this bound cannot reach 1 - beta.
        cols = int(np.count_nonzero(binom.sf(np.arange(n), n, p1) > 1.0 - beta - _PRUNE_SLACK))
        if cols == 0 or _most_powerful_test_power(pmf0[n], pmf1[n], alpha) <= 1.0 - beta - _PRUNE_SLACK:
            continue
        best_en = float(n) if optimal is None else optimal[4]
        chosen: Row | None = None
        for n1 in range(1, n):
            n2 = n - n1
            # Power <= P(X1 > r1 | p1): only r1 with P(X1 <= r1 | p1) < beta can be feasible.
            rows = min(int(np.count_nonzero(cdf1[n1][:n1] < beta + _PRUNE_SLACK)), n1)
            if rows == 0 or n1 + (1.0 - float(cdf0[n1][rows - 1])) * n2 >= best_en:
                continue
            need = _stage2_index(n1, n2, cols)
            a = _reject_probability(pmf0[n1], sf0[n2], need, rows)
            # Feasible r for each r1 lie in r1..r1 + n2 with type I error < alpha and type II error < beta.
            r1s = np.arange(rows)[:, None]
            rs = np.arange(cols)[None, :]
            feasible = (a < alpha) & (rs >= r1s) & (rs <= r1s + n2)
            if not feasible.any():
                continue
            pw = _reject_probability(pmf1[n1], sf1[n2], need, rows)
            feasible &= (1.0 - pw) < beta
            found = np.flatnonzero(feasible.any(axis=1))
            if found.size == 0:
                continue
            pet = cdf0[n1][found]
            en = n1 + (1.0 - pet) * n2
            # clinfun scans r1 from high to low and keeps the first strictly smaller EN; for a given (n1, r1, n)
            # it keeps the largest feasible r.
            for j in range(found.size - 1, -1, -1):
                if en[j] < best_en:
                    r1 = int(found[j])
                    r = int(np.flatnonzero(feasible[r1])[-1])
                    best_en = float(en[j])
                    chosen = (n1, r1, n, r, best_en, float(pet[j]), float(a[r1, r]), float(pw[r1, r]))
        if chosen is not None:
            if minimax is None:
                minimax = chosen
            if optimal is None or chosen[4] < optimal[4]:
                optimal = chosen
    if minimax is None or optimal is None:
        return None
    return minimax, optimal


def _design(kind: str, p0: float, p1: float, row: Row) -> SimonDesign:
    n1, r1, n, r, en0, pet0, a, pw = row
    return SimonDesign(kind, p0, p1, n1, r1, n, r, en0, pet0, a, pw)


def simon_two_stage(p0: float, p1: float, alpha: float, beta: float, nmax: int = 100) -> SimonDesigns:
    """Optimal and minimax Simon designs with total size at most ``nmax``; equal to clinfun::ph2simon.

    Raises ValidationError when no design of at most ``nmax`` patients meets alpha and beta.
    """
    p0 = _check_probability(p0, "p0")
    p1 = _check_probability(p1, "p1")
    alpha = _check_probability(alpha, "alpha")
    beta = _check_probability(beta, "beta")
    if p1 <= p0:
        raise ValidationError("p1", f"the target response rate ({p1}) must exceed the null rate p0 ({p0})")
    if isinstance(nmax, bool) or not isinstance(nmax, int) or not 2 <= nmax <= 1000:
        raise ValidationError("nmax", f"must be a whole number between 2 and 1000, got {nmax!r}")
    found = _search(p0, p1, alpha, beta, nmax)
    if found is None:
        raise ValidationError(
            "nmax", f"no two-stage design of at most {nmax} patients meets alpha={alpha} and beta={beta}; raise nmax"
        )
    minimax, optimal = found
    return SimonDesigns(
        p0=p0,
        p1=p1,
        alpha=alpha,
        beta=beta,
        nmax=nmax,
        optimal=_design("optimal", p0, p1, optimal),
        minimax=_design("minimax", p0, p1, minimax),
    )


def simon_interim_decision(design: SimonDesign, stage1_responses: int) -> InterimDecision:
    """Stop for futility if stage-1 responses <= r1, otherwise continue (Simon 1989)."""
    return design.interim(stage1_responses)
