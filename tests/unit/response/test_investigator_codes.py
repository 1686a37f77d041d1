"""The investigator's response codes are exactly the engine's RECIST 1.1 and iRECIST codes (one vocabulary)."""

from __future__ import annotations

from abscopal.domain import InvestigatorResponse
from abscopal.response.codes import IrecistResponse, RecistResponse


def test_investigator_codes_are_the_union_of_the_recist_and_irecist_codes() -> None:
    engine = {m.value for m in RecistResponse} | {m.value for m in IrecistResponse}
    assert {m.value for m in InvestigatorResponse} == engine


def test_an_investigator_code_is_parsed_in_any_case_and_spelling() -> None:
    assert InvestigatorResponse.parse("Non-CR/Non-PD") is InvestigatorResponse.NON_CR_NON_PD
    assert InvestigatorResponse.parse(" icpd ") is InvestigatorResponse.ICPD
    assert InvestigatorResponse.parse("progressive") is None
