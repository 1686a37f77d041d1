"""iRECIST overall response on top of RECIST 1.1 (Seymour 2017, table 2; RECIST working group FAQ;
response-rules.md §5): iUPD, its confirmation as iCPD, the reset to iSD/iPR/iCR/iNN, and NE after iUPD.

The state machine steps through the assessments of all subjects at once (one column at a time); a cohort
and a single subject run the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from abscopal.protocol.model import ResponseOptions
from abscopal.response.codes import NONE, Code
from abscopal.response.lesions import Timepoints
from abscopal.response.recist import PD_ABSOLUTE_UM, overall_response, sum_progressed

I64 = NDArray[np.int64]
B = NDArray[np.bool_]
C = NDArray[np.int8]

TRIGGER_TARGET, TRIGGER_NONTARGET, TRIGGER_NEW = 1, 2, 4
NO_DAY = np.iinfo(np.int64).max // 4


@dataclass(frozen=True)
class IrecistResult:
    """Overall iRECIST codes per assessment and the facts PFS and iBOR need."""

    overall: C  # (subjects, assessments)
    triggers: NDArray[np.int8]  # bit set of TRIGGER_* on iUPD/iCPD cells
    out_of_window: B  # iCPD confirmed outside icpd_window_days
    confirmed_iupd_day: I64  # per subject: day of the iUPD later confirmed, NO_DAY if none
    confirmed_run_start: I64  # per subject: column of that iUPD (cells from there are part of the iCPD)
    pending_iupd_day: I64  # per subject: day of an iUPD still unconfirmed after the last assessment


def trigger_names(bits: int) -> str:
    """'target+non_target+new' for a trigger bit set."""
    names = [n for b, n in ((1, "target"), (2, "non_target"), (4, "new")) if bits & b]
    return "+".join(names)


def irecist_overall(tp: Timepoints, target: C, nontarget: C, options: ResponseOptions) -> IrecistResult:
    """Step through each subject's assessments applying response-rules.md §5 in its order: iCPD, reset,
    else iUPD; NE keeps a subject in iUPD; after a reset, new lesions already seen do not re-trigger."""
    n_subj, width = tp.valid.shape
    out = np.full((n_subj, width), NONE, dtype=np.int8)
    triggers = np.zeros((n_subj, width), dtype=np.int8)
    out_of_window = np.zeros((n_subj, width), dtype=np.bool_)
    in_upd = np.zeros(n_subj, dtype=np.bool_)
    confirmed = np.zeros(n_subj, dtype=np.bool_)
    trig = np.zeros(n_subj, dtype=np.int8)
    sod_ref = np.zeros(n_subj, dtype=np.int64)
    nlt_ref = np.zeros(n_subj, dtype=np.int64)
    count_ref = np.zeros(n_subj, dtype=np.int64)
    known_new = np.zeros(n_subj, dtype=np.int64)  # new lesions seen before the last reset
    nlt_nadir = np.full(n_subj, NO_DAY, dtype=np.int64)
    upd_day = np.full(n_subj, NO_DAY, dtype=np.int64)
    upd_pos = np.zeros(n_subj, dtype=np.int64)
    confirmed_day = np.full(n_subj, NO_DAY, dtype=np.int64)
    confirmed_start = np.full(n_subj, width, dtype=np.int64)
    wmin, wmax = options.icpd_window_days.min, options.icpd_window_days.max
    no_new = np.zeros(n_subj, dtype=np.bool_)
    for t in range(1, width):
        valid = tp.valid[:, t]
        tgt, nt = target[:, t], nontarget[:, t]
        seen = tp.new_seen[:, t]
        # RECIST 1.1 PD of each category, new lesions counted against those already followed (§5, after reset)
        target_pd = tgt == Code.PD
        nontarget_pd = nt == Code.PD
        nlt_complete = (tp.nlt_seen[:, t] > 0) & (tp.nlt_measured[:, t] == tp.nlt_seen[:, t])
        nlt_grew = nlt_complete & (nlt_nadir < NO_DAY) & sum_progressed(tp.nlt_sum[:, t], nlt_nadir)
        new_pd = (seen > known_new) | nlt_grew | (tp.nlnt_unequivocal[:, t] > 0)
        plain = overall_response(tgt, nt, no_new)
        # Seymour 2017 table 2: iCR needs every new lesion gone; followed new lesions still present make it iPR
        plain = np.where((plain == Code.CR) & (tp.new_present[:, t] > 0), Code.PR, plain).astype(np.int8)
        bits = (target_pd * TRIGGER_TARGET + nontarget_pd * TRIGGER_NONTARGET + new_pd * TRIGGER_NEW).astype(np.int8)

        fresh = valid & ~in_upd & ~confirmed
        start = fresh & (bits > 0)
        pending = valid & in_upd
        by_target = (trig & TRIGGER_TARGET) > 0
        by_nontarget = (trig & TRIGGER_NONTARGET) > 0
        by_new = (trig & TRIGGER_NEW) > 0
        # 1. confirmation against the iUPD assessment (increases cumulative since then)
        confirm = pending & (
            (by_target & (tp.target_sum[:, t] - sod_ref >= PD_ABSOLUTE_UM))
            | (by_nontarget & (tp.nt_increased[:, t] > 0))
            | (
                by_new
                & ((tp.nlt_sum[:, t] - nlt_ref >= PD_ABSOLUTE_UM) | (tp.nlnt_increased[:, t] > 0) | (seen > count_ref))
            )
            | (~by_target & target_pd)
            | (~by_nontarget & nontarget_pd)
            | (~by_new & new_pd)
        )
        since = tp.day[:, t] - upd_day
        in_window = (since >= wmin) & (since <= wmax)
        if options.enforce_icpd_window:
            confirm &= in_window
        # 2. reset when every triggering category is back below its PD criteria
        target_back = ~by_target | np.isin(tgt, (Code.CR, Code.PR, Code.SD))
        nontarget_back = ~by_nontarget | np.isin(nt, (Code.CR, Code.NN))
        all_new_absent = (seen > 0) & (tp.new_absent[:, t] == seen)
        if options.new_lesion_reset == "sod_decrease_or_absent":
            sod_down = (tp.target_measured[:, t] == tp.n_targets) & (tp.target_sum[:, t] < sod_ref)
            new_back = ~by_new | all_new_absent | ((tp.n_targets > 0) & sod_down)
        else:
            new_back = ~by_new | all_new_absent
        reset = pending & ~confirm & target_back & nontarget_back & new_back & (plain != Code.NE)
        stay = pending & ~confirm & ~reset

        col = np.full(n_subj, NONE, dtype=np.int8)
        col = np.where(fresh, np.where(start, Code.UPD, plain), col)
        col = np.where(valid & confirmed, Code.PD, col)
        col = np.where(confirm, Code.PD, col)
        col = np.where(reset, plain, col)
        col = np.where(stay, np.where(plain == Code.NE, Code.NE, Code.UPD), col)
        out[:, t] = col
        triggers[:, t] = np.where(start, bits, np.where(pending, trig, 0))
        out_of_window[:, t] = confirm & ~in_window

        # state after this assessment
        confirmed_day = np.where(confirm, upd_day, confirmed_day)
        confirmed_start = np.where(confirm, upd_pos, confirmed_start)
        confirmed |= confirm
        in_upd = (in_upd & ~confirm & ~reset) | start
        known_new = np.where(reset, seen, known_new)
        trig = np.where(start, bits, trig)
        sod_ref = np.where(start, tp.target_sum[:, t], sod_ref)
        nlt_ref = np.where(start, tp.nlt_sum[:, t], nlt_ref)
        count_ref = np.where(start, seen, count_ref)
        upd_day = np.where(start, tp.day[:, t], upd_day)
        upd_pos = np.where(start, t, upd_pos)
        nlt_nadir = np.where(valid & nlt_complete, np.minimum(nlt_nadir, tp.nlt_sum[:, t]), nlt_nadir)
    return IrecistResult(
        overall=out,
        triggers=triggers,
        out_of_window=out_of_window,
        confirmed_iupd_day=confirmed_day,
        confirmed_run_start=confirmed_start,
        pending_iupd_day=np.where(in_upd, upd_day, NO_DAY),
    )
