"""The dashboard's figures (web.md §8; issue 12 item 9): enrolment, visits overdue and due soon, protocol
deviations, serious adverse events inside their reporting clock and the safety monitor's state.

Every figure comes from an engine: the calendar engine (:func:`abscopal.protocol.calendar.build_schedule`, fed by
:func:`abscopal.store.schedule_input.schedule_input_from_records`, as the API's schedule endpoint is), the
expedited-report clock (:func:`abscopal.safety.events.sae_report_status`) and the beta-binomial monitor
(:func:`abscopal.safety.monitor.monitor` over :func:`abscopal.safety.analysis_set.safety_analysis_set`, as the
report does). This module only reads the records of the actor's sites and hands them over.

The figures are kept per (sites, day) until the head of the audit chain moves (any write anywhere, in any worker,
moves it); see :class:`OverviewCache` for how a large trial's figures are refreshed without making anyone wait.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, func, select

from abscopal import domain as d
from abscopal.errors import AbscopalError
from abscopal.protocol import calendar as cal
from abscopal.protocol.model import ProtocolFile
from abscopal.safety.analysis_set import safety_analysis_set
from abscopal.safety.events import sae_report_status
from abscopal.safety.monitor import MonitorResult, monitor
from abscopal.services.common import Actor, StaffRole, protocol_of, protocols_or_bundled
from abscopal.store.mapping import from_row
from abscopal.store.schedule_input import schedule_input_from_records
from abscopal.store.tables import ENTITIES, audit_log

#: "Due soon": the visit's window opens within this many days (a display horizon, not a protocol rule).
DUE_SOON_DAYS = 7
#: Patients whose calendar still runs (screening and off-study patients have no visits to chase).
ON_STUDY = frozenset({d.PatientStatus.ENROLLED, d.PatientStatus.ON_TREATMENT, d.PatientStatus.FOLLOW_UP})
#: How many rows a dashboard list shows before "and N more".
LIST_LIMIT = 200

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class VisitDue:
    """A visit the site must chase: its patient, kind and number, planned day and window, and calendar status."""

    subject_id: str
    kind: str
    number: int
    planned: dt.date
    window_start: dt.date
    window_end: dt.date
    status: str


@dataclass(frozen=True, slots=True)
class SaeClock:
    """A serious adverse event not yet reported: when its clock ends and whether it already has."""

    subject_id: str
    record_id: str
    term: str
    grade: int | None
    awareness_at: dt.datetime | None
    due_at: dt.datetime | None
    overdue: bool
    reason: str


@dataclass(frozen=True, slots=True)
class DeviationRow:
    subject_id: str
    record_id: str
    check: str
    deviation_class: str
    date: dt.date | None
    reason: str


@dataclass(frozen=True)
class Overview:
    """What the dashboard shows, all restricted to the actor's sites except the trial-wide safety monitor."""

    as_of: dt.date
    enrolled: int
    planned_enrolment: int | None
    enrolment_by_month: tuple[tuple[str, int], ...]  # (YYYY-MM, cumulative enrolled)
    overdue: tuple[VisitDue, ...]
    due_soon: tuple[VisitDue, ...]
    deviations: tuple[DeviationRow, ...]
    deviations_by_class: dict[str, int]
    saes: tuple[SaeClock, ...]
    sae_report_hours: int
    monitor: MonitorResult | None
    calendar_errors: tuple[str, ...] = field(default=())
    computed_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def saes_inside_clock(self) -> int:
        return sum(1 for s in self.saes if not s.overdue)

    @property
    def saes_overdue(self) -> int:
        return sum(1 for s in self.saes if s.overdue)


def _site_condition(table: Any, actor: Actor) -> Any:
    """Rows of patients at the actor's sites (the statistician reads every site)."""
    if actor.role is StaffRole.STATISTICIAN:
        return None
    patients = ENTITIES["patients"].table
    column = table.c.site_code if table is patients else table.c.subject_id
    if table is patients:
        return column.in_(sorted(actor.sites))
    return column.in_(select(patients.c.subject_id).where(patients.c.site_code.in_(sorted(actor.sites))))


