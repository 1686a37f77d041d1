"""EORTC QLQ-C30 v3.0 and QLQ-LC13 scoring: items and scales as data, raw score, linear transformation.

Source: EORTC QLQ-C30 Scoring Manual, 3rd ed. (Fayers et al. 2001), as specified in ae-qol.md B1-B5 and C1;
summary score from Giesinger et al., J Clin Epidemiol 2016;69:79-88. Item numbers and short labels only: the
item wording is EORTC copyright and is never part of Abscopal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from abscopal.domain import Instrument, QuestionnaireAnswer
from abscopal.errors import ValidationError
from abscopal.messages import N_, Message


class ScaleKind(StrEnum):
    """Functional and global scales: high = better; symptom scales and single items: high = worse."""

    FUNCTIONAL = "functional"
    GLOBAL = "global"
    SYMPTOM = "symptom"


@dataclass(frozen=True, slots=True)
class ItemDefinition:
    """One questionnaire item: combined number (LC13 item k = 30 + k), our short label and valid answers."""

    number: int
    instrument: Instrument
    label: str
    low: int = 1
    high: int = 4

    @property
    def range(self) -> int:
        return self.high - self.low


@dataclass(frozen=True, slots=True)
class ScaleDefinition:
    """A scale: its items, type and item range; scored when at least ``min_answered`` items are answered."""

    code: str
    name: str
    instrument: Instrument
    items: tuple[int, ...]
    kind: ScaleKind
    item_range: int
    require_all: bool = False

    @property
    def min_answered(self) -> int:
        """Half rule (manual: at least half of the items), or every item where the manual says so (LCDY)."""
        return len(self.items) if self.require_all else math.ceil(len(self.items) / 2)


_C30, _LC13 = Instrument.QLQ_C30, Instrument.QLQ_LC13

_C30_LABELS = (
    "strenuous activity",
    "long walk",
    "short walk outside",
    "bed/chair in day",
    "help with self-care",
    "limited in work/daily activities",
    "limited in hobbies/leisure",
    "short of breath",
    "pain",
    "needed rest",
    "trouble sleeping",
    "weak",
    "appetite loss",
    "nausea",
    "vomiting",
    "constipation",
    "diarrhoea",
    "tired",
    "pain interfered",
    "concentrating",
    "tense",
    "worry",
    "irritable",
    "depressed",
    "remembering",
    "family life",
    "social activities",
    "financial difficulty",
    "overall health",
    "overall quality of life",
)

_LC13_LABELS = (
    "coughing",
    "coughed blood",
    "short of breath at rest",
    "short of breath walking",
    "short of breath climbing stairs",
    "sore mouth or tongue",
    "trouble swallowing",
    "tingling hands or feet",
    "hair loss",
    "pain in chest",
    "pain in arm or shoulder",
    "pain in other parts",
    "pain medicine helped",
)

#: Every item (ae-qol.md B1, C1): C30 items 1-28 are 4-point, 29-30 are 7-point; LC13 items 31-43 are 4-point.
#: Item 43 holds "how much the pain medicine helped" (1-4) and belongs to no scale (reported descriptively).
ITEMS: tuple[ItemDefinition, ...] = (
    *(ItemDefinition(i, _C30, label, 1, 7 if i >= 29 else 4) for i, label in enumerate(_C30_LABELS, start=1)),
    *(ItemDefinition(i, _LC13, label, 1, 4) for i, label in enumerate(_LC13_LABELS, start=31)),
)

_F, _G, _S = ScaleKind.FUNCTIONAL, ScaleKind.GLOBAL, ScaleKind.SYMPTOM

#: The scales of ae-qol.md B2 (QLQ-C30 v3.0) and C1 (QLQ-LC13), in the order they are reported.
SCALES: tuple[ScaleDefinition, ...] = (
    ScaleDefinition("QL2", "Global health status/QoL", _C30, (29, 30), _G, 6),
    ScaleDefinition("PF2", "Physical functioning", _C30, (1, 2, 3, 4, 5), _F, 3),
    ScaleDefinition("RF2", "Role functioning", _C30, (6, 7), _F, 3),
    ScaleDefinition("EF", "Emotional functioning", _C30, (21, 22, 23, 24), _F, 3),
    ScaleDefinition("CF", "Cognitive functioning", _C30, (20, 25), _F, 3),
    ScaleDefinition("SF", "Social functioning", _C30, (26, 27), _F, 3),
    ScaleDefinition("FA", "Fatigue", _C30, (10, 12, 18), _S, 3),
    ScaleDefinition("NV", "Nausea and vomiting", _C30, (14, 15), _S, 3),
    ScaleDefinition("PA", "Pain", _C30, (9, 19), _S, 3),
    ScaleDefinition("DY", "Dyspnoea", _C30, (8,), _S, 3),
    ScaleDefinition("SL", "Insomnia", _C30, (11,), _S, 3),
    ScaleDefinition("AP", "Appetite loss", _C30, (13,), _S, 3),
    ScaleDefinition("CO", "Constipation", _C30, (16,), _S, 3),
    ScaleDefinition("DI", "Diarrhoea", _C30, (17,), _S, 3),
    ScaleDefinition("FI", "Financial difficulties", _C30, (28,), _S, 3),
    # LC13: the dyspnoea scale needs all three items (manual; EORTC SAS macro), ae-qol.md C1
    ScaleDefinition("LCDY", "Dyspnoea (LC13)", _LC13, (33, 34, 35), _S, 3, require_all=True),
    ScaleDefinition("LCCO", "Coughing", _LC13, (31,), _S, 3),
    ScaleDefinition("LCHA", "Haemoptysis", _LC13, (32,), _S, 3),
    ScaleDefinition("LCSM", "Sore mouth", _LC13, (36,), _S, 3),
    ScaleDefinition("LCDS", "Dysphagia", _LC13, (37,), _S, 3),
    ScaleDefinition("LCPN", "Peripheral neuropathy", _LC13, (38,), _S, 3),
    ScaleDefinition("LCHR", "Alopecia", _LC13, (39,), _S, 3),
    ScaleDefinition("LCPC", "Pain in chest", _LC13, (40,), _S, 3),
    ScaleDefinition("LCPA", "Pain in arm or shoulder", _LC13, (41,), _S, 3),
    ScaleDefinition("LCPO", "Pain in other parts", _LC13, (42,), _S, 3),
)

SUMMARY_SCORE = "SUMSC"

#: The 13 scales of the QLQ-C30 summary score; symptom scales enter reversed (Giesinger 2016; QL and FI excluded).
SUMMARY_SCALES: tuple[str, ...] = ("PF2", "RF2", "EF", "CF", "SF", "FA", "NV", "PA", "DY", "SL", "AP", "CO", "DI")

_ITEMS = {(d.instrument, d.number): d for d in ITEMS}
_SCALES = {s.code: s for s in SCALES}


def scale(code: str) -> ScaleDefinition:
    """The scale with this code (e.g. "PF2", "LCDY")."""
    try:
        return _SCALES[code]
    except KeyError:
        raise ValidationError("scale", f"{code!r} is not a QLQ-C30 or QLQ-LC13 scale") from None


def scales_of(instrument: Instrument) -> tuple[ScaleDefinition, ...]:
    return tuple(s for s in SCALES if s.instrument is instrument)


def scale_codes(instrument: Instrument) -> tuple[str, ...]:
    """The codes scored for an instrument, in report order (QLQ-C30 ends with the summary score)."""
    codes = tuple(s.code for s in scales_of(instrument))
    return (*codes, SUMMARY_SCORE) if instrument is Instrument.QLQ_C30 else codes


def scale_kind(code: str) -> ScaleKind:
    """Direction of a scale; the summary score reads like a functional scale (higher = better)."""
    return ScaleKind.FUNCTIONAL if code == SUMMARY_SCORE else scale(code).kind


def item_definition(instrument: Instrument, number: int) -> ItemDefinition:
    """The item ``number`` of ``instrument`` (QLQ-C30: 1-30; QLQ-LC13: 31-43)."""
    found = _ITEMS.get((instrument, number))
    if found is None:
        numbers = [d.number for d in ITEMS if d.instrument is instrument]
        raise ValidationError(
            "item",
            Message(N_("{number} is not an item of {instrument} (items {first}-{last})"), number=str(number),
                    instrument=instrument.value, first=str(numbers[0]), last=str(numbers[-1])),
        )  # fmt: skip
    return found


def check_answer(instrument: Instrument, number: int, answer: int | None) -> None:
    """Refuse an answer outside the item's scale (manual: 1-4 or 1-7); an invalid answer is never "missing"."""
    item = item_definition(instrument, number)
    if answer is not None and not item.low <= answer <= item.high:
        raise ValidationError(
            "answer",
            Message(N_("{answer} is not a valid answer to {instrument} item {number} ({low}-{high})"),
                    answer=str(answer), instrument=instrument.value, number=str(number), low=str(item.low),
                    high=str(item.high)),
        )  # fmt: skip


