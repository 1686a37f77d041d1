"""HTML forms for the domain dataclasses: fields generated from the class, and the posted form back to the object.

A form is the dataclass's fields (enums as a select, booleans as a checkbox or — when "not recorded" is a
value — a yes/no/not recorded select, dates as ``type=date``, numbers as ``type=number``); nested lists and maps
(an assessment's measurements, a screening's labs) are shown read-only and kept as they are. The posted values
are validated by the same Pydantic input model as the API (:func:`abscopal.web.records.input_model`), so that a
rule is never written twice; an error names its field and is shown beside it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError as PydanticError

from abscopal.domain import field_hints
from abscopal.errors import ValidationError
from abscopal.messages import Message
from abscopal.validation import pydantic_reason
from abscopal.web.i18n import N_
from abscopal.web.records import input_model

#: Form field names the record forms use themselves (never a dataclass field's name).
RESERVED = frozenset({"csrf_token", "version", "reason"})


@dataclass
class FormField:
    """One control of a generated form."""

    name: str
    label: str
    kind: str  # text | number | integer | date | datetime | select | checkbox | tristate | readonly
    value: str = ""  # the control's value as the browser sends it ("on" for a checked checkbox)
    options: tuple[tuple[str, str], ...] = ()  # (value, label) of a select
    required: bool = False
    error: str | None = None
    shown: tuple[str, ...] = ()  # a read-only field's items, one line each

    @property
    def control_id(self) -> str:
        return f"f-{self.name}"


def _unwrap(hint: Any) -> tuple[Any, bool]:
    """(the type inside ``X | None``, whether None is allowed)."""
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return (inner[0] if len(inner) == 1 else hint), True
    return hint, False


def _kind(hint: Any) -> str:
    inner, optional = _unwrap(hint)
    if isinstance(inner, type):
        if issubclass(inner, enum.Enum):
            return "select"
        if inner is bool:
            return "tristate" if optional else "checkbox"
        if inner is int:
            return "integer"
        if inner is float:
            return "number"
        if inner is dt.datetime:
            return "datetime"
        if inner is dt.date:
            return "date"
        if inner is str:
            return "text"
    return "readonly"


#: The English label of each record field (marked for the catalogs; the templates show it through ``_()``).
#: A field not named here gets its name, readable (:func:`label_of`); tests/web/test_translations.py checks that
#: every field of a form is here.
FIELD_LABELS: dict[str, str] = {
    "action_io": N_("Action io"),
    "action_rt": N_("Action rt"),
    "ae_id": N_("Ae id"),
    "age_years": N_("Age years"),
    "agent": N_("Agent"),
    "alpha_beta_gy": N_("Alpha beta gy"),
    "answer": N_("Answer"),
    "assessed_by": N_("Assessed by"),
    "assessment_date": N_("Assessment date"),
    "attribution_cfrt": N_("Attribution cfrt"),
    "attribution_io": N_("Attribution io"),
    "attribution_ldrt": N_("Attribution ldrt"),
    "awareness_at": N_("Awareness at"),
    "baseline_diameter_mm": N_("Baseline diameter mm"),
    "baseline_grade": N_("Baseline grade"),
    "best_response": N_("Best response"),
    "brain_metastases": N_("Brain metastases"),
    "check": N_("Check"),
    "classification": N_("Classification"),
    "completed_on": N_("Completed on"),
    "confirmed_by": N_("Confirmed by"),
    "consent_date": N_("Consent date"),
    "criteria": N_("Criteria"),
    "cycle_number": N_("Cycle number"),
    "date": N_("Date"),
    "deviation_class": N_("Deviation class"),
    "diet": N_("Diet"),
    "dose": N_("Dose"),
    "dose_gy": N_("Dose gy"),
    "dose_per_fraction_gy": N_("Dose per fraction gy"),
    "dose_reference": N_("Dose reference"),
    "dose_unit": N_("Dose unit"),
    "ecog": N_("Ecog"),
    "fraction_group": N_("Fraction group"),
    "fraction_number": N_("Fraction number"),
    "fractions": N_("Fractions"),
    "given": N_("Given"),
    "grade": N_("Grade"),
    "has_measurable_disease": N_("Has measurable disease"),
    "histology": N_("Histology"),
    "histology_confirmed_by": N_("Histology confirmed by"),
    "immune_related": N_("Immune related"),
    "immunotherapy_resistance_confirmed": N_("Immunotherapy resistance confirmed"),
    "instrument": N_("Instrument"),
    "instrument_version": N_("Instrument version"),
    "investigator_judges_unsuitable": N_("Investigator judges unsuitable"),
    "investigator_response": N_("Investigator response"),
    "is_node": N_("Is node"),
    "is_primary": N_("Is primary"),
    "is_symptomatic": N_("Is symptomatic"),
    "item": N_("Item"),
    "label": N_("Label"),
    "labs": N_("Labs"),
    "last_dose_date": N_("Last dose date"),
    "laterality": N_("Laterality"),
    "lesion_class": N_("Lesion class"),
    "lesion_count": N_("Lesion count"),
    "lesion_id": N_("Lesion id"),
    "life_expectancy_months": N_("Life expectancy months"),
    "lines_of_therapy": N_("Lines of therapy"),
    "location": N_("Location"),
    "measurable": N_("Measurable"),
    "measurements": N_("Measurements"),
    "meddra_code": N_("Meddra code"),
    "metastatic_organ_count": N_("Metastatic organ count"),
    "meterset_ratio": N_("Meterset ratio"),
    "method": N_("Method"),
    "no_standard_treatment_option": N_("No standard treatment option"),
    "not_done_reason": N_("Not done reason"),
    "onset_date": N_("Onset date"),
    "organ": N_("Organ"),
    "other_trial_within_3_months": N_("Other trial within 3 months"),
    "outcome": N_("Outcome"),
    "plan_label": N_("Plan label"),
    "plan_uid": N_("Plan uid"),
    "prior_immune_related_toxicity": N_("Prior immune related toxicity"),
    "prior_radiotherapy": N_("Prior radiotherapy"),
    "progression_confirmed_date": N_("Progression confirmed date"),
    "progression_date": N_("Progression date"),
    "proposed_at": N_("Proposed at"),
    "proposed_by": N_("Proposed by"),
    "reason": N_("Reason"),
    "record_uid": N_("Record uid"),
    "recorded_by": N_("Recorded by"),
    "refuses_cooperation": N_("Refuses cooperation"),
    "reported_at": N_("Reported at"),
    "resolution_date": N_("Resolution date"),
    "role": N_("Role"),
    "route": N_("Route"),
    "rt_role": N_("Rt role"),
    "screen_failure_reason": N_("Screen failure reason"),
    "screening_date": N_("Screening date"),
    "serious_comorbidity": N_("Serious comorbidity"),
    "serious_congenital": N_("Serious congenital"),
    "serious_death": N_("Serious death"),
    "serious_disability": N_("Serious disability"),
    "serious_hospitalisation": N_("Serious hospitalisation"),
    "serious_life_threatening": N_("Serious life threatening"),
    "serious_medically_important": N_("Serious medically important"),
    "severe_allergy_history": N_("Severe allergy history"),
    "severe_infection": N_("Severe infection"),
    "signatures": N_("Signatures"),
    "start_date": N_("Start date"),
    "start_date_reported": N_("Start date reported"),
    "status": N_("Status"),
    "term": N_("Term"),
    "values": N_("Values"),
    "verbatim": N_("Verbatim"),
    "visit": N_("Visit"),
}


def label_of(name: str) -> str:
    """``baseline_diameter_mm`` -> ``Baseline diameter mm`` (:data:`FIELD_LABELS`, else the field's name, readable)."""
    if name in FIELD_LABELS:
        return FIELD_LABELS[name]
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def display(value: Any, zone: str | None = None) -> str:
    """A value as one line of text (codes as the standards write them; times in ``zone``, ISO 8601)."""
    from abscopal.web.templating import local_time

    if value is None:
        return "—"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return local_time(value, zone)
    if isinstance(value, dt.date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        parts = [f"{f.name}={display(getattr(value, f.name), zone)}" for f in dataclasses.fields(value)]
        return ", ".join(p for p in parts if not p.endswith("=—"))
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {display(v, zone)}" for k, v in value.items())
    if isinstance(value, tuple | list):
        return "; ".join(display(v, zone) for v in value)
    return str(value)


def items_of(value: Any, zone: str | None = None) -> tuple[str, ...]:
    """A nested value (list, map) as lines."""
    if isinstance(value, Mapping):
        return tuple(f"{k}: {display(v, zone)}" for k, v in value.items())
    if isinstance(value, tuple | list):
        return tuple(display(v, zone) for v in value)
    return () if value is None else (display(value, zone),)


def _control_value(kind: str, value: Any, zone: str) -> str:
    if value is None:
        return ""
    if kind == "checkbox":
        return "on" if value else ""
    if kind == "tristate":
        return "yes" if value else "no"
    if kind == "select" and isinstance(value, enum.Enum):
        return str(value.value)
    if kind == "datetime" and isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")
    if kind == "date" and isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def editable_fields(cls: type[Any]) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if f.name != "subject_id"]


def form_fields(
    cls: type[Any], obj: Any | None = None, *, posted: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None, zone: str = "UTC",
) -> list[FormField]:  # fmt: skip
    """The controls of ``cls``'s form: from ``obj`` (an edit), else the defaults; ``posted`` overrides both."""
    hints = field_hints(cls)
    errors = errors or {}
    out = []
    for f in editable_fields(cls):
        hint = hints[f.name]
        kind = _kind(hint)
        inner, optional = _unwrap(hint)
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        if obj is not None:
            current = getattr(obj, f.name)
        elif f.default is not dataclasses.MISSING:
            current = f.default
        elif f.default_factory is not dataclasses.MISSING:
            current = f.default_factory()
        else:
            current = None
        value = _control_value(kind, current, zone)
        if posted is not None and kind != "readonly":
            value = posted.get(f.name, "") or ""
        options: tuple[tuple[str, str], ...] = ()
        if kind == "select":
            options = tuple((str(m.value), str(m.value)) for m in inner)
        out.append(
            FormField(
                f.name, label_of(f.name), kind, value, options, required=not optional and not has_default,
                error=errors.get(f.name), shown=items_of(current, zone) if kind == "readonly" else (),
            )
        )  # fmt: skip
    return out


def _field_of(loc: tuple[Any, ...]) -> str:
    return str(loc[0]) if loc else ""


def parse(cls: type[Any], posted: Mapping[str, str], *, base: Any | None = None, zone: str = "UTC") -> dict[str, Any]:
    """The posted form as the API's validated body (a dict of typed values, without ``subject_id``).

    Read-only fields keep ``base``'s values (the record being edited), else the class's defaults. An empty
    optional control is None; an empty required one is "missing". Raises :class:`ValidationError` naming the
    first bad field; :func:`errors_of` gives every one.
    """
    hints = field_hints(cls)
    data: dict[str, Any] = {}
    for f in editable_fields(cls):
        kind = _kind(hints[f.name])
        _, optional = _unwrap(hints[f.name])
        raw = (posted.get(f.name) or "").strip()
        if kind == "readonly":
            if base is not None:
                data[f.name] = getattr(base, f.name)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                data[f.name] = ()  # a new record starts with no nested items (e.g. no measurements yet)
            continue
        if kind == "checkbox":
            data[f.name] = raw not in ("", "off", "false")
            continue
        if raw == "":
            if optional:
                data[f.name] = None
            continue  # missing: the model's default, or its "Field required"
        if kind == "tristate":
            data[f.name] = {"yes": True, "no": False}.get(raw, raw)
        elif kind == "datetime":
            try:
                local = dt.datetime.fromisoformat(raw)
            except ValueError:
                raise ValidationError(
                    f.name, Message(N_("{value} is not a date and time (YYYY-MM-DDTHH:MM)"), value=repr(raw))
                ) from None
            if local.tzinfo is None:
                local = local.replace(tzinfo=ZoneInfo(zone))
            data[f.name] = local.astimezone(dt.UTC)
        else:
            data[f.name] = raw
    unknown = sorted(k for k in posted if k not in hints and k not in RESERVED)
    if unknown:
        raise ValidationError(unknown[0], Message(N_("is not a field of this record")))
    model = input_model(cls)
    try:
        body = model.model_validate(data)
    except PydanticError as exc:
        first = exc.errors()[0]
        error = ValidationError(_field_of(tuple(first.get("loc", ()))), pydantic_reason(first))
        error.all = {_field_of(tuple(e.get("loc", ()))): pydantic_reason(e) for e in exc.errors()}  # type: ignore[attr-defined]
        raise error from None
    return dict(body)


def errors_of(exc: ValidationError, names: set[str]) -> tuple[dict[str, str], str | None]:
    """(errors by form field, the sentence for the top of the form when no field is named)."""
    found: dict[str, str] = dict(getattr(exc, "all", {}) or {})
    if not found:
        head = exc.field.replace("/", ".").split(".")[0] if exc.field else ""
        if head in names:
            found[head] = exc.reason
    found = {k: v for k, v in found.items() if k in names}
    return found, (None if found else str(exc))
