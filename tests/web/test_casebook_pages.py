"""The casebook page (web.md §3, §5; issue 12 item 10): every record of the patient with its state, the PI's
signature over all of them (voided, visibly and in the audit trail, by any later change to any record, an added
one included), and the data manager's lock that refuses every edit until it is lifted with a reason.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))
import world

from abscopal.services import casebook
from abscopal.store.tables import ENTITIES, audit_log
from abscopal.store.unit_of_work import UnitOfWork
from abscopal.web.records import RESOURCES, patient_marks, record_state, records_for

API = "/api/v1"
SID = world.QFS_PATIENT
PAGE = f"/patients/{SID}/casebook"


def text_of(response: Any) -> str:
    main = str(response.text).split('<main id="main">', 1)[-1]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", main)))


def field_error(response: Any, control: str) -> str:
    found = re.search(rf'<p class="field-error" id="{control}-error">([^<]+)</p>', response.text)
    assert found, f"no error beside #{control}: {text_of(response)[:1500]}"
    return html.unescape(found.group(1))


def hidden(response: Any, name: str, form: str) -> str:
    part = response.text.split(f'id="{form}"', 1)[1]
    found = re.search(rf'name="{name}" value="([^"]*)"', part)
    assert found, f"no hidden {name} in #{form}"
    return found.group(1)


def sign(c: Any, meaning: str = "approved", password: str = world.PASSWORD) -> Any:
    page = c.get(PAGE)
    assert page.status_code == 200, text_of(page)
    form = {"version": hidden(page, "version", "casebook-sign-form"), "meaning": meaning, "password": password}
    return c.post(f"{PAGE}/sign", data=form)


def signatures(db: Any) -> list[casebook.CasebookSignature]:
    with UnitOfWork(db.engine, "test", "read") as uow:
        return casebook.casebook_signatures(uow, SID)


def first_lesion(c: Any) -> dict[str, Any]:
    lesions: list[dict[str, Any]] = c.get(f"{API}/patients/{SID}/lesions").json()
    return sorted(lesions, key=lambda r: r["id"])[0]


def edit_lesion(c: Any, lesion: dict[str, Any], location: str = "corrected in the test") -> Any:
    data = {**{k: v for k, v in lesion["data"].items() if k != "subject_id"}, "location": location}
    body = {"reason": "location corrected from the CT report", "data": data}
    return c.put(f"{API}/patients/{SID}/lesions/{lesion['id']}", json=body, headers={"If-Match": lesion["etag"]})


def test_the_casebook_lists_every_record_with_the_state_the_record_pages_give(
    client: world.Clients, web_db: Any
) -> None:
    page = client.session("monitor").get(PAGE)
    assert page.status_code == 200, text_of(page)
    with UnitOfWork(web_db.engine, "test", "read") as uow:
        patient = uow.patients.find(subject_id=SID)
        assert patient is not None
        marks = patient_marks(uow, SID)
        expected = {
            f"/patients/{SID}/{res.slug}/{r.id}": record_state(res.entity, r, marks, patient.id).status
            for res in RESOURCES.values()
            if res.entity != "questionnaire_answers"
            for r in records_for(uow, res.entity, SID)
        }
        count = len(casebook.casebook_records(uow, SID))
    row = r'<tr><td><a href="([^"]+)">[^<]*</a></td><td>\d+</td><td><span class="badge (\w+)"'
    rows = dict(re.findall(row, page.text))
    assert expected and {href: rows.get(href) for href in expected} == expected
    assert f"{count} records in the casebook." in text_of(page)
    assert "The casebook has not been signed." in text_of(page)
    assert 'id="casebook-sign-form"' not in page.text and 'id="casebook-lock-form"' not in page.text


def test_an_open_query_is_listed_on_the_casebook(fresh_client: world.Clients) -> None:
    dm = fresh_client.shared("datamanager")
    lesion = first_lesion(dm)
    body = {"entity": "lesions", "record_id": lesion["id"], "field": "organ", "text": "Which lobe exactly?"}
    assert dm.post(f"{API}/patients/{SID}/queries", json=body).status_code == 201
    page = fresh_client.session("pi").get(PAGE)
    assert "Which lobe exactly?" in text_of(page) and "1 open query" in text_of(page)


def test_an_investigator_who_is_not_the_pi_sees_no_signature_form_and_is_refused(
    fresh_client: world.Clients, fresh_web_db: Any
) -> None:
    inv = fresh_client.session("investigator")
    page = inv.get(PAGE)
    assert 'id="casebook-sign-form"' not in page.text
    with UnitOfWork(fresh_web_db.engine, "test", "read") as uow:
        patient = uow.patients.find(subject_id=SID)
        assert patient is not None
        version = str(patient.version)
    refused = inv.post(f"{PAGE}/sign", data={"version": version, "meaning": "approved", "password": world.PASSWORD})
    assert refused.status_code == 403
    alert = re.search(r'<div class="error" role="alert"><p>([^<]+)</p>', refused.text)
    assert alert and "not the site's principal investigator" in html.unescape(alert.group(1))
    assert signatures(fresh_web_db) == []


def test_an_empty_signature_form_is_refused_beside_its_fields(fresh_client: world.Clients) -> None:
    refused = fresh_client.session("pi").post(f"{PAGE}/sign", data={"version": "1", "meaning": "", "password": ""})
    assert refused.status_code == 422
    assert field_error(refused, "cb-meaning") == "Choose what your signature means."
    assert "Type your password again" in field_error(refused, "cb-password")


def test_the_pi_signs_the_casebook_with_a_hash_over_every_record_and_it_is_audited(
    fresh_client: world.Clients, fresh_web_db: Any
) -> None:
    r = sign(fresh_client.session("pi"))
    assert r.status_code == 303 and r.headers["location"].endswith("?notice=signed")
    (sig,) = signatures(fresh_web_db)
    with UnitOfWork(fresh_web_db.engine, "test", "read") as uow:
        digest = casebook.casebook_digest(uow, SID)
    assert sig.holds and sig.username == "pi" and sig.meaning == "approved" and sig.signed_digest == digest
    page = fresh_client.session("monitor").get(PAGE)
    shown = text_of(page)
    assert f"Signed by {world.full_name('pi')} (pi), meaning “approved”" in shown and digest in shown
    with fresh_web_db.engine.connect() as conn:
        events = conn.execute(
            select(audit_log.c.field, audit_log.c.new_value).where(
                audit_log.c.entity == "security", audit_log.c.entity_key == "pi"
            )
        ).all()
    assert any(e.field == "signed" and f"casebook of {SID}" in str(e.new_value) for e in events)


def test_an_edit_of_any_record_voids_the_casebook_signature_visibly_and_in_the_trail(
    fresh_client: world.Clients, fresh_web_db: Any
) -> None:
    assert sign(fresh_client.session("pi")).status_code == 303
    radiologist = fresh_client.shared("radiologist")
    assert edit_lesion(radiologist, first_lesion(radiologist)).status_code == 200
    page = fresh_client.session("pi").get(PAGE)
    (sig,) = signatures(fresh_web_db)
    assert not sig.holds and sig.void_reason and "voided" in sig.void_reason
    assert "Void:" in text_of(page) and 'class="voided"' in page.text
    with fresh_web_db.engine.connect() as conn:
        voids = conn.execute(
            select(audit_log.c.username, audit_log.c.new_value).where(
                audit_log.c.entity == "record_signatures", audit_log.c.entity_key == sig.id,
                audit_log.c.field == "removed_reason",
            )
        ).all()  # fmt: skip
    assert voids and voids[-1].username == "radiologist" and "voided" in str(voids[-1].new_value)


def test_a_record_added_after_the_signature_voids_it_too(fresh_client: world.Clients, fresh_web_db: Any) -> None:
    assert sign(fresh_client.session("pi")).status_code == 303
    coord = fresh_client.shared("coordinator")
    cycles = coord.get(f"{API}/patients/{SID}/io-cycles").json()
    last = max(cycles, key=lambda r: r["data"]["cycle_number"])["data"]
    new = {**{k: v for k, v in last.items() if k != "subject_id"}, "cycle_number": last["cycle_number"] + 1}
    added = coord.post(f"{API}/patients/{SID}/io-cycles", json=new)
    assert added.status_code == 201, added.text
    (sig,) = signatures(fresh_web_db)  # voided by the store as the record was added, before anyone reads the page
    assert not sig.holds and sig.void_reason is not None and "added to the casebook" in sig.void_reason
    page = fresh_client.session("monitor").get(PAGE)
    assert "Void:" in text_of(page)
    with fresh_web_db.engine.connect() as conn:
        void = conn.execute(
            select(audit_log.c.username).where(
                audit_log.c.entity == "record_signatures", audit_log.c.entity_key == sig.id,
                audit_log.c.field == "removed_reason",
            )
        ).scalar_one()  # fmt: skip
    assert void == "coordinator"  # in the same transaction as the addition, by the person who added it


def test_the_data_manager_locks_the_casebook_and_every_record_refuses_edits(
    fresh_client: world.Clients, fresh_web_db: Any
) -> None:
    dm = fresh_client.session("datamanager")
    empty = dm.post(f"{PAGE}/lock", data={"reason": " "})
    assert empty.status_code == 422 and "needs a reason" in field_error(empty, "cb-lock-reason")
    r = dm.post(f"{PAGE}/lock", data={"reason": "casebook complete"})
    assert r.status_code == 303
    page = dm.get(PAGE)
    assert "Locked by datamanager" in text_of(page) and "casebook complete" in text_of(page)
    radiologist = fresh_client.shared("radiologist")
    refused = edit_lesion(radiologist, first_lesion(radiologist))
    assert refused.status_code == 423 and "is locked" in refused.json()["detail"]
    with UnitOfWork(fresh_web_db.engine, "test", "read") as uow:
        patient = uow.patients.find(subject_id=SID)
        assert patient is not None
        marks = patient_marks(uow, SID)
        lesion = uow.lesions.for_subject(SID)[0]
        assert record_state("lesions", lesion, marks, patient.id).status == "locked"


def test_unlocking_needs_a_reason_and_then_edits_are_accepted_again(fresh_client: world.Clients) -> None:
    dm = fresh_client.session("datamanager")
    assert dm.post(f"{PAGE}/lock", data={"reason": "casebook complete"}).status_code == 303
    page = dm.get(PAGE)
    lock_id = hidden(page, "lock_id", "casebook-unlock-form")
    version = hidden(page, "lock_version", "casebook-unlock-form")
    refused = dm.post(f"{PAGE}/unlock", data={"lock_id": lock_id, "lock_version": version, "reason": ""})
    assert refused.status_code == 422 and "needs a reason" in field_error(refused, "cb-unlock-reason")
    r = dm.post(f"{PAGE}/unlock", data={"lock_id": lock_id, "lock_version": version, "reason": "late lab result"})
    assert r.status_code == 303
    radiologist = fresh_client.shared("radiologist")
    assert edit_lesion(radiologist, first_lesion(radiologist)).status_code == 200


@pytest.mark.parametrize("path", ["sign", "lock", "unlock"])
def test_another_sites_patient_is_not_found(client: world.Clients, path: str) -> None:
    user = {"sign": "pi", "lock": "datamanager", "unlock": "datamanager"}[path]
    r = client.session(user).post(f"/patients/{world.JNC_PATIENT}/casebook/{path}", data={})
    assert r.status_code == 404


def test_the_casebook_signature_covers_the_patients_every_kind_of_trial_record() -> None:
    trial_data = {
        name for name, e in ENTITIES.items()
        if e.parent is None and "subject_id" in e.table.c and name not in casebook.NOT_CONTENT
    }  # fmt: skip
    assert trial_data == set(casebook.CASEBOOK_ENTITIES)


def test_a_patients_own_account_does_not_see_its_casebook(client: world.Clients) -> None:
    """A patient's account sees only its own questionnaires (web.md §1), not the casebook of its records."""
    assert world.SUBJECT_OF["patient"] == SID
    assert client.session("patient").get(PAGE).status_code == 404
