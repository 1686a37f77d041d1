"""Screening, the live eligibility checklist, screen failure and enrolment pages (web.md §4, §8; issue 12 items
1 and 3), through the TestClient on both backends.

Every number and sentence a page shows is compared with the eligibility engine's output for the same values
(:func:`abscopal.protocol.eligibility.evaluate` with criterion 10 from the adjudication), never re-typed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import itertools
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).parent))
import world

from abscopal import domain as d
from abscopal.protocol import eligibility, resistance
from abscopal.protocol.model import LabMinCheck, load_bundled
from abscopal.services import adjudication as adjudication_service
from abscopal.services.common import Actor
from abscopal.store.tables import ENTITIES, audit_log
from abscopal.store.unit_of_work import UnitOfWork
from abscopal.web.pages.screening import GROUPS, NOT_TYPED, lab_checks

_numbers = itertools.count(1)
ROW = re.compile(
    r'<tr class="scr-(\w+)" data-criterion="(\w+)">.*?<span class="scr-status \w+">(.*?)</span>.*?'
    r'<td lang="en" class="scr-reason">(.*?)</td>',
    re.S,
)
PROTOCOL = load_bundled().current


def new_subject() -> str:
    return f"QFS-9{next(_numbers):05d}"


def today() -> dt.date:
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(world.TIME_ZONE)).date()


def register(c: Any, subject_id: str | None = None, birth: str = "1970-03-04") -> str:
    subject_id = subject_id or new_subject()
    r = c.post(
        "/screening/new",
        data={"subject_id": subject_id, "site_code": world.QFS, "sex": "F", "birth_date": birth},
    )
    assert r.status_code == 303, r.text[-2000:]
    assert r.headers["location"] == f"/patients/{subject_id}/screen?notice=registered"
    return subject_id


def eligible_form(**overrides: str) -> dict[str, str]:
    """The form of a patient who meets every criterion the form holds (criterion 10 comes from the adjudication)."""
    form = {
        "screening_date": today().isoformat(), "consent_date": today().isoformat(), "age_years": "56", "ecog": "1",
        "life_expectancy_months": "12", "diet": "normal", "severe_allergy_history": "no",
        "histology": "adenocarcinoma", "histology_confirmed_by": "histology", "lesion_count": "4",
        "metastatic_organ_count": "2", "has_measurable_disease": "yes", "no_standard_treatment_option": "yes",
        "refuses_cooperation": "no", "other_trial_within_3_months": "no", "brain_metastases": "no",
        "investigator_judges_unsuitable": "no", "severe_infection": "no", "serious_comorbidity": "no",
        "prior_immune_related_toxicity": "no", "prior_radiotherapy": "no",
        "lab-haemoglobin-value": "125", "lab-haemoglobin-unit": "g/L", "lab-haemoglobin-uln": "160",
        "lab-wbc-value": "6.1", "lab-wbc-unit": "x10^9/L", "lab-wbc-uln": "10",
        "lab-neutrophils-value": "3.9", "lab-neutrophils-unit": "x10^9/L", "lab-neutrophils-uln": "7",
        "lab-platelets-value": "210", "lab-platelets-unit": "x10^9/L", "lab-platelets-uln": "350",
        "lab-ast-value": "30", "lab-ast-unit": "U/L", "lab-ast-uln": "40",
        "lab-alt-value": "28", "lab-alt-unit": "U/L", "lab-alt-uln": "40",
        "lab-alp-value": "90", "lab-alp-unit": "U/L", "lab-alp-uln": "120",
    }  # fmt: skip
    form.update(overrides)
    return form


def stored(db: Any, entity: str, subject_id: str) -> Any:
    table = ENTITIES[entity].table
    with UnitOfWork(db.engine, "test", "read") as uow:
        repo = {"screenings": uow.screenings, "patients": uow.patients}[entity]
        found = repo.find(subject_id=subject_id)
    assert found is not None, f"no {entity} for {subject_id} ({table.name})"
    return found


def audit_rows(db: Any) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())


def audited(db: Any, username: str, entity: str) -> list[Any]:
    with db.engine.connect() as conn:
        return list(
            conn.execute(
                select(audit_log.c.field, audit_log.c.reason).where(
                    audit_log.c.username == username, audit_log.c.entity == entity
                )
            ).all()
        )


def rows_of(page: str) -> dict[str, tuple[str, str, str]]:
    """criterion id -> (tone, status word, reason) as the checklist fragment shows them."""
    return {cid: (tone, html.unescape(word), html.unescape(reason)) for tone, cid, word, reason in ROW.findall(page)}


def expected_checklist(db: Any, subject_id: str, screening: d.Screening) -> eligibility.Checklist:
    """The engine's checklist of these values with criterion 10 from the patient's adjudication, as enrolment
    reads it."""
    with UnitOfWork(db.engine, "test", "read") as uow:
        adj = adjudication_service.current_adjudication(uow, subject_id)
    datum = resistance.resistance_confirmed(adj.value if adj else None, PROTOCOL.resistance)
    data = dataclasses.replace(screening, immunotherapy_resistance_confirmed=datum)
    return eligibility.evaluate(data, PROTOCOL.eligibility, PROTOCOL.version.number)


def assert_rows_equal_engine(page: str, checklist: eligibility.Checklist) -> None:
    shown = rows_of(page)
    assert list(shown) == [r.criterion_id for r in checklist.results]
    for r in checklist.results:
        tone, _, reason = shown[r.criterion_id]
        assert reason == r.reason, r.criterion_id
        expected_tone = "unknown" if r.status is eligibility.Status.UNKNOWN else "bad" if r.excludes else "good"
        assert tone == expected_tone, r.criterion_id


def adjudicate(db: Any, subject_id: str, signers: tuple[str, ...]) -> None:
    """Propose (as the coordinator) and sign (as each dcp) a primary-resistance adjudication, through the services."""
    with UnitOfWork(db.engine, "coordinator", "adjudication proposed (test)") as uow:
        actor = Actor("coordinator", "Test Coordinator", d.Role.COORDINATOR, frozenset({world.QFS}))
        adj = adjudication_service.propose_adjudication(uow, actor, subject_id, d.ResistanceType.PRIMARY)
    for username in signers:
        with UnitOfWork(db.engine, username, "adjudicated (test)") as uow:
            actor = Actor(username, world.full_name(username), d.Role.DCP, frozenset({world.QFS}))
            adj = adjudication_service.sign_adjudication(uow, actor, adj.id, version=adj.version)


def save_screening(c: Any, subject_id: str, form: dict[str, str]) -> None:
    r = c.post(f"/patients/{subject_id}/screen", data=form)
    assert r.status_code == 303, r.text[-3000:]


# --- registration


def test_the_registration_page_offers_the_coordinators_sites(client: world.Clients) -> None:
    r = client.shared("coordinator").get("/screening/new")
    assert r.status_code == 200
    assert f'<option value="{world.QFS}" selected>' in r.text
    assert world.JNC not in r.text


def test_registering_a_patient_lands_through_the_service_at_screening_and_is_audited(
    client: world.Clients, web_db: Any
) -> None:
    subject_id = register(client.shared("coordinator"))
    patient = stored(web_db, "patients", subject_id).value
    assert patient.status is d.PatientStatus.SCREENING
    assert patient.protocol_version == load_bundled().version_on(dt.date.today()).version.number
    assert any(reason == "patient registered for screening" for _, reason in audited(web_db, "coordinator", "patients"))


def test_a_registration_without_a_birth_date_is_refused_beside_the_field(client: world.Clients) -> None:
    r = client.shared("coordinator").post(
        "/screening/new", data={"subject_id": new_subject(), "site_code": world.QFS, "sex": "M", "birth_date": ""}
    )
    assert r.status_code == 422
    assert 'id="f-birth_date-error"' in r.text and 'aria-invalid="true"' in r.text


def test_a_registration_at_another_site_is_refused_beside_the_site(client: world.Clients) -> None:
    r = client.shared("coordinator").post(
        "/screening/new",
        data={"subject_id": new_subject(), "site_code": world.JNC, "sex": "M", "birth_date": "1960-01-01"},
    )
    assert r.status_code == 422
    assert 'id="f-site_code-error"' in r.text


def test_a_subject_id_already_taken_is_refused_beside_the_field(client: world.Clients) -> None:
    c = client.shared("coordinator")
    subject_id = register(c)
    r = c.post("/screening/new", data={"subject_id": subject_id, "site_code": world.QFS, "sex": "F",
                                       "birth_date": "1970-03-04"})  # fmt: skip
    assert r.status_code == 409
    assert 'id="f-subject_id-error"' in r.text


# --- the screening form and its live checklist


def test_the_form_offers_every_screening_field_but_the_derived_ones() -> None:
    typed = [n for _, names in GROUPS for n in names]
    fields = {f.name for f in dataclasses.fields(d.Screening)} - {"subject_id"}
    assert sorted(typed) == sorted(fields - NOT_TYPED) and len(typed) == len(set(typed))


def test_a_new_patients_form_shows_every_criterion_of_the_protocol_as_the_engine_gives_it(
    client: world.Clients, web_db: Any
) -> None:
    c = client.shared("coordinator")
    subject_id = register(c, birth="1970-03-04")
    r = c.get(f"/patients/{subject_id}/screen")
    assert r.status_code == 200
    shown = rows_of(r.text)
    assert len(shown) == len(PROTOCOL.eligibility.inclusion) + len(PROTOCOL.eligibility.exclusion) == 20
    age = eligibility.age_on(dt.date(1970, 3, 4), today())
    assert f'name="age_years" value="{age}"' in r.text  # the engine's age on the screening day, as the default
    for lab in lab_checks(PROTOCOL):
        assert f'name="lab-{lab.lab}-value"' in r.text


def test_the_live_checklist_equals_the_engines_checklist_of_the_unsaved_values(
    client: world.Clients, web_db: Any
) -> None:
    c = client.shared("coordinator")
    subject_id = register(c)
    form = eligible_form(age_years="70", brain_metastases="yes", **{"lab-neutrophils-value": ""})
    r = c.post(f"/patients/{subject_id}/screen/checklist", data=form)
    assert r.status_code == 200
    screening = d.Screening(
        subject_id, today(), consent_date=today(), age_years=70, ecog=1, life_expectancy_months=12.0,
        diet=d.DietLevel.NORMAL, severe_allergy_history=False,
        labs={k: d.LabValue(float(form[f"lab-{k}-value"]), form[f"lab-{k}-unit"], float(form[f"lab-{k}-uln"]))
              for k in ("haemoglobin", "wbc", "platelets", "ast", "alt", "alp")},
        histology=d.Histology.ADENOCARCINOMA, histology_confirmed_by=d.HistologyConfirmation.HISTOLOGY,
        lesion_count=4, metastatic_organ_count=2, has_measurable_disease=True, no_standard_treatment_option=True,
        refuses_cooperation=False, other_trial_within_3_months=False, brain_metastases=True,
        investigator_judges_unsuitable=False, severe_infection=False, serious_comorbidity=False,
        prior_immune_related_toxicity=False, prior_radiotherapy=False,
    )  # fmt: skip
    expected = expected_checklist(web_db, subject_id, screening)
    assert expected.verdict is eligibility.Verdict.INELIGIBLE
    assert_rows_equal_engine(r.text, expected)
    assert f'class="scr-verdict {expected.verdict.value}"' in r.text


def test_the_live_checklist_updates_only_the_short_summary_in_the_live_region(client: world.Clients) -> None:
    c = client.shared("coordinator")
    subject_id = register(c)
    page = c.get(f"/patients/{subject_id}/screen").text
    assert 'id="scr-live"' in page and 'aria-live="polite"' in page and "hx-swap-oob" not in page
    fragment = c.post(f"/patients/{subject_id}/screen/checklist", data=eligible_form(ecog="3")).text
    live = re.search(r'<span hx-swap-oob="innerHTML:#scr-live">(.*?)</span>', fragment, re.S)
    assert live is not None and "Verdict: ineligible" in live.group(1)


def test_the_live_checklist_writes_nothing(client: world.Clients, web_db: Any) -> None:
    c = client.shared("coordinator")
    subject_id = register(c)
    before = audit_rows(web_db)
    r = c.post(f"/patients/{subject_id}/screen/checklist", data=eligible_form())
    assert r.status_code == 200
    assert audit_rows(web_db) == before
    with UnitOfWork(web_db.engine, "test", "read") as uow:
        assert uow.screenings.find(subject_id=subject_id) is None


def test_a_lab_in_another_unit_shows_the_value_the_rule_compared_after_the_engines_conversion(
    client: world.Clients, web_db: Any
) -> None:
    c = client.shared("coordinator")
    subject_id = register(c)
    r = c.post(
        f"/patients/{subject_id}/screen/checklist",
        data=eligible_form(**{"lab-haemoglobin-value": "9.5", "lab-haemoglobin-unit": "g/dL"}),
    )
    check = next(x for x in lab_checks(PROTOCOL) if x.lab == "haemoglobin")
    assert isinstance(check, LabMinCheck)
    screening = d.Screening(subject_id, today(), labs={"haemoglobin": d.LabValue(9.5, "g/dL", 160.0)})
    compared = eligibility.lab_datum(screening, check)
    assert f"<td>9.5 g/dL</td><td>{round(compared, 6):g} g/L</td>" in r.text
    reason = eligibility.evaluate(screening, PROTOCOL.eligibility).result("IN6").checks[0].sentence
    assert "(= " in reason and html.escape(reason) in r.text  # the engine's sentence names the conversion


def test_a_value_the_checklist_cannot_read_is_named_and_its_criterion_stays_unknown(
    client: world.Clients, web_db: Any
) -> None:
    c = client.shared("coordinator")
    subject_id = register(c)
    r = c.post(f"/patients/{subject_id}/screen/checklist", data=eligible_form(ecog="one"))
    assert r.status_code == 200
    assert 'class="scr-notes"' in r.text
    assert rows_of(r.text)["IN3"][0] == "unknown"


def test_saving_the_screening_lands_through_the_service_and_the_page_shows_the_stored_checklist(
    client: world.Clients, web_db: Any
) -> None:
    c = client.shared("coordinator")
    subject_id = register(c)
    save_screening(c, subject_id, eligible_form())
    screening = stored(web_db, "screenings", subject_id)
    assert screening.value.labs["haemoglobin"] == d.LabValue(125.0, "g/L", 160.0)
    assert screening.value.ecog == 1 and screening.value.diet is d.DietLevel.NORMAL
    assert any(reason == "entered in the web application" for _, reason in audited(web_db, "coordinator", "screenings"))
    page = c.get(f"/patients/{subject_id}/screen?notice=saved").text
    assert_rows_equal_engine(page, expected_checklist(web_db, subject_id, screening.value))
    assert f'name="version" value="{screening.version}"' in page


def test_an_edit_without_a_reason_is_refused_beside_the_reason(client: world.Clients, web_db: Any) -> None:
    c = client.shared("coordinator")
    subject_id = register(c)
    save_screening(c, subject_id, eligible_form())
    r = c.post(f"/patients/{subject_id}/screen", data=eligible_form(ecog="0", version="1"))
    assert r.status_code == 422
    assert 'id="f-reason-error"' in r.text
    assert stored(web_db, "screenings", subject_id).value.ecog == 1


def test_an_edit_with_a_reason_is_saved_and_audited_with_it(client: world.Clients, web_db: Any) -> None:
    c = client.shared("investigator")
    subject_id = register(c)
    save_screening(c, subject_id, eligible_form())
    save_screening(c, subject_id, eligible_form(ecog="0", version="1", reason="ECOG re-assessed"))
    assert stored(web_db, "screenings", subject_id).value.ecog == 0
    assert ("ecog", "ECOG re-assessed") in audited(web_db, "investigator", "screenings")


def test_a_stale_version_is_refused_with_409_naming_who_changed_what(client: world.Clients, web_db: Any) -> None:
    subject_id = register(client.shared("coordinator"))
    save_screening(client.shared("coordinator"), subject_id, eligible_form())
    save_screening(client.shared("investigator"), subject_id, eligible_form(ecog="0", version="1", reason="re-check"))
    r = client.shared("coordinator").post(
        f"/patients/{subject_id}/screen", data=eligible_form(lesion_count="5", version="1", reason="recount")
    )
    assert r.status_code == 409
    assert "investigator" in r.text and 'class="conflict"' in r.text
    assert stored(web_db, "screenings", subject_id).value.lesion_count == 4


def test_an_unknown_lab_unit_is_refused_beside_its_control(client: world.Clients, web_db: Any) -> None:
    c = client.shared("coordinator")
    subject_id = register(c)
    r = c.post(f"/patients/{subject_id}/screen", data=eligible_form(**{"lab-haemoglobin-unit": "mmol/L"}))
    assert r.status_code == 422
    assert 'id="lab-haemoglobin-unit-error"' in r.text, r.text.split('<main id="main">')[1][:1500]


def test_a_value_out_of_range_is_refused_beside_its_field(client: world.Clients) -> None:
    c = client.shared("coordinator")
    subject_id = register(c)
    r = c.post(f"/patients/{subject_id}/screen", data=eligible_form(ecog="9"))
    assert r.status_code == 422
    assert 'id="f-ecog-error"' in r.text


# --- enrolment and screen failure


def test_enrolment_is_refused_with_the_services_reasons_while_the_adjudication_has_one_signature(
    client: world.Clients, web_db: Any
) -> None:
    subject_id = register(client.shared("coordinator"))
    save_screening(client.shared("coordinator"), subject_id, eligible_form())
    adjudicate(web_db, subject_id, ("dcp1",))
    inv = client.shared("investigator")
    page = inv.get(f"/patients/{subject_id}/enrol")
    assert page.status_code == 200
    assert len(rows_of(page.text)) == 20
    version = stored(web_db, "patients", subject_id).version
    r = inv.post(f"/patients/{subject_id}/enrol", data={"on": today().isoformat(), "version": str(version)})
    assert r.status_code == 422
    from abscopal.services import enrolment

    with UnitOfWork(web_db.engine, "investigator", "read") as uow:
        actor = Actor("investigator", "Test Investigator", d.Role.INVESTIGATOR, frozenset({world.QFS}))
        _, reasons = enrolment.eligibility_of(uow, actor, subject_id, on=today())
    assert reasons
    shown = re.search(r'<ul lang="en" class="scr-refusal">(.*?)</ul>', r.text, re.S)
    assert shown is not None
    assert [html.unescape(x) for x in re.findall(r"<li>(.*?)</li>", shown.group(1))] == reasons
    assert stored(web_db, "patients", subject_id).value.status is d.PatientStatus.SCREENING


def test_enrolment_with_two_signatures_records_the_protocol_version_in_force_that_day(
    client: world.Clients, web_db: Any
) -> None:
    subject_id = register(client.shared("coordinator"))
    save_screening(client.shared("coordinator"), subject_id, eligible_form())
    adjudicate(web_db, subject_id, ("dcp1", "dcp2"))
    inv = client.shared("investigator")
    version = stored(web_db, "patients", subject_id).version
    r = inv.post(f"/patients/{subject_id}/enrol", data={"on": today().isoformat(), "version": str(version)})
    assert r.status_code == 303, r.text[-3000:]
    patient = stored(web_db, "patients", subject_id).value
    in_force = load_bundled().version_on(today()).version.number
    assert patient.status is d.PatientStatus.ENROLLED and patient.enrolment_date == today()
    assert patient.protocol_version == in_force
    page = inv.get(r.headers["location"]).text
    assert f"under protocol version {in_force}" in page


def test_a_coordinator_may_not_enrol(client: world.Clients) -> None:
    subject_id = register(client.shared("coordinator"))
    assert client.shared("coordinator").get(f"/patients/{subject_id}/enrol").status_code == 403


def test_a_screen_failure_keeps_its_reasons_with_the_screening_and_in_the_audit_trail(
    client: world.Clients, web_db: Any
) -> None:
    subject_id = register(client.shared("coordinator"))
    save_screening(client.shared("coordinator"), subject_id, eligible_form(age_years="70"))
    inv = client.shared("investigator")
    page = inv.get(f"/patients/{subject_id}/enrol").text
    expected = expected_checklist(web_db, subject_id, stored(web_db, "screenings", subject_id).value)
    suggested = "; ".join(f"{r.criterion_id} {r.label}: {r.reason}" for r in expected.results if r.excludes)
    assert html.escape(suggested, quote=False) in page  # the form is filled in with the engine's excluding criteria
    version = stored(web_db, "patients", subject_id).version
    r = inv.post(f"/patients/{subject_id}/screen/fail", data={"failure_reason": suggested, "version": str(version)})
    assert r.status_code == 303, r.text[-2000:]
    assert stored(web_db, "patients", subject_id).value.status is d.PatientStatus.SCREEN_FAILED
    assert stored(web_db, "screenings", subject_id).value.screen_failure_reason == suggested
    assert any(reason == suggested for _, reason in audited(web_db, "investigator", "patients"))


def consort_count(db: Any, criterion: str) -> int:
    """How many patients the report's CONSORT diagram excludes under ``criterion`` (from the stored trial)."""
    from abscopal.analysis.populations import consort_flow, populations
    from abscopal.reports.io import load_trial

    with db.engine.connect() as conn:
        data = load_trial(conn)
    flow = consort_flow(data, populations(data, ()), load_bundled())
    return sum(n for label, n in flow.exclusion_reasons if label.split(" ")[0] == criterion)


