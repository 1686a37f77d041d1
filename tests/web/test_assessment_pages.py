"""The tumour-assessment grid (issue 12 item 6; web.md §4, §8): what it shows is the response engine's output for
the stored records, its entry goes through ``services.assessments.record_assessment`` (audited, discrepancy query
raised), and a refused value is a sentence beside its cell.

Expected numbers are computed here by calling the engine on the records as stored, never re-typed.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path
from typing import Any

import lxml.html
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import world

from abscopal import domain as d
from abscopal.analysis.figures import spider_series, waterfall_bars
from abscopal.protocol import radiotherapy as rt
from abscopal.response import Criteria, SubjectFacts, SubjectResponse, derive_subject
from abscopal.services.assessments import pending_iupd
from abscopal.services.common import protocol_of
from abscopal.store.unit_of_work import UnitOfWork
from abscopal.web import audit_view

#: Patients of the synthetic cohort each writing test uses alone (the module's database is shared).
ENTRY_PATIENT = "QFS-000001"
QUERY_PATIENT = "QFS-000002"
#: ... and the one not yet in iCPD (the iUPD test writes to it in a database of its own).
IUPD_PATIENT = world.QFS_PATIENT
REFUSAL_PATIENT = "QFS-000005"
EDIT_PATIENT = "QFS-000006"


def grid_url(subject_id: str = world.QFS_PATIENT) -> str:
    return f"/patients/{subject_id}/assessment-grid"


def page_of(response: Any) -> Any:
    return lxml.html.fromstring(response.text)


def texts(page: Any, css_class: str) -> list[str]:
    """The text of every grid cell with ``css_class``, in column order."""
    cells = page.xpath(f"//table[@id='assessment-grid']//td[contains(concat(' ', @class, ' '), ' {css_class} ')]")
    return [" ".join(c.text_content().split()) for c in cells]


def stored(db: Any, subject_id: str) -> tuple[d.Patient, list[Any], Any]:
    """The patient, its stored assessments (by date) and its protocol, read straight from the database."""
    with UnitOfWork(db.engine, "test", "read") as uow:
        patient = uow.patients.find(subject_id=subject_id)
        assert patient is not None
        assessments = sorted(uow.assessments.for_subject(subject_id), key=lambda s: s.value.assessment_date)
        fractions = [s.value for s in uow.fractions.for_subject(subject_id)]
        cycles = [s.value for s in uow.immunotherapy_cycles.for_subject(subject_id)]
    p = patient.value
    reference = rt.first_study_treatment(fractions, cycles, p.enrolment_date)
    return p, assessments, SubjectFacts(p.subject_id, reference, p.death_date, p.new_therapy_date)


def engine(db: Any, subject_id: str, criteria: Criteria) -> SubjectResponse:
    """The engine's derivation of the stored records (the way the API's /response calls it)."""
    p, assessments, facts = stored(db, subject_id)
    return derive_subject([s.value for s in assessments], facts, protocol_of(p, None).response, criteria)


def lesions_of(db: Any, subject_id: str) -> list[d.Lesion]:
    with UnitOfWork(db.engine, "test", "read") as uow:
        return [s.value for s in uow.lesions.for_subject(subject_id)]


def full_column(db: Any, subject_id: str, day: dt.date, factor: float = 1.0, **extra: str) -> dict[str, str]:
    """A new column's form: every registered target at ``factor`` x its last diameter, every non-target present."""
    _, assessments, _ = stored(db, subject_id)
    last = {m.lesion_id: m for m in assessments[-1].value.measurements} if assessments else {}
    form = {"assessment_date": day.isoformat(), "method": "CT"}
    for x in lesions_of(db, subject_id):
        if x.lesion_class is d.LesionClass.TARGET:
            previous = last.get(x.lesion_id)
            base = previous.diameter_mm if previous and previous.diameter_mm is not None else x.baseline_diameter_mm
            form[f"m-{x.lesion_id}-d"] = f"{round((base or 10.0) * factor, 1):g}"
        elif x.lesion_class is d.LesionClass.NON_TARGET:
            form[f"m-{x.lesion_id}-s"] = "present"
    return {**form, **extra}


def post(c: Any, path: str, data: dict[str, str]) -> Any:
    return c.post(path, data={"csrf_token": c.csrf, **data})


def next_day(db: Any, subject_id: str, weeks: int = 6) -> dt.date:
    _, assessments, _ = stored(db, subject_id)
    return assessments[-1].value.assessment_date + dt.timedelta(weeks=weeks)


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1f}%"


