"""DS (disposition), SV (subject visits) and DV (protocol deviations), interop.md §2.2 and §2.8."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from abscopal import domain as d
from abscopal.interop.sdtm.common import (
    BASELINE_VISIT,
    SCREENING_VISIT,
    Row,
    V,
    context,
    iso,
    number_seq,
    ordered,
    questionnaire_visit,
    spec,
    split_text,
    supp_rows,
    supp_spec,
)
from abscopal.interop.sdtm.spec import Dataset, SdtmSource

_ID = (
    V("STUDYID", "Study Identifier", core="Req", origin="Assigned"),
    V("DOMAIN", "Domain Abbreviation", core="Req", origin="Assigned"),
    V("USUBJID", "Unique Subject Identifier", core="Req", origin="Derived"),
)

DS = spec(
    "DS",
    "Disposition",
    "EVENTS",
    "One record per disposition status or protocol milestone per subject",
    ("STUDYID", "USUBJID", "DSSTDTC", "DSDECOD"),
    (
        *_ID,
        V("DSSEQ", "Sequence Number", "Num", core="Req", origin="Derived"),
        V("DSTERM", "Reported Term for the Disposition Event", core="Req"),
        V("DSDECOD", "Standardized Disposition Term", core="Req", origin="Assigned", codelist="NCOMPLT"),
        V("DSCAT", "Category for Disposition Event", origin="Assigned", codelist="DSCAT"),
        V("DSSCAT", "Subcategory for Disposition Event", origin="Assigned"),
        V("EPOCH", "Epoch", origin="Derived", codelist="EPOCH", method="MT.EPOCH"),
        V("DSSTDTC", "Start Date/Time of Disposition Event", core="Exp"),
        V("DSSTDY", "Study Day of Start of Disposition Event", "Num", origin="Derived", method="MT.DY"),
    ),
)

_CONSENT = "INFORMED CONSENT OBTAINED"

#: Patient.status -> the END OF TREATMENT / END OF STUDY decoded term and the date field it is dated by
_END = {
    d.PatientStatus.DIED: ("DEATH", "death_date"),
    d.PatientStatus.WITHDRAWN: ("WITHDRAWAL BY SUBJECT", "withdrawal_date"),
    d.PatientStatus.LOST_TO_FOLLOW_UP: ("LOST TO FOLLOW-UP", "last_contact_date"),
    d.PatientStatus.COMPLETED: ("COMPLETED", "last_contact_date"),
}


def build_ds(source: SdtmSource) -> list[Dataset]:
    """Consent (PROTOCOL MILESTONE), screen failure, and the end of treatment / study from Patient.status.

    End of treatment for progression (derived iCPD) is not written yet: it needs the response engine's
    confirmed progression per subject (docs/interop.md "SDTM", open points).
    """
    ctx = context(source)
    screenings = {s.value.subject_id: s.value for s in source.screenings}
    rows: list[Row] = []

    def add(p: d.Patient, term: str, decod: str, cat: str, scat: str | None, day: dt.date | None) -> None:
        subj = ctx.subjects[p.subject_id]
        rows.append(
            {
                "STUDYID": ctx.studyid,
                "DOMAIN": "DS",
                "USUBJID": subj.usubjid,
                "DSTERM": split_text(term)[0],
                "DSDECOD": decod,
                "DSCAT": cat,
                "DSSCAT": scat,
                "EPOCH": subj.epoch(day),
                "DSSTDTC": iso(day),
                "DSSTDY": subj.dy(day),
            }
        )

    for stored in source.patients:
        p = stored.value
        scr = screenings.get(p.subject_id)
        if scr is not None and scr.consent_date is not None:
            add(
                p,
                "INFORMED CONSENT OBTAINED",
                "INFORMED CONSENT OBTAINED",
                "PROTOCOL MILESTONE",
                None,
                scr.consent_date,
            )
        if p.status is d.PatientStatus.SCREEN_FAILED:
            reason = (scr.screen_failure_reason if scr else None) or "SCREEN FAILURE"
            add(p, reason, "SCREEN FAILURE", "DISPOSITION EVENT", None, scr.screening_date if scr else None)
        if p.status in _END:
            decod, date_field = _END[p.status]
            day = getattr(p, date_field)
            if decod != "COMPLETED" and p.enrolment_date is not None:
                add(p, decod, decod, "DISPOSITION EVENT", "END OF TREATMENT", day)
            add(p, decod, decod, "DISPOSITION EVENT", "END OF STUDY", day)
    rows = number_seq(rows, "DSSEQ", lambda r: (str(r["DSSTDTC"] or ""), str(r["DSDECOD"]), str(r["DSSCAT"] or "")))
    return [ordered(DS, rows)]


SV = spec(
    "SV",
    "Subject Visits",
    "SPECIAL PURPOSE",
    "One record per subject per actual visit",
    ("STUDYID", "USUBJID", "VISITNUM"),
    (
        *_ID,
        V("VISITNUM", "Visit Number", "Num", core="Req", origin="Derived", method="MT.VISITNUM"),
        V("VISIT", "Visit Name", origin="Derived"),
        V("EPOCH", "Epoch", origin="Derived", codelist="EPOCH", method="MT.EPOCH"),
        V("SVSTDTC", "Start Date/Time of Observation", core="Exp"),
        V("SVENDTC", "End Date/Time of Observation", core="Exp"),
        V("SVSTDY", "Study Day of Start of Observation", "Num", origin="Derived", method="MT.DY"),
        V("SVUPDES", "Description of Unplanned Visit"),
    ),
)


def build_sv(source: SdtmSource) -> list[Dataset]:
    """Visits that happened: screening, baseline (enrolment), tumour assessments, questionnaire visits; one
    record per VISITNUM, dated by its first record (interop.md §2.2)."""
    ctx = context(source)
    seen: dict[tuple[str, float], tuple[str, dt.date, str | None]] = {}

    def visit(sid: str, num: float, name: str, day: dt.date | None, unplanned: str | None = None) -> None:
        if day is None or sid not in ctx.subjects:
            return
        key = (sid, num)
        if key not in seen or day < seen[key][1]:
            seen[key] = (name, day, unplanned)

    for s in source.screenings:
        visit(s.value.subject_id, *SCREENING_VISIT, s.value.screening_date)
    for p in source.patients:
        visit(p.value.subject_id, *BASELINE_VISIT, p.value.enrolment_date)
    for a in source.assessments:
        sid = a.value.subject_id
        if sid in ctx.subjects:
            num, name = ctx.subjects[sid].assessment_visits[a.value.assessment_date]
            visit(sid, num, name, a.value.assessment_date, "TUMOUR ASSESSMENT" if name == "UNSCHEDULED" else None)
    qvisits: dict[tuple[str, int], tuple[float, str]] = {}  # (code, protocol) -> VISITNUM, VISIT, asked once
    answered: Iterable[tuple[str, str, dt.date | None]] = (
        ((q.value.subject_id, q.value.visit, q.value.completed_on) for q in source.answers)
        if source.answered_visits is None
        else source.answered_visits
    )
    for sid, code, completed in answered:
        if completed is not None:
            protocol = ctx.protocol_of(sid)
            qkey = (code, id(protocol))
            if qkey not in qvisits:
                qvisits[qkey] = questionnaire_visit(code, protocol)
            num, name = qvisits[qkey]
            visit(sid, num, name, completed)
    rows: list[Row] = []
    for (sid, num), (name, day, unplanned) in seen.items():
        subj = ctx.subjects[sid]
        rows.append(
            {
                "STUDYID": ctx.studyid,
                "DOMAIN": "SV",
                "USUBJID": subj.usubjid,
                "VISITNUM": num,
                "VISIT": name,
                "EPOCH": subj.epoch(day),
                "SVSTDTC": iso(day),
                "SVENDTC": iso(day),
                "SVSTDY": subj.dy(day),
                "SVUPDES": unplanned,
            }
        )
    rows.sort(key=lambda r: (str(r["USUBJID"]), float(r["VISITNUM"] or 0)))
    return [ordered(SV, rows)]


DV = spec(
    "DV",
    "Protocol Deviations",
    "EVENTS",
    "One record per protocol deviation per subject",
    ("STUDYID", "USUBJID", "DVSTDTC", "DVDECOD", "DVSPID"),
    (
        *_ID,
        V("DVSEQ", "Sequence Number", "Num", core="Req", origin="Derived"),
        V("DVSPID", "Sponsor-Defined Identifier", origin="Assigned"),
        V("DVTERM", "Protocol Deviation Term", core="Req"),
        V("DVDECOD", "Protocol Deviation Coded Term", origin="Assigned"),
        V("DVCAT", "Category for Protocol Deviation", origin="Assigned"),
        V("DVSCAT", "Subcategory for Protocol Deviation", origin="Assigned"),
        V("EPOCH", "Epoch", origin="Derived", codelist="EPOCH", method="MT.EPOCH"),
        V("DVSTDTC", "Start Date/Time of Deviation", core="Exp"),
        V("DVSTDY", "Study Day of Start of Deviation", "Num", origin="Derived", method="MT.DY"),
    ),
)
SUPPDV = supp_spec("DV", "Supplemental Qualifiers for DV")


def build_dv(source: SdtmSource) -> list[Dataset]:
    """Confirmed deviations only (a proposed one is not yet a deviation); DVTERM over 200 bytes continues in
    SUPPDV DVTERM1, DVTERM2… (interop.md §1.4)."""
    ctx = context(source)
    rows: list[Row] = []
    rest: dict[str, list[str]] = {}
    for stored in source.deviations:
        dv = stored.value
        if dv.confirmed_by is None or dv.subject_id not in ctx.subjects:
            continue
        subj = ctx.subjects[dv.subject_id]
        pieces = split_text(dv.reason)
        rest[stored.id] = pieces[1:]
        rows.append(
            {
                "STUDYID": ctx.studyid,
                "DOMAIN": "DV",
                "USUBJID": subj.usubjid,
                "DVSPID": stored.id,
                "DVTERM": pieces[0],
                "DVDECOD": dv.check.value.upper(),
                "DVCAT": "RADIOTHERAPY",
                "DVSCAT": dv.deviation_class.value.upper(),
                "EPOCH": subj.epoch(dv.date),
                "DVSTDTC": iso(dv.date),
                "DVSTDY": subj.dy(dv.date),
            }
        )
    rows = number_seq(rows, "DVSEQ", lambda r: (str(r["DVSTDTC"] or ""), str(r["DVDECOD"]), str(r["DVSPID"])))

    def qualifiers(r: Row) -> list[tuple[str, str, str | None, str]]:
        return [
            (f"DVTERM{i}", f"Protocol Deviation Term, continued ({i})", piece, "CRF")
            for i, piece in enumerate(rest[str(r["DVSPID"])], start=1)
        ]

    return [ordered(DV, rows), ordered(SUPPDV, supp_rows(ctx.studyid, rows, "DV", qualifiers))]
