"""Synthetic EORTC QLQ-C30 (items 1-30) and QLQ-LC13 (items 31-43) answers that follow the disease course.

Item numbers and answer ranges are those of ae-qol.md §B1 and §C1 (1-4; items 29-30 1-7). Each answer is an
ordinal threshold of a latent "how bad" score: the patient's level, tumour burden, progression and ongoing
adverse events (oesophagitis raises dysphagia, pneumonitis dyspnoea and cough). About 3% of items are left
blank (answer None), item 35 (stairs) more often, as the LC13 manual anticipates.
"""

from __future__ import annotations

import datetime as dt
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


def answers(rng: np.random.Generator, subject_id: str, visits: list[QolVisit]) -> list[QuestionnaireAnswer]:
    """Answers for each visit not skipped as a whole (about 5% are missing; baseline 2%)."""
    n = len(visits)
    if n == 0:
        return []
    level = rng.normal(0.0, 0.5)
    visit_noise = rng.normal(0.0, 0.25, n)
    item_noise = rng.normal(0.0, 0.6, (n, N_ITEMS))
    blank = rng.random((n, N_ITEMS))
    skipped = rng.random(n)
    no_pain_medicine = rng.random(n) < 0.45
    burden = np.log(np.clip(np.array([v.burden for v in visits]), 0.3, 4.0))
    progressing = np.array([v.progressing for v in visits], dtype=float)
    latent = level + 0.9 * burden + 0.6 * progressing + visit_noise
    bump = np.zeros((n, N_ITEMS))
    for i, v in enumerate(visits):
        for term in v.active_terms:
            for item in _AE_ITEMS.get(term, ()):
                bump[i, item] += 1.0
    score = _OFFSET + np.outer(latent, _LOADING) + bump + item_noise
    four = 1 + (score[:, :, None] > _THRESHOLDS).sum(axis=2)
    seven = np.clip(
        np.rint(
            5.0
            - 1.3 * latent[:, None]
            - 0.4 * bump[:, [28, 29]].sum(axis=1, keepdims=True)
            + item_noise[:, [28, 29]] * 1.3
        ),
        1,
        7,
    )
    values = four.astype(np.int64)
    values[:, 28:30] = seven.astype(np.int64)
    missing = blank < 0.03
    missing[:, 34] |= blank[:, 34] < 0.08
    missing[:, 42] |= no_pain_medicine
    keep = [i for i in range(n) if skipped[i] >= (0.02 if i == 0 else 0.05)]
    if not keep:
        return []
    cells = values[keep].astype(object)
    cells[missing[keep]] = None
    labels: list[str] = []
    dates: list[dt.date] = []
    for i in keep:
        labels += [visits[i].label] * N_ITEMS
        dates += [visits[i].date] * N_ITEMS
    k = len(keep)
    return questionnaire_answers(
        [subject_id] * (k * N_ITEMS), labels, _INSTRUMENT * k, _ITEMS * k, cells.ravel().tolist(), dates
    )