def raw_score(answers: Mapping[int, int | None], definition: ScaleDefinition) -> float | None:
    """Mean of the answered items, or None when fewer than ``min_answered`` are answered (manual, half rule)."""
    given = [a for a in (answers.get(i) for i in definition.items) if a is not None]
    if len(given) < definition.min_answered:
        return None
    return sum(given) / len(given)


def linear_transform(raw: float, definition: ScaleDefinition) -> float:
    """Manual's linear transformation to 0-100: functional (1 - (RS-1)/range)*100; symptom/global ((RS-1)/range)*100."""
    fraction = (raw - 1) / definition.item_range
    if definition.kind is ScaleKind.FUNCTIONAL:
        return (1 - fraction) * 100
    return fraction * 100


def score_scale(answers: Mapping[int, int | None], definition: ScaleDefinition) -> float | None:
    """The 0-100 score of one scale, unrounded, or None when the scale cannot be scored."""
    for number in definition.items:
        check_answer(definition.instrument, number, answers.get(number))
    raw = raw_score(answers, definition)
    return None if raw is None else linear_transform(raw, definition)


def summary_score(scores: Mapping[str, float | None]) -> float | None:
    """QLQ-C30 summary score: mean of the 13 scales with symptoms reversed; None unless all 13 are scored."""
    values: list[float] = []
    for code in SUMMARY_SCALES:
        value = scores.get(code)
        if value is None:
            return None
        values.append(100 - value if scale(code).kind is ScaleKind.SYMPTOM else value)
    return sum(values) / len(SUMMARY_SCALES)


