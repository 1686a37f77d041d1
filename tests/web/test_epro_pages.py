"""The ePRO pages (issue 12 item 8): each answer is stored as it is given, a partial questionnaire resumes at the
next unanswered item, the scores shown are the QoL engine's for the stored answers, a coordinator transcribes a
paper form with a reason, and a licensed site's wording file replaces the short labels.

Expected values are computed here from the stored records and the engines, never typed in.
"""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))
import world
from test_pages import assert_no_inline

from abscopal import domain as d
from abscopal.protocol.calendar import questionnaire_visit_codes
from abscopal.protocol.model import load_bundled
from abscopal.qol import ITEMS, score_answers
from abscopal.store.tables import audit_log
from abscopal.store.unit_of_work import UnitOfWork
from abscopal.web.i18n import gettext
from abscopal.web.pages.epro import WORDING_ENV, all_labels

S = world.QFS_PATIENT
EPRO = f"/patients/{S}/epro"
HTMX = {"hx-request": "true"}


def answers(db: Any, visit: str) -> dict[int, Any]:
    with UnitOfWork(db.engine, "test", "read") as uow:
        return {s.value.item: s for s in uow.answers.for_subject(S) if s.value.visit == visit}


def shown_item(page: str) -> int | None:
    found = re.search(r'<input type="hidden" name="item" value="(\d+)">', page)
    return int(found.group(1)) if found else None


def answer(c: Any, visit: str, item: int, value: int | None, **extra: str) -> Any:
    data = {"csrf_token": c.csrf, "item": str(item), **extra}
    data |= {"skip": "1"} if value is None else {"answer": str(value)}
    return c.post(f"{EPRO}/{visit}/answer", data=data, headers=HTMX)