def _records(conn: Connection, cls: type[T], actor: Actor | None, subjects: Sequence[str] | None = None) -> list[T]:
    """Live records of one kind: of the actor's sites (every site when ``actor`` is None), or of ``subjects``."""
    from abscopal.store.repository import Repository
    from abscopal.store.tables import ENTITY_BY_CLASS

    table = ENTITIES[ENTITY_BY_CLASS[cls]].table
    if subjects is not None:
        return Repository(conn).matching(cls, table.c.subject_id.in_(sorted(subjects)))
    condition = None if actor is None else _site_condition(table, actor)
    return Repository(conn).matching(cls, condition)


@dataclass(frozen=True, slots=True)
class _Completed:
    """A questionnaire's completion day: all the calendar needs of an answer."""

    completed_on: dt.date | None


def _questionnaire_days(conn: Connection, actor: Actor) -> dict[str, list[_Completed]]:
    table = ENTITIES["questionnaire_answers"].table
    query = (
        select(table.c.subject_id, table.c.completed_on)
        .where(table.c.removed_reason.is_(None), table.c.completed_on.is_not(None))
        .distinct()
    )
    condition = _site_condition(table, actor)
    if condition is not None:
        query = query.where(condition)
    out: dict[str, list[_Completed]] = defaultdict(list)
    for subject_id, day in conn.execute(query):
        out[str(subject_id)].append(_Completed(day))  # a Date column: a date on both backends
    return out


def _by_subject(records: Sequence[T]) -> dict[str, list[T]]:
    out: dict[str, list[T]] = defaultdict(list)
    for r in records:
        out[r.subject_id].append(r)  # type: ignore[attr-defined]
    return out


def _visits(
    conn: Connection, actor: Actor, patients: Sequence[d.Patient], protocols: ProtocolFile, as_of: dt.date,
    fractions: dict[str, list[d.Fraction]], cycles: dict[str, list[d.ImmunotherapyCycle]],
) -> tuple[list[VisitDue], list[VisitDue], list[str]]:  # fmt: skip
    """Every on-study patient's calendar on ``as_of``: the overdue visits and those due now or soon (``fractions``
    and ``cycles`` by subject: the trial's, read once for the monitor too)."""
    on_study = [p for p in patients if p.enrolment_date is not None and p.status in ON_STUDY]
    if not on_study:
        return [], [], []
    ids = [p.subject_id for p in on_study]
    courses = _by_subject(_records(conn, d.RadiotherapyCourse, actor, ids))
    assessments = _by_subject(_records(conn, d.TumourAssessment, actor, ids))
    answers = _questionnaire_days(conn, actor)
    overdue: list[VisitDue] = []
    soon: list[VisitDue] = []
    errors: list[str] = []
    horizon = as_of + dt.timedelta(days=DUE_SOON_DAYS)
    for p in on_study:
        protocol = protocol_of(p, protocols)
        try:
            inp = schedule_input_from_records(
                p, courses.get(p.subject_id, []), fractions.get(p.subject_id, []), cycles.get(p.subject_id, []),
                assessments.get(p.subject_id, []), answers.get(p.subject_id, []),  # type: ignore[arg-type]
            )  # fmt: skip
            result = cal.build_schedule(
                inp, protocol.immunotherapy, protocol.schedule, protocol.radiotherapy.low_dose, as_of
            )
        except AbscopalError as exc:  # one patient's inconsistent dates must not hide everyone else's visits
            errors.append(f"{p.subject_id}: {exc}")
            continue
        for v in result.visits:
            status = v.status(as_of)
            if v.planned is None or v.window_start is None or v.window_end is None:
                continue
            row = VisitDue(p.subject_id, v.kind.value, v.number, v.planned, v.window_start, v.window_end, status.value)
            if status is cal.VisitStatus.OVERDUE:
                overdue.append(row)
            elif status is cal.VisitStatus.DUE or (status is cal.VisitStatus.UPCOMING and v.window_start <= horizon):
                soon.append(row)
    overdue.sort(key=lambda v: (v.window_end, v.subject_id))
    soon.sort(key=lambda v: (v.window_start, v.subject_id))
    return overdue, soon, errors


