"""Synthetic disease courses: tumour assessments every 6 weeks that exercise RECIST 1.1 and iRECIST.

Each enrolled patient follows a latent course: response (PR, sometimes CR), stable disease, progression
confirmed at the next scan (iUPD then iCPD), or pseudo-progression (iUPD by growth or a new lesion, then a
reset to iSD/iPR), with later true progression for some. Planned changes keep clear of the rule thresholds
(response-rules.md §2, §5: -30%, +20% and +5 mm over the nadir, +5 mm to confirm) so the realised category
survives the ~5% measurement noise. Visits are at k x interval +/- the window (protocol ``schedule``).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass

from abscopal.domain import (
    Lesion,
    LesionClass,
    LesionMeasurement,
    LesionStatus,
    Role,
    RtRole,
    TumourAssessment,
)
from abscopal.protocol.model import ResponseOptions, Schedule
from abscopal.response.recist import pd_threshold_mm
from abscopal.synth.draws import pick, randint
from abscopal.synth.staff import usernames

RESPONSE = "response"
STABLE = "stable"
PROGRESSION = "progression"
PSEUDO = "pseudo_progression"
SCENARIOS: tuple[tuple[str, float], ...] = ((RESPONSE, 0.22), (STABLE, 0.38), (PROGRESSION, 0.31), (PSEUDO, 0.09))

_NEW_SITES: tuple[tuple[str, str, bool], ...] = (
    ("liver", "liver segment VII", False),
    ("bone", "T10 vertebra", False),
    ("lung", "left lower lobe", False),
    ("adrenal", "right adrenal", False),
    ("brain", "right frontal lobe", False),
    ("lymph_node", "left supraclavicular", True),
)
# relative growth rates per year by role: in-field lesions shrink relative to the rest (abscopal for a few)
_ROLE_RATE = {RtRole.CONVENTIONAL: -1.6, RtRole.LOW_DOSE: -0.4, RtRole.NONE: 0.3}


@dataclass(frozen=True, slots=True)
class Course:
    """A patient's realised tumour assessments (baseline first) and the plan behind them."""

    scenario: str
    assessments: tuple[TumourAssessment, ...]
    visit_numbers: tuple[int, ...]  # 0 = baseline, k = k-th scheduled visit
    burden: tuple[float, ...]  # planned target SOD / baseline SOD per assessment
    progressing: tuple[bool, ...]  # True from an iUPD (unless reset) on
    new_lesions: tuple[Lesion, ...]
    pseudo_iupd_date: dt.date | None
    iupd_date: dt.date | None  # of true progression (confirmed at the next scan, if there is one)
    icpd_date: dt.date | None
    abscopal: bool


@dataclass(slots=True)
class _Visit:
    number: int
    date: dt.date
    f: float = 1.0
    kind: str = ""  # "", "iupd", "icpd", "reset"
    mode: str = ""  # "target", "new", "non_target"
    cr: bool = False
    progressing: bool = False


def _geometric(r: random.Random, p: float) -> int:
    n = 0
    while r.random() >= p:
        n += 1
    return n


