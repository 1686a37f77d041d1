"""Synthetic EORTC QLQ-C30 (items 1-30) and QLQ-LC13 (items 31-43) answers that follow the disease course.

Item numbers and answer ranges are those of ae-qol.md §B1 and §C1 (1-4; items 29-30 1-7). Each answer is an
ordinal threshold of a latent "how bad" score: the patient's level, tumour burden, progression and ongoing
adverse events (oesophagitis raises dysphagia, pneumonitis dyspnoea and cough). About 3% of items are left
blank (answer None), item 35 (stairs) more often, as the LC13 manual anticipates.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from abscopal.domain import Instrument, QuestionnaireAnswer
from abscopal.synth.records import questionnaire_answers

N_ITEMS = 43
# propensity of each item (1..43) to be a problem; high = more often reported
_OFFSET = np.array(
    [
        1.1,
        0.7,
        0.2,
        0.3,
        -0.6,
        0.6,
        0.6,
        0.7,
        0.5,
        0.7,
        0.5,
        0.5,
        0.4,
        -0.3,
        -0.8,
        0.1,
        -0.4,
        0.8,
        0.3,
        0.0,
        0.3,
        0.7,
        0.1,
        0.2,
        0.0,
        0.1,
        0.2,
        0.8,
        0.0,
        0.0,
        0.9,
        -0.6,
        0.0,
        0.6,
        1.0,
        -0.2,
        -0.1,
        0.0,
        -0.5,
        0.3,
        0.1,
        0.3,
        0.4,
    ],
    dtype=float,
)
_LOADING = np.ones(N_ITEMS)
_LOADING[[27, 38]] = 0.4  # financial difficulty, alopecia: weakly tied to the disease course
_THRESHOLDS = np.array([0.6, 1.6, 2.6])
_INSTRUMENT = [Instrument.QLQ_C30] * 30 + [Instrument.QLQ_LC13] * 13
_ITEMS = list(range(1, N_ITEMS + 1))
# ongoing adverse event -> items it worsens (0-based)
_AE_ITEMS: dict[str, tuple[int, ...]] = {
    "Esophagitis": (36, 35, 12),
    "Dysphagia": (36,),
    "Pneumonitis": (7, 32, 33, 34, 30),
    "Dyspnea": (7, 32, 33, 34),
    "Cough": (30,),
    "Fatigue": (9, 11, 17),
    "Nausea": (13, 14),
    "Anorexia": (12,),
    "Diarrhea": (16,),
    "Colitis": (16,),
    "Chest wall pain": (8, 18, 39),
}


@dataclass(frozen=True, slots=True)
class QolVisit:
    label: str
    date: dt.date
    burden: float  # target SOD relative to baseline
    progressing: bool
    active_terms: tuple[str, ...]  # adverse events ongoing on that date (grade >= 2)


@dataclass(frozen=True, slots=True)
class QolPlan:
    """One patient's questionnaire visits and random draws; scored with the rest of the chunk in one pass."""

    subject_id: str
    labels: tuple[str, ...]
    dates: tuple[dt.date, ...]
    latent: tuple[float, ...]  # how bad the patient feels at each visit
    bumps: tuple[tuple[int, int], ...]  # (visit, item index) raised by an ongoing adverse event
    item_noise: np.ndarray  # (visits, 43) standard normal
    uniforms: np.ndarray  # (visits, 45): item blanks, then pain-medicine use, then whole-visit skip


def plan_answers(rng: np.random.Generator, subject_id: str, visits: list[QolVisit]) -> QolPlan | None:
    """Draw everything random for one patient's questionnaires from the patient's own stream."""
    n = len(visits)
    if n == 0:
        return None
    normal = rng.standard_normal(1 + n + n * N_ITEMS)
    uniforms = rng.random(n * (N_ITEMS + 2)).reshape(n, N_ITEMS + 2)
    level = 0.5 * float(normal[0])
    latent = tuple(
        level
        + 0.9 * math.log(min(max(v.burden, 0.3), 4.0))
        + (0.6 if v.progressing else 0.0)
        + 0.25 * float(normal[1 + i])
        for i, v in enumerate(visits)
    )
    bumps = tuple(
        (i, item) for i, v in enumerate(visits) for term in v.active_terms for item in _AE_ITEMS.get(term, ())
    )
    return QolPlan(
        subject_id,
        tuple(v.label for v in visits),
        tuple(v.date for v in visits),
        latent,
        bumps,
        normal[1 + n :].reshape(n, N_ITEMS),
        uniforms,
    )


def score_answers(plans: list[QolPlan]) -> list[QuestionnaireAnswer]:
    """Answers for every visit of every plan not skipped as a whole (~5%; baseline 2%), in plan order.

    Element-wise arithmetic only, so a patient's answers do not depend on which patients share the chunk.
    """
    if not plans:
        return []
    latent = np.array([x for p in plans for x in p.latent])
    noise = 0.6 * np.concatenate([p.item_noise for p in plans])
    uniforms = np.concatenate([p.uniforms for p in plans])
    first_rows = []
    bump = np.zeros_like(noise)
    row = 0
    for p in plans:
        first_rows.append(row)
        for i, item in p.bumps:
            bump[row + i, item] += 1.0
        row += len(p.labels)
    score = _OFFSET + latent[:, None] * _LOADING + bump + noise
    values = 1 + (score[:, :, None] > _THRESHOLDS).sum(axis=2)
    seven = (
        5.0 - 1.3 * latent[:, None] - 0.4 * (bump[:, 28:30].sum(axis=1, keepdims=True)) + noise[:, 28:30] * (1.3 / 0.6)
    )
    values[:, 28:30] = np.clip(np.rint(seven), 1, 7).astype(values.dtype)
    blank = uniforms[:, :N_ITEMS]
    missing = blank < 0.03
    missing[:, 34] |= blank[:, 34] < 0.08  # stairs: skipped by those who never climb them (LC13 manual)
    missing[:, 42] |= uniforms[:, N_ITEMS] < 0.45  # no pain medicine taken: item 43 not applicable
    skip_limit = np.full(len(latent), 0.05)
    skip_limit[first_rows] = 0.02
    keep = uniforms[:, N_ITEMS + 1] >= skip_limit
    cells = values[keep].astype(object)
    cells[missing[keep]] = None
    subjects: list[str] = []
    labels: list[str] = []
    dates: list[dt.date] = []
    kept = keep.tolist()
    row = 0
    for p in plans:
        for label, day in zip(p.labels, p.dates, strict=True):
            if kept[row]:
                subjects += [p.subject_id] * N_ITEMS
                labels += [label] * N_ITEMS
                dates += [day] * N_ITEMS
            row += 1
    k = int(keep.sum())
    return questionnaire_answers(subjects, labels, _INSTRUMENT * k, _ITEMS * k, cells.ravel().tolist(), dates)


def answers(rng: np.random.Generator, subject_id: str, visits: list[QolVisit]) -> list[QuestionnaireAnswer]:
    """One patient's answers (the generator scores a whole chunk at once with :func:`score_answers`)."""
    plan = plan_answers(rng, subject_id, visits)
    return score_answers([plan]) if plan else []
