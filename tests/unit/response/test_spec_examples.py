"""The hand-worked examples A-G of response-rules.md §9, and the iRECIST multi-visit scenarios of §5
(Seymour 2017 table 2 and the RECIST working group FAQ). Days count from baseline."""

from __future__ import annotations

from builders import NEW, N, T, derive, overall

from abscopal.protocol.model import Interval, ResponseOptions


def test_example_a_thirty_two_percent_decrease_is_pr_confirmed_four_weeks_later() -> None:
    # A: 50 -> 34 (-32%): PR; 33 four weeks later: PR confirmed
    r = derive(
        (0, [T("a", 30), T("b", 20, organ="liver")]),
        (42, [T("a", 20), T("b", 14, organ="liver")]),
        (70, [T("a", 20), T("b", 13, organ="liver")]),
    )
    assert overall(r) == ["PR", "PR"]
    assert r.timepoints[1].pct_from_baseline == -32.0
    assert str(r.bor_confirmed) == "PR"


def test_example_b_twenty_percent_and_six_mm_over_nadir_is_pd() -> None:
    # B: baseline 50, nadir 30, now 36 (+20%, +6 mm): PD
    r = derive((0, [T("a", 50)]), (42, [T("a", 30)]), (84, [T("a", 36)]))
    assert overall(r) == ["PR", "PD"]
    assert r.timepoints[2].pct_from_nadir == 20.0


def test_example_b_thirteen_percent_over_nadir_is_not_pd() -> None:
    # B: had it been 34 (+13%): not PD. The spec calls it SD, but 34 mm is also 32% below the baseline of 50,
    # which is PR by the §2 target table (SOD <= 70% of baseline); the engine follows the table.
    r = derive((0, [T("a", 50)]), (42, [T("a", 30)]), (84, [T("a", 34)]))
    assert str(r.timepoints[2].target) == "PR"
    # the same +13% over a nadir that is not 30% below baseline is SD
    r2 = derive((0, [T("a", 50)]), (42, [T("a", 40)]), (84, [T("a", 45)]))
    assert overall(r2) == ["SD", "SD"]


def test_example_c_five_mm_rule_keeps_sd() -> None:
    # C: baseline 20, nadir 14, now 18 (+28.6% but +4 mm): SD
    r = derive((0, [T("a", 20)]), (42, [T("a", 14)]), (84, [T("a", 18)]))
    assert overall(r) == ["PR", "SD"]


def test_example_d_node_under_ten_mm_and_lesion_gone_is_target_cr() -> None:
    # D: nodal target 18 -> 8 mm, non-nodal 11 -> 0: SOD 8, CR
    r = derive(
        (0, [T("n", 18, organ="mediastinum", node=True), T("a", 11)]),
        (42, [T("n", 8, organ="mediastinum", node=True), T("a", 0)]),
    )
    assert r.timepoints[1].sum_mm == 8.0
    assert str(r.timepoints[1].target) == "CR"
    assert overall(r) == ["CR"]


def test_example_e_pseudo_progression_resets_and_confirms_ipr() -> None:
    # E: 60 -> 74 (iUPD) -> 50 (reset, iSD) -> 39 (iPR) -> 38 (iPR, confirmed)
    visits = ((0, [T("a", 60)]), (42, [T("a", 74)]), (84, [T("a", 50)]), (126, [T("a", 39)]), (168, [T("a", 38)]))
    r = derive(*visits, criteria="irecist")
    assert overall(r) == ["iUPD", "iSD", "iPR", "iPR"]
    assert r.timepoints[1].iupd_triggers == "target"
    assert str(r.bor_confirmed) == "iPR"
    assert not r.pfs.event


def test_example_e_under_recist_is_pd_at_first_follow_up() -> None:
    visits = ((0, [T("a", 60)]), (42, [T("a", 74)]), (84, [T("a", 50)]), (126, [T("a", 39)]), (168, [T("a", 38)]))
    r = derive(*visits, criteria="recist11")
    assert overall(r)[0] == "PD"
    assert str(r.bor) == "PD" and str(r.bor_confirmed) == "PD"
    assert r.pfs.event and r.pfs.date == r.timepoints[1].assessment_date


def test_example_f_unchanged_new_lesion_stays_iupd_and_a_second_confirms() -> None:
    # F: iUPD by a new lesion; unchanged: iUPD; a second new lesion: iCPD; PFS at the first iUPD
    r = derive(
        (0, [T("a", 40)]),
        (42, [T("a", 40), NEW("n1", status="present")]),
        (84, [T("a", 40), NEW("n1", status="present")]),
        (126, [T("a", 40), NEW("n1", status="present"), NEW("n2", status="present")]),
        criteria="irecist",
    )
    assert overall(r) == ["iUPD", "iUPD", "iCPD"]
    assert r.pfs.event and r.pfs.date == r.timepoints[1].assessment_date


