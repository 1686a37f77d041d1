"""Derive every response of a cohort or a subject: timepoint responses, BOR, ORR/DCR, PFS, DOR and
response by RT role (response-rules.md §1-8). Pure: plain data in, plain data out, no I/O.

:func:`derive_table` is the one derivation; :func:`derive_subject` and :func:`derive_cohort` take
:mod:`abscopal.domain` assessments, build the same :class:`~.table.LesionTable` and call it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from abscopal.domain import RtRole, TumourAssessment
from abscopal.errors import ValidationError
from abscopal.protocol.model import ResponseOptions
from abscopal.response.best import (
    Confirmation,
    best_confirmed,
    best_unconfirmed,
    confirmations,
    evaluation_window,
    first_response_day,
    in_confirmed_run,
    stable_reached,
)
from abscopal.response.codes import NONE, Code, Criteria, Response, label, parse_response
from abscopal.response.endpoints import NO_DAY, PFS_REASON_TEXT, Pfs, duration_days, progression_free_survival
from abscopal.response.irecist import irecist_overall, trigger_names
from abscopal.response.lesions import Timepoints, aggregate, check_table, running_min_before
from abscopal.response.recist import nontarget_response, overall_response, target_response
from abscopal.response.roles import RoleRate, RoleResponses, role_rates_of, role_responses
from abscopal.response.table import ROLES, UM_PER_MM, LesionTable, day_number, from_assessments, to_date

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]
B = NDArray[np.bool_]
C = NDArray[np.int8]


@dataclass(frozen=True, slots=True)
class SubjectFacts:
    """Subject-level facts for PFS (§6): reference date (first study treatment; default the baseline
    assessment), death date, date of new anticancer therapy."""

    subject_id: str
    reference_date: dt.date | None = None
    death_date: dt.date | None = None
    new_therapy_date: dt.date | None = None


@dataclass(frozen=True)
class CohortArrays:
    """The whole derivation as arrays (subjects x assessments), the form the CLI writes out fast."""

    criteria: Criteria
    table: LesionTable
    tp: Timepoints
    reference_day: I64
    nadir_um: I64
    target: C
    nontarget: C
    new_lesion: B
    overall: C
    triggers: NDArray[np.int8]
    out_of_window: B
    bor: C
    bor_confirmed: C
    objective_response: B
    disease_control: B
    pfs: Pfs
    response_start_day: I64
    dor_days: I64
    cr_confirmed_as_pr: B
    roles: RoleResponses

    @property
    def subject_ids(self) -> tuple[str, ...]:
        return self.table.subject_ids


def _fact_days(table: LesionTable, facts: Mapping[str, SubjectFacts], baseline_day: I64) -> tuple[I64, I64, I64]:
    n = len(table.subject_ids)
    ref, death, therapy = baseline_day.copy(), np.full(n, NO_DAY), np.full(n, NO_DAY)
    for i, sid in enumerate(table.subject_ids):
        f = facts.get(sid)
        if f is None:
            continue
        if f.reference_date is not None:
            ref[i] = day_number(f.reference_date)
        if f.death_date is not None:
            death[i] = day_number(f.death_date)
        if f.new_therapy_date is not None:
            therapy[i] = day_number(f.new_therapy_date)
    return ref, death.astype(np.int64), therapy.astype(np.int64)


def derive_table(
    table: LesionTable,
    facts: Mapping[str, SubjectFacts],
    options: ResponseOptions,
    criteria: Criteria,
    reference_day: I64 | None = None,
    death_day: I64 | None = None,
    new_therapy_day: I64 | None = None,
) -> CohortArrays:
    """Derive everything for a checked table (see :func:`~.lesions.check_table`). Subject-level days may be
    given as arrays aligned with ``table.subject_ids`` instead of ``facts`` (the fast path of the CLI)."""
    tp = aggregate(table)
    n_subj = tp.valid.shape[0]
    ref, death, therapy = _fact_days(table, facts, tp.day[:, 0])
    if reference_day is not None:
        ref = np.where(reference_day >= 0, reference_day, tp.day[:, 0]).astype(np.int64)
    if death_day is not None:
        death = death_day
    if new_therapy_day is not None:
        therapy = new_therapy_day
    n_t = tp.n_targets[:, None]
    complete = tp.valid & (tp.target_measured == n_t)
    nadir = running_min_before(tp.target_sum, complete)
    target = target_response(tp.target_sum, tp.target_measured, tp.target_cr_ok, n_t, tp.target_sum[:, :1], nadir)
    nontarget = nontarget_response(tp.n_nontargets[:, None], tp.nt_assessed, tp.nt_present, tp.nt_unequivocal)
    new_lesion = tp.new_present > 0
    blank = ~tp.valid
    blank[:, 0] = True
    target = np.where(blank, NONE, target).astype(np.int8)
    nontarget = np.where(blank, NONE, nontarget).astype(np.int8)

    if criteria is Criteria.IRECIST:
        ir = irecist_overall(tp, target, nontarget, options)
        overall = ir.overall
        triggers, out_of_window = ir.triggers, ir.out_of_window
        ranked = in_confirmed_run(overall, ir.confirmed_run_start)
        progression_day = ir.confirmed_iupd_day
        if options.unconfirmed_iupd == "event":
            progression_day = np.minimum(progression_day, ir.pending_iupd_day)
    else:
        overall = np.where(blank, NONE, overall_response(target, nontarget, new_lesion)).astype(np.int8)
        triggers = np.zeros(overall.shape, dtype=np.int8)
        out_of_window = np.zeros(overall.shape, dtype=np.bool_)
        ranked = overall
        first_pd = tp.valid & (overall == Code.PD)
        progression_day = np.where(first_pd.any(axis=1), tp.day[np.arange(n_subj), first_pd.argmax(axis=1)], NO_DAY)

    # BOR, ORR, DCR and DOR read assessments up to the first PD/iCPD and on or before new anticancer therapy
    window = evaluation_window(ranked, tp.valid) & (tp.day <= therapy[:, None])
    bor = best_unconfirmed(ranked, tp.day, ref, window, options.sd_min_days)
    conf = confirmations(ranked, tp.day, window, options)
    bor_confirmed = best_confirmed(ranked, tp.day, ref, window, tp.n_targets > 0, conf, options)
    used = bor_confirmed if options.orr_requires_confirmation else bor
    objective = np.isin(used, (Code.CR, Code.PR))
    control = objective | stable_reached(ranked, tp.day, ref, window, options.dcr_sd_min_days)
    pfs = progression_free_survival(overall, tp.valid, tp.day, progression_day, ref, death, therapy, options)
    start = first_response_day(ranked, tp.day, window, conf if options.orr_requires_confirmation else None)
    start = np.where(objective, start, -1)
    cr_as_pr = (bor_confirmed == Code.PR) & (conf.pr & (ranked == Code.CR)).any(axis=1)
    return CohortArrays(
        criteria=criteria,
        table=table,
        tp=tp,
        reference_day=ref,
        nadir_um=nadir,
        target=target,
        nontarget=nontarget,
        new_lesion=new_lesion & ~blank,
        overall=overall,
        triggers=triggers,
        out_of_window=out_of_window,
        bor=bor,
        bor_confirmed=bor_confirmed,
        objective_response=objective,
        disease_control=control,
        pfs=pfs,
        response_start_day=start,
        dor_days=duration_days(start, pfs.day),
        cr_confirmed_as_pr=cr_as_pr,
        roles=role_responses(tp, window, options),
    )


# --- the typed results the application reads


@dataclass(frozen=True, slots=True)
class TimepointResponse:
    """One assessment: target sum and its changes, the category responses (RECIST 1.1 codes) and the
    overall response under the criteria. Category and overall responses are None at baseline."""

    assessment_date: dt.date
    sum_mm: float | None
    pct_from_baseline: float | None
    pct_from_nadir: float | None
    target: Response | None
    non_target: Response | None
    new_lesions: bool
    overall: Response | None
    iupd_triggers: str = ""
    out_of_window: bool = False
    new_lesions_seen: int = 0  # distinct new lesions that have appeared so far (iRECIST §5)
    nlt_sum_mm: float | None = None  # sum of the new-lesion targets (iRECIST §5), None if none or not measured


@dataclass(frozen=True, slots=True)
class RoleTimepoint:
    """One RT role at one assessment (§8): the role's target sum, its changes and its target response."""

    role: RtRole
    assessment_date: dt.date
    n_targets: int
    sum_mm: float | None
    pct_from_baseline: float | None
    pct_from_nadir: float | None
    response: Response | None
    nontarget_status: str


