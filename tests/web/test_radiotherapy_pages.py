"""The radiotherapy plan page (issue 12 item 4): the lesion registry, RT roles with the protocol's role rules
checked live, and the RT course prescription with BED/EQD2 and deviations.

Every expected number and rule result is computed here by calling the radiotherapy engine on the records the
test database holds (never typed in); every write is checked in the store and in the audit trail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import world

from abscopal import domain as d
from abscopal.protocol import calendar as cal
from abscopal.protocol import radiotherapy as rt
from abscopal.protocol.model import load_bundled
from abscopal.store.unit_of_work import UnitOfWork
from abscopal.web import audit_view

SUBJECT = world.QFS_PATIENT
BASE = f"/patients/{SUBJECT}/radiotherapy"
RULE = re.compile(r'<li class="rt-rule (ok|fail)" data-check="([a-z_.]+)">')
DOSE_ROW = re.compile(r'<tr data-lesion="(\w+)">(.*?)</tr>', re.S)
DOSE_CELL = re.compile(r'data-value="([a-z0-9-]+)">([-\d.]+)[ <]')


def stored(db: Any, repository: str, subject_id: str = SUBJECT) -> list[Any]:
    with UnitOfWork(db.engine, "test", "read") as uow:
        return list(getattr(uow, repository).for_subject(subject_id))


def protocol() -> Any:
    return load_bundled().version("1.0")


def rules_shown(html: str) -> list[tuple[str, bool]]:
    return [(check, mark == "ok") for mark, check in RULE.findall(html)]


def engine_rules(lesions: list[d.Lesion], fractions: list[d.Fraction]) -> list[tuple[str, bool]]:
    checks = rt.check_lesion_roles(lesions, protocol().radiotherapy, None, rt.irradiated_lesions(fractions))
    return [(c.check.value, c.ok) for c in checks]


def form(c: Any, path: str, data: dict[str, str], **headers: str) -> Any:
    return c.post(path, data=data, headers=headers or None)


def lesion_form(lesion_id: str, **extra: str) -> dict[str, str]:
    data = {
        "lesion_id": lesion_id, "organ": "liver", "location": "segment VII", "measurable": "on",
        "baseline_diameter_mm": "18", "lesion_class": "target",
    }  # fmt: skip
    data.update(extra)
    return data


def history(db: Any, entity: str, record_id: str) -> list[audit_view.HistoryRow]:
    with db.engine.connect() as conn:
        return audit_view.record_history(conn, entity, record_id)


def add_lesion(c: Any, lesion_id: str) -> None:
    response = form(c, f"{BASE}/lesions", lesion_form(lesion_id))
    assert response.status_code == 303, response.text[-2000:]


def roles_of(db: Any) -> dict[str, str]:
    """The roles form as the page would post it: every lesion's current role and version."""
    data: dict[str, str] = {}
    for s in stored(db, "lesions"):
        data[f"role-{s.value.lesion_id}"] = s.value.rt_role.value
        data[f"version-{s.value.lesion_id}"] = str(s.version)
    return data


# --- the page


def test_the_registry_page_lists_the_patients_lesions_with_their_roles(client: world.Clients, web_db: Any) -> None:
    response = client.session("radonc").get(BASE)
    assert response.status_code == 200, response.text[-2000:]
    for s in stored(web_db, "lesions"):
        row = re.search(rf'<tr id="lesion-{s.value.lesion_id}">(.*?)</tr>', response.text, re.S)
        assert row is not None, s.value.lesion_id
        assert f"role-{s.value.rt_role.value}" in row.group(1)
    assert '<link rel="stylesheet" href="/static/radiotherapy.css">' in response.text


def test_the_role_rules_on_the_page_equal_the_engines_for_the_stored_registry(
    client: world.Clients, web_db: Any
) -> None:
    response = client.session("investigator").get(BASE)
    section = response.text.split('id="role-rules"', 1)[1].split("</section>", 1)[0]
    lesions = [s.value for s in stored(web_db, "lesions")]
    fractions = [s.value for s in stored(web_db, "fractions")]
    assert rules_shown(section) == engine_rules(lesions, fractions)


