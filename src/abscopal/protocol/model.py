"""The protocol as typed data: load a trial's TOML file, validate it, apply its amendments.

Errors name the offending key (``eligibility.inclusion.IN6.checks.platelets.min: ...``). A protocol has a
base version and amendments; :meth:`ProtocolFile.version` returns the rules in force at a version, so each
patient is evaluated under the version they were enrolled under.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from abscopal.errors import InputFileError, ProtocolError
from abscopal.inputs import read_input_text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Interval(_Strict):
    """A closed numeric range [min, max]."""

    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> Interval:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self

    def contains(self, value: float) -> bool:
        return self.min <= value <= self.max


# --- eligibility


class _Check(_Strict):
    name: str
    note: str | None = None


class PresentCheck(_Check):
    kind: Literal["present"]
    field: str


class RangeCheck(_Check):
    kind: Literal["range"]
    field: str
    min: float | None = None
    max: float | None = None
    min_inclusive: bool = True
    max_inclusive: bool = True
    unit: str | None = None

    @model_validator(mode="after")
    def _has_bound(self) -> RangeCheck:
        if self.min is None and self.max is None:
            raise ValueError("a range check needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class IsTrueCheck(_Check):
    kind: Literal["is_true"]
    field: str


class IsFalseCheck(_Check):
    kind: Literal["is_false"]
    field: str


class OneOfCheck(_Check):
    kind: Literal["one_of"]
    field: str
    values: list[str] = Field(min_length=1)


class AtLeastLevelCheck(_Check):
    kind: Literal["at_least_level"]
    field: str
    level: str
    order: list[str] = Field(min_length=2)

    @model_validator(mode="after")
    def _level_in_order(self) -> AtLeastLevelCheck:
        if self.level not in self.order:
            raise ValueError(f"level {self.level!r} is not one of order {self.order}")
        return self


class LabMinCheck(_Check):
    kind: Literal["lab_min"]
    lab: str
    min: float
    unit: str


class LabMaxUlnCheck(_Check):
    kind: Literal["lab_max_uln"]
    lab: str
    max_x_uln: float = Field(gt=0)


class CompleteDataCheck(_Check):
    kind: Literal["complete_data"]


class MissingDataCheck(_Check):
    kind: Literal["missing_data"]


Check = Annotated[
    PresentCheck
    | RangeCheck
    | IsTrueCheck
    | IsFalseCheck
    | OneOfCheck
    | AtLeastLevelCheck
    | LabMinCheck
    | LabMaxUlnCheck
    | CompleteDataCheck
    | MissingDataCheck,
    Field(discriminator="kind"),
]


_CHECK_KINDS = {
    "present",
    "range",
    "is_true",
    "is_false",
    "one_of",
    "at_least_level",
    "lab_min",
    "lab_max_uln",
    "complete_data",
    "missing_data",
}


class Criterion(_Strict):
    label: str
    source: str
    checks: dict[str, Check] = Field(min_length=1)


class Eligibility(_Strict):
    inclusion: dict[str, Criterion] = Field(min_length=1)
    exclusion: dict[str, Criterion] = Field(default_factory=dict)


# --- resistance


class Resistance(_Strict):
    primary_min_exposure_days: int = Field(gt=0)
    primary_exposure_inclusive: bool = True
    acquired_min_exposure_days: int = Field(gt=0)
    acquired_exposure_inclusive: bool = False
    primary_best_responses: list[Literal["CR", "PR", "SD", "PD", "NE"]]
    acquired_best_responses: list[Literal["CR", "PR", "SD", "PD", "NE"]]
    sd_for_acquired_min_days: int = Field(gt=0)
    confirmation_scan_min_days: int = Field(ge=0)
    required_signatures: int = Field(ge=1)
    signer_role: str
    # SITC (Kluger 2020): resistance needs progression on treatment or within 12 weeks of the last dose
    max_days_last_dose_to_progression: int | None = Field(default=84, ge=0)
    source: str = ""


# --- radiotherapy


class ConventionalRT(_Strict):
    dose_per_fraction_gy: Interval
    total_dose_gy: Interval
    fractions: Interval
    max_lesions: int = Field(ge=1)
    selection: list[Literal["primary", "largest", "symptomatic"]] = Field(min_length=1)
    working_days_only: bool = True
    max_fractions_per_day: int = Field(default=1, ge=1)


class LowDoseRT(_Strict):
    dose_per_fraction_gy: float = Field(gt=0)
    fractions: Interval
    interval_days: int = Field(gt=0)
    interval_window_days: Interval
    max_lesions: int = Field(ge=0)


class ObservationRule(_Strict):
    min_lesions: int = Field(ge=0)
    must_be_measurable: bool = True
    measurable_min_mm: float = Field(gt=0)
    measurable_node_short_axis_min_mm: float = Field(gt=0)


class LesionLimits(_Strict):
    max_lesions: int = Field(ge=1)
    max_metastatic_organs: int = Field(ge=0)


class Radiobiology(_Strict):
    alpha_beta_tumour_gy: float = Field(gt=0)
    alpha_beta_late_gy: float = Field(gt=0)
    repopulation_correction: bool = False
    kickoff_days: float = Field(ge=0)
    potential_doubling_days: float = Field(gt=0)
    alpha_per_gy: float = Field(gt=0)


class DeviationThresholds(_Strict):
    delivered_total_minor_pct: float = Field(ge=0)
    delivered_total_major_pct: float = Field(ge=0)
    ldrt_dose_minor_pct: float = Field(ge=0)
    ldrt_dose_major_pct: float = Field(ge=0)
    ldrt_interval_minor_days: Interval
    cfrt_interruption_minor_working_days: int = Field(ge=0)
    cfrt_interruption_major_working_days: int = Field(ge=0)
    # not in the spec table (radiotherapy.md §2): abscopal defaults, see docs/radiotherapy.md
    cfrt_non_working_day_class: Literal["minor", "major"] = "minor"
    cfrt_extra_fraction_same_day_class: Literal["minor", "major"] = "major"
    registry_limit_class: Literal["minor", "major"] = "major"
    source: str = ""

    @model_validator(mode="after")
    def _minor_below_major(self) -> DeviationThresholds:
        if self.delivered_total_minor_pct > self.delivered_total_major_pct:
            raise ValueError("delivered_total_minor_pct must not exceed delivered_total_major_pct")
        if self.ldrt_dose_minor_pct > self.ldrt_dose_major_pct:
            raise ValueError("ldrt_dose_minor_pct must not exceed ldrt_dose_major_pct")
        return self


class Radiotherapy(_Strict):
    conventional: ConventionalRT
    low_dose: LowDoseRT
    observation: ObservationRule
    limits: LesionLimits
    radiobiology: Radiobiology
    deviations: DeviationThresholds


# --- schedule & options


class Immunotherapy(_Strict):
    interval_days: int = Field(gt=0)
    window_days: int = Field(ge=0)
    until: str = "progression"
    source: str = ""


class Schedule(_Strict):
    holidays_country: str = Field(min_length=2, max_length=3)
    assessment_interval_days: int = Field(gt=0)
    assessment_window_days: int = Field(ge=0)
    questionnaire_interval_days: int = Field(gt=0)
    questionnaire_window_days: int = Field(ge=0)
    follow_up_interval_days: int = Field(gt=0)
    follow_up_window_days: int = Field(ge=0)
    max_follow_up_days: int = Field(gt=0)
    source: str = ""


class ResponseOptions(_Strict):
    """Options for the response engine; AMBIGUOUS rules of response-rules.md, with the spec's defaults."""

    criteria: Literal["irecist", "recist11"] = "irecist"
    sd_min_days: int = Field(default=42, ge=0)
    dcr_sd_min_days: int = Field(default=42, ge=0)
    confirm_min_days: int = Field(default=28, ge=0)
    max_ne_between: int = Field(default=1, ge=0)
    accept_sd_between: bool = False
    missed_visits: Literal["censor", "event"] = "censor"
    unconfirmed_iupd: Literal["event", "censor"] = "event"
    icpd_window_days: Interval = Interval(min=28, max=56)
    enforce_icpd_window: bool = False
    too_small_to_measure_mm: float = Field(default=5.0, ge=0)
    # response-rules.md §6: "> 2 x interval + window" (2 x 42 + 7) between the last adequate assessment and PD
    missed_visits_gap_days: int = Field(default=91, gt=0)
    # §5 reset after a new-lesion iUPD: SOD decreased or all new lesions absent (default), or absent only
    new_lesion_reset: Literal["sod_decrease_or_absent", "absent_only"] = "sod_decrease_or_absent"
    # §4: ORR counts confirmed responses by default
    orr_requires_confirmation: bool = True
    # §8: best response per RT role, unconfirmed by default
    role_confirmation: bool = False


