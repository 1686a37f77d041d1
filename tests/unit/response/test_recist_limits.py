"""The RECIST 1.1 limits, defined once in :mod:`abscopal.response.recist` (Eisenhauer 2009 §3.1.1 and §4.3.1).

Hand-worked: measurable >= 10 mm (node short axis >= 15 mm); PR at 30 % below baseline; PD at 20 % and 5 mm
over the nadir. The protocol's observation-lesion limits must be the same numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

from abscopal.protocol.model import load_bundled
from abscopal.response.recist import (
    MEASURABLE_MIN_MM,
    MEASURABLE_NODE_MIN_MM,
    measurable_by_recist,
    pd_threshold_mm,
    sum_partial_response,
    sum_progressed,
)


@pytest.mark.parametrize(
    ("diameter_mm", "is_node", "measurable"),
    [(10.0, False, True), (9.9, False, False), (15.0, True, True), (14.9, True, False), (12.0, True, False)],
)
def test_measurable_by_size_follows_recist_3_1_1(diameter_mm: float, is_node: bool, measurable: bool):
    assert measurable_by_recist(diameter_mm, is_node) is measurable


def test_pd_over_a_small_nadir_needs_the_5_mm_absolute_increase():
    # nadir 10 mm: +20 % is 12 mm, +5 mm is 15 mm -> 15
    assert pd_threshold_mm(10.0) == 15.0


def test_pd_over_a_large_nadir_needs_the_20_percent_increase():
    # nadir 50 mm: +20 % is 60 mm, +5 mm is 55 mm -> 60
    assert pd_threshold_mm(50.0) == 60.0


def test_a_sum_exactly_20_percent_and_5_mm_over_the_nadir_is_progression():
    assert sum_progressed(np.array([30_000]), np.array([25_000])).tolist() == [True]


def test_a_sum_20_percent_but_under_5_mm_over_the_nadir_is_not_progression():
    assert sum_progressed(np.array([12_000]), np.array([10_000])).tolist() == [False]


def test_a_sum_exactly_30_percent_below_baseline_is_partial_response():
    assert sum_partial_response(np.array([35_000]), np.array([50_000])).tolist() == [True]


def test_a_sum_29_9_percent_below_baseline_is_not_partial_response():
    assert sum_partial_response(np.array([35_050]), np.array([50_000])).tolist() == [False]


def test_the_protocol_observation_limits_are_the_recist_limits():
    obs = load_bundled().current.radiotherapy.observation
    assert (obs.measurable_min_mm, obs.measurable_node_short_axis_min_mm) == (MEASURABLE_MIN_MM, MEASURABLE_NODE_MIN_MM)
