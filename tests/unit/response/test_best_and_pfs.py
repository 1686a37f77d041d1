"""Best overall response with and without confirmation (response-rules.md §4; RECIST 1.1 §4.4, table 3;
admiralonco defaults) and PFS censoring (§6; FDA 2018 table). Days count from baseline = reference date."""

from __future__ import annotations

from builders import NEW, N, T, day, derive, overall

from abscopal.protocol.model import ResponseOptions


def _pr_at(*days: int) -> tuple:
    return ((0, [T("a", 50)]), *((d, [T("a", 30)]) for d in days))


def test_pr_confirmed_exactly_28_days_later() -> None:
    assert str(derive(*_pr_at(42, 70)).bor_confirmed) == "PR"


def test_confirmation_too_early_leaves_sd() -> None:
    # 27 days apart: not confirmed; PR at day 42 meets the SD minimum (42 days) -> SD (Eisenhauer table 3)
    r = derive(*_pr_at(42, 69))
    assert str(r.bor) == "PR" and str(r.bor_confirmed) == "SD"
    assert not r.objective_response and r.disease_control


def test_confirmation_too_late_after_progression_is_not_confirmation() -> None:
    r = derive((0, [T("a", 50)]), (42, [T("a", 30)]), (84, [T("a", 40)]), (126, [T("a", 30)]))
    assert overall(r) == ["PR", "PD", "PR"]
    assert str(r.bor_confirmed) == "SD"


def test_one_ne_between_is_accepted_two_are_not() -> None:
    one = derive((0, [T("a", 50)]), (42, [T("a", 30)]), (63, [T("a", None)]), (84, [T("a", 30)]))
    assert str(one.bor_confirmed) == "PR"
    two = derive((0, [T("a", 50)]), (42, [T("a", 30)]), (56, [T("a", None)]), (70, [T("a", None)]), (84, [T("a", 30)]))
    assert str(two.bor_confirmed) == "SD"


def test_sd_between_breaks_confirmation_unless_accepted() -> None:
    # 35.5 mm: 29% below baseline and 18% over the nadir of 30: SD
    visits = ((0, [T("a", 50)]), (42, [T("a", 30)]), (63, [T("a", 35.5)]), (84, [T("a", 30)]))
    assert str(derive(*visits).bor_confirmed) == "SD"
    assert str(derive(*visits, options=ResponseOptions(accept_sd_between=True)).bor_confirmed) == "PR"


def test_cr_followed_by_pr_is_a_confirmed_pr_with_a_note() -> None:
    # a nodal target 20 -> 9 (normal: CR) -> 12 mm (40% below baseline, +3 mm over nadir: PR)
    node = {"organ": "mediastinum", "node": True}
    r = derive((0, [T("n", 20, **node)]), (42, [T("n", 9, **node)]), (84, [T("n", 12, **node)]))
    assert overall(r) == ["CR", "PR"]
    assert str(r.bor_confirmed) == "PR" and r.notes


def test_cr_confirmed_by_cr() -> None:
    r = derive((0, [T("a", 50)]), (42, [T("a", 0)]), (84, [T("a", 0)]))
    assert str(r.bor_confirmed) == "CR" and r.objective_response


def test_sd_before_minimum_duration_then_pd_gives_pd() -> None:
    r = derive((0, [T("a", 50)]), (35, [T("a", 50)]), (77, [T("a", 62)]))
    assert overall(r) == ["SD", "PD"] and str(r.bor) == "PD"


def test_sd_before_minimum_duration_and_nothing_after_gives_ne() -> None:
    assert str(derive((0, [T("a", 50)]), (35, [T("a", 50)])).bor) == "NE"
    assert str(derive((0, [T("a", 50)]), (35, [T("a", 50)]), options=ResponseOptions(sd_min_days=35)).bor) == "SD"


