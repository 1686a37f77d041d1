"""The audit trail cannot be rewritten quietly: triggers refuse it, and every tampering an attacker with database
access could do afterwards (having dropped the triggers) is named by ``verify``; a checkpoint kept outside the
database catches a rollback to an older, self-consistent state. A hypothesis state machine makes random
sequences of adds, edits, child edits, removals and stale writes, checks the trail replays to every row, then
tampers once and checks the tampering is detected (issue 10 §5).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import random
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import Connection, Engine, delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError

sys.path.insert(0, str(Path(__file__).parent))
import _writers

from abscopal import domain as d
from abscopal.errors import ConflictError, DuplicateRecord
from abscopal.store.audit import checkpoint, replay_rows, verify
from abscopal.store.audit_key import load_key
from abscopal.store.codec import canonical, codec
from abscopal.store.database import make_engine
from abscopal.store.migrate import upgrade
from abscopal.store.tables import ENTITIES, audit_head, audit_log
from abscopal.store.unit_of_work import UnitOfWork

DATA_KINDS = frozenset({"edited", "deleted", "unaudited"})


# --- the attacker's tools (direct database access, no key)


def drop_triggers(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
        conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
    else:
        conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))


def _audit_rows(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(audit_log).order_by(audit_log.c.seq)).mappings()]


def _live_ids(conn: Connection, entity: str) -> list[str]:
    t = ENTITIES[entity].table
    return [r[0] for r in conn.execute(select(t.c.id).where(t.c.removed_reason.is_(None)).order_by(t.c.id))]


def tamper_edit_data(conn: Connection, rng: random.Random, heads: list[dict[str, Any]]) -> frozenset[str]:
    lesions = ENTITIES["lesions"].table
    target = rng.choice([r[0] for r in conn.execute(select(lesions.c.id))])
    conn.execute(update(lesions).where(lesions.c.id == target).values(baseline_diameter_mm=999.0))
    return frozenset({"edited"})


def tamper_delete_data(conn: Connection, rng: random.Random, heads: list[dict[str, Any]]) -> frozenset[str]:
    tables = [ENTITIES[n].table for n in ("lesion_measurements", "lesions")]
    target = rng.choice([(t, r[0]) for t in tables for r in conn.execute(select(t.c.id))])
    conn.execute(delete(target[0]).where(target[0].c.id == target[1]))
    return frozenset({"deleted"})


def tamper_insert_unaudited(conn: Connection, rng: random.Random, heads: list[dict[str, Any]]) -> frozenset[str]:
    lesions = ENTITIES["lesions"].table
    row = dict(rng.choice(list(conn.execute(select(lesions)).mappings())))
    row.update(id="zz-forged-" + str(rng.randrange(10**6)), lesion_id="L99", version=1, removed_reason=None)
    conn.execute(insert(lesions).values(**row))
    return frozenset({"unaudited"})


def tamper_edit_audit(conn: Connection, rng: random.Random, heads: list[dict[str, Any]]) -> frozenset[str]:
    drop_triggers(conn)
    seq = rng.choice([r["seq"] for r in _audit_rows(conn)])
    conn.execute(update(audit_log).where(audit_log.c.seq == seq).values(reason="nothing to see here"))
    return frozenset({"chain"})


def tamper_delete_audit_middle(conn: Connection, rng: random.Random, heads: list[dict[str, Any]]) -> frozenset[str]:
    drop_triggers(conn)
    seqs = [r["seq"] for r in _audit_rows(conn)]
    conn.execute(delete(audit_log).where(audit_log.c.seq == rng.choice(seqs[1:-1])))
    return frozenset({"chain"})


def tamper_reorder(conn: Connection, rng: random.Random, heads: list[dict[str, Any]]) -> frozenset[str]:
    drop_triggers(conn)
    rows = _audit_rows(conn)
    a, b = sorted(rng.sample(range(len(rows)), 2))
    for src, dst in ((rows[a], rows[b]["seq"]), (rows[b], rows[a]["seq"])):
        conn.execute(
            update(audit_log).where(audit_log.c.seq == dst).values({k: v for k, v in src.items() if k != "seq"})
        )
    return frozenset({"chain"})


def tamper_truncate_tail(conn: Connection, rng: random.Random, heads: list[dict[str, Any]]) -> frozenset[str]:
    """Delete the last records and rewind the head to an older copy (valid MAC): the rows no longer match."""
    drop_triggers(conn)
    older = [h for h in heads[:-1] if h["last_seq"] < heads[-1]["last_seq"]]
    if not older:  # only one commit so far: truncate, leave the head
        last = max(r["seq"] for r in _audit_rows(conn))
        conn.execute(delete(audit_log).where(audit_log.c.seq == last))
        return frozenset({"chain"})
    old = rng.choice(older)
    conn.execute(delete(audit_log).where(audit_log.c.seq > old["last_seq"]))
    conn.execute(update(audit_head).where(audit_head.c.id == 1).values({k: v for k, v in old.items() if k != "id"}))
    return DATA_KINDS


def tamper_recompute_chain(conn: Connection, rng: random.Random, heads: list[dict[str, Any]]) -> frozenset[str]:
    """Rewrite every hash (plain SHA-256, or HMAC under a key of the attacker's) and the head to match."""
    drop_triggers(conn)
    other = b"attacker-key-" + str(rng.randrange(10**9)).encode()
    plain = rng.random() < 0.5

    def digest(payload: bytes) -> str:
        return hashlib.sha256(payload).hexdigest() if plain else hmac.new(other, payload, hashlib.sha256).hexdigest()

    prev = "0" * 64
    for r in _audit_rows(conn):
        fields = [r["seq"], r["at"], r["username"], r["entity"], r["entity_key"], r["field"]]
        fields += [r["old_value"], r["new_value"], r["reason"], prev, r["version"]]
        h = digest(canonical(fields).encode())
        conn.execute(update(audit_log).where(audit_log.c.seq == r["seq"]).values(prev_hash=prev, hash=h))
        prev = h
    head = conn.execute(select(audit_head)).mappings().one()
    new_mac = digest(canonical(["audit_head", head["last_seq"], prev, head["legacy_seq"], head["key_id"]]).encode())
    conn.execute(update(audit_head).values(last_hash=prev, mac=new_mac))
    return frozenset({"chain"})


def tamper_delete_head(conn: Connection, rng: random.Random, heads: list[dict[str, Any]]) -> frozenset[str]:
    conn.execute(delete(audit_head))
    return frozenset({"head"})


def tamper_empty_everything(conn: Connection, rng: random.Random, heads: list[dict[str, Any]]) -> frozenset[str]:
    drop_triggers(conn)
    for e in reversed(list(ENTITIES.values())):  # children first
        conn.execute(delete(e.table))
    conn.execute(delete(audit_log))
    return frozenset({"chain"})


TAMPERINGS: dict[str, Callable[[Connection, random.Random, list[dict[str, Any]]], frozenset[str]]] = {
    "edit a data row": tamper_edit_data,
    "delete a data row": tamper_delete_data,
    "insert an unaudited row": tamper_insert_unaudited,
    "edit an audit record": tamper_edit_audit,
    "delete an audit record": tamper_delete_audit_middle,
    "reorder audit records": tamper_reorder,
    "truncate the tail and rewind the head": tamper_truncate_tail,
    "recompute the chain without the key": tamper_recompute_chain,
    "delete the head": tamper_delete_head,
    "empty every table": tamper_empty_everything,
}


def head_copy(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(conn.execute(select(audit_head)).mappings().one())


def apply_tampering(engine: Engine, name: str, rng: random.Random, heads: list[dict[str, Any]]) -> frozenset[str]:
    with engine.begin() as conn:
        return TAMPERINGS[name](conn, rng, heads)


def assert_detected(engine: Engine, name: str, expected: frozenset[str]) -> None:
    with engine.connect() as conn:
        report = verify(conn, load_key(engine.url, create=False))
    assert not report.ok, f"{name}: not detected"
    assert expected & set(report.by_kind), (name, report.by_kind, report.findings[:3])
    assert report.total == sum(report.by_kind.values()) >= 1


def rows_match_replay(engine: Engine) -> None:
    """Replaying the trail rebuilds every row of every table exactly (ids, values, versions, removals)."""
    with engine.connect() as conn:
        for entity, e in ENTITIES.items():
            c = codec(entity)
            stored = {
                str(r["id"]): orjson.loads(canonical(c.state_from_db(r)))
                for r in conn.execute(select(e.table)).mappings()
            }
            replayed = {k: orjson.loads(canonical(v)) for k, v in replay_rows(conn, entity).items()}
            assert replayed == stored, entity


# --- a fixed history every tampering is tried on (both backends)


def _history(engine: Engine) -> list[dict[str, Any]]:
    """Seed, then edit a lesion, re-measure an assessment and remove a lesion; the head after each commit."""
    ids = _writers.seed(engine, subjects=2, lesions=2)
    heads = [head_copy(engine)]
    with UnitOfWork(engine, user="rad1", reason="week 6 CT") as uow:
        a = uow.assessments.add(_writers.assessment("JN-001", 40))
        uow.commit()
    heads.append(head_copy(engine))
    _writers.edit_diameter(engine, ids["JN-001"][0], 1, 25.0, "dm1")
    heads.append(head_copy(engine))
    with UnitOfWork(engine, user="rad1", reason="re-read") as uow:
        m = a.value.measurements
        uow.assessments.update(
            a.id,
            dataclasses.replace(a.value, measurements=(dataclasses.replace(m[0], diameter_mm=9.0), *m[2:])),
            version=1,
        )
        uow.lesions.remove(ids["JN-002"][1], version=1, reason="entered twice")
        uow.commit()
    heads.append(head_copy(engine))
    return heads


@pytest.mark.postgres
def test_the_triggers_refuse_update_and_delete_of_audit_records(engine: Engine) -> None:
    _writers.seed(engine, subjects=1, lesions=1)
    for statement in (update(audit_log).values(reason="rewritten"), delete(audit_log)):
        with pytest.raises(DBAPIError, match=r"append-only: (UPDATE|DELETE) refused"), engine.begin() as conn:
            conn.execute(statement)
    with engine.connect() as conn:
        assert {r["reason"] for r in _audit_rows(conn)} == {"baseline"}
        assert verify(conn).ok


@pytest.mark.postgres
@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_every_kind_of_tampering_is_named_by_verify(engine: Engine, name: str) -> None:
    heads = _history(engine)
    rows_match_replay(engine)
    with engine.connect() as conn:
        assert verify(conn).ok
    expected = apply_tampering(engine, name, random.Random(name), heads)
    assert_detected(engine, name, expected)


@pytest.mark.postgres
def test_a_checkpoint_detects_a_rollback_that_the_head_alone_cannot(engine: Engine) -> None:
    """Delete the last records and the rows they added, restore an older head (its MAC is valid): only the
    checkpoint kept outside the database knows the trail was longer."""
    _writers.seed(engine, subjects=1, lesions=1)
    old_head = head_copy(engine)
    with UnitOfWork(engine, user="coordinator1", reason="screening") as uow:
        added = [uow.patients.add(_writers.patient(s)).id for s in ("JN-005", "JN-006")]
        uow.commit()
    key = load_key(engine.url, create=False)
    with engine.connect() as conn:
        statement = checkpoint(conn, key)
        assert verify(conn, key, checkpoint_statement=statement).ok
    with engine.begin() as conn:
        drop_triggers(conn)
        conn.execute(delete(audit_log).where(audit_log.c.seq > old_head["last_seq"]))
        patients = ENTITIES["patients"].table
        conn.execute(delete(patients).where(patients.c.id.in_(added)))
        conn.execute(update(audit_head).values({k: v for k, v in old_head.items() if k != "id"}))
    with engine.connect() as conn:
        assert verify(conn, key).ok  # the replay attack: self-consistent, the head MAC is genuine
        report = verify(conn, key, checkpoint_statement=statement)
    assert not report.ok
    assert report.by_kind == {"checkpoint": 1}
    assert "rolled back or truncated" in report.findings[0].message


@pytest.mark.postgres
def test_a_forged_checkpoint_is_refused(engine: Engine) -> None:
    _writers.seed(engine, subjects=1, lesions=1)
    key = load_key(engine.url, create=False)
    with engine.connect() as conn:
        statement = {**checkpoint(conn, key), "seq": 1}
        report = verify(conn, key, checkpoint_statement=statement)
    assert report.by_kind == {"checkpoint": 1}


# --- the state machine


def _template(tmp: Path) -> Path:
    """An upgraded SQLite database (and its key file), copied for every example."""
    path = tmp / "template.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


class TrialMachine(RuleBasedStateMachine):
    """Random audited writes through the unit of work; the model knows each record's live version."""

    new_engine: Callable[[], tuple[Engine, Callable[[], None]]]

    def __init__(self) -> None:
        super().__init__()
        self.engine, self._cleanup = type(self).new_engine()
        ids = _writers.seed(self.engine, subjects=2, lesions=1)
        self.lesions: dict[str, int] = {i: 1 for v in ids.values() for i in v}
        self.natural: dict[tuple[str, str], str] = {}
        with UnitOfWork(self.engine, user="r", reason="r") as uow:
            for i in self.lesions:
                v = uow.lesions.get(i).value
                self.natural[(v.subject_id, v.lesion_id)] = i
        self.assessments: dict[str, int] = {}
        self.heads = [head_copy(self.engine)]
        self.tampering = "delete the head"
        self.rng = random.Random(0)

    @initialize(name=st.sampled_from(sorted(TAMPERINGS)), seed=st.integers(0, 2**32))
    def choose_tampering(self, name: str, seed: int) -> None:
        self.tampering, self.rng = name, random.Random(seed)

    def _committed(self) -> None:
        self.heads.append(head_copy(self.engine))

    @rule(subject=st.sampled_from(_writers.SUBJECTS[:2]), lesion_id=st.sampled_from(["L1", "L2", "L3"]))
    def add_lesion(self, subject: str, lesion_id: str) -> None:
        exists = (subject, lesion_id) in self.natural
        with UnitOfWork(self.engine, user="rad1", reason="new lesion") as uow:
            if exists:
                with pytest.raises(DuplicateRecord):
                    uow.lesions.add(_writers.lesion(subject, lesion_id))
                return
            stored = uow.lesions.add(_writers.lesion(subject, lesion_id))
            uow.commit()
        self.lesions[stored.id] = 1
        self.natural[(subject, lesion_id)] = stored.id
        self._committed()

    @rule(data=st.data(), diameter=st.floats(1, 300).map(lambda x: round(x, 1)))
    def edit_lesion(self, data: st.DataObject, diameter: float) -> None:
        if not self.lesions:
            return
        lesion_id = data.draw(st.sampled_from(sorted(self.lesions)))
        with UnitOfWork(self.engine, user="dm1", reason="re-measured") as uow:
            before = uow.lesions.get(lesion_id)
            stored = uow.lesions.update(
                lesion_id,
                dataclasses.replace(before.value, baseline_diameter_mm=diameter),
                version=self.lesions[lesion_id],
            )
            uow.commit()
        changed = before.value.baseline_diameter_mm != diameter
        assert stored.version == self.lesions[lesion_id] + changed
        if changed:
            self.lesions[lesion_id] = stored.version
            self._committed()

    @rule(data=st.data())
    def stale_write(self, data: st.DataObject) -> None:
        stale = {i: v for i, v in self.lesions.items() if v > 1}
        if not stale:
            return
        lesion_id = data.draw(st.sampled_from(sorted(stale)))
        with UnitOfWork(self.engine, user="coordinator1", reason="old form") as uow:
            before = uow.lesions.get(lesion_id)
            with pytest.raises(ConflictError):
                uow.lesions.update(
                    lesion_id, dataclasses.replace(before.value, baseline_diameter_mm=1.5), version=stale[lesion_id] - 1
                )
        with UnitOfWork(self.engine, user="r", reason="r") as uow:
            assert uow.lesions.get(lesion_id) == before

    @rule(day=st.integers(0, 30))
    def add_assessment(self, day: int) -> None:
        with UnitOfWork(self.engine, user="rad1", reason="CT") as uow:
            new = _writers.assessment("JN-001", day, n=2)
            if uow.assessments.find(subject_id="JN-001", assessment_date=new.assessment_date):
                return
            stored = uow.assessments.add(new)
            uow.commit()
        self.assessments[stored.id] = 1
        self._committed()

    @rule(data=st.data(), how=st.sampled_from(["change", "add", "drop"]))
    def edit_measurements(self, data: st.DataObject, how: str) -> None:
        if not self.assessments:
            return
        aid = data.draw(st.sampled_from(sorted(self.assessments)))
        with UnitOfWork(self.engine, user="rad1", reason="re-read") as uow:
            a = uow.assessments.get(aid)
            ms = list(a.value.measurements)
            if how == "change" and ms:
                ms[0] = dataclasses.replace(ms[0], diameter_mm=(ms[0].diameter_mm or 0) + 1.0)
            elif how == "add":
                taken = {m.lesion_id for m in ms}
                free = next(f"N{i}" for i in range(100) if f"N{i}" not in taken)
                ms.append(d.LesionMeasurement(free, d.LesionClass.NEW, "liver", False, None, d.LesionStatus.PRESENT))
            elif ms:
                ms.pop()
            else:
                return
            stored = uow.assessments.update(
                aid, dataclasses.replace(a.value, measurements=tuple(ms)), version=a.version
            )
            uow.commit()
        assert stored.version == self.assessments[aid] + 1
        self.assessments[aid] = stored.version
        self._committed()

    @rule(data=st.data())
    def remove_lesion(self, data: st.DataObject) -> None:
        if not self.lesions:
            return
        lesion_id = data.draw(st.sampled_from(sorted(self.lesions)))
        with UnitOfWork(self.engine, user="dm1", reason="x") as uow:
            uow.lesions.remove(lesion_id, version=self.lesions.pop(lesion_id), reason="entered on the wrong patient")
            uow.commit()
        self.natural = {k: v for k, v in self.natural.items() if v != lesion_id}
        self._committed()

    @invariant()
    def the_trail_verifies_and_replays_to_every_row(self) -> None:
        with self.engine.connect() as conn:
            report = verify(conn)
            assert report.ok, report.findings
            lesions = ENTITIES["lesions"].table
            live = dict(
                conn.execute(select(lesions.c.id, lesions.c.version).where(lesions.c.removed_reason.is_(None))).all()
            )
        assert live == self.lesions
        rows_match_replay(self.engine)

    def teardown(self) -> None:
        try:
            expected = apply_tampering(self.engine, self.tampering, self.rng, self.heads)
            assert_detected(self.engine, self.tampering, expected)
        finally:
            self._cleanup()


def _run(machine_engine: Callable[[], tuple[Engine, Callable[[], None]]], examples: int, steps: int) -> None:
    machine = type("Machine", (TrialMachine,), {"new_engine": staticmethod(machine_engine)})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


def test_random_histories_verify_replay_and_every_tampering_is_detected_on_sqlite(tmp_path: Path) -> None:
    template = _template(tmp_path)
    counter = iter(range(10**6))

    def new_engine() -> tuple[Engine, Callable[[], None]]:
        path = tmp_path / f"ex{next(counter)}.sqlite"
        shutil.copy(template, path)
        shutil.copy(template.with_name(template.name + ".audit-key"), path.with_name(path.name + ".audit-key"))
        engine = make_engine(f"sqlite:///{path}")
        return engine, engine.dispose

    _run(new_engine, examples=20, steps=15)


@pytest.mark.postgres
def test_random_histories_verify_replay_and_every_tampering_is_detected_on_postgresql(postgres_server: Any) -> None:
    if postgres_server is None:
        pytest.skip("PostgreSQL not available (ABSCOPAL_TEST_POSTGRES=0 or not installed)")
    counter = iter(range(10**6))
    stamp = dt.datetime.now(dt.UTC).strftime("%H%M%S%f")

    def new_engine() -> tuple[Engine, Callable[[], None]]:
        name = f"tamper_{stamp}_{next(counter)}"
        engine = make_engine(postgres_server.create_database(name))
        upgrade(engine)

        def cleanup() -> None:
            engine.dispose()
            postgres_server.drop_database(name)

        return engine, cleanup

    _run(new_engine, examples=5, steps=10)


def test_verify_finds_the_audit_key_of_a_read_only_sqlite_engine(tmp_path: Path) -> None:
    """A read-only engine opens ``file:...?mode=ro``; the key is still the one next to the database file."""
    url = f"sqlite:///{tmp_path / 'ro.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    _writers.seed(engine, subjects=1, lesions=1)
    engine.dispose()
    read_only = make_engine(url, read_only=True)
    with read_only.connect() as conn:
        assert verify(conn).ok
    read_only.dispose()
