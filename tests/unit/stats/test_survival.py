"""Kaplan-Meier curves, medians, landmarks and follow-up, checked against R 4.2.2 / survival 3.5.3.

Reference values: tests/fixtures/stats/reference.json ("km", "followup"), from survfit(..., conf.type, conf.int),
quantile(fit, 0.5) and summary(fit, times = ...) on survival::lung, survival::veteran and small edge-case data;
see tests/fixtures/stats/README.md for the exact calls.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abscopal.errors import ValidationError
from abscopal.stats.survival import duration_of_response, kaplan_meier, median_follow_up

FIXTURES = Path(__file__).parents[2] / "fixtures" / "stats"
REFERENCE = json.loads((FIXTURES / "reference.json").read_text())
KM_CASES: list[dict[str, Any]] = REFERENCE["km"]


def _rows(name: str) -> list[dict[str, str]]:
    with (FIXTURES / f"{name}.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


LUNG, VETERAN = _rows("lung"), _rows("veteran")

# The subsets named in make_reference.R, keyed by the dataset label it records.
SUBSETS = {
    "lung": (LUNG, lambda r: True),
    "veteran": (VETERAN, lambda r: True),
    "subset(lung, sex == 1)": (LUNG, lambda r: r["sex"] == "1"),
    "subset(lung, sex == 2)": (LUNG, lambda r: r["sex"] == "2"),
    "subset(veteran, trt == 1)": (VETERAN, lambda r: r["trt"] == "1"),
    "subset(veteran, trt == 2)": (VETERAN, lambda r: r["trt"] == "2"),
}


def _data(case: dict[str, Any]) -> tuple[list[float], list[int]]:
    if "data" in case:
        times = [float(t) for t in case["data"]["time"]]
        if case["dataset"] == "near_tied_times":
            times[0] = 0.1 + 0.2  # as in make_reference.R; the JSON keeps 15 digits, which hides the near-tie
        return times, [int(e) for e in case["data"]["event"]]
    rows, keep = SUBSETS[case["dataset"]]
    chosen = [r for r in rows if keep(r)]
    return [float(r[case["time_col"]]) for r in chosen], [int(r[case["event_col"]]) for r in chosen]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _close(ours: float | None, r_value: float | None, tol: float = 1e-9) -> bool:
    if r_value is None:
        return ours is None
    return ours is not None and math.isclose(ours, r_value, rel_tol=tol, abs_tol=tol)


@pytest.mark.parametrize("case", KM_CASES, ids=[c["id"] for c in KM_CASES])
def test_median_and_its_confidence_interval_equal_r_quantile_survfit(case: dict[str, Any]) -> None:
    fit = kaplan_meier(*_data(case), conf_type=case["conf_type"], conf_level=case["conf_level"])
    assert fit.n == case["n"] and fit.events == case["events"]
    assert _close(fit.median, case["median"])
    assert _close(fit.median_ci[0], case["median_lower"])
    assert _close(fit.median_ci[1], case["median_upper"])


@pytest.mark.parametrize("case", KM_CASES, ids=[c["id"] for c in KM_CASES])
def test_every_row_of_the_curve_equals_r_survfit(case: dict[str, Any]) -> None:
    fit = kaplan_meier(*_data(case), conf_type=case["conf_type"], conf_level=case["conf_level"])
    curve = {k: _as_list(v) for k, v in case["curve"].items()}
    table = fit.table
    assert [row.time for row in table] == pytest.approx(curve["time"])
    assert [row.n_risk for row in table] == curve["n_risk"]
    assert [row.n_event for row in table] == curve["n_event"]
    assert [row.n_censor for row in table] == curve["n_censor"]
    for i, row in enumerate(table):
        assert _close(row.surv, curve["surv"][i])
        for ours, theirs in ((row.lower, curve["lower"][i]), (row.upper, curve["upper"][i])):
            if theirs is None and row.surv == 1.0:
                # Documented choice: before the first event the band is the point [1, 1]; R leaves log-log NA.
                assert ours == 1.0
            else:
                assert _close(ours, theirs)


@pytest.mark.parametrize("case", KM_CASES, ids=[c["id"] for c in KM_CASES])
def test_survival_at_landmarks_equals_r_summary_with_times(case: dict[str, Any]) -> None:
    fit = kaplan_meier(*_data(case), conf_type=case["conf_type"], conf_level=case["conf_level"])
    expected = {k: _as_list(v) for k, v in case["landmarks"].items()}
    for i, s in enumerate(fit.survival_at(expected["time"])):
        assert s.time == expected["time"][i]
        assert s.n_risk == expected["n_risk"][i]
        assert s.n_event == expected["n_event"][i]
        assert _close(s.surv, expected["surv"][i])
        assert _close(s.std_err, expected["std_err"][i])
        for ours, theirs in ((s.lower, expected["lower"][i]), (s.upper, expected["upper"][i])):
            if theirs is None and s.surv == 1.0:
                assert ours == 1.0  # the documented [1, 1] band before the first event (R: NA for log-log)
            else:
                assert _close(ours, theirs)


def test_lung_median_is_310_days_with_log_log_interval_284_to_361() -> None:
    # R 4.2.2: quantile(survfit(Surv(time, status) ~ 1, lung, conf.type = "log-log"), 0.5) -> 310 (284, 361);
    # R's default conf.type = "log" gives 310 (285, 363).
    t, e = _data({"dataset": "lung", "time_col": "time", "event_col": "event"})
    assert kaplan_meier(t, e).median_ci == (284.0, 361.0)
    assert kaplan_meier(t, e, conf_type="log").median_ci == (285.0, 363.0)


def test_a_curve_lying_exactly_at_one_half_gives_the_midpoint_of_the_flat_interval() -> None:
    # Hand-worked: six deaths at 1..6 -> S = 0.5 on [3, 4), so the median is (3 + 4) / 2 = 3.5 (quantile.survfit).
    assert kaplan_meier([1, 2, 3, 4, 5, 6], [1] * 6).median == 3.5


def test_a_curve_ending_exactly_at_one_half_gives_the_midpoint_up_to_the_last_time() -> None:
    # Hand-worked: deaths at 1, 2, censored at 3, 4 -> S = 0.5 from 2 to the end (4): median (2 + 4) / 2 = 3.
    assert kaplan_meier([1, 2, 3, 4], [1, 1, 0, 0]).median == 3.0


def test_a_curve_that_never_reaches_one_half_has_no_median_though_its_lower_band_may() -> None:
    # R 4.2.2: quantile(survfit(Surv(c(3,5,7,9), c(0,1,0,0)) ~ 1, conf.type = "log-log"), 0.5) -> NA (5, NA).
    fit = kaplan_meier([3, 5, 7, 9], [0, 1, 0, 0])
    assert fit.median is None
    assert fit.median_ci == (5.0, None)


def test_the_upper_limit_is_missing_when_the_upper_band_never_reaches_one_half() -> None:
    # R: quantile(survfit(Surv(time, status) ~ 1, conf.type = "log-log"), 0.5) with ties -> 8 (2, NA).
    fit = kaplan_meier([2, 2, 2, 3, 3, 5, 5, 8, 8, 8, 10, 12], [1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0, 1])
    assert (fit.median, fit.median_ci) == (8.0, (2.0, None))


def test_times_that_differ_only_by_rounding_are_tied_as_in_r() -> None:
    # R 4.2.2: survfit(Surv(c(0.1 + 0.2, 0.3, 1, 2, 2.5), c(1, 1, 1, 0, 1)) ~ 1)$n.event -> 2 1 0 1 (aeqSurv).
    fit = kaplan_meier([0.1 + 0.2, 0.3, 1, 2, 2.5], [1, 1, 1, 0, 1])
    assert [row.n_event for row in fit.table] == [2, 1, 0, 1]
    assert fit.table[0].surv == pytest.approx(0.6)


def test_greenwood_standard_error_matches_the_formula_by_hand() -> None:
    # Hand-worked (Greenwood 1926): n = 5, one death at 1 and one at 2 -> S = 3/5,
    # var(S) = S^2 (1/(5*4) + 1/(4*3)) = 0.36 * 0.13333 = 0.048, SE = 0.219089.
    row = kaplan_meier([1, 2, 3, 4, 5], [1, 1, 0, 0, 0]).survival_at([2])[0]
    assert row.surv == pytest.approx(0.6)
    assert row.std_err == pytest.approx(math.sqrt(0.36 * (1 / 20 + 1 / 12)), rel=1e-12)


def test_survival_before_the_first_observation_is_one_with_a_degenerate_interval() -> None:
    row = kaplan_meier([10, 20, 30], [1, 1, 0]).survival_at([5])[0]
    assert (row.surv, row.std_err, row.lower, row.upper, row.n_risk) == (1.0, 0.0, 1.0, 1.0, 3)


def test_survival_beyond_the_last_observed_time_is_not_estimated() -> None:
    # summary.survfit drops such times; here the landmark is kept with surv None and nobody at risk.
    row = kaplan_meier([10, 20, 30], [1, 0, 0]).survival_at([365])[0]
    assert row.surv is None and row.lower is None and row.n_risk == 0


def test_numbers_at_risk_count_patients_whose_time_is_at_least_t() -> None:
    fit = kaplan_meier([1, 2, 2, 5, 8], [1, 0, 1, 1, 0])
    assert fit.at_risk([0, 2, 2.5, 8, 9]) == [5, 4, 2, 1, 0]


def test_landmarks_are_reported_in_increasing_time_order_with_events_since_the_previous_one() -> None:
    fit = kaplan_meier([1, 2, 3, 4, 5, 6], [1, 1, 1, 0, 1, 1])
    rows = fit.survival_at([5, 2])
    assert [r.time for r in rows] == [2.0, 5.0]
    assert [r.n_event for r in rows] == [2, 2]


@pytest.mark.parametrize("case", REFERENCE["followup"], ids=[c["call"] for c in REFERENCE["followup"]])
def test_median_follow_up_equals_r_reverse_kaplan_meier(case: dict[str, Any]) -> None:
    t, e = _data(case)
    fit = median_follow_up(t, e, conf_type=case["conf_type"])
    assert _close(fit.median, case["median"])
    assert fit.median_ci == (case["median_lower"], case["median_upper"])


def test_duration_of_response_is_the_kaplan_meier_of_the_responders() -> None:
    t, e = [30, 60, 90, 120, 150], [1, 0, 1, 1, 0]
    dor, km = duration_of_response(t, e), kaplan_meier(t, e)
    assert dor.median == km.median and list(dor.surv) == list(km.surv)


@pytest.mark.parametrize(
    ("durations", "events", "kwargs", "field"),
    [
        ([1, -2, 3], [1, 0, 1], {}, "durations"),
        ([1, float("nan"), 3], [1, 0, 1], {}, "durations"),
        ([1, 2, 3], [1, 2, 1], {}, "events"),
        ([1, 2, 3], [1, 0], {}, "events"),
        ([], [], {}, "durations"),
        ([1, 2], [1, 0], {"conf_type": "logit"}, "conf_type"),
        ([1, 2], [1, 0], {"conf_level": 1.5}, "conf_level"),
    ],
)
def test_bad_survival_data_is_refused_naming_the_field(
    durations: list[float], events: list[int], kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as err:
        kaplan_meier(durations, events, **kwargs)
    assert err.value.field == field


def test_an_event_code_other_than_zero_or_one_names_its_position() -> None:
    with pytest.raises(ValidationError, match="value 2 is 2; use 1 for an event and 0 for censored"):
        kaplan_meier([5, 6], [1, 2])


survival_data = st.integers(min_value=1, max_value=60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(min_value=0, max_value=40), min_size=n, max_size=n),
        st.lists(st.integers(min_value=0, max_value=1), min_size=n, max_size=n),
    )
)


@settings(deadline=None, max_examples=60)
@given(survival_data, st.sampled_from(["log-log", "log", "plain"]))
def test_survival_never_increases_and_its_band_contains_it(data: tuple[list[int], list[int]], conf_type: str) -> None:
    fit = kaplan_meier(*data, conf_type=conf_type)  # type: ignore[arg-type]
    assert np.all(np.diff(fit.surv) <= 1e-15)
    assert np.all((fit.surv >= 0) & (fit.surv <= 1))
    for row in fit.table:
        if row.lower is not None and row.upper is not None:
            assert 0.0 <= row.lower <= row.surv + 1e-12
            assert row.surv - 1e-12 <= row.upper <= 1.0


@settings(deadline=None, max_examples=60)
@given(survival_data)
def test_the_median_confidence_interval_brackets_the_median(data: tuple[list[int], list[int]]) -> None:
    fit = kaplan_meier(*data)
    lo, hi = fit.median_ci
    if fit.median is not None:
        assert min(data[0]) <= fit.median <= max(data[0])
        if lo is not None:
            assert lo <= fit.median
        if hi is not None:
            assert fit.median <= hi


@settings(deadline=None, max_examples=60)
@given(survival_data)
def test_numbers_at_risk_never_increase_with_time(data: tuple[list[int], list[int]]) -> None:
    counts = kaplan_meier(*data).at_risk(range(0, 45, 3))
    assert counts[0] == len(data[0])
    assert all(a >= b for a, b in itertools.pairwise(counts))