def test_the_bed_and_eqd2_on_the_page_equal_the_engines_for_the_stored_courses(
    client: world.Clients, web_db: Any
) -> None:
    response = client.session("radonc").get(BASE)
    lesions = [s.value for s in stored(web_db, "lesions")]
    courses = [s.value for s in stored(web_db, "radiotherapy_courses")]
    fractions = [s.value for s in stored(web_db, "fractions")]
    p = protocol()
    report = rt.check_plan(SUBJECT, lesions, courses, fractions, p.radiotherapy, cal.WorkingDays("CN"))
    shown = {lid: dict(DOSE_CELL.findall(cells)) for lid, cells in DOSE_ROW.findall(response.text)}
    assert set(shown) == {x.lesion_id for x in report.doses}
    for x in report.doses:
        expected = {
            "prescribed": x.prescribed_gy, "bed": x.prescribed_bed_gy, "eqd2": x.prescribed_eqd2_gy,
            "bed-late": x.prescribed_bed_late_gy, "eqd2-late": x.prescribed_eqd2_late_gy,
            "delivered": x.delivered_gy, "delivered-bed": x.delivered_bed_gy, "delivered-eqd2": x.delivered_eqd2_gy,
        }  # fmt: skip
        assert shown[x.lesion_id] == {k: f"{v:.2f}" for k, v in expected.items()}, x.lesion_id


def test_a_role_that_may_not_assign_roles_sees_the_rules_but_not_the_roles_form(client: world.Clients) -> None:
    response = client.session("monitor").get(BASE)
    assert response.status_code == 200
    assert 'id="roles-form"' not in response.text and 'id="lesion-form"' not in response.text
    assert 'class="rt-rule' in response.text


# --- the live role check


def test_the_live_role_check_answers_the_engines_rules_for_unsaved_choices_and_writes_nothing(
    client: world.Clients, web_db: Any
) -> None:
    before = {s.id: s.version for s in stored(web_db, "lesions")}
    choices = roles_of(web_db) | {"role-L06": "low_dose"}  # no observation lesion left
    response = form(client.session("radonc"), f"{BASE}/check", choices, **{"HX-Request": "true"})
    assert response.status_code == 200, response.text
    assert "<html" not in response.text  # a fragment for htmx
    lesions = [
        dataclasses.replace(s.value, rt_role=d.RtRole(choices[f"role-{s.value.lesion_id}"]))
        for s in stored(web_db, "lesions")
    ]
    fractions = [s.value for s in stored(web_db, "fractions")]
    assert rules_shown(response.text) == engine_rules(lesions, fractions)
    assert (d.DeviationCheck.OBSERVATION_MEASURABLE.value, False) in rules_shown(response.text)
    assert {s.id: s.version for s in stored(web_db, "lesions")} == before


def test_an_unknown_role_in_the_live_check_is_a_sentence_not_a_traceback(client: world.Clients) -> None:
    response = form(client.session("radonc"), f"{BASE}/check", {"role-L01": "maximal"})
    assert response.status_code == 422
    assert "L01: maximal is not an RT role." in response.text


# --- saving roles


def test_an_invalid_role_set_is_refused_on_save_naming_the_rule(fresh_client: world.Clients, fresh_web_db: Any) -> None:
    before = {s.id: (s.version, s.value.rt_role) for s in stored(fresh_web_db, "lesions")}
    choices = roles_of(fresh_web_db) | {"role-L06": "conventional", "reason": "re-planned"}
    response = form(fresh_client.session("radonc"), f"{BASE}/roles", choices)
    assert response.status_code == 422, response.text[-2000:]
    error = response.text.split('id="roles-error"', 1)[1].split("</div>", 1)[0]
    assert "break the protocol&#39;s role rules" in error or "break the protocol's role rules" in error
    assert f"{d.DeviationCheck.CONVENTIONAL_COUNT.value}: 2 conventional lesion(s); the protocol allows 1 to 1" in error
    assert {s.id: (s.version, s.value.rt_role) for s in stored(fresh_web_db, "lesions")} == before
    assert 'value="conventional" selected' in response.text.split('id="role-L06"', 1)[1].split("</select>", 1)[0]


def test_changing_saved_roles_without_a_reason_is_refused_with_a_sentence(
    fresh_client: world.Clients, fresh_web_db: Any
) -> None:
    response = form(fresh_client.session("radonc"), f"{BASE}/roles", roles_of(fresh_web_db))
    assert response.status_code == 422
    assert "Changing RT roles needs a reason (it goes to the audit trail)." in response.text