class SafetyMonitor(_Strict):
    term: str
    min_grade: int = Field(ge=1, le=5)
    rate_threshold: float = Field(gt=0, lt=1)
    posterior_probability: float = Field(gt=0, lt=1)
    prior_alpha: float = Field(gt=0)
    prior_beta: float = Field(gt=0)
    source: str = ""


def _default_aesi() -> dict[str, list[str]]:
    """Adverse events of special interest for thoracic RT + immunotherapy (ae-qol.md A3), CTCAE v5.0 terms."""
    return {
        "Pneumonitis": ["Pneumonitis"],
        "Oesophagitis": ["Esophagitis"],
        "Radiation dermatitis": ["Dermatitis radiation"],
        "Fatigue": ["Fatigue"],
        "Myocarditis": ["Myocarditis"],
        "Colitis": ["Colitis"],
        "Hepatitis / transaminases": [
            "Alanine aminotransferase increased",
            "Aspartate aminotransferase increased",
            "Blood bilirubin increased",
            "Hepatobiliary disorders - Other, specify",
        ],
        "Thyroid": ["Hypothyroidism", "Hyperthyroidism", "Thyroid stimulating hormone increased"],
    }


class SafetyOptions(_Strict):
    teae_anchor: Literal["first_rt_fraction", "enrolment", "first_study_treatment"] = "first_rt_fraction"
    teae_window_days: int = Field(ge=0)
    teae_window_days_sae_irae: int = Field(ge=0)
    sae_report_hours: int = Field(gt=0)
    missing_attribution: Literal["related", "unrelated"] = "related"
    monitor: SafetyMonitor
    aesi: dict[str, list[str]] = Field(default_factory=_default_aesi)


