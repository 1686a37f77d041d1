"""What ``abscopal schedule PATIENT_ID`` needs from the database: one patient's plan and actual dates."""

from __future__ import annotations

from abscopal import domain as d
from abscopal.errors import ValidationError
from abscopal.protocol.calendar import ScheduleInput
from abscopal.protocol.radiotherapy import delivered_fractions
from abscopal.store.database import make_engine, require_schema
from abscopal.store.repository import Repository


def schedule_input_from_records(
    patient: d.Patient,
    courses: list[d.RadiotherapyCourse],
    fractions: list[d.Fraction],
    cycles: list[d.ImmunotherapyCycle],
    assessments: list[d.TumourAssessment],
    answers: list[d.QuestionnaireAnswer],
) -> ScheduleInput:
    """Assemble the calendar's input from stored records (pure; the loader below does the reading)."""
    if patient.enrolment_date is None:
        raise ValidationError("patient", f"{patient.subject_id} is not enrolled, so has no treatment calendar")
    enrolled = patient.enrolment_date
    cfrt = [c for c in courses if c.role is d.RtRole.CONVENTIONAL]
    ldrt = [c for c in courses if c.role is d.RtRole.LOW_DOSE]
    cfrt_lesions = {c.lesion_id for c in cfrt}
    ldrt_lesions = {c.lesion_id for c in ldrt}
    delivered = delivered_fractions(fractions)
    return ScheduleInput(
        patient_id=patient.subject_id,
        enrolment_date=enrolled,
        cfrt_fractions=max((c.fractions for c in cfrt), default=0),
        cfrt_start=min((c.start_date for c in cfrt), default=None),
        cfrt_delivered=tuple(sorted({f.date for f in delivered if f.lesion_id in cfrt_lesions})),
        ldrt_fractions=max((c.fractions for c in ldrt), default=0),
        ldrt_start=min((c.start_date for c in ldrt), default=None),
        ldrt_delivered=tuple(sorted({f.date for f in delivered if f.lesion_id in ldrt_lesions})),
        immunotherapy_start=min((c.date for c in cycles), default=None),
        immunotherapy_given=tuple(sorted(c.date for c in cycles if c.given)),
        assessments=tuple(sorted(a.assessment_date for a in assessments if a.assessment_date > enrolled)),
        questionnaires=tuple(sorted({a.completed_on for a in answers if a.completed_on is not None})),
        # A new anticancer therapy ends study treatment (follow-up visits begin); death and withdrawal end every
        # visit, which the calendar shows as not expected rather than as follow-up due after death.
        end_of_treatment=patient.new_therapy_date,
        death_date=patient.death_date,
        withdrawal_date=patient.withdrawal_date,
    )


def load_schedule_input(patient_id: str, database_url: str | None = None) -> ScheduleInput:
    """Read one patient's records from the database (``ABSCOPAL_DATABASE_URL`` by default), opened read-only."""
    engine = make_engine(database_url, read_only=True)
    require_schema(engine)
    with engine.connect() as conn:
        repo = Repository(conn)
        patient = repo.patient(patient_id)
        result = schedule_input_from_records(
            patient,
            repo.for_subject(d.RadiotherapyCourse, patient_id),
            repo.for_subject(d.Fraction, patient_id),
            repo.for_subject(d.ImmunotherapyCycle, patient_id),
            repo.for_subject(d.TumourAssessment, patient_id),
            repo.for_subject(d.QuestionnaireAnswer, patient_id),
        )
    engine.dispose()
    return result