def test_example_g_cumulative_five_mm_since_iupd_confirms() -> None:
    # G: iUPD at SOD 40 (nadir 30); 44 (+4): iUPD; 46 (+6 cumulative): iCPD
    r = derive(
        (0, [T("a", 35)]),
        (42, [T("a", 30)]),
        (84, [T("a", 40)]),
        (126, [T("a", 44)]),
        (168, [T("a", 46)]),
        criteria="irecist",
    )
    assert overall(r) == ["iSD", "iUPD", "iUPD", "iCPD"]
    assert r.pfs.date == r.timepoints[2].assessment_date


def test_icpd_by_nontarget_further_increase() -> None:
    # non-target trigger (unequivocal), then any further increase confirms (Seymour 2017 table 2)
    r = derive(
        (0, [T("a", 40), N("x")]),
        (42, [T("a", 40), N("x", "unequivocal_progression")]),
        (84, [T("a", 40), N("x", "increased")]),
        criteria="irecist",
    )
    assert overall(r) == ["iUPD", "iCPD"]
    assert r.timepoints[1].iupd_triggers == "non_target"


def test_nontarget_trigger_back_to_present_resets_to_inn_or_isd() -> None:
    r = derive(
        (0, [T("a", 40), N("x")]),
        (42, [T("a", 40), N("x", "unequivocal_progression")]),
        (84, [T("a", 40), N("x", "present")]),
        criteria="irecist",
    )
    assert overall(r) == ["iUPD", "iSD"]


def test_icpd_by_new_lesion_when_target_was_the_trigger() -> None:
    # a category that was not a trigger reaching PD confirms (§5 step 1, last bullet)
    r = derive(
        (0, [T("a", 50)]), (42, [T("a", 62)]), (84, [T("a", 62), NEW("n", status="present")]), criteria="irecist"
    )
    assert overall(r) == ["iUPD", "iCPD"]


def test_new_lesion_trigger_resets_when_target_sum_decreases() -> None:
    # FAQ scenario B: new lesion unchanged but the target sum decreased since iUPD: reset (default option)
    visits = (
        (0, [T("a", 50)]),
        (42, [T("a", 50), NEW("n", status="present")]),
        (84, [T("a", 40), NEW("n", status="present")]),
    )
    assert overall(derive(*visits, criteria="irecist")) == ["iUPD", "iSD"]
    strict = ResponseOptions(new_lesion_reset="absent_only")
    assert overall(derive(*visits, criteria="irecist", options=strict)) == ["iUPD", "iUPD"]


def test_after_reset_a_followed_new_lesion_does_not_retrigger_but_a_further_one_does() -> None:
    r = derive(
        (0, [T("a", 50)]),
        (42, [T("a", 50), NEW("n", status="present")]),
        (84, [T("a", 40), NEW("n", status="present")]),
        (126, [T("a", 40), NEW("n", status="present")]),
        (168, [T("a", 40), NEW("n", status="present"), NEW("m", status="present")]),
        criteria="irecist",
    )
    assert overall(r) == ["iUPD", "iSD", "iSD", "iUPD"]


def test_ne_after_iupd_keeps_iupd_and_a_later_scan_confirms() -> None:
    # NE in the middle: a target not measured after iUPD; the next scan still confirms
    r = derive(
        (0, [T("a", 30), T("b", 20, organ="liver")]),
        (42, [T("a", 40), T("b", 20, organ="liver")]),
        (84, [T("a", None), T("b", 20, organ="liver")]),
        (126, [T("a", 45), T("b", 20, organ="liver")]),
        criteria="irecist",
    )
    assert overall(r) == ["iUPD", "NE", "iCPD"]


def test_confirmation_outside_window_is_flagged_and_refused_only_when_enforced() -> None:
    visits = ((0, [T("a", 30)]), (42, [T("a", 40)]), (142, [T("a", 46)]))
    r = derive(*visits, criteria="irecist")
    assert overall(r) == ["iUPD", "iCPD"] and r.timepoints[2].out_of_window
    enforced = ResponseOptions(enforce_icpd_window=True, icpd_window_days=Interval(min=28, max=56))
    assert overall(derive(*visits, criteria="irecist", options=enforced)) == ["iUPD", "iUPD"]


def test_iupd_then_icr_after_reset_gives_icr() -> None:
    # Seymour 2017 table 3: iUPD, iPR, iCR -> iBOR iCR
    r = derive(
        (0, [T("a", 30)]),
        (42, [T("a", 40)]),
        (84, [T("a", 15)]),
        (126, [T("a", 0)]),
        (168, [T("a", 0)]),
        criteria="irecist",
    )
    assert overall(r) == ["iUPD", "iPR", "iCR", "iCR"]
    assert str(r.bor) == "iCR" and str(r.bor_confirmed) == "iCR"


def test_iupd_followed_only_by_ne_gives_ibor_iupd() -> None:
    # Seymour 2017 table 3: iUPD then only NE -> iUPD
    r = derive((0, [T("a", 30)]), (42, [T("a", 40)]), (84, [T("a", None)]), criteria="irecist")
    assert overall(r) == ["iUPD", "NE"]
    assert str(r.bor) == "iUPD"