class QolOptions(_Strict):
    instruments: list[Literal["QLQ-C30", "QLQ-LC13"]] = Field(min_length=1)
    deterioration_threshold: float = Field(default=10.0, gt=0)
    reference: Literal["baseline", "best_previous", "previous"] = "baseline"
    confirmation: Literal["none", "next", "definitive"] = "none"
    death: Literal["ignore", "event", "event_within"] = "ignore"
    death_window_days: int = Field(default=90, ge=0)
    missing_baseline: Literal["censor_day0", "exclude", "event"] = "censor_day0"
    no_follow_up: Literal["censor_day1", "event"] = "censor_day1"
    time_origin: Literal["enrolment", "first_rt_fraction"] = "enrolment"
    time_unit: Literal["days", "weeks", "months"] = "months"


class LabRange(_Strict):
    """The physically possible values of one laboratory result, in ``unit`` (values in other units are converted)."""

    min: float
    max: float
    unit: str

    @model_validator(mode="after")
    def _ordered(self) -> LabRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


def _default_labs() -> dict[str, LabRange]:
    """Beyond these a value is a typing or unit error, not a patient (docs/protocol.md "Plausibility")."""
    return {
        "haemoglobin": LabRange(min=0, max=250, unit="g/L"),
        "wbc": LabRange(min=0, max=500, unit="10^9/L"),
        "neutrophils": LabRange(min=0, max=200, unit="10^9/L"),
        "platelets": LabRange(min=0, max=2000, unit="10^9/L"),
        "ast": LabRange(min=0, max=20000, unit="U/L"),
        "alt": LabRange(min=0, max=20000, unit="U/L"),
        "alp": LabRange(min=0, max=10000, unit="U/L"),
    }