def test_a_valid_role_set_is_saved_through_the_service_and_audited_with_its_reason(
    fresh_client: world.Clients, fresh_web_db: Any
) -> None:
    add_lesion(fresh_client.session("radiologist"), "L08")
    choices = roles_of(fresh_web_db) | {"role-L08": "observation", "reason": "second observation lesion"}
    response = form(fresh_client.session("radonc"), f"{BASE}/roles", choices)
    assert response.status_code == 303, response.text[-2000:]
    assert response.headers["location"].endswith("?notice=roles#roles")
    new = next(s for s in stored(fresh_web_db, "lesions") if s.value.lesion_id == "L08")
    assert new.value.rt_role is d.RtRole.OBSERVATION
    changes = [h for h in history(fresh_web_db, "lesions", new.id) if h.field == "rt_role"]
    assert changes and changes[-1].username == "radonc" and changes[-1].reason == "second observation lesion"


# --- lesions


def test_a_lesion_is_added_through_the_service_without_a_role_and_audited(
    fresh_client: world.Clients, fresh_web_db: Any
) -> None:
    add_lesion(fresh_client.session("radiologist"), "L08")
    new = next(s for s in stored(fresh_web_db, "lesions") if s.value.lesion_id == "L08")
    assert new.value.rt_role is d.RtRole.NONE and new.value.baseline_diameter_mm == 18.0
    assert history(fresh_web_db, "lesions", new.id)[0].username == "radiologist"
    page = fresh_client.session("radiologist").get(f"{BASE}?notice=lesion")
    assert "The lesion was saved." in page.text and 'id="lesion-L08"' in page.text


def test_a_refused_lesion_value_is_422_with_the_sentence_beside_its_field(client: world.Clients) -> None:
    response = form(client.session("radiologist"), f"{BASE}/lesions", lesion_form("L09", baseline_diameter_mm="big"))
    assert response.status_code == 422
    field = response.text.split('id="lesion-baseline_diameter_mm"', 1)[1]
    assert 'class="field-error" id="lesion-baseline_diameter_mm-error"' in field.split("</div>", 1)[0]


def test_a_lesion_edit_needs_a_reason_beside_the_reason_field(client: world.Clients, web_db: Any) -> None:
    lesion = next(s for s in stored(web_db, "lesions") if s.value.lesion_id == "L06")
    data = lesion_form("L06", organ="lymph_node", is_node="on", version=str(lesion.version))
    response = form(client.session("radiologist"), f"{BASE}/lesions/{lesion.id}", data)
    assert response.status_code == 422
    assert 'id="lesion-reason-error"' in response.text
    assert "Every edit after the first save needs a reason" in response.text


def test_a_stale_lesion_edit_is_409_naming_who_changed_it(fresh_client: world.Clients, fresh_web_db: Any) -> None:
    lesion = next(s for s in stored(fresh_web_db, "lesions") if s.value.lesion_id == "L06")
    x = lesion.value
    base = {
        "lesion_id": x.lesion_id, "organ": x.organ, "location": x.location, "is_node": "on", "measurable": "on",
        "lesion_class": x.lesion_class.value, "version": str(lesion.version),
    }  # fmt: skip
    first = base | {"baseline_diameter_mm": "23", "reason": "remeasured"}
    assert form(fresh_client.session("radiologist"), f"{BASE}/lesions/{lesion.id}", first).status_code == 303
    second = base | {"baseline_diameter_mm": "24", "reason": "typo"}
    response = form(fresh_client.session("investigator"), f"{BASE}/lesions/{lesion.id}", second)
    assert response.status_code == 409, response.text[-2000:]
    assert "radiologist" in response.text and "baseline_diameter_mm" in response.text


# --- the prescription


def course_form(lesion_id: str, dose: str, fractions: str, start: str = "2023-07-10") -> dict[str, str]:
    return {"lesion_id": lesion_id, "dose_per_fraction_gy": dose, "fractions": fractions, "start_date": start}


