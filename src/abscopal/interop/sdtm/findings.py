"""LB (screening laboratory tests) and IE (criteria not met), interop.md §2.5 and §2.8.

LBSTRESN converts with :mod:`abscopal.protocol.units` (the eligibility engine's table); IE lists what
:func:`abscopal.protocol.eligibility.evaluate` finds excluding (an inclusion not met, an exclusion met).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from abscopal.domain import Screening
from abscopal.errors import ProtocolError, ValidationError
from abscopal.interop.sdtm.common import SCREENING_VISIT, Row, V, context, iso, number_seq, ordered, spec
from abscopal.interop.sdtm.spec import Dataset, SdtmSource
from abscopal.protocol import units
from abscopal.protocol.eligibility import MET, NOT_MET, evaluate, evaluate_codes, screening_datum
from abscopal.protocol.model import Protocol

#: Screening.labs key -> LBTESTCD, LBTEST, LBCAT (CDISC C65047; HEMATOLOGY / CHEMISTRY)
LAB_TESTS = {
    "haemoglobin": ("HGB", "Hemoglobin", "HEMATOLOGY"),
    "wbc": ("WBC", "Leukocytes", "HEMATOLOGY"),
    "neutrophils": ("NEUT", "Neutrophils", "HEMATOLOGY"),
    "platelets": ("PLAT", "Platelets", "HEMATOLOGY"),
    "ast": ("AST", "Aspartate Aminotransferase", "CHEMISTRY"),
    "alt": ("ALT", "Alanine Aminotransferase", "CHEMISTRY"),
    "alp": ("ALP", "Alkaline Phosphatase", "CHEMISTRY"),
}
#: canonical unit family (protocol.units.LAB_FAMILY) -> LBSTRESU as CDISC UNIT writes it
_STANDARD_UNIT = {"g/l": "g/L", "10^9/l": "10^9/L", "u/l": "U/L"}

_ID = (
    V("STUDYID", "Study Identifier", core="Req", origin="Assigned"),
    V("DOMAIN", "Domain Abbreviation", core="Req", origin="Assigned"),
    V("USUBJID", "Unique Subject Identifier", core="Req", origin="Derived"),
)

LB = spec(
    "LB",
    "Laboratory Test Results",
    "FINDINGS",
    "One record per lab test per time point per visit per subject",
    ("STUDYID", "USUBJID", "LBCAT", "LBTESTCD", "VISITNUM", "LBDTC"),
    (
        *_ID,
        V("LBSEQ", "Sequence Number", "Num", core="Req", origin="Derived"),
        V("LBTESTCD", "Lab Test or Examination Short Name", core="Req", origin="Assigned", codelist="LBTESTCD"),
        V("LBTEST", "Lab Test or Examination Name", core="Req", origin="Assigned", codelist="LBTEST"),
        V("LBCAT", "Category for Lab Test", core="Exp", origin="Assigned"),
        V("LBORRES", "Result or Finding in Original Units", core="Exp"),
        V("LBORRESU", "Original Units", core="Exp"),
        V("LBORNRLO", "Reference Range Lower Limit in Orig Unit", core="Exp"),
        V("LBORNRHI", "Reference Range Upper Limit in Orig Unit", core="Exp"),
        V("LBSTRESC", "Character Result/Finding in Std Format", core="Exp", origin="Derived"),
        V("LBSTRESN", "Numeric Result/Finding in Standard Units", "Num", core="Exp", origin="Derived"),
        V("LBSTRESU", "Standard Units", core="Exp", origin="Assigned", codelist="UNIT"),
        V("LBNRIND", "Reference Range Indicator", core="Exp", origin="Derived"),
        V("LBLOBXFL", "Last Observation Before Exposure Flag", core="Exp", origin="Derived"),
        V("VISITNUM", "Visit Number", "Num", core="Exp", origin="Derived"),
        V("VISIT", "Visit Name", origin="Derived"),
        V("EPOCH", "Epoch", origin="Derived", codelist="EPOCH", method="MT.EPOCH"),
        V("LBDTC", "Date/Time of Specimen Collection", core="Exp"),
        V("LBDY", "Study Day of Specimen Collection", "Num", origin="Derived", method="MT.DY"),
    ),
)


def _num(x: float | None) -> str | None:
    return None if x is None else repr(float(x))


def build_lb(source: SdtmSource) -> list[Dataset]:
    """Screening labs (the only labs the domain holds, G5); an unknown lab key is refused, named."""
    ctx = context(source)
    rows: list[Row] = []
    for stored in source.screenings:
        s = stored.value
        if s.subject_id not in ctx.subjects:
            continue
        subj = ctx.subjects[s.subject_id]
        for key, lab in sorted(s.labs.items()):
            if key not in LAB_TESTS:
                raise ValidationError(
                    f"LB (USUBJID {subj.usubjid}, labs.{key})",
                    f"lab {key!r} has no LBTESTCD (known: {', '.join(LAB_TESTS)})",
                )
            code, test, cat = LAB_TESTS[key]
            std = units.convert(key, lab.value, lab.unit)
            nrind = None
            if lab.lln is not None and lab.uln is not None:
                nrind = "LOW" if lab.value < lab.lln else "HIGH" if lab.value > lab.uln else "NORMAL"
            rows.append(
                {
                    "STUDYID": ctx.studyid,
                    "DOMAIN": "LB",
                    "USUBJID": subj.usubjid,
                    "LBTESTCD": code,
                    "LBTEST": test,
                    "LBCAT": cat,
                    "LBORRES": _num(lab.value),
                    "LBORRESU": lab.unit,
                    "LBORNRLO": _num(lab.lln),
                    "LBORNRHI": _num(lab.uln),
                    "LBSTRESC": _num(std),
                    "LBSTRESN": std,
                    "LBSTRESU": _STANDARD_UNIT[units.LAB_FAMILY[key]],
                    "LBNRIND": nrind,
                    "LBLOBXFL": "Y",
                    "VISITNUM": SCREENING_VISIT[0],
                    "VISIT": SCREENING_VISIT[1],
                    "EPOCH": subj.epoch(s.screening_date),
                    "LBDTC": iso(s.screening_date),
                    "LBDY": subj.dy(s.screening_date),
                }
            )
    rows = number_seq(rows, "LBSEQ", lambda r: (str(r["LBCAT"]), str(r["LBTESTCD"])))
    return [ordered(LB, rows)]


IE = spec(
    "IE",
    "Inclusion/Exclusion Criteria Not Met",
    "FINDINGS",
    "One record per inclusion/exclusion criterion not met per subject",
    ("STUDYID", "USUBJID", "IETESTCD"),
    (
        *_ID,
        V("IESEQ", "Sequence Number", "Num", core="Req", origin="Derived"),
        V("IETESTCD", "Inclusion/Exclusion Criterion Short Name", core="Req", origin="Assigned"),
        V("IETEST", "Inclusion/Exclusion Criterion", core="Req", origin="Assigned"),
        V("IECAT", "Inclusion/Exclusion Category", core="Req", origin="Assigned", codelist="IECAT"),
        V("IEORRES", "I/E Criterion Original Result", core="Req", origin="Derived"),
        V("IESTRESC", "I/E Criterion Result in Std Format", core="Req", origin="Derived"),
        V("VISITNUM", "Visit Number", "Num", origin="Derived"),
        V("VISIT", "Visit Name", origin="Derived"),
        V("EPOCH", "Epoch", origin="Derived", codelist="EPOCH", method="MT.EPOCH"),
        V("IEDTC", "Date/Time of Collection"),
        V("IEDY", "Study Day of Collection", "Num", origin="Derived", method="MT.DY"),
    ),
)


def build_ie(source: SdtmSource) -> list[Dataset]:
    """Criteria not met per ``eligibility.evaluate`` under the subject's protocol version: an inclusion not
    met -> IEORRES N, an exclusion met -> Y; an unknown criterion is reported, not listed (interop.md §2.8)."""
    ctx = context(source)
    rows: list[Row] = []
    screenings = [stored.value for stored in source.screenings if stored.value.subject_id in ctx.subjects]
    not_met = _criteria_not_met(screenings, ctx.protocol_of)
    for s, failed in zip(screenings, not_met, strict=True):
        subj = ctx.subjects[s.subject_id]
        for r in failed:
            result = "N" if r.section == "inclusion" else "Y"
            rows.append(
                {
                    "STUDYID": ctx.studyid,
                    "DOMAIN": "IE",
                    "USUBJID": subj.usubjid,
                    "IETESTCD": r.criterion_id,
                    "IETEST": r.label,
                    "IECAT": r.section.upper(),
                    "IEORRES": result,
                    "IESTRESC": result,
                    "VISITNUM": SCREENING_VISIT[0],
                    "VISIT": SCREENING_VISIT[1],
                    "EPOCH": subj.epoch(s.screening_date),
                    "IEDTC": iso(s.screening_date),
                    "IEDY": subj.dy(s.screening_date),
                }
            )
    rows = number_seq(rows, "IESEQ", lambda r: (str(r["IECAT"]) != "INCLUSION", _order(str(r["IETESTCD"]))))
    return [ordered(IE, rows)]


@dataclass(frozen=True)
class _Failed:
    """A criterion that excludes a subject (inclusion not met, exclusion met): what IE reads of its result."""

    criterion_id: str
    section: str
    label: str


def _criteria_not_met(screenings: Sequence[Screening], protocol_of: Callable[[str], Protocol]) -> list[list[_Failed]]:
    """Per screening, the criteria that exclude it (not unknown), in the protocol's order: the decisions of
    :func:`~abscopal.protocol.eligibility.evaluate`, taken by its :func:`evaluate_codes` once per protocol
    version over every screening's inputs at once (each input is :func:`screening_datum`'s, and every decision
    is elementwise, so each screening's codes are its own evaluation's). When an input is refused the
    screenings are evaluated one by one, so the error is the one ``evaluate`` raises first."""
    groups: dict[int, tuple[Protocol, list[int]]] = {}
    for k, s in enumerate(screenings):
        protocol = protocol_of(s.subject_id)
        groups.setdefault(id(protocol), (protocol, []))[1].append(k)
    out: list[list[_Failed]] = [[] for _ in screenings]
    for protocol, members in groups.values():
        eligibility = protocol.eligibility
        batch = [screenings[k] for k in members]
        try:
            _, codes, _ = evaluate_codes(
                eligibility, lambda c, batch=batch: np.concatenate([screening_datum(s, c) for s in batch])
            )
        except (ValidationError, ProtocolError, ValueError, TypeError, KeyError):
            for s in batch:
                evaluate(s, eligibility, protocol.version.number)  # raises the error of the first refused one
            raise
        for section, criteria in (("inclusion", eligibility.inclusion), ("exclusion", eligibility.exclusion)):
            excluding = MET if section == "exclusion" else NOT_MET
            for cid, crit in criteria.items():
                failed = _Failed(cid, section, crit.label)
                for k in np.flatnonzero(codes[cid] == excluding).tolist():
                    out[members[k]].append(failed)
    return out


def _order(code: str) -> tuple[str, int]:
    """IN2 before IN10: letters, then the number."""
    head = code.rstrip("0123456789")
    tail = code[len(head) :]
    return (head, int(tail) if tail else 0)
