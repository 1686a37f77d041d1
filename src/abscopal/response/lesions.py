"""Baseline checks, lesion bookkeeping and per-assessment sums (RECIST 1.1 §3-4; iRECIST new-lesion split).

Everything here aggregates rows into one value per subject and assessment ("timepoint"), held in
subjects x assessments matrices (padded; ``valid`` marks real assessments). No response rule lives here:
the rules in :mod:`recist`, :mod:`irecist` and :mod:`best` read these matrices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from abscopal.response.recist import (
    MEASURABLE_MIN_MM,
    MEASURABLE_NODE_MIN_MM,
    MEASURABLE_NODE_UM,
    MEASURABLE_UM,
    NORMAL_NODE_UM,
)
from abscopal.response.table import (
    INCREASED,
    NEW,
    NON_TARGET,
    PRESENT,
    TARGET,
    UM_PER_MM,
    UNEQUIVOCAL,
    LesionTable,
)

I64 = NDArray[np.int64]
T_ = TypeVar("T_", bound=np.generic)
B = NDArray[np.bool_]

MAX_TARGETS = 5  # RECIST 1.1 §4.2
MAX_TARGETS_PER_ORGAN = 2  # RECIST 1.1 §4.2
N_ROLES = 4  # none, conventional, low_dose, observation
N_SLOTS = 9  # row kinds counted per assessment and role (see aggregate)


@dataclass(frozen=True)
class RowProblem:
    """A problem with one input row (``row`` indexes the table; the caller maps it to a line)."""

    row: int
    field: str
    reason: str


def row_order(table: LesionTable) -> tuple[I64, bool]:
    """Row order by subject, date, lesion, which every later step reads rows in, and whether the rows
    already come in that order (as exports usually do; then nothing is sorted or copied)."""
    s, d, le = table.subject, table.day, table.lesion
    if s.size < 2:
        return np.arange(s.size, dtype=np.int64), True
    ds, dd, dl = s[1:] - s[:-1], d[1:] - d[:-1], le[1:] - le[:-1]
    if bool(np.all((ds > 0) | ((ds == 0) & ((dd > 0) | ((dd == 0) & (dl >= 0)))))):
        return np.arange(s.size, dtype=np.int64), True
    return np.lexsort((le, d, s)).astype(np.int64), False


def sort_order(table: LesionTable) -> I64:
    """Row order by subject, date, lesion (see :func:`row_order`)."""
    return row_order(table)[0]


def first_rows(lesion: I64, n_lesions: int, mask: B | None = None) -> I64:
    """Position of each lesion's first row (rows sorted by subject and date), ``lesion.size`` if none."""
    first = np.full(n_lesions, lesion.size, dtype=np.int64)
    pos = np.arange(lesion.size, dtype=np.int64)
    if mask is None:
        np.minimum.at(first, lesion, pos)
    else:
        np.minimum.at(first, lesion[mask], pos[mask])
    return first


