"""RECIST 1.1 category and overall rules, one test per row of response-rules.md §2 and §3
(Eisenhauer et al. 2009, tables 1 and 2). Expected codes are the table rows themselves."""

from __future__ import annotations

import numpy as np
import pytest

from abscopal.response.codes import NONE, Code
from abscopal.response.recist import nontarget_response, overall_response, target_response


def _target(total: float, measured: int, cr_ok: int, n: int, baseline: float, nadir: float) -> int:
    um = lambda mm: np.array([round(mm * 1000)], dtype=np.int64)  # noqa: E731
    i = lambda v: np.array([v], dtype=np.int64)  # noqa: E731
    return int(target_response(um(total), i(measured), i(cr_ok), i(n), um(baseline), um(nadir))[0])


@pytest.mark.parametrize(
    ("case", "args", "expected"),
    [
        # (sum, measured, at CR size, targets, baseline, nadir)
        ("every target at CR size is CR", (0, 2, 2, 2, 50, 50), Code.CR),
        ("a node under 10 mm keeps CR although the sum is above 0", (8, 2, 2, 2, 29, 29), Code.CR),
        ("30.0% below baseline exactly is PR", (35, 2, 0, 2, 50, 50), Code.PR),
        ("29.9% below baseline is SD", (35.05, 2, 0, 2, 50, 50), Code.SD),
        ("20.0% and 5 mm over the nadir is PD", (30, 2, 0, 2, 50, 25), Code.PD),
        ("20% over the nadir but under 5 mm is SD", (18, 2, 0, 2, 20, 14), Code.SD),
        ("PD over the nadir wins over PR from baseline", (40, 2, 0, 2, 100, 30), Code.PD),
        ("a target not measured is NE", (30, 1, 0, 2, 50, 40), Code.NE),
        ("missing target but measured targets alone give PD is PD", (60, 1, 0, 2, 50, 40), Code.PD),
        ("no targets gives no target response", (0, 0, 0, 0, 0, 0), NONE),
    ],
)
def test_target_response_rule(case: str, args: tuple[float, int, int, int, float, float], expected: int) -> None:
    assert _target(*args) == expected, case


@pytest.mark.parametrize(
    ("case", "n", "assessed", "present", "unequivocal", "expected"),
    [
        ("every non-target absent is CR", 2, 2, 0, 0, Code.CR),
        ("one present, none progressing is non-CR/non-PD", 2, 2, 1, 0, Code.NN),
        ("unequivocal progression is PD", 2, 2, 2, 1, Code.PD),
        ("unequivocal progression is PD even with one not assessed", 2, 1, 1, 1, Code.PD),
        ("one not assessed and none progressing is NE", 2, 1, 0, 0, Code.NE),
        ("no non-targets gives no non-target response", 0, 0, 0, 0, NONE),
    ],
)
def test_nontarget_response_rule(
    case: str, n: int, assessed: int, present: int, unequivocal: int, expected: int
) -> None:
    a = lambda v: np.array([v], dtype=np.int64)  # noqa: E731
    assert int(nontarget_response(a(n), a(assessed), a(present), a(unequivocal))[0]) == expected, case


# Eisenhauer 2009 table 1 (targets +/- non-targets) and table 2 (non-target disease only)
OVERALL_ROWS = [
    ("CR", "CR", False, "CR"),
    ("CR", "NN", False, "PR"),
    ("CR", "NE", False, "PR"),
    ("PR", "NN", False, "PR"),
    ("PR", "NE", False, "PR"),
    ("PR", "CR", False, "PR"),
    ("SD", "NN", False, "SD"),
    ("SD", "NE", False, "SD"),
    ("NE", "NN", False, "NE"),
    ("NE", "CR", False, "NE"),
    ("PD", "NN", False, "PD"),
    ("PD", "NE", True, "PD"),
    ("CR", "PD", False, "PD"),
    ("SD", "PD", False, "PD"),
    ("CR", "CR", True, "PD"),
    ("SD", "NN", True, "PD"),
    ("none", "CR", False, "CR"),
    ("none", "NN", False, "NN"),
    ("none", "NE", False, "NE"),
    ("none", "PD", False, "PD"),
    ("none", "CR", True, "PD"),
    ("CR", "none", False, "CR"),
]


@pytest.mark.parametrize(("target", "nontarget", "new", "expected"), OVERALL_ROWS)
def test_overall_response_follows_eisenhauer_tables(target: str, nontarget: str, new: bool, expected: str) -> None:
    code = lambda s: NONE if s == "none" else Code[s]  # noqa: E731
    got = overall_response(
        np.array([code(target)], dtype=np.int8), np.array([code(nontarget)], dtype=np.int8), np.array([new])
    )
    assert int(got[0]) == code(expected)