def _saes(conn: Connection, actor: Actor, report_hours: int, now: dt.datetime) -> list[SaeClock]:
    """Serious events at the actor's sites that are not reported yet (inside or past their clock)."""
    table = ENTITIES["adverse_events"].table
    query = select(table).where(table.c.removed_reason.is_(None), table.c.reported_at.is_(None))
    condition = _site_condition(table, actor)
    if condition is not None:
        query = query.where(condition)
    out = []
    for row in conn.execute(query).mappings():
        ae = from_row(d.AdverseEvent, row)
        status = sae_report_status(ae, report_hours, now)
        if status.required and status.reported_at is None:
            out.append(
                SaeClock(ae.subject_id, str(row["id"]), ae.term, ae.grade, ae.awareness_at, status.due_at,
                         status.overdue, status.reason)
            )  # fmt: skip
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(out, key=lambda s: (not s.overdue, s.due_at or far, s.subject_id))


def _monitor(
    conn: Connection, protocols: ProtocolFile, patients: list[d.Patient], fractions: list[d.Fraction],
    cycles: list[d.ImmunotherapyCycle],
) -> MonitorResult | None:  # fmt: skip
    """The safety monitor over the whole trial (its rule is trial-wide: every site's treated patients; the trial's
    patients, fractions and cycles are given, read once for the calendars too)."""
    options = protocols.current.safety
    analysis = safety_analysis_set(patients, fractions, cycles, _records(conn, d.AdverseEvent, None), options)
    if not analysis.population.size:
        return None
    return monitor(analysis.events, analysis.population.size, options.monitor)


def build_overview(
    conn: Connection, actor: Actor, protocols: ProtocolFile | None, *, as_of: dt.date | None = None,
    now: dt.datetime | None = None,
) -> Overview:  # fmt: skip
    """The dashboard's figures for the actor on ``as_of`` (default today) at ``now`` (default: the clock)."""
    pf = protocols_or_bundled(protocols)
    now = now or dt.datetime.now(dt.UTC)
    day = as_of or now.date()
    trial = _records(conn, d.Patient, None)  # every site's: the monitor's rule is trial-wide
    reach = None if actor.role is StaffRole.STATISTICIAN else actor.sites
    patients = [p for p in trial if reach is None or p.site_code in reach]  # as _site_condition reads them
    all_fractions, all_cycles = _records(conn, d.Fraction, None), _records(conn, d.ImmunotherapyCycle, None)
    enrolment_days = sorted(p.enrolment_date for p in patients if p.enrolment_date is not None)
    per_month = Counter(day_.strftime("%Y-%m") for day_ in enrolment_days)
    cumulative, running = [], 0
    for month in sorted(per_month):
        running += per_month[month]
        cumulative.append((month, running))
    overdue, soon, errors = _visits(conn, actor, patients, pf, day, _by_subject(all_fractions), _by_subject(all_cycles))
    deviations = [
        DeviationRow(r.subject_id, rid, r.check.value, r.deviation_class.value, r.date, r.reason)
        for rid, r in _with_ids(conn, actor)
    ]
    deviations.sort(key=lambda r: (r.date or dt.date.min, r.subject_id), reverse=True)
    safety = pf.current.safety
    return Overview(
        as_of=day,
        enrolled=len(enrolment_days),
        planned_enrolment=pf.current.interop.planned_enrolment,  # TS PLANSUB: one planned size
        enrolment_by_month=tuple(cumulative),
        overdue=tuple(overdue),
        due_soon=tuple(soon),
        deviations=tuple(deviations),
        deviations_by_class=dict(Counter(r.deviation_class for r in deviations)),
        saes=tuple(_saes(conn, actor, safety.sae_report_hours, now)),
        sae_report_hours=safety.sae_report_hours,
        monitor=_monitor(conn, pf, trial, all_fractions, all_cycles),
        calendar_errors=tuple(errors),
    )


def _with_ids(conn: Connection, actor: Actor) -> list[tuple[str, d.ProtocolDeviation]]:
    table = ENTITIES["protocol_deviations"].table
    query = select(table).where(table.c.removed_reason.is_(None))
    condition = _site_condition(table, actor)
    if condition is not None:
        query = query.where(condition)
    return [(str(row["id"]), from_row(d.ProtocolDeviation, row)) for row in conn.execute(query).mappings()]


