"""The report's data assembly on a hand-made cohort of five people, every expected number counted by hand.

Cohort (reference date = first study treatment, 2024-01-08; assessments on days 42 and 84 after it):
- S1: targets L1 (conventional) 30 mm + L2 (observation) 20 mm = 50; then 18 + 12 = 30 (-40%, PR), then 30 again
  (PR confirmed 42 days later): responder; both roles PR.
- S2: targets L1 (conventional) 25 + L2 (observation) 15 = 40; then 40 and 40: SD at day 42 (>= sd_min_days 42);
  disease control, no response; both roles SD.
- S3: target L1 (conventional) 40; then 60 (+50%, +20 mm: iUPD / RECIST PD), then 70 (+10 mm over the iUPD: iCPD);
  dies 2024-05-01.
- S4: target L1 (conventional) 40 at baseline only: no post-baseline assessment, BOR NE.
- S5: screened, aged 80 (inclusion IN2 is 18-65): screen failure, never enrolled.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abscopal import domain as d
from abscopal.analysis.cutoff import TrialData, apply_cutoff
from abscopal.analysis.endpoints import BOR_RANKS, visit_week
from abscopal.analysis.figures import heatmap_matrix
from abscopal.analysis.options import option_rows
from abscopal.analysis.trial import analyse
from abscopal.protocol.model import load_bundled
from abscopal.reports.report import ReportMeta, draw_figures, fmt_pct, render_html
from abscopal.response.codes import Criteria

REF = dt.date(2024, 1, 8)
BASELINE = dt.date(2024, 1, 2)
DAY42 = REF + dt.timedelta(days=42)
DAY84 = REF + dt.timedelta(days=84)
CUTOFF = dt.date(2025, 1, 1)


def patient(sid: str, enrolled: bool = True, **kw: object) -> d.Patient:
    return d.Patient(
        subject_id=sid,
        site_code="QFS",
        sex=d.Sex.FEMALE if sid in ("S1", "S3") else d.Sex.MALE,
        birth_date=dt.date(1965, 1, 1),
        protocol_version="1.0",
        status=d.PatientStatus.ON_TREATMENT if enrolled else d.PatientStatus.SCREEN_FAILED,
        enrolment_date=dt.date(2024, 1, 5) if enrolled else None,
        **kw,  # type: ignore[arg-type]
    )


def screening(sid: str, age: int) -> d.Screening:
    return d.Screening(subject_id=sid, screening_date=dt.date(2024, 1, 3), age_years=age, ecog=1)


def target(lesion: str, mm: float | None, role: d.RtRole) -> d.LesionMeasurement:
    return d.LesionMeasurement(
        lesion, d.LesionClass.TARGET, "lung" if lesion == "L1" else "liver", False, mm, None, role
    )


CONV, OBS = d.RtRole.CONVENTIONAL, d.RtRole.OBSERVATION


def assessments() -> list[d.TumourAssessment]:
    def ta(sid: str, date: dt.date, *ms: d.LesionMeasurement) -> d.TumourAssessment:
        return d.TumourAssessment(sid, date, tuple(ms))

    return [
        ta("S1", BASELINE, target("L1", 30, CONV), target("L2", 20, OBS)),
        ta("S1", DAY42, target("L1", 18, CONV), target("L2", 12, OBS)),
        ta("S1", DAY84, target("L1", 18, CONV), target("L2", 12, OBS)),
        ta("S2", BASELINE, target("L1", 25, CONV), target("L2", 15, OBS)),
        ta("S2", DAY42, target("L1", 25, CONV), target("L2", 15, OBS)),
        ta("S2", DAY84, target("L1", 25, CONV), target("L2", 15, OBS)),
        ta("S3", BASELINE, target("L1", 40, CONV)),
        ta("S3", DAY42, target("L1", 60, CONV)),
        ta("S3", DAY84, target("L1", 70, CONV)),
        ta("S4", BASELINE, target("L1", 40, CONV)),
    ]


def ae(sid: str, n: int, term: str, code: int, grade: int, onset: dt.date) -> d.AdverseEvent:
    return d.AdverseEvent(
        subject_id=sid,
        ae_id=f"{sid}-AE{n}",
        term=term,
        meddra_code=code,
        grade=grade,
        onset_date=onset,
        attribution_cfrt=d.Attribution.POSSIBLE,
        attribution_ldrt=d.Attribution.UNRELATED,
        attribution_io=d.Attribution.UNRELATED,
    )


def cohort() -> TrialData:
    treated = ("S1", "S2", "S3", "S4")
    return TrialData(
        patients=[
            patient("S1"),
            patient("S2"),
            patient("S3", death_date=dt.date(2024, 5, 1), death_cause="disease progression"),
            patient("S4"),
            patient("S5", enrolled=False),
        ],
        screenings=[*(screening(s, 60) for s in treated), screening("S5", 80)],
        fractions=[d.Fraction(s, "L1", 1, REF, 2.0) for s in treated],
        cycles=[d.ImmunotherapyCycle(s, 1, REF, "toripalimab") for s in treated],
        assessments=assessments(),
        adverse_events=[
            ae("S1", 1, "Fatigue", 10016256, 2, dt.date(2024, 1, 20)),
            ae("S1", 2, "Fatigue", 10016256, 3, dt.date(2024, 2, 20)),
            ae("S2", 1, "Pneumonitis", 10035742, 1, dt.date(2024, 3, 1)),
        ],
    )


@pytest.fixture(scope="module")
def analysis():
    return analyse(cohort(), load_bundled(), CUTOFF)


def summary(analysis, criteria: Criteria):
    return next(r for r in analysis.responses if r.criteria is criteria)


# --- populations and CONSORT


def test_populations_count_screened_enrolled_treated_and_evaluable_patients(analysis) -> None:
    p = analysis.populations
    assert (len(p.screened), len(p.enrolled), len(p.treated), len(p.efficacy), len(p.safety)) == (5, 4, 4, 4, 4)


def test_consort_excludes_the_screen_failure_under_the_age_criterion(analysis) -> None:
    flow = analysis.consort
    assert (flow.screened, flow.excluded, flow.enrolled, flow.treated, flow.analysed) == (5, 1, 4, 4, 4)
    reasons = dict(flow.exclusion_reasons)
    assert any(label.startswith("IN2 ") and n == 1 for label, n in reasons.items())


def test_baseline_table_counts_the_enrolled_patients_only(analysis) -> None:
    rows = {r.label: r.cells for r in analysis.baseline}
    assert rows["Patients"] == ("4",)
    assert rows["Age, years: median (range)"] == ("60 (60-60)",)  # S5 (80) is not enrolled
    assert rows["Female"] == ("2 (50.0%)",) and rows["Male"] == ("2 (50.0%)",)  # S1, S3 / S2, S4


# --- response


def test_orr_is_one_confirmed_responder_of_four_with_the_clopper_pearson_interval(analysis) -> None:
    orr = summary(analysis, Criteria.IRECIST).orr
    assert (orr.x, orr.n) == (1, 4)
    # R 4.2: binom.test(1, 4)$conf.int = 0.006309463 0.805879550
    assert orr.lower == pytest.approx(0.006309463, abs=1e-8)
    assert orr.upper == pytest.approx(0.805879550, abs=1e-8)


def test_dcr_counts_the_responder_and_the_stable_patient(analysis) -> None:
    dcr = summary(analysis, Criteria.IRECIST).dcr
    assert (dcr.x, dcr.n) == (2, 4)


def test_best_overall_response_table_has_one_patient_per_category(analysis) -> None:
    ir = dict(summary(analysis, Criteria.IRECIST).bor_counts)
    assert (ir["iPR"], ir["iSD"], ir["iCPD"], ir["NE"], ir["iCR"], ir["iUPD"]) == (1, 1, 1, 1, 0, 0)
    rc = dict(summary(analysis, Criteria.RECIST11).bor_counts)
    assert (rc["PR"], rc["SD"], rc["PD"], rc["NE"]) == (1, 1, 1, 1)


def test_bor_ranks_pair_every_irecist_code_with_its_recist_rank() -> None:
    assert [i for i, _ in BOR_RANKS] == ["iCR", "iPR", "iSD", "iNN", "iUPD", "iCPD", "NE"]
    assert dict(BOR_RANKS)["iUPD"] is None


def test_waterfall_takes_the_best_change_up_to_progression(analysis) -> None:
    bars = {b.subject_id: (round(b.best_pct, 6), b.response) for b in analysis.waterfall}
    # S1 -40%; S2 0%; S3 +50% then +75% at iCPD: best +50%; S4 has no post-baseline sum
    assert bars == {"S1": (-40.0, "iPR"), "S2": (0.0, "iSD"), "S3": (50.0, "iCPD")}


def test_spider_series_are_in_weeks_from_the_first_study_treatment(analysis) -> None:
    s1 = next(s for s in analysis.spider if s.subject_id == "S1")
    assert list(s1.weeks) == [6.0, 12.0] and [round(p, 6) for p in s1.pct] == [-40.0, -40.0]


def test_swimmer_lane_marks_death_and_progression(analysis) -> None:
    s3 = next(lane for lane in analysis.swimmer if lane.subject_id == "S3")
    assert s3.death == pytest.approx((dt.date(2024, 5, 1) - REF).days / 7)
    assert s3.progression == pytest.approx(6.0)  # the confirmed iUPD at day 42
    assert not s3.ongoing
    s1 = next(lane for lane in analysis.swimmer if lane.subject_id == "S1")
    assert s1.ongoing and s1.rt == pytest.approx((0.0, 1 / 7))


def test_role_rates_are_responders_among_patients_with_a_target_of_the_role(analysis) -> None:
    rates = {str(r.role): r.ci for r in analysis.role_rates}
    assert (rates["conventional"].x, rates["conventional"].n) == (1, 4)  # S1 PR; S2 SD, S3 PD, S4 NE
    assert (rates["observation"].x, rates["observation"].n) == (1, 2)  # S1 PR of S1, S2
    assert rates["low_dose"] is None


# --- time to event


def test_pfs_has_one_event_the_confirmed_iupd_of_s3(analysis) -> None:
    km = analysis.pfs.km
    assert (km.n, km.events) == (4, 1)
    # S3: event at the iUPD, day 42 after the reference date -> 43 days (end - start + 1)
    assert sorted(km.durations.tolist()) == [1.0, 43.0, 85.0, 85.0]


def test_os_counts_the_death_from_the_first_study_treatment(analysis) -> None:
    km = analysis.os.km
    assert (km.n, km.events) == (4, 1)
    assert (dt.date(2024, 5, 1) - REF).days + 1 in km.durations.tolist()


def test_duration_of_response_has_the_one_responder(analysis) -> None:
    km = analysis.dor.km
    assert km.n == 1 and km.events == 0  # S1 censored at the last adequate assessment


# --- safety


def test_safety_tables_count_each_patient_once_at_the_worst_grade(analysis) -> None:
    overall = {row.label: row.count.n for row in analysis.safety.overall}
    assert overall["Any AE"] == 2 and overall["Grade >= 3 AE"] == 1
    assert analysis.safety.population == 4


def test_heat_map_counts_patients_at_their_worst_grade_per_term(analysis) -> None:
    terms = dict(zip(analysis.heatmap_terms, analysis.heatmap_counts, strict=True))
    assert terms == {"Fatigue": (0, 0, 1, 0, 0), "Pneumonitis": (1, 0, 0, 0, 0)}


def test_heat_map_keeps_the_most_frequent_terms() -> None:
    events = [ae(f"P{i}", 1, "Fatigue", 10016256, 1, REF) for i in range(3)] + [ae("P9", 1, "Cough", 10011224, 2, REF)]
    terms, counts = heatmap_matrix(events, max_terms=1)
    assert terms == ("Fatigue",) and counts == ((3, 0, 0, 0, 0),)


def test_safety_monitor_runs_on_the_safety_population(analysis) -> None:
    assert analysis.safety_monitor.patients == 4


# --- cut-off


def test_cutoff_drops_later_records_and_clears_later_dates() -> None:
    cut = apply_cutoff(cohort(), DAY42)
    assert all(a.assessment_date <= DAY42 for a in cut.assessments)
    s3 = next(p for p in cut.patients if p.subject_id == "S3")
    assert s3.death_date is None and s3.status is d.PatientStatus.ON_TREATMENT
    assert [e.ae_id for e in cut.adverse_events] == ["S1-AE1"]  # the other two began after 2024-02-19


def test_a_response_not_yet_confirmed_at_the_cutoff_is_not_counted() -> None:
    a = analyse(cohort(), load_bundled(), DAY42)
    orr = summary(a, Criteria.IRECIST).orr
    assert (orr.x, orr.n) == (0, 4)


def test_a_patient_enrolled_after_the_cutoff_is_not_enrolled() -> None:
    a = analyse(cohort(), load_bundled(), dt.date(2024, 1, 4))
    assert a.populations.enrolled == () and not a.has_patients


def test_an_empty_trial_gives_an_analysis_without_patients() -> None:
    a = analyse(TrialData(), load_bundled(), CUTOFF)
    assert not a.has_patients and a.safety is None and a.pfs.km is None
    assert summary(a, Criteria.IRECIST).orr is None


# --- QoL helpers


@pytest.mark.parametrize(
    ("visit", "week"),
    [("baseline", 0.0), ("week_6", 6.0), ("WEEK_12", 12.0), ("w18", 18.0), ("end_of_treatment", None)],
)
def test_visit_names_give_weeks(visit: str, week: float | None) -> None:
    assert visit_week(visit) == week


# --- options and rendering


def test_every_response_option_is_printed_with_its_value() -> None:
    options = load_bundled().current.response
    rows = {r.name: r for r in option_rows(options)}
    assert set(rows) == set(options.model_dump())
    assert rows["sd_min_days"].value == str(options.sd_min_days) and "AMBIGUOUS" in rows["sd_min_days"].meaning
    assert rows["icpd_window_days"].value == "28-56"


def test_fmt_pct_prints_count_rate_and_interval() -> None:
    from abscopal.stats import proportion_ci

    assert fmt_pct(proportion_ci(1, 4)) == "1/4 = 25.0% (95% CI 0.6% to 80.6%)"
    assert fmt_pct(None) == "—"


def test_the_html_is_self_contained_and_has_every_section(analysis) -> None:
    meta = ReportMeta("T", dt.datetime(2025, 1, 1, tzinfo=dt.UTC), "0.1.0", "ab" * 32, "abscopal report", "sqlite://")
    html = render_html(analysis, meta, draw_figures(analysis))
    for section in ("consort", "baseline", "response", "time-to-event", "roles", "safety", "qol", "options"):
        assert f'id="{section}"' in html
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert sources and all(s.startswith(("data:image/png;base64,", "#")) for s in sources)
    assert "1/4 = 25.0%" in html  # the ORR


def test_the_style_sheet_is_inlined_verbatim_not_escaped(analysis) -> None:
    meta = ReportMeta("T", dt.datetime(2025, 1, 1, tzinfo=dt.UTC), "0.1.0", "ab" * 32, "abscopal report", "sqlite://")
    html = render_html(analysis, meta, {})
    style_block = html[html.index("<style>") : html.index("</style>")]
    assert 'font-family: "DejaVu Sans"' in style_block and "&#34;" not in style_block


# --- invariants over the cut-off date (hypothesis)

cutoffs = st.dates(min_value=dt.date(2023, 12, 1), max_value=dt.date(2024, 12, 31))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cutoff=cutoffs)
def test_applying_the_same_cutoff_twice_changes_nothing(cutoff: dt.date) -> None:
    once = apply_cutoff(cohort(), cutoff)
    assert apply_cutoff(once, cutoff) == once


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cutoff=cutoffs)
def test_at_any_cutoff_the_populations_nest_and_the_tables_add_up(cutoff: dt.date) -> None:
    a = analyse(cohort(), load_bundled(), cutoff)
    p = a.populations
    assert set(p.efficacy) <= set(p.treated) <= set(p.enrolled) <= set(p.screened)
    for r in a.responses:
        assert sum(n for _, n in r.bor_counts) == r.n == len(p.efficacy)
        if r.n:
            assert r.orr.x <= r.dcr.x <= r.n  # a responder is also disease-controlled
    assert len(a.waterfall) <= len(p.efficacy) and len(a.swimmer) <= len(p.efficacy)
    assert a.consort.screened - a.consort.excluded == a.consort.enrolled


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(early=cutoffs, late=cutoffs)
def test_a_later_cutoff_never_knows_fewer_patients_or_deaths(early: dt.date, late: dt.date) -> None:
    early, late = min(early, late), max(early, late)
    a, b = analyse(cohort(), load_bundled(), early), analyse(cohort(), load_bundled(), late)
    assert set(a.populations.enrolled) <= set(b.populations.enrolled)
    deaths = [s.os.km.events if s.os.km else 0 for s in (a, b)]
    assert deaths[0] <= deaths[1]
