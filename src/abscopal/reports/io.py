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
from abscopal.store.tables import audit_head


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
        answers=repo.all(d.QuestionnaireAnswer),
    )


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
