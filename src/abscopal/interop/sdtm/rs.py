"""SDTM RS (disease response): the investigator's overall response and the response engine's RECIST 1.1 and
iRECIST timepoint responses and confirmed best response (interop.md §2.6; SDTMIG 3.4 §6.3.14.3).

Investigator rows: RSEVAL INVESTIGATOR, RSCAT from ``TumourAssessment.criteria`` (else the protocol's). Engine
rows: RSEVAL SPONSOR, TRGRESP / NTRGRESP / NEWLPROG / OVRLRESP per post-baseline assessment and BESTRESP, exactly
as :func:`abscopal.response.derive_cohort` gives them under the protocol's ``[response]`` options.
RSLNKGRP = TR's TRLNKGRP; RSACPTFL Y on the OVRLRESP rows of ``[interop].accepted_response`` (default investigator).
"""

from __future__ import annotations

import datetime as dt

from abscopal import domain as d
from abscopal.interop.sdtm.common import iso, study_day
from abscopal.interop.sdtm.oncology_common import (
    Subject,
    accepted_evaluator,
    assessment_visit_tables,
    assessments_by_subject,
    engine_responses,
    epoch,
    link_group,
    number_tuples,
    study_id,
    subject_of,
    subjects,
)
from abscopal.interop.sdtm.spec import Dataset, DatasetSpec, SdtmSource, Value, Variable
from abscopal.response import Criteria, Response, SubjectResponse

_V = Variable

#: RSCAT per criteria [CT?]
CATEGORY = {Criteria.RECIST11: "RECIST 1.1", Criteria.IRECIST: "iRECIST"}
TESTS = {
    "TRGRESP": "Target Response",
    "NTRGRESP": "Non-target Response",
    "NEWLPROG": "New Lesion Progression",
    "OVRLRESP": "Overall Response",
    "BESTRESP": "Best Overall Response",
}
_TEST_ORDER = {code: i for i, code in enumerate(TESTS)}
_EVAL_ORDER = {"INVESTIGATOR": 0, "SPONSOR": 1}
_CAT_ORDER = {c: i for i, c in enumerate(CATEGORY.values())}

RS_SPEC = DatasetSpec(
    name="RS",
    label="Disease Response and Clin Classification",
    domain_class="FINDINGS",
    structure="One record per response assessment per visit per subject per assessor per medical evaluator",
    keys=("STUDYID", "USUBJID", "RSDTC", "RSEVAL", "RSCAT", "RSTESTCD"),
    variables=(
        _V("STUDYID", "Study Identifier", core="Req", origin="Protocol"),
        _V("DOMAIN", "Domain Abbreviation", core="Req", origin="Assigned"),
        _V("USUBJID", "Unique Subject Identifier", core="Req", origin="Derived"),
        _V("RSSEQ", "Sequence Number", "Num", core="Req", origin="Derived"),
        _V("RSLNKGRP", "Link Group ID", origin="Derived", comment="TR's TRLNKGRP of the assessment"),
        _V("RSTESTCD", "Assessment Short Name", core="Req", origin="Assigned", codelist="ONCRTSCD"),
        _V("RSTEST", "Assessment Name", core="Req", origin="Assigned", codelist="ONCRTS"),
        _V("RSCAT", "Category for Assessment", core="Exp", origin="Assigned"),
        _V("RSORRES", "Result or Finding in Original Units", core="Exp"),
        _V("RSSTRESC", "Character Result/Finding in Std Format", core="Exp", codelist="ONCRSR"),
        _V("RSEVAL", "Evaluator", core="Exp", origin="Assigned", codelist="EVAL"),
        _V("RSACPTFL", "Accepted Record Flag", origin="Derived", codelist="NY"),
        _V("VISITNUM", "Visit Number", "Num", core="Exp", origin="Derived"),
        _V("VISIT", "Visit Name", origin="Derived"),
        _V("EPOCH", "Epoch", origin="Derived", codelist="EPOCH"),
        _V("RSDTC", "Date/Time of Assessment", core="Exp"),
        _V("RSDY", "Study Day of Assessment", "Num", origin="Derived"),
    ),
)


