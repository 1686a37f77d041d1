"""The trial's records as the analysis reads them, and the data cut-off applied to them (pure).

:class:`TrialData` holds domain records (the store's reader for the report, :mod:`abscopal.reports.io`, fills
it); :func:`apply_cutoff` gives the trial as known on the cut-off date (docs/report.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from abscopal import domain as d


@dataclass(frozen=True)
class TrialData:
    """The trial's records as domain objects (what the store holds), before or after a data cut-off."""

    patients: Sequence[d.Patient] = ()
    screenings: Sequence[d.Screening] = ()
    adjudications: Sequence[d.Adjudication] = ()
    lesions: Sequence[d.Lesion] = ()
    courses: Sequence[d.RadiotherapyCourse] = ()
    fractions: Sequence[d.Fraction] = ()
    cycles: Sequence[d.ImmunotherapyCycle] = ()
    assessments: Sequence[d.TumourAssessment] = ()
    adverse_events: Sequence[d.AdverseEvent] = ()
    answers: Sequence[d.QuestionnaireAnswer] = ()
    deviations: Sequence[d.ProtocolDeviation] = ()


def _on_or_before(date: dt.date | None, cutoff: dt.date) -> dt.date | None:
    return date if date is not None and date <= cutoff else None


def apply_cutoff(data: TrialData, cutoff: dt.date) -> TrialData:
    """The trial as known on ``cutoff``: every record dated after it is dropped, every date after it cleared
    (a death, an enrolment, a resolution after the cut-off did not happen yet); last contact is capped."""

    def patient(p: d.Patient) -> d.Patient:
        enrolled = _on_or_before(p.enrolment_date, cutoff)
        death = _on_or_before(p.death_date, cutoff)
        status = p.status
        if enrolled is None and p.enrolment_date is not None:
            status = d.PatientStatus.SCREENING
        else:
            died_later = p.status is d.PatientStatus.DIED and death is None
            withdrew_later = p.status is d.PatientStatus.WITHDRAWN and _on_or_before(p.withdrawal_date, cutoff) is None
            if died_later or withdrew_later:
                status = d.PatientStatus.FOLLOW_UP
        last = p.last_contact_date
        return dataclasses.replace(
            p,
            status=status,
            enrolment_date=enrolled,
            death_date=death,
            death_cause=p.death_cause if death is not None else None,
            withdrawal_date=_on_or_before(p.withdrawal_date, cutoff),
            new_therapy_date=_on_or_before(p.new_therapy_date, cutoff),
            last_contact_date=min(last, cutoff) if last is not None else None,
        )

    def adverse_event(ae: d.AdverseEvent) -> d.AdverseEvent:
        if ae.resolution_date is not None and ae.resolution_date > cutoff:
            return dataclasses.replace(ae, resolution_date=None)
        return ae

    return TrialData(
        patients=[patient(p) for p in data.patients],
        screenings=[s for s in data.screenings if s.screening_date <= cutoff],
        adjudications=[a for a in data.adjudications if a.proposed_at.date() <= cutoff],
        lesions=list(data.lesions),
        courses=[c for c in data.courses if c.start_date <= cutoff],
        fractions=[f for f in data.fractions if f.date <= cutoff],
        cycles=[c for c in data.cycles if c.date <= cutoff],
        assessments=[a for a in data.assessments if a.assessment_date <= cutoff],
        adverse_events=[adverse_event(ae) for ae in data.adverse_events if ae.onset_date <= cutoff],
        answers=[a for a in data.answers if a.completed_on is None or a.completed_on <= cutoff],
        # An undated deviation (a lesion-role check, recorded with its plan) cannot be placed after the cut-off.
        deviations=[x for x in data.deviations if x.date is None or x.date <= cutoff],
    )
