"""What TU, TR, RS and QS share: USUBJID, study day, EPOCH, visits, the organ -> LOC mapping, --SEQ numbering.

Conventions of interop.md §2.0: USUBJID = STUDYID-SUBJID; --DY = date - RFSTDTC (+1 on/after), RFSTDTC the first
study treatment (:func:`abscopal.protocol.radiotherapy.first_study_treatment`); EPOCH SCREENING before it,
TREATMENT to the last study treatment, FOLLOW-UP after; VISITNUM BASELINE 2, assessment k 2+k (WEEK 6k).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from abscopal import domain as d
from abscopal.errors import ValidationError
from abscopal.interop.sdtm.memo import memo
from abscopal.interop.sdtm.spec import Dataset, DatasetSpec, Rows, SdtmSource, Value
from abscopal.protocol.model import Protocol, Schedule
from abscopal.protocol.radiotherapy import first_study_treatment, study_treatment_dates
from abscopal.response import Criteria, SubjectFacts, SubjectResponse, derive_cohort
from abscopal.store.records import Stored

BASELINE_VISITNUM = 2.0

# Organ (as Lesion.organ / LesionMeasurement.organ hold it) -> CDISC LOC submission value (C74456) [CT?].
# Provisional (interop.md §9 G4): the protocol file's `[interop]` organ -> LOC table replaces it once it exists;
# :func:`cdisc_location` is the one place that reads it. An unmapped organ is refused (interop.md §2.3).
_ORGAN_LOC: dict[str, str] = {
    "lung": "LUNG",
    "lymph_node": "LYMPH NODE",
    "bone": "BONE",
    "liver": "LIVER",
    "adrenal": "ADRENAL GLAND",
    "adrenal_gland": "ADRENAL GLAND",
    "pleura": "PLEURA",
    "soft_tissue": "SOFT TISSUE",
    "brain": "BRAIN",
    "skin": "SKIN",
    "kidney": "KIDNEY",
    "peritoneum": "PERITONEUM",
    "pericardium": "PERICARDIUM",
    "spleen": "SPLEEN",
}


def organ_locations(protocol: Protocol) -> Mapping[str, str]:
    """The organ -> LOC table: the protocol's ``[interop]`` table when the protocol model has one, else ours."""
    interop = getattr(protocol, "interop", None)
    table = getattr(interop, "organ_loc", None) or getattr(interop, "locations", None)
    return table if isinstance(table, Mapping) and table else _ORGAN_LOC


def cdisc_location(organ: str, protocol: Protocol) -> str:
    """The CDISC LOC term of an organ; an organ the table does not know is refused, never guessed."""
    key = organ.strip().lower().replace(" ", "_").replace("-", "_")
    table = organ_locations(protocol)
    loc = table.get(key) or table.get(organ)
    if loc is None:
        raise ValidationError("organ", f"organ {organ!r} has no CDISC location (LOC); add it to the organ table")
    return loc


def accepted_evaluator(protocol: Protocol) -> str:
    """``[interop].accepted_response`` upper-cased (INVESTIGATOR or SPONSOR), default INVESTIGATOR (§2.6)."""
    interop = getattr(protocol, "interop", None)
    value = getattr(interop, "accepted_response", None)
    if isinstance(interop, Mapping):
        value = interop.get("accepted_response")
    text = str(value).strip().upper() if value else "INVESTIGATOR"
    return "SPONSOR" if text in ("SPONSOR", "ENGINE", "DERIVED") else "INVESTIGATOR"


@dataclass(frozen=True, slots=True)
class Subject:
    """One patient as the findings datasets need it."""

    subject_id: str
    usubjid: str
    enrolment: dt.date | None
    rfstdtc: dt.date | None  # first study treatment
    last_treatment: dt.date | None
    death_date: dt.date | None
    new_therapy_date: dt.date | None


def study_id(source: SdtmSource) -> str:
    """STUDYID = ``[trial].id`` of the protocol in force."""
    return source.protocols.current.trial.id


def subjects(source: SdtmSource) -> dict[str, Subject]:
    """Every patient of the source by subject id, with RFSTDTC and the last study treatment date (derived once
    per source and shared by TU, TR, RS and QS; read-only)."""
    return memo(source, "subjects", lambda: _subjects(source))