def standard_response(code: str) -> str:
    """RSSTRESC of a response code: RECIST's NonCR/NonPD as NON-CR/NON-PD, every other code as it is [CT?]."""
    return "NON-CR/NON-PD" if code == "NonCR/NonPD" else code


def _category(a: d.TumourAssessment, default: str) -> str:
    try:
        return CATEGORY[Criteria((a.criteria or default).strip().lower())]
    except ValueError:
        return CATEGORY[Criteria(default)]


def build_rs(source: SdtmSource) -> list[Dataset]:
    """RS (interop.md §2.6): investigator OVRLRESP, engine TRGRESP/NTRGRESP/NEWLPROG/OVRLRESP and BESTRESP."""
    protocol = source.protocols.current
    study = study_id(source)
    people = subjects(source)
    visits = assessment_visit_tables(source, people)
    accepted = accepted_evaluator(protocol)
    accepted_category = CATEGORY[Criteria(protocol.response.criteria)]
    derived = {c: engine_responses(source, people, c) for c in (Criteria.RECIST11, Criteria.IRECIST)}
    rows: list[tuple[Value, ...]] = []

    def add(
        subject: Subject, date: dt.date | None, testcd: str, cat: str, result: str, evaluator: str, link: str | None
    ) -> None:
        visit = visits[subject.subject_id].get(date) if date is not None and testcd != "BESTRESP" else None
        accepted_row = testcd == "OVRLRESP" and evaluator == accepted
        if evaluator == "SPONSOR":
            accepted_row = accepted_row and cat == accepted_category
        rows.append(  # in RS_SPEC order
            (
                study,
                "RS",
                subject.usubjid,
                None,  # RSSEQ
                link,
                testcd,
                TESTS[testcd],
                cat,
                result,
                standard_response(result),
                evaluator,
                "Y" if accepted_row else None,
                visit[0] if visit else None,
                visit[1] if visit else None,
                epoch(date, subject),
                iso(date),
                study_day(date, subject.rfstdtc),
            )
        )

    for sid, assessments in assessments_by_subject(source).items():
        subject = subject_of(people, sid, "tumour assessment")
        links = {a.value.assessment_date: link_group(a) for a in assessments}
        for stored in assessments:
            a = stored.value
            if a.investigator_response is not None:
                cat = _category(a, protocol.response.criteria)
                add(
                    subject,
                    a.assessment_date,
                    "OVRLRESP",
                    cat,
                    a.investigator_response.value,
                    "INVESTIGATOR",
                    links[a.assessment_date],
                )
        for criteria, results in derived.items():
            result = results[sid]
            cat = CATEGORY[criteria]
            for tp in result.timepoints:
                link = links[tp.assessment_date]
                for testcd, value in (("TRGRESP", tp.target), ("NTRGRESP", tp.non_target), ("OVRLRESP", tp.overall)):
                    if value is not None:
                        add(subject, tp.assessment_date, testcd, cat, str(value), "SPONSOR", link)
                if tp.overall is not None:
                    add(subject, tp.assessment_date, "NEWLPROG", cat, "Y" if tp.new_lesions else "N", "SPONSOR", link)
            add(subject, best_response_date(result), "BESTRESP", cat, str(result.bor_confirmed), "SPONSOR", None)
    at = {n: i for i, n in enumerate(RS_SPEC.names)}
    u, testcd_at, dtc, eval_at, cat_at = (at[n] for n in ("USUBJID", "RSTESTCD", "RSDTC", "RSEVAL", "RSCAT"))
    return [
        number_tuples(
            RS_SPEC,
            rows,
            lambda r: (
                r[u],
                r[testcd_at] == "BESTRESP",
                str(r[dtc] or ""),
                _EVAL_ORDER[str(r[eval_at])],
                _CAT_ORDER.get(str(r[cat_at]), -1),
                _TEST_ORDER[str(r[testcd_at])],
            ),
        )
    ]


def best_response_date(result: SubjectResponse) -> dt.date | None:
    """RSDTC of BESTRESP (interop.md §2.6): the first assessment of the response: the engine's start of response
    for a confirmed CR/PR, else the first assessment whose overall response is the best response."""
    if result.dor is not None:
        return result.dor.start
    best: Response = result.bor_confirmed
    return next((t.assessment_date for t in result.timepoints if t.overall == best), None)
