"""Synthetic screening records: eligible patients inside every protocol limit, screen failures with a reason.

Limits are read from the protocol's eligibility checks (protocols/nct05906329.toml, inclusion 1-11 and
exclusion 1-9 of the registry record), so an amendment changes what the generator produces. Lab values use
the protocol's units (g/L, 10^9/L) and site-style upper limits of normal for AST, ALT and ALP.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from abscopal.domain import DietLevel, Histology, HistologyConfirmation, LabValue, Screening, Sex
from abscopal.protocol.model import LabMaxUlnCheck, LabMinCheck, OneOfCheck, Protocol, RangeCheck
from abscopal.synth.draws import pick, randint

# Histology mix of advanced NSCLC (adenocarcinoma about half, squamous about a third).
_HISTOLOGY: tuple[tuple[Histology, float], ...] = (
    (Histology.ADENOCARCINOMA, 0.55),
    (Histology.SQUAMOUS, 0.31),
    (Histology.ADENOSQUAMOUS, 0.06),
    (Histology.LARGE_CELL, 0.05),
    (Histology.SARCOMATOID, 0.03),
)
_DIET: tuple[tuple[DietLevel, float], ...] = (
    (DietLevel.NORMAL, 0.76),
    (DietLevel.SOFT, 0.14),
    (DietLevel.SEMI_LIQUID, 0.07),
    (DietLevel.LIQUID, 0.03),
)
# Upper limits of normal (U/L) as Chinese hospital laboratories commonly print them, by sex.
_ULN: dict[str, dict[Sex, float]] = {
    "ast": {Sex.MALE: 40.0, Sex.FEMALE: 35.0},
    "alt": {Sex.MALE: 50.0, Sex.FEMALE: 40.0},
    "alp": {Sex.MALE: 125.0, Sex.FEMALE: 135.0},
}


@dataclass(frozen=True, slots=True)
class Limits:
    """The numeric eligibility limits the generator needs, read once from a protocol."""

    age: tuple[float, float]
    ecog: tuple[float, float]
    life_expectancy_min: float
    lesions_max: int
    organs_max: int
    histologies: tuple[str, ...]
    lab_min: dict[str, tuple[float, str]]
    lab_max_uln: dict[str, float]


def limits_from(protocol: Protocol) -> Limits:
    """Collect the range, one-of and lab checks of the protocol's inclusion criteria."""
    ranges: dict[str, RangeCheck] = {}
    histologies: tuple[str, ...] = tuple(h.value for h, _ in _HISTOLOGY)
    lab_min: dict[str, tuple[float, str]] = {}
    lab_max: dict[str, float] = {}
    for criterion in protocol.eligibility.inclusion.values():
        for check in criterion.checks.values():
            if isinstance(check, RangeCheck):
                ranges[check.field] = check
            elif isinstance(check, OneOfCheck) and check.field == "histology":
                histologies = tuple(check.values)
            elif isinstance(check, LabMinCheck):
                lab_min[check.lab] = (check.min, check.unit)
            elif isinstance(check, LabMaxUlnCheck):
                lab_max[check.lab] = check.max_x_uln

    def bounds(name: str, low: float, high: float) -> tuple[float, float]:
        c = ranges.get(name)
        if c is None:
            return (low, high)
        return (c.min if c.min is not None else low, c.max if c.max is not None else high)

    return Limits(
        age=bounds("age_years", 18, 65),
        ecog=bounds("ecog", 0, 1),
        life_expectancy_min=bounds("life_expectancy_months", 6, 60)[0],
        lesions_max=int(bounds("lesion_count", 1, 10)[1]),
        organs_max=int(bounds("metastatic_organ_count", 0, 5)[1]),
        histologies=histologies,
        lab_min=lab_min,
        lab_max_uln=lab_max,
    )


def birth_date_for_age(r: random.Random, on: dt.date, age: int) -> dt.date:
    """A birth date giving exactly ``age`` completed years on ``on``."""
    year = on.year - age
    last_birthday = dt.date(year, on.month, 28 if (on.month, on.day) == (2, 29) else on.day)
    return last_birthday - dt.timedelta(days=randint(r, 0, 364))


