"""SDTM QS (questionnaires): EORTC QLQ-C30 and QLQ-LC13 items and the QoL engine's scale scores (interop.md §2.7).

Items: C30Q01..C30Q30 and LC13Q31..LC13Q43 (LC13 item k is combined item 30 + k, abscopal.qol.eortc), QSORRES =
QSSTRESC = the answer, QSSTRESN its number, a blank item QSSTAT NOT DONE. Scales: :func:`abscopal.qol.score_answers`
(EORTC scoring manual, 3rd ed.), QSDRVFL Y, QSORRES null, QSSTRESC/N unrounded. VISIT/VISITNUM from the
questionnaire visit code (:func:`abscopal.protocol.calendar.questionnaire_visit_number`; BASELINE 2, week 6k 2+k).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from operator import itemgetter
from typing import Any

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
from abscopal.interop.sdtm.spec import Dataset, DatasetSpec, PartRows, SdtmSource, Value, Variable
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


def build_qs(source: SdtmSource, *, release: bool = False) -> list[Dataset]:
    """QS (interop.md §2.7): every C30 / LC13 item answer and every scale score the QoL engine derives.

    With ``release`` (a source no one else reads: the QS worker's), the source's answers list is emptied once the
    answers are grouped by subject, so each subject's answers are freed as its rows are made.

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
    if release and isinstance(source.answers, list):
        source.answers.clear()
    lobx = _last_before_exposure(completed, people)

    visits: dict[str, tuple[float, str]] = {}  # visit code -> VISITNUM, VISIT (the calendar asked once per code)

    def visit_of(code: str) -> tuple[float, str]:
        if code not in visits:
            number = questionnaire_visit_number(code, schedule)
            visits[code] = (BASELINE_VISITNUM + number, week_visit(number, schedule.questionnaire_interval_days))
        return visits[code]

    forms: dict[FormKey, tuple[tuple[Value, ...], Value]] = {}

    def form(key: FormKey, subject: Subject) -> tuple[tuple[Value, ...], Value]:
        """One questionnaire's part (QSCAT, VISITNUM, VISIT, EPOCH, QSDTC, QSDY, QSEVAL) and its QSLOBXFL (before
        QSSTAT)."""
        if key not in forms:
            visitnum, visit = visit_of(key[1])
            date = completed[key]
            part = (
                CATEGORY[key[2]],
                visitnum,
                visit,
                epoch(date, subject),
                iso(date),
                study_day(date, subject.rfstdtc),
                "STUDY SUBJECT",
            )
            forms[key] = (part, "Y" if key in lobx else None)
        return forms[key]

    results: dict[object, tuple[Value, ...]] = {}  # an item's result part (QSORRES..QSREASND), made once per value
    tests: dict[object, tuple[Value, ...]] = {}  # QSTESTCD, QSTEST, QSDRVFL of each item and scale
    out: list[tuple[Any, ...]] = []
    groups: dict[str, list[str]] = {}
    for sid in by_subject:
        groups.setdefault(subject_of(people, sid, "questionnaire answer").usubjid, []).append(sid)
    not_scored: tuple[Value, ...] = (None, None, None, "NOT DONE", SCALE_NOT_SCORED)
    scored: dict[tuple[float, float], tuple[Value, ...]] = {}  # a scale score's result part, made once per score
    for usubjid in sorted(groups):
        ids = (study, "QS", usubjid)
        keyed: list[tuple[tuple[object, ...], tuple[Any, ...]]] = []
        for sid in groups[usubjid]:
            subject = people[sid]
            mine = by_subject[sid]
            for s in mine:
                a = s.value
                part, lobxfl = form((a.subject_id, a.visit, a.instrument), subject)
                item = (a.instrument, a.item)
                if item not in tests:
                    tests[item] = (*items[item], None)
                if a.answer is None:
                    given: object = ("NOT DONE", a.not_done_reason)
                    if given not in results:
                        results[given] = (None, None, None, "NOT DONE", a.not_done_reason)
                    lobxfl = None
                else:
                    given = (type(a.answer), a.answer)
                    if given not in results:
                        text = str(a.answer)
                        results[given] = (text, text, float(a.answer), None, None)
                row: tuple[Any, ...] = (ids, part, tests[item], results[given], None, s.id, lobxfl)
                keyed.append(((part[1], _CAT_ORDER[str(part[0])], 0, a.item), row))
            for i, score in enumerate(eortc.score_answers([s.value for s in mine])):
                part, lobxfl = form(
                    (score.subject_id, score.visit, score.instrument),
                    subject_of(people, score.subject_id, "questionnaire"),
                )
                if score.scale not in tests:
                    tests[score.scale] = (score.scale, scale_name(score.scale), "Y")
                if score.score is None:
                    res = not_scored
                    lobxfl = None
                else:
                    value = float(score.score)
                    # one result part per score (scores repeat: means of a few small whole numbers); keyed with
                    # the sign so 0.0 and -0.0 keep their own text
                    held = scored.get((value, math.copysign(1.0, value)))
                    if held is None:
                        held = scored[(value, math.copysign(1.0, value))] = (None, repr(value), value, None, None)
                    res = held
                row = (ids, part, tests[score.scale], res, None, None, lobxfl)
                keyed.append(((part[1], _CAT_ORDER[str(part[0])], 1, i), row))
            del by_subject[sid]
        keyed.sort(key=itemgetter(0))
        out.extend((*r[:4], seq, *r[5:]) for seq, (_, r) in enumerate(keyed, start=1))
    return [Dataset(QS_SPEC, PartRows(QS_SPEC.names, _QS_PLACES, out))]


#: where each QS variable is in a row of parts (ids, questionnaire, test, result, QSSEQ, QSSPID, QSLOBXFL)
_QS_PLACES = tuple(
    {
        "STUDYID": (0, 0),
        "DOMAIN": (0, 1),
        "USUBJID": (0, 2),
        "QSSEQ": (4, -1),
        "QSSPID": (5, -1),
        "QSTESTCD": (2, 0),
        "QSTEST": (2, 1),
        "QSCAT": (1, 0),
        "QSORRES": (3, 0),
        "QSSTRESC": (3, 1),
        "QSSTRESN": (3, 2),
        "QSSTAT": (3, 3),
        "QSREASND": (3, 4),
        "QSDRVFL": (2, 2),
        "QSEVAL": (1, 6),
        "QSLOBXFL": (6, -1),
        "VISITNUM": (1, 1),
        "VISIT": (1, 2),
        "EPOCH": (1, 3),
        "QSDTC": (1, 4),
        "QSDY": (1, 5),
    }[n]
    for n in QS_SPEC.names
)


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