def score_instrument(instrument: Instrument, answers: Mapping[int, int | None]) -> dict[str, float | None]:
    """Every scale of ``instrument`` from its item answers (absent item = not answered), in report order."""
    for number, answer in answers.items():
        check_answer(instrument, number, answer)
    scores = {s.code: score_scale(answers, s) for s in scales_of(instrument)}
    if instrument is Instrument.QLQ_C30:
        scores[SUMMARY_SCORE] = summary_score(scores)
    return scores


@dataclass(frozen=True, slots=True)
class ScaleScore:
    """One scored scale of one questionnaire: what a SCORES.csv row holds."""

    subject_id: str
    visit: str
    instrument: Instrument
    scale: str
    score: float | None


def questionnaires(
    answers: Iterable[QuestionnaireAnswer],
) -> dict[tuple[str, str, Instrument], dict[int, int | None]]:
    """Item answers grouped per (subject, visit, instrument) questionnaire, in order of first appearance.

    A duplicated item in one questionnaire is an error (which answer is true is unknowable), as is an answer
    outside the item's scale.
    """
    forms: dict[tuple[str, str, Instrument], dict[int, int | None]] = {}
    for a in answers:
        form = forms.setdefault((a.subject_id, a.visit, a.instrument), {})
        if a.item in form:
            raise ValidationError(
                "item", f"{a.subject_id} {a.visit} {a.instrument.value}: item {a.item} is answered twice"
            )
        check_answer(a.instrument, a.item, a.answer)
        form[a.item] = a.answer
    return forms


def score_answers(answers: Iterable[QuestionnaireAnswer], scales: Iterable[str] | None = None) -> list[ScaleScore]:
    """Score every questionnaire in the answers (:func:`questionnaires`): every scale of its instrument in report
    order, or only ``scales`` (codes, in the order given; the summary score needs all its scales, so it is
    scored only with every scale)."""
    forms = questionnaires(answers)
    wanted = None if scales is None else [scale(c) for c in dict.fromkeys(scales)]
    rows: list[ScaleScore] = []
    for (subject, visit, instrument), form in forms.items():
        if wanted is None:
            for code, value in score_instrument(instrument, form).items():
                rows.append(ScaleScore(subject, visit, instrument, code, value))
            continue
        for definition in wanted:
            if definition.instrument is instrument:
                rows.append(ScaleScore(subject, visit, instrument, definition.code, score_scale(form, definition)))
    return rows
