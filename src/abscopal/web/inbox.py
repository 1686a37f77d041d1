"""The queries inbox (web.md §2, §8): the data queries a user should act on, and their ages for the dashboard.

Read in SQL from the ``data_queries`` table joined to ``patients`` for the site (no per-row unit-of-work loads),
restricted to the actor's sites. What each role sees by default:

- site staff who answer (coordinator, investigator, radiation oncologist, radiologist): the **open** queries at
  their sites (to answer); ``mine=True``: the ones they answered;
- data managers and monitors: the **answered** queries (to close) and the open ones they raised (waiting for an
  answer); ``mine=True``: every query they raised that is not closed;
- anyone else who reads (a deputy chief physician, the statistician): only what an explicit ``status`` asks
  for; a patient or the administrator: nothing.

An explicit ``status`` replaces the role's default (every query of that status at the actor's sites).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, false, func, or_, select

from abscopal import domain as d
from abscopal.errors import ValidationError
from abscopal.services.common import PERMISSIONS, Action, Actor, StaffRole
from abscopal.store.tables import ENTITIES
from abscopal.web.i18n import N_

queries = ENTITIES["data_queries"].table
patients = ENTITIES["patients"].table
MAX_LIMIT = 500
#: The dashboard's age buckets (days): under 7, 7-14, 14-28, over 28.
AGE_BUCKETS = (N_("<7 d"), N_("7-14 d"), N_("14-28 d"), N_(">28 d"))  # the dashboard shows them with _()


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class InboxRow:
    id: str
    version: int
    subject_id: str
    site_code: str
    entity: str
    record_id: str | None
    field: str
    text: str
    status: d.QueryStatus
    raised_by: str
    raised_at: dt.datetime
    answer: str | None
    answered_by: str | None
    answered_at: dt.datetime | None
    closed_by: str | None
    closed_at: dt.datetime | None
    age_days: int  # whole days since it was raised

    @property
    def etag(self) -> str:
        return f'W/"{self.id}.{self.version}"'


def _connection(uow_or_conn: Any) -> Connection:
    if isinstance(uow_or_conn, Connection):
        return uow_or_conn
    conn = getattr(uow_or_conn, "connection", None)
    if not isinstance(conn, Connection):
        raise TypeError("query_inbox needs a Connection or a unit of work on the database")
    return conn


def _status(value: str | d.QueryStatus | None) -> d.QueryStatus | None:
    if value is None or value == "":
        return None
    try:
        return d.QueryStatus(value)
    except ValueError:
        known = ", ".join(s.value for s in d.QueryStatus)
        raise ValidationError("status", f"{value!r} is not a query status (one of {known})") from None


def _site_condition(actor: Actor) -> ColumnElement[bool]:
    if actor.role in (StaffRole.PATIENT, StaffRole.ADMIN):
        return false()
    return patients.c.site_code.in_(sorted(actor.sites))


def _role_condition(actor: Actor, status: d.QueryStatus | None, mine: bool) -> ColumnElement[bool]:
    q = queries.c
    me = actor.username
    if status is not None:
        condition: ColumnElement[bool] = q.status == status.value
        if mine:
            condition = and_(condition, or_(q.raised_by == me, q.answered_by == me, q.closed_by == me))
        return condition
    if actor.role in PERMISSIONS[Action.ANSWER_QUERY]:
        if mine:
            return and_(q.answered_by == me, q.status != d.QueryStatus.CLOSED.value)
        return q.status == d.QueryStatus.OPEN.value
    if actor.role in PERMISSIONS[Action.CLOSE_QUERY]:
        if mine:
            return and_(q.raised_by == me, q.status != d.QueryStatus.CLOSED.value)
        return or_(
            q.status == d.QueryStatus.ANSWERED.value,
            and_(q.status == d.QueryStatus.OPEN.value, q.raised_by == me),
        )
    return false()


def query_inbox(
    uow_or_conn: Any, actor: Actor, *, status: str | d.QueryStatus | None = None, subject_id: str | None = None,
    mine: bool = False, limit: int = 100, after: str | None = None, now: dt.datetime | None = None,
    age: int | None = None,
) -> list[InboxRow]:  # fmt: skip
    """The queries ``actor`` should see (module docstring), oldest first (by id, which is time-ordered).

    ``age`` keeps one bucket of :data:`AGE_BUCKETS` (0: raised less than 7 days ago ... 3: more than 28), the
    dashboard's "open queries by age" links.

    ``after`` is the last id of the previous page (a cursor); ask for ``limit + 1`` to know whether more follow.
    """
    if not 1 <= limit <= MAX_LIMIT + 1:
        raise ValidationError("limit", f"is between 1 and {MAX_LIMIT}")
    conn = _connection(uow_or_conn)
    wanted = _status(status)
    now = _utc(now or dt.datetime.now(dt.UTC))
    q = queries.c
    conditions = [q.removed_reason.is_(None), _site_condition(actor), _role_condition(actor, wanted, mine)]
    if subject_id:
        conditions.append(q.subject_id == subject_id)
    if age is not None:
        if not 0 <= age < len(AGE_BUCKETS):
            raise ValidationError("age", f"is one of 0-{len(AGE_BUCKETS) - 1} (the dashboard's age buckets)")
        conditions.append(_age_buckets(now)[age])
    if after:
        conditions.append(q.id > after)
    query = (
        select(queries, patients.c.site_code)
        .join(patients, patients.c.subject_id == q.subject_id)
        .where(and_(*conditions))
        .order_by(q.id)
        .limit(limit)
    )
    rows = []
    for r in conn.execute(query):
        raised = _utc(r.raised_at)
        rows.append(
            InboxRow(
                r.id, int(r.version), r.subject_id, r.site_code, r.entity, r.record_id, r.field, r.text,
                d.QueryStatus(r.status), r.raised_by, raised, r.answer, r.answered_by,
                _utc(r.answered_at) if r.answered_at else None, r.closed_by,
                _utc(r.closed_at) if r.closed_at else None, max(0, (now - raised).days),
            )
        )  # fmt: skip
    return rows


@dataclass(frozen=True)
class AgeCounts:
    """How many queries at the actor's sites are in each age bucket (:data:`AGE_BUCKETS`)."""

    under_7: int
    from_7_to_14: int
    from_14_to_28: int
    over_28: int

    def as_dict(self) -> dict[str, int]:
        return dict(zip(AGE_BUCKETS, (self.under_7, self.from_7_to_14, self.from_14_to_28, self.over_28), strict=True))

    @property
    def total(self) -> int:
        return self.under_7 + self.from_7_to_14 + self.from_14_to_28 + self.over_28


