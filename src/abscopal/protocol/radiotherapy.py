"""Radiotherapy rules of NCT05906329: lesion roles, prescription and delivery checks, BED/EQD2, proposed deviations.

Source: the registry's regimen (conventional 1.8-2 Gy/f to 40-60 Gy on the primary, largest or symptomatic lesion;
low-dose 1.6 Gy once a week x4-6 on <= 10 other lesions; >= 1 measurable unirradiated observation lesion) and
Abscopal's defaults for windows and deviation classes (specs/radiotherapy.md §1-3), read from the protocol's
``[radiotherapy]`` section. Radiobiology: the linear-quadratic model (BED = D(1 + d/(α/β)), EQD2 = BED/(1 + 2/(α/β));
Fowler, Br J Radiol 1989;62:679) with the optional repopulation term ln2·(T - Tk)/(α·Tp).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from abscopal.domain import (
    DeviationCheck,
    DeviationClass,
    Fraction,
    FractionStatus,
    ImmunotherapyCycle,
    Lesion,
    ProtocolDeviation,
    RadiotherapyCourse,
    RtRole,
)
from abscopal.errors import ValidationError
from abscopal.messages import N_, Joined, Message
from abscopal.protocol.calendar import WorkingDays
from abscopal.protocol.model import DeviationThresholds, Radiobiology, Radiotherapy

_EPS = 1e-9

# ----------------------------------------------------------------------------- what was given
# The one definition of a delivered fraction and of the first study treatment; the safety, response, QoL and
# schedule engines, the store, the synthetic cohort and the report import these instead of testing statuses.


def is_delivered(fraction: Fraction) -> bool:
    """A fraction that was given, in full or in part (status delivered or partial); a missed fraction was not."""
    return fraction.status is not FractionStatus.MISSED


def is_fully_delivered(fraction: Fraction) -> bool:
    """A fraction given in full (status delivered): only these are checked against the dose per fraction."""
    return fraction.status is FractionStatus.DELIVERED


def delivered_fractions(fractions: Iterable[Fraction]) -> list[Fraction]:
    """The fractions that were given (:func:`is_delivered`), in their input order."""
    return [f for f in fractions if is_delivered(f)]


def delivered_dose_gy(fractions: Iterable[Fraction]) -> float:
    """Physical dose given: the sum of the recorded doses of the delivered fractions (missed ones give none)."""
    return sum((f.dose_gy for f in fractions if is_delivered(f)), 0.0)


def irradiated_lesions(fractions: Iterable[Fraction]) -> set[str]:
    """Lesions that received dose: at least one delivered fraction with a dose above 0 Gy."""
    return {f.lesion_id for f in fractions if is_delivered(f) and f.dose_gy > 0}


def first_rt_fraction(fractions: Iterable[Fraction]) -> dt.date | None:
    """Date of the first delivered RT fraction (the TEAE and TTD origin ``first_rt_fraction``), None if none."""
    return min((f.date for f in fractions if is_delivered(f)), default=None)


def study_treatment_dates(
    fractions: Iterable[Fraction], cycles: Iterable[ImmunotherapyCycle], enrolment_date: dt.date | None = None
) -> list[dt.date]:
    """Every date a study treatment was given, sorted: delivered RT fractions and immunotherapy cycles given on
    or after enrolment (a cycle before enrolment is prior therapy, not study treatment; ae-qol.md A4)."""
    rt = [f.date for f in fractions if is_delivered(f)]
    io = [c.date for c in cycles if c.given and (enrolment_date is None or c.date >= enrolment_date)]
    return sorted(rt + io)


def first_study_treatment(
    fractions: Iterable[Fraction], cycles: Iterable[ImmunotherapyCycle], enrolment_date: dt.date | None = None
) -> dt.date | None:
    """The first study treatment: the earliest of :func:`study_treatment_dates` (the response reference date of
    response-rules.md §4 and §6, the OS origin, and the TEAE anchor ``first_study_treatment``); None if none."""
    dates = study_treatment_dates(fractions, cycles, enrolment_date)
    return dates[0] if dates else None


# ----------------------------------------------------------------------------- radiobiology


def bed(dose_per_fraction_gy: float, fractions: int, alpha_beta_gy: float) -> float:
    """Biologically effective dose, BED = n·d·(1 + d/(α/β)) (linear-quadratic model; Fowler 1989)."""
    _positive(alpha_beta_gy, "alpha_beta_gy")
    if dose_per_fraction_gy < 0 or fractions < 0:
        raise ValidationError("dose", "dose per fraction and number of fractions cannot be negative")
    return fractions * dose_per_fraction_gy * (1.0 + dose_per_fraction_gy / alpha_beta_gy)


def bed_of_doses(doses_gy: Sequence[float], alpha_beta_gy: float) -> float:
    """BED of fractions of unequal size: the sum of d_i·(1 + d_i/(α/β)) (BEDs of the same tissue add)."""
    _positive(alpha_beta_gy, "alpha_beta_gy")
    return sum(d * (1.0 + d / alpha_beta_gy) for d in doses_gy)


def eqd2_of_bed(bed_gy: float, alpha_beta_gy: float) -> float:
    """Equivalent dose in 2-Gy fractions, EQD2 = BED / (1 + 2/(α/β))."""
    _positive(alpha_beta_gy, "alpha_beta_gy")
    return bed_gy / (1.0 + 2.0 / alpha_beta_gy)


def eqd2(dose_per_fraction_gy: float, fractions: int, alpha_beta_gy: float) -> float:
    """EQD2 of n fractions of d Gy."""
    return eqd2_of_bed(bed(dose_per_fraction_gy, fractions, alpha_beta_gy), alpha_beta_gy)


def repopulation_loss(overall_days: float, radiobiology: Radiobiology) -> float:
    """BED lost to tumour repopulation, ln2·(T - Tk)/(α·Tp) for T > Tk, else 0 (specs/radiotherapy.md §3)."""
    if overall_days < 0:
        raise ValidationError("overall_days", "cannot be negative")
    excess = overall_days - radiobiology.kickoff_days
    if excess <= 0:
        return 0.0
    return math.log(2) * excess / (radiobiology.alpha_per_gy * radiobiology.potential_doubling_days)


def _positive(value: float, name: str) -> None:
    if not value > 0:
        raise ValidationError(name, f"must be positive, got {value}")


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class RtCheck:
    """One check: passed or not, a sentence, and for a failure the proposed deviation class and the values."""

    check: DeviationCheck
    lesion_id: str | None
    ok: bool
    message: str
    deviation_class: DeviationClass | None = None
    values: str = ""


@dataclass(frozen=True, slots=True)
class LesionDose:
    """Physical dose, BED and EQD2 of one lesion, prescribed and delivered, with the α/β used."""

    lesion_id: str
    role: RtRole
    alpha_beta_gy: float
    prescribed_gy: float
    prescribed_bed_gy: float
    prescribed_eqd2_gy: float
    delivered_gy: float
    delivered_bed_gy: float
    delivered_eqd2_gy: float
    late_alpha_beta_gy: float
    prescribed_bed_late_gy: float
    prescribed_eqd2_late_gy: float
    repopulation_loss_gy: float = 0.0


@dataclass(frozen=True, slots=True)
class PlanReport:
    subject_id: str
    checks: tuple[RtCheck, ...]
    doses: tuple[LesionDose, ...]
    deviations: tuple[ProtocolDeviation, ...]

    @property
    def failures(self) -> list[RtCheck]:
        return [c for c in self.checks if not c.ok]

    @property
    def major(self) -> list[ProtocolDeviation]:
        return [d for d in self.deviations if d.deviation_class is DeviationClass.MAJOR]


# ----------------------------------------------------------------------------- lesion roles


def measurable_by_size(lesion: Lesion, rules: Radiotherapy) -> bool:
    """RECIST 1.1 measurability from the data: >= 10 mm, or a node with short axis >= 15 mm."""
    if not lesion.measurable:
        return False
    return measurable_size(lesion.baseline_diameter_mm, lesion.is_node, rules)


def measurable_size(diameter_mm: float | None, is_node: bool, rules: Radiotherapy) -> bool:
    """Measurable by size with the protocol's limits: long axis >= ``measurable_min_mm``, or a node's short axis
    >= ``measurable_node_short_axis_min_mm`` (the RECIST 1.1 §3.1.1 values; a test keeps them equal)."""
    if diameter_mm is None:
        return False
    obs = rules.observation
    return diameter_mm >= (obs.measurable_node_short_axis_min_mm if is_node else obs.measurable_min_mm)


_NOT_LISTED = N_("lesion {lesion} is not in the lesion list")


def validate_roles(lesions: Sequence[Lesion], courses: Sequence[RadiotherapyCourse]) -> None:
    """A lesion has exactly one role: a lesion listed twice with two roles, or a course whose role differs from
    its lesion's, is an error naming the lesion (specs/radiotherapy.md §1)."""
    roles: dict[str, RtRole] = {}
    for i, lesion in enumerate(lesions):
        seen = roles.get(lesion.lesion_id)
        if seen is not None and seen is not lesion.rt_role:
            raise ValidationError(
                f"lesions[{i}].rt_role",
                Message(
                    N_("lesion {lesion} is listed as {role} and as {other}; a lesion has exactly one role"),
                    lesion=lesion.lesion_id,
                    role=seen.value,
                    other=lesion.rt_role.value,
                ),
            )
        if seen is not None:
            raise ValidationError(
                f"lesions[{i}].lesion_id", Message(N_("lesion {lesion} is listed twice"), lesion=lesion.lesion_id)
            )
        roles[lesion.lesion_id] = lesion.rt_role
    for i, course in enumerate(courses):
        role = roles.get(course.lesion_id)
        if role is None:
            raise ValidationError(f"courses[{i}].lesion_id", Message(_NOT_LISTED, lesion=course.lesion_id))
        if course.role is not role:
            raise ValidationError(
                f"courses[{i}].role",
                Message(
                    N_(
                        "lesion {lesion} is {role} in the lesion list but has a {other} course; a lesion has exactly "
                        "one role"
                    ),
                    lesion=course.lesion_id,
                    role=role.value,
                    other=course.role.value,
                ),
            )
        if role in (RtRole.OBSERVATION, RtRole.NONE):
            raise ValidationError(
                f"courses[{i}].role",
                Message(
                    N_("lesion {lesion} is {role}: it cannot have a prescription"),
                    lesion=course.lesion_id,
                    role=role.value,
                ),
            )