class Plausibility(_Strict):
    """Physically possible values (not protocol rules): a value outside is refused as an input error, naming the
    field. The defaults are Abscopal's (docs/protocol.md "Plausibility"); the protocol file may narrow them, and
    its own thresholds must lie inside them."""

    age_years: Interval = Interval(min=0, max=120)
    ecog: Interval = Interval(min=0, max=5)  # ECOG 0-5 (Oken et al. 1982)
    life_expectancy_months: Interval = Interval(min=0, max=600)
    diameter_mm: Interval = Interval(min=0, max=500)
    lesion_count: Interval = Interval(min=0, max=100)
    metastatic_organ_count: Interval = Interval(min=0, max=20)
    dose_per_fraction_gy: Interval = Interval(min=0, max=30)
    fractions: Interval = Interval(min=1, max=60)
    alpha_beta_gy: Interval = Interval(min=0.5, max=30)
    lines_of_therapy: Interval = Interval(min=1, max=20)
    labs: dict[str, LabRange] = Field(default_factory=_default_labs)
    source: str = ""


class Trial(_Strict):
    id: str = Field(min_length=1)
    title: str
    short_title: str
    sponsor: str
    site: str
    country: str
    design: str
    registry_processed: dt.date
    start_date: dt.date
    completion_date: dt.date
    endpoints: list[str]


class VersionInfo(_Strict):
    number: str = Field(min_length=1)
    effective_date: dt.date
    description: str = ""


class Amendment(_Strict):
    version: str = Field(min_length=1)
    effective_date: dt.date
    description: str
    set: dict[str, Any] = Field(min_length=1)


def _default_organ_loc() -> dict[str, str]:
    return {
        "lung": "LUNG",
        "lymph_node": "LYMPH NODE",
        "bone": "BONE",
        "liver": "LIVER",
        "adrenal": "ADRENAL GLAND",
        "pleura": "PLEURA",
        "soft_tissue": "SOFT TISSUE",
        "brain": "BRAIN",
    }


class Interop(_Strict):
    """Trial-level constants of the SDTM mapping (interop.md §2, §9 G4 and G10); every key has a default.

    ``studyid`` defaults to ``[trial].id``; ``phase`` and ``planned_enrolment`` unset give TS null flavours;
    ``organ_loc`` maps ``Lesion.organ`` to CDISC LOC (C74456): an organ missing from it is refused by the export.
    """

    studyid: str | None = None
    phase: str | None = None  # TS TPHASE, e.g. "PHASE II TRIAL" (CDISC C66737); None -> TSVALNF
    planned_enrolment: int | None = Field(default=None, gt=0)  # TS PLANSUB
    ct_version: str = "2024-09-27"  # the CDISC SDTM CT package date the terms are taken from
    sdtmig_version: str = "3.4"
    accepted_response: Literal["investigator", "sponsor"] = "investigator"  # RSACPTFL = Y for this evaluator
    organ_loc: dict[str, str] = Field(default_factory=_default_organ_loc)
    source: str = ""


class Protocol(_Strict):
    """The rules in force at one protocol version."""

    trial: Trial
    version: VersionInfo
    eligibility: Eligibility
    resistance: Resistance
    radiotherapy: Radiotherapy
    immunotherapy: Immunotherapy
    schedule: Schedule
    response: ResponseOptions
    safety: SafetyOptions
    qol: QolOptions
    plausibility: Plausibility = Field(default_factory=Plausibility)
    interop: Interop = Field(default_factory=Interop)