def test_a_screen_failure_is_counted_under_its_criterion_in_the_reports_consort_diagram(
    client: world.Clients, web_db: Any
) -> None:
    before = consort_count(web_db, "IN2")
    subject_id = register(client.shared("coordinator"))
    save_screening(client.shared("coordinator"), subject_id, eligible_form(age_years="70"))
    version = stored(web_db, "patients", subject_id).version
    r = client.shared("investigator").post(
        f"/patients/{subject_id}/screen/fail", data={"failure_reason": "IN2: age 70", "version": str(version)}
    )
    assert r.status_code == 303
    assert consort_count(web_db, "IN2") == before + 1


def test_a_screen_failure_without_reasons_is_refused_beside_the_field(client: world.Clients, web_db: Any) -> None:
    subject_id = register(client.shared("coordinator"))
    version = stored(web_db, "patients", subject_id).version
    r = client.shared("investigator").post(
        f"/patients/{subject_id}/screen/fail", data={"failure_reason": " ", "version": str(version)}
    )
    assert r.status_code == 422
    assert 'id="f-failure_reason-error"' in r.text
    assert stored(web_db, "patients", subject_id).value.status is d.PatientStatus.SCREENING


@pytest.mark.parametrize("path", ["/screening/new", "/patients/{s}/screen", "/patients/{s}/enrol"])
def test_the_pages_carry_no_inline_script_or_style(client: world.Clients, path: str) -> None:
    from test_pages import assert_no_inline

    c = client.shared("investigator")
    subject_id = register(c)
    r = c.get(path.format(s=subject_id))
    assert r.status_code == 200
    assert_no_inline(r.text)
    assert '<link rel="stylesheet" href="/static/screening.css">' in r.text