def check_lesion_roles(
    lesions: Sequence[Lesion],
    rules: Radiotherapy,
    conventional_selection: str | None = None,
    irradiated: Collection[str] = (),
) -> list[RtCheck]:
    """Checks on the lesion registry (specs/radiotherapy.md §1). ``irradiated``: lesion ids that received dose."""
    validate_roles(lesions, ())
    dev = rules.deviations
    limit_class = DeviationClass(dev.registry_limit_class)
    major = DeviationClass.MAJOR
    out: list[RtCheck] = []
    by_role: dict[RtRole, list[Lesion]] = defaultdict(list)
    for lesion in lesions:
        by_role[lesion.rt_role].append(lesion)

    conventional = by_role[RtRole.CONVENTIONAL]
    n_conv, max_conv = len(conventional), rules.conventional.max_lesions
    ok = 1 <= n_conv <= max_conv
    out.append(
        RtCheck(
            DeviationCheck.CONVENTIONAL_COUNT,
            None,
            ok,
            Message(N_("{n} conventional lesion(s); the protocol allows 1 to {max}"), n=str(n_conv), max=str(max_conv)),
            None if ok else limit_class,
            f"conventional lesions = {n_conv}",
        )
    )

    low = by_role[RtRole.LOW_DOSE]
    ok = len(low) <= rules.low_dose.max_lesions
    out.append(
        RtCheck(
            DeviationCheck.LOW_DOSE_COUNT,
            None,
            ok,
            Message(N_("{n} low-dose lesion(s); at most {max}"), n=str(len(low)), max=str(rules.low_dose.max_lesions)),
            None if ok else major,
            f"low-dose lesions = {len(low)}",
        )
    )

    observation = by_role[RtRole.OBSERVATION]
    measurable = [
        lesion
        for lesion in observation
        if measurable_by_size(lesion, rules) or not rules.observation.must_be_measurable
    ]
    ok = len(measurable) >= rules.observation.min_lesions
    detail = Joined(", ", (_observation_item(lesion, lesion in measurable) for lesion in observation))
    observed = {
        "n": str(len(measurable)),
        "min_mm": f"{rules.observation.measurable_min_mm:g}",
        "node_mm": f"{rules.observation.measurable_node_short_axis_min_mm:g}",
        "min": str(rules.observation.min_lesions),
    }
    out.append(
        RtCheck(
            DeviationCheck.OBSERVATION_MEASURABLE,
            None,
            ok,
            Message(_OBSERVATION_DETAIL, **observed, detail=detail) if detail else Message(_OBSERVATION, **observed),
            None if ok else major,
            f"measurable observation lesions = {len(measurable)}",
        )
    )
    for lesion in observation:
        if lesion.lesion_id in irradiated:
            out.append(
                RtCheck(
                    DeviationCheck.OBSERVATION_IRRADIATED,
                    lesion.lesion_id,
                    False,
                    Message(
                        N_("observation lesion {lesion} received radiotherapy; it must stay unirradiated"),
                        lesion=lesion.lesion_id,
                    ),
                    major,
                    f"lesion {lesion.lesion_id} role observation, irradiated",
                )
            )

    for lesion in conventional:
        out.append(_selection_check(lesion, lesions, rules, conventional_selection))

    n_lesions = len(lesions)
    ok = n_lesions <= rules.limits.max_lesions
    out.append(
        RtCheck(
            DeviationCheck.LIMITS_LESIONS,
            None,
            ok,
            Message(
                N_("{n} lesion(s); at most {max} (inclusion 9)"), n=str(n_lesions), max=str(rules.limits.max_lesions)
            ),
            None if ok else limit_class,
            f"lesions = {n_lesions}",
        )
    )
    organs = metastatic_organs(lesions)
    ok = len(organs) <= rules.limits.max_metastatic_organs
    out.append(
        RtCheck(
            DeviationCheck.LIMITS_ORGANS,
            None,
            ok,
            Message(
                N_("{n} organ(s) with metastases ({organs}); at most {max} (inclusion 9)"),
                n=str(len(organs)),
                organs=Joined(", ", sorted(organs)) if organs else _NONE,
                max=str(rules.limits.max_metastatic_organs),
            ),
            None if ok else limit_class,
            f"organs with metastases = {len(organs)}",
        )
    )
    return out


