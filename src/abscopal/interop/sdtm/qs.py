"""SDTM QS (questionnaires): EORTC QLQ-C30 and QLQ-LC13 items and the QoL engine's scale scores (interop.md §2.7).

Items: C30Q01..C30Q30 and LC13Q31..LC13Q43 (LC13 item k is combined item 30 + k, abscopal.qol.eortc), QSORRES =
QSSTRESC = the answer, QSSTRESN its number, a blank item QSSTAT NOT DONE. Scales: :func:`abscopal.qol.score_answers`
(EORTC scoring manual, 3rd ed.), QSDRVFL Y, QSORRES null, QSSTRESC/N unrounded. VISIT/VISITNUM from the
questionnaire visit code (:func:`abscopal.protocol.calendar.questionnaire_visit_number`; BASELINE 2, week 6k 2+k).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from operator import itemgetter

from abscopal import domain as d
from abscopal.interop.sdtm.common import iso, study_day
from abscopal.interop.sdtm.oncology_common import (
    BASELINE_VISITNUM,
    Subject,
    epoch,
    study_id,
    subject_of,
    subjects,
    week_visit,
)
from abscopal.interop.sdtm.spec import Dataset, DatasetSpec, Rows, SdtmSource, Value, Variable
from abscopal.protocol.calendar import questionnaire_visit_number
from abscopal.qol import eortc
from abscopal.store.records import Stored

_V = Variable

#: QSCAT per instrument [CT?: EORTC instruments have no CDISC QS terminology]
CATEGORY = {d.Instrument.QLQ_C30: "EORTC QLQ-C30 V3.0", d.Instrument.QLQ_LC13: "EORTC QLQ-LC13"}
_CAT_ORDER = {c: i for i, c in enumerate(CATEGORY.values())}
SCALE_NOT_SCORED = "too few items answered to score the scale (EORTC half rule)"

QS_SPEC = DatasetSpec(
    name="QS",
    label="Questionnaires",
    domain_class="FINDINGS",
    structure="One record per questionnaire per question per time point per visit per subject",
    keys=("STUDYID", "USUBJID", "QSCAT", "VISITNUM", "QSTESTCD"),
    variables=(
        _V("STUDYID", "Study Identifier", core="Req", origin="Protocol"),
        _V("DOMAIN", "Domain Abbreviation", core="Req", origin="Assigned"),
        _V("USUBJID", "Unique Subject Identifier", core="Req", origin="Derived"),
        _V("QSSEQ", "Sequence Number", "Num", core="Req", origin="Derived"),
        _V("QSSPID", "Sponsor-Defined Identifier", origin="Assigned", comment="stable id of the item answer"),
        _V("QSTESTCD", "Question Short Name", core="Req", origin="Assigned"),
        _V("QSTEST", "Question Name", core="Req", origin="Assigned"),
        _V("QSCAT", "Category of Question", core="Req", origin="Assigned"),
        _V("QSORRES", "Finding in Original Units", core="Exp"),
        _V("QSSTRESC", "Character Result/Finding in Std Format", core="Exp"),
        _V("QSSTRESN", "Numeric Finding in Standard Units", "Num", core="Exp"),
        _V("QSSTAT", "Completion Status", codelist="ND"),
        _V("QSREASND", "Reason Not Performed"),
        _V("QSDRVFL", "Derived Flag", origin="Assigned", codelist="NY", method="MT.QS.SCALE"),
        _V("QSEVAL", "Evaluator", origin="Assigned", codelist="EVAL"),
        _V("QSLOBXFL", "Last Observation Before Exposure Flag", core="Exp", origin="Derived", codelist="NY"),
        _V("VISITNUM", "Visit Number", "Num", core="Exp", origin="Derived"),
        _V("VISIT", "Visit Name", origin="Derived"),
        _V("EPOCH", "Epoch", origin="Derived", codelist="EPOCH"),
        _V("QSDTC", "Date/Time of Finding", core="Exp"),
        _V("QSDY", "Study Day of Finding", "Num", origin="Derived"),
    ),
)


def item_code(instrument: d.Instrument, item: int) -> str:
    """QSTESTCD of an item: C30Q01..C30Q30, LC13Q31..LC13Q43 (combined numbering, interop.md §2.7)."""
    return f"C30Q{item:02d}" if instrument is d.Instrument.QLQ_C30 else f"LC13Q{item}"


def scale_name(code: str) -> str:
    """QSTEST of a scale score: the scale's name; the QLQ-C30 summary score (Giesinger 2016) by its name."""
    return "Summary score" if code == eortc.SUMMARY_SCORE else eortc.scale(code).name


FormKey = tuple[str, str, d.Instrument]