# --- what the grid shows


def test_the_grid_has_a_row_per_lesion_targets_first_and_a_column_per_assessment_baseline_first(
    client: world.Clients, web_db: Any
) -> None:
    response = client.shared("investigator").get(grid_url())
    assert response.status_code == 200, response.text
    page = page_of(response)
    rows = page.xpath(
        "//table[@id='assessment-grid']/tbody[contains(@class,'lesions')]//th[@scope='row']/span[@class='lid']"
    )
    classes = {x.lesion_id: x.lesion_class for x in lesions_of(web_db, world.QFS_PATIENT)}
    shown = [r.text for r in rows]
    assert sorted(shown) == sorted(classes)
    kinds = [classes[lid] for lid in shown]
    assert kinds == sorted(kinds, key=[d.LesionClass.TARGET, d.LesionClass.NON_TARGET, d.LesionClass.NEW].index)
    _, assessments, _ = stored(web_db, world.QFS_PATIENT)
    heads = page.xpath("//table[@id='assessment-grid']/thead//th[contains(@class,'date')]/span[@class='day']")
    assert [h.text for h in heads] == [s.value.assessment_date.isoformat() for s in assessments]


def test_the_sums_and_percent_changes_on_the_page_equal_the_engines_output(client: world.Clients, web_db: Any) -> None:
    page = page_of(client.shared("radiologist").get(grid_url()))
    derived = engine(web_db, world.QFS_PATIENT, Criteria.IRECIST)
    assert texts(page, "sum") == [f"{t.sum_mm:g}" if t.sum_mm is not None else "—" for t in derived.timepoints]
    assert texts(page, "pct-baseline") == ["—"] + [pct(t.pct_from_baseline) for t in derived.timepoints[1:]]
    assert texts(page, "pct-nadir") == [pct(t.pct_from_nadir) for t in derived.timepoints]


def test_the_recist_and_irecist_responses_on_the_page_equal_the_engines_output(
    client: world.Clients, web_db: Any
) -> None:
    page = page_of(client.shared("monitor").get(grid_url()))
    for css, criteria in (("recist11", Criteria.RECIST11), ("irecist", Criteria.IRECIST)):
        derived = engine(web_db, world.QFS_PATIENT, criteria)
        shown = [re.sub(r" \(.*", "", t) for t in texts(page, css)]
        assert shown == [str(t.overall) if t.overall is not None else "—" for t in derived.timepoints], css
    recist = engine(web_db, world.QFS_PATIENT, Criteria.RECIST11)
    assert texts(page, "target-response") == [str(t.target) if t.target else "—" for t in recist.timepoints]
    assert texts(page, "nontarget-response") == [str(t.non_target) if t.non_target else "—" for t in recist.timepoints]


def test_the_spider_and_waterfall_are_the_reports_series_with_a_text_alternative(
    client: world.Clients, web_db: Any
) -> None:
    page = page_of(client.shared("statistician").get(grid_url()))
    derived = engine(web_db, world.QFS_PATIENT, Criteria.IRECIST)
    series = spider_series({world.QFS_PATIENT: derived})[0]
    svg = page.xpath("//figure[@class='spider']/svg")[0]
    assert svg.get("role") == "img" and svg.get("aria-labelledby")
    assert len(svg.xpath(".//circle")) == len(series.pct) + 1  # (0 weeks, 0%) and each assessment
    rows = page.xpath("//table[@class='plot-data']/tbody/tr")
    assert [[c.text_content() for c in r] for r in rows] == [
        [f"{w:.1f}", f"{p:+.1f}%"] for w, p in zip(series.weeks, series.pct, strict=True)
    ]
    bar = waterfall_bars({world.QFS_PATIENT: derived})[0]
    label = page.xpath("//figure[@class='waterfall']/svg")[0].get("aria-label")
    assert f"{bar.best_pct:+.1f}%" in label and bar.response in label


def test_a_reader_sees_the_grid_without_any_input(client: world.Clients) -> None:
    page = page_of(client.shared("monitor").get(grid_url()))
    assert not page.xpath("//form[@id='f-new']") and not page.xpath("//main//input[@type='text']")
    assert not page.xpath("//form[contains(@class,'respond')]")


def test_the_page_has_no_inline_script_or_style(client: world.Clients) -> None:
    html = client.shared("investigator").get(grid_url()).text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"\sstyle\s*=", html) and "<style" not in html
    assert '<link rel="stylesheet" href="/static/assessments.css">' in html