def metastatic_organs(lesions: Sequence[Lesion]) -> set[str]:
    """Organs holding a lesion other than the primary tumour (nodes count under their organ label)."""
    return {lesion.organ.strip().lower() for lesion in lesions if not lesion.is_primary}


def _mm(value: float | None) -> str:
    return _NO_DIAMETER if value is None else f"{value:g} mm"


_NO_DIAMETER = Message(N_("no diameter"))
_NONE = Message(N_("none"))
_OBSERVATION = N_(
    "{n} measurable observation lesion(s) (>= {min_mm} mm, nodes >= {node_mm} mm short axis); at least {min} required"
)
_OBSERVATION_DETAIL = N_(
    "{n} measurable observation lesion(s) (>= {min_mm} mm, nodes >= {node_mm} mm short axis); at least {min} "
    "required: {detail}"
)


def _observation_item(lesion: Lesion, measurable: bool) -> Message:
    """``"L3 12 mm node (not measurable)"``: an observation lesion in the observation check's sentence."""
    if lesion.is_node:
        template = N_("{lesion} {size} node") if measurable else N_("{lesion} {size} node (not measurable)")
    else:
        template = N_("{lesion} {size}") if measurable else N_("{lesion} {size} (not measurable)")
    return Message(template, lesion=lesion.lesion_id, size=_mm(lesion.baseline_diameter_mm))


