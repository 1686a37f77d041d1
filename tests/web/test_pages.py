"""The shell pages (web.md §8): each renders for the roles allowed, refuses the others, and its forms go through
the services with the version they were based on (web.md §3). Every client here signs in through the login form.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))
import world

from abscopal.store.tables import ENTITIES

HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)"')


def form_login(clients: world.Clients, username: str) -> Any:
    """A client signed in through the login page (its CSRF cookie and hidden field), as a browser does."""
    c = clients.anonymous()
    page = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    response = c.post(
        "/login", data={"csrf_token": token.group(1), "username": username, "password": world.PASSWORD, "next": "/"}
    )
    assert response.status_code == 303, response.text
    home = c.get("/")
    meta = re.search(r'<meta name="csrf-token" content="([^"]+)">', home.text)
    assert meta is not None
    c.csrf = meta.group(1)
    return c


_clients: dict[tuple[int, str], Any] = {}


def user(clients: world.Clients, username: str) -> Any:
    key = (id(clients), username)
    if key not in _clients:
        _clients[key] = form_login(clients, username)
    return _clients[key]


def main_of(response: Any) -> str:
    """The page's main content (for assertion messages)."""
    text = str(response.text)
    return f"{response.status_code}: " + (text.split('<main id="main">', 1)[-1][:1500])


def hidden(html: str) -> dict[str, str]:
    return dict(HIDDEN.findall(html))


def first_id(db: Any, entity: str, subject_id: str = world.QFS_PATIENT) -> str:
    table = ENTITIES[entity].table
    with db.engine.connect() as conn:
        found = conn.execute(
            select(table.c.id)
            .where(table.c.subject_id == subject_id, table.c.removed_reason.is_(None))
            .order_by(table.c.id)
            .limit(1)
        ).scalar_one()
    return str(found)


def assert_no_inline(html: str) -> None:
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline <script> block"
    assert not re.search(r"\sstyle\s*=", html), "a style= attribute"
    assert not re.search(r"\son[a-z]+\s*=", html), "an inline event handler"
    assert "<style" not in html, "a <style> block"


# --- pages render for the roles allowed


@pytest.mark.parametrize(
    ("username", "path"),
    [
        ("coordinator", "/"),
        ("admin", "/"),
        ("patient", "/"),
        ("coordinator", "/patients"),
        ("statistician", "/patients"),
        ("coordinator", f"/patients/{world.QFS_PATIENT}"),
        ("statistician", f"/patients/{world.QFS_PATIENT}"),
        ("coordinator", "/queries"),
        ("datamanager", "/queries"),
        ("monitor", "/audit"),
        ("admin", "/admin/users"),
        ("admin", "/admin/users/new"),
        ("admin", "/admin/users/coordinator"),
        ("admin", "/admin/sites"),
        ("coordinator", "/profile"),
        ("admin", "/profile"),
    ],
)
def test_each_page_renders_for_a_role_allowed_to_open_it(client: world.Clients, username: str, path: str) -> None:
    response = user(client, username).get(path)
    assert response.status_code == 200, main_of(response)
    assert "<main" in response.text
    assert_no_inline(response.text)


def record_path(db: Any, slug: str, entity: str) -> str:
    return f"/patients/{world.QFS_PATIENT}/{slug}/{first_id(db, entity)}"


def post(c: Any, path: str, data: dict[str, str], **headers: str) -> Any:
    return c.post(path, data={"csrf_token": c.csrf, **data}, headers=headers)


def edit_form(c: Any, path: str) -> dict[str, str]:
    """The edit form's current values as a browser would send them back (hidden, text, selected, checked)."""
    page = c.get(f"{path}/edit").text
    html = page.split('class="record-form"', 1)[1].split("</form>", 1)[0]
    values = hidden(html)
    for name, value in re.findall(
        r'<input type="(?:text|number|date|datetime-local)"[^>]*name="(\w+)" value="([^"]*)"',
        html.replace('step="1" ', "").replace('step="any" ', ""),
    ):
        values[name] = value
    for name, body in re.findall(r'<select id="f-\w+" name="(\w+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', body)
        values[name] = chosen.group(1) if chosen else ""
    for name in re.findall(r'<input type="checkbox" id="f-\w+" name="(\w+)" checked', html):
        values[name] = "on"
    values.pop("csrf_token", None)
    return values


