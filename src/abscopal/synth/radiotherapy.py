"""Synthetic radiotherapy: CFRT and LDRT prescriptions, the fractions delivered, and protocol deviations.

Regimens are those of the registry record (radiotherapy.md §1-2): CFRT 1.8-2.0 Gy once a day on working days
to 40-60 Gy on the conventional lesion; LDRT 1.6 Gy once a week, 4-6 fractions, on the low-dose lesions.
Deviations are classed with the protocol's thresholds (radiotherapy.md §2 table; ``radiotherapy.deviations``)
from what the fractions show, under the check names of ``abscopal.protocol.radiotherapy`` (``delivered_total``,
``cfrt.overall_time``, ``ldrt.interval``, ``ldrt.fractions``), so that engine finds the same deviations.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from abscopal.domain import (
    DeviationCheck,
    DeviationClass,
    Fraction,
    FractionStatus,
    Lesion,
    ProtocolDeviation,
    RadiotherapyCourse,
    Role,
    RtRole,
)
from abscopal.protocol.model import Radiotherapy
from abscopal.protocol.radiotherapy import (
    cfrt_interruption_class,
    delivered_dose_gy,
    delivered_total_class,
    ldrt_interval_class,
)
from abscopal.synth.calendar import WorkingDays, working_days_spanned
from abscopal.synth.draws import pick, randint
from abscopal.synth.staff import usernames

# Common CFRT schedules (dose per fraction Gy, fractions, weight); those outside the protocol are dropped.
_CFRT: tuple[tuple[float, int, float], ...] = (
    (2.0, 30, 0.35),
    (2.0, 25, 0.2),
    (1.8, 28, 0.12),
    (1.8, 25, 0.1),
    (2.0, 20, 0.1),
    (2.0, 28, 0.08),
    (1.8, 30, 0.05),
)


@dataclass(frozen=True, slots=True)
class Delivery:
    courses: tuple[RadiotherapyCourse, ...]
    fractions: tuple[Fraction, ...]
    deviations: tuple[ProtocolDeviation, ...]
    last_cfrt: dt.date | None


def cfrt_schedules(rules: Radiotherapy) -> tuple[tuple[float, int, float], ...]:
    """The usual CFRT schedules that satisfy the protocol's dose and fraction ranges."""
    c = rules.conventional
    ok = tuple(
        (d, n, w)
        for d, n, w in _CFRT
        if c.dose_per_fraction_gy.contains(d) and c.total_dose_gy.contains(round(d * n, 6)) and c.fractions.contains(n)
    )
    if ok:
        return ok
    d = round((c.dose_per_fraction_gy.min + c.dose_per_fraction_gy.max) / 2, 2)
    n = round((c.total_dose_gy.min + c.total_dose_gy.max) / 2 / d)
    return ((d, n, 1.0),)


