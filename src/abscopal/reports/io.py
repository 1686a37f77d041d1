"""Reading the trial for the report: every record as domain objects, and a hash that identifies the content.

The only module of :mod:`abscopal.reports` that touches the database (through the store's repository).
"""

from __future__ import annotations

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
    """Every questionnaire answer, read column by column: the same objects as ``Repository.all`` builds, about
    five times faster (an adapter: answers are most of a trial's rows and the generic mapping is per field)."""
    t = ENTITIES["questionnaire_answers"].table
    instruments = {i.value: i for i in d.Instrument}
    query = select(t.c.subject_id, t.c.visit, t.c.instrument, t.c.item, t.c.answer, t.c.completed_on).order_by(t.c.key)
    return [
        d.QuestionnaireAnswer(sid, visit, instruments[instrument], item, answer, completed_on)
        for sid, visit, instrument, item, answer, completed_on in conn.execute(query)
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
