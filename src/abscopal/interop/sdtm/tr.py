"""SDTM TR (tumour results): per lesion per assessment, plus the engine's sums (interop.md §2.6; SDTMIG 3.4 §6.3.14.2).

Measured lesions give LDIAM (longest diameter) or, for lymph nodes, :data:`NODAL_TESTCD` (short axis);
non-targets and unmeasured new lesions give TUMSTATE. SUMDIAM rows (TRGRPID TARGET, NEW LESION TARGET) are the
response engine's sums (:class:`abscopal.response.TimepointResponse` ``sum_mm`` / ``nlt_sum_mm``), never
recomputed here. TRLNKID = lesion id (TU's TULNKID); TRLNKGRP = "A" + assessment stable id (RS's RSLNKGRP).
"""

from __future__ import annotations

from abscopal import domain as d
from abscopal.interop.sdtm.common import iso, study_day
from abscopal.interop.sdtm.oncology_common import (
    as_tuple,
    assessment_visit_tables,
    assessments_by_subject,
    engine_responses,
    epoch,
    link_group,
    nulls_last,
    number_text,
    number_tuples,
    study_id,
    subject_of,
    subjects,
)
from abscopal.interop.sdtm.spec import Dataset, DatasetSpec, SdtmSource, Value, Variable
from abscopal.response import Criteria

_V = Variable

#: The one test code for a lymph node's short axis (RECIST 1.1 measures nodes by short axis). SDTM CT offers
#: LPERP ("Longest Perpendicular") and SAXIS ("Short Axis") [CT?, interop.md §2.6]; switch here only.
NODAL_TESTCD = "LPERP"

TESTS = {
    "LDIAM": "Longest Diameter",
    "LPERP": "Longest Perpendicular",
    "SAXIS": "Short Axis",
    "TUMSTATE": "Tumor State",
    "SUMDIAM": "Sum of Diameter",
}
_STATE = {
    d.LesionStatus.ABSENT: "ABSENT",
    d.LesionStatus.PRESENT: "PRESENT",
    d.LesionStatus.INCREASED: "INCREASED",  # extension [CT?]
    d.LesionStatus.UNEQUIVOCAL_PROGRESSION: "UNEQUIVOCAL PROGRESSION",
}
SUM_GROUPS = ("TARGET", "NEW LESION TARGET")

TR_SPEC = DatasetSpec(
    name="TR",
    label="Tumor/Lesion Results",
    domain_class="FINDINGS",
    structure="One record per tumor measurement/assessment per visit per subject per assessor",
    keys=("STUDYID", "USUBJID", "TRDTC", "TRLNKGRP", "TRGRPID", "TRLNKID", "TRTESTCD", "TREVAL"),
    variables=(
        _V("STUDYID", "Study Identifier", core="Req", origin="Protocol"),
        _V("DOMAIN", "Domain Abbreviation", core="Req", origin="Assigned"),
        _V("USUBJID", "Unique Subject Identifier", core="Req", origin="Derived"),
        _V("TRSEQ", "Sequence Number", "Num", core="Req", origin="Derived"),
        _V("TRGRPID", "Group ID", origin="Assigned"),
        _V("TRLNKGRP", "Link Group ID", origin="Derived", comment="A + the assessment's stable id"),
        _V("TRLNKID", "Link ID", core="Exp"),
        _V("TRTESTCD", "Tumor/Lesion Assessment Short Name", core="Req", origin="Assigned", codelist="TRTESTCD"),
        _V("TRTEST", "Tumor/Lesion Assessment Test Name", core="Req", origin="Assigned", codelist="TRTEST"),
        _V("TRORRES", "Result or Finding in Original Units", core="Exp"),
        _V("TRORRESU", "Original Units", core="Exp", codelist="UNIT"),
        _V("TRSTRESC", "Character Result/Finding in Std Format", core="Exp"),
        _V("TRSTRESN", "Numeric Result/Finding in Std Units", "Num", core="Exp"),
        _V("TRSTRESU", "Standard Units", core="Exp", codelist="UNIT"),
        _V("TRSTAT", "Completion Status", codelist="ND"),
        _V("TRREASND", "Reason Tumor/Lesion Assessment Not Done"),
        _V("TRMETHOD", "Method Used to Identify the Tumor", core="Exp", codelist="METHOD"),
        _V("TREVAL", "Evaluator", core="Exp", origin="Assigned", codelist="EVAL"),
        _V("TRLOBXFL", "Last Observation Before Exposure Flag", core="Exp", origin="Derived", codelist="NY"),
        _V("VISITNUM", "Visit Number", "Num", core="Exp", origin="Derived"),
        _V("VISIT", "Visit Name", origin="Derived"),
        _V("EPOCH", "Epoch", origin="Derived", codelist="EPOCH"),
        _V("TRDTC", "Date/Time of Tumor Measurement", core="Exp"),
        _V("TRDY", "Study Day of Tumor Measurement", "Num", origin="Derived"),
    ),
)


