"""Synthetic NCT05906329 cohorts: deterministic, clinically plausible, streamable to 100,000 patients.

Every patient's data come from their own random streams, seeded by ``(seed, patient index)`` through numpy's
``SeedSequence``, so the same seed gives the same patients whatever the chunk size. The data respect the
protocol passed in (eligibility limits, lesion roles, RT regimens, visit schedule) and the data cut-off:
nothing is dated after ``cutoff_date`` or after a patient's death, withdrawal or last contact.

Accrual spreads screening over the first ~75% of the period, so a patient's screening date depends on
``n_patients``; everything else about patient ``i`` depends only on ``(seed, i)``. ``Cohort.truths`` records
what the generator intended (scenario, pseudo-progression, iUPD/iCPD dates): not trial data, but a key to
check the engines against. Cost: about 1 ms of CPU per screened patient, most of it building the records.
"""

from __future__ import annotations

import datetime as dt
import gc
import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields

import numpy as np

from abscopal.domain import (
    Adjudication,
    AdverseEvent,
    Fraction,
    ImmunotherapyCycle,
    ImmunotherapyHistory,
    Lesion,
    Patient,
    PatientStatus,
    ProtocolDeviation,
    QuestionnaireAnswer,
    RadiotherapyCourse,
    Screening,
    Sex,
    Site,
    TumourAssessment,
    User,
)
from abscopal.errors import ValidationError
from abscopal.protocol.calendar import questionnaire_visit_code
from abscopal.protocol.model import Protocol
from abscopal.synth.calendar import WorkingDays
from abscopal.synth.draws import randint
from abscopal.synth.immunotherapy import adjudication, prior_immunotherapy, trial_cycles
from abscopal.synth.lesions import baseline_lesions
from abscopal.synth.qol import QolPlan, QolVisit, plan_answers, score_answers
from abscopal.synth.radiotherapy import deliver
from abscopal.synth.safety import draft_events, finalise_events
from abscopal.synth.screening import (
    Limits,
    birth_date_for_age,
    eligible_age,
    eligible_screening,
    limits_from,
    screen_failure,
)
from abscopal.synth.staff import SECOND_SITE, SITE, USERS
from abscopal.synth.trajectory import disease_course

SCREEN_FAILURE_RATE = 0.27


@dataclass(frozen=True, slots=True)
class SyntheticTruth:
    """What the generator intended for a patient (not trial data): lets engines be checked against it."""

    subject_id: str
    scenario: str  # "screen_failure", "response", "stable", "progression", "pseudo_progression"
    abscopal: bool = False
    pseudo_iupd_date: dt.date | None = None
    iupd_date: dt.date | None = None  # of true progression; icpd_date is None when no scan followed it
    icpd_date: dt.date | None = None


@dataclass(frozen=True, slots=True)
class Cohort:
    """A synthetic trial data set as tuples of ``abscopal.domain`` records (one chunk or the whole cohort)."""

    sites: tuple[Site, ...] = ()
    users: tuple[User, ...] = ()
    patients: tuple[Patient, ...] = ()
    screenings: tuple[Screening, ...] = ()
    immunotherapy_histories: tuple[ImmunotherapyHistory, ...] = ()
    adjudications: tuple[Adjudication, ...] = ()
    immunotherapy_cycles: tuple[ImmunotherapyCycle, ...] = ()
    lesions: tuple[Lesion, ...] = ()
    radiotherapy_courses: tuple[RadiotherapyCourse, ...] = ()
    fractions: tuple[Fraction, ...] = ()
    protocol_deviations: tuple[ProtocolDeviation, ...] = ()
    tumour_assessments: tuple[TumourAssessment, ...] = ()
    adverse_events: tuple[AdverseEvent, ...] = ()
    questionnaire_answers: tuple[QuestionnaireAnswer, ...] = ()
    truths: tuple[SyntheticTruth, ...] = ()

    @classmethod
    def concat(cls, parts: Iterable[Cohort]) -> Cohort:
        """Join chunks in order (the sites and users travel in the first chunk)."""
        lists: dict[str, list[object]] = {f.name: [] for f in fields(cls)}
        for part in parts:
            for name, items in lists.items():
                items.extend(getattr(part, name))
        return cls(**{name: tuple(items) for name, items in lists.items()})  # type: ignore[arg-type]


