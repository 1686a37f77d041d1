"""The report's protocol-deviation summary (analysis/deviations.py): counts per check and class, the listing's
order and limit, and the data cut-off. Expected values are counted by hand from the records below."""

from __future__ import annotations

import datetime as dt

from abscopal import domain as d
from abscopal.analysis.cutoff import TrialData, apply_cutoff
from abscopal.analysis.deviations import DeviationCount, summarise_deviations

MAJOR, MINOR = d.DeviationClass.MAJOR, d.DeviationClass.MINOR
C = d.DeviationCheck


def dev(
    sid: str, check: d.DeviationCheck, cls: d.DeviationClass, day: int | None = 1, confirmed: str | None = None
) -> d.ProtocolDeviation:
    date = dt.date(2024, 5, day) if day is not None else None
    return d.ProtocolDeviation(sid, check, cls, "v", "r", lesion_id="L1", confirmed_by=confirmed, date=date)


RECORDS = [
    dev("S2", C.LDRT_INTERVAL, MINOR, 3),
    dev("S1", C.CFRT_PRESCRIPTION, MAJOR, 2, confirmed="dr.li"),
    dev("S1", C.LDRT_INTERVAL, MINOR, 9),
    dev("S3", C.CFRT_PRESCRIPTION, MAJOR, 4),
    dev("S9", C.CFRT_PRESCRIPTION, MAJOR, 4),  # not enrolled: left out
]


def test_deviations_are_counted_per_check_in_the_engines_order_with_class_confirmation_and_patients() -> None:
    s = summarise_deviations(RECORDS, ["S1", "S2", "S3", "S4"])
    assert s.counts == (
        DeviationCount("cfrt.prescription", major=2, minor=0, confirmed=1, patients=2),
        DeviationCount("ldrt.interval", major=0, minor=2, confirmed=0, patients=2),
    )
    assert (s.enrolled, s.total, s.patients_with_any, s.patients_with_major) == (4, 4, 3, 2)


def test_the_listing_puts_major_deviations_first_then_orders_by_patient_and_date() -> None:
    s = summarise_deviations(RECORDS, ["S1", "S2", "S3"])
    assert [(e.subject_id, e.check, e.date) for e in s.listing] == [
        ("S1", "cfrt.prescription", dt.date(2024, 5, 2)),
        ("S3", "cfrt.prescription", dt.date(2024, 5, 4)),
        ("S1", "ldrt.interval", dt.date(2024, 5, 9)),
        ("S2", "ldrt.interval", dt.date(2024, 5, 3)),
    ]
    assert s.listing[0].confirmed_by == "dr.li" and s.listing[1].confirmed_by is None


def test_the_listing_stops_at_its_limit_but_the_counts_cover_every_deviation() -> None:
    s = summarise_deviations(RECORDS, ["S1", "S2", "S3"], limit=2)
    assert len(s.listing) == 2 and s.listing_is_partial
    assert sum(c.major + c.minor for c in s.counts) == 4


def test_no_deviation_gives_empty_counts_and_a_complete_listing() -> None:
    s = summarise_deviations([], ["S1"])
    assert (s.total, s.counts, s.listing, s.listing_is_partial) == (0, (), (), False)


def test_the_cutoff_drops_deviations_dated_after_it_and_keeps_undated_ones() -> None:
    data = TrialData(deviations=[dev("S1", C.CFRT_PRESCRIPTION, MAJOR, 2), dev("S1", C.LDRT_INTERVAL, MINOR, 9),
                                 dev("S1", C.OBSERVATION_IRRADIATED, MAJOR, None)])  # fmt: skip
    kept = apply_cutoff(data, dt.date(2024, 5, 5)).deviations
    assert [x.check for x in kept] == [C.CFRT_PRESCRIPTION, C.OBSERVATION_IRRADIATED]
