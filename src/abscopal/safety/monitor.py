"""Bayesian safety monitoring: a beta-binomial rule on the rate of one toxicity (protocol ``[safety.monitor]``).

With a Beta(a, b) prior and x patients with the event among n treated, the posterior is Beta(a + x, b + n - x);
an alert is raised when P(rate > threshold | data) exceeds the protocol's posterior probability (e.g.
P(grade >= 3 pneumonitis rate > 20%) > 0.8). Conjugate beta-binomial model (Thall & Simon, Biometrics 1994).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from abscopal.domain import AdverseEvent
from abscopal.errors import ValidationError
from abscopal.protocol.model import SafetyMonitor


@dataclass(frozen=True, slots=True)
class MonitorResult:
    """The posterior after x events in n patients, P(rate > threshold) and whether the rule alerts."""

    term: str
    min_grade: int
    events: int
    patients: int
    posterior_alpha: float
    posterior_beta: float
    probability_above: float
    rate_threshold: float
    probability_threshold: float
    alert: bool

    def sentence(self) -> str:
        verdict = "ALERT" if self.alert else "no alert"
        return (
            f"{self.term} grade >= {self.min_grade}: {self.events}/{self.patients} patients; posterior "
            f"Beta({self.posterior_alpha:g}, {self.posterior_beta:g}); P(rate > {self.rate_threshold:g}) = "
            f"{self.probability_above:.3f} (alert above {self.probability_threshold:g}): {verdict}"
        )


def posterior_check(events: int, patients: int, rule: SafetyMonitor) -> MonitorResult:
    """Posterior Beta(a + x, b + n - x) and the alert P(rate > threshold) > probability (strictly greater)."""
    if patients < 0 or events < 0 or events > patients:
        raise ValidationError("events", f"{events} events in {patients} patients is impossible")
    from scipy.stats import beta  # imported here: scipy is slow to load and every CLI start imports this module

    a = rule.prior_alpha + events
    b = rule.prior_beta + patients - events
    probability = float(beta.sf(rule.rate_threshold, a, b))
    return MonitorResult(
        rule.term,
        rule.min_grade,
        events,
        patients,
        a,
        b,
        probability,
        rule.rate_threshold,
        rule.posterior_probability,
        probability > rule.posterior_probability,
    )


def monitor(events: Iterable[AdverseEvent], patients: int, rule: SafetyMonitor) -> MonitorResult:
    """Apply the rule to AE records: x = patients with the term at grade >= ``min_grade``; n = patients treated."""
    name = rule.term.casefold()
    x = len(
        {
            ae.subject_id
            for ae in events
            if ae.term.casefold() == name and ae.grade is not None and ae.grade >= rule.min_grade
        }
    )
    return posterior_check(x, patients, rule)
