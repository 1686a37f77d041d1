"""Response rate by RT role (response-rules.md §8), defined once in :mod:`abscopal.response.roles`.

Hand-counted: responders are best role responses CR or PR; the denominator is the subjects with a target of
the role (NONE = no target of that role is left out).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from abscopal.domain import RtRole
from abscopal.response.codes import NONE, Code, RecistResponse
from abscopal.response.engine import cohort_role_rates
from abscopal.response.roles import role_rates_of

CONV, LOW, OBS = RtRole.CONVENTIONAL, RtRole.LOW_DOSE, RtRole.OBSERVATION


def best(*rows: list[int]) -> np.ndarray[Any, np.dtype[np.int8]]:
    return np.array(rows, dtype=np.int8)


def test_cr_and_pr_are_responders_of_a_role():
    rates = role_rates_of(best([Code.CR, Code.PR, Code.SD], [NONE] * 3, [NONE] * 3))
    assert (rates[0].role, rates[0].responders, rates[0].subjects) == (CONV, 2, 3)


def test_a_subject_without_a_target_of_the_role_is_not_in_its_denominator():
    rates = role_rates_of(best([NONE] * 3, [NONE] * 3, [Code.PR, NONE, Code.PD]))
    assert (rates[2].role, rates[2].responders, rates[2].subjects) == (OBS, 1, 2)


def test_not_evaluable_counts_in_the_denominator_as_a_non_responder():
    rates = role_rates_of(best([Code.NE, Code.CR], [NONE] * 2, [NONE] * 2))
    assert rates[0].rate == 0.5


def test_a_role_with_no_target_has_no_rate():
    rates = role_rates_of(best([Code.CR], [NONE], [NONE]))
    assert rates[1].subjects == 0 and rates[1].rate is None


def test_rates_from_typed_results_equal_rates_from_the_arrays():
    subjects: list[Any] = [
        SimpleNamespace(best_role_response={CONV: RecistResponse.PR, OBS: RecistResponse.SD}),
        SimpleNamespace(best_role_response={CONV: RecistResponse.NON_CR_NON_PD, OBS: RecistResponse.CR}),
        SimpleNamespace(best_role_response={LOW: RecistResponse.PD}),
    ]
    arrays = best([Code.PR, Code.NN, NONE], [NONE, NONE, Code.PD], [Code.SD, Code.CR, NONE])
    assert cohort_role_rates(subjects) == role_rates_of(arrays)
