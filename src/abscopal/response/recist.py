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

PD_ABSOLUTE_UM = 5 * UM_PER_MM  # RECIST 1.1 §4.3.1: an absolute increase of at least 5 mm


def sum_progressed(total_um: I64, nadir_um: I64) -> B:
    """RECIST 1.1 §4.3.1 PD of a sum: at least 20 % over the nadir and at least 5 mm over it."""
    return (10 * total_um >= 12 * nadir_um) & (total_um - nadir_um >= PD_ABSOLUTE_UM)


def target_response(total_um: I64, measured: I64, cr_ok: I64, n_targets: I64, baseline_um: I64, nadir_um: I64) -> C:
    """Target response (response-rules.md §2): CR, then PD (on the measured targets alone if some are
    missing), NE when a target is not measured, PR at <= 70 % of baseline, else SD; NONE without targets."""
    complete = measured == n_targets
    cr = complete & (cr_ok == n_targets)
    pd = sum_progressed(total_um, nadir_um)
    pr = 10 * total_um <= 7 * baseline_um
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