def _selection_check(lesion: Lesion, lesions: Sequence[Lesion], rules: Radiotherapy, flag: str | None) -> RtCheck:
    """The conventional lesion is the primary, the largest or a symptomatic lesion, and the flag agrees with the
    data (largest = greatest baseline diameter among the patient's lesions)."""
    sizes = [x.baseline_diameter_mm for x in lesions if x.baseline_diameter_mm is not None]
    largest = (
        lesion.baseline_diameter_mm is not None and bool(sizes) and lesion.baseline_diameter_mm >= max(sizes) - _EPS
    )
    facts = {"primary": lesion.is_primary, "largest": largest, "symptomatic": lesion.is_symptomatic}
    allowed = rules.conventional.selection
    biggest = max(
        (x for x in lesions if x.baseline_diameter_mm is not None),
        key=lambda x: x.baseline_diameter_mm or 0.0,
        default=None,
    )
    values = (
        f"lesion {lesion.lesion_id}: flag={flag or 'none'}, primary={lesion.is_primary}, "
        f"symptomatic={lesion.is_symptomatic}, diameter={_mm(lesion.baseline_diameter_mm)}"
        + (f", largest lesion={biggest.lesion_id} {_mm(biggest.baseline_diameter_mm)}" if biggest else "")
    )
    if flag is not None:
        if flag not in allowed:
            return RtCheck(
                DeviationCheck.CONVENTIONAL_SELECTION,
                lesion.lesion_id,
                False,
                Message(
                    N_("conventional lesion {lesion} is flagged {flag}; the protocol allows {allowed}"),
                    lesion=lesion.lesion_id,
                    flag=repr(flag),
                    allowed=Joined(", ", allowed),
                ),
                DeviationClass.MAJOR,
                values,
            )
        if not facts[flag]:
            why = {
                "primary": Message(N_("the lesion is not marked as the primary tumour")),
                "symptomatic": Message(N_("the lesion is not marked symptomatic")),
                "largest": (
                    Message(
                        N_("lesion {other} is larger ({other_size} vs {size})"),
                        other=biggest.lesion_id,
                        other_size=_mm(biggest.baseline_diameter_mm),
                        size=_mm(lesion.baseline_diameter_mm),
                    )
                    if biggest is not None
                    else Message(N_("no baseline diameter is recorded"))
                ),
            }[flag]
            return RtCheck(
                DeviationCheck.CONVENTIONAL_SELECTION,
                lesion.lesion_id,
                False,
                Message(
                    N_("conventional lesion {lesion} is flagged {flag} but {why}"),
                    lesion=lesion.lesion_id,
                    flag=flag,
                    why=why,
                ),
                DeviationClass.MAJOR,
                values,
            )
        return RtCheck(
            DeviationCheck.CONVENTIONAL_SELECTION,
            lesion.lesion_id,
            True,
            Message(N_("conventional lesion {lesion} is the {flag} lesion"), lesion=lesion.lesion_id, flag=flag),
        )
    reasons = [name for name in allowed if facts[name]]
    if reasons:
        return RtCheck(
            DeviationCheck.CONVENTIONAL_SELECTION,
            lesion.lesion_id,
            True,
            Message(
                N_("conventional lesion {lesion} is {facts}"), lesion=lesion.lesion_id, facts=Joined(" and ", reasons)
            ),
        )
    return RtCheck(
        DeviationCheck.CONVENTIONAL_SELECTION,
        lesion.lesion_id,
        False,
        Message(
            N_("conventional lesion {lesion} is neither {options}"),
            lesion=lesion.lesion_id,
            options=Joined(", nor ", allowed),
        ),
        DeviationClass.MAJOR,
        values,
    )


# ----------------------------------------------------------------------------- prescription & delivery


def _range(bounds: Any) -> dict[str, str]:
    """A protocol range's bounds as a message's ``min`` and ``max`` (``:g``, as the sentences write them)."""
    return {"min": f"{bounds.min:g}", "max": f"{bounds.max:g}"}


