"""The derived views (eligibility, RT checks, response, schedule) and the patient's path steps through the API.

The derived views are compared with what the engines compute from the same stored data read another way (the
store's :class:`Repository`, the CLI's schedule loader) and with values worked out by hand from the synthetic
record (target sums, BED/EQD2); the path steps with the rules of web.md §4 and §5.
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

from abscopal import domain as d
from abscopal.protocol import calendar as cal
from abscopal.protocol.model import load_bundled
from abscopal.protocol.radiotherapy import first_study_treatment
from abscopal.response import SubjectFacts, derive_subject
from abscopal.store.repository import Repository
from abscopal.store.schedule_input import load_schedule_input
from abscopal.store.tables import login_failures

SID = world.QFS_PATIENT
API = "/api/v1"
NEW = "QFS-900001"


def _url(sid: str, tail: str) -> str:
    return f"{API}/patients/{sid}/{tail}"


# --- derived views


def test_a_patient_at_another_site_has_no_derived_views(client: world.Clients) -> None:
    c = client.shared("investigator")
    for tail in ("eligibility", "rt-checks", "response", "schedule"):
        assert c.get(_url(world.JNC_PATIENT, tail)).status_code == 404


def test_the_eligibility_checklist_lists_every_criterion_of_the_protocol_with_its_status(
    client: world.Clients,
) -> None:
    body = client.shared("investigator").get(_url(SID, "eligibility")).json()
    e = load_bundled().version(body["protocol_version"]).eligibility
    assert [c["criterion_id"] for c in body["criteria"]] == [*e.inclusion, *e.exclusion]
    # the synthetic patient was enrolled: every inclusion met, no exclusion present, the adjudication signed twice
    assert body["verdict"] == "eligible"
    assert all(c["status"] == "met" for c in body["criteria"] if c["section"] == "inclusion")
    assert all(c["status"] == "not_met" for c in body["criteria"] if c["section"] == "exclusion")
    assert body["adjudication"]["effective"] is True
    assert len(body["adjudication"]["valid_signers"]) == body["adjudication"]["required_signatures"] == 2
    assert body["enrolment"] == {"allowed": True, "reasons": []}


def test_rt_doses_are_the_bed_and_eqd2_of_the_stored_prescriptions(client: world.Clients) -> None:
    c = client.shared("radonc")
    body = c.get(_url(SID, "rt-checks")).json()
    courses = [r["data"] for r in c.get(_url(SID, "rt-courses")).json()]
    assert body["doses"] and body["alpha_beta_tumour_gy"] == 10.0
    for dose in body["doses"]:
        mine = [x for x in courses if x["lesion_id"] == dose["lesion_id"]]
        ab = mine[0]["alpha_beta_gy"]
        physical = sum(x["dose_per_fraction_gy"] * x["fractions"] for x in mine)
        bed = sum(x["fractions"] * x["dose_per_fraction_gy"] * (1 + x["dose_per_fraction_gy"] / ab) for x in mine)
        assert dose["prescribed_gy"] == pytest.approx(physical)
        assert dose["prescribed_bed_gy"] == pytest.approx(bed)
        assert dose["prescribed_eqd2_gy"] == pytest.approx(bed / (1 + 2 / ab))
    assert {x["check"] for x in body["checks"]} >= {"conventional.count", "low_dose.count"}


def test_the_target_sum_and_its_change_are_those_of_the_stored_measurements(client: world.Clients) -> None:
    c = client.shared("investigator")
    body = c.get(_url(SID, "response")).json()
    stored = sorted((r["data"] for r in c.get(_url(SID, "assessments")).json()), key=lambda a: a["assessment_date"])
    sums = [
        sum(
            m["diameter_mm"]
            for m in a["measurements"]
            if m["lesion_class"] == "target" and m["diameter_mm"] is not None
        )
        for a in stored
    ]
    assert [t["assessment_date"] for t in body["timepoints"]] == [a["assessment_date"] for a in stored]
    for t, total in zip(body["timepoints"], sums, strict=True):
        if t["sum_mm"] is not None:
            assert t["sum_mm"] == pytest.approx(total)
            assert t["pct_from_baseline"] == pytest.approx((total - sums[0]) / sums[0] * 100)
    assert body["timepoints"][0]["baseline"] and body["timepoints"][0]["overall"] is None


@pytest.mark.parametrize("criteria", ["irecist", "recist11"])
def test_each_timepoints_response_is_the_engines_for_the_stored_measurements(
    client: world.Clients, web_db: Any, criteria: str
) -> None:
    body = client.shared("investigator").get(_url(SID, f"response?criteria={criteria}")).json()
    with web_db.engine.connect() as conn:
        repo = Repository(conn)
        p = repo.patient(SID)
        ref = first_study_treatment(repo.for_subject(d.Fraction, SID), repo.for_subject(d.ImmunotherapyCycle, SID),
                                    p.enrolment_date)  # fmt: skip
        derived = derive_subject(
            repo.for_subject(d.TumourAssessment, SID), SubjectFacts(SID, ref, p.death_date, p.new_therapy_date),
            load_bundled().version(p.protocol_version).response, criteria,
        )  # fmt: skip
    assert body["criteria"] == criteria
    assert [t["overall"] for t in body["timepoints"]] == [
        None if t.overall is None else str(t.overall) for t in derived.timepoints
    ]
    assert body["best_overall_response"] == str(derived.bor)
    assert body["best_overall_response_confirmed"] == str(derived.bor_confirmed)


def test_the_schedule_is_the_calendar_the_cli_prints_for_the_patient(client: world.Clients, web_db: Any) -> None:
    as_of = dt.date(2024, 1, 15)
    body = client.shared("coordinator").get(_url(SID, f"schedule?as_of={as_of}")).json()
    protocol = load_bundled().current
    expected = cal.as_dict(
        cal.build_schedule(
            load_schedule_input(SID, web_db.url), protocol.immunotherapy, protocol.schedule,
            protocol.radiotherapy.low_dose, as_of,
        )
    )  # fmt: skip
    got = [(v["kind"], v["number"], v["due"], v["actual"], v["status"]) for v in body["visits"]]
    want = [(v["kind"], v["number"], v["planned"] and str(v["planned"]), v["actual"] and str(v["actual"]),
             v["status"]) for v in expected["visits"]]  # fmt: skip
    assert got == want
    assert body["overdue"] == len(expected["overdue"])


def test_a_screening_patient_has_no_calendar_and_says_why(client: world.Clients) -> None:
    body = client.shared("coordinator2").get(_url(world.JNC_PATIENT, "schedule")).json()
    assert body["visits"] == [] and "not enrolled" in body["note"]


def test_a_patient_account_does_not_see_the_derived_views(client: world.Clients) -> None:
    assert client.shared("patient").get(_url(SID, "response")).status_code == 404


def test_an_investigator_response_that_differs_from_the_derived_one_is_flagged(fresh_client: world.Clients) -> None:
    c = fresh_client.login("investigator")
    records = sorted(c.get(_url(SID, "assessments")).json(), key=lambda r: r["data"]["assessment_date"])
    second = records[1]
    data = {k: v for k, v in second["data"].items() if k != "subject_id"}
    data["investigator_response"] = "iPR"
    r = c.put(_url(SID, f"assessments/{second['id']}"), json={"reason": "investigator's read", "data": data},
              headers={"If-Match": second["etag"]})  # fmt: skip
    assert r.status_code == 200, r.text
    body = c.get(_url(SID, "response")).json()
    row = next(t for t in body["timepoints"] if t["assessment_date"] == data["assessment_date"])
    assert row["investigator"] == "iPR" and row["overall"] != "iPR"
    assert row["discrepancy"] is True and "iPR" in row["discrepancy_reason"]
    assert body["discrepancies"] == 1


# --- the path: adjudication, enrolment


def _screening_patient(clients: world.Clients, sid: str = NEW) -> dict[str, Any]:
    """A new QFS patient at screening, with the screening and prior immunotherapy of the enrolled one."""
    coord = clients.shared("coordinator")
    source: dict[str, Any] = coord.get(f"{API}/patients/{SID}").json()["data"]
    patient = {k: v for k, v in source.items() if k != "subject_id"}
    patient.update(status="screening", enrolment_date=None, death_date=None, death_cause=None,
                   withdrawal_date=None, new_therapy_date=None, last_contact_date=None, hospital_id=None)  # fmt: skip
    r = coord.post(f"{API}/patients?subject_id={sid}", json=patient)
    assert r.status_code == 201, r.text
    for slug in ("screening", "io-history"):
        data = {k: v for k, v in coord.get(_url(SID, slug)).json()[0]["data"].items() if k != "subject_id"}
        r = coord.post(_url(sid, slug), json=data)
        assert r.status_code == 201, r.text
    return source


def _sign(c: Any, sid: str, adjudication: dict[str, Any], password: str = world.PASSWORD) -> Any:
    return c.post(_url(sid, f"adjudications/{adjudication['id']}/signatures"), json={"password": password},
                  headers={"If-Match": adjudication["etag"]})  # fmt: skip


def _propose(c: Any, sid: str = NEW) -> dict[str, Any]:
    r = c.post(_url(sid, "adjudications"), json={})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def test_two_distinct_deputy_chief_physicians_sign_and_then_the_investigator_enrols(
    fresh_client: world.Clients,
) -> None:
    source = _screening_patient(fresh_client)
    adjudication = _propose(fresh_client.shared("coordinator"))
    assert adjudication["data"]["classification"] == "primary"  # the resistance engine's class of the history
    first = _sign(fresh_client.shared("dcp1"), NEW, adjudication)
    assert first.status_code == 200, first.text
    second = _sign(fresh_client.shared("dcp2"), NEW, first.json())
    assert second.status_code == 200, second.text
    assert [s["username"] for s in second.json()["data"]["signatures"]] == ["dcp1", "dcp2"]
    inv = fresh_client.shared("investigator")
    assert inv.get(_url(NEW, "eligibility")).json()["enrolment"]["allowed"] is True
    patient = inv.get(f"{API}/patients/{NEW}")
    r = inv.post(
        _url(NEW, "enrol"), json={"on": source["enrolment_date"]}, headers={"If-Match": patient.headers["etag"]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["status"] == "enrolled"


def test_enrolment_is_refused_with_its_reasons_while_the_adjudication_lacks_a_signature(
    fresh_client: world.Clients,
) -> None:
    source = _screening_patient(fresh_client)
    adjudication = _propose(fresh_client.shared("investigator"))
    assert _sign(fresh_client.shared("dcp1"), NEW, adjudication).status_code == 200
    inv = fresh_client.shared("investigator")
    patient = inv.get(f"{API}/patients/{NEW}")
    r = inv.post(
        _url(NEW, "enrol"), json={"on": source["enrolment_date"]}, headers={"If-Match": patient.headers["etag"]}
    )
    assert r.status_code == 422
    assert any("1 of the 2 signatures" in reason for reason in r.json()["reasons"])
    assert inv.get(_url(NEW, "eligibility")).json()["enrolment"]["allowed"] is False


def test_the_same_deputy_chief_physician_cannot_sign_twice(fresh_client: world.Clients) -> None:
    _screening_patient(fresh_client)
    adjudication = _propose(fresh_client.shared("coordinator"))
    dcp1 = fresh_client.shared("dcp1")
    signed = _sign(dcp1, NEW, adjudication)
    assert signed.status_code == 200
    again = _sign(dcp1, NEW, signed.json())
    assert again.status_code == 403 and "already signed" in again.json()["detail"]


def test_the_proposer_cannot_sign_the_adjudication_even_after_becoming_a_deputy_chief_physician(
    fresh_client: world.Clients,
) -> None:
    _screening_patient(fresh_client)
    admin = fresh_client.shared("admin")
    new_user = {"username": "switcher", "full_name": "Test Switcher", "password": world.PASSWORD,
                "memberships": [{"site": world.QFS, "role": "coordinator"}]}  # fmt: skip
    assert admin.post(f"{API}/users", json=new_user).status_code == 201
    switcher = fresh_client.login("switcher")
    adjudication = _propose(switcher)
    dcp = {"memberships": [{"site": world.QFS, "role": "deputy_chief_physician"}], "reason": "now a deputy chief"}
    r = admin.put(f"{API}/users/switcher/memberships", json=dcp)
    assert r.status_code == 200, r.text
    refused = _sign(switcher, NEW, adjudication)
    assert refused.status_code == 403 and "proposed this adjudication" in refused.json()["detail"]


def test_a_wrong_password_at_signing_is_refused_and_counted(fresh_client: world.Clients, fresh_web_db: Any) -> None:
    _screening_patient(fresh_client)
    adjudication = _propose(fresh_client.shared("coordinator"))
    r = _sign(fresh_client.shared("dcp1"), NEW, adjudication, password="not my password at all")
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/password"
    with fresh_web_db.engine.connect() as conn:
        count = conn.execute(
            select(func.count())
            .select_from(login_failures)
            .where(login_failures.c.username == "dcp1", login_failures.c.kind == "signature")
        ).scalar_one()
    assert count == 1
    detail = fresh_client.shared("investigator").get(_url(NEW, "eligibility")).json()["adjudication"]
    assert detail["signatures"] == []


def test_a_signature_without_if_match_is_refused(fresh_client: world.Clients) -> None:
    _screening_patient(fresh_client)
    adjudication = _propose(fresh_client.shared("coordinator"))
    r = fresh_client.shared("dcp1").post(
        _url(NEW, f"adjudications/{adjudication['id']}/signatures"), json={"password": world.PASSWORD}
    )
    assert r.status_code == 428


# --- questionnaires, RT roles


def _lc13(answers: dict[int, int | None]) -> dict[str, Any]:
    return {"visit": "week_18", "instrument": "QLQ-LC13", "completed_on": "2023-11-07",
            "answers": {str(k): v for k, v in answers.items()}}  # fmt: skip


def test_questionnaire_answers_are_saved_one_at_a_time_then_scored_once_complete(fresh_client: world.Clients) -> None:
    c = fresh_client.login("patient")
    first = c.post(_url(SID, "questionnaires"), json=_lc13({31: 2}))
    assert first.status_code == 200, first.text
    assert first.json()["complete"] is False and first.json()["answered"] == 1 and first.json()["scores"] == []
    rest = c.post(_url(SID, "questionnaires"), json=_lc13({i: 1 for i in range(32, 44)}))
    assert rest.status_code == 200, rest.text
    body = rest.json()
    assert body["complete"] is True and body["answered"] == 13
    assert body["scores"] and all(s["score"] is not None for s in body["scores"] if s["scale"] == "LCDY")


def test_a_coordinator_enters_a_paper_questionnaire_only_with_a_reason(fresh_client: world.Clients) -> None:
    c = fresh_client.shared("coordinator")
    assert c.post(_url(SID, "questionnaires"), json=_lc13({31: 2})).status_code == 422
    ok = c.post(_url(SID, "questionnaires"), json={**_lc13({31: 2}), "on_behalf_reason": "paper form at clinic"})
    assert ok.status_code == 200, ok.text


def test_rt_roles_that_break_a_rule_are_refused_with_the_rule_named(fresh_client: world.Clients) -> None:
    c = fresh_client.shared("radonc")
    lesions = {r["data"]["lesion_id"]: r for r in c.get(_url(SID, "lesions")).json()}
    roles = {lid: "low_dose" for lid in lesions}
    versions = {lid: r["version"] for lid, r in lesions.items()}
    r = c.put(_url(SID, "lesions/rt-roles"), json={"roles": roles, "versions": versions})
    assert r.status_code == 422 and "conventional.count" in r.json()["detail"]
    same = {lid: r["data"]["rt_role"] for lid, r in lesions.items()}
    ok = c.put(_url(SID, "lesions/rt-roles"), json={"roles": same, "versions": versions})
    assert ok.status_code == 200 and len(ok.json()) == len(lesions)