def shown_scores(page: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-scale="(\w+)">.*?<td class="score">([^<]*)</td>', page, re.S))


def test_the_patients_start_page_opens_their_own_questionnaires(client: world.Clients) -> None:
    response = client.shared("patient").get("/epro")
    assert response.status_code == 303 and response.headers["location"] == EPRO


def test_staff_on_the_start_page_are_told_where_paper_forms_go(client: world.Clients) -> None:
    page = client.shared("coordinator").get("/epro")
    assert page.status_code == 200 and "patient list" in page.text


def test_the_overview_offers_the_visit_after_the_last_answered_one(
    fresh_client: world.Clients, fresh_web_db: Any
) -> None:
    web_db = fresh_web_db
    page = fresh_client.login("patient").get(EPRO)
    assert page.status_code == 200
    assert_no_inline(page.text)
    with UnitOfWork(web_db.engine, "test", "read") as uow:
        visits = {s.value.visit for s in uow.answers.for_subject(S)}
    codes = questionnaire_visit_codes(load_bundled().current.schedule)
    last = max(codes.index(v) for v in visits)
    assert f"Next questionnaire: visit {codes[last + 1]}" in page.text


def test_another_patients_questionnaires_are_not_found_for_the_patient(client: world.Clients) -> None:
    assert client.shared("patient").get("/patients/QFS-000001/epro").status_code == 404
    assert client.shared("patient").get(f"/patients/{world.JNC_PATIENT}/epro/week_6").status_code == 404


def test_an_unknown_visit_is_not_found_with_a_sentence(client: world.Clients) -> None:
    page = client.shared("patient").get(f"{EPRO}/week_5")
    assert page.status_code == 404 and "not a visit of the protocol schedule" in html.unescape(page.text)


def test_each_answer_is_stored_as_it_is_given_and_the_next_item_follows(client: world.Clients, web_db: Any) -> None:
    c = client.shared("patient")
    visit = "week_18"
    first = c.get(f"{EPRO}/{visit}")
    assert first.status_code == 200 and shown_item(first.text) == 1
    assert_no_inline(first.text)
    response = answer(c, visit, 1, 2)
    assert response.status_code == 200
    assert shown_item(response.text) == 2
    stored = answers(web_db, visit)
    assert set(stored) == {1} and stored[1].value.answer == 2
    with web_db.engine.connect() as conn:
        who = conn.execute(
            select(audit_log.c.username).where(
                audit_log.c.entity == "questionnaire_answers", audit_log.c.entity_key == stored[1].id
            )
        ).scalars().all()  # fmt: skip
    assert set(who) == {"patient"}


def test_a_partial_questionnaire_resumes_at_the_next_unanswered_item(client: world.Clients, web_db: Any) -> None:
    c = client.shared("patient")
    visit = "week_24"
    for item, value in ((1, 1), (2, 3), (3, None)):  # item 3 skipped: a blank is an answer given
        assert answer(c, visit, item, value).status_code == 200
    assert set(answers(web_db, visit)) == {1, 2, 3} and answers(web_db, visit)[3].value.answer is None
    reopened = c.get(f"{EPRO}/{visit}")  # a new visit to the page, as after a dropped connection
    assert shown_item(reopened.text) == 4
    assert "3 of 43" in c.get(EPRO).text


def test_an_answer_outside_the_items_scale_is_refused_with_a_sentence(client: world.Clients, web_db: Any) -> None:
    response = answer(client.shared("patient"), "week_102", 1, 9)
    assert response.status_code == 422
    assert "Choose one of the answers" in response.text and shown_item(response.text) == 1
    assert answers(web_db, "week_102") == {}


def test_changing_an_earlier_answer_uses_its_version_and_a_stale_one_is_409(client: world.Clients, web_db: Any) -> None:
    c = client.shared("patient")
    visit = "week_48"
    assert answer(c, visit, 1, 1).status_code == 200
    back = c.get(f"{EPRO}/{visit}", params={"item": 1}).text
    assert shown_item(back) == 1 and 'aria-pressed="true"' in back
    version = re.search(r'name="version" value="(\d+)"', back)
    assert version
    assert answer(c, visit, 1, 4, version=version.group(1)).status_code == 200
    assert answers(web_db, visit)[1].value.answer == 4
    stale = answer(c, visit, 1, 2, version=version.group(1))
    assert stale.status_code == 409


def test_the_scores_shown_equal_the_qol_engines_for_the_stored_answers(client: world.Clients, web_db: Any) -> None:
    c = client.shared("patient")
    visit = "week_90"
    items = [i for i in ITEMS]
    for n, item in enumerate(items):
        value = None if n == 5 else item.low + (n % (item.high - item.low + 1))
        response = answer(c, visit, item.number, value)
        assert response.status_code == 200, response.text
    assert "the questionnaire is complete" in response.text
    stored = [s.value for s in answers(web_db, visit).values()]
    expected = {s.scale: "—" if s.score is None else f"{s.score:.1f}" for s in score_answers(stored)}
    assert shown_scores(response.text) == expected
    assert shown_scores(c.get(f"{EPRO}/{visit}").text) == expected


def test_the_coordinators_transcription_needs_a_reason(client: world.Clients, web_db: Any) -> None:
    c = client.shared("coordinator")
    page = c.get(f"{EPRO}/transcribe", params={"visit": "week_84"})
    assert page.status_code == 200
    assert_no_inline(page.text)
    data = {"csrf_token": c.csrf, "visit": "week_84", "completed_on": "2026-11-30", "item_1": "2"}
    response = c.post(f"{EPRO}/transcribe", data=data)
    assert response.status_code == 422
    assert re.search(r'id="f-reason-error">[^<]*behalf', response.text)
    assert answers(web_db, "week_84") == {}


def test_a_transcribed_paper_form_is_stored_with_its_reason_and_scored(client: world.Clients, web_db: Any) -> None:
    c = client.shared("coordinator")
    visit = "week_96"
    data = {"csrf_token": c.csrf, "visit": visit, "completed_on": "2026-11-28", "reason": "paper form at the clinic"}
    data |= {f"item_{i.number}": str(i.high) for i in ITEMS}
    data["item_7"] = "blank"
    response = c.post(f"{EPRO}/transcribe", data=data)
    assert response.status_code == 303, response.text
    stored = answers(web_db, visit)
    assert len(stored) == len(ITEMS) and stored[7].value.answer is None
    with web_db.engine.connect() as conn:
        reasons = conn.execute(
            select(audit_log.c.reason).where(
                audit_log.c.entity == "questionnaire_answers", audit_log.c.entity_key == stored[1].id
            )
        ).scalars().all()  # fmt: skip
    assert reasons == ["paper form at the clinic"]
    page = c.get(f"{EPRO}/{visit}").text
    expected = {s.scale: "—" if s.score is None else f"{s.score:.1f}" for s in score_answers(
        s.value for s in stored.values())}  # fmt: skip
    assert shown_scores(page) == expected


def test_the_patient_cannot_use_the_transcription_page(client: world.Clients) -> None:
    response = client.shared("patient").get(f"{EPRO}/transcribe")
    assert response.status_code == 303 and response.headers["location"] == EPRO


def test_without_a_wording_file_the_item_shows_its_number_and_short_label(client: world.Clients) -> None:
    page = client.shared("patient").get(f"{EPRO}/week_102").text
    item = next(i for i in ITEMS if i.number == 1)
    assert "Item 1" in page and f'<span class="item-text">{html.escape(item.label)}</span>' in page


def test_a_licensed_sites_wording_file_replaces_the_short_label(
    client: world.Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = {"en": {"1": "FAKE LICENSED WORDING OF ITEM ONE"}, "options": {"en": {"4": {"1": "FAKE ANSWER ONE"}}}}
    path = tmp_path / "wording.json"
    path.write_text(json.dumps(fake), encoding="utf-8")
    monkeypatch.setenv(WORDING_ENV, str(path))
    page = client.shared("patient").get(f"{EPRO}/week_102").text
    assert '<span class="item-text">FAKE LICENSED WORDING OF ITEM ONE</span>' in page
    assert "FAKE ANSWER ONE" in page
    assert "(strenuous activity)" in page  # the short label stays beside it


def test_every_item_label_and_scale_name_has_a_chinese_translation() -> None:
    untranslated = [label for label in all_labels() if gettext("zh_Hans", label) == label]
    assert not untranslated


def test_the_epro_pages_render_in_chinese(client: world.Clients) -> None:
    c = client.login("patient")
    assert c.post("/language", data={"language": "zh_Hans", "next": "/", "csrf_token": c.csrf}).status_code == 303
    try:
        page = c.get(f"{EPRO}/week_102")
        assert page.status_code == 200 and '<html lang="zh-Hans">' in page.text
        assert gettext("zh_Hans", next(i for i in ITEMS if i.number == 1).label) in page.text
        assert "问卷" in c.get(EPRO).text
        assert d.Instrument.QLQ_C30.value in page.text
    finally:
        c.post("/language", data={"language": "en", "next": "/", "csrf_token": c.csrf})


def test_an_unreadable_wording_file_falls_back_to_the_short_labels(
    client: world.Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json", encoding="utf-8")
    monkeypatch.setenv(WORDING_ENV, str(path))
    page = client.shared("patient").get(f"{EPRO}/week_102")
    assert page.status_code == 200 and '<span class="item-text">strenuous activity</span>' in page.text


def test_without_javascript_an_answer_is_stored_and_the_page_moves_on(client: world.Clients, web_db: Any) -> None:
    c = client.shared("patient")
    visit = "week_78"
    response = c.post(f"{EPRO}/{visit}/answer", data={"csrf_token": c.csrf, "item": "1", "answer": "3"})
    assert response.status_code == 303 and response.headers["location"] == f"{EPRO}/{visit}"
    assert answers(web_db, visit)[1].value.answer == 3
    assert shown_item(c.get(f"{EPRO}/{visit}").text) == 2


def test_a_transcription_over_stored_answers_changes_them_with_the_versions_the_form_holds(
    client: world.Clients, web_db: Any
) -> None:
    c = client.shared("coordinator")
    visit = "week_72"  # answered by the synthetic cohort
    before = answers(web_db, visit)
    item = next(i for i in ITEMS if i.number == 2)
    new_value = item.low if before[2].value.answer != item.low else item.high
    page = c.get(f"{EPRO}/transcribe", params={"visit": visit}).text
    versions = dict(re.findall(r'name="v_(\d+)" value="(\d+)"', page))
    assert versions["2"] == str(before[2].version)
    data = {"csrf_token": c.csrf, "visit": visit, "completed_on": "2026-11-30", "reason": "corrected from paper"}
    without = c.post(f"{EPRO}/transcribe", data={**data, "item_2": str(new_value)})
    assert without.status_code == 422 and "send its version" in without.text
    response = c.post(f"{EPRO}/transcribe", data={**data, "item_2": str(new_value), "v_2": versions["2"]})
    assert response.status_code == 303, response.text
    assert answers(web_db, visit)[2].value.answer == new_value