def test_subject_without_targets_has_noncr_nonpd_bor() -> None:
    r = derive((0, [N("x")]), (42, [N("x")]))
    assert overall(r) == ["NonCR/NonPD"] and str(r.bor) == "NonCR/NonPD"


def test_duration_of_response_counts_end_minus_start_plus_one() -> None:
    r = derive((0, [T("a", 50)]), (42, [T("a", 30)]), (84, [T("a", 30)]), (126, [T("a", 40)]))
    assert r.dor is not None and r.dor.event
    assert r.dor.days == 126 - 42 + 1


# --- PFS censoring, one test per row of response-rules.md §6


def test_pfs_no_post_baseline_assessment_is_censored_at_reference_date() -> None:
    r = derive((0, [T("a", 50)]), (42, [T("a", None)]))
    assert not r.pfs.event and r.pfs.date == day(0) and r.pfs.days == 1


def test_pfs_no_progression_is_censored_at_last_adequate_assessment() -> None:
    r = derive((0, [T("a", 50)]), (42, [T("a", 45)]), (84, [T("a", None)]))
    assert not r.pfs.event and r.pfs.date == day(42)


def test_pfs_new_therapy_before_progression_censors_at_last_adequate_before_it() -> None:
    r = derive(
        (0, [T("a", 50)]), (42, [T("a", 45)]), (84, [T("a", 45)]), (126, [T("a", 70)]), new_therapy_date=day(100)
    )
    assert not r.pfs.event and r.pfs.date == day(84)


def test_pfs_progression_after_two_missed_assessments_is_censored_by_default() -> None:
    visits = ((0, [T("a", 50)]), (42, [T("a", 45)]), (134, [T("a", 70)]))  # gap 92 > 2 x 42 + 7
    r = derive(*visits)
    assert not r.pfs.event and r.pfs.date == day(42)
    event = derive(*visits, options=ResponseOptions(missed_visits="event"))
    assert event.pfs.event and event.pfs.date == day(134)


def test_pfs_progression_after_exactly_91_days_is_an_event() -> None:
    r = derive((0, [T("a", 50)]), (42, [T("a", 45)]), (133, [T("a", 70)]))
    assert r.pfs.event and r.pfs.date == day(133)


def test_pfs_death_before_any_post_baseline_assessment_is_an_event() -> None:
    r = derive((0, [T("a", 50)]), death_date=day(30))
    assert r.pfs.event and r.pfs.date == day(30) and r.pfs.days == 31


def test_pfs_death_before_progression_is_the_event() -> None:
    r = derive((0, [T("a", 50)]), (42, [T("a", 45)]), death_date=day(60))
    assert r.pfs.event and r.pfs.date == day(60)


def test_pfs_unconfirmed_iupd_at_last_assessment_is_an_event_by_default() -> None:
    visits = ((0, [T("a", 50)]), (42, [T("a", 45)]), (84, [T("a", 45), NEW("n", status="present")]))
    r = derive(*visits, criteria="irecist")
    assert overall(r) == ["iSD", "iUPD"]
    assert r.pfs.event and r.pfs.date == day(84)
    censored = derive(*visits, criteria="irecist", options=ResponseOptions(unconfirmed_iupd="censor"))
    assert not censored.pfs.event and censored.pfs.date == day(84)


def test_pfs_reference_date_from_subject_facts() -> None:
    r = derive((0, [T("a", 50)]), (42, [T("a", 70)]), reference_date=day(-10))
    assert r.pfs.event and r.pfs.days == 42 + 10 + 1


def test_assessments_after_new_anticancer_therapy_do_not_count_for_bor() -> None:
    # PR at day 42, new therapy at day 50, PR again at day 84: the second PR cannot confirm the first
    visits = ((0, [T("a", 50)]), (42, [T("a", 30)]), (84, [T("a", 30)]))
    assert str(derive(*visits).bor_confirmed) == "PR"
    r = derive(*visits, new_therapy_date=day(50))
    assert str(r.bor_confirmed) == "SD" and not r.objective_response
