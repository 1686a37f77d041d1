"""EX, Exposure (+ SUPPEX), interop.md §2.3: one record per RT fraction given and per immunotherapy dose given.

Missed fractions and cycles not given have no EX record (they are in DV). RT records link to the lesion
(EXLNKID = ``lesion_id``, the TU/TR link) and carry the lesion's organ as CDISC LOC (``[interop].organ_loc``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from abscopal import domain as d
from abscopal.errors import ValidationError
from abscopal.interop.sdtm.common import Row, V, context, iso, iter_supp_rows, number_seq, ordered, spec, supp_spec
from abscopal.interop.sdtm.spec import Dataset, SdtmSource, Value
from abscopal.protocol.radiotherapy import is_delivered, is_fully_delivered
from abscopal.store.records import Stored

EXTRT_RT = {
    d.RtRole.CONVENTIONAL: ("CONVENTIONAL FRACTIONATED RADIOTHERAPY", "QD"),
    d.RtRole.LOW_DOSE: ("LOW-DOSE RADIOTHERAPY", "QW"),
}

EX = spec(
    "EX",
    "Exposure",
    "INTERVENTIONS",
    "One record per constant dosing interval per subject",
    ("STUDYID", "USUBJID", "EXTRT", "EXSTDTC", "EXSPID"),
    (
        V("STUDYID", "Study Identifier", core="Req", origin="Assigned"),
        V("DOMAIN", "Domain Abbreviation", core="Req", origin="Assigned"),
        V("USUBJID", "Unique Subject Identifier", core="Req", origin="Derived"),
        V("EXSEQ", "Sequence Number", "Num", core="Req", origin="Derived"),
        V("EXGRPID", "Group ID", origin="Derived"),
        V("EXSPID", "Sponsor-Defined Identifier", origin="Assigned"),
        V("EXLNKID", "Link ID", origin="Derived"),
        V("EXTRT", "Name of Treatment", core="Req"),
        V("EXCAT", "Category of Treatment", origin="Assigned"),
        V("EXDOSE", "Dose", "Num", core="Exp"),
        V("EXDOSU", "Dose Units", core="Exp", codelist="UNIT"),
        V("EXDOSFRM", "Dose Form", core="Exp", codelist="FRM", comment="Not applicable to radiotherapy"),
        V("EXDOSFRQ", "Dosing Frequency per Interval", origin="Protocol", codelist="FREQ"),
        V("EXROUTE", "Route of Administration", codelist="ROUTE", comment="Not applicable to radiotherapy"),
        V("EXLOC", "Location of Dose Administration", codelist="LOC"),
        V("EXADJ", "Reason for Dose Adjustment"),
        V("EPOCH", "Epoch", origin="Derived", codelist="EPOCH", method="MT.EPOCH"),
        V("EXSTDTC", "Start Date/Time of Treatment", core="Exp"),
        V("EXENDTC", "End Date/Time of Treatment", core="Exp"),
        V("EXSTDY", "Study Day of Start of Treatment", "Num", origin="Derived", method="MT.DY"),
        V("EXENDY", "Study Day of End of Treatment", "Num", origin="Derived", method="MT.DY"),
    ),
)
SUPPEX = supp_spec("EX", "Supplemental Qualifiers for EX")


def organ_loc(organ: str, table: dict[str, str], where: str) -> str:
    """CDISC LOC of ``organ`` from ``[interop].organ_loc``; an organ the table lacks is refused, named."""
    try:
        return table[organ]
    except KeyError:
        raise ValidationError(
            where, f"organ {organ!r} has no CDISC LOC in the protocol's [interop.organ_loc]; add it there"
        ) from None


def _course_of(f: d.Fraction, courses: list[Stored[d.RadiotherapyCourse]]) -> Stored[d.RadiotherapyCourse] | None:
    """The lesion's course in force on the fraction's date (the latest started on or before it)."""
    mine = [c for c in courses if c.value.lesion_id == f.lesion_id and c.value.start_date <= f.date]
    return max(mine, key=lambda c: c.value.start_date, default=None)


def _frequency(interval_days: int) -> str:
    return f"Q{interval_days // 7}W" if interval_days % 7 == 0 else f"EVERY {interval_days} DAYS"


def build_ex(source: SdtmSource) -> list[Dataset]:
    ctx = context(source)
    courses = ctx.by_subject(source.courses)
    lesions = {(x.value.subject_id, x.value.lesion_id): x.value for x in source.lesions}
    loc = ctx.protocol.interop.organ_loc
    rows: list[Row] = []
    rx: dict[str, tuple[d.RadiotherapyCourse, str]] = {}
    for stored in source.fractions:
        f = stored.value
        if not is_delivered(f) or f.subject_id not in ctx.subjects:
            continue
        subj = ctx.subjects[f.subject_id]
        course = _course_of(f, courses.get(f.subject_id, []))
        lesion = lesions.get((f.subject_id, f.lesion_id))
        role = course.value.role if course else (lesion.rt_role if lesion else None)
        if role not in EXTRT_RT:
            raise ValidationError(
                f"EX {subj.usubjid} fraction {f.lesion_id} #{f.fraction_number}",
                f"the lesion's radiotherapy role is {role}, not conventional or low-dose",
            )
        extrt, frq = EXTRT_RT[role]
        where = f"EX.EXLOC (USUBJID {subj.usubjid}, lesion {f.lesion_id})"
        rows.append(
            {
                "STUDYID": ctx.studyid,
                "DOMAIN": "EX",
                "USUBJID": subj.usubjid,
                "EXGRPID": course.id if course else None,
                "EXSPID": stored.id,
                "EXLNKID": f.lesion_id,
                "EXTRT": extrt,
                "EXCAT": "RADIOTHERAPY",
                "EXDOSE": f.dose_gy,
                "EXDOSU": "Gy",
                "EXDOSFRQ": frq,
                "EXLOC": organ_loc(lesion.organ, loc, where) if lesion else None,
                "EXADJ": None if is_fully_delivered(f) else "PARTIAL FRACTION",
                "EPOCH": subj.epoch(f.date),
                "EXSTDTC": iso(f.date),
                "EXENDTC": iso(f.date),
                "EXSTDY": subj.dy(f.date),
                "EXENDY": subj.dy(f.date),
            }
        )
        if course:
            rx[stored.id] = (course.value, course.id)
    for stored_c in source.cycles:
        c = stored_c.value
        if not c.given or c.subject_id not in ctx.subjects:
            continue
        subj = ctx.subjects[c.subject_id]
        rows.append(
            {
                "STUDYID": ctx.studyid,
                "DOMAIN": "EX",
                "USUBJID": subj.usubjid,
                "EXGRPID": f"CYCLE {c.cycle_number}",
                "EXSPID": stored_c.id,
                "EXTRT": c.agent.upper(),
                "EXCAT": "IMMUNOTHERAPY",
                "EXDOSE": c.dose,
                "EXDOSU": c.dose_unit,
                "EXDOSFRQ": _frequency(ctx.protocol_of(c.subject_id).immunotherapy.interval_days),
                "EXROUTE": (c.route or "intravenous").upper(),
                "EPOCH": subj.epoch(c.date),
                "EXSTDTC": iso(c.date),
                "EXENDTC": iso(c.date),
                "EXSTDY": subj.dy(c.date),
                "EXENDY": subj.dy(c.date),
            }
        )
    rows = number_seq(rows, "EXSEQ", lambda r: (str(r["EXTRT"]), str(r["EXSTDTC"]), str(r["EXSPID"])))

    made: dict[str, list[tuple[str, str, str | None, str]]] = {}  # per course: its fractions share one list

    def qualifiers(r: Mapping[str, Value]) -> list[tuple[str, str, str | None, str]]:
        found = rx.get(str(r["EXSPID"]))
        if found is None:
            return []
        course, course_id = found
        if course_id not in made:
            made[course_id] = _rx_qualifiers(course)
        return made[course_id]

    ex = ordered(EX, rows)
    del rows  # SUPPEX is made from EX's own rows, one SUPPEX row at a time
    return [ex, ordered(SUPPEX, iter_supp_rows(ctx.studyid, ex.rows, "EX", qualifiers))]


def _rx_qualifiers(course: d.RadiotherapyCourse) -> list[tuple[str, str, str | None, str]]:
    """SUPPEX of a radiotherapy fraction: its course's prescription (total dose, fractions) and plan."""
    total = course.dose_per_fraction_gy * course.fractions
    plan: Any = course.plan_label or course.plan_uid
    return [
        ("RXDOSE", "Prescribed Total Dose (Gy)", repr(total), "CRF"),
        ("RXNFRAC", "Prescribed Number of Fractions", str(course.fractions), "CRF"),
        ("RTPLAN", "Radiotherapy Plan", plan, "CRF"),
    ]
