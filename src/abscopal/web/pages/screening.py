"""Screening, the live eligibility checklist, screen failure and enrolment (web.md §4, §8; issue 12 items 1, 3).

- ``/screening/new`` registers a person for screening at one of the user's sites (``register_patient``);
- ``/patients/{id}/screen`` is the screening form (every field of :class:`~abscopal.domain.Screening`, the labs
  with their units and upper limits of normal) saved through ``record_screening``, with the eligibility checklist
  beside it; ``/screen/checklist`` answers the form's unsaved values with the checklist fragment (htmx, on every
  change) and writes nothing;
- ``/screen/fail`` records an investigator's screen failure with its reasons (``record_screen_failure``);
- ``/enrol`` shows every criterion and the adjudication and enrols (``enrol``), or shows the service's refusal.

Nothing here decides eligibility: the checklist, its sentences and the compared lab values are the eligibility
engine's (:mod:`abscopal.protocol.eligibility`), criterion 10's resistance is the adjudication's
(:func:`abscopal.services.enrolment.preview_eligibility`, the same reading enrolment makes).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from abscopal import domain as d
from abscopal.errors import AbscopalError, ConflictError, DuplicateRecord, RecordLocked, ValidationError
from abscopal.protocol import eligibility, resistance, units
from abscopal.protocol.eligibility import Checklist, CriterionResult, Status
from abscopal.protocol.model import LabMaxUlnCheck, LabMinCheck, Protocol, ProtocolFile, load_bundled
from abscopal.services import enrolment
from abscopal.services import screening as screening_service
from abscopal.services.adjudication import current_adjudication
from abscopal.services.common import PERMISSIONS, Action, Actor, Refused, protocol_of
from abscopal.services.ports import UnitOfWorkLike
from abscopal.store.records import Stored
from abscopal.web.context import Principal, reading, requires, state_of, unit_of_work
from abscopal.web.forms import FormField, errors_of, form_fields, label_of, parse
from abscopal.web.i18n import N_, error_text, gettext, in_language, is_translated, sentences_in, translate
from abscopal.web.pages.records import FIRST_ENTRY, posted_form, today_in, zone_of
from abscopal.web.records import build, visible_patient
from abscopal.web.templating import language_of, render

router = APIRouter(include_in_schema=False)

#: The screening form's sections: every scalar field of ``Screening`` the person screening types in.
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (N_("Consent and demographics"), ("screening_date", "consent_date", "age_years")),
    (N_("Clinical condition"), ("ecog", "life_expectancy_months", "diet", "severe_allergy_history")),
    (
        N_("Disease"),
        ("histology", "histology_confirmed_by", "lesion_count", "metastatic_organ_count", "has_measurable_disease",
         "no_standard_treatment_option"),
    ),
    (
        N_("Exclusions (yes: the condition is present)"),
        ("refuses_cooperation", "other_trial_within_3_months", "brain_metastases", "investigator_judges_unsuitable",
         "severe_infection", "serious_comorbidity", "prior_immune_related_toxicity", "prior_radiotherapy"),
    ),
)  # fmt: skip
#: Fields the form never takes: criterion 10's resistance is the adjudication's; the screen failure reason is
#: the investigator's decision (``/screen/fail``); the labs have their own rows.
NOT_TYPED = frozenset({"immunotherapy_resistance_confirmed", "screen_failure_reason", "labs"})
TYPED = frozenset(name for _, names in GROUPS for name in names)
LAB_PREFIX = "lab-"

#: The bundled protocol's criterion labels, for the catalogs (another protocol's labels are shown as written).
CRITERION_LABELS = (
    N_("Understands, volunteers and signs the informed consent form"),
    N_("Age 18 to 65 years, either sex"),
    N_("ECOG 0-1 and expected survival > 6 months"),
    N_("Takes at least a liquid diet"),
    N_("No history of severe allergy"),
    N_("Adequate blood counts and liver function"),
    N_("NSCLC confirmed by cytology or histology, one of the five histologies"),
    N_("Complete clinical data"),
    N_("At most 10 lesions (primary, regional nodes, distant metastases) and at most 5 organs with metastases"),
    N_("Immunotherapy resistance (adjudicated) without a standard treatment option"),
    N_("Measurable disease (primary, regional node or distant metastasis)"),
    N_("Missing key information (pathology, radiation dose, imaging, previous treatment)"),
    N_("Refuses or does not cooperate with the research"),
    N_("In another clinical study within three months"),
    N_("Brain metastases"),
    N_("Investigator judges the patient unsuitable"),
    N_("Severe infection"),
    N_("Serious liver, kidney, respiratory or uncontrolled chronic disease; cannot tolerate radiotherapy"),
    N_("Previous immune-related toxicity (immune myocarditis, pneumonitis, ...)"),
    N_("Previous radiotherapy"),
)
NOTICES = {
    "saved": N_("The screening was saved."),
    "registered": N_("The patient was registered for screening; enter the screening data below."),
    "failed": N_("The screen failure was recorded with its reasons."),
    "enrolled": N_("The patient was enrolled."),
}


@cache
def _bundled() -> ProtocolFile:
    """The bundled protocol file, read once: the package's TOML does not change while the server runs, and
    parsing it again for every keystroke of the live checklist would cost more than the checklist itself."""
    return load_bundled()


def _protocols(request: Request) -> ProtocolFile:
    """The server's protocol file (a configured one, else the bundled one)."""
    configured = state_of(request).protocols
    return configured if configured is not None else _bundled()


