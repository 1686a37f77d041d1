"""Synthetic immunotherapy: the prior course that made the patient resistant, its adjudication, trial cycles.

Resistance follows the protocol's rules (registry detailed description; SITC consensus, Kluger et al.,
J Immunother Cancer 2020;8:e000398): primary after >= 6 weeks of exposure without response, acquired after
> 6 months with a prior benefit, progression re-confirmed on a scan >= 4 weeks later, and two deputy chief
physicians' signatures. Trial cycles are every 21 days (+/- the protocol window) until progression.
"""

from __future__ import annotations

import datetime as dt
import random

from abscopal.domain import (
    Adjudication,
    BestResponseOnIO,
    ImmunotherapyCycle,
    ImmunotherapyHistory,
    ResistanceType,
    Role,
    Signature,
)
from abscopal.protocol.model import Immunotherapy, Resistance
from abscopal.synth.draws import pick, randint
from abscopal.synth.staff import usernames

# PD-1/PD-L1 antibodies in use for NSCLC in China (domestic agents dominate).
AGENTS: tuple[tuple[str, float], ...] = (
    ("tislelizumab", 0.24),
    ("sintilimab", 0.22),
    ("camrelizumab", 0.17),
    ("pembrolizumab", 0.17),
    ("toripalimab", 0.08),
    ("sugemalimab", 0.04),
    ("nivolumab", 0.04),
    ("atezolizumab", 0.04),
)

_UTC = dt.UTC


def _at(day: dt.date, r: random.Random) -> dt.datetime:
    """A time in office hours at the site (08:30-17:30 China Standard Time, stored in UTC)."""
    minutes = randint(r, 30, 570)  # minutes after 08:00 local = 00:00 UTC
    return dt.datetime(day.year, day.month, day.day, tzinfo=_UTC) + dt.timedelta(minutes=minutes)


def prior_immunotherapy(
    r: random.Random, subject_id: str, screening_date: dt.date, rules: Resistance, resistant: bool
) -> tuple[ImmunotherapyHistory, ResistanceType]:
    """The pre-trial immunotherapy course; resistant patients meet the protocol's primary or acquired rule."""
    agent = pick(r, AGENTS)
    lines = pick(r, ((1, 0.6), (2, 0.3), (3, 0.1)))
    last_dose = screening_date - dt.timedelta(days=randint(r, 3, 20))
    if not resistant:
        if r.random() < 0.5:  # too short an exposure to judge
            exposure = randint(r, 14, max(15, rules.primary_min_exposure_days - 7))
            start = screening_date - dt.timedelta(days=exposure + randint(r, 0, 7))
            history = ImmunotherapyHistory(subject_id, agent, start, last_dose, BestResponseOnIO.NE, None, None, lines)
            return history, ResistanceType.NOT_RESISTANT
        start = screening_date - dt.timedelta(days=randint(r, 120, 400))
        return (
            ImmunotherapyHistory(subject_id, agent, start, last_dose, BestResponseOnIO.PR, None, None, lines),
            ResistanceType.NOT_RESISTANT,
        )
    confirmed = screening_date - dt.timedelta(days=randint(r, 0, 21))
    progression = confirmed - dt.timedelta(
        days=randint(r, rules.confirmation_scan_min_days, rules.confirmation_scan_min_days + 21)
    )
    if r.random() < 0.4:
        kind = ResistanceType.PRIMARY
        exposure = randint(r, rules.primary_min_exposure_days + 1, rules.primary_min_exposure_days + 80)
        best = pick(
            r,
            tuple(
                (BestResponseOnIO(b), w) for b, w in (("PD", 0.45), ("SD", 0.55)) if b in rules.primary_best_responses
            ),
        )
    else:
        kind = ResistanceType.ACQUIRED
        low = max(rules.acquired_min_exposure_days, rules.sd_for_acquired_min_days) + 10
        exposure = randint(r, low, low + 540)
        best = pick(
            r,
            tuple(
                (BestResponseOnIO(b), w)
                for b, w in (("PR", 0.55), ("SD", 0.35), ("CR", 0.1))
                if b in rules.acquired_best_responses
            ),
        )
    start = progression - dt.timedelta(days=exposure)
    history = ImmunotherapyHistory(subject_id, agent, start, last_dose, best, progression, confirmed, lines)
    return history, kind


def adjudication(
    r: random.Random,
    subject_id: str,
    classification: ResistanceType,
    proposed_on: dt.date,
    sign_by: dt.date,
    rules: Resistance,
    confirmed: bool,
) -> Adjudication:
    """A resistance classification proposed by a radiation oncologist; confirmed ones carry the required signatures."""
    proposer = r.choice(usernames(Role.RADIATION_ONCOLOGIST))
    proposed_at = _at(proposed_on, r)
    signers = list(usernames(Role(rules.signer_role)))
    r.shuffle(signers)
    if confirmed:
        n = min(len(signers), rules.required_signatures + (1 if r.random() < 0.1 else 0))
    else:
        n = randint(r, 0, max(0, rules.required_signatures - 1))
    signatures: list[Signature] = []
    last = proposed_at
    span = max(0, (sign_by - proposed_on).days)
    for username in signers[:n]:
        day = proposed_on + dt.timedelta(days=randint(r, 0, span))
        signed = max(_at(day, r), last + dt.timedelta(minutes=randint(r, 5, 240)))
        last = signed
        signatures.append(Signature(username, Role(rules.signer_role), signed))
    return Adjudication(subject_id, classification, proposer, proposed_at, tuple(signatures))


def trial_cycles(
    r: random.Random,
    subject_id: str,
    agent: str,
    first: dt.date,
    stop: dt.date,
    held: tuple[dt.date, ...],
    rules: Immunotherapy,
) -> list[ImmunotherapyCycle]:
    """Cycles every ``interval_days`` (+/- a couple of days, occasional one-week delays) while ``date <= stop``.

    A cycle falling within two weeks after an onset in ``held`` (an AE that interrupted the drug) is not given.
    """
    cycles: list[ImmunotherapyCycle] = []
    day = first
    number = 1
    small = min(2, rules.window_days)
    while day <= stop:
        given = not any(0 <= (day - h).days <= 14 for h in held)
        cycles.append(ImmunotherapyCycle(subject_id, number, day, agent, given))
        number += 1
        step = rules.interval_days + randint(r, -small, small)
        if r.random() < 0.06:  # delayed a week (holiday, infection, patient's choice)
            step += 7
        day += dt.timedelta(days=step)
    return cycles