@pytest.mark.parametrize(
    ("username", "slug", "entity", "suffix"),
    [
        ("coordinator", "io-cycles", "immunotherapy_cycles", ""),
        ("statistician", "lesions", "lesions", ""),
        ("coordinator", "io-cycles", "immunotherapy_cycles", "/edit"),
        ("radiologist", "assessments", "tumour_assessments", "/edit"),
        ("monitor", "lesions", "lesions", "/history"),
    ],
)
def test_record_pages_render_for_a_role_allowed_to_open_them(
    client: world.Clients, web_db: Any, username: str, slug: str, entity: str, suffix: str
) -> None:
    response = user(client, username).get(record_path(web_db, slug, entity) + suffix)
    assert response.status_code == 200, main_of(response)
    assert_no_inline(response.text)


def test_the_new_record_form_renders_for_the_role_that_writes_it(client: world.Clients) -> None:
    response = user(client, "radonc").get(f"/patients/{world.QFS_PATIENT}/fractions/new")
    assert response.status_code == 200
    assert 'type="date"' in response.text and 'step="any"' in response.text
    assert 'name="version"' not in response.text and 'name="reason"' not in response.text
    assert_no_inline(response.text)


@pytest.mark.parametrize(
    ("username", "path"),
    [
        ("coordinator", "/audit"),
        ("coordinator", "/admin/users"),
        ("monitor", "/admin/sites"),
        ("admin", "/patients"),
        ("admin", f"/patients/{world.QFS_PATIENT}"),
        ("radiologist", f"/patients/{world.QFS_PATIENT}/io-cycles/new"),
    ],
)
def test_a_role_not_allowed_to_open_a_page_is_refused_with_403(client: world.Clients, username: str, path: str) -> None:
    response = user(client, username).get(path)
    assert response.status_code == 403
    assert "<main" in response.text


def test_another_sites_patient_and_its_records_are_not_found(client: world.Clients, web_db: Any) -> None:
    c = user(client, "coordinator2")
    assert c.get(f"/patients/{world.QFS_PATIENT}").status_code == 404
    assert c.get(record_path(web_db, "io-cycles", "immunotherapy_cycles")).status_code == 404
    assert c.get(record_path(web_db, "io-cycles", "immunotherapy_cycles") + "/edit").status_code == 404
    assert c.get(f"/patients/{world.JNC_PATIENT}").status_code == 200


def test_the_patient_list_searches_by_subject_id(client: world.Clients) -> None:
    html = user(client, "coordinator").get("/patients", params={"q": world.QFS_PATIENT[-3:]}).text
    assert f">{world.QFS_PATIENT}</a>" in html
    assert "QFS-000001</a>" not in html
    assert world.JNC_PATIENT not in html


def test_the_patient_list_filters_by_status_and_site(client: world.Clients) -> None:
    c = user(client, "coordinator")
    screening = c.get("/patients", params={"status": "screening"}).text
    assert f">{world.QFS_PATIENT}</a>" not in screening  # on treatment
    treated = c.get("/patients", params={"status": "on_treatment", "site": world.QFS}).text
    assert f">{world.QFS_PATIENT}</a>" in treated
    assert "No patient matches" in c.get("/patients", params={"site": world.JNC}).text  # not one of its sites


def test_the_filter_form_updates_only_the_table_for_htmx(client: world.Clients) -> None:
    page = user(client, "coordinator").get("/patients")
    assert 'hx-get="/patients"' in page.text and 'hx-target="#patient-table"' in page.text
    assert 'hx-push-url="true"' in page.text
    fragment = user(client, "coordinator").get(
        "/patients", params={"q": "000003"}, headers={"HX-Request": "true", "HX-Target": "patient-table"}
    )
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="patient-table"')
    assert "<html" not in fragment.text and world.QFS_PATIENT in fragment.text


