"""iRECIST confirmation and reset, one scenario per rule of response-rules.md §5 (Seymour 2017 table 2 and
the RECIST working group FAQ). Each scenario: baseline, an iUPD, then the assessment under test."""

from __future__ import annotations

import pytest
from builders import NEW, N, T, derive, overall

BASE = [T("a", 40), N("x")]
# iUPD by target: 40 -> 50 (+25%, +10 mm)
UPD_T = [T("a", 50), N("x")]
# iUPD by non-target
UPD_NT = [T("a", 40), N("x", "unequivocal_progression")]
# iUPD by new lesions: one measurable new lesion (new-lesion target) of 12 mm and one new non-target
UPD_NEW = [T("a", 40), N("x"), NEW("m", 12), NEW("s", status="present")]

SCENARIOS = [
    ("target trigger, +5 mm since iUPD confirms", UPD_T, [T("a", 55), N("x")], "iCPD"),
    ("target trigger, +4 mm since iUPD stays iUPD", UPD_T, [T("a", 54), N("x")], "iUPD"),
    ("target trigger back under PD resets", UPD_T, [T("a", 44), N("x")], "iSD"),
    (
        "target trigger and a non-target now in unequivocal progression confirms",
        UPD_T,
        [T("a", 50), N("x", "unequivocal_progression")],
        "iCPD",
    ),
    ("target trigger and a new lesion confirms", UPD_T, [T("a", 50), N("x"), NEW("n", status="present")], "iCPD"),
    ("non-target trigger, any further increase confirms", UPD_NT, [T("a", 40), N("x", "increased")], "iCPD"),
    (
        "non-target trigger, unchanged progression stays iUPD",
        UPD_NT,
        [T("a", 40), N("x", "unequivocal_progression")],
        "iUPD",
    ),
    ("non-target trigger back to present resets", UPD_NT, [T("a", 40), N("x", "present")], "iSD"),
    ("non-target trigger and target PD confirms", UPD_NT, [T("a", 50), N("x", "unequivocal_progression")], "iCPD"),
    (
        "new-lesion trigger, new-lesion-target sum +5 mm confirms",
        UPD_NEW,
        [T("a", 40), N("x"), NEW("m", 17), NEW("s", status="present")],
        "iCPD",
    ),
    (
        "new-lesion trigger, new-lesion-target sum +4 mm stays iUPD",
        UPD_NEW,
        [T("a", 40), N("x"), NEW("m", 16), NEW("s", status="present")],
        "iUPD",
    ),
    (
        "new-lesion trigger, a new non-target increasing confirms",
        UPD_NEW,
        [T("a", 40), N("x"), NEW("m", 12), NEW("s", status="increased")],
        "iCPD",
    ),
    (
        "new-lesion trigger, one more new lesion confirms",
        UPD_NEW,
        [T("a", 40), N("x"), NEW("m", 12), NEW("s", status="present"), NEW("t", status="present")],
        "iCPD",
    ),
    (
        "new-lesion trigger, every new lesion absent resets",
        UPD_NEW,
        [T("a", 40), N("x"), NEW("m", 0), NEW("s", status="absent")],
        "iSD",
    ),
    (
        "new-lesion trigger, unchanged stays iUPD (FAQ scenario F)",
        UPD_NEW,
        [T("a", 40), N("x"), NEW("m", 12), NEW("s", status="present")],
        "iUPD",
    ),
    (
        "new-lesion trigger, target sum decreased resets (FAQ scenario B)",
        UPD_NEW,
        [T("a", 36), N("x"), NEW("m", 12), NEW("s", status="present")],
        "iSD",
    ),
    (
        "new-lesion trigger and non-target unequivocal progression confirms",
        UPD_NEW,
        [T("a", 40), N("x", "unequivocal_progression"), NEW("m", 12), NEW("s", status="present")],
        "iCPD",
    ),
    ("after iUPD a missing target with nothing else is NE", UPD_T, [T("a", None), N("x")], "NE"),
]


@pytest.mark.parametrize(("case", "upd", "then", "expected"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_irecist_confirmation_and_reset_rule(case: str, upd: list, then: list, expected: str) -> None:
    r = derive((0, BASE), (42, upd), (84, then), criteria="irecist")
    assert overall(r) == ["iUPD", expected], case


def test_iupd_records_every_category_that_triggered_it() -> None:
    r = derive(
        (0, BASE), (42, [T("a", 50), N("x", "unequivocal_progression"), NEW("n", status="present")]), criteria="irecist"
    )
    assert r.timepoints[1].iupd_triggers == "target+non_target+new"


def test_after_reset_new_lesion_target_sum_rising_over_its_nadir_is_a_new_iupd() -> None:
    # new lesion 12 mm -> reset by SOD decrease -> 12 -> 18 mm (+50%, +6 mm over its nadir of 12): iUPD again
    r = derive(
        (0, BASE),
        (42, [T("a", 40), N("x"), NEW("m", 12)]),
        (84, [T("a", 36), N("x"), NEW("m", 12)]),
        (126, [T("a", 36), N("x"), NEW("m", 18)]),
        criteria="irecist",
    )
    assert overall(r) == ["iUPD", "iSD", "iUPD"]


def test_nadir_is_not_reset_after_a_reset() -> None:
    # nadir 30 at day 42; iUPD at 40; reset at 35 (under 36 = 120% of 30); 36 again (+6 over nadir 30): iUPD
    r = derive(
        (0, [T("a", 40)]),
        (42, [T("a", 30)]),
        (84, [T("a", 40)]),
        (126, [T("a", 35)]),
        (168, [T("a", 36)]),
        criteria="irecist",
    )
    assert overall(r) == ["iSD", "iUPD", "iSD", "iUPD"]


def test_iupd_assessment_records_new_lesion_count_and_new_lesion_target_sum() -> None:
    # §5: record the target SOD, NLT-SOD and number of new lesions at the iUPD
    r = derive((0, BASE), (42, UPD_NEW), criteria="irecist")
    t = r.timepoints[1]
    assert (t.sum_mm, t.nlt_sum_mm, t.new_lesions_seen) == (40.0, 12.0, 2)
