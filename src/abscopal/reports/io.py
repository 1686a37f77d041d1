"""Reading the trial for the report: every record as domain objects, and a hash that identifies the content.

The only module of :mod:`abscopal.reports` that touches the database (through the store's repository).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from sqlalchemy import Connection, select

from abscopal import domain as d
from abscopal.reports.analysis import TrialData
from abscopal.store.repository import Repository
from abscopal.store.tables import ENTITIES, audit_head


def load_trial(conn: Connection) -> TrialData:
    """Every trial record the report reads, through :class:`~abscopal.store.repository.Repository`."""
    repo = Repository(conn)
    return TrialData(
        patients=repo.all(d.Patient),
        screenings=repo.all(d.Screening),
        adjudications=repo.all(d.Adjudication),
        lesions=repo.all(d.Lesion),
        courses=repo.all(d.RadiotherapyCourse),
        fractions=repo.all(d.Fraction),
        cycles=repo.all(d.ImmunotherapyCycle),
        assessments=repo.all(d.TumourAssessment),
        adverse_events=repo.all(d.AdverseEvent),
        answers=questionnaire_answers(conn),
    )


def questionnaire_answers(conn: Connection) -> list[d.QuestionnaireAnswer]:
    """Every questionnaire answer, the same objects ``Repository.all`` builds, about four times faster: answers
    are most of a trial's rows, so this adapter reads them with one plain SELECT (no per-field type mapping)."""
    t = ENTITIES["questionnaire_answers"].table
    quote = conn.dialect.identifier_preparer.quote
    columns = ", ".join(quote(c) for c in ("subject_id", "visit", "instrument", "item", "answer", "completed_on"))
    rows = conn.exec_driver_sql(f"SELECT {columns} FROM {quote(t.name)} ORDER BY {quote('key')}").fetchall()
    instruments = {i.value: i for i in d.Instrument}
    dates: dict[object, dt.date | None] = {None: None}

    def date(value: object) -> dt.date | None:
        if value in dates:
            return dates[value]
        # SQLite gives ISO text, PostgreSQL a date
        parsed = (
            dt.date.fromisoformat(value) if isinstance(value, str) else value if isinstance(value, dt.date) else None
        )
        dates[value] = parsed
        return parsed

    return [
        d.QuestionnaireAnswer(sid, visit, instruments[instrument], int(item), answer, date(completed))
        for sid, visit, instrument, item, answer, completed in rows
    ]


def content_hash(conn: Connection) -> str:
    """SHA-256 over the audit trail's head (last sequence number and hash, which chains every change) and the
    row count of every table: two databases with the same hash hold the same audited history."""
    head = conn.execute(select(audit_head.c.last_seq, audit_head.c.last_hash)).first()
    counts = Repository(conn).counts()
    payload = {
        "audit_head": [int(head[0]), str(head[1])] if head is not None else None,
        "counts": dict(sorted(counts.items())),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()