# --- the labs: one row per laboratory value the protocol's criteria read


@dataclass
class LabRow:
    """One laboratory row of the form: the protocol's check of it, the entered value, unit and limits."""

    lab: str
    name: str
    check: LabMinCheck | LabMaxUlnCheck
    units: tuple[str, ...]
    value: str = ""
    unit: str = ""
    uln: str = ""
    errors: dict[str, str] | None = None

    def control(self, part: str) -> str:
        return f"{LAB_PREFIX}{self.lab}-{part}"

    def error(self, part: str) -> str | None:
        return (self.errors or {}).get(part)

    @property
    def threshold(self) -> str:
        """The protocol's limit as written in its file (shown beside the row, decided by the engine)."""
        if isinstance(self.check, LabMinCheck):
            return f"≥ {self.check.min:g} {units.display_unit(self.check.unit)}"
        return f"≤ {self.check.max_x_uln:g} × ULN"


def lab_checks(protocol: Protocol) -> list[LabMinCheck | LabMaxUlnCheck]:
    """The protocol's laboratory checks, in the protocol's order (one per lab)."""
    found: dict[str, LabMinCheck | LabMaxUlnCheck] = {}
    for criteria in (protocol.eligibility.inclusion, protocol.eligibility.exclusion):
        for crit in criteria.values():
            for check in crit.checks.values():
                if isinstance(check, LabMinCheck | LabMaxUlnCheck) and check.lab not in found:
                    found[check.lab] = check
    return list(found.values())


def _unit_choices(check: LabMinCheck | LabMaxUlnCheck) -> tuple[str, ...]:
    canonical = check.unit if isinstance(check, LabMinCheck) else None
    shown: list[str] = []
    for key in units.family_of(check.lab, canonical):
        text = units.display_unit(key)
        if text not in shown:
            shown.append(text)
    return tuple(shown)


def _default_unit(check: LabMinCheck | LabMaxUlnCheck) -> str:
    if isinstance(check, LabMinCheck):
        return units.display_unit(check.unit)
    return units.display_unit(next(iter(units.family_of(check.lab))))