@dataclass(frozen=True, slots=True)
class PfsOutcome:
    """PFS: event or censored, on which date, days from the reference date (end - start + 1), and why."""

    event: bool
    date: dt.date
    days: int
    reason: str


@dataclass(frozen=True, slots=True)
class DurationOfResponse:
    """From the first assessment of the (confirmed) response to progression/death or censoring (§4)."""

    start: dt.date
    end: dt.date
    days: int
    event: bool


@dataclass(frozen=True, slots=True)
class SubjectResponse:
    """Everything derived for one subject under one criteria."""

    subject_id: str
    criteria: Criteria
    reference_date: dt.date
    timepoints: tuple[TimepointResponse, ...]
    bor: Response
    bor_confirmed: Response
    objective_response: bool
    disease_control: bool
    pfs: PfsOutcome
    dor: DurationOfResponse | None
    roles: tuple[RoleTimepoint, ...]
    best_role_response: Mapping[RtRole, Response | None] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _pct(value: float, reference: float) -> float | None:
    return (value - reference) / reference * 100.0 if reference > 0 else None


NT_STATUS_TEXT = {-2: "NE", -1: "", 0: "absent", 1: "present", 2: "present", 3: "progression"}


def subject_result(arrays: CohortArrays, s: int) -> SubjectResponse:
    """The typed result of subject ``s`` (an index into ``arrays.subject_ids``)."""
    tp, crit = arrays.tp, arrays.criteria
    cols = np.flatnonzero(tp.valid[s])
    n_t = int(tp.n_targets[s])
    base = int(tp.target_sum[s, 0])
    rows: list[TimepointResponse] = []
    role_rows: list[RoleTimepoint] = []
    for t in cols:
        complete = n_t > 0 and int(tp.target_measured[s, t]) == n_t
        total = int(tp.target_sum[s, t])
        nadir = int(arrays.nadir_um[s, t])
        rows.append(
            TimepointResponse(
                assessment_date=to_date(int(tp.day[s, t])),
                sum_mm=total / UM_PER_MM if complete else None,
                pct_from_baseline=_pct(total, base) if complete else None,
                pct_from_nadir=_pct(total, nadir) if complete and t > 0 else None,
                target=label(int(arrays.target[s, t]), Criteria.RECIST11),
                non_target=label(int(arrays.nontarget[s, t]), Criteria.RECIST11),
                new_lesions=bool(arrays.new_lesion[s, t]),
                overall=label(int(arrays.overall[s, t]), crit),
                iupd_triggers=trigger_names(int(arrays.triggers[s, t])),
                out_of_window=bool(arrays.out_of_window[s, t]),
                new_lesions_seen=int(tp.new_seen[s, t]),
                nlt_sum_mm=int(tp.nlt_sum[s, t]) / UM_PER_MM
                if tp.nlt_seen[s, t] > 0 and tp.nlt_measured[s, t] == tp.nlt_seen[s, t]
                else None,
            )
        )
        for r, role in enumerate(ROLES):
            n_r = int(tp.role_n_targets[r, s])
            nt_status = NT_STATUS_TEXT[int(tp.role_nt_worst[r, s, t])]
            if n_r == 0 and not nt_status:
                continue
            r_complete = n_r > 0 and int(tp.role_measured[r, s, t]) == n_r
            r_total, r_base = int(tp.role_sum[r, s, t]), int(tp.role_sum[r, s, 0])
            role_rows.append(
                RoleTimepoint(
                    role=role,
                    assessment_date=to_date(int(tp.day[s, t])),
                    n_targets=n_r,
                    sum_mm=r_total / UM_PER_MM if r_complete else None,
                    pct_from_baseline=_pct(r_total, r_base) if r_complete else None,
                    pct_from_nadir=_pct(r_total, int(arrays.roles.nadir_um[r, s, t])) if r_complete and t > 0 else None,
                    response=label(int(arrays.roles.codes[r, s, t]), Criteria.RECIST11),
                    nontarget_status=nt_status,
                )
            )
    pfs_date = to_date(int(arrays.pfs.day[s]))
    ref = int(arrays.reference_day[s])
    dor = None
    if arrays.response_start_day[s] >= 0:
        dor = DurationOfResponse(
            start=to_date(int(arrays.response_start_day[s])),
            end=max(pfs_date, to_date(int(arrays.response_start_day[s]))),
            days=int(arrays.dor_days[s]),
            event=bool(arrays.pfs.event[s]),
        )
    notes = []
    if arrays.cr_confirmed_as_pr[s]:
        notes.append("a CR followed by PR was treated as PR followed by PR (confirmed PR), response-rules.md §4")
    if arrays.out_of_window[s].any():
        notes.append("iCPD confirmed outside the icpd_window_days window")
    bor = label(int(arrays.bor[s]), crit)
    bor_confirmed = label(int(arrays.bor_confirmed[s]), crit)
    assert bor is not None and bor_confirmed is not None
    return SubjectResponse(
        subject_id=arrays.subject_ids[s],
        criteria=crit,
        reference_date=to_date(ref),
        timepoints=tuple(rows),
        bor=bor,
        bor_confirmed=bor_confirmed,
        objective_response=bool(arrays.objective_response[s]),
        disease_control=bool(arrays.disease_control[s]),
        pfs=PfsOutcome(
            event=bool(arrays.pfs.event[s]),
            date=pfs_date,
            days=int(arrays.pfs.day[s]) - ref + 1,
            reason=PFS_REASON_TEXT[int(arrays.pfs.reason[s])],
        ),
        dor=dor,
        roles=tuple(role_rows),
        best_role_response={
            role: label(int(arrays.roles.best[r, s]), Criteria.RECIST11)
            for r, role in enumerate(ROLES)
            if arrays.roles.best[r, s] != NONE
        },
        notes=tuple(notes),
    )


