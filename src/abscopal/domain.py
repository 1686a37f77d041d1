"""The trial's domain model: plain, typed, immutable values with no database or web inside.

Engines (eligibility, response, safety, quality of life, statistics) take these objects and return
derived results; the store maps them to tables and back; the web and the CLI show them. Codes are enums
so that a typo is an error, not a silent new category.
"""

from __future__ import annotations

import datetime as dt
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

# --- codes


class Role(StrEnum):
    """What a user does in the trial; permissions and adjudication depend on it."""

    COORDINATOR = "coordinator"
    INVESTIGATOR = "investigator"  # attending physician; a site PI is an investigator (web.md §1)
    RADIATION_ONCOLOGIST = "radiation_oncologist"
    DEPUTY_CHIEF_PHYSICIAN = "deputy_chief_physician"
    RADIOLOGIST = "radiologist"
    DATA_MANAGER = "data_manager"
    MONITOR = "monitor"
    STATISTICIAN = "statistician"
    PATIENT = "patient"
    ADMIN = "admin"
    DCP = "deputy_chief_physician"  # the short names of web.md §2 (aliases of the same members)
    RADONC = "radiation_oncologist"


class Sex(StrEnum):
    FEMALE = "F"
    MALE = "M"
    UNKNOWN = "U"


class PatientStatus(StrEnum):
    """Where a person is on the trial path, from screening to the end of follow-up."""

    SCREENING = "screening"
    SCREEN_FAILED = "screen_failed"
    ENROLLED = "enrolled"
    ON_TREATMENT = "on_treatment"
    FOLLOW_UP = "follow_up"
    WITHDRAWN = "withdrawn"
    LOST_TO_FOLLOW_UP = "lost_to_follow_up"
    DIED = "died"
    COMPLETED = "completed"


class Histology(StrEnum):
    """The five NSCLC histologies of inclusion criterion 7, plus 'other' to record a screen failure."""

    ADENOCARCINOMA = "adenocarcinoma"
    LARGE_CELL = "large_cell_carcinoma"
    SQUAMOUS = "squamous_cell_carcinoma"
    ADENOSQUAMOUS = "adenosquamous_carcinoma"
    SARCOMATOID = "sarcomatoid_carcinoma"
    SMALL_CELL = "small_cell_carcinoma"
    OTHER = "other"


class DietLevel(StrEnum):
    """Oral intake, ordered; inclusion criterion 4 asks for at least a liquid diet."""

    NONE = "none"
    LIQUID = "liquid"
    SEMI_LIQUID = "semi_liquid"
    SOFT = "soft"
    NORMAL = "normal"


class RtRole(StrEnum):
    """A lesion's radiotherapy role (../shared/specs/radiotherapy.md §1)."""

    CONVENTIONAL = "conventional"
    LOW_DOSE = "low_dose"
    OBSERVATION = "observation"
    NONE = "none"


class LesionClass(StrEnum):
    """RECIST category of a lesion, fixed at first sight (a class change is an input error)."""

    TARGET = "target"
    NON_TARGET = "non_target"
    NEW = "new"


class LesionStatus(StrEnum):
    """Qualitative status of a non-target or unmeasured new lesion (response-rules.md §7)."""

    ABSENT = "absent"
    PRESENT = "present"
    INCREASED = "increased"
    UNEQUIVOCAL_PROGRESSION = "unequivocal_progression"


class ResistanceType(StrEnum):
    """Immunotherapy resistance class (registry record; SITC consensus, Kluger et al. 2020)."""

    PRIMARY = "primary"
    ACQUIRED = "acquired"
    NOT_RESISTANT = "not_resistant"
    UNDETERMINED = "undetermined"


class BestResponseOnIO(StrEnum):
    """Best response achieved on prior immunotherapy, by RECIST 1.1."""

    CR = "CR"
    PR = "PR"
    SD = "SD"
    PD = "PD"
    NE = "NE"


class FractionStatus(StrEnum):
    DELIVERED = "delivered"
    PARTIAL = "partial"
    MISSED = "missed"


class DeviationClass(StrEnum):
    MINOR = "minor"
    MAJOR = "major"


class Attribution(StrEnum):
    """NCI/CTEP five-level attribution of an adverse event to an agent."""

    UNRELATED = "unrelated"
    UNLIKELY = "unlikely"
    POSSIBLE = "possible"
    PROBABLE = "probable"
    DEFINITE = "definite"


