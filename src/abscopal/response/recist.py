"""RECIST 1.1 timepoint rules (Eisenhauer 2009 §4.3 and tables 1-2; response-rules.md §2-3).

Each function maps arrays of sums and counts to arrays of response codes (:class:`~.codes.Code`), so the same
rule serves one subject or a whole cohort. Thresholds compare exactly on integer micrometres:
PR is SOD <= 70 % of baseline; PD is SOD >= 120 % of nadir and SOD - nadir >= 5 mm.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from abscopal.response.codes import NONE, Code
from abscopal.response.table import UM_PER_MM

I64 = NDArray[np.int64]
B = NDArray[np.bool_]
C = NDArray[np.int8]

# --- the RECIST 1.1 limits (Eisenhauer 2009): defined here only; lesions, iRECIST, the synthetic cohort import them

MEASURABLE_MIN_MM = 10  # §3.1.1: a measurable lesion's longest diameter is >= 10 mm
MEASURABLE_NODE_MIN_MM = 15  # §3.1.1: a measurable node's short axis is >= 15 mm
NORMAL_NODE_MM = 10  # §4.3.1: a node with short axis < 10 mm is normal (counts towards CR)
PR_DECREASE_PCT = 30  # §4.3.1: PR is a decrease of at least 30 % of the sum from baseline
PD_INCREASE_PCT = 20  # §4.3.1: PD is an increase of at least 20 % of the sum over the nadir ...
PD_ABSOLUTE_MM = 5  # §4.3.1: ... and an absolute increase of at least 5 mm

MEASURABLE_UM = MEASURABLE_MIN_MM * UM_PER_MM
MEASURABLE_NODE_UM = MEASURABLE_NODE_MIN_MM * UM_PER_MM
NORMAL_NODE_UM = NORMAL_NODE_MM * UM_PER_MM
PD_ABSOLUTE_UM = PD_ABSOLUTE_MM * UM_PER_MM


def measurable_by_recist(diameter_mm: float, is_node: bool) -> bool:
    """RECIST 1.1 §3.1.1 measurability by size: >= 10 mm, or a node's short axis >= 15 mm."""
    return diameter_mm >= (MEASURABLE_NODE_MIN_MM if is_node else MEASURABLE_MIN_MM)


def pd_threshold_mm(nadir_mm: float) -> float:
    """The smallest sum that is PD over ``nadir_mm`` (RECIST 1.1 §4.3.1): +20 % and +5 mm, whichever is larger."""
    return max((1 + PD_INCREASE_PCT / 100) * nadir_mm, nadir_mm + PD_ABSOLUTE_MM)


def sum_progressed(total_um: I64, nadir_um: I64) -> B:
    """RECIST 1.1 §4.3.1 PD of a sum: at least 20 % over the nadir and at least 5 mm over it (exact integers)."""
    return (100 * total_um >= (100 + PD_INCREASE_PCT) * nadir_um) & (total_um - nadir_um >= PD_ABSOLUTE_UM)


def sum_partial_response(total_um: I64, baseline_um: I64) -> B:
    """RECIST 1.1 §4.3.1 PR of a sum: at least 30 % below the baseline sum (exact integers)."""
    return 100 * total_um <= (100 - PR_DECREASE_PCT) * baseline_um


def target_response(total_um: I64, measured: I64, cr_ok: I64, n_targets: I64, baseline_um: I64, nadir_um: I64) -> C:
    """Target response (response-rules.md §2): CR, then PD (on the measured targets alone if some are
    missing), NE when a target is not measured, PR at <= 70 % of baseline, else SD; NONE without targets."""
    complete = measured == n_targets
    cr = complete & (cr_ok == n_targets)
    pd = sum_progressed(total_um, nadir_um)
    pr = sum_partial_response(total_um, baseline_um)
    code = np.select(
        [n_targets == 0, cr, pd, ~complete, pr],
        [NONE, Code.CR, Code.PD, Code.NE, Code.PR],
        default=Code.SD,
    )
    return code.astype(np.int8)


def nontarget_response(n_nontargets: I64, assessed: I64, present: I64, unequivocal: I64) -> C:
    """Non-target response (response-rules.md §2): PD on unequivocal progression, NE if any is not assessed,
    CR if all are absent, else non-CR/non-PD; NONE without non-targets."""
    code = np.select(
        [n_nontargets == 0, unequivocal > 0, assessed < n_nontargets, present == 0],
        [NONE, Code.PD, Code.NE, Code.CR],
        default=Code.NN,
    )
    return code.astype(np.int8)


def overall_response(target: C, nontarget: C, new_lesion: B) -> C:
    """Overall timepoint response, Eisenhauer 2009 table 1 (targets) and table 2 (non-target disease only)."""
    no_targets = target == NONE
    nt_pd = nontarget == Code.PD
    code = np.select(
        [
            (target == Code.PD) | nt_pd | new_lesion,
            no_targets & (nontarget == NONE),
            no_targets,  # table 2: the non-target response is the overall response
            (target == Code.CR) & ((nontarget == Code.CR) | (nontarget == NONE)),
            target == Code.CR,  # CR with non-CR/non-PD or NE non-targets
            target == Code.PR,
            target == Code.SD,
        ],
        [Code.PD, Code.NE, nontarget, Code.CR, Code.PR, Code.PR, Code.SD],
        default=Code.NE,
    )
    return code.astype(np.int8)
