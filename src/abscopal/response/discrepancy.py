"""Investigator-entered versus derived overall response: a typed discrepancy per assessment that differs,
which the web app raises as a data query (response-rules.md; issue 5, deliverable 3)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from abscopal.domain import TumourAssessment
from abscopal.response.codes import NONE, Code, Criteria, label, parse_response
from abscopal.response.engine import SubjectResponse
from abscopal.response.table import to_date


@dataclass(frozen=True, slots=True)
class ResponseDiscrepancy:
    """One assessment whose investigator response differs from the derived one, with the reason."""

    subject_id: str
    assessment_date: dt.date
    investigator: str
    derived: str
    reason: str


def compare(
    subject_id: str, day: int, given: str, derived: int, criteria: Criteria, baseline: bool = False
) -> ResponseDiscrepancy | None:
    """Compare one investigator response with the derived code (either criteria's spelling is accepted)."""
    date = to_date(day)
    shown = label(derived, criteria)
    derived_text = "" if shown is None else str(shown)
    if baseline:
        return None
    if derived == NONE:
        return ResponseDiscrepancy(subject_id, date, given, "", "no tumour assessment on this date to compare with")
    code = parse_response(given)
    if code is None:
        return ResponseDiscrepancy(
            subject_id, date, given, derived_text, f"'{given}' is not a RECIST 1.1 or iRECIST response code"
        )
    if criteria is Criteria.RECIST11 and code is Code.UPD:
        code = Code.PD
    if code == derived:
        return None
    return ResponseDiscrepancy(
        subject_id,
        date,
        given,
        derived_text,
        f"the investigator recorded {given} but the measurements give {derived_text} under {criteria}",
    )


def explain(
    target: object | None, non_target: object | None, new_lesions: bool, sum_mm: float | None, pct: float | None
) -> str:
    """The category responses behind a derived response, for a data query's reason."""
    text = (
        f" (target {target or 'none'}, non-target {non_target or 'none'}, new lesions {'yes' if new_lesions else 'no'}"
    )
    if sum_mm is not None and pct is not None:
        text += f", sum {sum_mm:g} mm, {pct:+.1f}% from baseline"
    return text + ")"


def find_discrepancies(assessments: Sequence[TumourAssessment], derived: SubjectResponse) -> list[ResponseDiscrepancy]:
    """Every assessment of ``derived.subject_id`` with an investigator response that differs; the reason
    names the category responses that the derivation used."""
    by_date = {t.assessment_date: (i, t) for i, t in enumerate(derived.timepoints)}
    out: list[ResponseDiscrepancy] = []
    for a in sorted(assessments, key=lambda a: a.assessment_date):
        if a.subject_id != derived.subject_id or not a.investigator_response:
            continue
        found = by_date.get(a.assessment_date)
        if found is None:
            continue
        i, t = found
        code = NONE if t.overall is None else int(parse_response(str(t.overall)) or NONE)
        d = compare(
            a.subject_id,
            (a.assessment_date - to_date(0)).days,
            a.investigator_response,
            code,
            derived.criteria,
            baseline=i == 0,
        )
        if d is None:
            continue
        if t.overall is not None and parse_response(a.investigator_response) is not None:
            detail = explain(t.target, t.non_target, t.new_lesions, t.sum_mm, t.pct_from_baseline)
            d = ResponseDiscrepancy(d.subject_id, d.assessment_date, d.investigator, d.derived, d.reason + detail)
        out.append(d)
    return out
