"""Synthetic adverse events of thoracic CFRT + LDRT with ongoing immunotherapy, graded by CTCAE v5.0.

Terms, MedDRA codes and the grades each term allows are those of CTCAE v5.0 (NCI 2017; ae-qol.md §A3):
a grade is drawn only among the grades the term defines (Fatigue 1-3, Myocarditis 2-5, ...). Seriousness
uses the six ICH E2A criteria, attribution the NCI five-level scale per agent (CFRT, LDRT, immunotherapy).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from abscopal.domain import AdverseEvent, AeAction, AeOutcome, Attribution
from abscopal.synth.draws import pick, randint

_A = Attribution
_LIKELIHOOD: dict[str, tuple[tuple[Attribution, float], ...]] = {
    "high": ((_A.PROBABLE, 0.5), (_A.DEFINITE, 0.3), (_A.POSSIBLE, 0.2)),
    "mid": ((_A.POSSIBLE, 0.6), (_A.PROBABLE, 0.25), (_A.UNLIKELY, 0.15)),
    "low": ((_A.UNLIKELY, 0.6), (_A.UNRELATED, 0.3), (_A.POSSIBLE, 0.1)),
    "none": ((_A.UNRELATED, 0.8), (_A.UNLIKELY, 0.2)),
}
_RELATED = (_A.POSSIBLE, _A.PROBABLE, _A.DEFINITE)


@dataclass(frozen=True, slots=True)
class Term:
    """A CTCAE v5.0 term as the generator uses it: code, grade weights (allowed grades only), timing, causes."""

    term: str
    meddra_code: int
    grades: tuple[tuple[int, float], ...]
    probability: float  # of at least one episode per treated patient
    onset_days: tuple[int, int]  # after the first RT fraction
    duration_days: tuple[int, int] | None  # None: does not resolve (late effect)
    cfrt: str
    ldrt: str
    io: str
    immune_related: float
    verbatim: str


# MedDRA codes and grade availability checked against shared/data/ctcae_v5.csv in tests/unit/synth.
TERMS: tuple[Term, ...] = (
    Term(
        "Esophagitis",
        10015461,
        ((1, 0.55), (2, 0.37), (3, 0.08)),
        0.35,
        (10, 35),
        (10, 40),
        "high",
        "low",
        "low",
        0.0,
        "radiation oesophagitis",
    ),
    Term(
        "Fatigue",
        10016256,
        ((1, 0.6), (2, 0.32), (3, 0.08)),
        0.40,
        (3, 90),
        (14, 90),
        "mid",
        "low",
        "mid",
        0.0,
        "fatigue",
    ),
    Term(
        "Dermatitis radiation",
        10061103,
        ((1, 0.72), (2, 0.25), (3, 0.03)),
        0.18,
        (14, 40),
        (10, 30),
        "high",
        "mid",
        "none",
        0.0,
        "radiation dermatitis",
    ),
    Term(
        "Cough", 10011224, ((1, 0.65), (2, 0.3), (3, 0.05)), 0.28, (7, 120), (14, 90), "mid", "low", "low", 0.0, "cough"
    ),
    Term(
        "Pneumonitis",
        10035742,
        ((1, 0.3), (2, 0.42), (3, 0.19), (4, 0.05), (5, 0.04)),
        0.17,
        (35, 200),
        (21, 90),
        "high",
        "low",
        "mid",
        0.4,
        "pneumonitis",
    ),
    Term(
        "Hypothyroidism",
        10021114,
        ((1, 0.45), (2, 0.52), (3, 0.03)),
        0.09,
        (40, 250),
        (60, 400),
        "none",
        "none",
        "high",
        1.0,
        "immune-related hypothyroidism",
    ),
    Term(
        "Hyperthyroidism",
        10020850,
        ((1, 0.6), (2, 0.4)),
        0.05,
        (20, 120),
        (20, 60),
        "none",
        "none",
        "high",
        1.0,
        "thyroiditis, hyperthyroid phase",
    ),
    Term(
        "Alanine aminotransferase increased",
        10001551,
        ((1, 0.6), (2, 0.24), (3, 0.13), (4, 0.03)),
        0.10,
        (14, 200),
        (14, 60),
        "none",
        "none",
        "mid",
        0.5,
        "ALT raised",
    ),
    Term(
        "Aspartate aminotransferase increased",
        10003481,
        ((1, 0.65), (2, 0.22), (3, 0.11), (4, 0.02)),
        0.08,
        (14, 200),
        (14, 60),
        "none",
        "none",
        "mid",
        0.5,
        "AST raised",
    ),
    Term(
        "Colitis",
        10009887,
        ((1, 0.25), (2, 0.45), (3, 0.25), (4, 0.05)),
        0.035,
        (30, 250),
        (10, 45),
        "none",
        "none",
        "high",
        1.0,
        "immune-mediated colitis",
    ),
    Term(
        "Diarrhea",
        10012727,
        ((1, 0.7), (2, 0.24), (3, 0.06)),
        0.10,
        (14, 200),
        (3, 21),
        "low",
        "none",
        "mid",
        0.3,
        "diarrhoea",
    ),
    Term(
        "Myocarditis",
        10028606,
        ((2, 0.4), (3, 0.3), (4, 0.15), (5, 0.15)),
        0.007,
        (20, 120),
        (14, 60),
        "low",
        "none",
        "high",
        1.0,
        "immune myocarditis",
    ),
    Term(
        "Nausea",
        10028813,
        ((1, 0.72), (2, 0.24), (3, 0.04)),
        0.14,
        (3, 60),
        (3, 21),
        "mid",
        "low",
        "low",
        0.0,
        "nausea",
    ),
    Term(
        "Anorexia",
        10002646,
        ((1, 0.6), (2, 0.33), (3, 0.07)),
        0.18,
        (7, 90),
        (14, 60),
        "mid",
        "low",
        "mid",
        0.0,
        "poor appetite",
    ),
    Term(
        "Dyspnea",
        10013963,
        ((1, 0.55), (2, 0.33), (3, 0.12)),
        0.15,
        (14, 200),
        (14, 90),
        "mid",
        "low",
        "low",
        0.0,
        "shortness of breath",
    ),
    Term(
        "Rash maculo-papular",
        10037868,
        ((1, 0.6), (2, 0.3), (3, 0.1)),
        0.10,
        (14, 150),
        (14, 45),
        "none",
        "none",
        "high",
        0.8,
        "maculopapular rash",
    ),
    Term(
        "Pruritus",
        10037087,
        ((1, 0.7), (2, 0.27), (3, 0.03)),
        0.08,
        (14, 150),
        (14, 60),
        "none",
        "none",
        "high",
        0.7,
        "itching",
    ),
    Term(
        "Lymphocyte count decreased",
        10025256,
        ((1, 0.2), (2, 0.4), (3, 0.32), (4, 0.08)),
        0.25,
        (7, 42),
        (30, 120),
        "high",
        "mid",
        "low",
        0.0,
        "lymphopenia",
    ),
    Term(
        "Dysphagia",
        10013950,
        ((1, 0.65), (2, 0.3), (3, 0.05)),
        0.08,
        (10, 40),
        (10, 40),
        "high",
        "low",
        "none",
        0.0,
        "painful swallowing",
    ),
    Term(
        "Chest wall pain",
        10008496,
        ((1, 0.75), (2, 0.25)),
        0.05,
        (30, 200),
        (30, 120),
        "high",
        "low",
        "none",
        0.0,
        "chest wall pain",
    ),
    Term(
        "Pulmonary fibrosis",
        10037383,
        ((1, 0.7), (2, 0.28), (3, 0.02)),
        0.03,
        (150, 400),
        None,
        "high",
        "low",
        "low",
        0.0,
        "radiation fibrosis",
    ),
)
_PRE_EXISTING = {"Fatigue", "Cough", "Dyspnea", "Anorexia"}
# grade 2 events that still lead to admission (seriousness is not severity, ICH E2A)
_GRADE2_ADMITTED = {"Pneumonitis": 0.25, "Colitis": 0.3, "Myocarditis": 1.0}
_STOPS_IO = {
    "Pneumonitis",
    "Colitis",
    "Myocarditis",
    "Alanine aminotransferase increased",
    "Aspartate aminotransferase increased",
}


@dataclass(frozen=True, slots=True)
class SafetyCourse:
    """The events of one patient and what they did to the rest of the record."""

    events: tuple[AdverseEvent, ...]
    death: tuple[dt.date, str] | None  # a fatal event's date and term
    io_interruptions: tuple[dt.date, ...]
    io_discontinued: dt.date | None


@dataclass(frozen=True, slots=True)
class _Draft:
    term: Term
    grade: int
    onset: dt.date
    duration: int | None
    baseline_grade: int | None
    cfrt: Attribution | None
    ldrt: Attribution | None
    io: Attribution | None
    immune: bool
    hospital: bool
    awareness_hours: int
    report_hours: int
    sequelae: bool
    recovering: bool
    death_after: int


def draft_events(r: random.Random, consent: dt.date, first_day: dt.date) -> list[_Draft]:
    """Draw every candidate event of a patient; dates are fixed before the record is cut at its end."""
    drafts: list[_Draft] = []
    for term in TERMS:
        if r.random() >= term.probability:
            continue
        grade = pick(r, term.grades)
        baseline = None
        if term.term in _PRE_EXISTING and r.random() < 0.25:
            baseline = term.grades[0][0]
            grade = max(grade, baseline)
        pre_treatment = (
            r.random() < 0.04 and term.cfrt != "high" and term.immune_related == 0 and (first_day - consent).days > 1
        )
        if pre_treatment:
            onset = consent + dt.timedelta(days=randint(r, 1, (first_day - consent).days - 1))
        else:
            onset = first_day + dt.timedelta(days=randint(r, *term.onset_days))
        duration = randint(r, *term.duration_days) if term.duration_days else None
        if duration is not None and grade >= 3:
            duration = int(duration * 1.5)

        def attribution(level: str, pre_treatment: bool = pre_treatment) -> Attribution | None:
            if pre_treatment:
                return pick(r, _LIKELIHOOD["none"])
            return None if r.random() < 0.02 else pick(r, _LIKELIHOOD[level])

        drafts.append(
            _Draft(
                term=term,
                grade=grade,
                onset=onset,
                duration=duration,
                baseline_grade=baseline,
                cfrt=attribution(term.cfrt),
                ldrt=attribution(term.ldrt),
                io=attribution(term.io),
                immune=not pre_treatment and r.random() < term.immune_related,
                hospital=grade >= 4
                or (grade == 3 and r.random() < 0.6)
                or (grade == 2 and r.random() < _GRADE2_ADMITTED.get(term.term, 0.0)),
                awareness_hours=randint(r, 0, 36),
                report_hours=randint(r, 1, 20) if r.random() >= 0.08 else randint(r, 25, 72),
                sequelae=r.random() < 0.15,
                recovering=r.random() < 0.4,
                death_after=randint(r, 1, 14),
            )
        )
    drafts.sort(key=lambda d: (d.onset, d.term.term))
    return drafts


def finalise_events(subject_id: str, drafts: list[_Draft], end: dt.date) -> SafetyCourse:
    """Cut the drafts at ``end`` (death, withdrawal or data cut-off); a grade 5 event may bring death earlier."""
    death: tuple[dt.date, str] | None = None
    for d in drafts:
        if d.grade == 5 and d.onset <= end and d.onset + dt.timedelta(days=d.death_after) <= end:
            death = (d.onset + dt.timedelta(days=d.death_after), d.term.term)
            end = death[0]
            break
    events: list[AdverseEvent] = []
    interruptions: list[dt.date] = []
    discontinued: dt.date | None = None
    for d in drafts:
        if d.onset > end:
            continue
        fatal = (
            death is not None
            and d.grade == 5
            and d.term.term == death[1]
            and d.onset + dt.timedelta(days=d.death_after) == death[0]
        )
        grade = d.grade if d.grade < 5 or fatal else 4
        resolution: dt.date | None = None
        if fatal:
            resolution, outcome = death[0] if death else None, AeOutcome.FATAL
        elif d.duration is not None and d.onset + dt.timedelta(days=d.duration) <= end:
            resolution = d.onset + dt.timedelta(days=d.duration)
            outcome = AeOutcome.RECOVERED_WITH_SEQUELAE if grade >= 3 and d.sequelae else AeOutcome.RECOVERED
        else:
            outcome = AeOutcome.RECOVERING if d.recovering else AeOutcome.NOT_RECOVERED
        related_io = d.io in _RELATED
        action = AeAction.DOSE_NOT_CHANGED
        if related_io and grade >= 3 and d.term.term in _STOPS_IO:
            action = AeAction.DRUG_WITHDRAWN
            discontinued = d.onset if discontinued is None else min(discontinued, d.onset)
        elif related_io and grade >= 2 and (d.immune or d.term.term in _STOPS_IO):
            action = AeAction.DRUG_INTERRUPTED
            interruptions.append(d.onset)
        serious_medical = d.term.term == "Myocarditis"
        serious = fatal or d.hospital or serious_medical
        onset_at = dt.datetime(d.onset.year, d.onset.month, d.onset.day, 2, tzinfo=dt.UTC)
        awareness = onset_at + dt.timedelta(hours=d.awareness_hours) if serious else None
        report_hours = d.report_hours
        limit = dt.datetime(end.year, end.month, end.day, 15, 59, tzinfo=dt.UTC)
        if awareness is not None and awareness + dt.timedelta(hours=report_hours) > limit:
            awareness, report_hours = onset_at, min(report_hours, 13)
        events.append(
            AdverseEvent(
                subject_id=subject_id,
                ae_id=f"{subject_id}-AE{len(events) + 1:02d}",
                term=d.term.term,
                meddra_code=d.term.meddra_code,
                grade=grade,
                onset_date=d.onset,
                resolution_date=resolution,
                serious_death=fatal,
                serious_life_threatening=grade == 4,
                serious_hospitalisation=d.hospital,
                serious_disability=False,
                serious_congenital=False,
                serious_medically_important=serious_medical,
                attribution_cfrt=d.cfrt,
                attribution_ldrt=d.ldrt,
                attribution_io=d.io,
                immune_related=d.immune,
                action_io=action,
                outcome=outcome,
                verbatim=d.term.verbatim,
                baseline_grade=d.baseline_grade,
                awareness_at=awareness,
                reported_at=awareness + dt.timedelta(hours=report_hours) if awareness else None,
            )
        )
    return SafetyCourse(tuple(events), death, tuple(interruptions), discontinued)
