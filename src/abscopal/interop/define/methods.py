"""The derivations define.xml documents as MethodDefs: each cites its rule and names the Python function.

Keyed by method name (a spec's ``Variable.method`` with or without the ``MT.`` prefix, or a value-level test
code such as SUMDIAM or OVRLRESP). Rules: RECIST 1.1 (Eisenhauer 2009), iRECIST (Seymour 2017), the EORTC
QLQ-C30 Scoring Manual 3rd ed., ICH E2A, SDTMIG 3.4 §4.4.4 (--DY) and interop.md §2.0.
"""

from __future__ import annotations

from dataclasses import dataclass

from abscopal import __version__


@dataclass(frozen=True)
class Method:
    """A derivation: its description (citing the rule) and the Python function that computes it."""

    name: str
    description: str
    function: str
    type: str = "Computation"

    @property
    def expression(self) -> str:
        return f"{self.function} (abscopal {__version__})"


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "SUMDIAM",
            "Sum of the longest diameters of non-nodal target lesions and short axes of nodal target lesions "
            "at the assessment (RECIST 1.1 §4.3.2; iRECIST new-lesion target sum separately, TRGRPID).",
            "abscopal.response.engine.derive_subject",
        ),
        Method(
            "TRGRESP",
            "Target-lesion response from the sum of diameters against baseline and nadir (RECIST 1.1 §4.3.1, "
            "iRECIST Table 2).",
            "abscopal.response.engine.derive_subject",
        ),
        Method(
            "NTRGRESP",
            "Non-target lesion response (RECIST 1.1 §4.3.3; iRECIST Table 2).",
            "abscopal.response.engine.derive_subject",
        ),
        Method(
            "NEWLPROG",
            "New-lesion progression: any unequivocal new lesion (RECIST 1.1 §4.3.4); iUPD then iCPD on "
            "confirmation (iRECIST).",
            "abscopal.response.engine.derive_subject",
        ),
        Method(
            "OVRLRESP",
            "Overall timepoint response combining target, non-target and new lesions (RECIST 1.1 Table 1; "
            "iRECIST Table 2), with the protocol's response options.",
            "abscopal.response.engine.derive_subject",
        ),
        Method(
            "BESTRESP",
            "Best overall response with confirmation of CR/PR at least 4 weeks later and SD at least the "
            "protocol's minimum days from baseline (RECIST 1.1 §4.4, iRECIST §BOR).",
            "abscopal.response.best.best_confirmed",
        ),
        Method(
            "QSSCALE",
            "EORTC scale score: raw score = mean of the scale's items if at least half answered (half rule), "
            "linear transform to 0-100 (QLQ-C30 Scoring Manual 3rd ed. §2-3); LC13 dyspnoea (LCDY) needs all "
            "3 items; summary score SUMSC as Giesinger 2016.",
            "abscopal.qol.eortc.score_scale",
        ),
        Method(
            "AESER",
            "Serious when any of the six seriousness criteria (AESDTH, AESLIFE, AESHOSP, AESDISAB, AESCONG, "
            "AESMIE) is Y (ICH E2A).",
            "abscopal.safety.events.is_serious",
        ),
        Method(
            "AEREL",
            "RELATED if any attribution to CFRT, LDRT or immunotherapy is possible or stronger, NOT RELATED if "
            "every attribution given is unlikely or unrelated, else null (interop.md §2.4).",
            "abscopal.safety.events.relatedness",
        ),
        Method(
            "STUDYDAY",
            "--DY = date - RFSTDTC + 1 on or after RFSTDTC, date - RFSTDTC before it; null when either date is "
            "partial (SDTMIG 3.4 §4.4.4).",
            "abscopal.interop.sdtm (study_day)",
        ),
        Method(
            "AGE",
            "Age in completed years at RFICDTC from BRTHDTC (interop.md §2.1).",
            "abscopal.interop.sdtm (age)",
        ),
        Method(
            "VISITNUM",
            "Visit number from the protocol calendar: SCREENING 1, BASELINE 2, assessment k 2+k on the 42-day "
            "grid, unscheduled v+0.01n, follow-up 100+k (interop.md §2.0).",
            "abscopal.protocol.calendar",
        ),
        Method(
            "EPOCH",
            "SCREENING before RFXSTDTC, TREATMENT to the end of treatment, FOLLOW-UP after (interop.md §2.0).",
            "abscopal.interop.sdtm (epoch)",
        ),
    )
}


#: other spellings of a method in the SDTM specs
ALIASES = {"DY": "STUDYDAY", "QS.SCALE": "QSSCALE"}


def method_key(name: str) -> str:
    """The table key for a method OID or name (``MT.AESER`` and ``AESER`` name the same method)."""
    key = name.strip().upper()
    if key.startswith("MT."):
        key = key[3:]
    return ALIASES.get(key, key)


def implied_method(domain: str, variable: str) -> str | None:
    """The method a derived variable uses when its spec names none: --DY, AGE, VISITNUM, EPOCH, AESER, AEREL."""
    if variable in ("AGE", "VISITNUM", "EPOCH", "AESER", "AEREL"):
        return variable
    if len(variable) == 4 and variable.endswith("DY") and variable[:2] == domain[:2]:
        return "STUDYDAY"
    if variable.endswith(("STDY", "ENDY")) and len(variable) == 6:
        return "STUDYDAY"
    return None
