"""The resistance adjudication page (web.md §4, §5; issue 12 item 2): what it shows is the resistance engine's, the
proposal and the two signatures go through :mod:`abscopal.services.adjudication`, and every refusal is a sentence
beside its field. Each test works on a new QFS patient at screening (a copy of the enrolled one's screening and
prior immunotherapy), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).parent))
import world

from abscopal.protocol import resistance
from abscopal.protocol.model import load_bundled
from abscopal.services import enrolment
from abscopal.services.common import Actor, StaffRole
from abscopal.store.tables import audit_log
from abscopal.store.unit_of_work import UnitOfWork

API = "/api/v1"
NEW = "QFS-900201"
PAGE = f"/patients/{NEW}/adjudication"


def screening_patient(clients: world.Clients, sid: str = NEW) -> None:
    """A new QFS patient at screening with the screening and prior immunotherapy of the enrolled one (via the API)."""
    coord = clients.shared("coordinator")
    source: dict[str, Any] = coord.get(f"{API}/patients/{world.QFS_PATIENT}").json()["data"]
    patient = {k: v for k, v in source.items() if k != "subject_id"}
    patient.update(status="screening", enrolment_date=None, death_date=None, death_cause=None,
                   withdrawal_date=None, new_therapy_date=None, last_contact_date=None, hospital_id=None)  # fmt: skip
    assert coord.post(f"{API}/patients?subject_id={sid}", json=patient).status_code == 201
    for slug in ("screening", "io-history"):
        listed = coord.get(f"{API}/patients/{world.QFS_PATIENT}/{slug}").json()
        data = {k: v for k, v in listed[0]["data"].items() if k != "subject_id"}
        assert coord.post(f"{API}/patients/{sid}/{slug}", json=data).status_code == 201


def text_of(response: Any) -> str:
    """The page's main content as plain text (tags dropped, entities decoded, spaces collapsed)."""
    main = str(response.text).split('<main id="main">', 1)[-1]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", main)))


def field_error(response: Any, control: str) -> str:
    """The sentence shown beside a control (its ``<p class="field-error" id="<control>-error">``)."""
    found = re.search(rf'<p class="field-error" id="{control}-error">([^<]+)</p>', response.text)
    assert found, f"no error beside #{control}: {text_of(response)[:1500]}"
    return html.unescape(found.group(1))


def hidden(response: Any, name: str, form: str) -> str:
    part = response.text.split(f'id="{form}"', 1)[1]
    found = re.search(rf'name="{name}" value="([^"]*)"', part)
    assert found, f"no hidden {name} in #{form}"
    return found.group(1)


def propose(c: Any, classification: str = "primary") -> Any:
    return c.post(f"{PAGE}/propose", data={"classification": classification})


def sign(c: Any, password: str = world.PASSWORD) -> Any:
    page = c.get(PAGE)
    assert page.status_code == 200, text_of(page)
    form = {"adjudication_id": hidden(page, "adjudication_id", "sign-form"),
            "version": hidden(page, "version", "sign-form"), "password": password}  # fmt: skip
    return c.post(f"{PAGE}/sign", data=form)


def stored(db: Any) -> Any:
    with UnitOfWork(db.engine, "test", "read") as uow:
        found = uow.adjudications.for_subject(NEW)
        return max(found, key=lambda s: s.value.proposed_at) if found else None


@pytest.fixture
def world_new(fresh_client: world.Clients, fresh_web_db: Any) -> tuple[world.Clients, Any]:
    screening_patient(fresh_client)
    return fresh_client, fresh_web_db