def lab_rows(
    protocol: Protocol, labs: Mapping[str, d.LabValue] | None, posted: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> list[LabRow]:  # fmt: skip
    rows = []
    for check in lab_checks(protocol):
        row = LabRow(check.lab, check.name, check, _unit_choices(check), unit=_default_unit(check))
        stored = (labs or {}).get(check.lab)
        if stored is not None:
            row.value, row.uln = f"{stored.value:g}", "" if stored.uln is None else f"{stored.uln:g}"
            row.unit = units.display_unit(stored.unit) if _known(check.lab, stored.unit) else stored.unit
        if posted is not None:
            row.value = (posted.get(row.control("value")) or "").strip()
            row.unit = (posted.get(row.control("unit")) or "").strip() or row.unit
            row.uln = (posted.get(row.control("uln")) or "").strip()
        row.errors = {p: e for p in ("value", "unit", "uln") if (e := (errors or {}).get(row.control(p)))}
        rows.append(row)
    return rows


def _known(lab: str, unit: str) -> bool:
    try:
        units.factor(lab, unit)
    except (ValidationError, AbscopalError):
        return False
    return True


def _number(text: str, control: str, errors: dict[str, str], language: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        errors[control] = gettext(language, N_("Type a number (for example 12.5)."))
        return None
    return value


def parse_labs(
    protocol: Protocol, posted: Mapping[str, str], base: Mapping[str, d.LabValue], language: str
) -> tuple[dict[str, d.LabValue], dict[str, str]]:
    """The labs of the posted rows (an empty value: not recorded), the other labs of ``base`` kept as they are."""
    labs = {k: v for k, v in base.items()}
    errors: dict[str, str] = {}
    for check in lab_checks(protocol):
        control = f"{LAB_PREFIX}{check.lab}-"
        value = _number((posted.get(control + "value") or "").strip(), control + "value", errors, language)
        uln = _number((posted.get(control + "uln") or "").strip(), control + "uln", errors, language)
        unit = (posted.get(control + "unit") or "").strip() or _default_unit(check)
        labs.pop(check.lab, None)
        if value is None:
            continue
        old = base.get(check.lab)
        labs[check.lab] = d.LabValue(value, unit, uln, old.lln if old is not None else None)
    return labs, errors


def lab_control(field: str) -> str | None:
    """The form control an error's field names (``labs.haemoglobin.uln`` -> ``lab-haemoglobin-uln``)."""
    parts = field.replace("/", ".").split(".")
    if len(parts) >= 2 and parts[0] == "labs":
        part = parts[2] if len(parts) > 2 and parts[2] in ("unit", "uln") else "value"
        return f"{LAB_PREFIX}{parts[1]}-{part}"
    return None


# --- the posted screening


def screening_of(
    request: Request, protocol: Protocol, subject_id: str, posted: Mapping[str, str], base: d.Screening | None
) -> tuple[d.Screening | None, dict[str, str], str | None]:
    """(the screening of the posted form, errors by control, a sentence for the top of the form)."""
    language = language_of(request)
    scalars = {k: v for k, v in posted.items() if k in TYPED or k in ("csrf_token", "version", "reason")}
    errors: dict[str, str] = {}
    top = None
    labs, lab_errors = parse_labs(protocol, posted, base.labs if base else {}, language)
    errors.update(lab_errors)
    body: dict[str, Any] | None = None
    try:
        body = parse(d.Screening, scalars, base=base, zone=zone_of(request))
    except ValidationError as exc:
        found, top = errors_of(exc, set(TYPED))
        errors.update(found)
    if body is None or errors:
        return None, errors, top
    body["labs"] = labs
    body["immunotherapy_resistance_confirmed"] = base.immunotherapy_resistance_confirmed if base else None
    body["screen_failure_reason"] = base.screen_failure_reason if base else None
    return build(d.Screening, subject_id, body), errors, top


def service_errors(exc: ValidationError) -> tuple[dict[str, str], str | None]:
    """A service's refusal beside its control (a lab's value, unit or ULN; a screening field), else on top."""
    control = lab_control(exc.field or "")
    if control is not None:
        return {control: exc.reason}, None
    return errors_of(exc, set(TYPED))


def preview_screening(
    request: Request, protocol: Protocol, subject_id: str, posted: Mapping[str, str], base: d.Screening | None
) -> tuple[d.Screening, list[tuple[str, str]]]:
    """The form's values as far as they can be read, for the live checklist: a value that cannot be read is left
    out (its criterion is then unknown) and named in the notes; a missing screening date is today's."""
    values = dict(posted)
    if not (values.get("screening_date") or "").strip():
        values["screening_date"] = today_in(request).isoformat()
    notes: dict[str, str] = {}
    for _ in range(len(TYPED) + 3 * len(lab_checks(protocol)) + 1):
        found, errors, top = screening_of(request, protocol, subject_id, values, base)
        if found is not None:
            return found, sorted(notes.items())
        if not errors:  # a sentence without a field: nothing to leave out (not expected of the form's controls)
            raise ValidationError("screening", top or "the form cannot be read")
        for control, sentence in errors.items():
            notes[control] = sentence
            values[control] = today_in(request).isoformat() if control == "screening_date" else ""
    raise ValidationError("screening", "the form cannot be read")  # pragma: no cover


def live_checklist(
    request: Request, uow: UnitOfWorkLike, data: ScreeningData, posted: Mapping[str, str],
    base: d.Screening | None,
) -> tuple[d.Screening, Checklist, list[str], list[tuple[str, str]]]:  # fmt: skip
    """The checklist of the form's values (:func:`preview_screening`); a value the engine refuses (a lab's unknown
    unit, an upper limit of normal that is not positive) is left out too and named in the notes."""
    values = dict(posted)
    refused: dict[str, str] = {}
    for _ in range(3 * len(lab_checks(data.protocol)) + len(TYPED) + 1):
        found, notes = preview_screening(request, data.protocol, data.patient.value.subject_id, values, base)
        try:
            checklist, reasons = enrolment.preview_eligibility(uow, data.actor, found, protocols=_protocols(request))
        except ValidationError as exc:
            control = lab_control(exc.field or "") or (exc.field or "").split(".")[0]
            if control not in values or not values[control] or control == "screening_date":
                raise
            refused[control] = exc.reason
            values[control] = ""
            if control.endswith("-unit"):  # an unusable unit: the value is left out with it
                values[control[: -len("unit")] + "value"] = ""
            continue
        return found, checklist, reasons, sorted({**dict(notes), **refused}.items())
    raise ValidationError("screening", "the form cannot be read")  # pragma: no cover


# --- what the checklist fragment shows


@dataclass(frozen=True)
class Compared:
    """A laboratory value as entered and as the rule compared it (the engine's conversion)."""

    name: str
    entered: str
    compared: str
    limit: str
    converted: bool


def compared_values(screening: d.Screening, protocol: Protocol) -> list[Compared]:
    """Each recorded lab as entered and as its criterion compared it: the engine's :func:`lab_datum` (a value in
    the protocol's unit, or a multiple of the ULN)."""
    out = []
    for check in lab_checks(protocol):
        lab = screening.labs.get(check.lab)
        if lab is None:
            continue
        try:
            datum = eligibility.lab_datum(screening, check)
        except ValidationError:
            continue
        if math.isnan(datum):
            continue
        entered = f"{lab.value:g} {lab.unit}"
        if isinstance(check, LabMinCheck):
            canonical = units.display_unit(check.unit)
            converted = units.normalise_unit(lab.unit) != units.normalise_unit(check.unit)
            out.append(Compared(check.name, entered, f"{round(datum, 6):g} {canonical}",
                                f"≥ {check.min:g} {canonical}", converted))  # fmt: skip
        else:
            assert lab.uln is not None
            out.append(Compared(check.name, f"{entered} (ULN {lab.uln:g} {lab.unit})", f"{round(datum, 3):g} × ULN",
                                f"≤ {check.max_x_uln:g} × ULN", True))  # fmt: skip
    return out


def criterion_rows(checklist: Checklist | None, language: str = "en") -> list[dict[str, Any]]:
    """One row per criterion; ``reason`` is the engine's sentence in ``language`` (``reason_lang`` "en" while it
    is the English one)."""
    rows = []
    for r in checklist.results if checklist else ():
        reason = translate(language, r.reason)
        rows.append({"r": r, "tone": _tone(r), "word": _word(r), "reason": reason,
                     "reason_lang": "" if is_translated(language, r.reason) else "en"})  # fmt: skip
    return rows


def _tone(r: CriterionResult) -> str:
    if r.status is Status.UNKNOWN:
        return "unknown"
    return "bad" if r.excludes else "good"


def _word(r: CriterionResult) -> str:
    if r.status is Status.UNKNOWN:
        return N_("unknown")
    if r.section == "exclusion":
        return N_("present: excludes") if r.status is Status.MET else N_("not present")
    return N_("met") if r.status is Status.MET else N_("not met")


VERDICTS = {"eligible": N_("eligible"), "ineligible": N_("ineligible"), "incomplete": N_("incomplete")}


def checklist_context(
    checklist: Checklist | None, reasons: list[str], screening: d.Screening | None, protocol: Protocol,
    notes: list[tuple[str, str]] | None = None, language: str = "en",
) -> dict[str, Any]:  # fmt: skip
    counts = {"met": 0, "excludes": 0, "unknown": 0}
    for r in checklist.results if checklist else ():
        key = "unknown" if r.status is Status.UNKNOWN else "excludes" if r.excludes else "met"
        counts[key] += 1
    return {
        "checklist": checklist, "criteria": criterion_rows(checklist, language), "counts": counts,
        "verdict": VERDICTS.get(checklist.verdict.value, checklist.verdict.value) if checklist else None,
        "verdict_code": checklist.verdict.value if checklist else "none",
        "enrol_reasons": sentences_in(language, reasons),
        "compared": compared_values(screening, protocol) if screening is not None else [],
        "notes": [
            (label_of(c) if c in TYPED else _lab_label(c, protocol), translate(language, s)) for c, s in (notes or [])
        ],
        "protocol_version": checklist.protocol_version if checklist else protocol.version.number,
    }  # fmt: skip


def _lab_label(control: str, protocol: Protocol) -> str:
    for check in lab_checks(protocol):
        if control.startswith(f"{LAB_PREFIX}{check.lab}-"):
            return check.name
    return control


# --- registration


def screening_sites(principal: Principal) -> list[str]:
    """The sites where the user may screen (their memberships with a role the SCREENING action allows)."""
    sites: set[str] = set()
    for role in PERMISSIONS[Action.SCREENING]:
        sites |= principal.account.sites_as(role)
    return sorted(sites)


def register_page(
    request: Request, principal: Principal, posted: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None, error: str | None = None, status: int = 200,
) -> Response:  # fmt: skip
    sites = screening_sites(principal)
    values = dict(posted or {})
    values.setdefault("site_code", sites[0] if len(sites) == 1 else "")
    return render(
        request, "screening_new.html", status_code=status, sites=sites, sexes=[s.value for s in d.Sex],
        values=values, errors=dict(errors or {}), error=error,
    )  # fmt: skip


@router.get("/screening/new", name="page_screening_new")
def new_patient_page(
    request: Request, principal: Annotated[Principal, Depends(requires(Action.SCREENING))]
) -> Response:
    return register_page(request, principal)


REGISTER_FIELDS = ("subject_id", "site_code", "sex", "birth_date", "hospital_id")


def _register(request: Request, principal: Principal, posted: Mapping[str, str]) -> Response:
    language = language_of(request)
    values = {k: (posted.get(k) or "").strip() for k in REGISTER_FIELDS}
    errors: dict[str, str] = {}
    required = N_("Required.")
    for name in ("subject_id", "site_code", "sex", "birth_date"):
        if not values[name]:
            errors[name] = gettext(language, required)
    if values["site_code"] and values["site_code"] not in screening_sites(principal):
        errors["site_code"] = gettext(language, N_("Choose one of your sites."))
    if values["sex"] and values["sex"] not in {s.value for s in d.Sex}:
        errors["sex"] = gettext(language, N_("Choose the sex from the list."))
    birth: dt.date | None = None
    if values["birth_date"]:
        try:
            birth = dt.date.fromisoformat(values["birth_date"])
        except ValueError:
            errors["birth_date"] = gettext(language, N_("Type the date as YYYY-MM-DD."))
    if errors or birth is None:
        return register_page(request, principal, posted, errors, status=422)
    patient = d.Patient(
        subject_id=values["subject_id"], site_code=values["site_code"], sex=d.Sex(values["sex"]), birth_date=birth,
        protocol_version="", hospital_id=values["hospital_id"] or None,
    )  # fmt: skip
    try:
        with unit_of_work(request, principal, "patient registered for screening") as uow:
            screening_service.register_patient(
                uow, principal.actor(patient.site_code), patient, protocols=_protocols(request)
            )
    except ValidationError as exc:
        head = (exc.field or "").split(".")[0]
        if head in REGISTER_FIELDS:
            return register_page(request, principal, posted, {head: translate(language, exc.reason)}, status=422)
        return register_page(request, principal, posted, error=error_text(language, exc), status=422)
    except DuplicateRecord:
        sentence = gettext(language, N_("A patient with this subject id already exists; choose another id."))
        return register_page(request, principal, posted, {"subject_id": sentence}, status=409)
    return RedirectResponse(f"/patients/{patient.subject_id}/screen?notice=registered", status_code=303)


@router.post("/screening/new", name="page_screening_register")
async def register(request: Request, principal: Annotated[Principal, Depends(requires(Action.SCREENING))]) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(_register, request, principal, posted)


# --- the screening form


@dataclass
class ScreeningData:
    patient: Stored[d.Patient]
    actor: Actor
    screening: Stored[d.Screening] | None
    histories: list[Stored[d.ImmunotherapyHistory]]
    protocol: Protocol


def load(
    request: Request, uow: UnitOfWorkLike, principal: Principal, subject_id: str, *, histories: bool = True
) -> ScreeningData:
    """The patient, the actor at its site, its screening (and prior immunotherapies) and the rules they are read by."""
    patient, actor = visible_patient(uow, principal, subject_id)
    screening = uow.screenings.find(subject_id=subject_id)
    found = uow.immunotherapy_histories.for_subject(subject_id) if histories else []
    lines = sorted(found, key=lambda s: s.value.start_date)
    on = screening.value.screening_date if screening is not None else today_in(request)
    protocol = protocol_of(patient.value, _protocols(request), on)
    return ScreeningData(patient, actor, screening, lines, protocol)


def history_rows(data: ScreeningData) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The prior immunotherapies and the resistance engine's classification of the latest one."""
    rows = [{"id": h.id, "agent": h.value.agent, "start": h.value.start_date, "last": h.value.last_dose_date,
             "best": h.value.best_response.value if h.value.best_response else None,
             "progression": h.value.progression_date} for h in data.histories]  # fmt: skip
    proposed: dict[str, Any] | None = None
    if data.histories:
        try:
            found = resistance.classify(data.histories[-1].value, data.protocol.resistance)
        except AbscopalError as exc:
            proposed = {"classification": None, "reasons": [str(exc)], "exposure_days": None}
        else:
            proposed = {"classification": found.classification.value, "reasons": list(found.reasons),
                        "exposure_days": found.exposure_days}  # fmt: skip
    return rows, proposed


def groups_of(fields: list[FormField]) -> list[tuple[str, list[FormField]]]:
    by_name = {f.name: f for f in fields}
    return [(title, [by_name[n] for n in names]) for title, names in GROUPS]


def screening_page(
    request: Request, principal: Principal, subject_id: str, *, posted: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None, error: str | None = None, status: int = 200,
    conflict: list[dict[str, Any]] | None = None, version: int | None = None, notice: str | None = None,
) -> Response:  # fmt: skip
    zone = zone_of(request)
    protocols = _protocols(request)
    with reading(request, principal) as uow:
        data = load(request, uow, principal, subject_id)
        current = data.screening.value if data.screening else None
        default = None
        if current is None:  # a new screening: today, and the patient's age on it (the engine's age_on)
            on = today_in(request)
            default = d.Screening(subject_id, on, age_years=eligibility.age_on(data.patient.value.birth_date, on))
        notes: list[tuple[str, str]] = []
        if posted is not None:
            preview, checklist, reasons, notes = live_checklist(request, uow, data, posted, current)
        else:
            start = current or default
            assert start is not None
            preview = start
            checklist, reasons = enrolment.preview_eligibility(uow, data.actor, preview, protocols=protocols)
        histories, proposed = history_rows(data)
        adjudication = current_adjudication(uow, subject_id)
    fields = form_fields(d.Screening, current or default, posted=posted, errors=errors, zone=zone)
    return render(
        request, "screening_form.html", status_code=status, subject_id=subject_id, patient=data.patient,
        screening=data.screening, groups=groups_of(fields),
        labs=lab_rows(data.protocol, current.labs if current else None, posted, errors),
        version=version if version is not None else (data.screening.version if data.screening else None),
        reason=(posted or {}).get("reason", ""), reason_error=(errors or {}).get("reason"), error=error,
        conflict=conflict or [], notice=notice, histories=histories, proposed=proposed,
        adjudication=adjudication, may_enrol=principal.may(Action.ENROL),
        **checklist_context(checklist, reasons, preview, data.protocol, notes, language_of(request)),
    )  # fmt: skip


@router.get("/patients/{subject_id}/screen", name="page_screen")
def screen_page(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.SCREENING))],
    notice: str | None = None,
) -> Response:  # fmt: skip
    shown = NOTICES.get(notice or "")
    text = gettext(language_of(request), shown) if shown else None
    return screening_page(request, principal, subject_id, notice=text)


