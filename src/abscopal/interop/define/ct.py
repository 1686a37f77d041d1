"""The vendored subset of CDISC Controlled Terminology that define.xml cites (NCI C-codes), with its package date.

Codelists and terms from the CDISC/NCI SDTM CT package named by :data:`CT_PACKAGE` (interop.md §3: offline,
unlicensed; MedDRA and ISO 3166 are external dictionaries). A term missing here gets no ``nci:ExtCodeID``, and a
term of a CT codelist missing here is written as ``def:ExtendedValue="Yes"``; either blocks Context Submission.
**[CT?]**: verify each code against the package before a submission.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CtPackage:
    """One CDISC CT package: ``def:Standard Name="CDISC/NCI" Type="CT" PublishingSet="SDTM" Version=date``."""

    name: str = "CDISC/NCI"
    publishing_set: str = "SDTM"
    version: str = "2024-09-27"


CT_PACKAGE = CtPackage()


@dataclass(frozen=True)
class CtCodelist:
    """A CT codelist: its NCI code, its submission name, and the C-codes of the terms we use."""

    code: str
    name: str
    terms: dict[str, str] = field(default_factory=dict)


CODELISTS: dict[str, CtCodelist] = {
    "SEX": CtCodelist("C66731", "Sex", {"F": "C16576", "M": "C20197", "U": "C17998", "UNDIFFERENTIATED": "C45908"}),
    "NY": CtCodelist("C66742", "No Yes Response", {"N": "C49487", "Y": "C49488", "U": "C17998", "NA": "C48660"}),
    "RACE": CtCodelist(
        "C74457",
        "Race",
        {
            "AMERICAN INDIAN OR ALASKA NATIVE": "C41259",
            "ASIAN": "C41260",
            "BLACK OR AFRICAN AMERICAN": "C16352",
            "NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER": "C41219",
            "WHITE": "C41261",
        },
    ),
    "ETHNIC": CtCodelist(
        "C66790",
        "Ethnic Group",
        {
            "HISPANIC OR LATINO": "C17459",
            "NOT HISPANIC OR LATINO": "C41222",
            "NOT REPORTED": "C43234",
            "UNKNOWN": "C17998",
        },
    ),
    "AGEU": CtCodelist("C66781", "Age Unit", {"YEARS": "C29848"}),
    "AESEV": CtCodelist(
        "C66769",
        "Severity/Intensity Scale for Adverse Events",
        {"MILD": "C41338", "MODERATE": "C41339", "SEVERE": "C41340"},
    ),
    "OUT": CtCodelist(
        "C66768",
        "Outcome of Event",
        {
            "FATAL": "C48275",
            "NOT RECOVERED/NOT RESOLVED": "C49494",
            "RECOVERED/RESOLVED": "C49498",
            "RECOVERED/RESOLVED WITH SEQUELAE": "C49495",
            "RECOVERING/RESOLVING": "C49496",
            "UNKNOWN": "C17998",
        },
    ),
    "ACN": CtCodelist(
        "C66767",
        "Action Taken with Study Treatment",
        {
            "DOSE NOT CHANGED": "C49504",
            "DOSE REDUCED": "C49503",
            "DRUG INTERRUPTED": "C49501",
            "DRUG WITHDRAWN": "C49502",
            "NOT APPLICABLE": "C48660",
            "UNKNOWN": "C17998",
        },
    ),
    "ND": CtCodelist("C66789", "Not Done", {"NOT DONE": "C49484"}),
    "EPOCH": CtCodelist("C99079", "Epoch", {"SCREENING": "C48262", "TREATMENT": "C101526", "FOLLOW-UP": "C99158"}),
}


def codelist_key(name: str) -> str:
    """The table key for a spec's codelist name or OID (``CL.SEX`` and ``SEX`` name the same codelist)."""
    key = name.strip().upper()
    if key.startswith("CL."):
        key = key[3:]
    return key.replace(" ", "")