class ProtocolFile:
    """A protocol file: its base rules plus amendments, each giving a :class:`Protocol` version."""

    def __init__(self, raw: dict[str, Any], source: str) -> None:
        self.source = source
        amendments_raw = raw.pop("amendments", [])
        self._base_raw = raw
        self.base = _validate(raw, source)
        self.amendments: list[Amendment] = []
        if not isinstance(amendments_raw, list):
            raise ProtocolError("amendments", "must be an array of tables ([[amendments]])", source)
        for i, item in enumerate(amendments_raw):
            try:
                self.amendments.append(Amendment.model_validate(item))
            except pydantic.ValidationError as exc:
                raise _protocol_error(exc, source, prefix=f"amendments[{i}]") from None
        self._versions: dict[str, Protocol] = {self.base.version.number: self.base}
        current = copy.deepcopy(raw)
        seen = {self.base.version.number}
        last_date = self.base.version.effective_date
        for i, amendment in enumerate(self.amendments):
            where = f"amendments[{i}]"
            if amendment.version in seen:
                raise ProtocolError(f"{where}.version", f"version {amendment.version!r} is used twice", source)
            if amendment.effective_date < last_date:
                raise ProtocolError(f"{where}.effective_date", "amendments must be in order of effective date", source)
            seen.add(amendment.version)
            last_date = amendment.effective_date
            for dotted, value in amendment.set.items():
                _set_dotted(current, dotted, value, source, where)
            current["version"] = {
                "number": amendment.version,
                "effective_date": amendment.effective_date,
                "description": amendment.description,
            }
            self._versions[amendment.version] = _validate(copy.deepcopy(current), source, prefix=where)

    @property
    def versions(self) -> list[str]:
        return list(self._versions)

    @property
    def current(self) -> Protocol:
        """The latest version (base plus every amendment)."""
        return self._versions[self.versions[-1]]

    def version(self, number: str) -> Protocol:
        try:
            return self._versions[number]
        except KeyError:
            known = ", ".join(self._versions)
            raise ProtocolError("version", f"no version {number!r} (known: {known})", self.source) from None

    def version_on(self, date: dt.date) -> Protocol:
        """The version in force on ``date`` (the base version before the first amendment)."""
        chosen = self.base
        for protocol in self._versions.values():
            if protocol.version.effective_date <= date:
                chosen = protocol
        return chosen


def _set_dotted(doc: dict[str, Any], dotted: str, value: Any, source: str, where: str) -> None:
    parts = dotted.split(".")
    node: Any = doc
    for depth, part in enumerate(parts[:-1]):
        if not isinstance(node, dict) or part not in node:
            path = ".".join(parts[: depth + 1])
            raise ProtocolError(f"{where}.set.{dotted}", f"key {path!r} does not exist in the protocol", source)
        node = node[part]
    if not isinstance(node, dict) or parts[-1] not in node:
        raise ProtocolError(f"{where}.set.{dotted}", f"key {dotted!r} does not exist in the protocol", source)
    node[parts[-1]] = value


def _protocol_error(exc: pydantic.ValidationError, source: str, prefix: str = "") -> ProtocolError:
    # a typo gives "unknown key" and "required key is missing": the unknown key is the better clue
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    parts = [str(p) for p in first["loc"]]
    # a discriminated union adds the tag ("range", "lab_min", ...) after the check's name: drop it
    parts = [p for i, p in enumerate(parts) if not (i >= 2 and parts[i - 2] == "checks" and p in _CHECK_KINDS)]
    loc = ".".join(parts)
    key = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key (a typo?)"
    elif first["type"] == "missing":
        message = "required key is missing"
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ProtocolError(key, message, source)


def _validate(raw: dict[str, Any], source: str, prefix: str = "") -> Protocol:
    try:
        protocol = Protocol.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise _protocol_error(exc, source, prefix) from None
    for key, reason in implausible_thresholds(protocol):
        raise ProtocolError(f"{prefix}.{key}" if prefix else key, reason, source)
    return protocol


#: eligibility range-check fields and the plausibility interval that bounds them
_RANGE_LIMITS = ("age_years", "ecog", "life_expectancy_months", "lesion_count", "metastatic_organ_count")


def _outside(value: float, limit: Interval, name: str, unit: str = "") -> str | None:
    if limit.contains(value):
        return None
    bounds = f"{limit.min:g}-{limit.max:g}{unit}"
    return f"{value:g}{unit} is not plausible: {name} must lie within {bounds} (plausibility.{name})"