def test_another_sites_patient_has_no_grid(client: world.Clients) -> None:
    assert client.shared("investigator").get(grid_url(world.JNC_PATIENT)).status_code == 404


def test_a_patient_without_assessments_is_told_what_to_do_next(client: world.Clients) -> None:
    page = page_of(client.shared("coordinator2").get(grid_url(world.JNC_PATIENT)))
    assert "lesion registry" in page.xpath("//p[@class='empty']")[0].text_content()


# --- entry through the service


def test_a_new_assessment_is_entered_through_the_service_and_audited(client: world.Clients, web_db: Any) -> None:
    c = client.shared("radiologist")
    day = next_day(web_db, ENTRY_PATIENT)
    response = post(c, grid_url(ENTRY_PATIENT) + "/new", full_column(web_db, ENTRY_PATIENT, day, 0.9))
    assert response.status_code == 303, response.text
    _, assessments, _ = stored(web_db, ENTRY_PATIENT)
    new = assessments[-1]
    assert new.value.assessment_date == day and new.value.method == "CT"
    assert {m.lesion_id for m in new.value.measurements} == {x.lesion_id for x in lesions_of(web_db, ENTRY_PATIENT)}
    with web_db.engine.connect() as conn:
        trail = audit_view.record_history(conn, "tumour_assessments", new.id)
    assert trail and trail[0].username == "radiologist" and trail[0].reason == "entered in the assessment grid"
    page = page_of(c.get(response.headers["location"]))
    assert page.xpath("//p[@class='notice']")[0].text_content() == "The assessment was entered."


def test_a_target_written_ts_is_recorded_too_small_at_the_protocols_5_mm_and_summed_by_the_engine(
    client: world.Clients, web_db: Any
) -> None:
    # response-rules.md §2: "too small to measure" is entered as 5 mm (the protocol's too_small_to_measure_mm)
    c = client.shared("radiologist")
    target = next(x for x in lesions_of(web_db, ENTRY_PATIENT) if x.lesion_class is d.LesionClass.TARGET)
    name = f"m-{target.lesion_id}-d"
    form = full_column(web_db, ENTRY_PATIENT, next_day(web_db, ENTRY_PATIENT), **{name: "ts"})
    response = post(c, grid_url(ENTRY_PATIENT) + "/new", form)
    assert response.status_code == 303, response.text
    _, assessments, _ = stored(web_db, ENTRY_PATIENT)
    cell = next(m for m in assessments[-1].value.measurements if m.lesion_id == target.lesion_id)
    assert (cell.diameter_mm, cell.too_small) == (5.0, True)
    derived = engine(web_db, ENTRY_PATIENT, Criteria.RECIST11).timepoints[-1]
    expected = sum(float(v) for k, v in form.items() if k.endswith("-d") and k != name) + 5.0
    assert derived.sum_mm == pytest.approx(expected)
    page = c.get(grid_url(ENTRY_PATIENT)).text
    assert "5 · too small" in page


def test_a_negative_diameter_is_a_sentence_beside_its_cell(client: world.Clients, web_db: Any) -> None:
    before = len(stored(web_db, REFUSAL_PATIENT)[1])
    target = next(x for x in lesions_of(web_db, REFUSAL_PATIENT) if x.lesion_class is d.LesionClass.TARGET)
    name = f"m-{target.lesion_id}-d"
    form = full_column(web_db, REFUSAL_PATIENT, next_day(web_db, REFUSAL_PATIENT), **{name: "-4"})
    response = post(client.shared("radiologist"), grid_url(REFUSAL_PATIENT) + "/new", form)
    assert response.status_code == 422, response.text
    cell = page_of(response).xpath(f"//input[@id='n-{name}']")[0]
    assert cell.get("aria-invalid") == "true" and cell.get("value") == "-4"
    sentence = page_of(response).xpath(f"//p[@id='{cell.get('aria-describedby')}']")[0].text_content()
    assert "not plausible" in sentence and "Traceback" not in response.text
    summary = page_of(response).xpath("//ul[@class='error-list']/li/a")
    assert [(a.get("href"), a.text) for a in summary] == [(f"#n-{name}", target.lesion_id)]
    assert len(stored(web_db, REFUSAL_PATIENT)[1]) == before  # nothing written