def tr_test_code(m: d.LesionMeasurement) -> str:
    """TRTESTCD of a measurement: targets and measured new lesions by size (nodes: :data:`NODAL_TESTCD`),
    non-targets and unmeasured new lesions by state (interop.md §2.6)."""
    if m.lesion_class is d.LesionClass.NON_TARGET or (m.lesion_class is d.LesionClass.NEW and m.diameter_mm is None):
        return "TUMSTATE"
    return NODAL_TESTCD if m.is_node else "LDIAM"


def _result(m: d.LesionMeasurement, code: str) -> dict[str, Value]:
    if code == "TUMSTATE":
        state = _STATE[m.status] if m.status is not None else None
        return {"TRORRES": state, "TRSTRESC": state, "TRSTAT": None if state else "NOT DONE"}
    if m.diameter_mm is None:
        return {"TRORRES": None, "TRSTRESC": None, "TRSTAT": "NOT DONE"}
    text = number_text(m.diameter_mm)
    return {
        "TRORRES": text,
        "TRORRESU": "mm",
        "TRSTRESC": text,
        "TRSTRESN": float(m.diameter_mm),
        "TRSTRESU": "mm",
        "TRSTAT": None,
    }


def build_tr(source: SdtmSource) -> list[Dataset]:
    """TR (interop.md §2.6): every lesion at every assessment, and the engine's SUMDIAM per assessment."""
    study = study_id(source)
    people = subjects(source)
    visits = assessment_visit_tables(source, people)
    derived = engine_responses(source, people, Criteria.IRECIST)
    rows: list[tuple[Value, ...]] = []
    for sid, assessments in assessments_by_subject(source).items():
        subject = subject_of(people, sid, "tumour assessment")
        sums = {t.assessment_date: t for t in derived[sid].timepoints}
        has_targets = any(m.lesion_class is d.LesionClass.TARGET for m in assessments[0].value.measurements)
        for i, stored in enumerate(assessments):
            a = stored.value
            visitnum, visit = visits[sid][a.assessment_date]
            common: dict[str, Value] = {
                "STUDYID": study,
                "DOMAIN": "TR",
                "USUBJID": subject.usubjid,
                "TRSEQ": None,
                "TRLNKGRP": link_group(stored),
                "TRMETHOD": a.method.upper() if a.method else None,
                "TRLOBXFL": "Y" if i == 0 else None,
                "VISITNUM": visitnum,
                "VISIT": visit,
                "EPOCH": epoch(a.assessment_date, subject),
                "TRDTC": iso(a.assessment_date),
                "TRDY": study_day(a.assessment_date, subject.rfstdtc),
            }
            for m in a.measurements:
                code = tr_test_code(m)
                row = _blank() | common | _result(m, code)
                row |= {"TRLNKID": m.lesion_id, "TRTESTCD": code, "TRTEST": TESTS[code], "TREVAL": "INVESTIGATOR"}
                if row["TRSTAT"] == "NOT DONE":
                    row["TRREASND"] = m.not_done_reason
                rows.append(as_tuple(TR_SPEC, row))
            tp = sums.get(a.assessment_date)
            if tp is None:
                continue
            for group, value, present in (
                ("TARGET", tp.sum_mm, has_targets),
                ("NEW LESION TARGET", tp.nlt_sum_mm, tp.nlt_sum_mm is not None),
            ):
                if not present:
                    continue
                row = _blank() | common
                row |= {"TRGRPID": group, "TRTESTCD": "SUMDIAM", "TRTEST": TESTS["SUMDIAM"], "TREVAL": "SPONSOR"}
                if value is None:
                    row["TRSTAT"] = "NOT DONE"
                    row["TRREASND"] = "a target lesion was not measured"
                else:
                    text = number_text(value)
                    row |= {"TRORRES": text, "TRORRESU": "mm", "TRSTRESC": text, "TRSTRESN": value, "TRSTRESU": "mm"}
                rows.append(as_tuple(TR_SPEC, row))
    at = {n: i for i, n in enumerate(TR_SPEC.names)}
    u, dtc, lnkgrp, testcd, grpid, lnkid = (
        at[n] for n in ("USUBJID", "TRDTC", "TRLNKGRP", "TRTESTCD", "TRGRPID", "TRLNKID")
    )
    return [
        number_tuples(
            TR_SPEC,
            rows,
            lambda r: (
                r[u],
                r[dtc],
                nulls_last(r[lnkgrp]),
                r[testcd] == "SUMDIAM",
                nulls_last(r[grpid]),
                nulls_last(r[lnkid]),
                r[testcd],
            ),
        )
    ]


def _blank() -> dict[str, Value]:
    return dict.fromkeys(TR_SPEC.names)
