"""Beta-binomial monitoring of grade >= 3 pneumonitis: posterior values worked by hand.

For integer parameters, P(p > t) under Beta(a, b) equals P(Binomial(a + b - 1, t) <= a - 1). With the
protocol's Beta(1, 1) prior and t = 0.2:
  x = 2, n = 5 -> Beta(3, 4): P(Bin(6, .2) <= 2) = .262144 + .393216 + .245760 = .90112  -> alert (> 0.8)
  x = 1, n = 5 -> Beta(2, 5): P(Bin(6, .2) <= 1) = .262144 + .393216 = .65536            -> no alert
  x = 0, n = 5 -> Beta(1, 6): P(Bin(6, .2) = 0) = .8^6 = .262144                         -> no alert
"""

from __future__ import annotations

import datetime as dt

import pytest

from abscopal.domain import AdverseEvent
from abscopal.errors import ValidationError
from abscopal.protocol.model import SafetyMonitor, load_bundled
from abscopal.safety.monitor import monitor, posterior_check

RULE = load_bundled().current.safety.monitor  # Pneumonitis, grade >= 3, rate 0.20, probability 0.80, Beta(1, 1)


@pytest.mark.parametrize(
    ("x", "n", "a", "b", "probability", "alert"),
    [(2, 5, 3, 4, 0.90112, True), (1, 5, 2, 5, 0.65536, False), (0, 5, 1, 6, 0.262144, False)],
)
def test_posterior_is_beta_a_plus_x_b_plus_n_minus_x(x, n, a, b, probability, alert):
    result = posterior_check(x, n, RULE)
    assert (result.posterior_alpha, result.posterior_beta) == (a, b)
    assert result.probability_above == pytest.approx(probability, abs=1e-12)
    assert result.alert is alert


def test_the_alert_needs_the_probability_strictly_above_the_threshold():
    # Beta(1, 6) gives .262144; with an alert threshold of exactly .262144 there is no alert
    rule = SafetyMonitor(
        term="Pneumonitis", min_grade=3, rate_threshold=0.2, posterior_probability=0.262144, prior_alpha=1, prior_beta=1
    )
    assert not posterior_check(0, 5, rule).alert


def test_an_informative_prior_is_added_to_the_counts():
    # Beta(1, 4) prior (mean .2) + 0 of 1 -> Beta(1, 5): P(p > .2) = .8^5 = .32768
    rule = SafetyMonitor(
        term="Pneumonitis", min_grade=3, rate_threshold=0.2, posterior_probability=0.8, prior_alpha=1, prior_beta=4
    )
    assert posterior_check(0, 1, rule).probability_above == pytest.approx(0.32768, abs=1e-12)


def test_more_events_than_patients_is_refused():
    with pytest.raises(ValidationError):
        posterior_check(6, 5, RULE)


def _pneumonitis(subject: str, grade: int | None) -> AdverseEvent:
    return AdverseEvent(subject, f"{subject}-{grade}", "Pneumonitis", 10035742, grade, dt.date(2024, 3, 1))


def test_monitor_counts_patients_once_at_grade_3_or_more_of_the_rule_term():
    events = [
        _pneumonitis("P1", 3),
        _pneumonitis("P1", 4),  # same patient: counted once
        _pneumonitis("P2", 5),
        _pneumonitis("P3", 2),  # below grade 3
        _pneumonitis("P4", None),  # no grade: not counted
        AdverseEvent("P5", "x", "Cough", 10011224, 3, dt.date(2024, 3, 1)),  # another term
    ]
    result = monitor(events, 5, RULE)
    assert (result.events, result.patients, result.alert) == (2, 5, True)
    assert "2/5 patients" in result.sentence()
