"""Signatures, SDV, locks, data queries and the audit trail through the API (web.md §2-§5), on both backends.

Every test that changes data has a database of its own (``fresh_client``); the read-only ones share the module's.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).parent))
import world

from abscopal.services import queries as query_service
from abscopal.store.tables import ENTITIES, audit_log, login_failures
from abscopal.store.unit_of_work import UnitOfWork
from abscopal.web.accounts import load_account
from abscopal.web.audit_view import record_history, trail
from abscopal.web.inbox import query_counts_by_age, query_inbox

SID = world.QFS_PATIENT
API = "/api/v1"


def _lesion(c: Any, n: int = 0) -> dict[str, Any]:
    lesions = c.get(f"{API}/patients/{SID}/lesions").json()
    return dict(lesions[n])


def _edit_lesion(c: Any, lesion: dict[str, Any], reason: str = "location corrected from the CT report") -> Any:
    data = {k: v for k, v in lesion["data"].items() if k != "subject_id"}
    data["location"] = f"{data['location']} (corrected)"
    return c.put(
        f"{API}/patients/{SID}/lesions/{lesion['id']}",
        json={"reason": reason, "data": data},
        headers={"If-Match": lesion["etag"]},
    )


def _sign(c: Any, lesion: dict[str, Any], password: str = world.PASSWORD, meaning: str = "reviewed") -> Any:
    return c.post(
        f"{API}/patients/{SID}/records/lesions/{lesion['id']}/signatures",
        json={"meaning": meaning, "password": password},
        headers={"If-Match": lesion["etag"]},
    )


def _raise(c: Any, lesion: dict[str, Any], text: str = "Please confirm the location against the CT report") -> Any:
    body = {"entity": "lesions", "record_id": lesion["id"], "field": "location", "text": text}
    return c.post(f"{API}/patients/{SID}/queries", json=body)


def _on_query(c: Any, query: dict[str, Any], step: str, body: dict[str, Any] | None = None) -> Any:
    return c.post(f"{API}/queries/{query['id']}/{step}", json=body or {}, headers={"If-Match": query["etag"]})


def _actor(db: Any, username: str) -> Any:
    with db.engine.connect() as conn:
        account = load_account(conn, username)
    assert account is not None
    return account.actor()


# --- signatures


def test_a_signature_with_the_right_password_shows_the_signers_full_name_meaning_and_time(fresh_client: Any) -> None:
    inv = fresh_client.login("investigator")
    lesion = _lesion(inv)
    before = dt.datetime.now(dt.UTC)
    response = _sign(inv, lesion)
    assert response.status_code == 200, response.text
    state = inv.get(f"{API}/patients/{SID}/lesions/{lesion['id']}").json()["state"]
    assert state["status"] == "signed"
    (signature,) = state["signatures"]
    assert signature["full_name"] == world.full_name("investigator")
    assert signature["meaning"] == "reviewed"
    assert dt.datetime.fromisoformat(signature["at"]) >= before - dt.timedelta(seconds=1)
    (listed,) = inv.get(f"{API}/patients/{SID}/signatures").json()
    assert listed["live"] and listed["holds"] and listed["full_name"] == world.full_name("investigator")


def test_a_wrong_signature_password_is_422_and_counted(fresh_client: Any, fresh_web_db: Any) -> None:
    inv = fresh_client.login("investigator")
    response = _sign(inv, _lesion(inv), password="not my password at all")
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["pointer"] == "/password"
    with fresh_web_db.engine.connect() as conn:
        counted = conn.execute(
            select(func.count()).where(
                login_failures.c.username == "investigator", login_failures.c.kind == "signature"
            )
        ).scalar_one()
        events = conn.execute(
            select(func.count()).where(
                audit_log.c.entity == "security", audit_log.c.field == "signature_password_failed"
            )
        ).scalar_one()
    assert counted == 1
    assert events == 1
    assert inv.get(f"{API}/patients/{SID}/signatures").json() == []


def test_three_wrong_signature_passwords_lock_the_account(fresh_client: Any) -> None:
    inv = fresh_client.login("investigator")
    lesion = _lesion(inv)
    statuses = [_sign(inv, lesion, password=f"wrong password {i}").status_code for i in range(3)]
    assert statuses[:2] == [422, 422]
    assert statuses[2] == 401  # the third locks the account and ends its sessions
    refused = fresh_client.anonymous().post(
        f"{API}/login", json={"username": "investigator", "password": world.PASSWORD}
    )
    assert refused.status_code == 401
    assert "locked" in refused.json()["detail"]


def test_an_edit_voids_the_signature_and_the_void_is_in_the_audit_trail(fresh_client: Any) -> None:
    inv = fresh_client.login("investigator")
    lesion = _lesion(inv)
    assert _sign(inv, lesion).status_code == 200
    edited = _edit_lesion(inv, lesion)
    assert edited.status_code == 200, edited.text
    assert edited.json()["state"]["status"] != "signed"
    (signature,) = inv.get(f"{API}/patients/{SID}/signatures").json()
    assert not signature["live"] and not signature["holds"]
    assert "voided" in signature["void_reason"]
    assert inv.get(f"{API}/patients/{SID}/lesions/{lesion['id']}").json()["state"]["status"] != "signed"
    history = inv.get(f"{API}/patients/{SID}/records/record_signatures/{signature['id']}/audit").json()
    voids = [h for h in history if h["field"] == "removed_reason"]
    assert voids and voids[-1]["username"] == "investigator" and "voided" in voids[-1]["new"]


def test_the_pi_signs_the_casebook_and_another_investigator_may_not(fresh_client: Any) -> None:
    pi, inv = fresh_client.login("pi"), fresh_client.login("investigator")
    patient = pi.get(f"{API}/patients/{SID}").json()
    body = {"meaning": "approved", "password": world.PASSWORD}
    refused = inv.post(f"{API}/patients/{SID}/casebook-signature", json=body, headers={"If-Match": patient["etag"]})
    assert refused.status_code == 403, refused.text
    signed = pi.post(f"{API}/patients/{SID}/casebook-signature", json=body, headers={"If-Match": patient["etag"]})
    assert signed.status_code == 200, signed.text
    assert signed.json()["state"]["status"] == "signed"
    assert signed.json()["state"]["signatures"][0]["full_name"] == world.full_name("pi")


def test_a_role_the_signing_rules_refuse_gets_403_and_the_refusal_is_audited(
    fresh_client: Any, fresh_web_db: Any
) -> None:
    monitor = fresh_client.login("monitor")
    response = _sign(monitor, _lesion(monitor))
    assert response.status_code == 403, response.text
    with fresh_web_db.engine.connect() as conn:
        refusals = conn.execute(
            select(func.count()).where(
                audit_log.c.entity == "security", audit_log.c.entity_key == "monitor", audit_log.c.field == "refused"
            )
        ).scalar_one()
    assert refusals == 1


# --- SDV and locks


def test_sdv_by_the_monitor_marks_the_record_verified_and_an_edit_clears_it(fresh_client: Any) -> None:
    monitor, inv = fresh_client.login("monitor"), fresh_client.login("investigator")
    lesion = _lesion(monitor)
    marked = monitor.post(
        f"{API}/patients/{SID}/records/lesions/{lesion['id']}/sdv", headers={"If-Match": lesion["etag"]}
    )
    assert marked.status_code == 200, marked.text
    assert marked.json()["state"] == {**marked.json()["state"], "status": "verified", "verified_by": "monitor"}
    assert _edit_lesion(inv, lesion).json()["state"]["status"] == "edited"


def test_a_locked_record_refuses_an_edit_with_423_naming_who_locked_it_and_when(fresh_client: Any) -> None:
    dm, inv = fresh_client.login("datamanager"), fresh_client.login("investigator")
    lesion = _lesion(inv)
    locked = dm.post(f"{API}/patients/{SID}/records/lesions/{lesion['id']}/lock", json={"reason": "database lock"})
    assert locked.status_code == 201, locked.text
    lock = locked.json()
    refused = _edit_lesion(inv, lesion)
    assert refused.status_code == 423, refused.text
    detail = refused.json()["detail"]
    assert "datamanager" in detail
    assert dt.datetime.fromisoformat(lock["locked_at"]).strftime("%Y-%m-%d %H:%M") in detail
    assert inv.get(f"{API}/patients/{SID}/lesions/{lesion['id']}").json()["state"]["status"] == "locked"


def test_unlocking_needs_a_reason_and_then_the_edit_works(fresh_client: Any) -> None:
    dm, inv = fresh_client.login("datamanager"), fresh_client.login("investigator")
    lesion = _lesion(inv)
    lock = dm.post(f"{API}/patients/{SID}/lock", json={"reason": "casebook complete"}).json()
    assert _edit_lesion(inv, lesion).status_code == 423
    unlock = f"{API}/patients/{SID}/locks/{lock['id']}/unlock"
    assert dm.post(unlock, json={}, headers={"If-Match": lock["etag"]}).status_code == 422
    assert dm.post(unlock, json={"reason": "   "}, headers={"If-Match": lock["etag"]}).status_code == 422
    released = dm.post(unlock, json={"reason": "late lab value to enter"}, headers={"If-Match": lock["etag"]})
    assert released.status_code == 200, released.text
    assert not released.json()["live"] and "late lab value" in released.json()["unlock_reason"]
    assert _edit_lesion(inv, lesion).status_code == 200
    (listed,) = dm.get(f"{API}/patients/{SID}/locks").json()
    assert not listed["live"]


# --- data queries


def test_the_query_lifecycle_is_audited_with_each_user(fresh_client: Any, fresh_web_db: Any) -> None:
    dm, coord = fresh_client.login("datamanager"), fresh_client.login("coordinator")
    raised = _raise(dm, _lesion(dm))
    assert raised.status_code == 201, raised.text
    query = raised.json()
    assert (query["status"], query["age_days"]) == ("open", 0)
    answered = _on_query(coord, query, "answer", {"answer": "Checked: right lower lobe, as entered"})
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "answered"
    closed = _on_query(dm, answered.json(), "close")
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"
    reopened = _on_query(dm, closed.json(), "reopen", {"reason": "the answer does not cite the report"})
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["status"] == "open"
    with fresh_web_db.engine.connect() as conn:
        history = record_history(conn, "data_queries", query["id"])
    status_changes = [(h.username, h.new) for h in history if h.field == "status"]
    assert status_changes == [("coordinator", "answered"), ("datamanager", "closed"), ("datamanager", "open")]
    assert history[0].field == "*" and history[0].username == "datamanager"


def test_a_monitor_cannot_close_a_query_someone_else_raised(fresh_client: Any) -> None:
    dm, monitor = fresh_client.login("datamanager"), fresh_client.login("monitor")
    query = _raise(dm, _lesion(dm)).json()
    refused = _on_query(monitor, query, "close")
    assert refused.status_code == 403, refused.text
    assert "datamanager raised this one" in refused.json()["detail"]
    own = _raise(monitor, _lesion(monitor, 1)).json()
    assert _on_query(monitor, own, "close").status_code == 200


def test_a_stale_if_match_is_409_naming_who_changed_which_field(fresh_client: Any) -> None:
    dm, coord = fresh_client.login("datamanager"), fresh_client.login("coordinator")
    query = _raise(dm, _lesion(dm)).json()
    assert _on_query(coord, query, "answer", {"answer": "Confirmed"}).status_code == 200
    stale = _on_query(dm, query, "close")  # based on version 1; the coordinator's answer made version 2
    assert stale.status_code == 409, stale.text
    body = stale.json()
    assert "coordinator" in body["detail"] and "answer" in body["detail"]
    assert {c["field"] for c in body["changes"] if c["username"] == "coordinator"} >= {"status", "answer"}


def test_another_sites_query_is_not_found_by_its_id(fresh_client: Any) -> None:
    dm, other = fresh_client.login("datamanager"), fresh_client.login("coordinator2")
    query = _raise(dm, _lesion(dm)).json()
    response = _on_query(other, query, "answer", {"answer": "not mine to answer"})
    assert response.status_code == 404, response.text


def test_the_inbox_gives_site_staff_open_queries_and_data_managers_answered_ones(fresh_client: Any) -> None:
    dm, coord, other = (fresh_client.login(u) for u in ("datamanager", "coordinator", "coordinator2"))
    first = _raise(dm, _lesion(dm), "first").json()
    second = _raise(dm, _lesion(dm, 1), "second").json()
    _on_query(coord, second, "answer", {"answer": "done"})
    to_answer = coord.get(f"{API}/queries").json()["items"]
    assert [q["id"] for q in to_answer] == [first["id"]]
    to_close = dm.get(f"{API}/queries").json()["items"]
    assert {q["id"]: q["status"] for q in to_close} == {first["id"]: "open", second["id"]: "answered"}
    assert other.get(f"{API}/queries").json()["items"] == []
    page = dm.get(f"{API}/queries", params={"limit": 1}).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = dm.get(f"{API}/queries", params={"limit": 1, "cursor": page["next_cursor"]}).json()
    assert [q["id"] for q in rest["items"]] == [second["id"]] and rest["next_cursor"] is None
    assert len(coord.get(f"{API}/patients/{SID}/queries").json()) == 2


def test_open_queries_are_counted_by_age(fresh_web_db: Any) -> None:
    dm, other = _actor(fresh_web_db, "datamanager"), _actor(fresh_web_db, "coordinator2")
    now = dt.datetime.now(dt.UTC)
    with UnitOfWork(fresh_web_db.engine, "datamanager", "test queries") as uow:
        for days, field in ((1, "a"), (10, "b"), (20, "c"), (40, "d"), (50, "e")):
            query_service.raise_query(uow, dm, SID, "lesions", field, "check", at=now - dt.timedelta(days=days))
    with fresh_web_db.engine.connect() as conn:
        counts = query_counts_by_age(conn, dm, now=now)
        other_site = query_counts_by_age(conn, other, now=now)
        ages = sorted(r.age_days for r in query_inbox(conn, dm, now=now))
    assert counts.as_dict() == {"<7 d": 1, "7-14 d": 1, "14-28 d": 1, ">28 d": 2}
    assert other_site.total == 0
    assert ages == [1, 10, 20, 40, 50]


# --- the audit trail


def test_the_record_audit_endpoint_returns_who_when_old_new_and_why(fresh_client: Any) -> None:
    inv = fresh_client.login("investigator")
    lesion = _lesion(inv)
    assert _edit_lesion(inv, lesion, reason="typo in the location").status_code == 200
    history = inv.get(f"{API}/patients/{SID}/records/lesions/{lesion['id']}/audit").json()
    (change,) = [h for h in history if h["field"] == "location"]
    assert change["username"] == "investigator"
    assert change["old"] == lesion["data"]["location"]
    assert change["new"] == f"{lesion['data']['location']} (corrected)"
    assert change["reason"] == "typo in the location"
    assert change["version"] == 2
    assert dt.datetime.fromisoformat(change["at"]).tzinfo is not None
    trail_rows = inv.get(f"{API}/audit", params={"user": "investigator", "entity": "lesions"}).json()["items"]
    assert trail_rows[0]["field"] == "location" and trail_rows[0]["subject_id"] == SID


def test_a_record_history_includes_its_child_rows(web_db: Any) -> None:
    assessments = ENTITIES["tumour_assessments"].table
    with web_db.engine.connect() as conn:
        rid = conn.execute(select(assessments.c.id).where(assessments.c.subject_id == SID).limit(1)).scalar_one()
        history = record_history(conn, "tumour_assessments", rid)
    assert {h.entity for h in history} == {"tumour_assessments", "lesion_measurements"}


def test_an_investigators_audit_trail_does_not_show_other_sites_records(client: Any) -> None:
    inv, dm = client.shared("investigator"), client.shared("datamanager")
    seen = inv.get(f"{API}/audit", params={"limit": 500}).json()["items"]
    assert seen, "the investigator sees their own site's records"
    assert not any((r["subject_id"] or "").startswith(world.JNC) for r in seen)
    assert not any(r["entity"] in ("security", "accounts") for r in seen)
    assert not any(r["entity"] == "sites" and world.JNC in r["new"] for r in seen)
    assert inv.get(f"{API}/audit", params={"subject_id": world.JNC_PATIENT}).json()["items"] == []
    everything = dm.get(f"{API}/audit", params={"subject_id": world.JNC_PATIENT}).json()["items"]
    assert [r["subject_id"] for r in everything] == [world.JNC_PATIENT]


def test_the_trail_pages_by_sequence_newest_first(web_db: Any) -> None:
    with web_db.engine.connect() as conn:
        first = trail(conn, limit=3)
        second = trail(conn, limit=3, before_seq=first.next_before_seq)
    seqs = [r.seq for r in first.rows + second.rows]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 6


def test_an_unknown_kind_of_record_is_422_naming_it(client: Any) -> None:
    dm = client.shared("datamanager")
    response = dm.post(f"{API}/patients/{SID}/records/scans/0/lock", json={"reason": "x"})
    assert response.status_code == 422
    assert "'scans' is not a kind of patient record" in response.json()["detail"]


def test_the_coordinator_may_not_open_the_trail_and_the_administrator_sees_the_logins(client: Any) -> None:
    assert client.shared("coordinator").get(f"{API}/audit").status_code == 403
    assert client.shared("admin").get(f"{API}/audit", params={"event": "login"}).json()["items"]


def test_signing_a_version_someone_changed_since_is_409_naming_who_changed_which_field(fresh_client: Any) -> None:
    inv, radiologist = fresh_client.login("investigator"), fresh_client.login("radiologist")
    lesion = _lesion(inv)
    assert _edit_lesion(radiologist, lesion).status_code == 200
    stale = _sign(inv, lesion)  # If-Match: the version before the radiologist's edit
    assert stale.status_code == 409, stale.text
    assert "radiologist" in stale.json()["detail"] and "location" in stale.json()["detail"]
    assert inv.get(f"{API}/patients/{SID}/signatures").json() == []


def test_an_edit_to_any_record_of_the_patient_voids_the_casebook_signature(fresh_client: Any) -> None:
    pi = fresh_client.login("pi")
    patient = pi.get(f"{API}/patients/{SID}").json()
    body = {"meaning": "approved", "password": world.PASSWORD}
    assert pi.post(
        f"{API}/patients/{SID}/casebook-signature", json=body, headers={"If-Match": patient["etag"]}
    ).is_success
    assert _edit_lesion(pi, _lesion(pi)).status_code == 200
    (signature,) = pi.get(f"{API}/patients/{SID}/signatures").json()
    assert signature["entity"] == "patients" and not signature["live"]
    assert pi.get(f"{API}/patients/{SID}").json()["state"]["status"] != "signed"


def test_a_scoped_trail_read_in_small_chunks_pages_through_the_same_records(web_db: Any, monkeypatch: Any) -> None:
    from abscopal.web import audit_view

    with web_db.engine.connect() as conn:
        whole = [r.seq for r in trail(conn, sites={world.QFS}, limit=500).rows]
        monkeypatch.setattr(audit_view, "SCAN_CHUNK", 3)
        monkeypatch.setattr(audit_view, "SCAN_CHUNKS", 2)
        paged: list[int] = []
        before = None
        for _ in range(1000):
            page = trail(conn, sites={world.QFS}, limit=4, before_seq=before)
            assert len(page.rows) <= 4
            paged.extend(r.seq for r in page.rows)
            if page.next_before_seq is None:
                break
            before = page.next_before_seq
    assert whole and paged == whole


def test_a_patient_sees_only_the_queries_about_their_questionnaires(fresh_client: Any) -> None:
    dm, patient = fresh_client.login("datamanager"), fresh_client.login("patient")
    _raise(dm, _lesion(dm))
    body = {"entity": "questionnaire_answers", "field": "answer", "text": "Please answer item 3 again"}
    assert dm.post(f"{API}/patients/{SID}/queries", json=body).status_code == 201
    seen = patient.get(f"{API}/patients/{SID}/queries").json()
    assert [q["entity"] for q in seen] == ["questionnaire_answers"]
    assert patient.get(f"{API}/queries").json()["items"] == []


# --- bugs in the services, reported (the routes above work around them)


def test_the_sdv_service_names_who_changed_the_record_when_stale(fresh_web_db: Any) -> None:
    from abscopal.errors import ConflictError
    from abscopal.services import monitoring

    monitor = _actor(fresh_web_db, "monitor")
    with UnitOfWork(fresh_web_db.engine, "investigator", "moved") as uow:
        lesion = uow.lesions.for_subject(SID)[0]
        uow.lesions.replace(lesion.id, lesion.version, location="left upper lobe")
        uow.commit()
    with UnitOfWork(fresh_web_db.engine, "monitor", "sdv") as uow, pytest.raises(ConflictError) as caught:
        monitoring.mark_sdv(uow, monitor, "lesions", lesion.id, version=lesion.version)
    assert [c.username for c in caught.value.changes] == ["investigator"]


def test_the_lock_service_refuses_a_kind_of_record_that_belongs_to_no_patient(fresh_web_db: Any) -> None:
    from abscopal.errors import ValidationError
    from abscopal.services import locking

    dm = _actor(fresh_web_db, "datamanager")
    with UnitOfWork(fresh_web_db.engine, "datamanager", "lock") as uow:
        site = uow.sites.all()[0]
        with pytest.raises(ValidationError):
            locking.lock_record(uow, dm, "sites", site.id, reason="no")