def test_the_statistician_sees_no_birth_date_or_hospital_id(client: world.Clients) -> None:
    html = user(client, "statistician").get(f"/patients/{world.QFS_PATIENT}").text
    assert "Birth year" in html
    assert "Birth date" not in html and "Hospital ID" not in html
    assert "Birth date" in user(client, "coordinator").get(f"/patients/{world.QFS_PATIENT}").text


def test_a_patient_user_sees_only_its_own_questionnaires(client: world.Clients, web_db: Any) -> None:
    c = user(client, "patient")
    redirect = c.get("/patients")
    assert redirect.status_code == 303 and redirect.headers["location"] == f"/patients/{world.QFS_PATIENT}"
    html = c.get(f"/patients/{world.QFS_PATIENT}").text
    assert 'id="questionnaires"' in html
    assert 'id="lesions"' not in html and 'id="io-cycles"' not in html and "Birth date" not in html
    assert c.get(record_path(web_db, "lesions", "lesions")).status_code == 404
    assert c.get(f"/patients/{world.JNC_PATIENT}").status_code == 404
    assert c.get("/queries").status_code == 303


def test_an_edit_with_the_right_version_saves_and_the_history_shows_the_reason(
    client: world.Clients, web_db: Any
) -> None:
    path = record_path(web_db, "io-cycles", "immunotherapy_cycles")
    c = user(client, "coordinator")
    form = edit_form(c, path)
    form.update(route="subcutaneous", reason="route corrected from the infusion record")
    response = post(c, f"{path}/edit", form)
    assert response.status_code == 303, main_of(response)
    assert response.headers["location"] == f"{path}?notice=saved"
    page = c.get(response.headers["location"]).text
    assert "Saved." in page and "subcutaneous" in page
    history = user(client, "monitor").get(f"{path}/history").text
    assert "route corrected from the infusion record" in history and "subcutaneous" in history


def test_a_stale_version_is_refused_with_409_and_shows_their_value_beside_yours(
    client: world.Clients, web_db: Any
) -> None:
    path = record_path(web_db, "lesions", "lesions")
    mine, theirs = user(client, "radiologist"), user(client, "investigator")
    stale = edit_form(mine, path)
    first = edit_form(theirs, path)
    first.update(location="left upper lobe, apical segment", reason="location from the CT report")
    assert post(theirs, f"{path}/edit", first).status_code == 303
    stale.update(location="right lower lobe", reason="my correction")
    response = post(mine, f"{path}/edit", stale)
    assert response.status_code == 409
    assert "investigator" in response.text and "location" in response.text
    assert 'class="theirs">left upper lobe, apical segment<' in response.text
    assert 'class="yours">right lower lobe<' in response.text
    assert "right lower lobe" not in user(client, "radiologist").get(path).text  # nothing was saved


def test_a_locked_records_edit_is_refused_with_who_locked_it_and_when(client: world.Clients, web_db: Any) -> None:
    path = record_path(web_db, "rt-courses", "radiotherapy_courses")
    locked = post(user(client, "datamanager"), f"{path}/lock", {"reason": "cleaned for the interim analysis"})
    assert locked.status_code == 303, locked.text[:1000]
    c = user(client, "radonc")
    form = edit_form(c, path)
    assert "This record is locked" in c.get(f"{path}/edit").text
    form.update(plan_label="changed", reason="try to change a locked record")
    response = post(c, f"{path}/edit", form)
    assert response.status_code == 423
    assert "by datamanager at " in response.text and "cleaned for the interim analysis" in response.text
    assert "changed" not in user(client, "radonc").get(path).text.split("Plan label", 1)[1][:80]


def test_the_reason_is_required_on_an_edit(client: world.Clients, web_db: Any) -> None:
    path = record_path(web_db, "io-cycles", "immunotherapy_cycles")
    c = user(client, "investigator")
    form = edit_form(c, path)
    form.update(agent="another agent", reason="  ")
    response = post(c, f"{path}/edit", form)
    assert response.status_code == 422
    assert 'id="f-reason-error"' in response.text and "needs a reason" in response.text
    assert "another agent" not in c.get(path).text


