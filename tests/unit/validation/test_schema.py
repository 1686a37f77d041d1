"""The validated schema's API (abscopal.validation) and the value types it adds to the domain."""

from __future__ import annotations

import datetime as dt

import pytest

from abscopal.domain import AdverseEvent, DeviationCheck, InvestigatorResponse, PartialDate
from abscopal.errors import ValidationError
from abscopal.response.codes import IrecistResponse, RecistResponse
from abscopal.validation import problems, validate

TODAY = dt.date(2025, 6, 1)


def _ae(**changes: object) -> AdverseEvent:
    base = {"subject_id": "S1", "ae_id": "1", "term": "Fatigue", "meddra_code": 10016256, "grade": 2}
    return AdverseEvent(**{**base, "onset_date": dt.date(2025, 3, 1), **changes})  # type: ignore[arg-type]


def test_a_resolution_before_onset_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match=r"^resolution_date: 2025-02-01 is before onset_date \(2025-03-01\)"):
        validate(_ae(resolution_date=dt.date(2025, 2, 1)), today=TODAY)


def test_an_onset_after_today_is_refused() -> None:
    [p] = problems(_ae(onset_date=dt.date(2025, 7, 1)), today=TODAY)
    assert (p.field, p.reason) == ("onset_date", "2025-07-01 is in the future (today is 2025-06-01)")


def test_a_valid_event_has_no_problem() -> None:
    assert problems(_ae(resolution_date=dt.date(2025, 3, 1)), today=TODAY) == []


@pytest.mark.parametrize(
    ("text", "earliest", "latest"),
    [
        ("2021", dt.date(2021, 1, 1), dt.date(2021, 12, 31)),
        ("2021-02", dt.date(2021, 2, 1), dt.date(2021, 2, 28)),
        ("2020-02", dt.date(2020, 2, 1), dt.date(2020, 2, 29)),  # leap year
        ("2021-12", dt.date(2021, 12, 1), dt.date(2021, 12, 31)),
        ("2021-03-14", dt.date(2021, 3, 14), dt.date(2021, 3, 14)),
    ],
)
def test_a_partial_date_spans_its_earliest_and_latest_day(text: str, earliest: dt.date, latest: dt.date) -> None:
    value = PartialDate.parse(text)
    assert (value.earliest(), value.latest(), str(value)) == (earliest, latest, text)


@pytest.mark.parametrize("text", ["21-03", "2021-3", "2021-13", "2021-02-30", "March 2021", "2021-03-01-01"])
def test_a_malformed_partial_date_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a date"):
        PartialDate.parse(text)


def test_investigator_codes_are_the_recist_and_irecist_codes_of_the_response_engine() -> None:
    assert {c.value for c in InvestigatorResponse} == {c.value for c in RecistResponse} | {
        c.value for c in IrecistResponse
    }
    assert InvestigatorResponse.parse(" icpd ") is InvestigatorResponse.ICPD
    assert InvestigatorResponse.parse("Non-CR/Non-PD") is InvestigatorResponse.NON_CR_NON_PD
    assert InvestigatorResponse.parse("progressive") is None


def test_every_check_the_radiotherapy_engine_names_is_a_deviation_check() -> None:
    import ast
    import inspect

    from abscopal.protocol import radiotherapy

    tree = ast.parse(inspect.getsource(radiotherapy))
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "DeviationCheck"
    }
    assert used == {c.name for c in DeviationCheck}  # every code is used, none is spelled as a bare string
