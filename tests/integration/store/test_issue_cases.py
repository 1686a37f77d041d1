"""The store failures reported in issue 10's "Why", each now refused or handled (SQLite and PostgreSQL).

One test per reported case; tampering in depth (every kind, random histories) is in test_tampering.py,
concurrency under load in test_concurrency.py and test_crash.py, impossible values through the CLI in
tests/unit/validation/test_bad_inputs_cli.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time

import pytest
from sqlalchemy import Engine, text

from abscopal import domain as d
from abscopal.errors import ConflictError
from abscopal.store.audit import verify
from abscopal.store.unit_of_work import UnitOfWork

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
PATIENT = d.Patient("S001", "JN", d.Sex.FEMALE, dt.date(1961, 5, 2), "1.0")
ADJUDICATION = d.Adjudication(
    "S001", d.ResistanceType.PRIMARY, "dr.li", dt.datetime(2024, 3, 1, 9, 30, tzinfo=SHANGHAI)
)
ASSESSMENT = d.TumourAssessment(
    "S001",
    dt.date(2024, 4, 12),
    (d.LesionMeasurement("L1", d.LesionClass.TARGET, "lung", False, 31.0),),
)


def _seed(engine: Engine) -> dict[str, str]:
    with UnitOfWork(engine, user="coordinator1", reason="screening") as uow:
        uow.sites.add(d.Site("JN", "Qianfoshan Hospital"))
        ids = {
            "patient": uow.patients.add(PATIENT).id,
            "adjudication": uow.adjudications.add(ADJUDICATION).id,
            "assessment": uow.assessments.add(ASSESSMENT).id,
        }
        uow.commit()
    return ids


def _drop_audit_triggers(engine: Engine) -> None:
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))


def _kinds(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {f.kind for f in verify(conn).findings}


def test_a_stale_save_no_longer_reverts_the_other_persons_change(engine: Engine) -> None:
    ids = _seed(engine)
    with UnitOfWork(engine, user="dm1", reason="correction") as uow:
        uow.patients.update(ids["patient"], dataclasses.replace(PATIENT, death_cause="pneumonia"), version=1)
        uow.commit()
    with UnitOfWork(engine, user="crc1", reason="stale form") as uow, pytest.raises(ConflictError, match="dm1"):
        uow.patients.update(
            ids["patient"], dataclasses.replace(PATIENT, last_contact_date=dt.date(2024, 5, 1)), version=1
        )
    with UnitOfWork(engine, user="reader", reason="read") as uow:
        assert uow.patients.get(ids["patient"]).value.death_cause == "pneumonia"


def test_a_new_adjudication_signature_is_stored_by_update(engine: Engine) -> None:
    ids = _seed(engine)
    signed = dataclasses.replace(
        ADJUDICATION,
        signatures=(d.Signature("dcp1", d.Role.DEPUTY_CHIEF_PHYSICIAN, dt.datetime(2024, 3, 2, tzinfo=dt.UTC)),),
    )
    with UnitOfWork(engine, user="dcp1", reason="adjudicated") as uow:
        stored = uow.adjudications.update(ids["adjudication"], signed, version=1)
        uow.commit()
    assert [s.username for s in stored.value.signatures] == ["dcp1"]
    assert stored.version == 2


def test_correcting_an_assessment_date_is_not_a_not_found(engine: Engine) -> None:
    ids = _seed(engine)
    with UnitOfWork(engine, user="rad1", reason="typo") as uow:
        moved = uow.assessments.update(
            ids["assessment"], dataclasses.replace(ASSESSMENT, assessment_date=dt.date(2024, 4, 13)), version=1
        )
        uow.commit()
    assert moved.value.assessment_date == dt.date(2024, 4, 13)
    assert moved.id == ids["assessment"]


def test_a_timestamp_in_another_time_zone_names_the_same_record(engine: Engine) -> None:
    ids = _seed(engine)
    in_utc = ADJUDICATION.proposed_at.astimezone(dt.UTC)
    with UnitOfWork(engine, user="reader", reason="read") as uow:
        found = uow.adjudications.find(subject_id="S001", proposed_at=in_utc)
    assert found is not None and found.id == ids["adjudication"]
    assert found.value.proposed_at == ADJUDICATION.proposed_at  # the same instant, read back in UTC


def test_a_deleted_audit_head_is_a_finding(engine: Engine) -> None:
    _seed(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_head"))
    assert "head" in _kinds(engine)


def test_deleting_the_last_audit_record_with_the_rows_it_inserted_is_a_finding(engine: Engine) -> None:
    _seed(engine)
    _drop_audit_triggers(engine)
    with engine.begin() as conn:
        last = conn.execute(text("SELECT MAX(seq) FROM audit_log")).scalar_one()
        conn.execute(text("DELETE FROM lesion_measurements"))
        conn.execute(text("DELETE FROM audit_log WHERE seq = :s"), {"s": last})
    kinds = _kinds(engine)
    assert "chain" in kinds  # the head still says the trail is one record longer


def test_emptying_every_table_is_a_finding(engine: Engine) -> None:
    _seed(engine)
    _drop_audit_triggers(engine)
    with engine.begin() as conn:
        for table in ("lesion_measurements", "tumour_assessments", "adjudication_signatures", "adjudications"):
            conn.execute(text(f"DELETE FROM {table}"))
        for table in ("patients", "sites", "audit_log"):
            conn.execute(text(f"DELETE FROM {table}"))
    with engine.connect() as conn:
        report = verify(conn)
    assert not report.ok
    assert any("every record was deleted" in f.message for f in report.findings)


def test_on_postgresql_an_open_transaction_does_not_hold_the_audit_head(engine: Engine) -> None:
    """Writer A has written but not committed; writer B's whole transaction (with its audit append) commits."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers by design (BEGIN IMMEDIATE); this is PostgreSQL's concurrency")
    ids = _seed(engine)
    a_wrote, b_done = threading.Event(), threading.Event()
    b_seconds: list[float] = []

    def writer_a() -> None:
        with UnitOfWork(engine, user="a", reason="slow edit") as uow:
            uow.patients.update(ids["patient"], dataclasses.replace(PATIENT, death_cause="x"), version=1)
            a_wrote.set()
            b_done.wait(timeout=20)
            uow.commit()

    def writer_b() -> None:
        a_wrote.wait(timeout=20)
        start = time.perf_counter()
        with UnitOfWork(engine, user="b", reason="quick edit") as uow:
            uow.assessments.update(ids["assessment"], dataclasses.replace(ASSESSMENT, assessed_by="dr.zhou"), version=1)
            uow.commit()
        b_seconds.append(time.perf_counter() - start)
        b_done.set()

    threads = [threading.Thread(target=writer_a), threading.Thread(target=writer_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert b_seconds and b_seconds[0] < 5, "writer B waited for writer A's open transaction"
    with engine.connect() as conn:
        assert verify(conn).ok