def _pct_off(actual: float, expected: float) -> float:
    return abs(actual - expected) / expected * 100.0


def _band(pct: float, minor: float, major: float) -> DeviationClass | None:
    """Acceptable below ``minor`` %, minor from ``minor`` to ``major`` % inclusive, major above ``major`` %."""
    if pct > major + _EPS:
        return DeviationClass.MAJOR
    if pct >= minor - _EPS:
        return DeviationClass.MINOR
    return None


def delivered_total_class(
    prescribed_gy: float, delivered_gy: float, deviations: DeviationThresholds
) -> DeviationClass | None:
    """Delivered vs prescribed total: 5-10% off minor, more than 10% off major (radiotherapy.md §2)."""
    pct = _pct_off(delivered_gy, prescribed_gy)
    return _band(pct, deviations.delivered_total_minor_pct, deviations.delivered_total_major_pct)


def cfrt_interruption_class(extra_working_days: int, deviations: DeviationThresholds) -> DeviationClass | None:
    """Unplanned CFRT prolongation: 3-5 working days minor, more than 5 major (radiotherapy.md §2)."""
    if extra_working_days > deviations.cfrt_interruption_major_working_days:
        return DeviationClass.MAJOR
    if extra_working_days >= deviations.cfrt_interruption_minor_working_days:
        return DeviationClass.MINOR
    return None


def check_prescription(course: RadiotherapyCourse, rules: Radiotherapy) -> list[RtCheck]:
    """Dose per fraction, total dose and number of fractions against the role's regimen (spec §2)."""
    d, n, total = course.dose_per_fraction_gy, course.fractions, course.total_dose_gy
    lid = course.lesion_id
    values = f"{d:g} Gy x {n} = {total:g} Gy"
    if course.role is RtRole.CONVENTIONAL:
        c = rules.conventional
        problems: list[str] = []
        if not c.dose_per_fraction_gy.min - _EPS <= d <= c.dose_per_fraction_gy.max + _EPS:
            problems.append(
                Message(N_("{dose} Gy/f outside {min}-{max}"), dose=f"{d:g}", **_range(c.dose_per_fraction_gy))
            )
        if not c.total_dose_gy.min - _EPS <= total <= c.total_dose_gy.max + _EPS:
            problems.append(Message(N_("{dose} Gy outside {min}-{max}"), dose=f"{total:g}", **_range(c.total_dose_gy)))
        if not c.fractions.min <= n <= c.fractions.max:
            problems.append(Message(N_("{n} fractions outside {min}-{max}"), n=str(n), **_range(c.fractions)))
        ok = not problems
        return [
            RtCheck(
                DeviationCheck.CFRT_PRESCRIPTION,
                lid,
                ok,
                Message(N_("conventional {values}"), values=values)
                if ok
                else Message(N_("conventional {values}: {problems}"), values=values, problems=Joined("; ", problems)),
                None if ok else DeviationClass.MAJOR,
                values,
            )
        ]
    low, dev = rules.low_dose, rules.deviations
    pct = _pct_off(d, low.dose_per_fraction_gy)
    cls = _band(pct, dev.ldrt_dose_minor_pct, dev.ldrt_dose_major_pct)
    out = [
        RtCheck(
            DeviationCheck.LDRT_DOSE_PER_FRACTION,
            lid,
            cls is None,
            Message(
                N_("low-dose {dose} Gy/f is {pct}% from {planned} Gy"),
                dose=f"{d:g}",
                pct=f"{pct:.1f}",
                planned=f"{low.dose_per_fraction_gy:g}",
            ),
            cls,
            f"{d:g} Gy/f vs {low.dose_per_fraction_gy:g} Gy ({pct:.1f}%)",
        )
    ]
    ok = low.fractions.min <= n <= low.fractions.max
    out.append(
        RtCheck(
            DeviationCheck.LDRT_FRACTIONS,
            lid,
            ok,
            Message(N_("low-dose {n} fractions; the protocol gives {min}-{max}"), n=str(n), **_range(low.fractions)),
            None if ok else DeviationClass.MAJOR,
            f"{n} fractions",
        )
    )
    return out


def check_delivery(
    course: RadiotherapyCourse,
    fractions: Sequence[Fraction],
    rules: Radiotherapy,
    working_days: WorkingDays,
    completed: bool = True,
) -> list[RtCheck]:
    """What was delivered on one lesion against its prescription and the role's timing rules (spec §2)."""
    lid, dev = course.lesion_id, rules.deviations
    given = sorted(delivered_fractions(fractions), key=lambda f: (f.date, f.fraction_number))
    out: list[RtCheck] = []
    total = delivered_dose_gy(given)
    if completed:
        prescribed = course.total_dose_gy
        pct = _pct_off(total, prescribed)
        cls = delivered_total_class(prescribed, total, dev)
        out.append(
            RtCheck(
                DeviationCheck.DELIVERED_TOTAL,
                lid,
                cls is None,
                Message(
                    N_("delivered {dose} Gy of {prescribed} Gy prescribed ({pct}% off)"),
                    dose=f"{total:g}",
                    prescribed=f"{prescribed:g}",
                    pct=f"{pct:.1f}",
                ),
                cls,
                f"delivered {total:g} Gy vs prescribed {prescribed:g} Gy ({pct:.1f}%)",
            )
        )
    full = [f for f in given if is_fully_delivered(f)]
    if course.role is RtRole.CONVENTIONAL:
        out += _cfrt_delivery(course, given, full, rules, working_days, completed)
    else:
        out += _ldrt_delivery(course, given, full, rules, completed)
    return out


