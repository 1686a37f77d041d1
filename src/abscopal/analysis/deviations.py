"""Protocol deviations for the report: counts per radiotherapy check and class, and the listing of each one.

The deviations are the store's (:class:`abscopal.domain.ProtocolDeviation`): proposed by the radiotherapy engine
(:func:`abscopal.protocol.radiotherapy.check_plan`) when a prescription, a DICOM RT plan or a treatment record is
recorded, and confirmed by a person (radiotherapy.md §2). Both are shown; a proposed one says so. Pure: no
database, no web.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from abscopal import domain as d

#: How many deviations the report lists one by one (the major ones first); the counts always cover all of them.
LISTING_LIMIT = 100


@dataclass(frozen=True)
class DeviationCount:
    """One radiotherapy check: its deviations by class, how many are confirmed, and the patients they touch."""

    check: str
    major: int
    minor: int
    confirmed: int
    patients: int


@dataclass(frozen=True)
class DeviationSummary:
    """Every deviation of the enrolled patients, counted per check, and the first :data:`LISTING_LIMIT` listed
    (the stored records themselves; ``confirmed_by`` None means proposed by the engine, unconfirmed)."""

    enrolled: int
    patients_with_any: int
    patients_with_major: int
    total: int
    counts: tuple[DeviationCount, ...]
    listing: tuple[d.ProtocolDeviation, ...]

    @property
    def listing_is_partial(self) -> bool:
        return len(self.listing) < self.total


def _order(dev: d.ProtocolDeviation) -> tuple[int, str, dt.date, str, str]:
    major = 0 if dev.deviation_class is d.DeviationClass.MAJOR else 1
    return major, dev.subject_id, dev.date or dt.date.min, dev.lesion_id or "", str(dev.check)


def summarise_deviations(
    deviations: Iterable[d.ProtocolDeviation], enrolled: Sequence[str], limit: int = LISTING_LIMIT
) -> DeviationSummary:
    """Count the enrolled patients' deviations per check (in the order of :class:`~abscopal.domain.DeviationCheck`,
    the engine's order of checks) and list them, major first, then by patient, date and lesion."""
    chosen = set(enrolled)
    mine = sorted((x for x in deviations if x.subject_id in chosen), key=_order)
    by_check: dict[str, list[d.ProtocolDeviation]] = defaultdict(list)
    for dev in mine:
        by_check[str(dev.check)].append(dev)
    order = {str(c): i for i, c in enumerate(d.DeviationCheck)}
    counts = tuple(
        DeviationCount(
            check=check,
            major=sum(x.deviation_class is d.DeviationClass.MAJOR for x in devs),
            minor=sum(x.deviation_class is d.DeviationClass.MINOR for x in devs),
            confirmed=sum(x.confirmed_by is not None for x in devs),
            patients=len({x.subject_id for x in devs}),
        )
        for check, devs in sorted(by_check.items(), key=lambda kv: order.get(kv[0], len(order)))
    )
    listing = tuple(mine[: max(limit, 0)])
    return DeviationSummary(
        enrolled=len(chosen),
        patients_with_any=len({x.subject_id for x in mine}),
        patients_with_major=len({x.subject_id for x in mine if x.deviation_class is d.DeviationClass.MAJOR}),
        total=len(mine),
        counts=counts,
        listing=listing,
    )