def check_table(table: LesionTable) -> list[RowProblem]:
    """Structural checks of response-rules.md §1: duplicates, class changes, baseline-only targets and
    non-targets, targets measured and measurable at baseline, at most 5 targets and 2 per organ."""
    problems: list[RowProblem] = []
    if len(table) == 0:
        return problems
    o, in_order = row_order(table)

    def take(values: NDArray[T_]) -> NDArray[T_]:
        return values if in_order else values[o]

    subj, day, les = take(table.subject), take(table.day), take(table.lesion)
    cls, node, um = take(table.lesion_class), take(table.is_node), take(table.diameter_um)
    first_of_subject = np.r_[True, subj[1:] != subj[:-1]]
    # a subject's rows are contiguous and ascending in day: its first row holds its baseline date
    baseline_day = day[first_of_subject][np.cumsum(first_of_subject) - 1]
    at_baseline = day == baseline_day
    dup = np.r_[False, (subj[1:] == subj[:-1]) & (day[1:] == day[:-1]) & (les[1:] == les[:-1])]
    for i in np.flatnonzero(dup):
        problems.append(RowProblem(int(o[i]), "lesion_id", f"{_who(table, o[i])} appears twice on this date"))
    # lesion-level: class at first sight, first date
    first = first_rows(les, len(table.lesion_ids))
    first_idx = first[first < les.size]  # positions (in sorted rows) of each lesion's first row
    lesion_first_class = np.full(len(table.lesion_ids), -1, dtype=np.int8)
    lesion_first_class[les[first_idx]] = cls[first_idx]
    names = {TARGET: "target", NON_TARGET: "non_target", NEW: "new"}
    for i in np.flatnonzero(cls != lesion_first_class[les]):
        problems.append(
            RowProblem(
                int(o[i]),
                "lesion_class",
                f"{_who(table, o[i])} changes class from {names[int(lesion_first_class[les[i]])]} "
                f"to {names[int(cls[i])]} (a lesion keeps the class it had when first seen)",
            )
        )
    base_first = at_baseline[first_idx]
    for i in first_idx[base_first & (cls[first_idx] == NEW)]:
        problems.append(
            RowProblem(int(o[i]), "lesion_class", f"{_who(table, o[i])} is 'new' at the baseline assessment")
        )
    for i in first_idx[~base_first & (cls[first_idx] == TARGET)]:
        problems.append(
            RowProblem(
                int(o[i]),
                "lesion_class",
                f"{_who(table, o[i])} is a target lesion missing at baseline (targets are chosen at baseline)",
            )
        )
    for i in first_idx[~base_first & (cls[first_idx] == NON_TARGET)]:
        problems.append(
            RowProblem(
                int(o[i]),
                "lesion_class",
                f"{_who(table, o[i])} is first seen after baseline; a lesion first seen after baseline is 'new'",
            )
        )
    base_target = at_baseline & (cls == TARGET)
    for i in np.flatnonzero(base_target & (um < 0)):
        problems.append(
            RowProblem(int(o[i]), "diameter_mm", f"{_who(table, o[i])} is a target not measured at baseline")
        )
    too_small = base_target & (um >= 0) & np.where(node, um < MEASURABLE_NODE_UM, um < MEASURABLE_UM)
    for i in np.flatnonzero(too_small):
        need = (
            f"short axis >= {MEASURABLE_NODE_MIN_MM} mm for a node"
            if node[i]
            else f"longest diameter >= {MEASURABLE_MIN_MM} mm"
        )
        problems.append(
            RowProblem(
                int(o[i]),
                "diameter_mm",
                f"{_who(table, o[i])} is a target but not measurable at baseline "
                f"({um[i] / UM_PER_MM:g} mm; RECIST 1.1 needs {need})",
            )
        )
    # target counts at baseline: the 6th target of a subject, the 3rd of an organ
    bt = np.flatnonzero(base_target)
    nth = _rank_within(subj[bt])
    for i in bt[nth >= MAX_TARGETS]:
        problems.append(
            RowProblem(
                int(o[i]), "lesion_class", f"subject {table.subject_ids[subj[i]]} has more than 5 target lesions"
            )
        )
    organ = take(table.organ)
    by_organ = bt[np.lexsort((np.arange(bt.size), organ[bt], subj[bt]))]
    key = subj[by_organ] * (int(table.organ.max()) + 1) + organ[by_organ]
    for i in by_organ[_rank_within(key) >= MAX_TARGETS_PER_ORGAN]:
        problems.append(
            RowProblem(
                int(o[i]),
                "organ",
                f"subject {table.subject_ids[subj[i]]} has more than 2 target lesions in one organ",
            )
        )
    problems.sort(key=lambda p: (int(table.line[p.row]), p.field))
    return problems


def _who(table: LesionTable, row: int) -> str:
    return f"lesion {table.lesion_ids[table.lesion[row]]} of subject {table.subject_ids[table.subject[row]]}"