def _cfrt_delivery(
    course: RadiotherapyCourse,
    given: Sequence[Fraction],
    full: Sequence[Fraction],
    rules: Radiotherapy,
    wd: WorkingDays,
    completed: bool,
) -> list[RtCheck]:
    lid, c, dev = course.lesion_id, rules.conventional, rules.deviations
    out: list[RtCheck] = []
    for f in full:
        if not c.dose_per_fraction_gy.min - _EPS <= f.dose_gy <= c.dose_per_fraction_gy.max + _EPS:
            out.append(
                RtCheck(
                    DeviationCheck.CFRT_DELIVERED_DOSE_PER_FRACTION,
                    lid,
                    False,
                    Message(
                        N_("fraction {number} on {date} delivered {dose} Gy, outside {min}-{max} Gy"),
                        number=str(f.fraction_number),
                        date=str(f.date),
                        dose=f"{f.dose_gy:g}",
                        **_range(c.dose_per_fraction_gy),
                    ),
                    DeviationClass.MAJOR,
                    f"fraction {f.fraction_number}: {f.dose_gy:g} Gy",
                )
            )
    if c.working_days_only:
        for f in given:
            if not wd.is_working_day(f.date):
                name = wd.holiday_name(f.date) or f.date.strftime("%A")
                out.append(
                    RtCheck(
                        DeviationCheck.CFRT_WORKING_DAY,
                        lid,
                        False,
                        Message(
                            N_("fraction {number} on {date} ({day}) is not on a working day"),
                            number=str(f.fraction_number),
                            date=str(f.date),
                            day=name,
                        ),
                        DeviationClass(dev.cfrt_non_working_day_class),
                        f"fraction {f.fraction_number}: {f.date} {name}",
                    )
                )
    per_day = Counter(f.date for f in given)
    for day, count in sorted(per_day.items()):
        if count > c.max_fractions_per_day:
            out.append(
                RtCheck(
                    DeviationCheck.CFRT_FRACTIONS_PER_DAY,
                    lid,
                    False,
                    Message(
                        N_("{n} conventional fractions on {date}; at most {max} a day"),
                        n=str(count),
                        date=str(day),
                        max=str(c.max_fractions_per_day),
                    ),
                    DeviationClass(dev.cfrt_extra_fraction_same_day_class),
                    f"{day}: {count} fractions",
                )
            )
    if given:
        first = given[0].date
        planned_end = wd.nth(first, course.fractions)
        last = given[-1].date
        remaining = max(course.fractions - len(given), 0)
        end = last if completed or remaining == 0 else wd.nth(wd.after(last), remaining)
        extra = wd.count_between(planned_end, end)
        cls = cfrt_interruption_class(extra, dev)
        word = "ended" if completed or remaining == 0 else "projected to end"
        out.append(
            RtCheck(
                DeviationCheck.CFRT_OVERALL_TIME,
                lid,
                cls is None,
                Message(
                    N_("course ended {end}, {extra} working day(s) after the planned end {planned}")
                    if word == "ended"
                    else N_("course projected to end {end}, {extra} working day(s) after the planned end {planned}"),
                    end=str(end),
                    extra=str(extra),
                    planned=str(planned_end),
                ),
                cls,
                f"planned end {planned_end}, {word} {end}, {extra} working days late",
            )
        )
    return out


def _ldrt_delivery(
    course: RadiotherapyCourse,
    given: Sequence[Fraction],
    full: Sequence[Fraction],
    rules: Radiotherapy,
    completed: bool,
) -> list[RtCheck]:
    lid, low, dev = course.lesion_id, rules.low_dose, rules.deviations
    out: list[RtCheck] = []
    for f in full:
        pct = _pct_off(f.dose_gy, low.dose_per_fraction_gy)
        cls = _band(pct, dev.ldrt_dose_minor_pct, dev.ldrt_dose_major_pct)
        if cls is not None:
            out.append(
                RtCheck(
                    DeviationCheck.LDRT_DELIVERED_DOSE_PER_FRACTION,
                    lid,
                    False,
                    Message(
                        N_("fraction {number} on {date} delivered {dose} Gy, {pct}% from {planned} Gy"),
                        number=str(f.fraction_number),
                        date=str(f.date),
                        dose=f"{f.dose_gy:g}",
                        pct=f"{pct:.1f}",
                        planned=f"{low.dose_per_fraction_gy:g}",
                    ),
                    cls,
                    f"fraction {f.fraction_number}: {f.dose_gy:g} Gy ({pct:.1f}%)",
                )
            )
    for prev, cur in pairwise(given):
        gap = (cur.date - prev.date).days
        cls = ldrt_interval_class(gap, rules)
        ok = cls is None
        out.append(
            RtCheck(
                DeviationCheck.LDRT_INTERVAL,
                lid,
                ok,
                Message(
                    N_("fractions {first}-{second} {gap} days apart (window {min}-{max})"),
                    first=str(prev.fraction_number),
                    second=str(cur.fraction_number),
                    gap=str(gap),
                    **_range(low.interval_window_days),
                ),
                cls,
                f"{prev.date} -> {cur.date}: {gap} days",
            )
        )
    if completed:
        n = len(given)
        ok = low.fractions.min <= n <= low.fractions.max
        if not ok:
            out.append(
                RtCheck(
                    DeviationCheck.LDRT_FRACTIONS,
                    lid,
                    False,
                    Message(
                        N_("{n} low-dose fractions delivered; the protocol gives {min}-{max}"),
                        n=str(n),
                        **_range(low.fractions),
                    ),
                    DeviationClass.MAJOR,
                    f"{n} fractions delivered",
                )
            )
    return out