def _checked_table(assessments: Sequence[TumourAssessment]) -> LesionTable:
    table = from_assessments(assessments)
    problems = check_table(table)
    if problems:
        raise ValidationError("measurements", "; ".join(p.reason for p in problems))
    return table


def derive_cohort(
    assessments: Sequence[TumourAssessment],
    facts: Mapping[str, SubjectFacts] | Sequence[SubjectFacts],
    options: ResponseOptions,
    criteria: Criteria | str | None = None,
) -> dict[str, SubjectResponse]:
    """Derive every subject of ``assessments`` (any order); raises ValidationError naming each bad lesion."""
    crit = Criteria(criteria or options.criteria)
    by_id = facts if isinstance(facts, Mapping) else {f.subject_id: f for f in facts}
    if not assessments:
        return {}
    arrays = derive_table(_checked_table(assessments), by_id, options, crit)
    return {sid: subject_result(arrays, s) for s, sid in enumerate(arrays.subject_ids)}


def derive_subject(
    assessments: Sequence[TumourAssessment],
    facts: SubjectFacts,
    options: ResponseOptions,
    criteria: Criteria | str | None = None,
) -> SubjectResponse:
    """Derive one subject's responses, BOR, PFS and DOR (response-rules.md); assessments in any order."""
    others = {a.subject_id for a in assessments} - {facts.subject_id}
    if others:
        raise ValidationError("subject_id", f"assessments of {sorted(others)} given for subject {facts.subject_id}")
    if not assessments:
        raise ValidationError("assessments", f"subject {facts.subject_id} has no tumour assessment")
    return derive_cohort(assessments, {facts.subject_id: facts}, options, criteria)[facts.subject_id]


