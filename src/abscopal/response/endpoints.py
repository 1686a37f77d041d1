"""Progression-free survival event or censoring (FDA 2018 guidance, PFS censoring table; response-rules.md
§6) and duration of response (§4). Durations are end - start + 1 days, the ADaM convention."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from abscopal.protocol.model import ResponseOptions
from abscopal.response.codes import NONE, Code

I64 = NDArray[np.int64]
B = NDArray[np.bool_]
C = NDArray[np.int8]
NO_DAY = np.iinfo(np.int64).max // 4


class PfsReason(IntEnum):
    """Why the PFS date is what it is (one row of the censoring table each)."""

    PROGRESSION = 0
    DEATH = 1
    DEATH_BEFORE_ASSESSMENT = 2
    NO_PROGRESSION = 3
    NO_ADEQUATE_ASSESSMENT = 4
    NEW_THERAPY = 5
    MISSED_ASSESSMENTS = 6
    MISSED_ASSESSMENTS_EVENT = 7


PFS_REASON_TEXT: dict[int, str] = {
    PfsReason.PROGRESSION: "event: progression",
    PfsReason.DEATH: "event: death",
    PfsReason.DEATH_BEFORE_ASSESSMENT: "event: death before any post-baseline assessment",
    PfsReason.NO_PROGRESSION: "censored: last adequate assessment, no progression or death",
    PfsReason.NO_ADEQUATE_ASSESSMENT: "censored: reference date, no adequate post-baseline assessment",
    PfsReason.NEW_THERAPY: "censored: last adequate assessment before new anticancer therapy",
    PfsReason.MISSED_ASSESSMENTS: "censored: last adequate assessment before >= 2 missed assessments",
    PfsReason.MISSED_ASSESSMENTS_EVENT: "event after >= 2 missed assessments (missed_visits = event)",
}


@dataclass(frozen=True)
class Pfs:
    """Per subject: event (True) or censored, the date (day number) and the reason code."""

    event: B
    day: I64
    reason: I64


def _last_adequate(adequate: B, day: I64, limit: I64, inclusive: bool) -> I64:
    """The latest adequate assessment day before ``limit`` (on or before if ``inclusive``), -1 if none."""
    before = (day <= limit[:, None]) if inclusive else (day < limit[:, None])
    return np.where(adequate & before, day, -1).max(axis=1)  # type: ignore[no-any-return]


def progression_free_survival(
    codes: C,
    valid: B,
    day: I64,
    progression_day: I64,
    reference_day: I64,
    death_day: I64,
    new_therapy_day: I64,
    options: ResponseOptions,
) -> Pfs:
    """Apply the FDA 2018 censoring table in order: new therapy first, death without any assessment, missed
    assessments (option ``missed_visits``), event, else censoring at the last adequate assessment."""
    post = valid.copy()
    post[:, 0] = False
    adequate = post & (codes != Code.NE) & (codes != NONE)
    event_day = np.minimum(progression_day, death_day)
    has_event = event_day < NO_DAY
    is_death = has_event & (death_day <= progression_day)
    any_post = post.any(axis=1)

    before_therapy = _last_adequate(adequate, day, new_therapy_day, inclusive=True)
    therapy_first = (new_therapy_day < NO_DAY) & (new_therapy_day < event_day)
    before_event = _last_adequate(adequate, day, event_day, inclusive=False)
    gap_from = np.where(before_event >= 0, before_event, reference_day)
    missed = has_event & (event_day - gap_from > options.missed_visits_gap_days)
    censor_missed = missed & (options.missed_visits == "censor")
    last = _last_adequate(adequate, day, np.full_like(reference_day, NO_DAY), inclusive=True)

    conds = [
        therapy_first,
        has_event & ~any_post & is_death,
        censor_missed,
        missed,
        has_event & is_death,
        has_event,
        last >= 0,
    ]
    reasons = [
        PfsReason.NEW_THERAPY,
        PfsReason.DEATH_BEFORE_ASSESSMENT,
        PfsReason.MISSED_ASSESSMENTS,
        PfsReason.MISSED_ASSESSMENTS_EVENT,
        PfsReason.DEATH,
        PfsReason.PROGRESSION,
        PfsReason.NO_PROGRESSION,
    ]
    reason = np.select(conds, reasons, default=PfsReason.NO_ADEQUATE_ASSESSMENT).astype(np.int64)
    days = np.select(
        conds,
        [
            np.where(before_therapy >= 0, before_therapy, reference_day),
            event_day,
            gap_from,
            event_day,
            event_day,
            event_day,
            last,
        ],
        default=reference_day,
    ).astype(np.int64)
    event = np.isin(
        reason,
        (PfsReason.PROGRESSION, PfsReason.DEATH, PfsReason.DEATH_BEFORE_ASSESSMENT, PfsReason.MISSED_ASSESSMENTS_EVENT),
    )
    return Pfs(event=event, day=days, reason=reason)


def duration_days(start_day: I64, end_day: I64) -> I64:
    """Duration in days, end - start + 1 (ADaM convention), -1 where there is no start."""
    return np.where(start_day >= 0, np.maximum(end_day, start_day) - start_day + 1, -1).astype(np.int64)
