"""Synthetic baseline lesions with radiotherapy roles and RECIST target selection.

Roles follow radiotherapy.md §1 (from the registry's intervention description): exactly one conventional
lesion (the primary, the largest or a symptomatic one, with the matching flag true in the data), at least one
measurable unirradiated observation lesion, the rest low-dose (at most 10) or untreated. Targets follow
RECIST 1.1 (Eisenhauer 2009 §3.2): at most 5, at most 2 per organ, measurable (>= 10 mm, node short axis
>= 15 mm); lymph nodes count as one organ.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from abscopal.domain import Lesion, LesionClass, RtRole
from abscopal.protocol.model import Radiotherapy
from abscopal.protocol.radiotherapy import measurable_size
from abscopal.synth.draws import pick, randint

# Metastatic sites of NSCLC (weights of how often an organ is involved) and typical locations.
_ORGANS: tuple[tuple[str, float], ...] = (
    ("lymph_node", 0.34),
    ("lung", 0.2),
    ("bone", 0.16),
    ("liver", 0.11),
    ("adrenal", 0.1),
    ("pleura", 0.06),
    ("soft_tissue", 0.03),
)
_LOCATIONS: dict[str, tuple[str, ...]] = {
    "lung": ("right upper lobe", "right middle lobe", "right lower lobe", "left upper lobe", "left lower lobe"),
    "lymph_node": (
        "mediastinal station 2R",
        "mediastinal station 4R",
        "mediastinal station 4L",
        "subcarinal station 7",
        "right hilar 10R",
        "left hilar 10L",
        "aortopulmonary window station 5",
        "right supraclavicular",
        "left supraclavicular",
    ),
    "liver": ("liver segment IV", "liver segment V", "liver segment VI", "liver segment VII", "liver segment VIII"),
    "bone": ("T8 vertebra", "T11 vertebra", "L2 vertebra", "right iliac bone", "left 6th rib", "sacrum", "right femur"),
    "adrenal": ("left adrenal", "right adrenal"),
    "pleura": ("right pleura", "left pleura"),
    "soft_tissue": ("chest wall", "right gluteal muscle", "subcutaneous, back"),
}
# (log-median mm, log-sd, min, max): long axis, or short axis for nodes.
_SIZE: dict[str, tuple[float, float, float, float]] = {
    "lung": (2.75, 0.45, 5.0, 60.0),
    "lymph_node": (2.8, 0.28, 10.0, 45.0),
    "liver": (3.1, 0.45, 8.0, 80.0),
    "bone": (3.0, 0.35, 10.0, 45.0),
    "adrenal": (3.15, 0.35, 10.0, 60.0),
    "pleura": (2.7, 0.4, 6.0, 40.0),
    "soft_tissue": (3.0, 0.4, 8.0, 50.0),
}
_EASY_TO_ASSESS = ("lung", "lymph_node", "liver", "adrenal", "soft_tissue", "pleura")


@dataclass(slots=True)
class _Draft:
    """A lesion while its role and class are being decided (mutable; frozen into a Lesion at the end)."""

    lesion_id: str
    organ: str
    location: str
    is_node: bool
    measurable: bool
    baseline_diameter_mm: float | None
    rt_role: RtRole
    lesion_class: LesionClass
    is_primary: bool
    is_symptomatic: bool = False


@dataclass(frozen=True, slots=True)
class Baseline:
    """A patient's baseline lesions and why the conventional lesion was chosen."""

    lesions: tuple[Lesion, ...]
    selection: str  # "primary" | "largest" | "symptomatic"
    metastatic_organ_count: int


def _size(r: random.Random, organ: str) -> float:
    mu, sigma, low, high = _SIZE[organ]
    return float(round(min(max(r.lognormvariate(mu, sigma), low), high)))