def implausible_thresholds(p: Protocol) -> list[tuple[str, str]]:
    """(key, reason) of every protocol threshold outside the plausibility limits, e.g. an age maximum of 300."""
    from abscopal.errors import ValidationError
    from abscopal.protocol import units

    limits = p.plausibility
    found: list[tuple[str, str]] = []
    for section, criteria in (("inclusion", p.eligibility.inclusion), ("exclusion", p.eligibility.exclusion)):
        for cid, criterion in criteria.items():
            for name, check in criterion.checks.items():
                key = f"eligibility.{section}.{cid}.checks.{name}"
                if isinstance(check, RangeCheck) and check.field in _RANGE_LIMITS:
                    limit = getattr(limits, check.field)
                    for bound in ("min", "max"):
                        value = getattr(check, bound)
                        if value is not None and (why := _outside(value, limit, check.field)):
                            found.append((f"{key}.{bound}", why))
                if isinstance(check, LabMinCheck) and check.lab in limits.labs:
                    lab = limits.labs[check.lab]
                    try:
                        value = check.min * units.factor(check.lab, check.unit, lab.unit)
                    except ValidationError as exc:
                        found.append((f"{key}.unit", exc.reason))
                        continue
                    interval = Interval(min=lab.min, max=lab.max)
                    if why := _outside(value, interval, f"labs.{check.lab}", f" {lab.unit}"):
                        found.append((f"{key}.min", why))
    rt = p.radiotherapy
    doses = [
        ("radiotherapy.conventional.dose_per_fraction_gy.min", rt.conventional.dose_per_fraction_gy.min),
        ("radiotherapy.conventional.dose_per_fraction_gy.max", rt.conventional.dose_per_fraction_gy.max),
        ("radiotherapy.low_dose.dose_per_fraction_gy", rt.low_dose.dose_per_fraction_gy),
    ]
    for key, value in doses:
        if why := _outside(value, limits.dose_per_fraction_gy, "dose_per_fraction_gy", " Gy"):
            found.append((key, why))
    for key, value in (
        ("radiotherapy.conventional.fractions.max", rt.conventional.fractions.max),
        ("radiotherapy.low_dose.fractions.max", rt.low_dose.fractions.max),
    ):
        if why := _outside(value, limits.fractions, "fractions"):
            found.append((key, why))
    for key, value in (
        ("radiotherapy.radiobiology.alpha_beta_tumour_gy", rt.radiobiology.alpha_beta_tumour_gy),
        ("radiotherapy.radiobiology.alpha_beta_late_gy", rt.radiobiology.alpha_beta_late_gy),
    ):
        if why := _outside(value, limits.alpha_beta_gy, "alpha_beta_gy", " Gy"):
            found.append((key, why))
    if why := _outside(rt.observation.measurable_min_mm, limits.diameter_mm, "diameter_mm", " mm"):
        found.append(("radiotherapy.observation.measurable_min_mm", why))
    return found


def load_protocol_file(path: str | Path) -> ProtocolFile:
    """Read and validate a protocol TOML file; raise :class:`ProtocolError` naming the bad key."""
    p = Path(path)
    try:
        text = read_input_text(p)
    except InputFileError as exc:  # missing, a folder, not UTF-8, empty: the shared reader's sentence
        problem = exc.problems[0]
        where = f"line {problem.line}: " if problem.line is not None else ""
        raise ProtocolError("", where + problem.reason, str(p)) from None
    return parse_protocol(text, str(p))


def parse_protocol(text: str, source: str = "<protocol>") -> ProtocolFile:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError("", f"is not valid TOML ({exc})", source) from None
    return ProtocolFile(raw, source)


BUNDLED = "nct05906329"


def bundled_protocol_path(name: str = BUNDLED) -> Path:
    """Path of a protocol shipped with the package (or, in a source checkout, ``protocols/``)."""
    checkout = Path(__file__).resolve().parents[3] / "protocols" / f"{name}.toml"
    if checkout.exists():
        return checkout
    packaged = resources.files("abscopal").joinpath("_protocols", f"{name}.toml")
    return Path(str(packaged))


def load_bundled(name: str = BUNDLED) -> ProtocolFile:
    """The protocol file for the trial ``name`` shipped with Abscopal (NCT05906329 by default).

    Parsed once per file version (path and modification time): every use case called without a protocol asks for
    it, and parsing and validating the TOML costs milliseconds each time. The models are frozen, so sharing one
    instance is safe.
    """
    path = bundled_protocol_path(name)
    return _load_cached(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, _mtime_ns: int) -> ProtocolFile:
    return load_protocol_file(path)