def patient_schedule(
    uow: Any, patient: d.Patient, protocols: ProtocolFile | None, as_of: dt.date
) -> cal.PatientSchedule | None:
    """One patient's calendar on ``as_of`` from its stored records (None before enrolment): the patient page's
    timeline and the API's schedule endpoint."""
    if patient.enrolment_date is None:
        return None
    records = [
        [s.value for s in getattr(uow, name).for_subject(patient.subject_id)]
        for name in ("radiotherapy_courses", "fractions", "immunotherapy_cycles", "assessments", "answers")
    ]
    return schedule_from_records(patient, protocols, *records, as_of=as_of)


def schedule_from_records(
    patient: d.Patient, protocols: ProtocolFile | None, courses: Sequence[d.RadiotherapyCourse],
    fractions: Sequence[d.Fraction], cycles: Sequence[d.ImmunotherapyCycle],
    assessments: Sequence[d.TumourAssessment], answers: Sequence[Any], *, as_of: dt.date,
) -> cal.PatientSchedule | None:  # fmt: skip
    """:func:`patient_schedule` from records already read (a page that shows them reads them once); ``answers``
    need only their ``completed_on``."""
    if patient.enrolment_date is None:
        return None
    protocol = protocol_of(patient, protocols_or_bundled(protocols))
    inp = schedule_input_from_records(
        patient, list(courses), list(fractions), list(cycles), list(assessments), list(answers)
    )
    return cal.build_schedule(inp, protocol.immunotherapy, protocol.schedule, protocol.radiotherapy.low_dose, as_of)


def audit_head(conn: Connection) -> int:
    """The audit chain's last sequence number: it moves with every write to the database."""
    return int(conn.execute(select(func.coalesce(func.max(audit_log.c.seq), 0))).scalar_one())


#: How many recent computations of a key's figures :meth:`OverviewCache` weighs to judge their cost
COST_HISTORY = 3
#: A key's single measurement counts as a large trial's only past this many times ``sync_limit``: one slow
#: computation of a small trial's figures (a busy machine) must not make its dashboard lag for ``min_interval``
CONFIRM_FACTOR = 4.0


@dataclass
class _Entry:
    head: int
    overview: Overview
    costs: tuple[float, ...]  # seconds the key's recent computations took, the latest last
    refreshing: bool = False

    @property
    def cost(self) -> float:
        """The figures' cost: the cheapest of the recent computations (a busy machine only ever adds time)."""
        return min(self.costs)


