"""The treatment page (issue 12 item 5): RT fractions with the low-dose week view, immunotherapy cycles, the
calendar engine's windows and the deviations the services raise automatically.

Expected windows and deviations come from the calendar and radiotherapy engines run on the stored records.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import world

from abscopal import domain as d
from abscopal.protocol import calendar as cal
from abscopal.protocol.model import load_bundled
from abscopal.store.schedule_input import schedule_input_from_records
from abscopal.store.unit_of_work import UnitOfWork
from abscopal.web import audit_view

SUBJECT = world.QFS_PATIENT
BASE = f"/patients/{SUBJECT}/treatment"
WEEK_ROW = re.compile(r'<tr class="(gap|)" data-week="([\dW-]+)">(.*?)</tr>', re.S)
VISIT_ROW = re.compile(r"<tr><th scope=\"row\">(\d+)</th><td>([\d-]+|—)</td><td>([\d-]+) – ([\d-]+)</td>", re.S)


def stored(db: Any, repository: str, subject_id: str = SUBJECT) -> list[Any]:
    with UnitOfWork(db.engine, "test", "read") as uow:
        return list(getattr(uow, repository).for_subject(subject_id))


def values(db: Any, repository: str) -> list[Any]:
    return [s.value for s in stored(db, repository)]


def weeks_of(html: str) -> dict[str, tuple[bool, str]]:
    return {week: (gap == "gap", cells) for gap, week, cells in WEEK_ROW.findall(html)}


def engine_visits(db: Any, kind: cal.VisitKind) -> list[cal.Visit]:
    protocol = load_bundled().version("1.0")
    patient = _patient(db)
    inp = schedule_input_from_records(
        patient, values(db, "radiotherapy_courses"), values(db, "fractions"), values(db, "immunotherapy_cycles"),
        values(db, "assessments"), values(db, "answers"),
    )  # fmt: skip
    result = cal.build_schedule(
        inp, protocol.immunotherapy, protocol.schedule, protocol.radiotherapy.low_dose, dt.date.today()
    )
    return [v for v in result.visits if v.kind is kind]


def _patient(db: Any) -> d.Patient:
    with UnitOfWork(db.engine, "test", "read") as uow:
        found = uow.patients.find(subject_id=SUBJECT)
        assert found is not None
        return found.value


def fraction(c: Any, lesion_id: str, day: str, dose: str, number: str = "") -> Any:
    data = {"lesion_id": lesion_id, "date": day, "dose_gy": dose, "status": "delivered", "fraction_number": number}
    return c.post(f"{BASE}/fractions", data=data)


def test_the_treatment_page_renders_the_low_dose_week_view_from_the_stored_fractions(
    client: world.Clients, web_db: Any
) -> None:
    response = client.session("radonc").get(BASE)
    assert response.status_code == 200, response.text[-2000:]
    weeks = weeks_of(response.text)
    roles = {x.lesion_id: x.rt_role for x in values(web_db, "lesions")}
    low = [f for f in values(web_db, "fractions") if roles[f.lesion_id] is d.RtRole.LOW_DOSE]
    for f in low:
        year, week, _ = f.date.isocalendar()
        gap, cells = weeks[f"{year}-W{week:02d}"]
        assert not gap and f"#{f.fraction_number} {f.date.isoformat()} · {f.dose_gy:g} Gy" in cells
    assert not any(gap for gap, _ in weeks.values())
    assert '<link rel="stylesheet" href="/static/radiotherapy.css">' in response.text


def test_the_immunotherapy_windows_on_the_page_equal_the_calendar_engines(client: world.Clients, web_db: Any) -> None:
    response = client.session("coordinator").get(BASE)
    table = response.text.split('id="visits-io"', 1)[1].split("</table>", 1)[0]
    shown = VISIT_ROW.findall(table)
    expected = [
        (str(v.number), v.planned.isoformat() if v.planned else "—", str(v.window_start), str(v.window_end))
        for v in engine_visits(web_db, cal.VisitKind.IMMUNOTHERAPY)
        if v.window_start is not None
    ]
    assert shown == expected and expected


def test_the_low_dose_windows_on_the_page_equal_the_calendar_engines(client: world.Clients, web_db: Any) -> None:
    response = client.session("radonc").get(BASE)
    table = response.text.split('id="visits-ldrt"', 1)[1].split("</table>", 1)[0]
    expected = [
        (str(v.number), v.planned.isoformat() if v.planned else "—", str(v.window_start), str(v.window_end))
        for v in engine_visits(web_db, cal.VisitKind.LDRT_FRACTION)
        if v.window_start is not None
    ]
    assert VISIT_ROW.findall(table) == expected and expected


def test_a_fraction_over_dose_raises_a_deviation_stored_and_shown_with_its_class(
    fresh_client: world.Clients, fresh_web_db: Any
) -> None:
    radonc = fresh_client.session("radonc")
    response = fraction(radonc, "L02", "2023-08-14", "3.2")
    assert response.status_code == 303, response.text[-2000:]
    added = [
        s for s in stored(fresh_web_db, "fractions") if s.value.lesion_id == "L02" and s.value.fraction_number == 6
    ]
    assert added and added[0].value.dose_gy == 3.2  # the next number of the lesion, given by the page
    devs = [x for x in values(fresh_web_db, "deviations") if x.lesion_id == "L02"]
    over = [x for x in devs if x.check is d.DeviationCheck.LDRT_DELIVERED_DOSE_PER_FRACTION]
    assert over and over[0].deviation_class is d.DeviationClass.MAJOR and over[0].date == dt.date(2023, 8, 14)
    assert f"deviations={len(devs)}" in response.headers["location"]
    page = radonc.get(response.headers["location"])
    table = page.text.split('id="deviations-h"', 1)[1]
    assert over[0].reason in table and "badge dev-major" in table
    with fresh_web_db.engine.connect() as conn:
        assert audit_view.record_history(conn, "fractions", added[0].id)[0].username == "radonc"


def test_a_fraction_out_of_its_window_raises_an_interval_deviation_and_leaves_a_gap_in_the_week_view(
    fresh_client: world.Clients, fresh_web_db: Any
) -> None:
    radonc = fresh_client.session("radonc")
    response = fraction(radonc, "L03", "2023-08-21", "1.6", "6")  # 14 days after fraction 5: a week skipped
    assert response.status_code == 303, response.text[-2000:]
    interval = [
        x for x in values(fresh_web_db, "deviations")
        if x.lesion_id == "L03" and x.check is d.DeviationCheck.LDRT_INTERVAL
    ]  # fmt: skip
    assert interval and interval[0].deviation_class is d.DeviationClass.MINOR
    page = radonc.get(BASE)
    weeks = weeks_of(page.text)
    assert weeks["2023-W33"][0] and not weeks["2023-W34"][0]
    assert "#6 2023-08-21 · 1.6 Gy" in weeks["2023-W34"][1]
    assert interval[0].reason in page.text


def test_a_refused_fraction_value_is_422_with_the_sentence_beside_its_field(client: world.Clients) -> None:
    response = fraction(client.session("radonc"), "L02", "2023-08-14", "lots")
    assert response.status_code == 422
    field = response.text.split('id="fraction-dose_gy"', 1)[1].split("</div>", 1)[0]
    assert 'class="field-error" id="fraction-dose_gy-error"' in field


def test_a_fraction_for_an_unknown_lesion_is_refused_beside_the_lesion(client: world.Clients) -> None:
    response = fraction(client.session("radonc"), "L99", "2023-08-14", "1.6", "1")
    assert response.status_code == 422
    assert f"{SUBJECT} has no lesion L99" in response.text


def test_an_immunotherapy_cycle_is_saved_through_the_service_numbered_next_and_audited(
    fresh_client: world.Clients, fresh_web_db: Any
) -> None:
    coordinator = fresh_client.session("coordinator")
    before = max(c.cycle_number for c in values(fresh_web_db, "immunotherapy_cycles"))
    data = {"date": "2024-03-22", "agent": "camrelizumab", "dose": "200", "dose_unit": "mg", "given": "on"}
    response = coordinator.post(f"{BASE}/cycles", data=data)
    assert response.status_code == 303, response.text[-2000:]
    new = next(s for s in stored(fresh_web_db, "immunotherapy_cycles") if s.value.cycle_number == before + 1)
    assert new.value.dose == 200.0 and new.value.date == dt.date(2024, 3, 22)
    with fresh_web_db.engine.connect() as conn:
        assert audit_view.record_history(conn, "immunotherapy_cycles", new.id)[0].username == "coordinator"
    page = coordinator.get(response.headers["location"])
    assert "The immunotherapy cycle was saved." in page.text and f"C{before + 1}" in page.text


def test_a_future_immunotherapy_cycle_is_refused_with_a_sentence_beside_the_date(client: world.Clients) -> None:
    data = {"date": (dt.date.today() + dt.timedelta(days=30)).isoformat(), "agent": "camrelizumab"}
    response = client.session("coordinator").post(f"{BASE}/cycles", data=data)
    assert response.status_code == 422
    field = response.text.split('id="cycle-date"', 1)[-1].split("</div>", 1)[0]
    assert "is in the future" in field


def test_a_role_that_may_not_give_radiotherapy_sees_no_fraction_form(client: world.Clients) -> None:
    response = client.session("coordinator").get(BASE)
    assert response.status_code == 200
    assert 'id="fraction-form"' not in response.text and 'id="cycle-form"' in response.text