def test_the_page_shows_the_engines_classification_and_the_rule_that_applied(
    world_new: tuple[world.Clients, Any],
) -> None:
    clients, db = world_new
    page = clients.session("coordinator").get(PAGE)
    assert page.status_code == 200, text_of(page)
    with UnitOfWork(db.engine, "test", "read") as uow:
        (history,) = uow.immunotherapy_histories.for_subject(NEW)
    expected = resistance.classify(history.value, load_bundled().version_on(dt.date.today()).resistance)
    shown = text_of(page)
    assert f'data-class="{expected.classification.value}"' in page.text
    reasons = re.findall(r"<li>([^<]+)</li>", page.text.split('id="rule-reasons"', 1)[1].split("</ol>", 1)[0])
    assert [html.unescape(r) for r in reasons] == list(expected.reasons)
    assert expected.exposure_days is not None and f"{expected.exposure_days} days from the first" in shown
    assert history.value.agent in shown and str(history.value.progression_confirmed_date) in shown
    assert "Enrolment is refused until both deputy chief physicians have signed." in shown


def test_a_zh_hans_user_sees_the_rule_that_applied_and_why_enrolment_is_refused_in_chinese(
    world_new: tuple[world.Clients, Any],
) -> None:
    from abscopal.web.i18n import translate

    clients, db = world_new
    c = clients.login("coordinator")
    assert c.post("/language", data={"language": "zh_Hans", "next": "/", "csrf_token": c.csrf}).status_code == 303
    page = c.get(PAGE)
    assert page.status_code == 200, text_of(page)
    with UnitOfWork(db.engine, "test", "read") as uow:
        (history,) = uow.immunotherapy_histories.for_subject(NEW)
    expected = resistance.classify(history.value, load_bundled().version_on(dt.date.today()).resistance)
    section = page.text.split('id="rule-reasons"', 1)[1].split("</ol>", 1)[0]
    shown = [html.unescape(r) for r in re.findall(r"<li>([^<]+)</li>", section)]
    assert shown == [translate("zh_Hans", r) for r in expected.reasons]
    assert all(zh != str(en) for zh, en in zip(shown, expected.reasons, strict=True))  # none left in English
    refused = page.text.split('id="enrolment-reasons"', 1)[1].split("</ul>", 1)[0]
    assert "免疫治疗耐药尚未判定" in html.unescape(refused)  # "Immunotherapy resistance has not been adjudicated"


def test_a_patient_without_prior_immunotherapy_is_told_what_to_record_first(client: world.Clients) -> None:
    page = client.session("coordinator").get(f"/patients/{world.JNC_PATIENT}/adjudication")
    assert page.status_code == 404  # another site's patient for a QFS coordinator
    page = client.session("coordinator2").get(f"/patients/{world.JNC_PATIENT}/adjudication")
    assert page.status_code == 200
    assert "No prior immunotherapy is recorded" in text_of(page)
    assert f'href="/patients/{world.JNC_PATIENT}/io-history/new"' in page.text


def test_a_proposal_without_a_classification_is_refused_beside_the_field(
    world_new: tuple[world.Clients, Any],
) -> None:
    clients, db = world_new
    refused = propose(clients.session("coordinator"), classification="")
    assert refused.status_code == 422
    assert field_error(refused, "classification") == "Choose the classification you propose."
    assert stored(db) is None


def test_the_proposal_lands_through_the_service_and_is_audited(world_new: tuple[world.Clients, Any]) -> None:
    clients, db = world_new
    r = propose(clients.session("coordinator"))
    assert r.status_code == 303 and r.headers["location"].endswith("?notice=proposed")
    adj = stored(db)
    assert adj is not None and adj.value.proposed_by == "coordinator" and adj.value.classification.value == "primary"
    with db.engine.connect() as conn:
        who = conn.execute(
            select(audit_log.c.username, audit_log.c.reason).where(
                audit_log.c.entity == "adjudications", audit_log.c.entity_key == adj.id
            )
        ).first()
    assert who is not None and who.username == "coordinator" and who.reason == "resistance adjudication proposed"