def test_the_course_check_shows_the_engines_bed_eqd2_and_deviation_for_an_unsaved_prescription(
    client: world.Clients,
) -> None:
    response = form(client.session("radonc"), f"{BASE}/course/check", course_form("L02", "2.5", "5"))
    assert response.status_code == 200, response.text
    p = protocol()
    course = d.RadiotherapyCourse(
        SUBJECT,
        "L02",
        d.RtRole.LOW_DOSE,
        2.5,
        5,
        dt.date(2023, 7, 10),
        p.radiotherapy.radiobiology.alpha_beta_tumour_gy,
    )
    dose = rt.lesion_doses([course], [], p.radiotherapy, cal.WorkingDays("CN"))[0]
    cells = dict(DOSE_CELL.findall(response.text))
    assert cells["bed"] == f"{dose.prescribed_bed_gy:.2f}" and cells["eqd2"] == f"{dose.prescribed_eqd2_gy:.2f}"
    assert cells["bed-late"] == f"{dose.prescribed_bed_late_gy:.2f}"
    assert cells["eqd2-late"] == f"{dose.prescribed_eqd2_late_gy:.2f}"
    expected = [(c.check.value, c.ok) for c in rt.check_prescription(course, p.radiotherapy)]
    assert rules_shown(response.text) == expected and (d.DeviationCheck.LDRT_DOSE_PER_FRACTION.value, False) in expected
    assert "badge dev-major" in response.text


def test_the_course_check_without_a_lesion_is_a_sentence(client: world.Clients) -> None:
    response = form(client.session("radonc"), f"{BASE}/course/check", {})
    assert response.status_code == 422
    assert "choose the lesion the course treats" in response.text


def test_a_prescription_outside_the_regimen_is_stored_with_its_deviation_shown_on_the_page(
    fresh_client: world.Clients, fresh_web_db: Any
) -> None:
    add_lesion(fresh_client.session("radiologist"), "L08")
    radonc = fresh_client.session("radonc")
    choices = roles_of(fresh_web_db) | {"role-L08": "low_dose", "reason": "sixth low-dose lesion"}
    assert form(radonc, f"{BASE}/roles", choices).status_code == 303
    response = form(radonc, f"{BASE}/courses", course_form("L08", "3", "5", "2023-07-17"))
    assert response.status_code == 303, response.text[-2000:]
    assert "deviations=1" in response.headers["location"]
    devs = [s.value for s in stored(fresh_web_db, "deviations") if s.value.lesion_id == "L08"]
    assert [(x.check, x.deviation_class) for x in devs] == [
        (d.DeviationCheck.LDRT_DOSE_PER_FRACTION, d.DeviationClass.MAJOR)
    ]
    course = next(s for s in stored(fresh_web_db, "radiotherapy_courses") if s.value.lesion_id == "L08")
    assert history(fresh_web_db, "radiotherapy_courses", course.id)[0].username == "radonc"
    page = radonc.get(response.headers["location"])
    assert "1 protocol deviation was recorded automatically." in page.text
    table = page.text.split('id="deviations-h"', 1)[1]
    assert d.DeviationCheck.LDRT_DOSE_PER_FRACTION.value in table and devs[0].reason in table


def test_a_prescription_for_an_observation_lesion_is_refused_beside_the_lesion(client: world.Clients) -> None:
    response = form(client.session("radonc"), f"{BASE}/courses", course_form("L06", "1.6", "5"))
    assert response.status_code == 422
    assert "it cannot have a prescription" in response.text


def test_a_course_edit_needs_a_reason_and_is_saved_with_it_in_the_audit_trail(
    fresh_client: world.Clients, fresh_web_db: Any
) -> None:
    course = next(s for s in stored(fresh_web_db, "radiotherapy_courses") if s.value.lesion_id == "L02")
    radonc = fresh_client.session("radonc")
    shown = radonc.get(f"{BASE}?course={course.id}")
    assert f'action="{BASE}/courses/{course.id}"' in shown.text and 'id="course-reason"' in shown.text
    data = course_form("L02", "1.6", "6") | {"version": str(course.version)}
    refused = form(radonc, f"{BASE}/courses/{course.id}", data)
    assert refused.status_code == 422 and 'id="course-reason-error"' in refused.text
    saved = form(radonc, f"{BASE}/courses/{course.id}", data | {"reason": "sixth fraction added"})
    assert saved.status_code == 303, saved.text[-2000:]
    after = next(s for s in stored(fresh_web_db, "radiotherapy_courses") if s.id == course.id)
    assert after.value.fractions == 6 and after.version == course.version + 1
    change = [h for h in history(fresh_web_db, "radiotherapy_courses", course.id) if h.field == "fractions"]
    assert change and change[-1].reason == "sixth fraction added" and change[-1].username == "radonc"