def generate_cohort(
    n_patients: int,
    seed: int,
    protocol: Protocol,
    start_date: dt.date | None = None,
    cutoff_date: dt.date | None = None,
    sites: int = 1,
) -> Cohort:
    """Screen ``n_patients`` people (about 27% fail screening) and follow the enrolled to ``cutoff_date``.

    ``start_date`` defaults to the trial's start (protocol ``trial.start_date``), ``cutoff_date`` to two years
    later. With ``sites=2`` every third person (index 2, 5, 8 ...) is screened at :data:`SECOND_SITE` instead of
    :data:`SITE`; everything else about them is the same. Example:
    ``generate_cohort(500, seed=7, protocol=load_bundled().current)``.
    """
    return Cohort.concat(
        iter_cohort_chunks(n_patients, seed, protocol, max(n_patients, 1), start_date, cutoff_date, sites=sites)
    )


def iter_cohort_chunks(
    n_patients: int,
    seed: int,
    protocol: Protocol,
    chunk_size: int = 1000,
    start_date: dt.date | None = None,
    cutoff_date: dt.date | None = None,
    *,
    sites: int = 1,
) -> Iterator[Cohort]:
    """The cohort of :func:`generate_cohort` in chunks of ``chunk_size`` patients, so memory stays flat.

    ``sites`` is 1 (every patient at :data:`SITE`) or 2 (every third at :data:`SECOND_SITE`, which then travels
    in the first chunk's ``sites`` beside :data:`SITE`).
    """
    if isinstance(n_patients, bool) or not isinstance(n_patients, int) or n_patients < 0:
        raise ValidationError("n_patients", f"must be a whole number >= 0, got {n_patients!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValidationError("chunk_size", f"must be a whole number >= 1, got {chunk_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValidationError("seed", f"must be a whole number >= 0, got {seed!r}")
    if isinstance(sites, bool) or sites not in (1, 2):
        raise ValidationError("sites", f"must be 1 or 2, got {sites!r}")
    start = start_date or protocol.trial.start_date
    cutoff = cutoff_date or _add_years(start, 2)
    if (cutoff - start).days < 120:
        raise ValidationError("cutoff_date", f"{cutoff} must be at least 120 days after the start date {start}")
    world = _World(protocol, start, cutoff, n_patients, sites)
    staff = Cohort(sites=(SITE, SECOND_SITE)[:sites], users=USERS)
    for begin in range(0, max(n_patients, 1), chunk_size):
        with _gc_paused():
            made = [world.patient(seed, i) for i in range(begin, min(begin + chunk_size, n_patients))]
            parts = [cohort for cohort, _ in made]
            qol = Cohort(questionnaire_answers=tuple(score_answers([plan for _, plan in made if plan is not None])))
            chunk = Cohort.concat([staff, *parts, qol] if begin == 0 else [*parts, qol])
        yield chunk


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a chunk is built (not across yields).

    A chunk is hundreds of thousands of acyclic records; without the pause the collector re-scans them over
    and over as they are allocated (about a quarter of the run time). Collection resumes afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _streams(seed: int, index: int) -> tuple[random.Random, np.random.Generator]:
    """Independent per-patient streams: Python's for scalar draws, numpy's for arrays."""
    sequence = np.random.SeedSequence([seed, index])
    state = sequence.generate_state(2, np.uint64)
    return random.Random(int(state[0]) << 64 | int(state[1])), np.random.default_rng(sequence)


class _World:
    """What every patient shares: the protocol, its limits, the calendar and the accrual period."""

    def __init__(self, protocol: Protocol, start: dt.date, cutoff: dt.date, n: int, sites: int = 1) -> None:
        self.protocol = protocol
        self.sites = sites
        self.limits: Limits = limits_from(protocol)
        self.start = start
        self.cutoff = cutoff
        self.n = max(n, 1)
        span = (cutoff - start).days
        self.accrual_days = max(1, int(span * 0.75) - 40)
        self.days = WorkingDays(start, cutoff + dt.timedelta(days=400), protocol.schedule.holidays_country)

    def patient(self, seed: int, index: int) -> tuple[Cohort, QolPlan | None]:
        r, rng = _streams(seed, index)
        p = self.protocol
        site = self.site_of(index)
        subject_id = f"{site.code}-{index + 1:06d}"
        screening_date = self.start + dt.timedelta(days=7 + index * self.accrual_days // self.n + randint(r, 0, 3))
        consent = screening_date - dt.timedelta(days=randint(r, 0, 5))
        sex = Sex.MALE if r.random() < 0.7 else Sex.FEMALE
        age = eligible_age(r, self.limits)
        if r.random() < SCREEN_FAILURE_RATE:
            return self._screen_failure(r, subject_id, site, screening_date, consent, sex, age), None

        base = baseline_lesions(r, subject_id, p.radiotherapy)
        screening = eligible_screening(
            r,
            subject_id,
            screening_date,
            consent,
            age,
            sex,
            len(base.lesions),
            base.metastatic_organ_count,
            self.limits,
        )
        birth = birth_date_for_age(r, screening_date, age)
        history, resistance = prior_immunotherapy(r, subject_id, screening_date, p.resistance, resistant=True)
        baseline_date = screening_date + dt.timedelta(days=randint(r, 0, 6))
        enrolment = baseline_date + dt.timedelta(days=randint(r, 1, 7))
        first_day = self.days.on_or_after(enrolment + dt.timedelta(days=randint(r, 2, 9)))
        adj = adjudication(
            r, subject_id, resistance, screening_date, enrolment - dt.timedelta(days=1), p.resistance, confirmed=True
        )

        # events that end follow-up, drawn before the disease course
        death: tuple[dt.date, str] | None = None
        u = r.random()
        if u < 0.025:
            death = (first_day + dt.timedelta(days=randint(r, 5, 38)), "disease progression (clinical deterioration)")
        else:
            days_to_death = int(r.expovariate(1 / 1500.0)) + 20
            death = (first_day + dt.timedelta(days=days_to_death), r.choice(("disease progression", "other cause")))
        withdrawal = first_day + dt.timedelta(days=randint(r, 14, 450)) if r.random() < 0.05 else None
        lost = first_day + dt.timedelta(days=randint(r, 30, 540)) if r.random() < 0.03 else None
        new_therapy = first_day + dt.timedelta(days=randint(r, 60, 300)) if r.random() < 0.02 else None
        study_end = enrolment + dt.timedelta(days=p.schedule.max_follow_up_days)
        horizon = min(d for d in (self.cutoff, study_end, death[0], withdrawal, lost) if d is not None)
        scan_horizon = min(horizon, new_therapy - dt.timedelta(days=1)) if new_therapy else horizon
        course = disease_course(
            r, subject_id, base.lesions, first_day, baseline_date, scan_horizon, p.schedule, p.response
        )
        if course.icpd_date is not None:
            after = course.icpd_date + dt.timedelta(days=14 + int(r.expovariate(1 / 210.0)))
            if after < death[0]:
                death = (after, "disease progression")
            if new_therapy is None and r.random() < 0.55:
                new_therapy = course.icpd_date + dt.timedelta(days=randint(r, 7, 35))
        end = min(d for d in (self.cutoff, study_end, death[0], withdrawal, lost) if d is not None)
        drafts = draft_events(r, consent, first_day)
        safety = finalise_events(subject_id, drafts, end)
        if safety.death is not None:
            death, end = safety.death, safety.death[0]
        died = death[0] <= end
        withdrew = not died and withdrawal is not None and withdrawal == end
        was_lost = not died and not withdrew and lost is not None and lost == end
        stop_reason = (
            "died" if died else "withdrew consent" if withdrew else "was lost to follow-up" if was_lost else None
        )

        delivery = deliver(
            r, subject_id, base.lesions, base.selection, first_day, self.days, p.radiotherapy, end, stop_reason
        )
        assessments = [a for a in course.assessments if a.assessment_date <= end]
        kept = len(assessments)
        new_ids = {m.lesion_id for a in assessments for m in a.measurements if m.lesion_id.startswith("N")}
        new_lesions = tuple(x for x in course.new_lesions if x.lesion_id in new_ids)

        # immunotherapy continues until confirmed progression, discontinuation, new therapy or the end
        io_stop = end
        for d in (course.icpd_date, safety.io_discontinued, new_therapy):
            if d is not None:
                io_stop = min(io_stop, d - dt.timedelta(days=1))
        io_first = max(first_day + dt.timedelta(days=randint(r, -2, 3)), enrolment)
        cycles = trial_cycles(r, subject_id, history.agent, io_first, io_stop, safety.io_interruptions, p.immunotherapy)

        # questionnaires at baseline and at each scan visit
        visits = [
            QolVisit(
                questionnaire_visit_code(number, p.schedule),
                min(first_day, a.assessment_date + dt.timedelta(days=randint(r, 0, 2)))
                if number == 0
                else a.assessment_date,
                course.burden[j],
                course.progressing[j],
                tuple(
                    e.term
                    for e in safety.events
                    if (e.grade or 0) >= 2
                    and e.onset_date <= a.assessment_date
                    and (e.resolution_date is None or e.resolution_date >= a.assessment_date)
                ),
            )
            for j, (a, number) in enumerate(zip(assessments, course.visit_numbers[:kept], strict=True))
        ]
        qol = plan_answers(rng, subject_id, visits)

        if new_therapy is not None and new_therapy > end:
            new_therapy = None
        latest = max(
            [
                first_day,
                *(a.assessment_date for a in assessments),
                *(c.date for c in cycles),
                *(f.date for f in delivery.fractions),
            ]
        )
        last_contact: dt.date = end
        if died:
            status = PatientStatus.DIED
        elif withdrew:
            status = PatientStatus.WITHDRAWN
        elif was_lost:
            status = PatientStatus.LOST_TO_FOLLOW_UP
        elif end == study_end and study_end <= self.cutoff:
            status = PatientStatus.COMPLETED
        else:
            on_io = io_stop == end
            status = PatientStatus.ON_TREATMENT if on_io else PatientStatus.FOLLOW_UP
            contact = end - dt.timedelta(days=randint(r, 0, 45))
            last_contact = max(contact, latest)
        patient = Patient(
            subject_id=subject_id,
            site_code=site.code,
            sex=sex,
            birth_date=birth,
            protocol_version=p.version.number,
            status=status,
            enrolment_date=enrolment,
            death_date=death[0] if died else None,
            death_cause=death[1] if died else None,
            withdrawal_date=withdrawal if withdrew else None,
            new_therapy_date=new_therapy,
            last_contact_date=last_contact,
        )

        def seen(day: dt.date | None) -> dt.date | None:
            return day if day is not None and day <= end else None

        truth = SyntheticTruth(
            subject_id,
            course.scenario,
            course.abscopal,
            seen(course.pseudo_iupd_date),
            seen(course.iupd_date),
            seen(course.icpd_date),
        )
        return Cohort(
            patients=(patient,),
            screenings=(screening,),
            immunotherapy_histories=(history,),
            adjudications=(adj,),
            immunotherapy_cycles=tuple(cycles),
            lesions=base.lesions + new_lesions,
            radiotherapy_courses=delivery.courses,
            fractions=delivery.fractions,
            protocol_deviations=delivery.deviations,
            tumour_assessments=tuple(assessments),
            adverse_events=safety.events,
            truths=(truth,),
        ), qol

    def site_of(self, index: int) -> Site:
        """Where patient ``index`` is screened: every third patient at the second site when there are two."""
        return SECOND_SITE if self.sites == 2 and index % 3 == 2 else SITE

    def _screen_failure(
        self,
        r: random.Random,
        subject_id: str,
        site: Site,
        screening_date: dt.date,
        consent: dt.date,
        sex: Sex,
        age: int,
    ) -> Cohort:
        lesion_count = 2 + sum(r.random() < 0.4 for _ in range(8))
        organs = min(lesion_count - 1, 1 + sum(r.random() < 0.45 for _ in range(3)))
        eligible = eligible_screening(
            r, subject_id, screening_date, consent, age, sex, lesion_count, organs, self.limits
        )
        screening, _ = screen_failure(r, eligible, self.limits)
        real_age = screening.age_years if screening.age_years is not None else age
        birth = birth_date_for_age(r, screening_date, real_age)
        resistant = bool(screening.immunotherapy_resistance_confirmed)
        history, resistance = prior_immunotherapy(r, subject_id, screening_date, self.protocol.resistance, resistant)
        adjudications: tuple[Adjudication, ...] = ()
        if not resistant or r.random() < 0.5:
            sign_by = screening_date + dt.timedelta(days=randint(r, 1, 5))
            adjudications = (
                adjudication(r, subject_id, resistance, screening_date, sign_by, self.protocol.resistance, resistant),
            )
        patient = Patient(
            subject_id=subject_id,
            site_code=site.code,
            sex=sex,
            birth_date=birth,
            protocol_version=self.protocol.version.number,
            status=PatientStatus.SCREEN_FAILED,
            last_contact_date=screening_date,
        )
        return Cohort(
            patients=(patient,),
            screenings=(screening,),
            immunotherapy_histories=(history,),
            adjudications=adjudications,
            truths=(SyntheticTruth(subject_id, "screen_failure"),),
        )
