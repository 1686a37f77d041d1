"""Best overall response with and without confirmation, ORR and DCR flags (RECIST 1.1 §4.4 and table 3;
iRECIST iBOR, Seymour 2017 table 3; confirmation defaults of pharmaverse admiralonco; response-rules.md §4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from abscopal.protocol.model import ResponseOptions
from abscopal.response.codes import NONE, Code

I64 = NDArray[np.int64]
B = NDArray[np.bool_]
C = NDArray[np.int8]
_WORST = len(Code)  # below NE: no assessment at all


def evaluation_window(codes: C, valid: B) -> B:
    """Post-baseline assessments up to and including the first PD (RECIST 1.1) or iCPD (iRECIST)."""
    is_pd = codes == Code.PD
    after_pd = (np.cumsum(is_pd, axis=1) - is_pd) > 0
    window: B = valid & ~after_pd
    window[:, 0] = False
    return window


def in_confirmed_run(codes: C, confirmed_run_start: I64) -> C:
    """iRECIST: the iUPD assessments of a run later confirmed count as iCPD for the iBOR (Seymour table 3)."""
    cols = np.arange(codes.shape[1])[None, :]
    relabel = (codes == Code.UPD) & (cols >= confirmed_run_start[:, None])
    return np.where(relabel, Code.PD, codes).astype(np.int8)


def best_unconfirmed(codes: C, day: I64, reference_day: I64, window: B, sd_min_days: int) -> C:
    """Best timepoint response in the window; SD (or non-CR/non-PD) earlier than ``sd_min_days`` after the
    reference date counts as NE, so that a following PD gives PD (response-rules.md §4)."""
    early = np.isin(codes, (Code.SD, Code.NN)) & (day - reference_day[:, None] < sd_min_days)
    c = np.where(early, Code.NE, codes)
    c = np.where(window & (c != NONE), c, _WORST)
    best = c.min(axis=1)
    return np.where(best == _WORST, Code.NE, best).astype(np.int8)


@dataclass(frozen=True)
class Confirmation:
    """Per assessment: is this CR confirmed as CR, is this CR or PR confirmed as (at least) PR."""

    cr: B
    pr: B


def confirmations(codes: C, day: I64, window: B, options: ResponseOptions) -> Confirmation:
    """RECIST 1.1 §4.4: a CR confirmed by a later CR, a PR by a later PR or CR, at least ``confirm_min_days``
    later, with no PD/iUPD between, at most ``max_ne_between`` NE and no SD unless ``accept_sd_between``.
    A CR followed by PR confirms a PR (response-rules.md §4)."""
    n_subj, width = codes.shape
    bad = np.cumsum(window & np.isin(codes, (Code.UPD, Code.PD)), axis=1)
    ne = np.cumsum(window & (codes == Code.NE), axis=1)
    stable = np.cumsum(window & np.isin(codes, (Code.SD, Code.NN)), axis=1)
    partial = np.cumsum(window & (codes == Code.PR), axis=1)
    resp = window & np.isin(codes, (Code.CR, Code.PR))
    is_cr = window & (codes == Code.CR)
    conf_cr = np.zeros((n_subj, width), dtype=np.bool_)
    conf_pr = np.zeros((n_subj, width), dtype=np.bool_)
    for t in range(1, width):
        if not resp[:, t].any():
            continue
        for u in range(t + 1, width):
            ok = resp[:, t] & resp[:, u] & (day[:, u] - day[:, t] >= options.confirm_min_days)
            ok &= (bad[:, u - 1] - bad[:, t] == 0) & (ne[:, u - 1] - ne[:, t] <= options.max_ne_between)
            if not options.accept_sd_between:
                ok &= stable[:, u - 1] - stable[:, t] == 0
            conf_pr[:, t] |= ok
            conf_cr[:, t] |= ok & is_cr[:, t] & is_cr[:, u] & (partial[:, u - 1] - partial[:, t] == 0)
    return Confirmation(cr=conf_cr, pr=conf_pr)


def stable_reached(codes: C, day: I64, reference_day: I64, window: B, min_days: int) -> B:
    """Per subject: a response of SD or better at least ``min_days`` after the reference date."""
    ok = np.isin(codes, (Code.CR, Code.PR, Code.SD, Code.NN)) & (day - reference_day[:, None] >= min_days)
    reached: B = np.asarray((window & ok).any(axis=1), dtype=np.bool_)
    return reached


def best_confirmed(
    codes: C,
    day: I64,
    reference_day: I64,
    window: B,
    has_targets: B,
    confirmation: Confirmation,
    options: ResponseOptions,
) -> C:
    """Eisenhauer table 3: confirmed CR, else confirmed PR, else SD when its minimum duration is met (non-CR/
    non-PD without targets), else iUPD (iRECIST, unconfirmed), else PD/iCPD, else NE."""
    stable = stable_reached(codes, day, reference_day, window, options.sd_min_days)
    bor = np.select(
        [
            confirmation.cr.any(axis=1),
            confirmation.pr.any(axis=1),
            stable,
            (window & (codes == Code.UPD)).any(axis=1),
            (window & (codes == Code.PD)).any(axis=1),
        ],
        [Code.CR, Code.PR, np.where(has_targets, Code.SD, Code.NN), Code.UPD, Code.PD],
        default=Code.NE,
    )
    return bor.astype(np.int8)


def first_response_day(codes: C, day: I64, window: B, confirmation: Confirmation | None) -> I64:
    """Day of the first assessment of the (confirmed) response, -1 if none: the start of DOR (§4)."""
    starts = (confirmation.cr | confirmation.pr) if confirmation is not None else window & np.isin(codes, (0, 1))
    has = starts.any(axis=1)
    first = np.argmax(starts, axis=1)
    return np.where(has, day[np.arange(day.shape[0]), first], -1).astype(np.int64)
