"""Response by radiotherapy role (response-rules.md §8): the target rules of RECIST 1.1 §4.3.1 applied to
the targets of each role (conventional, low-dose, observation), and the cohort's in-field and out-of-field
(abscopal) response rates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from abscopal.domain import RtRole
from abscopal.protocol.model import ResponseOptions
from abscopal.response.best import confirmations
from abscopal.response.codes import NONE, Code
from abscopal.response.lesions import Timepoints, first_rows, running_min_before, sort_order
from abscopal.response.recist import target_response
from abscopal.response.table import ROLES, LesionTable

I64 = NDArray[np.int64]
B = NDArray[np.bool_]
C = NDArray[np.int8]
F64 = NDArray[np.float64]


@dataclass(frozen=True)
class RoleResponses:
    """Per role (axis 0: conventional, low-dose, observation), subject and assessment."""

    codes: C
    nadir_um: I64  # nadir before the assessment
    best: C  # (roles, subjects): best role response, NONE when the subject has no target of that role


def role_responses(tp: Timepoints, window: B, options: ResponseOptions) -> RoleResponses:
    """Role sums, nadirs and responses; the best per subject over the subject's evaluation window,
    confirmed as in §4 when ``role_confirmation`` is set."""
    n_roles = tp.role_sum.shape[0]
    codes = np.full(tp.role_sum.shape, NONE, dtype=np.int8)
    nadir = np.zeros_like(tp.role_sum)
    best = np.full((n_roles, tp.valid.shape[0]), NONE, dtype=np.int8)
    for r in range(n_roles):
        n = tp.role_n_targets[r][:, None]
        complete = tp.valid & (tp.role_measured[r] == n)
        nadir[r] = running_min_before(tp.role_sum[r], complete)
        c = target_response(tp.role_sum[r], tp.role_measured[r], tp.role_cr_ok[r], n, tp.role_sum[r][:, :1], nadir[r])
        c = np.where(tp.valid, c, NONE).astype(np.int8)
        c[:, 0] = NONE
        codes[r] = c
        w = window & (c != NONE)
        if options.role_confirmation:
            conf = confirmations(c, tp.day, w, options)
            rest = np.where(w & ~np.isin(c, (Code.CR, Code.PR)), c, len(Code)).min(axis=1)
            b = np.select([conf.cr.any(axis=1), conf.pr.any(axis=1)], [Code.CR, Code.PR], default=rest)
        else:
            b = np.where(w, c, len(Code)).min(axis=1)
        b = np.where(b == len(Code), Code.NE, b)
        best[r] = np.where(tp.role_n_targets[r] > 0, b, NONE)
    return RoleResponses(codes=codes, nadir_um=nadir, best=best)


def lesion_pct_change(table: LesionTable) -> F64:
    """Per row: % change of the lesion's diameter from its own first measurement (§8); NaN where either
    is missing or the first measurement is 0."""
    o = sort_order(table)
    measured = table.diameter_um[o] >= 0
    first = first_rows(table.lesion[o], len(table.lesion_ids), measured)
    first_um = np.full(len(table.lesion_ids), -1, dtype=np.int64)
    has = first < o.size
    first_um[has] = table.diameter_um[o][first[has]]
    base = first_um[table.lesion]
    ok = (table.diameter_um >= 0) & (base > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct: F64 = np.where(ok, (table.diameter_um - base) / np.where(base > 0, base, 1) * 100.0, np.nan)
    return pct


#: Best role responses that count as a response of that role's lesions (response-rules.md §8).
ROLE_RESPONDER_CODES = (Code.CR, Code.PR)


@dataclass(frozen=True, slots=True)
class RoleRate:
    """The response rate of one RT role: responders among the subjects with a target of that role."""

    role: RtRole
    subjects: int  # with at least one target lesion of this role (evaluable)
    responders: int  # best role response CR or PR

    @property
    def rate(self) -> float | None:
        return self.responders / self.subjects if self.subjects else None


def role_rates_of(best: C, roles: Sequence[RtRole] = ROLES) -> tuple[RoleRate, ...]:
    """Cohort rate per RT role (§8) from best role responses (axis 0: ``roles``, axis 1: subjects; NONE where
    the subject has no target of that role). The observation role's rate is the abscopal response rate."""
    out = []
    for r, role in enumerate(roles):
        row = best[r]
        out.append(RoleRate(role, int((row != NONE).sum()), int(np.isin(row, ROLE_RESPONDER_CODES).sum())))
    return tuple(out)
