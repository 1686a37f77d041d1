"""Disease courses: dates in order, visits on schedule, and the mix of iRECIST situations an engine must meet.

``course_events`` is a deliberately small re-statement of response-rules.md §2 and §5 (Seymour et al.,
Lancet Oncol 2017, table 2): target PD = SOD >= 120% of the nadir and >= 5 mm over it; iUPD by target,
non-target unequivocal progression or a new lesion; iCPD by >= 5 mm more, a further non-target increase or
more new lesions; a reset when every trigger has come back below PD.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from dataclasses import dataclass, field

from abscopal.domain import LesionClass, LesionStatus, PatientStatus, RtRole, TumourAssessment
from abscopal.protocol.model import Protocol
from abscopal.synth import Cohort

from .conftest import CUTOFF, Subject


@dataclass
class Events:
    iupd: list[dt.date] = field(default_factory=list)
    icpd: dt.date | None = None
    resets: list[dt.date] = field(default_factory=list)  # iUPD later not confirmed


def _sod(a: TumourAssessment) -> float | None:
    values = [m.diameter_mm for m in a.measurements if m.lesion_class is LesionClass.TARGET]
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def _new_present(a: TumourAssessment) -> set[str]:
    return {
        m.lesion_id
        for m in a.measurements
        if m.lesion_class is LesionClass.NEW
        and ((m.diameter_mm or 0) > 0 or m.status not in (None, LesionStatus.ABSENT))
    }


def course_events(assessments: list[TumourAssessment]) -> Events:
    events = Events()
    base = _sod(assessments[0])
    assert base is not None
    nadir = base
    seen_new: set[str] = set()
    state: dict[str, object] | None = None
    for a in assessments[1:]:
        sod = _sod(a)
        new = _new_present(a)
        statuses = [m.status for m in a.measurements if m.lesion_class is LesionClass.NON_TARGET]
        nt_up = LesionStatus.UNEQUIVOCAL_PROGRESSION in statuses
        target_pd = sod is not None and sod >= 1.2 * nadir and sod - nadir >= 5
        fresh = new - seen_new
        if state is None:
            if target_pd or nt_up or fresh:
                state = {"sod": sod, "target": target_pd, "nt": nt_up, "new": bool(fresh), "count": len(new)}
                events.iupd.append(a.assessment_date)
        else:
            grew = sod is not None and state["sod"] is not None and sod >= float(state["sod"]) + 5  # type: ignore[arg-type]
            confirmed = (
                (state["target"] and grew)
                or (state["nt"] and (LesionStatus.INCREASED in statuses or nt_up))
                or (state["new"] and len(new) > int(state["count"]))  # type: ignore[call-overload]
                or (not state["target"] and target_pd)
                or (not state["new"] and bool(fresh))
            )
            if confirmed:
                events.icpd = a.assessment_date
                break
            shrank = sod is not None and state["sod"] is not None and sod < float(state["sod"])  # type: ignore[arg-type]
            if not target_pd and not nt_up and (not state["new"] or shrank or not new):
                events.resets.append(events.iupd[-1])
                state = None
        seen_new |= new
        if sod is not None:
            nadir = min(nadir, sod)
    return events


def _followed(enrolled: list[Subject]) -> list[Subject]:
    return [s for s in enrolled if len(s.assessments) > 1]


def test_dates_run_consent_screening_enrolment_first_fraction_for_every_patient(enrolled: list[Subject]) -> None:
    for s in enrolled:
        sc, p = s.screening, s.patient
        assert sc.consent_date is not None and p.enrolment_date is not None and s.first_fraction is not None
        assert sc.consent_date <= sc.screening_date <= p.enrolment_date < s.first_fraction
        baseline = s.assessments[0].assessment_date
        assert sc.screening_date <= baseline <= p.enrolment_date


def test_no_record_is_dated_after_death_withdrawal_loss_or_the_cutoff(enrolled: list[Subject]) -> None:
    for s in enrolled:
        end = s.end
        dates = [a.assessment_date for a in s.assessments]
        dates += [c.date for c in s.cycles] + [f.date for f in s.fractions]
        dates += [e.onset_date for e in s.events] + [e.resolution_date for e in s.events if e.resolution_date]
        dates += [q.completed_on for q in s.answers if q.completed_on]
        assert max(dates) <= end, s.patient.subject_id
        p = s.patient
        for d in (p.death_date, p.withdrawal_date, p.last_contact_date, p.new_therapy_date):
            assert d is None or d <= CUTOFF


def test_post_baseline_scans_follow_first_treatment_every_42_days_within_the_window(
    protocol: Protocol, enrolled: list[Subject]
) -> None:
    interval, window = protocol.schedule.assessment_interval_days, protocol.schedule.assessment_window_days
    for s in enrolled:
        assert s.first_fraction is not None
        for a in s.assessments[1:]:
            days = (a.assessment_date - s.first_fraction).days
            k = round(days / interval)
            assert k >= 1 and abs(days - k * interval) <= window


def test_some_scheduled_scans_are_missed(protocol: Protocol, enrolled: list[Subject]) -> None:
    interval = protocol.schedule.assessment_interval_days
    gaps = [
        (b.assessment_date - a.assessment_date).days
        for s in enrolled
        for a, b in zip(s.assessments[1:], s.assessments[2:], strict=False)
    ]
    assert any(g > interval + 2 * 7 for g in gaps)


def test_every_scan_reports_every_baseline_lesion_targets_by_size_others_by_status(enrolled: list[Subject]) -> None:
    for s in enrolled:
        baseline_ids = [x.lesion_id for x in s.lesions if x.lesion_class is not LesionClass.NEW]
        for a in s.assessments:
            rows = {m.lesion_id: m for m in a.measurements}
            assert [i for i in baseline_ids if i not in rows] == []
            for m in a.measurements:
                if m.lesion_class is LesionClass.NON_TARGET:
                    assert m.diameter_mm is None and m.status is not None
                if m.lesion_class is LesionClass.TARGET and m.diameter_mm is not None:
                    assert m.status is None and m.diameter_mm >= 0


def test_measurements_are_listed_in_lesion_order_with_new_lesions_last(enrolled: list[Subject]) -> None:
    for s in enrolled:
        order = [x.lesion_id for x in s.lesions]  # baseline lesions, then new lesions as they appear
        for a in s.assessments:
            ids = [m.lesion_id for m in a.measurements]
            assert ids == sorted(ids, key=order.index)


def test_baseline_target_sizes_are_the_lesion_baseline_diameters(enrolled: list[Subject]) -> None:
    for s in enrolled:
        size = {x.lesion_id: x.baseline_diameter_mm for x in s.lesions}
        for m in s.assessments[0].measurements:
            if m.lesion_class is LesionClass.TARGET:
                assert m.diameter_mm == size[m.lesion_id]


def test_the_generator_truth_agrees_with_a_restatement_of_irecist(enrolled: list[Subject]) -> None:
    disagreements = []
    for s in _followed(enrolled):
        e = course_events(s.assessments)
        t = s.truth
        if t.iupd_date is not None and t.iupd_date not in e.iupd:
            disagreements.append((s.patient.subject_id, "iupd", t.iupd_date, e.iupd))
        if t.icpd_date is not None and e.icpd != t.icpd_date:
            disagreements.append((s.patient.subject_id, "icpd", t.icpd_date, e.icpd))
        if (
            t.pseudo_iupd_date is not None
            and any(a.assessment_date > t.pseudo_iupd_date for a in s.assessments)
            and t.pseudo_iupd_date not in e.resets
        ):
            disagreements.append((s.patient.subject_id, "pseudo", t.pseudo_iupd_date, e.resets))
    assert disagreements == []


def test_the_cohort_has_pseudo_progression_and_confirmed_progression_in_realistic_shares(
    enrolled: list[Subject],
) -> None:
    followed = _followed(enrolled)
    events = [course_events(s.assessments) for s in followed]
    pseudo = sum(bool(e.resets) for e in events) / len(enrolled)
    confirmed = sum(e.icpd is not None for e in events) / len(enrolled)
    assert 0.03 <= pseudo <= 0.12
    assert 0.25 <= confirmed <= 0.65


def test_a_minority_responds_with_a_30_percent_shrinkage(enrolled: list[Subject]) -> None:
    followed = _followed(enrolled)
    responders = 0
    for s in followed:
        base = _sod(s.assessments[0])
        assert base is not None
        if any((v := _sod(a)) is not None and v <= 0.7 * base for a in s.assessments[1:]):
            responders += 1
    assert 0.15 <= responders / len(enrolled) <= 0.40


def test_complete_responses_occur_with_zero_non_nodal_targets_small_nodes_and_no_non_target(
    enrolled: list[Subject],
) -> None:
    complete = 0
    for s in enrolled:
        for a in s.assessments[1:]:
            targets = [m for m in a.measurements if m.lesion_class is LesionClass.TARGET]
            nt = [m.status for m in a.measurements if m.lesion_class is LesionClass.NON_TARGET]
            target_cr = all(m.diameter_mm == 0 or (m.is_node and (m.diameter_mm or 99) < 10) for m in targets)
            complete += target_cr and all(x is LesionStatus.ABSENT for x in nt)
    assert complete > 0


def test_non_target_statuses_and_new_lesions_all_occur(enrolled: list[Subject]) -> None:
    statuses = Counter(
        m.status
        for s in enrolled
        for a in s.assessments
        for m in a.measurements
        if m.lesion_class is not LesionClass.TARGET
    )
    assert set(LesionStatus) <= set(statuses)
    new = [x for s in enrolled for x in s.lesions if x.lesion_class is LesionClass.NEW]
    assert new and all(x.rt_role is RtRole.NONE for x in new)
    assert any(x.measurable for x in new) and any(not x.measurable for x in new)


def test_observation_lesions_shrink_by_30_percent_in_a_minority_only(enrolled: list[Subject]) -> None:
    shrinking = 0
    followed = _followed(enrolled)
    for s in followed:
        observed = {x.lesion_id: x.baseline_diameter_mm for x in s.lesions if x.rt_role is RtRole.OBSERVATION}
        for a in s.assessments[1:]:
            if any(
                m.lesion_id in observed
                and m.diameter_mm is not None
                and m.diameter_mm <= 0.7 * (observed[m.lesion_id] or 0)
                for m in a.measurements
            ):
                shrinking += 1
                break
    assert 0 < shrinking < 0.4 * len(followed)


def test_measurement_noise_makes_stable_lesions_wobble(enrolled: list[Subject]) -> None:
    ratios = []
    for s in enrolled:
        if s.truth.scenario != "stable":
            continue
        before = [a for a in s.assessments[1:] if s.truth.iupd_date is None or a.assessment_date < s.truth.iupd_date]
        for a, b in itertools.pairwise(before):
            sa, sb = _sod(a), _sod(b)
            if sa and sb:
                ratios.append(sb / sa)
    assert len({round(r, 3) for r in ratios}) > 20
    assert all(0.7 < r < 1.4 for r in ratios)


def test_deaths_censoring_and_drop_outs_all_occur(enrolled: list[Subject]) -> None:
    status = Counter(s.patient.status for s in enrolled)
    assert status[PatientStatus.DIED] > 0
    assert status[PatientStatus.ON_TREATMENT] + status[PatientStatus.FOLLOW_UP] > 0  # censored at the cut-off
    assert status[PatientStatus.WITHDRAWN] > 0 and status[PatientStatus.LOST_TO_FOLLOW_UP] > 0
    early = [s for s in enrolled if s.patient.death_date and len(s.assessments) == 1]
    assert early, "some patients die before any post-baseline scan"
    assert all(s.patient.death_cause for s in enrolled if s.patient.death_date)
    assert all(s.patient.withdrawal_date for s in enrolled if s.patient.status is PatientStatus.WITHDRAWN)


def test_new_anticancer_therapy_dates_are_occasional_and_after_enrolment(enrolled: list[Subject]) -> None:
    dated = [s for s in enrolled if s.patient.new_therapy_date]
    assert 0 < len(dated) < 0.5 * len(enrolled)
    assert all(s.patient.new_therapy_date > s.patient.enrolment_date for s in dated)  # type: ignore[operator]


def test_no_scan_after_confirmed_progression(enrolled: list[Subject]) -> None:
    for s in enrolled:
        if s.truth.icpd_date is not None:
            assert s.assessments[-1].assessment_date <= s.truth.icpd_date


def test_immunotherapy_is_given_every_three_weeks_until_progression(
    protocol: Protocol, enrolled: list[Subject]
) -> None:
    interval = protocol.immunotherapy.interval_days
    for s in enrolled:
        dates = [c.date for c in s.cycles]
        assert [c.cycle_number for c in s.cycles] == list(range(1, len(dates) + 1))
        if dates:
            assert dates[0] >= s.patient.enrolment_date  # type: ignore[operator]
        for a, b in itertools.pairwise(dates):
            assert interval - 2 <= (b - a).days <= interval + 2 + 7
        if s.truth.icpd_date is not None and dates:
            assert dates[-1] < s.truth.icpd_date


def test_prior_immunotherapy_agent_continues_in_the_trial(cohort: Cohort, enrolled: list[Subject]) -> None:
    agents = {h.subject_id: h.agent for h in cohort.immunotherapy_histories}
    for s in enrolled:
        assert {c.agent for c in s.cycles} <= {agents[s.patient.subject_id]}