def disease_course(
    r: random.Random,
    subject_id: str,
    lesions: tuple[Lesion, ...],
    first_day: dt.date,
    baseline_date: dt.date,
    horizon: dt.date,
    schedule: Schedule,
    options: ResponseOptions,
) -> Course:
    """Plan and measure the assessments from ``baseline_date`` to ``horizon`` (no scan after it)."""
    scenario = pick(r, SCENARIOS)
    radiologist = r.choice(usernames(Role.RADIOLOGIST))
    targets = [x for x in lesions if x.lesion_class is LesionClass.TARGET]
    non_targets = [x for x in lesions if x.lesion_class is LesionClass.NON_TARGET]
    sod0 = sum(x.baseline_diameter_mm or 0.0 for x in targets)
    abscopal = r.random() < (0.18 if scenario != PROGRESSION else 0.05)

    # scheduled visits, some missed
    visits: list[_Visit] = []
    k = 1
    interval, window = schedule.assessment_interval_days, schedule.assessment_window_days
    while True:
        jitter = max(-window, min(window, round(r.gauss(0.0, 3.0))))
        day = first_day + dt.timedelta(days=interval * k + jitter)
        if day > horizon:
            break
        if r.random() >= 0.04:
            visits.append(_Visit(k, day))
        k += 1
    m = len(visits)

    # the plan: planned SOD ratio per visit and the iRECIST events
    nadir = 1.0
    prev = 1.0

    def hold(low: float) -> float:
        value = prev * math.exp(r.gauss(0.0, 0.05))
        return max(min(value, nadir * 1.08, 1.1), min(low, nadir))

    def growth(base: float, at_least: float, mm: float) -> float:
        sod = max(sod0 * base, 1.0)
        return base * max(at_least, 1.0 + mm / sod) * r.uniform(1.0, 1.12)

    has_nt = bool(non_targets)
    prog_at: int | None = None
    pseudo_at: int | None = None
    depth = r.uniform(0.3, 0.62)
    cr = scenario == RESPONSE and r.random() < 0.12
    late_response = r.random() < 0.3
    if scenario == RESPONSE:
        prog_at = 3 + _geometric(r, 0.3) if r.random() < 0.55 else None
    elif scenario == STABLE:
        prog_at = 1 + _geometric(r, 0.22) if r.random() < 0.85 else None
    elif scenario == PROGRESSION:
        prog_at = 0 if r.random() < 0.65 else 1
    else:
        pseudo_at = 0 if r.random() < 0.75 else 1
        prog_at = pseudo_at + 3 + _geometric(r, 0.25) if r.random() < 0.4 else None
    after_pseudo_response = r.random() < 0.45
    prog_mode = pick(r, (("target", 0.6), ("new", 0.28), ("non_target", 0.12 if has_nt else 0.0)))
    pseudo_mode = pick(r, (("target", 0.75), ("new", 0.25)))
    responding = scenario == RESPONSE
    for j, v in enumerate(visits):
        if prog_at is not None and j == prog_at:
            v.kind, v.mode = "iupd", prog_mode
            v.f = growth(nadir, 1.35, 9.0) if prog_mode == "target" else hold(0.0)
        elif prog_at is not None and j == prog_at + 1:
            v.kind, v.mode = "icpd", prog_mode
            v.f = growth(prev, 1.15, 8.0) if prog_mode == "target" else prev
        elif pseudo_at is not None and j == pseudo_at:
            v.kind, v.mode = "iupd", pseudo_mode
            v.f = growth(nadir, 1.35, 9.0) if pseudo_mode == "target" else hold(0.0)
        elif pseudo_at is not None and j == pseudo_at + 1:
            v.kind, v.mode = "reset", pseudo_mode
            v.f = nadir * r.uniform(0.6, 0.92) if pseudo_mode == "target" else prev * r.uniform(0.7, 0.88)
            responding = after_pseudo_response
        elif responding:
            if j == 0 and scenario == RESPONSE and late_response:
                v.f = r.uniform(0.75, 0.95)
            elif prev > 0.7:
                v.f = r.uniform(max(depth, 0.42), 0.66)
            else:
                v.f = hold(depth * 0.85)
            v.cr = cr and j >= 1 and (prog_at is None or j < prog_at)
        else:
            v.f = hold(0.76)
        if prog_at is not None and j > prog_at + 1:
            break  # no scans after confirmed progression
        nadir = min(nadir, v.f)
        prev = v.f
        v.progressing = (prog_at is not None and j >= prog_at) or v.kind == "iupd"
    visits = visits[: (prog_at + 2) if prog_at is not None else m]

    # realise the measurements
    rate = {
        x.lesion_id: (
            (-1.4 if abscopal else 0.4) if x.rt_role is RtRole.OBSERVATION else _ROLE_RATE.get(x.rt_role, 0.3)
        )
        + r.gauss(0.0, 0.3)
        for x in targets
    }
    baseline = TumourAssessment(
        subject_id,
        baseline_date,
        tuple(
            _measure(
                x,
                x.baseline_diameter_mm if x.lesion_class is LesionClass.TARGET else None,
                None if x.lesion_class is LesionClass.TARGET else LesionStatus.PRESENT,
            )
            for x in lesions
        ),
        assessed_by=radiologist,
    )
    assessments = [baseline]
    numbers = [0]
    burden = [1.0]
    progressing = [False]
    new: list[Lesion] = []
    new_sizes: dict[str, float | None] = {}
    new_status: dict[str, LesionStatus] = {}
    absent: set[str] = set()
    nt_progressor = r.choice(non_targets).lesion_id if non_targets else ""
    pseudo_iupd = iupd = icpd = None
    real_nadir = sod0
    position = {x.lesion_id: i for i, x in enumerate(lesions)}
    cr_nodes: dict[str, float] = {}
    iupd_sod: float | None = None
    for j, v in enumerate(visits):
        t = (v.date - first_day).days / 365.25
        raw = {x.lesion_id: (x.baseline_diameter_mm or 0.0) * math.exp(rate[x.lesion_id] * t) for x in targets}
        scale = sod0 * v.f / sum(raw.values()) if raw and sum(raw.values()) > 0 else 0.0
        critical = v.kind != "" or (j + 1 < len(visits) and visits[j + 1].kind != "")
        missing = "" if critical or r.random() >= 0.015 or not targets else r.choice(targets).lesion_id
        sizes: dict[str, float | None] = {}
        for x in targets:
            if x.lesion_id == missing:
                sizes[x.lesion_id] = None
            elif v.cr:  # a node in CR keeps one normal short axis (< 10 mm), so its sum cannot creep to PD
                cr_size = cr_nodes.setdefault(x.lesion_id, float(round(r.uniform(4.0, 9.4))))
                sizes[x.lesion_id] = cr_size if x.is_node else 0.0
            else:
                d = float(round(raw[x.lesion_id] * scale * math.exp(r.gauss(0.0, 0.05))))
                sizes[x.lesion_id] = d if x.is_node else max(d, options.too_small_to_measure_mm)
        if targets and not missing:
            if not v.cr:
                threshold = pd_threshold_mm(real_nadir)  # RECIST 1.1 PD over the nadir
                below = math.ceil(threshold) - 1.0
                if v.kind == "iupd" and v.mode == "target":
                    low, high = math.ceil(threshold) + 1.0, math.inf
                elif v.kind == "icpd" and v.mode == "target":
                    low, high = max(math.ceil(threshold) + 1.0, (iupd_sod or 0.0) + 6.0), math.inf
                elif v.kind == "reset" and v.mode == "new":
                    low, high = 0.0, min(below, (iupd_sod or math.inf) - 1.0)
                else:
                    low, high = 0.0, below
                _fit(sizes, targets, low, high, options.too_small_to_measure_mm)
            sod = sum(d for d in sizes.values() if d is not None)
            real_nadir = min(real_nadir, sod)
            if v.kind == "iupd":
                iupd_sod = sod
        rows: list[LesionMeasurement] = [_measure(x, sizes[x.lesion_id], None) for x in targets]
        if v.cr:
            absent.update(x.lesion_id for x in non_targets)
        elif v.f <= 0.6:
            absent.update(x.lesion_id for x in non_targets if r.random() < 0.3)
        for x in non_targets:
            status = LesionStatus.ABSENT if x.lesion_id in absent else LesionStatus.PRESENT
            if x.lesion_id == nt_progressor and v.mode == "non_target":
                status = LesionStatus.UNEQUIVOCAL_PROGRESSION if v.kind == "iupd" else LesionStatus.INCREASED
            rows.append(_measure(x, None, status))
        # new lesions
        if v.mode == "new" and v.kind in ("iupd", "icpd"):
            pseudo = pseudo_at is not None and j == pseudo_at
            lesion = _new_lesion(r, subject_id, len(new) + 1, v.date, measurable=not pseudo and r.random() < 0.5)
            new.append(lesion)
            new_sizes[lesion.lesion_id] = lesion.baseline_diameter_mm
            new_status[lesion.lesion_id] = LesionStatus.PRESENT
        for x in new:
            if v.kind == "reset" or x.lesion_id in absent:
                absent.add(x.lesion_id)
                size = new_sizes[x.lesion_id]
                rows.append(
                    _measure(x, 0.0 if size is not None else None, None if size is not None else LesionStatus.ABSENT)
                )
            else:
                size = new_sizes[x.lesion_id]
                if size is not None and x.label != f"new on {v.date.isoformat()}":
                    size = float(round(size * r.uniform(1.0, 1.15)))
                    new_sizes[x.lesion_id] = size
                rows.append(_measure(x, size, None if size is not None else new_status[x.lesion_id]))
        rows.sort(key=lambda m: position.get(m.lesion_id, len(position)))  # baseline order, then new lesions
        assessments.append(TumourAssessment(subject_id, v.date, tuple(rows), assessed_by=radiologist))
        numbers.append(v.number)
        burden.append(v.f)
        progressing.append(v.progressing)
        if v.kind == "iupd" and pseudo_at is not None and j == pseudo_at:
            pseudo_iupd = v.date
        elif v.kind == "iupd":
            iupd = v.date
        elif v.kind == "icpd":
            icpd = v.date
    return Course(
        scenario,
        tuple(assessments),
        tuple(numbers),
        tuple(burden),
        tuple(progressing),
        tuple(new),
        pseudo_iupd,
        iupd,
        icpd,
        abscopal,
    )


