"""Reading PATIENT.json, PLAN.json and SCHEDULE.json (docs/eligibility.md, docs/radiotherapy.md) into domain objects.

pydantic validates each file; every problem is collected and reported with its field path
(``lesions[2].rt_role: Input should be 'conventional', ...``) in one :class:`~abscopal.errors.InputFileError`.
The engines never read files; the CLI (and later the web) call these loaders.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from abscopal.domain import (
    Adjudication,
    BestResponseOnIO,
    DietLevel,
    Fraction,
    FractionStatus,
    Histology,
    ImmunotherapyHistory,
    LabValue,
    Lesion,
    LesionClass,
    RadiotherapyCourse,
    ResistanceType,
    Role,
    RtRole,
    Screening,
    Signature,
)
from abscopal.errors import InputFileError, Problem, ValidationError
from abscopal.inputs import read_json_object
from abscopal.protocol import units
from abscopal.protocol.calendar import ScheduleInput
from abscopal.protocol.eligibility import age_on
from abscopal.protocol.resistance import validate_history


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------------------- PATIENT.json


class LabModel(_Model):
    value: float
    unit: str = Field(min_length=1)
    uln: float | None = Field(default=None, gt=0)


class ImmunotherapyModel(_Model):
    agent: str = Field(min_length=1)
    start_date: dt.date
    last_dose_date: dt.date | None = None
    best_response: BestResponseOnIO | None = None
    progression_date: dt.date | None = None
    progression_confirmed_date: dt.date | None = None
    lines_of_therapy: int = Field(default=1, ge=1)


class SignatureModel(_Model):
    username: str = Field(min_length=1)
    role: Role
    signed_at: dt.datetime
    meaning: str = "I confirm the classification"


class AdjudicationModel(_Model):
    classification: ResistanceType
    proposed_by: str = Field(min_length=1)
    proposed_at: dt.datetime
    signatures: list[SignatureModel] = Field(default_factory=list)


class PatientModel(_Model):
    """PATIENT.json: the screening data the eligibility criteria read; absent or null means not recorded."""

    subject_id: str = Field(min_length=1)
    screening_date: dt.date
    birth_date: dt.date | None = None
    consent_date: dt.date | None = None
    age_years: int | None = Field(default=None, ge=0, le=130)
    ecog: int | None = Field(default=None, ge=0, le=5)
    life_expectancy_months: float | None = Field(default=None, ge=0)
    diet: DietLevel | None = None
    severe_allergy_history: bool | None = None
    labs: dict[str, LabModel] = Field(default_factory=dict)
    histology: Histology | None = None
    histology_confirmed_by: Literal["cytology", "histology", "clinical"] | None = None
    lesion_count: int | None = Field(default=None, ge=0)
    metastatic_organ_count: int | None = Field(default=None, ge=0)
    has_measurable_disease: bool | None = None
    immunotherapy_resistance_confirmed: bool | None = None
    no_standard_treatment_option: bool | None = None
    refuses_cooperation: bool | None = None
    other_trial_within_3_months: bool | None = None
    brain_metastases: bool | None = None
    investigator_judges_unsuitable: bool | None = None
    severe_infection: bool | None = None
    serious_comorbidity: bool | None = None
    prior_immune_related_toxicity: bool | None = None
    prior_radiotherapy: bool | None = None
    immunotherapy: ImmunotherapyModel | None = None
    adjudication: AdjudicationModel | None = None


@dataclass(frozen=True)
class PatientInput:
    screening: Screening
    immunotherapy: ImmunotherapyHistory | None
    adjudication: Adjudication | None


def _field(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _problems(exc: pydantic.ValidationError) -> list[Problem]:
    problems = []
    for err in exc.errors():
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field (a typo?)"
        elif err["type"] == "missing":
            message = "required field is missing"
        problems.append(Problem(None, _field(err["loc"]), message))
    return problems


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], path: Path) -> M:
    data = read_json_object(path)
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise InputFileError(str(path), _problems(exc)) from None


def patient_from_model(m: PatientModel, path: str = "<patient>") -> PatientInput:
    """Domain objects from a validated PATIENT.json; unit and date-order problems are collected too."""
    problems: list[Problem] = []
    labs: dict[str, LabValue] = {}
    for name, lab in m.labs.items():
        if name in units.LAB_FAMILY:
            try:
                units.factor(name, lab.unit)
            except ValidationError as exc:
                problems.append(Problem(None, exc.field, exc.reason))
        labs[name] = LabValue(lab.value, lab.unit, lab.uln)
    age = m.age_years
    if age is None and m.birth_date is not None:
        try:
            age = age_on(m.birth_date, m.screening_date)
        except ValidationError as exc:
            problems.append(Problem(None, exc.field, exc.reason))
    history = None
    if m.immunotherapy is not None:
        io = m.immunotherapy
        history = ImmunotherapyHistory(
            m.subject_id,
            io.agent,
            io.start_date,
            io.last_dose_date,
            io.best_response,
            io.progression_date,
            io.progression_confirmed_date,
            io.lines_of_therapy,
        )
        try:
            validate_history(history)
        except ValidationError as exc:
            problems.append(Problem(None, exc.field, exc.reason))
    adjudication = None
    if m.adjudication is not None:
        a = m.adjudication
        adjudication = Adjudication(
            m.subject_id,
            a.classification,
            a.proposed_by,
            a.proposed_at,
            tuple(Signature(s.username, s.role, s.signed_at, s.meaning) for s in a.signatures),
        )
    if problems:
        raise InputFileError(path, problems)
    fields: dict[str, Any] = m.model_dump(exclude={"labs", "immunotherapy", "adjudication", "birth_date"})
    fields["age_years"] = age
    fields["diet"] = m.diet
    fields["histology"] = m.histology
    return PatientInput(Screening(**fields, labs=labs), history, adjudication)


def load_patient(path: str | Path) -> PatientInput:
    p = Path(path)
    return patient_from_model(_parse(PatientModel, p), str(p))


# ----------------------------------------------------------------------------- PLAN.json


class LesionModel(_Model):
    lesion_id: str = Field(min_length=1)
    organ: str = Field(min_length=1)
    location: str = ""
    is_node: bool = False
    measurable: bool = True
    baseline_diameter_mm: float | None = Field(default=None, gt=0)
    rt_role: RtRole
    lesion_class: LesionClass = LesionClass.TARGET
    is_primary: bool = False
    is_symptomatic: bool = False
    label: str | None = None


class CourseModel(_Model):
    lesion_id: str = Field(min_length=1)
    role: RtRole | None = None
    dose_per_fraction_gy: float = Field(gt=0)
    fractions: int = Field(gt=0)
    total_dose_gy: float | None = Field(default=None, gt=0)
    start_date: dt.date
    alpha_beta_gy: float | None = Field(default=None, gt=0)
    completed: bool | None = None
    plan_label: str | None = None


class FractionModel(_Model):
    lesion_id: str = Field(min_length=1)
    fraction_number: int = Field(ge=1)
    date: dt.date
    dose_gy: float = Field(ge=0)
    status: FractionStatus = FractionStatus.DELIVERED


class PlanModel(_Model):
    """PLAN.json: the lesion registry with roles, the prescriptions, and the fractions delivered so far."""

    subject_id: str = Field(min_length=1)
    conventional_selection: Literal["primary", "largest", "symptomatic"] | None = None
    lesions: list[LesionModel] = Field(min_length=1)
    courses: list[CourseModel] = Field(default_factory=list)
    fractions: list[FractionModel] = Field(default_factory=list)


@dataclass(frozen=True)
class PlanInput:
    subject_id: str
    lesions: tuple[Lesion, ...]
    courses: tuple[RadiotherapyCourse, ...]
    fractions: tuple[Fraction, ...]
    conventional_selection: str | None
    completed: frozenset[str] | None


def plan_from_model(m: PlanModel, alpha_beta_tumour_gy: float, path: str = "<plan>") -> PlanInput:
    """Domain objects from a validated PLAN.json: a course's role defaults to its lesion's, α/β to the protocol's."""
    problems: list[Problem] = []
    roles: dict[str, RtRole] = {}
    for i, lesion in enumerate(m.lesions):
        if lesion.lesion_id in roles:
            if roles[lesion.lesion_id] is not lesion.rt_role:
                reason = (
                    f"lesion {lesion.lesion_id} is listed as {roles[lesion.lesion_id].value} and as "
                    f"{lesion.rt_role.value}; a lesion has exactly one role"
                )
                problems.append(Problem(None, f"lesions[{i}].rt_role", reason))
            else:
                problems.append(Problem(None, f"lesions[{i}].lesion_id", f"lesion {lesion.lesion_id} is listed twice"))
        roles.setdefault(lesion.lesion_id, lesion.rt_role)
    lesions = tuple(
        Lesion(
            m.subject_id,
            x.lesion_id,
            x.organ,
            x.location,
            x.is_node,
            x.measurable,
            x.baseline_diameter_mm,
            x.rt_role,
            x.lesion_class,
            x.is_primary,
            x.is_symptomatic,
            x.label,
        )
        for x in m.lesions
    )
    courses = []
    for i, c in enumerate(m.courses):
        role = roles.get(c.lesion_id)
        if role is None:
            problems.append(Problem(None, f"courses[{i}].lesion_id", f"lesion {c.lesion_id} is not in lesions"))
            continue
        if c.role is not None and c.role is not role:
            problems.append(
                Problem(
                    None,
                    f"courses[{i}].role",
                    f"lesion {c.lesion_id} is {role.value} in lesions but this course is {c.role.value}; "
                    "a lesion has exactly one role",
                )
            )
            continue
        if c.total_dose_gy is not None and abs(c.dose_per_fraction_gy * c.fractions - c.total_dose_gy) > (
            0.01 * c.total_dose_gy
        ):
            problems.append(
                Problem(
                    None,
                    f"courses[{i}].total_dose_gy",
                    f"{c.total_dose_gy:g} Gy is not {c.dose_per_fraction_gy:g} Gy x {c.fractions} = "
                    f"{c.dose_per_fraction_gy * c.fractions:g} Gy (fractions = total / dose per fraction)",
                )
            )
        courses.append(
            RadiotherapyCourse(
                m.subject_id,
                c.lesion_id,
                role,
                c.dose_per_fraction_gy,
                c.fractions,
                c.start_date,
                c.alpha_beta_gy or alpha_beta_tumour_gy,
                c.plan_label,
            )
        )
    for i, f in enumerate(m.fractions):
        if f.lesion_id not in roles:
            problems.append(Problem(None, f"fractions[{i}].lesion_id", f"lesion {f.lesion_id} is not in lesions"))
    if problems:
        raise InputFileError(path, problems)
    fractions = tuple(
        Fraction(m.subject_id, f.lesion_id, f.fraction_number, f.date, f.dose_gy, f.status) for f in m.fractions
    )
    flags = {c.lesion_id: c.completed for c in m.courses if c.completed is not None}
    completed: frozenset[str] | None = None
    if flags:
        # explicit flags win; other courses count as completed once all their fractions are recorded
        done = {k for k, v in flags.items() if v}
        for course in courses:
            if course.lesion_id not in flags:
                given = [
                    f for f in fractions if f.lesion_id == course.lesion_id and f.status is not FractionStatus.MISSED
                ]
                if len(given) >= course.fractions:
                    done.add(course.lesion_id)
        completed = frozenset(done)
    return PlanInput(m.subject_id, lesions, tuple(courses), fractions, m.conventional_selection, completed)