def _conflict_rows(exc: ConflictError, posted: Mapping[str, str]) -> list[dict[str, Any]]:
    return [
        {"username": c.username, "at": c.at, "field": c.field, "label": label_of(c.field), "theirs": c.new_value or "—",
         "yours": posted.get(c.field, "—") or "—"}
        for c in exc.changes
    ]  # fmt: skip


def _version_of(posted: Mapping[str, str]) -> int | None:
    text = (posted.get("version") or "").strip()
    return int(text) if text.isdigit() else None


def _save(request: Request, principal: Principal, subject_id: str, posted: Mapping[str, str]) -> Response:
    language = language_of(request)
    with reading(request, principal) as uow:
        data = load(request, uow, principal, subject_id)
    current = data.screening
    errors: dict[str, str] = {}
    top: str | None = None
    version = _version_of(posted) if current is not None else None
    reason = (posted.get("reason") or "").strip()
    if current is not None:
        if version is None:
            top = gettext(
                language,
                N_("The form did not say which version of the record it was based on; reload the page and try again."),
            )
        if not reason:
            errors["reason"] = gettext(
                language, N_("Every edit after the first save needs a reason (it goes to the audit trail).")
            )
    found, parse_errors, parse_top = screening_of(
        request, data.protocol, subject_id, posted, current.value if current else None
    )
    errors.update(parse_errors)
    top = top or parse_top
    if errors or top or found is None:
        return screening_page(
            request, principal, subject_id, posted=posted, errors=errors, error=top, status=422, version=version
        )
    try:
        with unit_of_work(request, principal, reason if current is not None else FIRST_ENTRY) as uow:
            _, actor = visible_patient(uow, principal, subject_id)
            screening_service.record_screening(
                uow, actor, found, record_id=current.id if current else None, version=version,
                protocols=_protocols(request),
            )  # fmt: skip
    except ConflictError as exc:
        return screening_page(
            request, principal, subject_id, posted=posted, error=str(exc), status=409,
            conflict=_conflict_rows(exc, posted), version=exc.current,
        )  # fmt: skip
    except RecordLocked as exc:
        return screening_page(request, principal, subject_id, posted=posted, error=str(exc), status=423)
    except (ValidationError, DuplicateRecord) as exc:
        if isinstance(exc, ValidationError):
            found_errors, sentence = service_errors(exc)
        else:
            found_errors, sentence = {}, str(exc)
        found_errors, sentence = in_language(language, found_errors, sentence, exc)
        return screening_page(
            request, principal, subject_id, posted=posted, errors=found_errors, error=sentence, status=422,
            version=version,
        )  # fmt: skip
    return RedirectResponse(f"/patients/{subject_id}/screen?notice=saved", status_code=303)