def _rank_within(keys: I64) -> I64:
    """0, 1, 2, ... within runs of equal consecutive keys."""
    if keys.size == 0:
        return np.zeros(0, dtype=np.int64)
    start = np.r_[True, keys[1:] != keys[:-1]]
    idx = np.arange(keys.size)
    return (idx - np.maximum.accumulate(np.where(start, idx, 0))).astype(np.int64)


def running_min_before(values: I64, valid: B) -> I64:
    """For each cell, the minimum of ``values`` over the earlier valid cells of its row (the nadir before an
    assessment, RECIST 1.1 §4.3.1); a large sentinel where there is none."""
    big = np.iinfo(np.int64).max // 4
    v = np.where(valid, values, big)
    run = np.minimum.accumulate(v, axis=1)
    out = np.full_like(run, big)
    out[:, 1:] = run[:, :-1]
    return out


@dataclass(frozen=True)
class Timepoints:
    """Per subject (rows) and assessment (columns) sums and counts, in micrometres and lesion counts."""

    valid: B  # a real assessment
    day: I64
    n_targets: I64  # per subject: targets at baseline
    n_nontargets: I64  # per subject: non-targets at baseline
    target_sum: I64  # sum of measured targets
    target_measured: I64  # targets measured
    target_cr_ok: I64  # measured targets at CR size (non-nodal 0, nodal < 10 mm)
    nt_assessed: I64
    nt_present: I64  # present, increased or unequivocal progression
    nt_increased: I64  # recorded 'increased' (a further increase; a repeated 'unequivocal' is not one)
    nt_unequivocal: I64
    new_present: I64  # new lesions present at this assessment
    new_seen: I64  # distinct new lesions that have appeared so far
    new_absent: I64  # new lesions seen so far and recorded absent here
    nlt_sum: I64  # iRECIST new-lesion targets: sum of measured
    nlt_seen: I64  # NLT seen so far
    nlt_measured: I64
    nlnt_increased: I64  # iRECIST new-lesion non-targets recorded 'increased'
    nlnt_unequivocal: I64
    role_sum: I64  # (roles, subjects, assessments): per RT role, like target_sum
    role_measured: I64
    role_cr_ok: I64
    role_n_targets: I64  # (roles, subjects)
    role_nt_worst: I64  # (roles, subjects, assessments): worst status of the role's non-targets, -1 none, -2 NE
    subject_of_tp: I64  # flat timepoint -> subject
    pos_of_tp: I64  # flat timepoint -> column