def ldrt_interval_class(gap_days: int, rules: Radiotherapy) -> DeviationClass | None:
    """LDRT interval: inside the window (5-9 d) acceptable; 3-4 or 10-14 d minor; < 3 or > 14 d major."""
    window, minor = rules.low_dose.interval_window_days, rules.deviations.ldrt_interval_minor_days
    if window.contains(gap_days):
        return None
    if minor.contains(gap_days):
        return DeviationClass.MINOR
    return DeviationClass.MAJOR


def lesion_doses(
    courses: Sequence[RadiotherapyCourse],
    fractions: Sequence[Fraction],
    rules: Radiotherapy,
    working_days: WorkingDays | None = None,
) -> list[LesionDose]:
    """Per lesion: physical dose, BED and EQD2 prescribed and delivered (courses on one lesion add; never summed
    across lesions). Repopulation is subtracted from the tumour BED only when the protocol enables it."""
    rb = rules.radiobiology
    by_lesion: dict[str, list[RadiotherapyCourse]] = defaultdict(list)
    for course in courses:
        by_lesion[course.lesion_id].append(course)
    out = []
    for lid, lesion_courses in by_lesion.items():
        ab = lesion_courses[0].alpha_beta_gy
        if any(abs(c.alpha_beta_gy - ab) > _EPS for c in lesion_courses):
            raise ValidationError(f"courses[{lid}].alpha_beta_gy", f"lesion {lid} has courses with different α/β")
        prescribed = sum(c.total_dose_gy for c in lesion_courses)
        p_bed = sum(bed(c.dose_per_fraction_gy, c.fractions, ab) for c in lesion_courses)
        p_bed_late = sum(bed(c.dose_per_fraction_gy, c.fractions, rb.alpha_beta_late_gy) for c in lesion_courses)
        given = delivered_fractions(f for f in fractions if f.lesion_id == lid)
        doses = [f.dose_gy for f in given]
        d_bed = bed_of_doses(doses, ab)
        loss = 0.0
        if rb.repopulation_correction:
            overall = _overall_days(lesion_courses, given, rules, working_days)
            loss = repopulation_loss(overall, rb)
        out.append(
            LesionDose(
                lid,
                lesion_courses[0].role,
                ab,
                prescribed,
                p_bed - loss,
                eqd2_of_bed(p_bed - loss, ab),
                sum(doses),
                d_bed - (loss if given else 0.0),
                eqd2_of_bed(d_bed - (loss if given else 0.0), ab),
                rb.alpha_beta_late_gy,
                p_bed_late,
                eqd2_of_bed(p_bed_late, rb.alpha_beta_late_gy),
                loss,
            )
        )
    return out


def _overall_days(
    courses: Sequence[RadiotherapyCourse],
    given: Sequence[Fraction],
    rules: Radiotherapy,
    wd: WorkingDays | None,
) -> float:
    """Overall treatment time T in days: first to last delivered fraction, else as planned."""
    if len(given) >= 2:
        dates = sorted(f.date for f in given)
        return float((dates[-1] - dates[0]).days)
    first = min(courses, key=lambda c: c.start_date)
    if first.role is RtRole.CONVENTIONAL and wd is not None:
        return float((wd.nth(first.start_date, first.fractions) - first.start_date).days)
    return float(rules.low_dose.interval_days * max(first.fractions - 1, 0))