@router.post("/patients/{subject_id}/screen", name="page_screen_save")
async def screen_save(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.SCREENING))]
) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(_save, request, principal, subject_id, posted)


def _checklist_fragment(request: Request, principal: Principal, subject_id: str, posted: Mapping[str, str]) -> Response:
    with reading(request, principal) as uow:  # never committed: the live checklist writes nothing
        data = load(request, uow, principal, subject_id, histories=False)
        base = data.screening.value if data.screening else None
        found, checklist, reasons, notes = live_checklist(request, uow, data, posted, base)
    return render(
        request, "_screening_checklist.html", subject_id=subject_id, fragment=True,
        **checklist_context(checklist, reasons, found, data.protocol, notes, language_of(request)),
    )  # fmt: skip


@router.post("/patients/{subject_id}/screen/checklist", name="page_screen_checklist")
async def screen_checklist(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.SCREENING))]
) -> Response:
    """The checklist of the form's unsaved values (htmx, as fields change): the same action as the form it
    belongs to, since it reads screening data being entered; it writes nothing."""
    posted = await posted_form(request)
    return await run_in_threadpool(_checklist_fragment, request, principal, subject_id, posted)


# --- enrolment and screen failure


def enrol_page(
    request: Request, principal: Principal, subject_id: str, *, status: int = 200, error: str | None = None,
    refusal: list[str] | None = None, errors: Mapping[str, str] | None = None,
    posted: Mapping[str, str] | None = None, notice: str | None = None,
) -> Response:  # fmt: skip
    protocols = _protocols(request)
    today = today_in(request)
    in_force = protocols.version_on(today)
    with reading(request, principal) as uow:
        patient, actor = visible_patient(uow, principal, subject_id)
        checklist, reasons = enrolment.eligibility_of(uow, actor, subject_id, on=today, protocols=protocols)
        stored_screening = uow.screenings.find(subject_id=subject_id)
        adjudication = current_adjudication(uow, subject_id)
    adj = None
    if adjudication is not None:
        a, rules = adjudication.value, in_force.resistance
        adj = {"id": adjudication.id, "classification": a.classification.value, "proposed_by": a.proposed_by,
               "proposed_at": a.proposed_at, "signatures": a.signatures,
               "valid_signers": resistance.valid_signers(a, rules), "required": rules.required_signatures,
               "effective": resistance.is_effective(a, rules)}  # fmt: skip
    screening_value = stored_screening.value if stored_screening else None
    suggested = (screening_value.screen_failure_reason if screening_value else None) or "; ".join(
        f"{r.criterion_id} {r.label}: {r.reason}" for r in (checklist.results if checklist else ()) if r.excludes
    )
    enrolled_under = None
    if patient.value.enrolment_date is not None:
        enrolled_under = patient.value.protocol_version
    return render(
        request, "screening_enrol.html", status_code=status, subject_id=subject_id, patient=patient,
        in_force=in_force.version, today=today, error=error, errors=dict(errors or {}),
        refusal=sentences_in(language_of(request), refusal or []),
        values=dict(posted or {}), notice=notice, adjudication=adj, at_screening=patient.value.status
        is d.PatientStatus.SCREENING, suggested=suggested, enrolled_under=enrolled_under,
        screening=stored_screening,
        **checklist_context(checklist, reasons, screening_value, in_force, language=language_of(request)),
    )  # fmt: skip