class OverviewCache:
    """The last overview per (role's reach, sites, day), kept until the audit chain's head moves.

    A small trial's overview costs milliseconds: after a change it is recomputed in the request, so the dashboard
    is always current. A large trial's (more than :attr:`sync_limit` seconds, e.g. 10,000 patients) is recomputed
    in a background thread, at most one per key and not more often than :meth:`refresh_interval` allows, while
    requests get the previous figures with the time they were computed (``Overview.computed_at``): a dashboard
    never waits seconds, nor do the workers behind it.

    With ``database_url`` (what ``create_app`` gives for a database file or server), a refresh of figures that took
    more than :attr:`process_limit` seconds runs in a child process at the lowest CPU priority (``nice`` 19): the
    serving process's interpreter lock stays with the requests and the operating system gives the computation only
    the CPU they leave (a 10,000-patient overview is ~15 s of CPU). The first computation of a key runs in a thread,
    since its cost is not known yet. The cost judged is the cheapest of the last :data:`COST_HISTORY` computations,
    and a single one must exceed :data:`CONFIRM_FACTOR` times the limit: a small trial's figures computed slowly
    once, on a busy machine, are still recomputed in the request after the next change. On a new day (00:00 UTC,
    the morning in China) a large trial's dashboard shows the last day's figures, which say their day, while the
    new day's are computed in the background: no request waits for them.
    """

    def __init__(
        self, size: int = 32, sync_limit: float = 0.5, min_interval: float = 30.0, cost_factor: float = 10.0,
        *, database_url: str | None = None, process_limit: float = 2.0,
    ) -> None:  # fmt: skip
        self._size = size
        self.database_url = database_url
        self.process_limit = process_limit
        self.clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)  # the day of the figures (a test's)
        self._executor: ProcessPoolExecutor | None = None
        #: A server process's: freeze the figures out of the garbage collector's reach once computed (app.py)
        self.freeze = False
        self.sync_limit = sync_limit
        self.min_interval = min_interval
        self.cost_factor = cost_factor
        self._items: dict[tuple[Any, ...], _Entry] = {}
        self._lock = threading.Lock()
        self._computing: dict[tuple[Any, ...], threading.Lock] = {}  # one computation per key at a time
        self._running: dict[tuple[Any, ...], threading.Event] = {}  # background computations under way

    def refresh_interval(self, cost: float) -> float:
        """Seconds between background recomputations of figures that took ``cost`` seconds: at least
        :attr:`min_interval`, and ten times the cost, so that refreshing a large trial's dashboard while it is being
        written to takes at most a tenth of one core (a 10,000-patient overview costs ~20 s of CPU)."""
        return max(self.min_interval, self.cost_factor * cost)

    def is_slow(self, entry: _Entry) -> bool:
        """Whether ``entry``'s figures are a large trial's, recomputed in the background: their cost exceeds
        :attr:`sync_limit` over the recent computations, or :data:`CONFIRM_FACTOR` times it when only one is known."""
        limit = self.sync_limit * (CONFIRM_FACTOR if len(entry.costs) == 1 else 1.0)
        return entry.cost > limit

    def get(
        self, conn: Connection, actor: Actor, protocols: ProtocolFile | None, engine: Engine | None = None
    ) -> Overview:
        """The overview for ``actor``; ``engine`` (a read engine) lets a slow recomputation run in the background."""
        found = self.get_or_start(conn, actor, protocols, engine, wait=None)
        assert found is not None
        return found

    def get_or_start(
        self, conn: Connection, actor: Actor, protocols: ProtocolFile | None, engine: Engine | None = None,
        *, wait: float | None = 2.0,
    ) -> Overview | None:  # fmt: skip
        """As :meth:`get`, but the first computation of a key runs in the background (with ``engine``) and is
        waited for at most ``wait`` seconds: None means "still computing" (the page says so and reloads)."""
        now = self.clock()
        key = (actor.role is StaffRole.STATISTICIAN, tuple(sorted(actor.sites)), now.date())
        head = audit_head(conn)
        with self._lock:
            entry = self._items.get(key)
        if entry is not None:
            expired = any(s.due_at and not s.overdue and s.due_at < now for s in entry.overview.saes)
            if entry.head == head and not expired:
                return entry.overview
            if self.is_slow(entry) and engine is not None:
                age = (now - entry.overview.computed_at).total_seconds()
                with self._lock:
                    start = not entry.refreshing and age >= self.refresh_interval(entry.cost)
                    if start:
                        entry.refreshing = True
                if start:
                    self._start(key, engine, actor, protocols)
                return entry.overview
        if entry is None and engine is not None:
            earlier = self._earlier_day(key)
            if earlier is not None and self.is_slow(earlier):  # a new day: today's figures in the background,
                self._start(key, engine, actor, protocols)  # the last ones (which say their day) meanwhile
                return earlier.overview
        if entry is None and engine is not None and wait is not None:
            done = self._start(key, engine, actor, protocols)
            done.wait(wait)
            with self._lock:
                entry = self._items.get(key)
            return entry.overview if entry is not None else None
        with self._lock:
            single = self._computing.setdefault(key, threading.Lock())
        with single:  # the others asking for the same figures wait for this computation instead of repeating it
            with self._lock:
                entry = self._items.get(key)
            if entry is not None and entry.head == head and entry.overview.computed_at >= now:
                return entry.overview
            return self._compute(key, conn, head, actor, protocols)

    def _earlier_day(self, key: tuple[Any, ...]) -> _Entry | None:
        """The latest figures of ``key``'s actors on an earlier day (the key's last part is the day)."""
        with self._lock:
            return self._earlier_day_locked(key)

    def _earlier_day_locked(self, key: tuple[Any, ...]) -> _Entry | None:
        found = [(k[-1], e) for k, e in self._items.items() if k[:-1] == key[:-1] and k[-1] < key[-1]]
        return max(found, key=lambda pair: pair[0])[1] if found else None

    def _start(
        self, key: tuple[Any, ...], engine: Engine, actor: Actor, protocols: ProtocolFile | None
    ) -> threading.Event:
        """A background computation of ``key`` (one at a time per key); the event is set when it ends."""
        with self._lock:
            running = self._running.get(key)
            if running is not None:
                return running
            done = self._running[key] = threading.Event()
        threading.Thread(
            target=self._refresh, args=(key, engine, actor, protocols, done), daemon=True, name="abscopal-overview"
        ).start()
        return done

    def _compute(
        self, key: tuple[Any, ...], conn: Connection, head: int, actor: Actor, protocols: ProtocolFile | None
    ) -> Overview:
        started = time.perf_counter()
        overview = build_overview(conn, actor, protocols)
        self._store(key, head, overview, time.perf_counter() - started)
        return overview

    def _store(self, key: tuple[Any, ...], head: int, overview: Overview, cost: float) -> None:
        with self._lock:
            if key not in self._items and len(self._items) >= self._size:
                self._items.pop(next(iter(self._items)))
            before = self._items.get(key) or self._earlier_day_locked(key)
            earlier = before.costs[-(COST_HISTORY - 1) :] if before is not None else ()
            history = (*earlier, cost)
            self._items[key] = _Entry(head, overview, history)
            for old in [k for k in self._items if k[:-1] == key[:-1] and k[-1] < key[-1]]:
                del self._items[old]  # an earlier day's figures (~100,000 objects), once the new day's are in
        if self.freeze:  # ~100,000 objects for 10,000 patients: never scanned for cycles (web.app.tune_collector)
            gc.freeze()

    def _child(self) -> ProcessPoolExecutor:
        """The low-priority process pool (one process at a time, a fresh one per computation: its memory is
        returned when the computation ends)."""
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_lowest_priority,
                    max_tasks_per_child=1,
                )  # fmt: skip
            return self._executor

    def close(self) -> None:
        """Stop the child process pool (the app's shutdown); a computation under way is abandoned."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def _refresh(
        self, key: tuple[Any, ...], engine: Engine, actor: Actor, protocols: ProtocolFile | None,
        done: threading.Event,
    ) -> None:  # fmt: skip
        try:
            with self._lock:
                single = self._computing.setdefault(key, threading.Lock())
            with self._lock:
                previous = self._items.get(key)
            previous = previous or self._earlier_day(key)  # a new day's first figures cost what the last ones did
            url = self.database_url
            with single:
                if url is not None and previous is not None and previous.cost > self.process_limit:
                    self._store(key, *self._child().submit(_overview_in_child, url, actor, protocols).result())
                else:
                    with engine.connect() as conn:
                        self._compute(key, conn, audit_head(conn), actor, protocols)
        except Exception:  # the previous figures stay; the next request after min_interval tries again
            logging.getLogger(__name__).exception("the dashboard's overview could not be recomputed")
            with self._lock:
                entry = self._items.get(key)
                if entry is not None:
                    entry.refreshing = False
        finally:
            with self._lock:
                self._running.pop(key, None)
            done.set()


def _lowest_priority() -> None:
    """Set up the child process: the lowest CPU priority (``nice`` 19), so requests are served first, and Ctrl-C
    left to the server, which stops the child as it shuts down (a terminal's Ctrl-C reaches every process of the
    group: the child would otherwise die printing a ``KeyboardInterrupt`` traceback)."""
    os.nice(19)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _overview_in_child(url: str, actor: Actor, protocols: ProtocolFile | None) -> tuple[int, Overview, float]:
    """In a child process: the audit head, the overview and its cost, read over a read-only engine of ``url``."""
    from abscopal.store.database import make_engine

    engine = make_engine(url, read_only=True)
    try:
        with engine.connect() as conn:
            started = time.perf_counter()
            head = audit_head(conn)
            overview = build_overview(conn, actor, protocols)
            return head, overview, time.perf_counter() - started
    finally:
        engine.dispose()