def test_a_target_without_a_diameter_is_a_sentence_beside_its_cell(client: world.Clients, web_db: Any) -> None:
    before = len(stored(web_db, REFUSAL_PATIENT)[1])
    target = next(x for x in lesions_of(web_db, REFUSAL_PATIENT) if x.lesion_class is d.LesionClass.TARGET)
    name = f"m-{target.lesion_id}-d"
    form = full_column(web_db, REFUSAL_PATIENT, next_day(web_db, REFUSAL_PATIENT), **{name: ""})
    response = post(client.shared("investigator"), grid_url(REFUSAL_PATIENT) + "/new", form)
    assert response.status_code == 422, response.text
    page = page_of(response)
    cell = page.xpath(f"//input[@id='n-{name}']")[0]
    sentence = page.xpath(f"//p[@id='{cell.get('aria-describedby')}']")[0].text_content()
    assert f"target lesion {target.lesion_id} needs its diameter" in sentence
    assert len(stored(web_db, REFUSAL_PATIENT)[1]) == before


def test_a_cell_that_is_not_a_number_is_a_sentence_beside_it(client: world.Clients, web_db: Any) -> None:
    target = next(x for x in lesions_of(web_db, REFUSAL_PATIENT) if x.lesion_class is d.LesionClass.TARGET)
    name = f"m-{target.lesion_id}-d"
    form = full_column(web_db, REFUSAL_PATIENT, next_day(web_db, REFUSAL_PATIENT), **{name: "twelve"})
    response = post(client.shared("radiologist"), grid_url(REFUSAL_PATIENT) + "/new", form)
    assert response.status_code == 422
    assert page_of(response).xpath(f"//p[@id='n-{name}-error']")[0].text_content().startswith("Write the diameter")


def test_an_empty_form_names_the_missing_date(client: world.Clients) -> None:
    response = post(client.shared("radiologist"), grid_url(REFUSAL_PATIENT) + "/new", {})
    assert response.status_code == 422
    assert page_of(response).xpath("//p[@id='n-assessment_date-error']")


def test_an_investigator_response_that_differs_from_the_derived_one_raises_a_query_shown_in_the_grid(
    client: world.Clients, web_db: Any
) -> None:
    _, assessments, _ = stored(web_db, QUERY_PATIENT)
    last = assessments[-1]
    derived = engine(web_db, QUERY_PATIENT, Criteria.IRECIST).timepoints[-1].overall
    given = "iCPD" if str(derived) != "iCPD" else "iCR"
    c = client.shared("investigator")
    response = post(
        c, f"{grid_url(QUERY_PATIENT)}/{last.id}/response",
        {"investigator_response": given, "version": str(last.version)},
    )  # fmt: skip
    assert response.status_code == 303, response.text
    assert "notice=query" in response.headers["location"]
    with UnitOfWork(web_db.engine, "test", "read") as uow:
        raised = [q.value for q in uow.queries.for_subject(QUERY_PATIENT) if q.value.record_id == last.id]
    assert len(raised) == 1 and raised[0].field == "investigator_response"
    page = page_of(c.get(grid_url(QUERY_PATIENT)))
    cell = page.xpath("//td[contains(@class,'investigator-response')]")[len(assessments) - 1]
    assert "discrepant" in cell.get("class") and f"differs from the derived {derived}" in cell.text_content()
    queries = texts(page, "queries")
    assert raised[0].text in queries[len(assessments) - 1]


def test_changing_a_recorded_response_needs_a_reason(client: world.Clients, web_db: Any) -> None:
    _, assessments, _ = stored(web_db, QUERY_PATIENT)
    with_response = [s for s in assessments if s.value.investigator_response]
    assert with_response, "run after the discrepancy test (module order) or record a response first"
    target = with_response[-1]
    response = post(
        client.shared("investigator"), f"{grid_url(QUERY_PATIENT)}/{target.id}/response",
        {"investigator_response": "iSD", "version": str(target.version)},
    )  # fmt: skip
    assert response.status_code == 422
    assert "needs a reason" in page_of(response).xpath(f"//p[@id='r-{target.id}-reason-error']")[0].text_content()


def test_a_radiologist_may_not_record_the_investigator_response(client: world.Clients, web_db: Any) -> None:
    _, assessments, _ = stored(web_db, QUERY_PATIENT)
    last = assessments[-1]
    response = post(
        client.shared("radiologist"), f"{grid_url(QUERY_PATIENT)}/{last.id}/response",
        {"investigator_response": "iPR", "version": str(last.version)},
    )  # fmt: skip
    assert response.status_code == 403