def _fit(sizes: dict[str, float | None], targets: list[Lesion], low: float, high: float, floor_mm: float) -> None:
    """Move the target sum into [low, high] by changing the largest lesions (whole mm, RECIST's 'too small' floor).

    The plan keeps clear of the thresholds; this only absorbs measurement noise that would cross one, so the
    category the generator intended is the one the data show.
    """
    total = sum(d for d in sizes.values() if d is not None)
    if low <= total <= high:
        return
    goal = high if total > high else low
    for x in sorted(targets, key=lambda t: -(sizes[t.lesion_id] or 0.0)):
        d = sizes[x.lesion_id]
        if d is None:
            continue
        new = max(d + (goal - total), 0.0 if x.is_node else floor_mm)
        sizes[x.lesion_id] = new
        total += new - d
        if low <= total <= high:
            return


def _measure(x: Lesion, diameter: float | None, status: LesionStatus | None) -> LesionMeasurement:
    return LesionMeasurement(x.lesion_id, x.lesion_class, x.organ, x.is_node, diameter, status, x.rt_role)


def _new_lesion(r: random.Random, subject_id: str, n: int, day: dt.date, measurable: bool) -> Lesion:
    organ, location, node = r.choice(_NEW_SITES)
    size = float(randint(r, 15, 24) if node else randint(r, 10, 22)) if measurable else None
    return Lesion(
        subject_id=subject_id,
        lesion_id=f"N{n:02d}",
        organ=organ,
        location=location,
        is_node=node,
        measurable=measurable,
        baseline_diameter_mm=size,
        rt_role=RtRole.NONE,
        lesion_class=LesionClass.NEW,
        label=f"new on {day.isoformat()}",
    )
