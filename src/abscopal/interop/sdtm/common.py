"""Conventions every SDTM dataset shares (interop.md §2.0): STUDYID, USUBJID, --SEQ, --DY, EPOCH, VISITNUM.

Each derivation calls the engine that owns the rule (``protocol.radiotherapy`` for the first fraction and the
study-treatment dates, ``protocol.calendar`` for the visit grid); nothing here decides a clinical rule.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from abscopal import domain as d
from abscopal.errors import ValidationError
from abscopal.interop.sdtm.spec import Dataset, DatasetSpec, Rows, SdtmSource, Value, Variable, check_spec
from abscopal.protocol.calendar import (
    ScheduleInput,
    VisitKind,
    WorkingDays,
    build_schedule,
    questionnaire_visit_code,
    questionnaire_visit_number,
)
from abscopal.protocol.model import Protocol
from abscopal.protocol.radiotherapy import first_rt_fraction, study_treatment_dates
from abscopal.store.records import Stored

Row = dict[str, Value]

#: ISO 3166-1 alpha-2 -> alpha-3 for the countries the trial's sites are in (DM.COUNTRY, TS.FCNTRY)
COUNTRY3 = {"CN": "CHN", "HK": "HKG", "TW": "TWN", "US": "USA", "GB": "GBR", "DE": "DEU", "JP": "JPN", "KR": "KOR"}

SCREENING_VISIT = (1.0, "SCREENING")
BASELINE_VISIT = (2.0, "BASELINE")
SUPP_MAX = 200  # bytes of one character value (SDTMIG 3.4 §4.5.3.2: longer text goes to SUPP--)


def spec(
    name: str, label: str, domain_class: str, structure: str, keys: tuple[str, ...], variables: Sequence[Variable]
) -> DatasetSpec:
    """A checked :class:`DatasetSpec` (names ≤ 8, labels ≤ 40: refused at import, so a typo never ships)."""
    out = DatasetSpec(name, label, domain_class, structure, keys, tuple(variables))
    check_spec(out)
    return out


def V(name: str, label: str, type: str = "Char", core: str = "Perm", origin: str = "Collected", **kw: Any) -> Variable:
    return Variable(name, label, type, core, origin, **kw)  # type: ignore[arg-type]


def iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def study_day(day: dt.date | None, reference: dt.date | None) -> int | None:
    """--DY (SDTMIG 3.4 §4.4.4): date − RFSTDTC, +1 on or after it (there is no day 0); null when unknown."""
    if day is None or reference is None:
        return None
    delta = (day - reference).days
    return delta + 1 if delta >= 0 else delta


def split_text(text: str, limit: int = SUPP_MAX) -> list[str]:
    """``text`` in pieces of ≤ ``limit`` UTF-8 bytes, each cut at its last space (interop.md §1.4 SUPP split)."""
    pieces: list[str] = []
    rest = text
    while len(rest.encode("utf-8")) > limit:
        head = rest.encode("utf-8")[:limit].decode("utf-8", "ignore")
        cut = head.rfind(" ")
        if cut <= 0:
            cut = len(head)
        pieces.append(rest[:cut])
        rest = rest[cut:].lstrip(" ")
    pieces.append(rest)
    return pieces


def number_seq(rows: list[Row], seq: str, key: Callable[[Row], tuple[Any, ...]]) -> list[Row]:
    """Rows sorted by USUBJID then ``key`` (ties: --SPID or stable id inside the key) with --SEQ 1..n per subject."""
    rows = sorted(rows, key=lambda r: (str(r["USUBJID"]), *key(r)))
    count: dict[str, int] = defaultdict(int)
    for r in rows:
        count[str(r["USUBJID"])] += 1
        r[seq] = count[str(r["USUBJID"])]
    return rows


def ordered(spec_: DatasetSpec, rows: Iterable[Mapping[str, Value]]) -> Dataset:
    """A dataset whose rows carry exactly the spec's variables, in spec order (missing ones null), held as
    tuples (:class:`Rows`: no dict per row)."""
    names = spec_.names
    known = set(names)
    out: list[tuple[Value, ...]] = []
    for r in rows:
        if not r.keys() <= known:
            extra = set(r) - known
            raise ValidationError(spec_.name, f"builder produced variables not in the spec: {sorted(extra)}")
        out.append(tuple(map(r.get, names)))
    return Dataset(spec_, Rows(names, out))


def nulls_last(value: Any) -> tuple[int, Any]:
    """A sort key that orders None after every value (so key sorts never compare None with a str)."""
    return (1, "") if value is None else (0, value)


SUPP_VARIABLES = (
    V("STUDYID", "Study Identifier", core="Req", origin="Assigned"),
    V("RDOMAIN", "Related Domain Abbreviation", core="Req", origin="Assigned"),
    V("USUBJID", "Unique Subject Identifier", core="Req", origin="Derived"),
    V("IDVAR", "Identifying Variable", core="Exp", origin="Assigned"),
    V("IDVARVAL", "Identifying Variable Value", core="Exp", origin="Derived"),
    V("QNAM", "Qualifier Variable Name", core="Req", origin="Assigned"),
    V("QLABEL", "Qualifier Variable Label", core="Req", origin="Assigned"),
    V("QVAL", "Data Value", core="Req"),
    V("QORIG", "Origin", core="Req", origin="Assigned"),
    V("QEVAL", "Evaluator", core="Exp", origin="Assigned"),
)


def supp_spec(rdomain: str, label: str) -> DatasetSpec:
    return spec(
        f"SUPP{rdomain}",
        label,
        "RELATIONSHIP",
        "One record per IDVAR, IDVARVAL, and QNAM value per subject",
        ("STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM"),
        SUPP_VARIABLES,
    )


def supp_rows(
    studyid: str,
    parent: Sequence[Row],
    rdomain: str,
    qualifiers: Callable[[Row], Iterable[tuple[str, str, str | None, str]]],
) -> list[Row]:
    """SUPP-- rows for ``parent`` rows: ``qualifiers(row)`` yields (QNAM, QLABEL, QVAL, QORIG); null QVALs skipped."""
    return list(iter_supp_rows(studyid, parent, rdomain, qualifiers))


def iter_supp_rows(
    studyid: str,
    parent: Iterable[Mapping[str, Value]],
    rdomain: str,
    qualifiers: Callable[[Any], Iterable[tuple[str, str, str | None, str]]],
) -> Iterator[Row]:
    """:func:`supp_rows` one row at a time (for :func:`ordered`: no list of dicts held; ``parent`` may be the
    parent dataset's own rows)."""
    seq = f"{rdomain}SEQ"
    texts: dict[tuple[type, Value], str] = {}  # IDVARVAL of each --SEQ value, made once
    for r in parent:
        for qnam, qlabel, qval, qorig in qualifiers(r):
            if qval is None or qval == "":
                continue
            number = r[seq]
            key = (type(number), number)  # 1 and 1.0 are one dict key but not one text
            if key not in texts:
                texts[key] = str(number)
            yield {
                "STUDYID": studyid,
                "RDOMAIN": rdomain,
                "USUBJID": r["USUBJID"],
                "IDVAR": seq,
                "IDVARVAL": texts[key],
                "QNAM": qnam,
                "QLABEL": qlabel,
                "QVAL": qval,
                "QORIG": qorig,
                "QEVAL": None,
            }


@dataclass(frozen=True)
class Subject:
    """One subject's reference dates (DM) and visit map, shared by every dataset."""

    subject_id: str
    usubjid: str
    rfstdtc: dt.date | None  # first delivered RT fraction (RFSTDTC, the --DY reference; safety teae_anchor)
    rfxstdtc: dt.date | None  # first study treatment given
    rfxendtc: dt.date | None  # last study treatment given
    assessment_visits: Mapping[dt.date, tuple[float, str]]

    def dy(self, day: dt.date | None) -> int | None:
        return study_day(day, self.rfstdtc)

    def epoch(self, day: dt.date | None) -> str | None:
        """EPOCH (interop.md §2.0): SCREENING before RFXSTDTC, TREATMENT to the last dose, FOLLOW-UP after."""
        if day is None:
            return None
        if self.rfxstdtc is None or day < self.rfxstdtc:
            return "SCREENING"
        if self.rfxendtc is None or day <= self.rfxendtc:
            return "TREATMENT"
        return "FOLLOW-UP"


def visit_label(k: int, schedule: Any) -> str:
    """'WEEK 6k' for assessment k (the questionnaire code of the same number: week_6 -> WEEK 6)."""
    return questionnaire_visit_code(k, schedule).upper().replace("_", " ")


def questionnaire_visit(code: str, protocol: Protocol) -> tuple[float, str]:
    """VISITNUM, VISIT of a questionnaire visit code (interop.md §2.0: baseline 2, week_6 = k 1 -> 3 WEEK 6)."""
    k = questionnaire_visit_number(code, protocol.schedule)
    return BASELINE_VISIT if k == 0 else (2.0 + k, visit_label(k, protocol.schedule))


class Context:
    """What every builder derives once from an :class:`SdtmSource`: STUDYID, subjects, records by subject."""

    def __init__(self, source: SdtmSource) -> None:
        self.source = source
        self.protocol = source.protocols.current
        self.studyid = self.protocol.interop.studyid or self.protocol.trial.id

    def usubjid(self, subject_id: str) -> str:
        return f"{self.studyid}-{subject_id}"

    @cached_property
    def patients(self) -> dict[str, d.Patient]:
        return {p.value.subject_id: p.value for p in self.source.patients}

    def protocol_of(self, subject_id: str) -> Protocol:
        p = self.patients.get(subject_id)
        return self.source.protocols.version(p.protocol_version) if p is not None else self.protocol

    def by_subject(self, records: Sequence[Stored[Any]]) -> dict[str, list[Stored[Any]]]:
        out: dict[str, list[Stored[Any]]] = defaultdict(list)
        for r in records:
            out[r.value.subject_id].append(r)
        return out

    @cached_property
    def subjects(self) -> dict[str, Subject]:
        fractions = self.by_subject(self.source.fractions)
        cycles = self.by_subject(self.source.cycles)
        assessments = self.by_subject(self.source.assessments)
        wd = WorkingDays(self.protocol.schedule.holidays_country)
        out: dict[str, Subject] = {}
        for sid, p in self.patients.items():
            fr = [f.value for f in fractions.get(sid, [])]
            cy = [c.value for c in cycles.get(sid, [])]
            dates = study_treatment_dates(fr, cy, p.enrolment_date)
            visits = self._assessment_visits(p, [a.value.assessment_date for a in assessments.get(sid, [])], wd)
            out[sid] = Subject(
                sid,
                self.usubjid(sid),
                first_rt_fraction(fr),
                dates[0] if dates else None,
                dates[-1] if dates else None,
                visits,
            )
        return out

    def _assessment_visits(
        self, p: d.Patient, dates: list[dt.date], wd: WorkingDays
    ) -> dict[dt.date, tuple[float, str]]:
        """VISITNUM/VISIT of each tumour assessment: baseline 2; the calendar's 42-day grid from enrolment
        (assessment k ->
        2+k WEEK 6k); an assessment the calendar lists as unscheduled after visit v -> v + 0.01·n (n-th)."""
        if not dates:
            return {}
        if p.enrolment_date is None:
            return {day: (2.0 + 0.01 * (i + 1), "UNSCHEDULED") for i, day in enumerate(sorted(dates))}
        protocol = self.protocol_of(p.subject_id)
        schedule = build_schedule(
            ScheduleInput(p.subject_id, p.enrolment_date, assessments=tuple(sorted(dates))),
            protocol.immunotherapy,
            protocol.schedule,
            protocol.radiotherapy.low_dose,
            self.source.cutoff,
            wd,
        )
        scheduled = {
            v.actual: v.number for v in schedule.of_kind(VisitKind.TUMOUR_ASSESSMENT) if v.planned and v.actual
        }
        out: dict[dt.date, tuple[float, str]] = {}
        last, n = 2.0, 0
        baseline = max((day for day in dates if day <= p.enrolment_date), default=None)
        for day in sorted(dates):
            if day == baseline:
                out[day] = BASELINE_VISIT  # the last scan on or before enrolment is the baseline (RECIST 1.1 §3)
            elif day in scheduled:
                k = scheduled[day]
                last, n = 2.0 + k, 0
                out[day] = (last, visit_label(k, protocol.schedule))
            else:
                n += 1
                out[day] = (round(last + 0.01 * n, 2), "UNSCHEDULED")
        return out


def context(source: SdtmSource) -> Context:
    """The one :class:`Context` of ``source``: its subjects (RFSTDTC, EPOCH bounds, visit calendar) derived once
    for every builder of the export, not once per builder."""
    from abscopal.interop.sdtm.memo import memo

    return memo(source, Context, lambda: Context(source))