class AeOutcome(StrEnum):
    """CDISC AEOUT."""

    RECOVERED = "recovered"
    RECOVERING = "recovering"
    NOT_RECOVERED = "not_recovered"
    RECOVERED_WITH_SEQUELAE = "recovered_with_sequelae"
    FATAL = "fatal"
    UNKNOWN = "unknown"


class AeAction(StrEnum):
    """CDISC AEACN, for the immunotherapy."""

    DOSE_NOT_CHANGED = "dose_not_changed"
    DRUG_INTERRUPTED = "drug_interrupted"
    DRUG_WITHDRAWN = "drug_withdrawn"
    NOT_APPLICABLE = "not_applicable"
    UNKNOWN = "unknown"


class Instrument(StrEnum):
    QLQ_C30 = "QLQ-C30"
    QLQ_LC13 = "QLQ-LC13"


class QueryStatus(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    CLOSED = "closed"


class HistologyConfirmation(StrEnum):
    """How the NSCLC diagnosis of inclusion criterion 7 was confirmed (pathology report)."""

    CYTOLOGY = "cytology"
    HISTOLOGY = "histology"
    CLINICAL = "clinical"


class InvestigatorResponse(StrEnum):
    """A response as an investigator records it: RECIST 1.1 (Eisenhauer 2009, table 1) or iRECIST (Seymour 2017,
    table 2) codes, the spellings of ``abscopal.response.codes`` (response-rules.md §4, §5)."""

    CR = "CR"
    PR = "PR"
    SD = "SD"
    NON_CR_NON_PD = "NonCR/NonPD"
    PD = "PD"
    ICR = "iCR"
    IPR = "iPR"
    ISD = "iSD"
    INN = "iNN"
    IUPD = "iUPD"
    ICPD = "iCPD"
    NE = "NE"

    @classmethod
    def parse(cls, text: str) -> InvestigatorResponse | None:
        """The code for ``text`` in any case and spacing ("icpd", "Non-CR/Non-PD"); None when it is no code."""
        key = text.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
        return next((m for m in cls if m.value.lower() == key), None)


class DeviationCheck(StrEnum):
    """The radiotherapy engine's checks (abscopal.protocol.radiotherapy; radiotherapy.md §1-2): a failed one
    proposes a :class:`ProtocolDeviation` with this code."""

    CONVENTIONAL_COUNT = "conventional.count"
    LOW_DOSE_COUNT = "low_dose.count"
    OBSERVATION_MEASURABLE = "observation.measurable"
    OBSERVATION_IRRADIATED = "observation.irradiated"
    LIMITS_LESIONS = "limits.lesions"
    LIMITS_ORGANS = "limits.organs"
    CONVENTIONAL_SELECTION = "conventional.selection"
    CFRT_PRESCRIPTION = "cfrt.prescription"
    LDRT_DOSE_PER_FRACTION = "ldrt.dose_per_fraction"
    LDRT_FRACTIONS = "ldrt.fractions"
    DELIVERED_TOTAL = "delivered_total"
    CFRT_DELIVERED_DOSE_PER_FRACTION = "cfrt.delivered_dose_per_fraction"
    CFRT_WORKING_DAY = "cfrt.working_day"
    CFRT_FRACTIONS_PER_DAY = "cfrt.fractions_per_day"
    CFRT_OVERALL_TIME = "cfrt.overall_time"
    LDRT_DELIVERED_DOSE_PER_FRACTION = "ldrt.delivered_dose_per_fraction"
    LDRT_INTERVAL = "ldrt.interval"
    UNPRESCRIBED_IRRADIATION = "unprescribed_irradiation"


# --- partial dates


@dataclass(frozen=True, slots=True)
class PartialDate:
    """A date known to the year, or to the month, or to the day (ISO 8601 reduced precision: "2021",
    "2021-03", "2021-03-14"), as patients remember their history (CDISC SDTM ``--STDTC`` partial dates).

    There is no total order: compare bounds. :meth:`earliest` and :meth:`latest` are the first and last days
    the value may mean; ``a`` is surely before ``b`` when ``a.latest() < b.earliest()``.
    """

    year: int
    month: int | None = None
    day: int | None = None

    def __post_init__(self) -> None:
        if self.day is not None and self.month is None:
            raise ValueError("a day needs a month")
        dt.date(self.year, self.month or 1, self.day or 1)  # raises ValueError for an impossible date

    @classmethod
    def parse(cls, text: str) -> PartialDate:
        """Read "YYYY", "YYYY-MM" or "YYYY-MM-DD"; anything else raises ValueError."""
        parts = text.strip().split("-")
        if not 1 <= len(parts) <= 3 or [len(p) for p in parts] != [4, 2, 2][: len(parts)]:
            raise ValueError(f"{text!r} is not a date (YYYY, YYYY-MM or YYYY-MM-DD)")
        if not all(p.isdigit() and p.isascii() for p in parts):
            raise ValueError(f"{text!r} is not a date (YYYY, YYYY-MM or YYYY-MM-DD)")
        numbers = [int(p) for p in parts] + [None, None]
        try:
            return cls(numbers[0], numbers[1], numbers[2])  # type: ignore[arg-type]
        except ValueError:
            raise ValueError(f"{text!r} is not a date (no such day)") from None

    @classmethod
    def of(cls, date: dt.date) -> PartialDate:
        return cls(date.year, date.month, date.day)

    @property
    def complete(self) -> bool:
        return self.day is not None

    def earliest(self) -> dt.date:
        """The first day this value may mean (1 January, or the 1st of the month)."""
        return dt.date(self.year, self.month or 1, self.day or 1)

    def latest(self) -> dt.date:
        """The last day this value may mean (31 December, or the last day of the month)."""
        if self.month is None:
            return dt.date(self.year, 12, 31)
        if self.day is not None:
            return dt.date(self.year, self.month, self.day)
        following = dt.date(self.year + self.month // 12, self.month % 12 + 1, 1)
        return following - dt.timedelta(days=1)

    def __str__(self) -> str:
        text = f"{self.year:04d}"
        if self.month is not None:
            text += f"-{self.month:02d}"
        if self.day is not None:
            text += f"-{self.day:02d}"
        return text


# --- people

#: The trial's time zone for a site without its own (NCT05906329's sites are in China): dates are shown in it and
#: "today" at such a site is its day (web.md §8).
DEFAULT_TIME_ZONE = "Asia/Shanghai"


@dataclass(frozen=True, slots=True)
class Site:
    code: str
    name: str
    country: str = "CN"
    time_zone: str | None = None  # IANA name; dates are shown in it (web.md §8); None = the trial's default


@dataclass(frozen=True, slots=True)
class User:
    username: str
    full_name: str
    role: Role
    site_code: str | None = None


@dataclass(frozen=True, slots=True)
class Patient:
    """A person screened for the trial; ``protocol_version`` is the version they were enrolled under."""

    subject_id: str
    site_code: str
    sex: Sex
    birth_date: dt.date
    protocol_version: str
    status: PatientStatus = PatientStatus.SCREENING
    enrolment_date: dt.date | None = None
    death_date: dt.date | None = None
    death_cause: str | None = None
    withdrawal_date: dt.date | None = None
    new_therapy_date: dt.date | None = None
    last_contact_date: dt.date | None = None
    # interop.md §9 G1: the hospital's patient ID is a direct identifier (DICOM identity check only; never in
    # pseudonymised views or exports); race and ethnicity as collected (SDTM DM); why the patient withdrew
    hospital_id: str | None = None
    race: str | None = None
    ethnicity: str | None = None
    withdrawal_reason: str | None = None


# --- screening


@dataclass(frozen=True, slots=True)
class LabValue:
    """A laboratory result as the clinician wrote it: value, unit, and the site's upper limit of normal."""

    value: float
    unit: str
    uln: float | None = None
    lln: float | None = None  # lower limit of normal (interop.md §9 G5: LBORNRLO, LBNRIND)


@dataclass(frozen=True, slots=True)
class Screening:
    """Everything the eligibility criteria read. ``None`` means "not recorded" (criterion unknown)."""

    subject_id: str
    screening_date: dt.date
    consent_date: dt.date | None = None
    age_years: int | None = None
    ecog: int | None = None
    life_expectancy_months: float | None = None
    diet: DietLevel | None = None
    severe_allergy_history: bool | None = None
    labs: dict[str, LabValue] = field(default_factory=dict)
    histology: Histology | None = None
    histology_confirmed_by: HistologyConfirmation | None = None
    lesion_count: int | None = None
    metastatic_organ_count: int | None = None
    has_measurable_disease: bool | None = None
    immunotherapy_resistance_confirmed: bool | None = None
    no_standard_treatment_option: bool | None = None
    # exclusions: True means the exclusion condition is present
    refuses_cooperation: bool | None = None
    other_trial_within_3_months: bool | None = None
    brain_metastases: bool | None = None
    investigator_judges_unsuitable: bool | None = None
    severe_infection: bool | None = None
    serious_comorbidity: bool | None = None
    prior_immune_related_toxicity: bool | None = None
    prior_radiotherapy: bool | None = None
    screen_failure_reason: str | None = None


# --- immunotherapy


@dataclass(frozen=True, slots=True)
class ImmunotherapyHistory:
    """Prior immunotherapy before the trial, the data from which resistance is classified."""

    subject_id: str
    agent: str
    start_date: dt.date
    last_dose_date: dt.date | None
    best_response: BestResponseOnIO | None
    progression_date: dt.date | None
    progression_confirmed_date: dt.date | None = None
    lines_of_therapy: int = 1
    start_date_reported: str | None = None  # as recorded when only partly known ("2021-03"; PartialDate)


@dataclass(frozen=True, slots=True)
class ImmunotherapyCycle:
    subject_id: str
    cycle_number: int
    date: dt.date
    agent: str
    given: bool = True
    dose: float | None = None  # interop.md §9 G2 (SDTM EXDOSE/EXDOSU/EXROUTE)
    dose_unit: str | None = None  # as written, e.g. "mg" or "mg/kg"
    route: str | None = None  # e.g. "intravenous"


@dataclass(frozen=True, slots=True)
class Signature:
    username: str
    role: Role
    signed_at: dt.datetime
    meaning: str = "I confirm the classification"


@dataclass(frozen=True, slots=True)
class Adjudication:
    """A resistance classification awaiting (or holding) the signatures the protocol requires."""

    subject_id: str
    classification: ResistanceType
    proposed_by: str
    proposed_at: dt.datetime
    signatures: tuple[Signature, ...] = ()


# --- lesions & RT


@dataclass(frozen=True, slots=True)
class Lesion:
    """A lesion identified at baseline (or later, for new lesions) and its radiotherapy role."""

    subject_id: str
    lesion_id: str
    organ: str
    location: str
    is_node: bool
    measurable: bool
    baseline_diameter_mm: float | None
    rt_role: RtRole
    lesion_class: LesionClass = LesionClass.TARGET
    is_primary: bool = False
    is_symptomatic: bool = False
    label: str | None = None
    laterality: str | None = None  # interop.md §9 G4: "left", "right", "bilateral" (SDTM TULAT)


@dataclass(frozen=True, slots=True)
class RadiotherapyCourse:
    """A prescription for one lesion: dose per fraction (Gy) x number of fractions."""

    subject_id: str
    lesion_id: str
    role: RtRole
    dose_per_fraction_gy: float
    fractions: int
    start_date: dt.date
    alpha_beta_gy: float = 10.0
    plan_label: str | None = None
    # interop.md §9 G8: where the prescription came from (DICOM RT Plan)
    plan_uid: str | None = None  # the RT Plan's SOPInstanceUID
    fraction_group: int | None = None  # FractionGroupNumber
    dose_reference: int | None = None  # DoseReferenceNumber of the target

    @property
    def total_dose_gy(self) -> float:
        return self.dose_per_fraction_gy * self.fractions


@dataclass(frozen=True, slots=True)
class Fraction:
    subject_id: str
    lesion_id: str
    fraction_number: int
    date: dt.date
    dose_gy: float
    status: FractionStatus = FractionStatus.DELIVERED
    record_uid: str | None = None  # interop.md §9 G8: the RT Beams Treatment Record's SOPInstanceUID
    meterset_ratio: float | None = None  # delivered / planned meterset (MU) over the treatment beams


@dataclass(frozen=True, slots=True)
class ProtocolDeviation:
    subject_id: str
    check: DeviationCheck
    deviation_class: DeviationClass
    values: str
    reason: str
    lesion_id: str | None = None
    recorded_by: str | None = None
    confirmed_by: str | None = None
    date: dt.date | None = None


# --- assessments


@dataclass(frozen=True, slots=True)
class LesionMeasurement:
    """One lesion at one assessment: a diameter (mm; short axis for nodes) or a qualitative status."""

    lesion_id: str
    lesion_class: LesionClass
    organ: str
    is_node: bool
    diameter_mm: float | None = None
    status: LesionStatus | None = None
    rt_role: RtRole | None = None
    not_done_reason: str | None = None  # interop.md §9 G3: why a lesion was not evaluated (TRREASND)
    too_small: bool | None = None  # a target read as "too small to measure" (response-rules.md; 5 mm default)


@dataclass(frozen=True, slots=True)
class TumourAssessment:
    subject_id: str
    assessment_date: dt.date
    measurements: tuple[LesionMeasurement, ...]
    investigator_response: InvestigatorResponse | None = None
    assessed_by: str | None = None
    method: str | None = None  # interop.md §9 G3: imaging method, e.g. "CT", "MRI", "PET-CT" (TRMETHOD)
    criteria: str | None = None  # the criteria the investigator's response used: "irecist" or "recist11"


# --- safety & QoL


@dataclass(frozen=True, slots=True)
class AdverseEvent:
    """One episode of an adverse event, graded with one CTCAE v5.0 term (ae-qol.md A2, A4)."""

    subject_id: str
    ae_id: str
    term: str
    meddra_code: int
    grade: int | None
    onset_date: dt.date
    resolution_date: dt.date | None = None
    serious_death: bool = False
    serious_life_threatening: bool = False
    serious_hospitalisation: bool = False
    serious_disability: bool = False
    serious_congenital: bool = False
    serious_medically_important: bool = False
    attribution_cfrt: Attribution | None = None
    attribution_ldrt: Attribution | None = None
    attribution_io: Attribution | None = None
    immune_related: bool = False
    action_io: AeAction = AeAction.DOSE_NOT_CHANGED
    outcome: AeOutcome = AeOutcome.UNKNOWN
    verbatim: str | None = None
    baseline_grade: int | None = None
    awareness_at: dt.datetime | None = None
    reported_at: dt.datetime | None = None
    action_rt: AeAction | None = None  # interop.md §9 G6: action taken with the radiotherapy

    @property
    def serious(self) -> bool:
        """ICH E2A: serious when any of the six criteria holds (AESER)."""
        return any(
            (
                self.serious_death,
                self.serious_life_threatening,
                self.serious_hospitalisation,
                self.serious_disability,
                self.serious_congenital,
                self.serious_medically_important,
            )
        )


@dataclass(frozen=True, slots=True)
class QuestionnaireAnswer:
    """One item answer; ``answer`` is None when the item was left blank. Item numbers, never wording."""

    subject_id: str
    visit: str
    instrument: Instrument
    item: int
    answer: int | None
    completed_on: dt.date | None = None
    instrument_version: str | None = None  # interop.md §9 G7, e.g. "3.0" for QLQ-C30 version 3
    not_done_reason: str | None = None  # why a whole form or item was not done (QSREASND)


# --- data management


@dataclass(frozen=True, slots=True)
class DataQuery:
    subject_id: str
    entity: str
    field: str
    text: str
    raised_by: str
    raised_at: dt.datetime
    status: QueryStatus = QueryStatus.OPEN
    answer: str | None = None
    answered_by: str | None = None
    record_id: str | None = None  # the queried record's surrogate id (store), when it is one record
    answered_at: dt.datetime | None = None
    closed_by: str | None = None
    closed_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class RecordLock:
    """A data manager's lock on one record, or on every record of a patient (``entity == "patients"``).

    Unlocking removes the lock (a logical removal with the reason, kept in the audit trail); web.md §3.
    """

    entity: str
    record_id: str
    subject_id: str
    locked_by: str
    locked_at: dt.datetime
    reason: str


@dataclass(frozen=True, slots=True)
class SdvMark:
    """A monitor's source-data verification of one version of a record; cleared when the record changes."""

    entity: str
    record_id: str
    subject_id: str
    record_version: int
    verified_by: str
    verified_at: dt.datetime


@dataclass(frozen=True, slots=True)
class RecordSignature:
    """An e-signature on one record (21 CFR Part 11 §11.50): who, meaning, when, and the signed content's hash.

    A change to the record voids it (a logical removal whose reason says so); web.md §5.
    """

    entity: str
    record_id: str
    subject_id: str
    username: str
    full_name: str
    meaning: str
    signed_at: dt.datetime
    content_hash: str


_HINTS: dict[type[typing.Any], Mapping[str, typing.Any]] = {}


def field_hints(cls: type[typing.Any]) -> Mapping[str, typing.Any]:
    """``typing.get_type_hints(cls)`` of a record class, resolved once: it re-evaluates every string annotation
    on each call (with ``from __future__ import annotations``), which was a tenth of a live checklist's time."""
    found = _HINTS.get(cls)
    if found is None:
        found = _HINTS[cls] = typing.get_type_hints(cls)
    return found