def test_a_validation_error_is_shown_beside_the_field_it_names(client: world.Clients, web_db: Any) -> None:
    path = record_path(web_db, "io-cycles", "immunotherapy_cycles")
    c = user(client, "investigator")
    form = edit_form(c, path)
    form.update(cycle_number="many", reason="typo")
    response = post(c, f"{path}/edit", form)
    assert response.status_code == 422
    assert re.search(r'<p class="field-error" id="f-cycle_number-error">[^<]*integer', response.text)
    assert 'id="f-cycle_number" name="cycle_number" value="many"' in response.text  # what you typed is kept


def test_a_new_record_without_its_required_fields_names_them(client: world.Clients) -> None:
    c = user(client, "radonc")
    response = post(c, f"/patients/{world.QFS_PATIENT}/fractions/new", {"lesion_id": "L1"})
    assert response.status_code == 422
    assert 'id="f-fraction_number-error"' in response.text and 'id="f-date-error"' in response.text


def test_the_monitor_marks_a_record_verified_with_its_version(client: world.Clients, web_db: Any) -> None:
    path = record_path(web_db, "fractions", "fractions")
    c = user(client, "monitor")
    version = hidden(c.get(path).text)["version"]
    response = post(c, f"{path}/sdv", {"version": version})
    assert response.status_code == 303, main_of(response)
    page = c.get(path).text
    assert "Verified against the source by monitor" in page and 'class="badge verified"' in page


def test_a_wrong_password_signs_nothing_and_the_right_one_shows_the_full_name(
    client: world.Clients, web_db: Any
) -> None:
    path = record_path(web_db, "adverse-events", "adverse_events")
    c = user(client, "investigator")
    version = hidden(c.get(path).text)["version"]
    wrong = post(c, f"{path}/sign", {"version": version, "meaning": "reviewed", "password": "not my password"})
    assert wrong.status_code == 422 and "nothing was signed" in wrong.text
    right = post(c, f"{path}/sign", {"version": version, "meaning": "reviewed", "password": world.PASSWORD})
    assert right.status_code == 303, right.text[:500]
    page = c.get(path).text
    assert f"Signed by {world.full_name('investigator')} (investigator), meaning “reviewed”" in page


def test_a_query_raised_on_a_field_is_answered_in_the_inbox_with_htmx(client: world.Clients, web_db: Any) -> None:
    path = record_path(web_db, "assessments", "tumour_assessments")
    raised = post(user(client, "datamanager"), f"{path}/query", {"field": "method", "text": "Which scanner was used?"})
    assert raised.status_code == 303, raised.text[:500]
    assert "Which scanner was used?" in user(client, "datamanager").get(path).text
    c = user(client, "coordinator")
    inbox = c.get("/queries").text
    assert "Which scanner was used?" in inbox
    row = re.search(r'<tr id="query-(\w+)">(?:(?!</tr>).)*Which scanner was used\?', inbox, re.S)
    assert row is not None
    query_id = row.group(1)
    version = re.search(rf'/queries/{query_id}/answer".*?name="version" value="(\d+)"', inbox, re.S)
    assert version is not None
    answered = c.post(
        f"/queries/{query_id}/answer", data={"version": version.group(1), "answer": "The site's CT, 1 mm slices"},
        headers={"HX-Request": "true", "X-CSRF-Token": c.csrf},
    )  # fmt: skip
    assert answered.status_code == 200
    assert answered.text.lstrip().startswith(f'<tr id="query-{query_id}">')
    assert "The site&#39;s CT, 1 mm slices" in answered.text and "answered" in answered.text
    closed = post(
        user(client, "datamanager"), f"/queries/{query_id}/close", {"version": str(int(version.group(1)) + 1)}
    )
    assert closed.status_code == 303


def test_the_admin_dashboard_shows_counts_of_users_and_sites_only(client: world.Clients) -> None:
    html = user(client, "admin").get("/").text
    assert "accounts" in html and "sites" in html
    assert "Patients by status" not in html and world.QFS_PATIENT not in html
    staff = user(client, "coordinator").get("/").text
    assert "Patients by status" in staff and "Open queries by age" in staff