def deliver(
    r: random.Random,
    subject_id: str,
    lesions: tuple[Lesion, ...],
    selection: str,
    first_day: dt.date,
    days: WorkingDays,
    rules: Radiotherapy,
    stop: dt.date,
    stop_reason: str | None,
) -> Delivery:
    """Prescribe and deliver CFRT and LDRT from ``first_day``; nothing after ``stop``.

    ``stop_reason`` says why data end at ``stop`` (death, withdrawal, loss to follow-up) or is None when they
    end at the data cut-off, in which case an unfinished course is ongoing and not judged for deviations.
    """
    oncologist = r.choice(usernames(Role.RADIATION_ONCOLOGIST))
    confirmer = r.choice(usernames(Role.DEPUTY_CHIEF_PHYSICIAN))
    t = rules.deviations
    courses: list[RadiotherapyCourse] = []
    fractions: list[Fraction] = []
    deviations: list[ProtocolDeviation] = []

    def deviation(lesion_id: str, check: str, cls: DeviationClass, values: str, reason: str, day: dt.date) -> None:
        deviations.append(
            ProtocolDeviation(
                subject_id, DeviationCheck(check), cls, values, reason, lesion_id, oncologist, confirmer, day
            )
        )

    # --- CFRT on the conventional lesion
    conv = next(x for x in lesions if x.rt_role is RtRole.CONVENTIONAL)
    dpf, n, _ = pick(r, tuple(((d, k, w), w) for d, k, w in cfrt_schedules(rules)))
    skip, skip_after = 0, 0
    event = r.random()
    if event < 0.08:  # unplanned interruption (machine service, intercurrent illness)
        skip = r.choice((1, 2, 3, 3, 4, 5, 6, 7))
        skip_after = randint(r, 5, n - 5)
    planned = days.consecutive(first_day, n, skip_after, skip)
    missed = -1
    declined = 0
    if 0.08 <= event < 0.11:  # one fraction missed and not made up
        missed = randint(r, 3, n - 2)
    elif 0.11 <= event < 0.15:  # patient stops early (oesophagitis, fatigue)
        declined = randint(r, 1, max(1, n // 8))
    records = [
        Fraction(subject_id, conv.lesion_id, i + 1, day, 0.0, FractionStatus.MISSED)
        if i == missed
        else Fraction(subject_id, conv.lesion_id, i + 1, day, dpf)
        for i, day in enumerate(planned[: n - declined])
    ]
    kept = [f for f in records if f.date <= stop]
    courses.append(
        RadiotherapyCourse(
            subject_id,
            conv.lesion_id,
            RtRole.CONVENTIONAL,
            dpf,
            n,
            first_day,
            rules.radiobiology.alpha_beta_tumour_gy,
            f"CFRT {dpf * n:g} Gy/{n} f ({selection})",
        )
    )
    fractions.extend(kept)
    cut = len(kept) < len(records)
    if kept and (not cut or stop_reason is not None):
        delivered = round(delivered_dose_gy(kept), 6)
        prescribed = round(dpf * n, 6)
        cls = delivered_total_class(prescribed, delivered, t)
        if cls is not None:
            change = (delivered - prescribed) / prescribed * 100
            if cut:
                why = f"course stopped early: patient {stop_reason}"
            elif declined:
                why = f"patient declined the last {declined} fraction{'s' if declined > 1 else ''} (oesophagitis)"
            else:
                why = "missed fraction not made up"
            deviation(
                conv.lesion_id,
                "delivered_total",
                cls,
                f"prescribed {prescribed:g} Gy, delivered {delivered:g} Gy ({change:+.1f}%)",
                why,
                kept[-1].date,
            )
        extra = working_days_spanned(days, kept[0].date, kept[-1].date) - len(kept)
        icls = cfrt_interruption_class(extra, t)
        if icls is not None:
            deviation(
                conv.lesion_id,
                "cfrt.overall_time",
                icls,
                f"{extra} working days beyond plan",
                r.choice(("linear accelerator out of service", "intercurrent infection", "patient's family matter")),
                kept[-1].date,
            )
    last_cfrt = kept[-1].date if kept else None

    # --- LDRT on the low-dose lesions, all treated on the same weekly days
    low = [x for x in lesions if x.rt_role is RtRole.LOW_DOSE]
    if low:
        ld = rules.low_dose
        counts = tuple(range(int(ld.fractions.min), int(ld.fractions.max) + 1))
        n_ld = pick(r, tuple((c, 1.0 + 0.3 * k) for k, c in enumerate(counts)))
        start = first_day if r.random() < 0.7 else days.consecutive(first_day, 1 + randint(r, 1, 3))[-1]
        late_gap = -1
        late_by = 0
        if r.random() < 0.07 and n_ld > 1:
            late_gap = randint(r, 1, n_ld - 1)
            late_by = r.choice((3, 4, 5)) if r.random() < 0.8 else r.choice((8, 9, 10))
        dates = [start]
        for k in range(1, n_ld):
            target = dates[-1] + dt.timedelta(days=ld.interval_days + (late_by if k == late_gap else 0))
            day: dt.date | None = None
            if k != late_gap:
                for offset in (0, -1, 1, -2, 2):
                    candidate = target + dt.timedelta(days=offset)
                    gap = (candidate - dates[-1]).days
                    if days.is_working_day(candidate) and ld.interval_window_days.contains(gap):
                        day = candidate
                        break
                if day is None and r.random() < 0.7:
                    day = target  # no working day in the window: most departments treat on the holiday
            dates.append(day if day is not None else days.on_or_after(target))
        kept_dates = [d for d in dates if d <= stop]
        for x in low:
            courses.append(
                RadiotherapyCourse(
                    subject_id,
                    x.lesion_id,
                    RtRole.LOW_DOSE,
                    ld.dose_per_fraction_gy,
                    n_ld,
                    start,
                    rules.radiobiology.alpha_beta_tumour_gy,
                    f"LDRT {ld.dose_per_fraction_gy:g} Gy x {n_ld}",
                )
            )
            fractions.extend(
                Fraction(subject_id, x.lesion_id, i + 1, d, ld.dose_per_fraction_gy) for i, d in enumerate(kept_dates)
            )
            for i in range(1, len(kept_dates)):
                gap = (kept_dates[i] - kept_dates[i - 1]).days
                gcls = ldrt_interval_class(gap, rules)
                if gcls is not None:
                    deviation(
                        x.lesion_id,
                        "ldrt.interval",
                        gcls,
                        f"{gap} days between fractions {i} and {i + 1}",
                        r.choice(("public holiday", "patient unwell", "planning CT repeated"))
                        if i == late_gap
                        else "holiday week",
                        kept_dates[i],
                    )
            stopped = bool(kept_dates) and len(kept_dates) < len(dates) and stop_reason is not None
            if stopped:
                prescribed_ld = round(ld.dose_per_fraction_gy * n_ld, 6)
                delivered_ld = round(ld.dose_per_fraction_gy * len(kept_dates), 6)
                tcls = delivered_total_class(prescribed_ld, delivered_ld, t)
                if tcls is not None:
                    deviation(
                        x.lesion_id,
                        "delivered_total",
                        tcls,
                        f"prescribed {prescribed_ld:g} Gy, delivered {delivered_ld:g} Gy",
                        f"course stopped early: patient {stop_reason}",
                        kept_dates[-1],
                    )
            if stopped and not ld.fractions.contains(len(kept_dates)):
                deviation(
                    x.lesion_id,
                    "ldrt.fractions",
                    DeviationClass.MAJOR,
                    f"{len(kept_dates)} fractions delivered (protocol {int(ld.fractions.min)}-{int(ld.fractions.max)})",
                    f"course stopped early: patient {stop_reason}",
                    kept_dates[-1],
                )
    return Delivery(tuple(courses), tuple(fractions), tuple(deviations), last_cfrt)
