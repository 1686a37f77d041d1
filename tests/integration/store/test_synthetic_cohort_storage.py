"""A synthetic cohort goes into either database whole, reads back equal, and its audit trail verifies."""

from __future__ import annotations

from sqlalchemy import Engine

from abscopal import domain as d
from abscopal.protocol.model import load_bundled
from abscopal.store.audit import verify
from abscopal.store.cohort_loader import store_cohort_chunks
from abscopal.store.repository import Repository
from abscopal.synth.cohort import generate_cohort, iter_cohort_chunks


def test_cohort_stored_in_chunks_reads_back_equal_and_verifies(engine: Engine) -> None:
    protocol = load_bundled().current
    cohort = generate_cohort(30, seed=11, protocol=protocol)
    written = store_cohort_chunks(
        engine, iter_cohort_chunks(30, 11, protocol, chunk_size=7), user="synth", reason="test cohort"
    )
    with engine.connect() as conn:
        repo = Repository(conn)
        assert repo.all(d.Patient) == sorted(cohort.patients, key=lambda p: p.subject_id)
        stored_assessments = repo.all(d.TumourAssessment)
        assert len(stored_assessments) == len(cohort.tumour_assessments)
        by_key = {(a.subject_id, a.assessment_date): a for a in cohort.tumour_assessments}
        for a in stored_assessments:
            original = by_key[(a.subject_id, a.assessment_date)]
            assert sorted(a.measurements, key=lambda m: m.lesion_id) == sorted(
                original.measurements, key=lambda m: m.lesion_id
            )
        assert sorted(repo.all(d.AdverseEvent), key=lambda e: (e.subject_id, e.ae_id)) == sorted(
            cohort.adverse_events, key=lambda e: (e.subject_id, e.ae_id)
        )
        counts = repo.counts()
        assert written == sum(n for name, n in counts.items() if name != "audit_log")
        report = verify(conn)
    assert report.ok, report.findings[:3]
    assert report.rows == written
