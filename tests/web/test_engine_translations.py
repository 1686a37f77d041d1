"""The engines' and the services' sentences on a zh_Hans user's pages (web.md §8): the eligibility checklist's
reasons, the radiotherapy rules and checks, the forms' validation errors are shown in Chinese with the values
filled in; an English user sees the engines' English sentences, character for character.

The Chinese text expected here is the catalog's (``abscopal.web.i18n.translate`` of the engine's own
:class:`~abscopal.messages.Message`), so a test checks the wiring, and tests/unit/test_engine_messages.py the
catalog.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import world
from sqlalchemy import select
from test_screening_pages import eligible_form, register

from abscopal.store.tables import ENTITIES

REASON = re.compile(
    r'<tr class="scr-\w+" data-criterion="(\w+)">.*?<td( lang="en")? class="scr-reason">(.*?)</td>', re.S
)


@contextmanager
def in_chinese(clients: world.Clients, username: str) -> Iterator[Any]:
    """A client of ``username`` whose language is zh_Hans; the account is switched back to English after."""
    c = clients.login(username)
    assert c.post("/language", data={"language": "zh_Hans", "next": "/", "csrf_token": c.csrf}).status_code == 303
    try:
        yield c
    finally:
        c.post("/language", data={"language": "en", "next": "/", "csrf_token": c.csrf})


def checklist_in_chinese(client: world.Clients, **overrides: str) -> Any:
    """The live checklist of a newly registered patient, for a zh_Hans coordinator, with ``overrides`` in the
    form of an eligible patient."""
    with in_chinese(client, "coordinator") as c:
        subject_id = register(c)
        return c.post(f"/patients/{subject_id}/screen/checklist", data=eligible_form(**overrides))


def refusal_on_page_and_api(clients: world.Clients, path: str, status: int) -> tuple[str, str]:
    """``path`` refused with ``status`` to a zh_Hans coordinator (the page's text) and ``/api/v1{path}`` to an
    English one (the problem's detail), each response's status checked."""
    with in_chinese(clients, "coordinator") as c:
        page = c.get(path)
    api = clients.session("coordinator").get(f"/api/v1{path}")
    assert (page.status_code, api.status_code) == (status, status)
    return html.unescape(page.text), str(api.json()["detail"])


def reasons_of(page: str) -> dict[str, tuple[bool, str]]:
    """criterion id -> (marked lang="en", reason text) as the checklist shows them."""
    return {cid: (bool(lang), html.unescape(text)) for cid, lang, text in REASON.findall(page)}


# --- the eligibility checklist


def test_a_zh_hans_user_sees_the_checklists_reasons_in_chinese_with_the_values_filled_in(
    client: world.Clients,
) -> None:
    with in_chinese(client, "coordinator") as c:
        subject_id = register(c)
        form = eligible_form(ecog="", severe_allergy_history="yes", **{"lab-ast-uln": ""})
        r = c.post(f"/patients/{subject_id}/screen/checklist", data=form)
    assert r.status_code == 200
    shown = reasons_of(r.text)
    assert shown["IN3"] == (False, "ECOG 体能状态 未记录：未知（缺少数据）")
    assert shown["IN5"] == (False, "严重过敏史 = 是：不符合")
    assert shown["IN8"] == (False, "临床资料 缺失（IN3、IN6、IN10）：不符合")
    assert "组织学类型 adenocarcinoma 属于 adenocarcinoma、large_cell_carcinoma" in shown["IN7"][1]
    assert "AST 30 U/L，未记录正常值上限" in shown["IN6"][1]
    assert "年龄 56 years，在 18-65 years 范围内" in shown["IN2"][1]


def test_a_comparison_of_numbers_names_its_check_in_chinese_and_keeps_the_numbers(client: world.Clients) -> None:
    r = checklist_in_chinese(client, ecog="3")
    assert reasons_of(r.text)["IN3"] == (False, "ECOG 体能状态 3 > 1：不符合")


def test_an_english_user_sees_the_checklists_reasons_as_the_engine_writes_them(client: world.Clients) -> None:
    c = client.login("coordinator")
    subject_id = register(c)
    r = c.post(f"/patients/{subject_id}/screen/checklist", data=eligible_form(ecog="", severe_allergy_history="yes"))
    shown = reasons_of(r.text)
    assert shown["IN3"] == (True, "ECOG performance status not recorded: unknown (data missing)")
    assert shown["IN5"] == (True, "History of severe allergy = yes: not met")


# --- the radiotherapy role rules, prescription checks and refusals

RT_BASE = f"/patients/{world.QFS_PATIENT}/radiotherapy"
RULE_TEXT = re.compile(r'<li class="rt-rule (?:ok|fail)" data-check="([a-z_.]+)">.*?</code>(.*?)</li>', re.S)


def rule_messages(page: str) -> dict[str, str]:
    """check code -> the rule's sentence as the page shows it (after the code and the lesion id, without the
    deviation class badge)."""
    return {
        check: html.unescape(re.sub(r"<[^>]+>", "", re.sub(r' <span class="badge.*?</span>', "", text)))
        for check, text in RULE_TEXT.findall(page)
    }


def current_roles(c: Any) -> dict[str, str]:
    """The roles form of the page as it is (every lesion's role and version)."""
    page = c.get(RT_BASE).text
    data = dict(re.findall(r'<input type="hidden" name="(version-\w+)" value="(\d+)"', page))
    for lid, role in re.findall(r'<select id="role-(\w+)".*?<option value="(\w+)" selected', page, re.S):
        data[f"role-{lid}"] = role
    return data


def test_a_zh_hans_user_sees_the_live_role_rules_in_chinese(client: world.Clients) -> None:
    with in_chinese(client, "radonc") as c:
        choices = current_roles(c) | {"role-L06": "low_dose"}  # no observation lesion left
        r = c.post(f"{RT_BASE}/check", data=choices, headers={"HX-Request": "true"})
    assert r.status_code == 200, r.text[-2000:]
    shown = rule_messages(r.text)
    assert shown["observation.measurable"] == (
        ": 可测量观察病灶 0 个（长径 >= 10 mm，淋巴结短径 >= 15 mm）；至少需要 1 个"
    )
    assert re.fullmatch(r": 常规剂量放疗病灶 \d+ 个；方案允许 1 至 1 个", shown["conventional.count"])
    assert "lesion(s)" not in r.text


def test_a_zh_hans_user_sees_the_prescription_checks_in_chinese(client: world.Clients) -> None:
    with in_chinese(client, "radonc") as c:
        form = {"lesion_id": "L02", "dose_per_fraction_gy": "2.5", "fractions": "5", "start_date": "2023-07-10"}
        r = c.post(f"{RT_BASE}/course/check", data=form)
    assert r.status_code == 200, r.text[-2000:]
    shown = rule_messages(r.text)
    assert re.fullmatch(r": 低剂量单次 2\.5 Gy，与 [\d.]+ Gy 相差 [\d.]+%", shown["ldrt.dose_per_fraction"])
    assert shown["ldrt.fractions"].startswith(": 低剂量 5 次分割；方案规定 ")


def test_a_zh_hans_user_sees_a_refused_role_set_with_each_broken_rule_in_chinese(client: world.Clients) -> None:
    with in_chinese(client, "radonc") as c:
        choices = current_roles(c) | {"role-L06": "conventional", "reason": "re-planned"}
        r = c.post(f"{RT_BASE}/roles", data=choices)
    assert r.status_code == 422, r.text[-2000:]
    error = html.unescape(r.text.split('id="roles-error"', 1)[1].split("</div>", 1)[0])
    assert "conventional.count：常规剂量放疗病灶 2 个；方案允许 1 至 1 个" in error


# --- the services' and the validation's refusals beside a form's fields

TREATMENT = f"/patients/{world.QFS_PATIENT}/treatment"


def field_html(page: str, control_id: str) -> str:
    return html.unescape(page.split(f'id="{control_id}"', 1)[-1].split("</div>", 1)[0])


def test_a_zh_hans_user_sees_a_fraction_for_an_unknown_lesion_refused_in_chinese(client: world.Clients) -> None:
    data = {"lesion_id": "L99", "date": "2023-08-14", "dose_gy": "1.6", "status": "delivered", "fraction_number": "1"}
    with in_chinese(client, "radonc") as c:
        r = c.post(f"{TREATMENT}/fractions", data=data)
    assert r.status_code == 422
    assert f"{world.QFS_PATIENT} 没有病灶 L99" in html.unescape(r.text)
    assert "has no lesion" not in r.text


def test_an_english_user_sees_a_fraction_for_an_unknown_lesion_refused_in_english(client: world.Clients) -> None:
    data = {"lesion_id": "L99", "date": "2023-08-14", "dose_gy": "1.6", "status": "delivered", "fraction_number": "1"}
    r = client.session("radonc").post(f"{TREATMENT}/fractions", data=data)
    assert r.status_code == 422 and f"{world.QFS_PATIENT} has no lesion L99" in r.text


def test_a_zh_hans_user_sees_a_future_cycle_refused_in_chinese_beside_the_date(client: world.Clients) -> None:
    day = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    with in_chinese(client, "coordinator") as c:
        r = c.post(f"{TREATMENT}/cycles", data={"date": day, "agent": "camrelizumab"})
    assert r.status_code == 422
    field = field_html(r.text, "cycle-date")
    assert re.search(rf"{day} 是将来的日期", field), field
    assert "in the future" not in field


def test_a_zh_hans_user_sees_a_consent_after_screening_refused_in_chinese_beside_the_consent(
    client: world.Clients,
) -> None:
    with in_chinese(client, "coordinator") as c:
        subject_id = register(c)
        screening_day = (dt.date.today() - dt.timedelta(days=5)).isoformat()
        consent_day = (dt.date.today() - dt.timedelta(days=2)).isoformat()
        form = eligible_form(screening_date=screening_day, consent_date=consent_day)
        r = c.post(f"/patients/{subject_id}/screen", data=form)
    assert r.status_code == 422, r.text[-2000:]
    assert f"知情同意日期 {consent_day} 晚于筛选日期（{screening_day}）" in html.unescape(r.text)


def test_a_zh_hans_user_sees_the_course_check_without_a_lesion_refused_in_chinese(client: world.Clients) -> None:
    with in_chinese(client, "radonc") as c:
        r = c.post(f"{RT_BASE}/course/check", data={})
    assert r.status_code == 422
    assert "lesion_id：请选择该疗程治疗的病灶" in html.unescape(r.text)


def test_a_zh_hans_user_sees_why_a_lab_cannot_be_read_in_chinese_in_the_checklists_notes(
    client: world.Clients,
) -> None:
    r = checklist_in_chinese(client, **{"lab-ast-uln": "0"})
    assert r.status_code == 200
    notes = html.unescape(r.text.split('class="scr-notes"', 1)[1].split("</div>", 1)[0])
    assert "AST" in notes and "正常值上限必须为正数" in notes, notes


def test_a_zh_hans_user_sees_why_enrolment_would_be_refused_in_chinese(client: world.Clients) -> None:
    r = checklist_in_chinese(client, ecog="")
    assert r.status_code == 200
    listed = r.text.split('class="scr-enrol-reasons"', 1)[1].split("</details>", 1)[0]
    items = [html.unescape(x) for x in re.findall(r"<li>(.*?)</li>", listed)]  # translated: no lang="en"
    in3 = next(x for x in items if " IN3（" in x)
    assert in3.startswith("入选标准 IN3（") and in3.endswith("）：ECOG 体能状态 未记录：未知（缺少数据）")
    assert "inclusion IN3" not in r.text


def deviation_reasons(page: str) -> list[str]:
    """The Reason column of the recorded deviations' table."""
    table = page.split('class="rt-deviations"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr class="dev-row[^"]*">(.*?)</tr>', table, re.S)
    return [html.unescape(re.findall(r"<td>(.*?)</td>", row, re.S)[4]) for row in rows]


def test_a_zh_hans_user_sees_the_recorded_deviations_reasons_in_chinese_while_they_are_the_engines(
    fresh_client: world.Clients,
) -> None:
    data = {"lesion_id": "L03", "date": "2023-08-21", "dose_gy": "1.6", "status": "delivered", "fraction_number": "6"}
    recorded = fresh_client.session("radonc").post(f"{TREATMENT}/fractions", data=data)  # 14 days after the 5th
    assert recorded.status_code == 303, recorded.text[-2000:]
    english = deviation_reasons(fresh_client.session("radonc").get(TREATMENT).text)
    assert any("days apart" in r for r in english), english
    with in_chinese(fresh_client, "radonc") as c:
        pages = [c.get(TREATMENT).text, c.get(RT_BASE).text]
    for page in pages:
        reasons = deviation_reasons(page)
        assert any(re.fullmatch(r"第 \d+-\d+ 次分割间隔 \d+ 天（窗口 \d+-\d+ 天）", r) for r in reasons), reasons
        assert not any("days apart" in r for r in reasons), reasons


def test_a_zh_hans_user_sees_an_unknown_lab_unit_refused_in_chinese_with_the_accepted_units(
    client: world.Clients,
) -> None:
    r = checklist_in_chinese(client, **{"lab-ast-unit": "furlong"})
    assert r.status_code == 200
    page = html.unescape(r.text)
    assert "ast 不接受单位 'furlong'（可用单位：" in page, page[-3000:]
    assert "is not known for" not in page


def test_a_zh_hans_user_sees_a_dose_that_is_not_a_number_refused_in_chinese_beside_the_dose(
    client: world.Clients,
) -> None:
    data = {"lesion_id": "L01", "date": "2023-08-14", "dose_gy": "two", "status": "delivered", "fraction_number": "1"}
    with in_chinese(client, "radonc") as c:
        r = c.post(f"{TREATMENT}/fractions", data=data)
    assert r.status_code == 422
    page = html.unescape(r.text)
    assert "输入应为有效数值，无法将该文本识别为数值" in page, page[-3000:]
    assert "unable to parse" not in page


def test_a_zh_hans_user_is_told_in_chinese_that_a_patient_is_not_at_their_sites(client: world.Clients) -> None:
    page, api = refusal_on_page_and_api(client, "/patients/QFS-999999", 404)
    assert "您的中心没有患者 'QFS-999999'" in page
    assert api == "No patient 'QFS-999999' at your sites"


def test_a_zh_hans_user_sees_an_ae_resolved_before_its_onset_refused_in_chinese_beside_the_date(
    client: world.Clients,
) -> None:
    from test_ae_pages import field_error, new_event

    from abscopal.safety.ctcae import load_ctcae

    term = load_ctcae().get("Fatigue")
    with in_chinese(client, "investigator") as c:
        r = new_event(c, meddra_code=str(term.meddra_code), grade="1", resolution_date="2026-11-01")
    assert r.status_code == 422
    error = html.unescape(field_error(r.text, "resolution_date"))
    assert "2026-11-01" in error and re.search(r"[\u4e00-\u9fff]", error), error
    assert "before onset" not in error


# --- a record's life: a stale edit and a locked record


def test_a_zh_hans_user_whose_edit_is_stale_is_told_in_chinese_who_changed_what(
    client: world.Clients, web_db: Any
) -> None:
    from test_pages import edit_form, post, record_path

    path = record_path(web_db, "lesions", "lesions")
    theirs = client.login("investigator")
    with in_chinese(client, "radiologist") as mine:
        stale = edit_form(mine, path)
        first = edit_form(theirs, path)
        first.update(location="left lower lobe, basal segment", reason="location from the CT report")
        assert post(theirs, f"{path}/edit", first).status_code == 303
        stale.update(location="right middle lobe", reason="my correction")
        r = post(mine, f"{path}/edit", stale)
    assert r.status_code == 409
    page = html.unescape(r.text)
    said = (
        r"未保存：您打开 lesions 记录 \S+ 后，该记录已被修改（您打开的是第 \d+ 版，现在是第 \d+ 版）："
        r"investigator 于 [\d-]+ [\d:]+ UTC 修改了 location。请重新加载后再次修改。"
    )
    assert re.search(said, page), page[-3000:]
    assert "was changed after you opened it" not in page


def test_a_zh_hans_user_is_told_in_chinese_that_a_record_is_locked_and_by_whom(
    client: world.Clients, web_db: Any
) -> None:
    from test_pages import edit_form, post, record_path

    path = record_path(web_db, "io-cycles", "immunotherapy_cycles")
    dm = client.login("datamanager")
    assert post(dm, f"{path}/lock", {"reason": "cleaned for the interim analysis"}).status_code == 303
    try:
        with in_chinese(client, "investigator") as c:
            form = edit_form(c, path)
            form.update(agent="another agent", reason="try to change a locked record")
            r = post(c, f"{path}/edit", form)
    finally:
        lock_form = {"reason": "the test is over"}
        post(dm, f"{path}/unlock", lock_form)
    assert r.status_code == 423
    page = html.unescape(r.text)
    assert re.search(r"未保存：该记录已锁定（由 datamanager 于 [\d-]+ [\d:]+ UTC 锁定：cleaned for the interim "
                     r"analysis）；须由数据管理员填写理由解锁后才能修改", page), page[-3000:]  # fmt: skip


def test_a_zh_hans_user_asking_for_a_record_that_does_not_exist_is_told_so_in_chinese(client: world.Clients) -> None:
    page, api = refusal_on_page_and_api(client, f"/patients/{world.QFS_PATIENT}/lesions/no-such-lesion", 404)
    assert "没有 lesions 记录 'no-such-lesion'" in page
    assert api == "No lesions record 'no-such-lesion'"


def test_a_zh_hans_user_refused_a_page_is_told_in_chinese_which_action_their_role_may_not_do(
    client: world.Clients,
) -> None:
    page, api = refusal_on_page_and_api(client, "/audit", 403)
    assert "coordinator（研究协调员）无权执行“查看审计追踪”" in page
    assert api == "coordinator (coordinator) may not do 'audit trail view'"


def test_a_zh_hans_administrator_picks_and_reads_roles_by_their_chinese_names(client: world.Clients) -> None:
    with in_chinese(client, "admin") as c:
        new = html.unescape(c.get("/admin/users/new").text)
        users = html.unescape(c.get("/admin/users").text)
    assert '<option value="deputy_chief_physician">副主任医师</option>' in new
    assert "研究协调员 @ QFS" in users and "deputy_chief_physician" not in users


# --- the calendar engine's visits (QFS_PATIENT's study reached its maximum follow-up before today)


def test_a_zh_hans_user_sees_the_calendars_statuses_and_why_visits_are_no_longer_expected_in_chinese(
    client: world.Clients,
) -> None:
    english = client.login("coordinator").get(TREATMENT).text
    assert re.search(r"not expected: the study ended on \d{4}-\d\d-\d\d \(maximum follow-up\)", english)
    with in_chinese(client, "coordinator") as c:
        page = html.unescape(c.get(TREATMENT).text)
        patient = html.unescape(c.get(f"/patients/{world.QFS_PATIENT}").text)
    assert re.search(r"不再预期：研究于 \d{4}-\d\d-\d\d 结束（最长随访期）", page), page[-3000:]
    assert "not expected:" not in page
    statuses = set(re.findall(r'<span class="status-(\w+)">([^<]*)</span>', page))
    assert statuses and all(code != shown for code, shown in statuses), statuses
    assert re.search(r"研究于 \d{4}-\d\d-\d\d 结束（最长随访期）", patient)


def test_a_zh_hans_user_sees_the_resistance_classifications_reasons_in_chinese(client: world.Clients) -> None:
    with in_chinese(client, "coordinator") as c:
        page = html.unescape(c.get(f"/patients/{world.QFS_PATIENT}/screen").text)
    rules = re.findall(r'<ul class="scr-rule">(.*?)</ul>', page, re.S)
    assert rules, page[-3000:]
    assert re.search(r"暴露 \d+ 天", rules[0]) or "最佳疗效" in rules[0], rules[0]
    assert "best response" not in rules[0] and 'lang="en"' not in rules[0]


def test_a_zh_hans_data_manager_sees_a_bulk_insert_summarised_in_chinese_in_the_audit_trail(
    client: world.Clients,
) -> None:
    with in_chinese(client, "datamanager") as c:
        page = html.unescape(c.get("/audit", params={"user": "synth"}).text)  # the world's cohort, bulk-loaded
    assert "一次插入的多行（id 从 " in page and "rows inserted at once" not in page


def test_a_zh_hans_user_sees_each_fractions_status_in_chinese(client: world.Clients, web_db: Any) -> None:
    fractions = ENTITIES["fractions"].table
    with web_db.engine.connect() as conn:
        statuses = set(
            conn.execute(select(fractions.c.status).where(fractions.c.subject_id == world.QFS_PATIENT)).scalars()
        )
    assert "delivered" in statuses
    with in_chinese(client, "coordinator") as c:
        page = html.unescape(c.get(TREATMENT).text)
    cells = re.findall(r'<td class="num">[\d.]+</td><td>([^<]*)</td><td>(?:是|<span class="nonworking">)', page)
    assert cells and "已实施" in cells and not set(cells) & {"delivered", "partial", "missed"}, cells[:5]
