"""SDTM TU (tumour identification) and SUPPTU: one record per lesion (interop.md §2.6; SDTMIG 3.4 §6.3.14.1).

A lesion is a registered :class:`~abscopal.domain.Lesion` or a lesion id first seen in an assessment (a new
lesion); its identification is its first sighting (TUDTC, VISITNUM). TULNKID = lesion id (TR's TRLNKID).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from abscopal import domain as d
from abscopal.interop.sdtm.common import iso, study_day
from abscopal.interop.sdtm.oncology_common import (
    Subject,
    assessment_visit_tables,
    assessments_by_subject,
    cdisc_location,
    epoch,
    nulls_last,
    number_rows,
    study_id,
    subject_of,
    subjects,
)
from abscopal.interop.sdtm.spec import Dataset, DatasetSpec, SdtmSource, Value, Variable

_V = Variable

TU_SPEC = DatasetSpec(
    name="TU",
    label="Tumor/Lesion Identification",
    domain_class="FINDINGS",
    structure="One record per identified tumor per subject per assessor",
    keys=("STUDYID", "USUBJID", "TULNKID", "TUEVAL"),
    variables=(
        _V("STUDYID", "Study Identifier", core="Req", origin="Protocol"),
        _V("DOMAIN", "Domain Abbreviation", core="Req", origin="Assigned"),
        _V("USUBJID", "Unique Subject Identifier", core="Req", origin="Derived"),
        _V("TUSEQ", "Sequence Number", "Num", core="Req", origin="Derived"),
        _V("TUSPID", "Sponsor-Defined Identifier", origin="Assigned", comment="stable id of the lesion record"),
        _V("TULNKID", "Link ID", core="Exp"),
        _V("TUTESTCD", "Tumor Identification Short Name", core="Req", origin="Assigned", codelist="TUTESTCD"),
        _V("TUTEST", "Tumor Identification Test Name", core="Req", origin="Assigned", codelist="TUTEST"),
        _V("TUORRES", "Tumor Identification Result", core="Exp"),
        _V("TUSTRESC", "Tumor Identification Result Std. Format", core="Exp", codelist="TUIDRS"),
        _V("TULOC", "Location of the Tumor", core="Exp", codelist="LOC"),
        _V("TULAT", "Laterality", codelist="LAT"),
        _V("TUMETHOD", "Method of Identification", core="Exp", comment="not collected per lesion (G3)"),
        _V("TUEVAL", "Evaluator", core="Exp", origin="Assigned", codelist="EVAL"),
        _V("TULOBXFL", "Last Observation Before Exposure Flag", core="Exp", origin="Derived", codelist="NY"),
        _V("VISITNUM", "Visit Number", "Num", core="Exp", origin="Derived"),
        _V("VISIT", "Visit Name", origin="Derived"),
        _V("EPOCH", "Epoch", origin="Derived", codelist="EPOCH"),
        _V("TUDTC", "Date/Time of Tumor Identification", core="Exp"),
        _V("TUDY", "Study Day of Tumor Identification", "Num", origin="Derived"),
    ),
)

SUPPTU_SPEC = DatasetSpec(
    name="SUPPTU",
    label="Supplemental Qualifiers for TU",
    domain_class="RELATIONSHIP",
    structure="One record per IDVAR, IDVARVAL, and QNAM value per subject",
    keys=("STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM"),
    variables=(
        _V("STUDYID", "Study Identifier", core="Req", origin="Protocol"),
        _V("RDOMAIN", "Related Domain Abbreviation", core="Req", origin="Assigned"),
        _V("USUBJID", "Unique Subject Identifier", core="Req", origin="Derived"),
        _V("IDVAR", "Identifying Variable", core="Exp", origin="Assigned"),
        _V("IDVARVAL", "Identifying Variable Value", core="Exp", origin="Derived"),
        _V("QNAM", "Qualifier Variable Name", core="Req", origin="Assigned"),
        _V("QLABEL", "Qualifier Variable Label", core="Req", origin="Assigned"),
        _V("QVAL", "Data Value", core="Req"),
        _V("QORIG", "Origin", core="Req", origin="Assigned"),
        _V("QEVAL", "Evaluator", core="Exp", origin="Assigned"),
    ),
)

_CLASS_RESULT = {
    d.LesionClass.TARGET: "TARGET",
    d.LesionClass.NON_TARGET: "NON-TARGET",
    d.LesionClass.NEW: "NEW",
}
_RT_ROLE = {
    d.RtRole.CONVENTIONAL: "CONVENTIONAL",
    d.RtRole.LOW_DOSE: "LOW DOSE",
    d.RtRole.OBSERVATION: "OBSERVATION",
    d.RtRole.NONE: "NONE",
}
_LATERALITY = {"left": "LEFT", "right": "RIGHT", "bilateral": "BILATERAL"}
# QNAM -> QLABEL (≤ 40). IRNLCLS (iRECIST new-lesion target / non-target) is not written: the response engine
# does not expose its per-lesion NLT choice (docs/interop.md "TU, TR, RS, QS").
SUPP_LABELS = {
    "RTROLE": "Radiotherapy Role of the Lesion",
    "LOCDTL": "Location Detail",
    "PRIMFL": "Primary Tumor Flag",
    "SYMPFL": "Symptomatic Lesion Flag",
}


@dataclass(frozen=True, slots=True)
class LesionIdentity:
    """One lesion of one subject: what TU says of it (from the lesion record and its first measurement)."""

    subject: Subject
    lesion_id: str
    stable_id: str | None
    lesion_class: d.LesionClass
    organ: str
    record: d.Lesion | None
    first_seen: dt.date | None
    first_role: d.RtRole | None


def lesion_identities(source: SdtmSource) -> list[LesionIdentity]:
    """Every lesion of the source: registered lesions and lesion ids first seen in an assessment."""
    people = subjects(source)
    records = {(s.value.subject_id, s.value.lesion_id): s for s in source.lesions}
    seen: dict[tuple[str, str], tuple[dt.date, d.LesionMeasurement]] = {}
    for sid, assessments in assessments_by_subject(source).items():
        for a in assessments:
            for m in a.value.measurements:
                seen.setdefault((sid, m.lesion_id), (a.value.assessment_date, m))
    out: list[LesionIdentity] = []
    for key in sorted(set(records) | set(seen)):
        sid, lesion_id = key
        stored = records.get(key)
        first = seen.get(key)
        lesion_class = first[1].lesion_class if first else stored.value.lesion_class if stored else None
        organ = stored.value.organ if stored else first[1].organ if first else ""
        assert lesion_class is not None
        out.append(
            LesionIdentity(
                subject=subject_of(people, sid, f"lesion {lesion_id}"),
                lesion_id=lesion_id,
                stable_id=stored.id if stored else None,
                lesion_class=lesion_class,
                organ=organ,
                record=stored.value if stored else None,
                first_seen=first[0] if first else None,
                first_role=first[1].rt_role if first else None,
            )
        )
    return out


def build_tu(source: SdtmSource) -> list[Dataset]:
    """TU and SUPPTU (interop.md §2.6): TUMIDENT TARGET / NON-TARGET / NEW per lesion, evaluator INVESTIGATOR."""
    protocol = source.protocols.current
    study = study_id(source)
    by_subject = assessments_by_subject(source)
    visits = assessment_visit_tables(source, subjects(source))
    baseline = {sid: items[0].value.assessment_date for sid, items in by_subject.items()}
    rows: list[dict[str, Value]] = []
    supp_of: dict[int, dict[str, str]] = {}
    for lesion in lesion_identities(source):
        sid = lesion.subject.subject_id
        visit = visits.get(sid, {}).get(lesion.first_seen) if lesion.first_seen else None
        result = _CLASS_RESULT[lesion.lesion_class]
        rec = lesion.record
        row: dict[str, Value] = {
            "STUDYID": study,
            "DOMAIN": "TU",
            "USUBJID": lesion.subject.usubjid,
            "TUSEQ": None,
            "TUSPID": lesion.stable_id,
            "TULNKID": lesion.lesion_id,
            "TUTESTCD": "TUMIDENT",
            "TUTEST": "Tumor Identification",
            "TUORRES": result,
            "TUSTRESC": result,
            "TULOC": cdisc_location(lesion.organ, protocol) if lesion.organ else None,
            "TULAT": _LATERALITY.get((rec.laterality or "").lower()) if rec else None,
            "TUMETHOD": None,
            "TUEVAL": "INVESTIGATOR",
            "TULOBXFL": "Y" if lesion.first_seen is not None and lesion.first_seen == baseline.get(sid) else None,
            "VISITNUM": visit[0] if visit else None,
            "VISIT": visit[1] if visit else None,
            "EPOCH": epoch(lesion.first_seen, lesion.subject),
            "TUDTC": iso(lesion.first_seen),
            "TUDY": study_day(lesion.first_seen, lesion.subject.rfstdtc),
        }
        rows.append(row)
        supp: dict[str, str] = {}
        role = rec.rt_role if rec else lesion.first_role
        if role is not None:
            supp["RTROLE"] = _RT_ROLE[role]
        if rec is not None:
            if rec.location:
                supp["LOCDTL"] = rec.location
            supp["PRIMFL"] = "Y" if rec.is_primary else "N"
            supp["SYMPFL"] = "Y" if rec.is_symptomatic else "N"
        supp_of[id(row)] = supp
    ordered = number_rows(rows, "TU", lambda r: (r["USUBJID"], nulls_last(r["TUDTC"]), r["TULNKID"]))
    supp_rows: list[dict[str, Value]] = []
    for row in ordered:
        for qnam, qval in supp_of[id(row)].items():
            supp_rows.append(
                {
                    "STUDYID": study,
                    "RDOMAIN": "TU",
                    "USUBJID": row["USUBJID"],
                    "IDVAR": "TUSEQ",
                    "IDVARVAL": str(row["TUSEQ"]),
                    "QNAM": qnam,
                    "QLABEL": SUPP_LABELS[qnam],
                    "QVAL": qval,
                    "QORIG": "Collected",
                    "QEVAL": "INVESTIGATOR",
                }
            )
    return [Dataset(TU_SPEC, ordered), Dataset(SUPPTU_SPEC, supp_rows)]