def aggregate(table: LesionTable) -> Timepoints:
    """Sum and count the rows of each subject and assessment (assumes :func:`check_table` found nothing)."""
    o, in_order = row_order(table)

    def take(values: NDArray[T_]) -> NDArray[T_]:
        return values if in_order else values[o]

    subj, day, les = take(table.subject), take(table.day), take(table.lesion)
    cls, node, um, st = take(table.lesion_class), take(table.is_node), take(table.diameter_um), take(table.status)
    organ = take(table.organ)
    n = subj.size
    new_tp = np.r_[True, (subj[1:] != subj[:-1]) | (day[1:] != day[:-1])] if n else np.zeros(0, np.bool_)
    tp = np.cumsum(new_tp) - 1
    n_tp = int(tp[-1]) + 1 if n else 0
    tp_first_row = np.flatnonzero(new_tp)
    tp_subj = subj[tp_first_row]
    n_subj = len(table.subject_ids)
    pos = _rank_within(tp_subj)
    width = int(pos.max()) + 1 if n_tp else 1

    def pad(flat: I64, fill: int = 0) -> I64:
        out = np.full((n_subj, width), fill, dtype=np.int64)
        out[tp_subj, pos] = flat
        return out

    # lesion bookkeeping: role from a lesion's first row
    n_les = len(table.lesion_ids)
    first = first_rows(les, n_les)
    first = first[first < n]
    lesion_role = np.zeros(n_les, dtype=np.int8)
    lesion_role[les[first]] = take(table.role)[first]
    role = lesion_role[les]

    # new lesions (few rows: worked on apart): appearance, iRECIST new-lesion targets (NLT) and non-targets
    nr = np.flatnonzero(cls == NEW)
    les_n, tp_n, um_n, st_n = les[nr], tp[nr], um[nr], st[nr]
    present = np.where(um_n >= 0, um_n > 0, st_n >= PRESENT)
    absent = np.where(um_n >= 0, um_n == 0, st_n == 0)

    def count_new(mask: B) -> I64:
        """Per assessment, the new-lesion rows where ``mask`` (over new rows) holds."""
        return np.bincount(tp_n, weights=mask, minlength=n_tp).astype(np.int64)

    def total_new(mask: B, values: I64) -> I64:
        return np.bincount(tp_n, weights=np.where(mask, values, 0), minlength=n_tp).astype(np.int64)

    # appearance: the first row where a new lesion is present
    appear_tp = np.full(n_les, np.iinfo(np.int64).max, dtype=np.int64)
    appear_um = np.full(n_les, -1, dtype=np.int64)
    if present.any():
        firsts = first_rows(les_n, n_les, present)
        firsts = firsts[firsts < nr.size]
        appear_tp[les_n[firsts]] = tp_n[firsts]
        appear_um[les_n[firsts]] = um_n[firsts]
    appeared = tp_n >= appear_tp[les_n]
    # NLT (Seymour 2017): measurable at appearance, in order of appearance then size, at most 5 and 2 per organ
    is_nlt_lesion = np.zeros(n_les, dtype=np.bool_)
    lesion_node = np.zeros(n_les, dtype=np.bool_)
    lesion_node[les_n] = node[nr]
    lesion_organ = np.zeros(n_les, dtype=np.int64)
    lesion_organ[les_n] = organ[nr]
    lesion_subj = np.zeros(n_les, dtype=np.int64)
    lesion_subj[les_n] = subj[nr]
    seen_lesions = np.flatnonzero(appear_tp < np.iinfo(np.int64).max)
    if seen_lesions.size:
        meas = np.where(
            lesion_node[seen_lesions],
            appear_um[seen_lesions] >= MEASURABLE_NODE_UM,
            appear_um[seen_lesions] >= MEASURABLE_UM,
        )
        c = seen_lesions[meas]
        order = c[np.lexsort((c, -appear_um[c], appear_tp[c], lesion_subj[c]))]
        by_organ = order[np.lexsort((np.arange(order.size), lesion_organ[order], lesion_subj[order]))]
        organ_key = lesion_subj[by_organ] * (int(organ.max()) + 1) + lesion_organ[by_organ]
        organ_ok = np.zeros(n_les, dtype=np.bool_)
        organ_ok[by_organ[_rank_within(organ_key) < MAX_TARGETS_PER_ORGAN]] = True
        kept = order[organ_ok[order]]
        is_nlt_lesion[kept[_rank_within(lesion_subj[kept]) < MAX_TARGETS]] = True
    nlt = appeared & is_nlt_lesion[les_n]
    nlnt = appeared & ~is_nlt_lesion[les_n]
    first_appear = np.zeros(n_tp, dtype=np.int64)
    nlt_first = np.zeros(n_tp, dtype=np.int64)
    if seen_lesions.size:
        np.add.at(first_appear, appear_tp[seen_lesions], 1)
        np.add.at(nlt_first, appear_tp[seen_lesions], is_nlt_lesion[seen_lesions].astype(np.int64))

    tgt = cls == TARGET
    # a target recorded 'absent' without a diameter has disappeared: 0 mm (RECIST 1.1 §4.3.1)
    tum = np.where(tgt & (um < 0) & (st == 0), 0, um)
    tmeas = tgt & (tum >= 0)
    cr_ok = tmeas & np.where(node, tum < NORMAL_NODE_UM, tum == 0)
    nt = cls == NON_TARGET

    # one counting pass: rows per (assessment, RT role, slot); slots 0-2 targets (missing, measured,
    # measured at CR size), 3 other, 4-8 non-targets by status (missing, absent, present, increased, unequivocal)
    slot = np.where(tgt, tmeas.astype(np.int64) + cr_ok, np.where(nt, 5 + st.astype(np.int64), 3))
    per = np.bincount((tp * N_ROLES + role) * N_SLOTS + slot, minlength=n_tp * N_ROLES * N_SLOTS)
    per = per.reshape(n_tp, N_ROLES, N_SLOTS)
    every = per.sum(axis=1)
    sums = np.bincount(tp * N_ROLES + role, weights=np.where(tmeas, tum, 0), minlength=n_tp * N_ROLES)
    sums = sums.astype(np.int64).reshape(n_tp, N_ROLES)

    valid = pad(np.ones(n_tp, dtype=np.int64)) == 1
    target_measured = pad(every[:, 1] + every[:, 2])
    n_targets = target_measured[:, 0].copy()
    n_nontargets = pad(every[:, 4:].sum(axis=1))[:, 0].copy()

    # per RT role (axis 0: conventional, low-dose, observation)
    role_sum = np.zeros((N_ROLES - 1, n_subj, width), dtype=np.int64)
    role_measured = np.zeros_like(role_sum)
    role_cr_ok = np.zeros_like(role_sum)
    role_nt_worst = np.full_like(role_sum, -1)
    for r in range(1, N_ROLES):
        c = per[:, r, :]
        role_sum[r - 1] = pad(sums[:, r])
        role_measured[r - 1] = pad(c[:, 1] + c[:, 2])
        role_cr_ok[r - 1] = pad(c[:, 2])
        worst = np.select([c[:, 8] > 0, c[:, 7] > 0, c[:, 6] > 0, c[:, 5] > 0], [3, 2, 1, 0], default=-1)
        # -2: some non-target of the role not assessed and none in unequivocal progression (NE)
        worst = np.where((c[:, 4] > 0) & (worst < UNEQUIVOCAL), -2, worst)
        role_nt_worst[r - 1] = pad(worst.astype(np.int64), -1)
    role_n_targets = role_measured[:, :, 0].copy()

    new_seen = pad(first_appear)
    new_seen = np.cumsum(new_seen, axis=1) * valid
    nlt_seen = np.cumsum(pad(nlt_first), axis=1) * valid
    return Timepoints(
        valid=valid,
        day=pad(day[tp_first_row]),
        n_targets=n_targets,
        n_nontargets=n_nontargets,
        target_sum=pad(sums.sum(axis=1)),
        target_measured=target_measured,
        target_cr_ok=pad(every[:, 2]),
        nt_assessed=pad(every[:, 5:].sum(axis=1)),
        nt_present=pad(every[:, 6:].sum(axis=1)),
        nt_increased=pad(every[:, 7]),
        nt_unequivocal=pad(every[:, 8]),
        new_present=pad(count_new(present)),
        new_seen=new_seen,
        new_absent=pad(count_new(appeared & absent)),
        nlt_sum=pad(total_new(nlt & (um_n >= 0), um_n)),
        nlt_seen=nlt_seen,
        nlt_measured=pad(count_new(nlt & (um_n >= 0))),
        nlnt_increased=pad(count_new(nlnt & (st_n == INCREASED))),
        nlnt_unequivocal=pad(count_new(nlnt & (st_n == UNEQUIVOCAL))),
        role_sum=role_sum,
        role_measured=role_measured,
        role_cr_ok=role_cr_ok,
        role_n_targets=role_n_targets,
        role_nt_worst=role_nt_worst,
        subject_of_tp=tp_subj.astype(np.int64),
        pos_of_tp=pos.astype(np.int64),
    )