def age_on(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def eligible_age(r: random.Random, lim: Limits) -> int:
    """Age of an enrolled patient: advanced NSCLC, median near 57 within the protocol's 18-65 window."""
    low, high = int(lim.age[0]), int(lim.age[1])
    age = round(r.gauss(56.0, 7.0))
    return min(max(age, low), high)


def _lab_value(value: float, minimum: float, decimals: int) -> float:
    v = round(value, decimals)
    step = 10.0**-decimals
    while v < minimum:
        v = round(v + step, decimals)
    return v


def eligible_labs(r: random.Random, sex: Sex, lim: Limits) -> dict[str, LabValue]:
    """Blood counts and liver enzymes inside the protocol's limits (inclusion 6)."""
    labs: dict[str, LabValue] = {}
    hb_min, hb_unit = lim.lab_min.get("haemoglobin", (100.0, "g/L"))
    hb = r.gauss(134.0 if sex is Sex.MALE else 121.0, 11.0)
    if hb < hb_min:
        hb = hb_min + abs(r.gauss(8.0, 5.0))
    labs["haemoglobin"] = LabValue(_lab_value(hb, hb_min, 0), hb_unit)
    ne_min, ne_unit = lim.lab_min.get("neutrophils", (1.8, "10^9/L"))
    ne = r.lognormvariate(1.35, 0.3)  # median 3.9 x10^9/L
    if ne < ne_min:
        ne = ne_min + abs(r.gauss(0.6, 0.4))
    neutrophils = _lab_value(ne, ne_min, 2)
    labs["neutrophils"] = LabValue(neutrophils, ne_unit)
    wbc_min, wbc_unit = lim.lab_min.get("wbc", (3.5, "10^9/L"))
    labs["wbc"] = LabValue(_lab_value(max(neutrophils / r.uniform(0.55, 0.75), wbc_min), wbc_min, 1), wbc_unit)
    plt_min, plt_unit = lim.lab_min.get("platelets", (100.0, "10^9/L"))
    plt = r.gauss(235.0, 60.0)
    plt = plt if plt >= max(plt_min, 110.0) else max(plt_min, 110.0) + abs(r.gauss(20.0, 15.0))
    labs["platelets"] = LabValue(_lab_value(plt, plt_min, 0), plt_unit)
    medians = {"ast": (3.2, 0.35), "alt": (3.1, 0.45), "alp": (4.45, 0.3)}  # ~24, ~22, ~86 U/L
    for lab, (mu, sigma) in medians.items():
        uln = _ULN[lab][sex if sex in (Sex.MALE, Sex.FEMALE) else Sex.MALE]
        cap = lim.lab_max_uln.get(lab, 2.5) * uln
        v = r.lognormvariate(mu, sigma)
        while v > cap:
            v = r.lognormvariate(mu, sigma)
        labs[lab] = LabValue(float(int(v)), "U/L", uln)
    for lab, (minimum, unit) in lim.lab_min.items():  # any further lab the protocol asks for
        if lab not in labs:
            labs[lab] = LabValue(round(minimum * r.uniform(1.2, 2.0), 2), unit)
    return labs


def eligible_screening(
    r: random.Random,
    subject_id: str,
    screening_date: dt.date,
    consent_date: dt.date,
    age: int,
    sex: Sex,
    lesion_count: int,
    organ_count: int,
    lim: Limits,
) -> Screening:
    """A screening record that meets every inclusion criterion and no exclusion criterion."""
    histology = Histology(pick(r, tuple((Histology(h), w) for h, w in _HISTOLOGY if h.value in lim.histologies)))
    ecog = 0 if r.random() < 0.35 else 1
    ecog = min(max(ecog, int(lim.ecog[0])), int(lim.ecog[1]))
    expectancy = r.choice((8.0, 9.0, 12.0, 12.0, 18.0, 24.0))
    if expectancy <= lim.life_expectancy_min:
        expectancy = lim.life_expectancy_min + 3.0
    return Screening(
        subject_id=subject_id,
        screening_date=screening_date,
        consent_date=consent_date,
        age_years=age,
        ecog=ecog,
        life_expectancy_months=expectancy,
        diet=pick(r, _DIET),
        severe_allergy_history=False,
        labs=eligible_labs(r, sex, lim),
        histology=histology,
        histology_confirmed_by=(
            HistologyConfirmation.HISTOLOGY if r.random() < 0.85 else HistologyConfirmation.CYTOLOGY
        ),
        lesion_count=lesion_count,
        metastatic_organ_count=organ_count,
        has_measurable_disease=True,
        immunotherapy_resistance_confirmed=True,
        no_standard_treatment_option=True,
        refuses_cooperation=False,
        other_trial_within_3_months=False,
        brain_metastases=False,
        investigator_judges_unsuitable=False,
        severe_infection=False,
        serious_comorbidity=False,
        prior_immune_related_toxicity=False,
        prior_radiotherapy=False,
    )


# --- screen failures: each turns one criterion false and says why, as a coordinator would write it

_Failure = Callable[[random.Random, Screening, Limits], tuple[Screening, str]]


def _too_old(r: random.Random, s: Screening, lim: Limits) -> tuple[Screening, str]:
    age = int(lim.age[1]) + randint(r, 1, 12)
    return replace(s, age_years=age), f"Age {age} years is above the protocol maximum of {int(lim.age[1])}"


def _ecog(r: random.Random, s: Screening, lim: Limits) -> tuple[Screening, str]:
    ecog = int(lim.ecog[1]) + 1 if r.random() < 0.9 else int(lim.ecog[1]) + 2
    return replace(
        s, ecog=ecog
    ), f"ECOG performance status {ecog} (protocol allows {int(lim.ecog[0])}-{int(lim.ecog[1])})"


def _brain(r: random.Random, s: Screening, lim: Limits) -> tuple[Screening, str]:
    n = r.choice(("a single", "two", "multiple"))
    return replace(s, brain_metastases=True), f"Brain metastases ({n}) on screening contrast MRI"


def _lab_low(lab: str, low: float, high: float, label: str) -> _Failure:
    def fail(r: random.Random, s: Screening, lim: Limits) -> tuple[Screening, str]:
        minimum, unit = lim.lab_min.get(lab, (high, ""))
        value = round(r.uniform(low, min(high, minimum * 0.98)), 2 if minimum < 10 else 0)
        labs = dict(s.labs)
        labs[lab] = LabValue(value, unit)
        if lab == "neutrophils":  # neutropenia lowers the white count too
            wbc = labs["wbc"]
            labs["wbc"] = LabValue(round(max(value / r.uniform(0.5, 0.7), value + 0.8), 1), wbc.unit, wbc.uln)
        return replace(s, labs=labs), f"{label} {value:g} {unit} is below the protocol minimum of {minimum:g} {unit}"

    return fail


def _liver(r: random.Random, s: Screening, lim: Limits) -> tuple[Screening, str]:
    lab = r.choice(("alt", "ast"))
    old = s.labs[lab]
    uln = old.uln or 40.0
    factor = lim.lab_max_uln.get(lab, 2.5)
    value = float(int(uln * r.uniform(factor + 0.2, factor + 3.0)))
    labs = dict(s.labs)
    labs[lab] = LabValue(value, old.unit, uln)
    return replace(s, labs=labs), f"{lab.upper()} {value:g} U/L is above {factor:g} x ULN ({uln:g} U/L)"


def _prior_rt(r: random.Random, s: Screening, lim: Limits) -> tuple[Screening, str]:
    what = r.choice(("thoracic radiotherapy", "palliative bone radiotherapy", "SBRT to a lung nodule"))
    return replace(s, prior_radiotherapy=True), f"Previous radiotherapy ({what})"


def _too_many_lesions(r: random.Random, s: Screening, lim: Limits) -> tuple[Screening, str]:
    n = lim.lesions_max + randint(r, 1, 8)
    return replace(s, lesion_count=n), f"{n} lesions exceed the protocol maximum of {lim.lesions_max}"


def _too_many_organs(r: random.Random, s: Screening, lim: Limits) -> tuple[Screening, str]:
    n = lim.organs_max + randint(r, 1, 2)
    return (
        replace(s, metastatic_organ_count=n, lesion_count=max(s.lesion_count or 0, n + 1)),
        f"Metastases in {n} organs exceed the protocol maximum of {lim.organs_max}",
    )


def _no_resistance(r: random.Random, s: Screening, lim: Limits) -> tuple[Screening, str]:
    why = r.choice(
        (
            "exposure to immunotherapy shorter than 6 weeks",
            "progression not confirmed on a repeat scan",
            "ongoing partial response on immunotherapy",
        )
    )
    return replace(s, immunotherapy_resistance_confirmed=False), f"Immunotherapy resistance not confirmed: {why}"


def _histology(r: random.Random, s: Screening, lim: Limits) -> tuple[Screening, str]:
    h = Histology.SMALL_CELL if r.random() < 0.7 else Histology.OTHER
    text = "small cell carcinoma" if h is Histology.SMALL_CELL else "large cell neuroendocrine carcinoma"
    return replace(s, histology=h), f"Histology on review is {text}, not one of the five NSCLC types"


def _flag(field: str, text: str) -> _Failure:
    def fail(r: random.Random, s: Screening, lim: Limits) -> tuple[Screening, str]:
        values: dict[str, Any] = {field: True}
        return replace(s, **values), text

    return fail


def _life_expectancy(r: random.Random, s: Screening, lim: Limits) -> tuple[Screening, str]:
    months = max(1.0, lim.life_expectancy_min - r.choice((0.0, 1.0, 2.0, 3.0)))
    return replace(
        s, life_expectancy_months=months
    ), f"Expected survival {months:g} months (protocol requires > {lim.life_expectancy_min:g})"


def _missing_pathology(r: random.Random, s: Screening, lim: Limits) -> tuple[Screening, str]:
    return replace(
        s, histology=None, histology_confirmed_by=None
    ), "Pathology report not available (key information missing)"


FAILURES: tuple[tuple[_Failure, float], ...] = (
    (_too_old, 0.22),
    (_ecog, 0.12),
    (_brain, 0.13),
    (_no_resistance, 0.10),
    (_prior_rt, 0.09),
    (_lab_low("neutrophils", 0.9, 1.79, "Neutrophils"), 0.05),
    (_lab_low("haemoglobin", 78.0, 99.0, "Haemoglobin"), 0.05),
    (_liver, 0.04),
    (_too_many_lesions, 0.05),
    (_too_many_organs, 0.02),
    (_histology, 0.03),
    (
        _flag("serious_comorbidity", "Serious comorbidity (uncontrolled diabetes or COPD with respiratory failure)"),
        0.04,
    ),
    (_flag("severe_infection", "Active severe infection (pneumonia needing intravenous antibiotics)"), 0.02),
    (_flag("refuses_cooperation", "Declined to take part after the screening visit"), 0.02),
    (_flag("other_trial_within_3_months", "Took part in another clinical trial within the last 3 months"), 0.02),
    (_flag("prior_immune_related_toxicity", "Previous immune-related pneumonitis on immunotherapy"), 0.03),
    (_flag("severe_allergy_history", "History of severe allergy (anaphylaxis to contrast medium)"), 0.01),
    (_life_expectancy, 0.01),
    (_missing_pathology, 0.01),
)


def screen_failure(r: random.Random, eligible: Screening, lim: Limits) -> tuple[Screening, str]:
    """Turn an eligible record into a screen failure: one reason, sometimes two (15%)."""
    first = pick(r, FAILURES)
    screening, reason = first(r, eligible, lim)
    if r.random() < 0.15:
        second = pick(r, FAILURES)
        if second is not first:
            screening, more = second(r, screening, lim)
            reason = f"{reason}; {more}"
    return replace(screening, screen_failure_reason=reason), reason