@router.get("/patients/{subject_id}/enrol", name="page_enrol")
def enrol_view(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.ENROL))],
    notice: str | None = None,
) -> Response:  # fmt: skip
    shown = NOTICES.get(notice or "")
    return enrol_page(request, principal, subject_id, notice=gettext(language_of(request), shown) if shown else None)


def _enrol(request: Request, principal: Principal, subject_id: str, posted: Mapping[str, str]) -> Response:
    language = language_of(request)
    with reading(request, principal) as uow:
        visible_patient(uow, principal, subject_id)  # another site's patient is 404 before the form is read
    version = _version_of(posted)
    errors: dict[str, str] = {}
    on: dt.date | None = None
    try:
        on = dt.date.fromisoformat((posted.get("on") or "").strip())
    except ValueError:
        errors["on"] = gettext(language, N_("Type the enrolment date as YYYY-MM-DD."))
    if version is None:
        return enrol_page(
            request, principal, subject_id, status=422, errors=errors, posted=posted,
            error=gettext(language, N_("The form did not say which version of the patient it was based on; reload "
                                       "the page and try again.")),
        )  # fmt: skip
    if errors or on is None:
        return enrol_page(request, principal, subject_id, status=422, errors=errors, posted=posted)
    try:
        with unit_of_work(request, principal, f"enrolled on {on}") as uow:
            _, actor = visible_patient(uow, principal, subject_id)
            enrolment.enrol(uow, actor, subject_id, version=version, on=on, protocols=_protocols(request))
    except Refused as exc:
        return enrol_page(
            request, principal, subject_id, status=422, posted=posted, refusal=exc.reasons,
            error=gettext(language, N_("Enrolment was refused: nothing was saved. The reasons:")),
        )  # fmt: skip
    except ConflictError as exc:
        return enrol_page(request, principal, subject_id, status=409, posted=posted, error=str(exc))
    except RecordLocked as exc:
        return enrol_page(request, principal, subject_id, status=423, posted=posted, error=str(exc))
    except ValidationError as exc:
        head = (exc.field or "").split(".")[0]
        if head == "enrolment_date":
            head = "on"
        if head == "on":
            errors = {"on": translate(language, exc.reason)}
            return enrol_page(request, principal, subject_id, status=422, posted=posted, errors=errors)
        return enrol_page(request, principal, subject_id, status=422, posted=posted, error=error_text(language, exc))
    return RedirectResponse(f"/patients/{subject_id}/enrol?notice=enrolled", status_code=303)


