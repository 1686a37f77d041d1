"""The measurement table as arrays: one entry per lesion per assessment (response-rules.md §7).

Both ways in (a CSV read by :mod:`abscopal.response.io`, or :class:`abscopal.domain.TumourAssessment`
objects from the application) become a :class:`LesionTable`; the engine derives everything from it, so the
two ways in cannot disagree. Diameters are held in integer micrometres (input rounded to 0.001 mm) so that
sums are exact and the 30 %, 20 % and 5 mm thresholds compare exactly, as the spec requires.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from abscopal.domain import LesionClass, LesionStatus, RtRole, TumourAssessment
from abscopal.errors import ValidationError

# integer encodings of the table's categorical columns
CLASS_CODES: dict[str, int] = {LesionClass.TARGET: 0, LesionClass.NON_TARGET: 1, LesionClass.NEW: 2}
TARGET, NON_TARGET, NEW = 0, 1, 2
STATUS_CODES: dict[str, int] = {
    LesionStatus.ABSENT: 0,
    LesionStatus.PRESENT: 1,
    LesionStatus.INCREASED: 2,
    LesionStatus.UNEQUIVOCAL_PROGRESSION: 3,
}
MISSING = -1
ABSENT, PRESENT, INCREASED, UNEQUIVOCAL = 0, 1, 2, 3
ROLE_CODES: dict[str, int] = {RtRole.NONE: 0, RtRole.CONVENTIONAL: 1, RtRole.LOW_DOSE: 2, RtRole.OBSERVATION: 3}
ROLES: tuple[RtRole, ...] = (RtRole.CONVENTIONAL, RtRole.LOW_DOSE, RtRole.OBSERVATION)
UM_PER_MM = 1000
EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class LesionTable:
    """Struct of arrays, one entry per row. ``subject`` and ``lesion`` index ``subject_ids``/``lesion_ids``;
    ``diameter_um`` and ``status`` are -1 when missing; ``line`` is where the row came from (for messages)."""

    subject: NDArray[np.int64]
    day: NDArray[np.int64]
    lesion: NDArray[np.int64]
    lesion_class: NDArray[np.int8]
    organ: NDArray[np.int64]
    is_node: NDArray[np.bool_]
    diameter_um: NDArray[np.int64]
    status: NDArray[np.int8]
    role: NDArray[np.int8]
    line: NDArray[np.int64]
    subject_ids: tuple[str, ...]
    lesion_ids: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.subject.shape[0])


def day_number(date: dt.date) -> int:
    """Days since 1970-01-01, the engine's date scale."""
    return (date - EPOCH).days


def to_date(day: int) -> dt.date:
    """Inverse of :func:`day_number`."""
    return EPOCH + dt.timedelta(days=int(day))


def diameter_to_um(mm: float) -> int:
    """A diameter in mm as integer micrometres (rounded to 0.001 mm)."""
    return round(mm * UM_PER_MM)


def from_assessments(assessments: Iterable[TumourAssessment]) -> LesionTable:
    """Build the table from domain assessments; ``line`` is the 1-based position of the measurement."""
    subjects: dict[str, int] = {}
    lesions: dict[tuple[str, str], int] = {}
    organs: dict[str, int] = {}
    cols: dict[str, list[int]] = {k: [] for k in ("s", "d", "l", "c", "o", "n", "um", "st", "r")}
    for assessment in assessments:
        for m in assessment.measurements:
            if m.diameter_mm is not None and not m.diameter_mm >= 0:
                raise ValidationError(
                    "diameter_mm",
                    f"subject {assessment.subject_id}, lesion {m.lesion_id} on {assessment.assessment_date}: "
                    f"{m.diameter_mm} is not a diameter (must be 0 or more)",
                )
            cols["s"].append(subjects.setdefault(assessment.subject_id, len(subjects)))
            cols["d"].append(day_number(assessment.assessment_date))
            cols["l"].append(lesions.setdefault((assessment.subject_id, m.lesion_id), len(lesions)))
            cols["c"].append(CLASS_CODES[m.lesion_class])
            cols["o"].append(organs.setdefault(m.organ.strip().lower(), len(organs)))
            cols["n"].append(int(m.is_node))
            cols["um"].append(MISSING if m.diameter_mm is None else diameter_to_um(m.diameter_mm))
            cols["st"].append(MISSING if m.status is None else STATUS_CODES[m.status])
            cols["r"].append(ROLE_CODES[m.rt_role] if m.rt_role is not None else 0)
    # subjects are numbered in sorted id order so that outputs come out sorted by subject
    ids = sorted(subjects)
    rank = {sid: i for i, sid in enumerate(ids)}
    remap = np.array([rank[sid] for sid in subjects], dtype=np.int64)
    subject = remap[np.array(cols["s"], dtype=np.int64)] if cols["s"] else np.zeros(0, np.int64)
    return LesionTable(
        subject=subject,
        day=np.array(cols["d"], dtype=np.int64),
        lesion=np.array(cols["l"], dtype=np.int64),
        lesion_class=np.array(cols["c"], dtype=np.int8),
        organ=np.array(cols["o"], dtype=np.int64),
        is_node=np.array(cols["n"], dtype=np.bool_),
        diameter_um=np.array(cols["um"], dtype=np.int64),
        status=np.array(cols["st"], dtype=np.int8),
        role=np.array(cols["r"], dtype=np.int8),
        line=np.arange(1, len(cols["s"]) + 1, dtype=np.int64),
        subject_ids=tuple(ids),
        lesion_ids=tuple(lid for (_sid, lid) in lesions),
    )