def test_the_admin_adds_a_site_and_an_account_with_a_role_there(client: world.Clients) -> None:
    c = user(client, "admin")
    site = post(c, "/admin/sites", {"code": "SDU", "name": "Shandong test", "country": "CN", "time_zone": ""})
    assert site.status_code == 303
    assert "Shandong test" in c.get("/admin/sites").text
    bad = post(c, "/admin/users/new", {"username": "newcrc", "full_name": "New CRC", "password": "short",
                                      "site": "SDU", "role": "coordinator", "language": "en"})  # fmt: skip
    assert bad.status_code == 422 and 'id="password-error"' in bad.text and "12 characters" in bad.text
    made = post(c, "/admin/users/new", {"username": "newcrc", "full_name": "New CRC", "password": world.PASSWORD,
                                       "site": "SDU", "role": "coordinator", "language": "en"})  # fmt: skip
    assert made.status_code == 303
    page = c.get("/admin/users/newcrc").text
    assert 'name="role:SDU"' in page and '<option value="coordinator" selected>' in page
    no_reason = post(c, "/admin/users/newcrc", {"what": "disable", "reason": ""})
    assert no_reason.status_code == 422 and 'id="disable_reason-error"' in no_reason.text
    assert post(c, "/admin/users/newcrc", {"what": "disable", "reason": "left the team"}).status_code == 303
    assert "disabled" in c.get("/admin/users/newcrc").text


def test_a_personal_token_is_shown_once_and_can_be_revoked(client: world.Clients) -> None:
    c = user(client, "radiologist")
    created = post(c, "/profile/tokens", {"name": "nightly export", "expires_on": ""})
    assert created.status_code == 200
    secret = re.search(r'id="secret" class="secret" readonly value="(abs_[^"]+)"', created.text)
    assert secret is not None
    profile = c.get("/profile").text
    assert "nightly export" in profile and secret.group(1) not in profile
    token_id = re.search(r"/profile/tokens/(\w+)/revoke", profile)
    assert token_id is not None
    assert post(c, f"/profile/tokens/{token_id.group(1)}/revoke", {}).status_code == 303
    assert "revoked" in c.get("/profile").text


def test_a_password_change_needs_the_current_password(client: world.Clients) -> None:
    c = user(client, "dcp1")
    wrong = post(c, "/profile/password", {"current_password": "nope", "new_password": "x" * 13,
                                          "new_password_again": "x" * 13})  # fmt: skip
    assert wrong.status_code == 422 and 'id="current_password-error"' in wrong.text
    weak = post(c, "/profile/password", {"current_password": world.PASSWORD, "new_password": "short",
                                         "new_password_again": "short"})  # fmt: skip
    assert weak.status_code == 422 and 'id="new_password-error"' in weak.text


def test_switching_the_language_is_saved_on_the_account(fresh_client: world.Clients, fresh_web_db: Any) -> None:
    from abscopal.store.tables import accounts

    c = form_login(fresh_client, "dcp2")
    assert '<html lang="en">' in c.get("/").text
    response = post(c, "/profile/language", {"language": "zh_Hans"})
    assert response.status_code == 303 and response.headers["location"] == "/profile?notice=language"
    with fresh_web_db.engine.connect() as conn:
        language = conn.execute(select(accounts.c.language).where(accounts.c.username == "dcp2")).scalar_one()
    assert language == "zh_Hans"


def test_switching_the_language_changes_the_html_lang(fresh_client: world.Clients) -> None:
    c = form_login(fresh_client, "dcp2")
    assert '<html lang="en">' in c.get("/").text
    assert post(c, "/profile/language", {"language": "zh_Hans"}).status_code == 303
    assert '<html lang="zh-Hans">' in c.get("/").text


