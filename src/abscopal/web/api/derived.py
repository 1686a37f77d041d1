"""What the engines derive for one patient, read-only (web.md §4, §7): eligibility, RT checks, response, schedule.

Each route reads the patient's stored records and hands them to the engine the CLI uses — the eligibility
checklist and enrolment reasons of :func:`abscopal.services.enrolment.eligibility_of`, the radiotherapy plan
checks of :func:`abscopal.protocol.radiotherapy.check_plan`, the RECIST 1.1 / iRECIST derivation of
:func:`abscopal.response.derive_subject` with :func:`abscopal.response.find_discrepancies`, and the visit
calendar of :func:`abscopal.protocol.calendar.build_schedule` over
:func:`abscopal.store.schedule_input.schedule_input_from_records`. Nothing here decides a clinical question.
A patient account sees only its own questionnaires (web.md §1): the derived views are 404 for it.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from abscopal import domain as d
from abscopal.errors import AbscopalError, NotFound
from abscopal.protocol import calendar as cal
from abscopal.protocol import radiotherapy as rt
from abscopal.protocol import resistance
from abscopal.protocol.eligibility import CriterionResult
from abscopal.protocol.model import Protocol
from abscopal.response import Criteria, SubjectFacts, derive_subject, find_discrepancies
from abscopal.services.adjudication import current_adjudication
from abscopal.services.common import Action, Actor, StaffRole, protocol_of, protocols_or_bundled
from abscopal.services.enrolment import eligibility_of
from abscopal.services.ports import UnitOfWorkLike
from abscopal.store.records import Stored
from abscopal.web.context import Principal, reading, requires, state_of
from abscopal.web.records import visible_patient
from abscopal.web.trial_overview import patient_schedule

router = APIRouter(tags=["derived"])

Reader = Annotated[Principal, Depends(requires(Action.READ))]


def _clinical_patient(uow: UnitOfWorkLike, principal: Principal, subject_id: str) -> tuple[Stored[d.Patient], Actor]:
    """The patient for a derived view; a patient account is refused as if the patient did not exist."""
    patient, actor = visible_patient(uow, principal, subject_id)
    if actor.role is StaffRole.PATIENT:
        raise NotFound(f"No patient {subject_id!r} at your sites")
    return patient, actor


def _values(uow: UnitOfWorkLike, repository: str, subject_id: str) -> list[Any]:
    return [s.value for s in getattr(uow, repository).for_subject(subject_id)]


# --- eligibility


class CriterionOut(BaseModel):
    criterion_id: str
    section: str = Field(description="inclusion | exclusion")
    label: str
    status: str = Field(description="met | not_met | unknown (for an exclusion, met: the condition is present)")
    excludes: bool = Field(description="This criterion keeps the patient out (inclusion not met, exclusion met)")
    reason: str


class SignatureOut(BaseModel):
    username: str
    role: str
    signed_at: dt.datetime
    meaning: str


class AdjudicationState(BaseModel):
    id: str
    version: int
    etag: str
    classification: d.ResistanceType
    proposed_by: str
    proposed_at: dt.datetime
    signatures: list[SignatureOut]
    valid_signers: list[str] = Field(description="Distinct signers with the protocol's signer role")
    required_signatures: int
    effective: bool = Field(description="Signed by enough distinct deputy chief physicians")


class ProposedResistance(BaseModel):
    classification: d.ResistanceType
    reasons: list[str]
    exposure_days: int | None


class EnrolmentState(BaseModel):
    allowed: bool
    reasons: list[str] = Field(description="Every reason enrolment is refused (empty: the investigator may enrol)")


class EligibilityOut(BaseModel):
    subject_id: str
    protocol_version: str | None
    verdict: str | None = Field(description="eligible | ineligible | incomplete; null without a screening record")
    criteria: list[CriterionOut]
    proposed_resistance: ProposedResistance | None = Field(
        description="The resistance engine's class from the latest prior immunotherapy (what an adjudication proposes)"
    )
    adjudication: AdjudicationState | None
    enrolment: EnrolmentState


def _criterion(r: CriterionResult) -> CriterionOut:
    return CriterionOut(
        criterion_id=r.criterion_id, section=r.section, label=r.label, status=r.status.value, excludes=r.excludes,
        reason=r.reason,
    )  # fmt: skip


def _proposed(uow: UnitOfWorkLike, subject_id: str, protocol: Protocol) -> ProposedResistance | None:
    histories = sorted(uow.immunotherapy_histories.for_subject(subject_id), key=lambda s: s.value.start_date)
    if not histories:
        return None
    try:
        found = resistance.classify(histories[-1].value, protocol.resistance)
    except AbscopalError:  # an impossible date order: the history's own form names it; nothing to propose
        return None
    return ProposedResistance(
        classification=found.classification, reasons=list(found.reasons), exposure_days=found.exposure_days
    )


def _adjudication_state(stored: Stored[d.Adjudication] | None, protocol: Protocol) -> AdjudicationState | None:
    if stored is None:
        return None
    a, rules = stored.value, protocol.resistance
    return AdjudicationState(
        id=stored.id, version=stored.version, etag=stored.etag, classification=a.classification,
        proposed_by=a.proposed_by, proposed_at=a.proposed_at,
        signatures=[SignatureOut(username=s.username, role=s.role.value, signed_at=s.signed_at, meaning=s.meaning)
                    for s in a.signatures],
        valid_signers=resistance.valid_signers(a, rules), required_signatures=rules.required_signatures,
        effective=resistance.is_effective(a, rules),
    )  # fmt: skip


@router.get("/patients/{subject_id}/eligibility", summary="The eligibility checklist, adjudication and enrolment")
def eligibility(
    subject_id: str, request: Request, principal: Reader,
    on: Annotated[dt.date | None, Query(description="Evaluate under the protocol in force that day (default today)")]
    = None,
) -> EligibilityOut:  # fmt: skip
    protocols = protocols_or_bundled(state_of(request).protocols)
    with reading(request, principal) as uow:
        _, actor = _clinical_patient(uow, principal, subject_id)
        checklist, reasons = eligibility_of(uow, actor, subject_id, on=on, protocols=protocols)
        protocol = protocols.version_on(on or dt.date.today())
        return EligibilityOut(
            subject_id=subject_id,
            protocol_version=checklist.protocol_version if checklist else protocol.version.number,
            verdict=checklist.verdict.value if checklist else None,
            criteria=[_criterion(r) for r in (checklist.results if checklist else ())],
            proposed_resistance=_proposed(uow, subject_id, protocol),
            adjudication=_adjudication_state(current_adjudication(uow, subject_id), protocol),
            enrolment=EnrolmentState(allowed=not reasons, reasons=reasons),
        )


# --- radiotherapy


class RtCheckOut(BaseModel):
    check: str
    lesion_id: str | None
    ok: bool
    message: str
    deviation_class: str | None = Field(description="minor | major for a failed check; null when it passes")
    values: str


class LesionDoseOut(BaseModel):
    lesion_id: str
    role: d.RtRole
    alpha_beta_gy: float = Field(description="The α/β of this lesion's BED/EQD2 (its course's)")
    prescribed_gy: float
    prescribed_bed_gy: float
    prescribed_eqd2_gy: float
    delivered_gy: float
    delivered_bed_gy: float
    delivered_eqd2_gy: float
    late_alpha_beta_gy: float
    prescribed_bed_late_gy: float
    prescribed_eqd2_late_gy: float
    repopulation_loss_gy: float


class ProposedDeviationOut(BaseModel):
    lesion_id: str | None
    check: str
    deviation_class: str
    values: str
    reason: str


class RtChecksOut(BaseModel):
    subject_id: str
    protocol_version: str
    alpha_beta_tumour_gy: float
    alpha_beta_late_gy: float
    checks: list[RtCheckOut] = Field(description="Role rules per lesion, then prescription and delivery per course")
    doses: list[LesionDoseOut] = Field(description="Per lesion, never summed across lesions")
    deviations: list[ProposedDeviationOut] = Field(description="What the failed checks propose as deviations")


@router.get("/patients/{subject_id}/rt-checks", summary="Radiotherapy role and dose checks, BED/EQD2 per lesion")
def rt_checks(
    subject_id: str, request: Request, principal: Reader,
    conventional_selection: Annotated[str | None, Query(max_length=200, description="The CFRT selection flag")]
    = None,
) -> RtChecksOut:  # fmt: skip
    with reading(request, principal) as uow:
        patient, _ = _clinical_patient(uow, principal, subject_id)
        protocol = protocol_of(patient.value, state_of(request).protocols)
        lesions = _values(uow, "lesions", subject_id)
        courses = _values(uow, "radiotherapy_courses", subject_id)
        fractions = _values(uow, "fractions", subject_id)
    rules = protocol.radiotherapy
    report = rt.check_plan(
        subject_id, lesions, courses, fractions, rules, cal.WorkingDays(protocol.schedule.holidays_country),
        conventional_selection,
    )  # fmt: skip
    return RtChecksOut(
        subject_id=subject_id, protocol_version=protocol.version.number,
        alpha_beta_tumour_gy=rules.radiobiology.alpha_beta_tumour_gy,
        alpha_beta_late_gy=rules.radiobiology.alpha_beta_late_gy,
        checks=[RtCheckOut(check=str(c.check), lesion_id=c.lesion_id, ok=c.ok, message=c.message,
                           deviation_class=c.deviation_class.value if c.deviation_class else None, values=c.values)
                for c in report.checks],
        doses=[LesionDoseOut(**{f: getattr(x, f) for f in LesionDoseOut.model_fields}) for x in report.doses],
        deviations=[ProposedDeviationOut(lesion_id=x.lesion_id, check=str(x.check),
                                         deviation_class=x.deviation_class.value, values=x.values, reason=x.reason)
                    for x in report.deviations],
    )  # fmt: skip


# --- response


class TimepointOut(BaseModel):
    assessment_date: dt.date
    baseline: bool
    sum_mm: float | None = Field(description="Sum of the target diameters; null when a target was not measured")
    pct_from_baseline: float | None
    pct_from_nadir: float | None
    target: str | None
    non_target: str | None
    new_lesions: bool
    overall: str | None = Field(description="The derived overall response under the criteria (null at baseline)")
    iupd_triggers: str
    investigator: str | None = Field(description="The investigator's recorded response")
    discrepancy: bool = Field(description="The investigator's call differs from the derived response")
    discrepancy_reason: str | None


class ResponseOut(BaseModel):
    subject_id: str
    criteria: Criteria
    protocol_version: str
    reference_date: dt.date | None = Field(description="First study treatment (response-rules.md §4, §6)")
    timepoints: list[TimepointOut]
    best_overall_response: str | None
    best_overall_response_confirmed: str | None
    objective_response: bool | None
    disease_control: bool | None
    discrepancies: int
    notes: list[str]


@router.get("/patients/{subject_id}/response", summary="RECIST 1.1 / iRECIST per timepoint, BOR, investigator's call")
def response(
    subject_id: str, request: Request, principal: Reader,
    criteria: Annotated[Criteria | None, Query(description="irecist or recist11 (default: the protocol's)")] = None,
) -> ResponseOut:  # fmt: skip
    with reading(request, principal) as uow:
        patient, _ = _clinical_patient(uow, principal, subject_id)
        protocol = protocol_of(patient.value, state_of(request).protocols)
        assessments: list[d.TumourAssessment] = _values(uow, "assessments", subject_id)
        fractions = _values(uow, "fractions", subject_id)
        cycles = _values(uow, "immunotherapy_cycles", subject_id)
    p = patient.value
    crit = Criteria(criteria or protocol.response.criteria)
    reference = rt.first_study_treatment(fractions, cycles, p.enrolment_date)
    if not assessments:
        return ResponseOut(
            subject_id=subject_id, criteria=crit, protocol_version=protocol.version.number, reference_date=reference,
            timepoints=[], best_overall_response=None, best_overall_response_confirmed=None, objective_response=None,
            disease_control=None, discrepancies=0, notes=[f"{subject_id} has no tumour assessment yet"],
        )  # fmt: skip
    facts = SubjectFacts(subject_id, reference, p.death_date, p.new_therapy_date)
    derived = derive_subject(assessments, facts, protocol.response, crit)
    found = {x.assessment_date: x for x in find_discrepancies(assessments, derived)}
    given = {a.assessment_date: a.investigator_response for a in assessments}
    rows = []
    for i, t in enumerate(derived.timepoints):
        inv = given.get(t.assessment_date)
        disc = found.get(t.assessment_date)
        rows.append(
            TimepointOut(
                assessment_date=t.assessment_date, baseline=i == 0, sum_mm=t.sum_mm,
                pct_from_baseline=t.pct_from_baseline, pct_from_nadir=t.pct_from_nadir,
                target=str(t.target) if t.target is not None else None,
                non_target=str(t.non_target) if t.non_target is not None else None, new_lesions=t.new_lesions,
                overall=str(t.overall) if t.overall is not None else None, iupd_triggers=t.iupd_triggers,
                investigator=str(inv) if inv else None, discrepancy=disc is not None,
                discrepancy_reason=disc.reason if disc else None,
            )
        )  # fmt: skip
    return ResponseOut(
        subject_id=subject_id, criteria=crit, protocol_version=protocol.version.number,
        reference_date=derived.reference_date, timepoints=rows, best_overall_response=str(derived.bor),
        best_overall_response_confirmed=str(derived.bor_confirmed), objective_response=derived.objective_response,
        disease_control=derived.disease_control, discrepancies=len(found), notes=list(derived.notes),
    )  # fmt: skip


# --- schedule


class VisitOut(BaseModel):
    kind: str = Field(description="cfrt_fraction | ldrt_fraction | immunotherapy | tumour_assessment | ...")
    number: int
    due: dt.date | None = Field(description="The planned date (null: an unscheduled visit)")
    window_start: dt.date | None
    window_end: dt.date | None
    actual: dt.date | None
    status: str = Field(
        description="done | done_out_of_window | overdue | due (its window is open: due soon) | upcoming | "
        "unscheduled | not_expected"
    )
    note: str


class ScheduleOut(BaseModel):
    subject_id: str
    as_of: dt.date
    holidays_country: str | None
    visits: list[VisitOut]
    overdue: int
    due: int
    off_study: dt.date | None
    off_study_reason: str
    note: str = Field("", description="Why there is no calendar (e.g. the patient is not enrolled)")


@router.get("/patients/{subject_id}/schedule", summary="The visit calendar: due dates, windows, done/overdue/due")
def schedule(
    subject_id: str, request: Request, principal: Reader,
    as_of: Annotated[dt.date | None, Query(description="The calendar as known on this day (default today)")] = None,
) -> ScheduleOut:  # fmt: skip
    day = as_of or dt.date.today()
    with reading(request, principal) as uow:
        patient, _ = _clinical_patient(uow, principal, subject_id)
        result = patient_schedule(uow, patient.value, state_of(request).protocols, day)
    if result is None:
        return ScheduleOut(
            subject_id=subject_id, as_of=day, holidays_country=None, visits=[], overdue=0, due=0, off_study=None,
            off_study_reason="", note=f"{subject_id} is not enrolled, so has no treatment calendar yet",
        )  # fmt: skip
    visits = [
        VisitOut(kind=v.kind.value, number=v.number, due=v.planned, window_start=v.window_start,
                 window_end=v.window_end, actual=v.actual, status=v.status(day).value, note=v.not_expected or v.note)
        for v in result.visits
    ]  # fmt: skip
    return ScheduleOut(
        subject_id=subject_id, as_of=day, holidays_country=result.country, visits=visits,
        overdue=sum(v.status == cal.VisitStatus.OVERDUE.value for v in visits),
        due=sum(v.status == cal.VisitStatus.DUE.value for v in visits), off_study=result.off_study,
        off_study_reason=result.off_study_reason,
    )  # fmt: skip