def build_qs(source: SdtmSource) -> list[Dataset]:
    """QS (interop.md §2.7): every C30 / LC13 item answer and every scale score the QoL engine derives.

    Rows are tuples in spec order (:class:`Rows`: 2.75 M rows at 10,000 patients), built one subject at a time in
    the dataset's order (USUBJID, VISITNUM, QSCAT, items by number then scales in the engine's order), so no
    dataset-wide sort; each questionnaire's shared values (visit, date, EPOCH, --DY) are derived once per form.
    """
    study = study_id(source)
    people = subjects(source)
    schedule = source.protocols.current.schedule
    answers = sorted(source.answers, key=lambda s: (s.value.subject_id, s.value.visit, s.value.instrument, s.id))
    completed: dict[FormKey, dt.date | None] = {}
    by_subject: dict[str, list[Stored[d.QuestionnaireAnswer]]] = {}
    items: dict[tuple[d.Instrument, int], tuple[str, str]] = {}  # QSTESTCD, QSTEST of each item, asked once
    for s in answers:
        a = s.value
        key = (a.subject_id, a.visit, a.instrument)
        completed[key] = completed.get(key) or a.completed_on
        subject_of(people, a.subject_id, "questionnaire answer")
        if (a.instrument, a.item) not in items:
            items[(a.instrument, a.item)] = (
                item_code(a.instrument, a.item),
                eortc.item_definition(a.instrument, a.item).label,
            )
        by_subject.setdefault(a.subject_id, []).append(s)
    del answers
    lobx = _last_before_exposure(completed, people)

    visits: dict[str, tuple[float, str]] = {}  # visit code -> VISITNUM, VISIT (the calendar asked once per code)

    def visit_of(code: str) -> tuple[float, str]:
        if code not in visits:
            number = questionnaire_visit_number(code, schedule)
            visits[code] = (BASELINE_VISITNUM + number, week_visit(number, schedule.questionnaire_interval_days))
        return visits[code]

    forms: dict[FormKey, tuple[Value, ...]] = {}

    def form(key: FormKey, subject: Subject) -> tuple[Value, ...]:
        """QSCAT, QSLOBXFL (before QSSTAT), VISITNUM, VISIT, EPOCH, QSDTC, QSDY of one questionnaire."""
        if key not in forms:
            visitnum, visit = visit_of(key[1])
            date = completed[key]
            forms[key] = (
                CATEGORY[key[2]],
                "Y" if key in lobx else None,
                visitnum,
                visit,
                epoch(date, subject),
                iso(date),
                study_day(date, subject.rfstdtc),
            )
        return forms[key]

    texts: dict[
        tuple[type, int], tuple[str, float]
    ] = {}  # an answer's QSORRES (= QSSTRESC) and QSSTRESN, made once per value
    names: dict[str, str] = {}  # QSTEST of each scale
    out: list[tuple[Value, ...]] = []
    groups: dict[str, list[str]] = {}
    for sid in by_subject:
        groups.setdefault(subject_of(people, sid, "questionnaire answer").usubjid, []).append(sid)
    for usubjid in sorted(groups):
        keyed: list[tuple[tuple[object, ...], tuple[Value, ...]]] = []
        for sid in groups[usubjid]:
            subject = people[sid]
            mine = by_subject[sid]
            for s in mine:
                a = s.value
                cat, lobxfl, visitnum, visit, epoch_, dtc, dy = form((a.subject_id, a.visit, a.instrument), subject)
                testcd, test = items[(a.instrument, a.item)]
                if a.answer is None:
                    res: tuple[Value, ...] = (None, None, None, "NOT DONE", a.not_done_reason)
                    lobxfl = None
                else:
                    given = (type(a.answer), a.answer)
                    if given not in texts:
                        texts[given] = (str(a.answer), float(a.answer))
                    text, number = texts[given]
                    res = (text, text, number, None, None)
                row = (study, "QS", usubjid, None, s.id, testcd, test, cat, *res, None, "STUDY SUBJECT", lobxfl)
                keyed.append(((visitnum, _CAT_ORDER[str(cat)], 0, a.item), (*row, visitnum, visit, epoch_, dtc, dy)))
            for i, score in enumerate(eortc.score_answers([s.value for s in mine])):
                cat, lobxfl, visitnum, visit, epoch_, dtc, dy = form(
                    (score.subject_id, score.visit, score.instrument),
                    subject_of(people, score.subject_id, "questionnaire"),
                )
                if score.scale not in names:
                    names[score.scale] = scale_name(score.scale)
                if score.score is None:
                    res = (None, None, None, "NOT DONE", SCALE_NOT_SCORED)
                    lobxfl = None
                else:
                    res = (None, repr(float(score.score)), float(score.score), None, None)
                row = (
                    study,
                    "QS",
                    usubjid,
                    None,
                    None,
                    score.scale,
                    names[score.scale],
                    cat,
                    *res,
                    "Y",
                    "STUDY SUBJECT",
                )
                keyed.append(((visitnum, _CAT_ORDER[str(cat)], 1, i), (*row, lobxfl, visitnum, visit, epoch_, dtc, dy)))
            del by_subject[sid]
        keyed.sort(key=itemgetter(0))
        out.extend((*r[:3], seq, *r[4:]) for seq, (_, r) in enumerate(keyed, start=1))
    return [Dataset(QS_SPEC, Rows(QS_SPEC.names, out))]


def _last_before_exposure(completed: Mapping[FormKey, dt.date | None], people: Mapping[str, Subject]) -> set[FormKey]:
    """Per subject and instrument, the last form completed on or before RFSTDTC (QSLOBXFL)."""
    best: dict[tuple[str, d.Instrument], FormKey] = {}
    for key, date in completed.items():
        subject = people.get(key[0])
        if date is None or subject is None or subject.rfstdtc is None or date > subject.rfstdtc:
            continue
        current = best.get((key[0], key[2]))
        if current is None or (completed[current] or date) < date:
            best[(key[0], key[2])] = key
    return set(best.values())