def _age_buckets(now: dt.datetime) -> tuple[Any, ...]:
    """The SQL condition of each of :data:`AGE_BUCKETS` on ``now``."""
    q = queries.c
    d7, d14, d28 = (now - dt.timedelta(days=n) for n in (7, 14, 28))
    return (q.raised_at > d7, and_(q.raised_at <= d7, q.raised_at > d14),
            and_(q.raised_at <= d14, q.raised_at > d28), q.raised_at <= d28)  # fmt: skip


def query_counts_by_age(
    uow_or_conn: Any, actor: Actor, *, statuses: tuple[str, ...] = (d.QueryStatus.OPEN.value,),
    now: dt.datetime | None = None,
) -> AgeCounts:  # fmt: skip
    """The dashboard's "open queries by age" (web.md §8): one SQL count per bucket over the actor's sites.

    ``statuses`` defaults to open queries; pass ``("open", "answered")`` for every query not yet closed.
    """
    conn = _connection(uow_or_conn)
    now = _utc(now or dt.datetime.now(dt.UTC))
    q = queries.c
    wanted = [w.value for w in (_status(s) for s in statuses) if w is not None]
    buckets = _age_buckets(now)
    query = (
        select(*(func.coalesce(func.sum(case((b, 1), else_=0)), 0) for b in buckets))
        .select_from(queries.join(patients, patients.c.subject_id == q.subject_id))
        .where(q.removed_reason.is_(None), q.status.in_(wanted), _site_condition(actor))
    )
    counts = [int(n or 0) for n in conn.execute(query).one()]
    return AgeCounts(*counts)