def baseline_lesions(r: random.Random, subject_id: str, rules: Radiotherapy) -> Baseline:
    """2-10 lesions in at most ``limits.max_metastatic_organs`` organs, with roles and target classes."""
    max_lesions = rules.limits.max_lesions
    n = min(2 + _binomial(r, 8, 0.4), max_lesions)
    has_primary = r.random() < 0.86
    n_mets = n - 1 if has_primary else n
    organ_limit = max(1, min(rules.limits.max_metastatic_organs, n_mets))
    n_organs = min(organ_limit, 1 + _binomial(r, n_mets - 1, 0.45))
    organs: list[str] = []
    while len(organs) < n_organs:
        o = pick(r, _ORGANS)
        if o not in organs:
            organs.append(o)
    if not any(o in _EASY_TO_ASSESS for o in organs):
        organs[0] = "lymph_node"
    met_organs = organs + [r.choice(organs) for _ in range(n_mets - len(organs))]
    # the first metastasis is always an easily assessable measurable one (a future observation lesion)
    easy = next(k for k, o in enumerate(met_organs) if o in _EASY_TO_ASSESS)
    met_organs[0], met_organs[easy] = met_organs[easy], met_organs[0]
    raw: list[tuple[str, bool, float | None, bool]] = []  # organ, is_node, diameter, is_primary
    if has_primary:
        raw.append(("lung", False, float(round(min(max(r.lognormvariate(3.6, 0.35), 12.0), 95.0))), True))
    for k, organ in enumerate(met_organs):
        node = organ == "lymph_node"
        diameter: float | None = _size(r, organ)
        if organ == "bone" and r.random() < 0.7:
            diameter = None  # blastic or lytic without a soft-tissue mass: not measurable
        if k == 0:
            floor = rules.observation.measurable_node_short_axis_min_mm if node else rules.observation.measurable_min_mm
            diameter = max(diameter or 0.0, floor + float(randint(r, 0, 12)))
        raw.append((organ, node, diameter, False))

    lesions = [
        _Draft(
            lesion_id=f"L{i + 1:02d}",
            organ=organ,
            location=r.choice(_LOCATIONS[organ]),
            is_node=node,
            measurable=measurable_size(d, node, rules),
            baseline_diameter_mm=d,
            rt_role=RtRole.NONE,
            lesion_class=LesionClass.NON_TARGET,
            is_primary=primary,
        )
        for i, (organ, node, d, primary) in enumerate(raw)
    ]
    forced = 1 if has_primary else 0  # index of the guaranteed measurable metastasis

    order = ["primary", "largest", "symptomatic"]
    first = pick(r, (("primary", 0.55 if has_primary else 0.0), ("largest", 0.25), ("symptomatic", 0.2)))
    order.remove(first)
    conventional = -1
    selection = first
    for reason in [first, *order]:
        idx = _conventional_index(r, lesions, reason, forced)
        if idx is not None:
            conventional, selection = idx, reason
            break
    if selection == "largest":  # make the largest strictly largest so the flag is unambiguous
        top = lesions[conventional].baseline_diameter_mm or 0.0
        if any((x.baseline_diameter_mm or 0.0) >= top for j, x in enumerate(lesions) if j != conventional):
            lesions[conventional].baseline_diameter_mm = top + 1.0
    if selection == "symptomatic":
        lesions[conventional].is_symptomatic = True
    lesions[conventional].rt_role = RtRole.CONVENTIONAL

    candidates = [j for j, x in enumerate(lesions) if j != conventional and x.measurable and x.organ in _EASY_TO_ASSESS]
    if not candidates:
        candidates = [j for j, x in enumerate(lesions) if j != conventional and x.measurable]
    if len(candidates) > 1:  # the primary is irradiated by preference, not left for observation
        candidates = [j for j in candidates if not lesions[j].is_primary]
    n_obs = max(rules.observation.min_lesions, 1)
    if len(candidates) > n_obs and r.random() < 0.2:
        n_obs += 1
    observation = r.sample(candidates, min(n_obs, len(candidates)))
    low_dose_left = rules.low_dose.max_lesions
    for j, x in enumerate(lesions):
        if j == conventional:
            continue
        if j in observation:
            x.rt_role = RtRole.OBSERVATION
        elif low_dose_left > 0 and r.random() < 0.9:
            x.rt_role = RtRole.LOW_DOSE
            low_dose_left -= 1

    # RECIST targets: observation lesions first (the abscopal question), then the rest by size
    priority = sorted(
        range(len(lesions)),
        key=lambda j: (lesions[j].rt_role is not RtRole.OBSERVATION, -(lesions[j].baseline_diameter_mm or 0.0)),
    )
    per_organ: Counter[str] = Counter()
    targets = 0
    for j in priority:
        x = lesions[j]
        organ_key = "lymph_node" if x.is_node else x.organ
        if x.measurable and targets < 5 and per_organ[organ_key] < 2:
            x.lesion_class = LesionClass.TARGET
            per_organ[organ_key] += 1
            targets += 1
    organ_count = len({x.organ for x in lesions if not x.is_primary})
    final = tuple(
        Lesion(
            subject_id,
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
        )
        for x in lesions
    )
    return Baseline(final, selection, organ_count)


def _conventional_index(r: random.Random, lesions: list[_Draft], reason: str, forced: int) -> int | None:
    """The lesion chosen for CFRT by ``reason``, if choosing it leaves a measurable lesion to observe."""
    if reason == "primary":
        idx = next((j for j, x in enumerate(lesions) if x.is_primary), None)
    elif reason == "largest":
        idx = max(range(len(lesions)), key=lambda j: lesions[j].baseline_diameter_mm or 0.0)
    else:
        symptomatic = [
            j for j, x in enumerate(lesions) if x.organ in ("bone", "lymph_node", "soft_tissue") and j != forced
        ]
        others = [j for j in range(len(lesions)) if j != forced]
        pool = symptomatic or others
        idx = r.choice(pool) if pool else None
    if idx is None:
        return None
    if not any(x.measurable for j, x in enumerate(lesions) if j != idx):
        return None
    return idx


def _binomial(r: random.Random, n: int, p: float) -> int:
    return sum(r.random() < p for _ in range(max(n, 0)))