@router.post("/patients/{subject_id}/enrol", name="page_enrol_save")
async def enrol_save(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.ENROL))]
) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(_enrol, request, principal, subject_id, posted)


def _fail(request: Request, principal: Principal, subject_id: str, posted: Mapping[str, str]) -> Response:
    language = language_of(request)
    with reading(request, principal) as uow:
        visible_patient(uow, principal, subject_id)
    version = _version_of(posted)
    reason = (posted.get("failure_reason") or "").strip()
    if not reason:
        return enrol_page(
            request, principal, subject_id, status=422, posted=posted,
            errors={"failure_reason": gettext(language, N_("Give the reasons of the screen failure (they feed the "
                                                           "CONSORT diagram and the audit trail)."))},
        )  # fmt: skip
    if version is None:
        return enrol_page(
            request, principal, subject_id, status=422, posted=posted,
            error=gettext(language, N_("The form did not say which version of the patient it was based on; reload "
                                       "the page and try again.")),
        )  # fmt: skip
    try:
        with unit_of_work(request, principal, reason) as uow:
            _, actor = visible_patient(uow, principal, subject_id)
            enrolment.record_screen_failure(uow, actor, subject_id, version=version, reason=reason)
    except ConflictError as exc:
        return enrol_page(request, principal, subject_id, status=409, posted=posted, error=str(exc))
    except RecordLocked as exc:
        return enrol_page(request, principal, subject_id, status=423, posted=posted, error=str(exc))
    except ValidationError as exc:
        if (exc.field or "") == "reason":
            return enrol_page(
                request, principal, subject_id, status=422, posted=posted,
                errors={"failure_reason": translate(language, exc.reason)},
            )  # fmt: skip
        return enrol_page(request, principal, subject_id, status=422, posted=posted, error=error_text(language, exc))
    return RedirectResponse(f"/patients/{subject_id}/enrol?notice=failed", status_code=303)


@router.post("/patients/{subject_id}/screen/fail", name="page_screen_fail")
async def screen_fail(
    subject_id: str, request: Request, principal: Annotated[Principal, Depends(requires(Action.ENROL))]
) -> Response:
    """The investigator's screen failure (the service's action is the eligibility decision: ENROL)."""
    posted = await posted_form(request)
    return await run_in_threadpool(_fail, request, principal, subject_id, posted)