def check_plan(
    subject_id: str,
    lesions: Sequence[Lesion],
    courses: Sequence[RadiotherapyCourse],
    fractions: Sequence[Fraction],
    rules: Radiotherapy,
    working_days: WorkingDays,
    conventional_selection: str | None = None,
    completed: Collection[str] | None = None,
    date: dt.date | None = None,
) -> PlanReport:
    """Every radiotherapy check for one patient, the dose per lesion, and the deviations it proposes.

    ``completed``: lesion ids whose course has ended (delivered-total and fraction-count checks apply); by default
    every course with at least its prescribed number of fractions recorded.
    """
    validate_roles(lesions, courses)
    known = {lesion.lesion_id for lesion in lesions}
    numbers: set[tuple[str, int]] = set()
    for i, f in enumerate(fractions):
        if f.lesion_id not in known:
            raise ValidationError(f"fractions[{i}].lesion_id", Message(_NOT_LISTED, lesion=f.lesion_id))
        if (f.lesion_id, f.fraction_number) in numbers:
            raise ValidationError(
                f"fractions[{i}].fraction_number",
                Message(
                    N_("fraction {number} of {lesion} is listed twice"),
                    number=str(f.fraction_number),
                    lesion=f.lesion_id,
                ),
            )
        numbers.add((f.lesion_id, f.fraction_number))
        if f.dose_gy < 0:
            raise ValidationError(f"fractions[{i}].dose_gy", Message(N_("cannot be negative")))
    irradiated = irradiated_lesions(fractions)
    checks = check_lesion_roles(lesions, rules, conventional_selection, irradiated)
    prescribed = {c.lesion_id for c in courses}
    role_of = {lesion.lesion_id: lesion.rt_role for lesion in lesions}
    for lid in sorted(irradiated - prescribed):
        if role_of[lid] is not RtRole.OBSERVATION:
            checks.append(
                RtCheck(
                    DeviationCheck.UNPRESCRIBED_IRRADIATION,
                    lid,
                    False,
                    Message(
                        N_("lesion {lesion} ({role}) received fractions without a prescription"),
                        lesion=lid,
                        role=role_of[lid].value,
                    ),
                    DeviationClass.MAJOR,
                    f"lesion {lid}: {sum(f.dose_gy for f in fractions if f.lesion_id == lid):g} Gy",
                )
            )
    for course in courses:
        checks += check_prescription(course, rules)
        mine = [f for f in fractions if f.lesion_id == course.lesion_id]
        if not mine:
            continue
        n_given = len(delivered_fractions(mine))
        done = course.lesion_id in completed if completed is not None else n_given >= course.fractions
        checks += check_delivery(course, mine, rules, working_days, done)
    doses = lesion_doses(courses, fractions, rules, working_days)
    deviations = tuple(propose_deviations(subject_id, checks, date))
    return PlanReport(subject_id, tuple(checks), tuple(doses), deviations)


def propose_deviations(
    subject_id: str, checks: Sequence[RtCheck], date: dt.date | None = None
) -> list[ProtocolDeviation]:
    """Failed checks as proposed deviations (``confirmed_by`` empty until a person confirms, spec §2)."""
    return [
        ProtocolDeviation(
            subject_id=subject_id,
            check=c.check,
            deviation_class=c.deviation_class,
            values=c.values,
            reason=c.message,
            lesion_id=c.lesion_id,
            recorded_by="abscopal (proposed automatically)",
            date=date,
        )
        for c in checks
        if not c.ok and c.deviation_class is not None
    ]


def confirm_deviation(deviation: ProtocolDeviation, username: str, reason: str | None = None) -> ProtocolDeviation:
    """A person confirms a proposed deviation (optionally rewording the reason)."""
    if not username:
        raise ValidationError("confirmed_by", "a deviation is confirmed by a named user")
    return replace(deviation, confirmed_by=username, reason=reason or deviation.reason)


def as_dict(report: PlanReport) -> dict[str, Any]:
    """JSON-ready view of a plan check (for ``--json`` and the web)."""
    return {
        "subject_id": report.subject_id,
        "checks": [
            {
                "check": c.check,
                "lesion_id": c.lesion_id,
                "ok": c.ok,
                "message": c.message,
                "class": c.deviation_class.value if c.deviation_class else None,
                "values": c.values,
            }
            for c in report.checks
        ],
        "doses": [
            {
                "lesion_id": d.lesion_id,
                "role": d.role.value,
                "alpha_beta_gy": d.alpha_beta_gy,
                "prescribed_gy": round(d.prescribed_gy, 4),
                "prescribed_bed_gy": round(d.prescribed_bed_gy, 4),
                "prescribed_eqd2_gy": round(d.prescribed_eqd2_gy, 4),
                "delivered_gy": round(d.delivered_gy, 4),
                "delivered_bed_gy": round(d.delivered_bed_gy, 4),
                "delivered_eqd2_gy": round(d.delivered_eqd2_gy, 4),
                "late_alpha_beta_gy": d.late_alpha_beta_gy,
                "prescribed_bed_late_gy": round(d.prescribed_bed_late_gy, 4),
                "prescribed_eqd2_late_gy": round(d.prescribed_eqd2_late_gy, 4),
                "repopulation_loss_gy": round(d.repopulation_loss_gy, 4),
            }
            for d in report.doses
        ],
        "deviations": [
            {
                "lesion_id": d.lesion_id,
                "check": d.check,
                "class": d.deviation_class.value,
                "values": d.values,
                "reason": d.reason,
                "recorded_by": d.recorded_by,
                "confirmed_by": d.confirmed_by,
            }
            for d in report.deviations
        ],
    }