def test_the_patient_page_shows_one_row_per_questionnaire_not_one_per_item(client: world.Clients, web_db: Any) -> None:
    answers = ENTITIES["questionnaire_answers"].table
    with web_db.engine.connect() as conn:
        found = conn.execute(
            select(answers.c.visit, answers.c.instrument).where(
                answers.c.subject_id == world.QFS_PATIENT, answers.c.removed_reason.is_(None)
            )
        ).all()
    questionnaires = {(v, i) for v, i in found}
    assert len(found) > len(questionnaires) > 0  # items outnumber questionnaires in the synthetic cohort
    page = client.shared("investigator").get(f"/patients/{world.QFS_PATIENT}").text
    section = page[page.index('id="questionnaires"') : page.index("</section>", page.index('id="questionnaires"'))]
    assert section.count('<th scope="row">') == len(questionnaires)


def test_times_are_shown_in_the_time_zone_of_the_users_site(fresh_web_db: Any, make_app: Any) -> None:
    import dataclasses

    from abscopal.store.unit_of_work import UnitOfWork

    with UnitOfWork(fresh_web_db.engine, "admin", "JNC moved to London for this test") as uow:
        site = uow.sites.find(code=world.JNC)
        assert site is not None
        uow.sites.update(site.id, dataclasses.replace(site.value, time_zone="Europe/London"), version=site.version)
        uow.commit()
    clients = world.Clients(make_app(fresh_web_db.url))
    try:
        assert "Europe/London" in clients.login("coordinator2").get("/").text
        assert "Asia/Shanghai" in clients.login("coordinator").get("/").text
    finally:
        clients.close()


# --- how a page reads


def test_a_pages_reads_run_in_autocommit_on_postgresql_and_still_cannot_write(app: Any, web_db: Any) -> None:
    from sqlalchemy import text

    from abscopal.errors import AbscopalError

    state = app.state.web
    with state.read() as conn:
        conn.execute(text("SELECT 1"))
        driver = conn.connection.driver_connection
        if web_db.backend == "postgresql":
            assert driver.autocommit and driver.info.transaction_status.name == "IDLE"  # no BEGIN was sent
        else:
            assert driver.in_transaction  # SQLite's reads keep their snapshot transaction
    with pytest.raises(AbscopalError), state.read() as conn:
        conn.execute(text("CREATE TABLE page_write (a integer)"))  # read-only: the page's reads never write
    with web_db.engine.connect() as conn:
        assert "page_write" not in conn.dialect.get_table_names(conn)
    with state.read_engine.connect() as conn:  # the exports' engine keeps its transactions (server-side cursors)
        assert not getattr(conn.connection.driver_connection, "autocommit", False)


def test_a_questionnaires_row_is_locked_when_one_item_is_and_counts_the_items_open_queries(
    fresh_client: world.Clients, fresh_web_db: Any
) -> None:
    answers = ENTITIES["questionnaire_answers"].table
    with fresh_web_db.engine.connect() as conn:
        rows = conn.execute(
            select(answers.c.id, answers.c.visit, answers.c.instrument, answers.c.answer)
            .where(answers.c.subject_id == world.QFS_PATIENT, answers.c.removed_reason.is_(None))
            .order_by(answers.c.id)
        ).all()
    visit, instrument = rows[0].visit, rows[0].instrument
    items = [r for r in rows if (r.visit, r.instrument) == (visit, instrument)]
    base = f"/patients/{world.QFS_PATIENT}/questionnaires"
    dm = user(fresh_client, "datamanager")
    assert post(dm, f"{base}/{items[-1].id}/lock", {"reason": "checked against the paper form"}).status_code == 303
    for item in items[:2]:
        raised = post(dm, f"{base}/{item.id}/query", {"field": "answer", "text": "Is this the patient's answer?"})
        assert raised.status_code == 303, raised.text[:500]
    page = user(fresh_client, "investigator").get(f"/patients/{world.QFS_PATIENT}").text
    section = page[page.index('id="questionnaires"') : page.index("</section>", page.index('id="questionnaires"'))]
    answered = sum(1 for r in items if r.answer is not None)
    row = re.search(
        rf'<th scope="row"><a href="{base}/{items[0].id}">{visit} · {instrument} · {answered}/{len(items)}</a></th>'
        r'<td><span class="badge (\w+)">[^<]*</span></td><td>(\d+)</td>',
        section,
    )
    assert row is not None, section[:2000]
    assert row.groups() == ("locked", "2")
    others = re.findall(r'<td><span class="badge (\w+)">[^<]*</span></td><td>(\d+)</td>', section)
    assert others.count(("locked", "2")) == 1 and all(s in ("entered", "edited") for s, _ in others if s != "locked")