def test_an_iupd_awaiting_confirmation_is_shown_with_its_confirmation_window(
    fresh_client: world.Clients, fresh_web_db: Any
) -> None:
    db, sid = fresh_web_db, IUPD_PATIENT  # the one patient of the cohort not yet in iCPD, in a database of its own
    form = full_column(db, sid, next_day(db, sid), 1.0, **{"new-organ": "liver", "new-d": "14"})
    response = post(fresh_client.session("radiologist"), grid_url(sid) + "/new", form)
    assert response.status_code == 303, response.text
    derived = engine(db, sid, Criteria.IRECIST)
    p, _, _ = stored(db, sid)
    pending = pending_iupd(derived, protocol_of(p, None).response)
    assert pending is not None and str(derived.timepoints[-1].overall) == "iUPD"
    page = page_of(fresh_client.session("investigator").get(grid_url(sid)))
    note = " ".join(page.xpath("//p[@class='pending']")[0].text_content().split())
    assert pending.iupd_date.isoformat() in note
    assert f"between {pending.window_start} and {pending.window_end}" in note
    assert texts(page, "irecist")[-1].startswith("iUPD")
    assert "awaiting confirmation" in texts(page, "irecist")[-1]
    new_rows = page.xpath("//tbody[contains(@class,'new')]//span[@class='lid']")
    assert [r.text for r in new_rows] == ["N01"]

    # editing an earlier column does not put the new lesion there (it was not seen then)
    _, assessments, _ = stored(db, sid)
    earlier = assessments[-2]
    c = fresh_client.session("radiologist")
    edit = page_of(c.get(f"{grid_url(sid)}?edit={earlier.id}"))
    form = {i.get("name"): i.get("value") or "" for i in edit.xpath("//input[@form='f-edit']")}
    for s in edit.xpath("//select[@form='f-edit']"):
        chosen = s.xpath("./option[@selected]")
        form[s.get("name")] = chosen[0].get("value") if chosen else ""
    assert form["m-N01-d"] == "" and form["m-N01-s"] == ""
    changed = {**form, "method": "MRI", "version": str(earlier.version), "reason": "method corrected"}
    saved = post(c, f"{grid_url(sid)}/{earlier.id}", changed)
    assert saved.status_code == 303, saved.text
    again = next(s for s in stored(db, sid)[1] if s.id == earlier.id)
    assert again.version == earlier.version + 1
    assert {m.lesion_id for m in again.value.measurements} == {m.lesion_id for m in earlier.value.measurements}


def test_an_edit_saves_with_its_reason_and_a_stale_version_is_refused_with_409(
    client: world.Clients, web_db: Any
) -> None:
    _, assessments, _ = stored(web_db, EDIT_PATIENT)
    record = assessments[-1]
    c = client.shared("radiologist")
    page = page_of(c.get(f"{grid_url(EDIT_PATIENT)}?edit={record.id}"))
    form = {i.get("name"): i.get("value") or "" for i in page.xpath("//input[@form='f-edit']")}
    for s in page.xpath("//select[@form='f-edit']"):
        chosen = s.xpath("./option[@selected]")
        form[s.get("name")] = chosen[0].get("value") if chosen else ""
    form.update({"version": str(record.version), "method": "MRI"})
    refused = post(c, f"{grid_url(EDIT_PATIENT)}/{record.id}", form)
    assert refused.status_code == 422
    assert page_of(refused).xpath("//p[@id='e-reason-error']")
    saved = post(c, f"{grid_url(EDIT_PATIENT)}/{record.id}", {**form, "reason": "method corrected from the report"})
    assert saved.status_code == 303, saved.text
    assert stored(web_db, EDIT_PATIENT)[1][-1].value.method == "MRI"
    stale = post(c, f"{grid_url(EDIT_PATIENT)}/{record.id}", {**form, "method": "PET-CT", "reason": "again"})
    assert stale.status_code == 409
    conflict = page_of(stale).xpath("//section[@class='conflict']")[0].text_content()
    assert "radiologist" in conflict and "method" in conflict


@pytest.mark.parametrize("username", ["coordinator", "radonc", "datamanager"])
def test_a_role_that_may_not_enter_measurements_is_refused_with_403(client: world.Clients, username: str) -> None:
    response = post(client.shared(username), grid_url(ENTRY_PATIENT) + "/new", {"assessment_date": "2024-01-01"})
    assert response.status_code == 403