def _subjects(source: SdtmSource) -> dict[str, Subject]:
    study = study_id(source)
    fractions: dict[str, list[d.Fraction]] = defaultdict(list)
    cycles: dict[str, list[d.ImmunotherapyCycle]] = defaultdict(list)
    for f in source.fractions:
        fractions[f.value.subject_id].append(f.value)
    for c in source.cycles:
        cycles[c.value.subject_id].append(c.value)
    out: dict[str, Subject] = {}
    for stored in source.patients:
        p = stored.value
        sid = p.subject_id
        dates = study_treatment_dates(fractions[sid], cycles[sid], p.enrolment_date)
        out[sid] = Subject(
            subject_id=sid,
            usubjid=f"{study}-{sid}",
            enrolment=p.enrolment_date,
            rfstdtc=first_study_treatment(fractions[sid], cycles[sid], p.enrolment_date),
            last_treatment=dates[-1] if dates else None,
            death_date=p.death_date,
            new_therapy_date=p.new_therapy_date,
        )
    return out


def subject_of(table: Mapping[str, Subject], subject_id: str, what: str) -> Subject:
    """The patient of a record; a record of an unknown patient is refused."""
    try:
        return table[subject_id]
    except KeyError:
        raise ValidationError("subject_id", f"{what} of {subject_id!r}, who is not a patient of the export") from None


def epoch(date: dt.date | None, subject: Subject) -> str | None:
    """EPOCH (§2.0): SCREENING before the first study treatment, TREATMENT to the last, FOLLOW-UP after."""
    if date is None:
        return None
    if subject.rfstdtc is None or date < subject.rfstdtc:
        return "SCREENING"
    if subject.last_treatment is not None and date > subject.last_treatment:
        return "FOLLOW-UP"
    return "TREATMENT"


def week_visit(number: int, interval_days: int) -> str:
    """VISIT of grid visit ``number`` (0 = BASELINE): WEEK n, or DAY n when the interval is not whole weeks."""
    if number == 0:
        return "BASELINE"
    days = number * interval_days
    return f"WEEK {days // 7}" if interval_days % 7 == 0 else f"DAY {days}"


def assessment_visits(
    dates: Sequence[dt.date], subject: Subject, schedule: Schedule
) -> dict[dt.date, tuple[float, str]]:
    """VISITNUM/VISIT of a subject's tumour assessments (§2.0): the first is BASELINE (2, response-rules.md §1);
    a later one within ``assessment_window_days`` of grid point k (every ``assessment_interval_days`` from
    enrolment) is 2+k; any other is unscheduled v+0.01·n after the last visit v (VISIT ``UNSCHEDULED v.nn``)."""
    out: dict[dt.date, tuple[float, str]] = {}
    interval, window = schedule.assessment_interval_days, schedule.assessment_window_days
    anchor = subject.enrolment
    last, extra, used = BASELINE_VISITNUM, 0, {0}
    for i, date in enumerate(sorted(set(dates))):
        if i == 0:
            out[date] = (BASELINE_VISITNUM, "BASELINE")
            continue
        k = round((date - anchor).days / interval) if anchor is not None else -1
        if anchor is not None and k > 0 and k not in used and abs((date - anchor).days - k * interval) <= window:
            used.add(k)
            last, extra = BASELINE_VISITNUM + k, 0
            out[date] = (last, week_visit(k, interval))
        else:
            extra += 1
            num = round(last + 0.01 * extra, 2)
            out[date] = (num, f"UNSCHEDULED {num:.2f}")
    return out


def number_rows(
    rows: Iterable[dict[str, Value]], prefix: str, order: Callable[[dict[str, Value]], tuple[object, ...]]
) -> list[dict[str, Value]]:
    """Rows sorted by ``order`` (USUBJID first) with ``<prefix>SEQ`` 1..n per USUBJID (§1, stable ids)."""
    ordered = sorted(rows, key=order)
    seq: dict[Value, int] = defaultdict(int)
    for row in ordered:
        seq[row["USUBJID"]] += 1
        row[f"{prefix}SEQ"] = seq[row["USUBJID"]]
    return ordered