def test_the_databases_sum_of_a_patients_questionnaires_equals_the_item_by_item_sum(fresh_web_db: Any) -> None:
    """The patient page sums up unmarked questionnaires in SQL (``_grouped_questionnaires``); the rows must be what
    the item-by-item path (``_questionnaire_rows``) gives: same first item, label, state and version, same days."""
    import dataclasses

    from abscopal.store.records import Stored
    from abscopal.store.unit_of_work import UnitOfWork
    from abscopal.web.pages.patients import _grouped_questionnaires, _questionnaire_rows
    from abscopal.web.records import RESOURCES, PatientMarks

    table = ENTITIES["questionnaire_answers"].table
    corrected = first_id(fresh_web_db, "questionnaire_answers")
    with UnitOfWork(fresh_web_db.engine, "coordinator", "an answer corrected for this test") as uow:
        item = uow.answers.get(corrected)
        uow.answers.update(item.id, dataclasses.replace(item.value, answer=1), version=item.version)  # version 2
        uow.commit()
    res = next(r for r in RESOURCES.values() if r.entity == "questionnaire_answers")
    no_marks = PatientMarks({}, {}, {}, {}, {})
    with UnitOfWork(fresh_web_db.engine, "investigator", "read") as uow:
        grouped, days = _grouped_questionnaires(uow, table, world.QFS_PATIENT)
        rows = uow.execute(
            select(table).where(table.c.subject_id == world.QFS_PATIENT, table.c.removed_reason.is_(None))
            .order_by(table.c.id)
        ).all()  # fmt: skip
    one_by_one = _questionnaire_rows(
        res, ((Stored(r.id, r.version, None), r.visit, r.instrument, r.answer) for r in rows), no_marks, "patient"
    )

    def seen(out: Any) -> list[tuple[str, str, str, int]]:
        return [(r.record.id, r.label, r.state.status, r.version) for r in out]

    assert seen(grouped) == seen(one_by_one)
    assert "edited" in {r.state.status for r in grouped} and "entered" in {r.state.status for r in grouped}
    assert [d.completed_on for d in days] == sorted({r.completed_on for r in rows if r.completed_on is not None})


def test_a_patient_without_marks_is_read_in_one_statement_and_one_open_query_brings_the_marks(
    fresh_client: world.Clients, fresh_web_db: Any
) -> None:
    from sqlalchemy import event

    from abscopal.store.unit_of_work import UnitOfWork
    from abscopal.web.records import patient_marks

    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        statements.append(sql)

    answers = ENTITIES["questionnaire_answers"].table
    with fresh_web_db.engine.connect() as conn:
        item = conn.execute(
            select(answers.c.id).where(answers.c.subject_id == world.QFS_PATIENT).order_by(answers.c.id).limit(1)
        ).scalar_one()
    event.listen(fresh_web_db.engine, "before_cursor_execute", count)
    try:
        with UnitOfWork(fresh_web_db.engine, "test", "read") as uow:
            statements.clear()  # what opening the unit of work ran
            marks = patient_marks(uow, world.QFS_PATIENT)
        assert len(statements) == 1
        assert (marks.sdv, marks.signatures, marks.voided, marks.locks, marks.queries) == ({}, {}, {}, {}, {})
        dm = user(fresh_client, "datamanager")
        raised = post(
            dm, f"/patients/{world.QFS_PATIENT}/questionnaires/{item}/query",
            {"field": "answer", "text": "Is this the patient's answer?"},
        )  # fmt: skip
        assert raised.status_code == 303, raised.text[:500]
        with UnitOfWork(fresh_web_db.engine, "test", "read") as uow:
            marks = patient_marks(uow, world.QFS_PATIENT)
        assert marks.queries == {("questionnaire_answers", item): 1}
    finally:
        event.remove(fresh_web_db.engine, "before_cursor_execute", count)