def load_plan(path: str | Path, alpha_beta_tumour_gy: float) -> PlanInput:
    p = Path(path)
    return plan_from_model(_parse(PlanModel, p), alpha_beta_tumour_gy, str(p))


# ----------------------------------------------------------------------------- SCHEDULE.json


class SeriesModel(_Model):
    fractions: int = Field(default=0, ge=0)
    start_date: dt.date | None = None
    delivered: list[dt.date] = Field(default_factory=list)


class ImmunotherapyScheduleModel(_Model):
    start_date: dt.date | None = None
    given: list[dt.date] = Field(default_factory=list)


class ScheduleModel(_Model):
    """SCHEDULE.json: the plan from enrolment and the actual dates so far."""

    patient_id: str = Field(min_length=1)
    enrolment_date: dt.date
    conventional: SeriesModel = SeriesModel()
    low_dose: SeriesModel = SeriesModel()
    immunotherapy: ImmunotherapyScheduleModel = ImmunotherapyScheduleModel()
    assessments: list[dt.date] = Field(default_factory=list)
    questionnaires: list[dt.date] = Field(default_factory=list)
    follow_ups: list[dt.date] = Field(default_factory=list)
    end_of_treatment: dt.date | None = None


def schedule_from_model(m: ScheduleModel, path: str = "<schedule>") -> ScheduleInput:
    problems: list[Problem] = []
    seen: set[dt.date] = set()
    for i, d in enumerate(m.conventional.delivered):
        if d in seen:
            problems.append(Problem(None, f"conventional.delivered[{i}]", f"a second conventional fraction on {d}"))
        seen.add(d)
    if m.end_of_treatment is not None and m.end_of_treatment < m.enrolment_date:
        problems.append(Problem(None, "end_of_treatment", f"{m.end_of_treatment} is before enrolment"))
    if problems:
        raise InputFileError(path, problems)
    return ScheduleInput(
        patient_id=m.patient_id,
        enrolment_date=m.enrolment_date,
        cfrt_fractions=m.conventional.fractions,
        cfrt_start=m.conventional.start_date,
        cfrt_delivered=tuple(m.conventional.delivered),
        ldrt_fractions=m.low_dose.fractions,
        ldrt_start=m.low_dose.start_date,
        ldrt_delivered=tuple(m.low_dose.delivered),
        immunotherapy_start=m.immunotherapy.start_date,
        immunotherapy_given=tuple(m.immunotherapy.given),
        assessments=tuple(m.assessments),
        questionnaires=tuple(m.questionnaires),
        follow_ups=tuple(m.follow_ups),
        end_of_treatment=m.end_of_treatment,
    )


def load_schedule(path: str | Path) -> ScheduleInput:
    p = Path(path)
    return schedule_from_model(_parse(ScheduleModel, p), str(p))