def number_tuples(
    spec_: DatasetSpec, rows: list[tuple[Value, ...]], order: Callable[[tuple[Value, ...]], tuple[object, ...]]
) -> Dataset:
    """:func:`number_rows` of rows held as tuples in spec order (:class:`Rows`: no dict per row): sorted by
    ``order`` (USUBJID first), ``<name>SEQ`` 1..n per USUBJID."""
    names = spec_.names
    subject, seq_at = names.index("USUBJID"), names.index(f"{spec_.name}SEQ")
    rows.sort(key=order)
    seq: dict[Value, int] = defaultdict(int)
    for k, row in enumerate(rows):
        seq[row[subject]] += 1
        rows[k] = (*row[:seq_at], seq[row[subject]], *row[seq_at + 1 :])
    return Dataset(spec_, Rows(names, rows))


def as_tuple(spec_: DatasetSpec, row: dict[str, Value]) -> tuple[Value, ...]:
    """A row built as a dict in spec order (every variable, no other) as the tuple :class:`Rows` holds."""
    if len(row) != len(spec_.names) or tuple(row) != spec_.names:
        raise ValidationError(spec_.name, f"builder produced variables not in the spec's order: {list(row)}")
    return tuple(row.values())


def nulls_last(value: Value) -> tuple[int, str]:
    """A sort key that orders text and puts nulls after every value."""
    return (1, "") if value is None else (0, str(value))


def number_text(value: float) -> str:
    """A number as SDTM --ORRES text: shortest repr, no trailing .0 ("12", "12.5")."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def assessments_by_subject(source: SdtmSource) -> dict[str, list[Stored[d.TumourAssessment]]]:
    """Each subject's tumour assessments in date order (ties: stable id); once per source, read-only."""
    return memo(source, "assessments_by_subject", lambda: _assessments_by_subject(source))


def _assessments_by_subject(source: SdtmSource) -> dict[str, list[Stored[d.TumourAssessment]]]:
    out: dict[str, list[Stored[d.TumourAssessment]]] = defaultdict(list)
    for a in sorted(source.assessments, key=lambda s: (s.value.subject_id, s.value.assessment_date, s.id)):
        out[a.value.subject_id].append(a)
    return out


def link_group(assessment: Stored[d.TumourAssessment]) -> str:
    """TRLNKGRP = RSLNKGRP = "A" + the assessment's stable id (interop.md §1)."""
    return f"A{assessment.id}"


def assessment_visit_tables(
    source: SdtmSource, people: Mapping[str, Subject]
) -> dict[str, dict[dt.date, tuple[float, str]]]:
    """:func:`assessment_visits` for every subject with assessments, under the protocol's ``[schedule]``
    (once per source when ``people`` is :func:`subjects` of it)."""
    if people is subjects(source):
        return memo(source, "assessment_visit_tables", lambda: _assessment_visit_tables(source, people))
    return _assessment_visit_tables(source, people)


def _assessment_visit_tables(
    source: SdtmSource, people: Mapping[str, Subject]
) -> dict[str, dict[dt.date, tuple[float, str]]]:
    schedule = source.protocols.current.schedule
    return {
        sid: assessment_visits(
            [a.value.assessment_date for a in items], subject_of(people, sid, "tumour assessment"), schedule
        )
        for sid, items in assessments_by_subject(source).items()
    }


def engine_responses(
    source: SdtmSource, people: Mapping[str, Subject], criteria: Criteria
) -> dict[str, SubjectResponse]:
    """The response engine's derivation of every subject (:func:`abscopal.response.derive_cohort`) under the
    protocol's ``[response]`` options; the reference date is RFSTDTC (response-rules.md §6). Derived once per
    source and criteria when ``people`` is :func:`subjects` of it (TR and RS share the iRECIST derivation)."""
    if people is subjects(source):
        return memo(source, ("engine_responses", criteria), lambda: _engine_responses(source, people, criteria))
    return _engine_responses(source, people, criteria)


def _engine_responses(
    source: SdtmSource, people: Mapping[str, Subject], criteria: Criteria
) -> dict[str, SubjectResponse]:
    facts = {
        sid: SubjectFacts(sid, reference_date=p.rfstdtc, death_date=p.death_date, new_therapy_date=p.new_therapy_date)
        for sid, p in people.items()
    }
    assessments = [a.value for a in source.assessments]
    for a in assessments:
        subject_of(people, a.subject_id, "tumour assessment")
    return derive_cohort(assessments, facts, source.protocols.current.response, criteria)