def test_the_proposers_signature_is_refused_with_a_sentence_even_as_a_deputy_chief_physician(
    world_new: tuple[world.Clients, Any],
) -> None:
    clients, db = world_new
    admin = clients.shared("admin")
    new_user = {"username": "switcher", "full_name": "Test Switcher", "password": world.PASSWORD,
                "memberships": [{"site": world.QFS, "role": "coordinator"}]}  # fmt: skip
    assert admin.post(f"{API}/users", json=new_user).status_code == 201
    switcher = clients.session("switcher")
    assert propose(switcher).status_code == 303
    dcp = {"memberships": [{"site": world.QFS, "role": "deputy_chief_physician"}], "reason": "now a deputy chief"}
    assert admin.put(f"{API}/users/switcher/memberships", json=dcp).status_code == 200
    refused = sign(clients.session("switcher"))
    assert refused.status_code == 403
    assert "proposed this adjudication" in field_error(refused, "adj-password")
    adj = stored(db)
    assert adj is not None and adj.value.signatures == ()
    with db.engine.connect() as conn:
        audited = conn.execute(
            select(func.count()).where(
                audit_log.c.entity == "security", audit_log.c.entity_key == "switcher", audit_log.c.field == "refused"
            )
        ).scalar_one()
    assert audited >= 1


def test_the_same_deputy_chief_physician_cannot_sign_twice(world_new: tuple[world.Clients, Any]) -> None:
    clients, db = world_new
    assert propose(clients.session("coordinator")).status_code == 303
    dcp1 = clients.session("dcp1")
    assert sign(dcp1).status_code == 303
    again = sign(dcp1)
    assert again.status_code == 403
    assert "already signed" in field_error(again, "adj-password")
    adj = stored(db)
    assert adj is not None and [s.username for s in adj.value.signatures] == ["dcp1"]


def test_a_wrong_password_signs_nothing_and_says_so_beside_the_password(
    world_new: tuple[world.Clients, Any],
) -> None:
    clients, db = world_new
    assert propose(clients.session("coordinator")).status_code == 303
    refused = sign(clients.session("dcp1"), password="not my password at all")
    assert refused.status_code == 422
    assert field_error(refused, "adj-password") == "the password is wrong; nothing was signed"
    empty = sign(clients.session("dcp1"), password="")
    assert empty.status_code == 422 and "Type your password again" in field_error(empty, "adj-password")
    adj = stored(db)
    assert adj is not None and adj.value.signatures == ()


def test_two_distinct_deputy_chief_physicians_complete_it_and_enrolment_no_longer_refuses_for_it(
    world_new: tuple[world.Clients, Any],
) -> None:
    clients, db = world_new
    dm = Actor("datamanager", "Test Datamanager", StaffRole.DATA_MANAGER, frozenset({world.QFS}))

    def reasons() -> list[str]:
        with UnitOfWork(db.engine, "datamanager", "read") as uow:
            return enrolment.eligibility_of(uow, dm, NEW)[1]

    assert propose(clients.session("coordinator")).status_code == 303
    assert any("signatures" in r for r in reasons())
    assert sign(clients.session("dcp1")).status_code == 303
    half = clients.session("coordinator").get(PAGE)
    assert "1 of the 2 required" in text_of(half)
    assert "Enrolment is refused until both deputy chief physicians have signed." in text_of(half)
    assert sign(clients.session("dcp2")).status_code == 303
    adj = stored(db)
    assert adj is not None and [s.username for s in adj.value.signatures] == ["dcp1", "dcp2"]
    rules = load_bundled().version_on(dt.date.today()).resistance
    assert resistance.is_effective(adj.value, rules)
    assert not any("signature" in r or "adjudicat" in r for r in reasons()), reasons()
    page = clients.session("coordinator").get(PAGE)
    shown = text_of(page)
    assert "The adjudication is complete" in shown and "Enrolment is refused until" not in shown
    for name in ("dcp1", "dcp2"):
        assert f"Signed by {world.full_name(name)} ({name}), meaning “adjudicated”" in shown
    assert 'id="sign-form"' not in page.text and 'id="propose-form"' not in page.text


def test_a_patients_own_account_does_not_see_the_adjudication(client: world.Clients) -> None:
    own = world.SUBJECT_OF["patient"]
    assert client.session("patient").get(f"/patients/{own}/adjudication").status_code == 404
