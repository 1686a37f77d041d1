"""Response codes of RECIST 1.1 (Eisenhauer 2009, table 1) and iRECIST (Seymour 2017, table 2).

The engine works on small integer codes in numpy arrays; :class:`RecistResponse` and
:class:`IrecistResponse` are the codes users see. One integer scale serves both criteria because their
orders match: best to worst CR, PR, SD, non-CR/non-PD, (iUPD), PD/iCPD, NE (response-rules.md §4, §5).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Criteria(StrEnum):
    """Which response criteria a derivation applies."""

    IRECIST = "irecist"
    RECIST11 = "recist11"


class RecistResponse(StrEnum):
    """RECIST 1.1 response codes (Eisenhauer 2009, tables 1-3)."""

    CR = "CR"
    PR = "PR"
    SD = "SD"
    NON_CR_NON_PD = "NonCR/NonPD"
    PD = "PD"
    NE = "NE"


class IrecistResponse(StrEnum):
    """iRECIST response codes (Seymour 2017, table 2): iUPD is unconfirmed, iCPD confirmed progression."""

    ICR = "iCR"
    IPR = "iPR"
    ISD = "iSD"
    INN = "iNN"
    IUPD = "iUPD"
    ICPD = "iCPD"
    NE = "NE"


Response = RecistResponse | IrecistResponse


class Code(IntEnum):
    """Internal response code; a smaller value is a better response (the BOR order of §4 and §5)."""

    CR = 0
    PR = 1
    SD = 2
    NN = 3  # non-CR/non-PD
    UPD = 4  # iRECIST unconfirmed progression
    PD = 5  # RECIST 1.1 PD; iRECIST iCPD
    NE = 6


NONE = -1  # no response at this cell (baseline, padding, no targets)

RECIST_LABELS: dict[int, RecistResponse] = {
    Code.CR: RecistResponse.CR,
    Code.PR: RecistResponse.PR,
    Code.SD: RecistResponse.SD,
    Code.NN: RecistResponse.NON_CR_NON_PD,
    Code.UPD: RecistResponse.PD,
    Code.PD: RecistResponse.PD,
    Code.NE: RecistResponse.NE,
}
IRECIST_LABELS: dict[int, IrecistResponse] = {
    Code.CR: IrecistResponse.ICR,
    Code.PR: IrecistResponse.IPR,
    Code.SD: IrecistResponse.ISD,
    Code.NN: IrecistResponse.INN,
    Code.UPD: IrecistResponse.IUPD,
    Code.PD: IrecistResponse.ICPD,
    Code.NE: IrecistResponse.NE,
}


def label(code: int, criteria: Criteria) -> Response | None:
    """The user-facing code of an internal code under ``criteria`` (None for no response)."""
    if code == NONE:
        return None
    return IRECIST_LABELS[code] if criteria is Criteria.IRECIST else RECIST_LABELS[code]


def parse_response(text: str) -> Code | None:
    """Read an investigator-entered response (either criteria, case-insensitive); None if unknown."""
    key = text.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    return _PARSE.get(key)


_PARSE: dict[str, Code] = {
    "cr": Code.CR,
    "icr": Code.CR,
    "pr": Code.PR,
    "ipr": Code.PR,
    "sd": Code.SD,
    "isd": Code.SD,
    "noncr/nonpd": Code.NN,
    "noncrnonpd": Code.NN,
    "inn": Code.NN,
    "pd": Code.PD,
    "icpd": Code.PD,
    "iupd": Code.UPD,
    "ne": Code.NE,
}