def role_rates(arrays: CohortArrays) -> list[dict[str, object]]:
    """Cohort rate per RT role (§8, :func:`~abscopal.response.roles.role_rates_of`) as rows of role_rates.csv."""
    return [
        {"rt_role": str(x.role), "subjects": x.subjects, "responders": x.responders, "rate": x.rate}
        for x in role_rates_of(arrays.roles.best)
    ]


def cohort_role_rates(responses: Iterable[SubjectResponse]) -> tuple[RoleRate, ...]:
    """The same rates from derived subjects (their ``best_role_response``), for callers holding typed results."""
    subjects = list(responses)
    best = np.full((len(ROLES), len(subjects)), NONE, dtype=np.int8)
    for s, r in enumerate(subjects):
        for i, role in enumerate(ROLES):
            response = r.best_role_response.get(role)
            code = parse_response(str(response)) if response is not None else None
            if code is not None:
                best[i, s] = code
    return role_rates_of(best)


__all__ = [
    "CohortArrays",
    "Confirmation",
    "DurationOfResponse",
    "PfsOutcome",
    "RoleTimepoint",
    "SubjectFacts",
    "SubjectResponse",
    "TimepointResponse",
    "cohort_role_rates",
    "derive_cohort",
    "derive_subject",
    "derive_table",
    "role_rates",
    "subject_result",
]
