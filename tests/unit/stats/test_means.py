"""The mean and its t interval (hand-worked)."""

from __future__ import annotations

import pytest

from abscopal.stats.means import mean_ci


def test_mean_ci_is_the_t_interval() -> None:
    # mean 60, sd 10, n 3: t(0.975, 2) = 4.302653 -> half-width 4.302653 * 10 / sqrt(3) = 24.84138
    mean, lo, hi = mean_ci([50.0, 60.0, 70.0])
    assert (
        mean == 60.0 and lo == pytest.approx(60 - 24.84138, abs=1e-4) and hi == pytest.approx(60 + 24.84138, abs=1e-4)
    )


def test_mean_ci_of_one_value_is_the_value() -> None:
    assert mean_ci([42.0]) == (42.0, 42.0, 42.0)
