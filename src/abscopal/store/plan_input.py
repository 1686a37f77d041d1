"""What ``abscopal rt check --patient ID`` needs from the database: one patient's lesions, RT courses, fractions
and the protocol deviations already recorded for them (by the web pages, the services or a DICOM RT import)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from abscopal import domain as d
from abscopal.store.database import make_engine, require_schema
from abscopal.store.repository import Repository


@dataclass(frozen=True)
class StoredPlan:
    """One patient's radiotherapy records as stored: the radiotherapy engine's input and the recorded deviations."""

    patient: d.Patient
    lesions: list[d.Lesion]
    courses: list[d.RadiotherapyCourse]
    fractions: list[d.Fraction]
    deviations: list[d.ProtocolDeviation]


def load_stored_plan(patient_id: str, database_url: str | None = None) -> StoredPlan:
    """Read one patient's radiotherapy records (``ABSCOPAL_DATABASE_URL`` by default), opened read-only; an
    unknown patient raises :class:`~abscopal.errors.NotFound`."""
    engine = make_engine(database_url, read_only=True)
    try:
        require_schema(engine)
        with engine.connect() as conn:
            repo = Repository(conn)
            patient = repo.patient(patient_id)
            return StoredPlan(
                patient,
                sorted(repo.for_subject(d.Lesion, patient_id), key=lambda x: x.lesion_id),
                sorted(repo.for_subject(d.RadiotherapyCourse, patient_id), key=lambda x: (x.lesion_id, x.start_date)),
                repo.for_subject(d.Fraction, patient_id),
                sorted(
                    repo.for_subject(d.ProtocolDeviation, patient_id),
                    key=lambda x: (x.date or dt.date.min, x.lesion_id or "", str(x.check)),
                ),
            )
    finally:
        engine.dispose()
