"""The trial report page (web.md §8; issue 12 item 10): the report is generated in the background by the API's job
(progress polled with htmx), only its owner sees it, and the downloads are a real HTML report with its title and a
real PDF.
"""

from __future__ import annotations

import html
import re
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))
import world

from abscopal.store.tables import audit_log

TITLE = "Interim report for the page test"


def text_of(response: Any) -> str:
    main = str(response.text).split('<main id="main">', 1)[-1]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", main)))


def job_id_of(page: Any) -> str:
    found = re.search(r'id="job-([0-9a-f]{32})"', page.text)
    assert found, text_of(page)[:1500]
    return found.group(1)


def wait_done(c: Any, job_id: str, timeout: float = 120) -> str:
    """Poll the job's fragment as htmx does until it stops polling; the fragment's final HTML."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fragment = c.get(f"/report/jobs/{job_id}", headers={"HX-Request": "true"})
        assert fragment.status_code == 200, fragment.text
        if "hx-trigger" not in fragment.text:
            return str(fragment.text)
        time.sleep(0.3)
    raise AssertionError(f"the report job {job_id} did not finish in {timeout} s")


def test_the_report_page_has_an_empty_state_that_says_what_to_do(client: world.Clients) -> None:
    page = client.session("statistician").get("/report")
    assert page.status_code == 200
    assert "You have not generated a report since the server started." in text_of(page)
    assert 'id="report-form"' in page.text


def test_a_cutoff_that_is_not_a_date_is_refused_beside_the_field(client: world.Clients) -> None:
    r = client.session("datamanager").post("/report", data={"cutoff": "yesterday"})
    assert r.status_code == 422
    found = re.search(r'<p class="field-error" id="report-cutoff-error">([^<]+)</p>', r.text)
    assert found and found.group(1) == "Give the data cut-off as a date (YYYY-MM-DD)."


def test_the_report_runs_in_the_background_and_downloads_as_real_html_and_pdf(
    client: world.Clients, web_db: Any
) -> None:
    stat = client.session("statistician")
    started = stat.post("/report", data={"cutoff": "2026-06-30", "title": TITLE})
    assert started.status_code == 303 and started.headers["location"] == "/report?notice=started"
    page = stat.get(started.headers["location"])
    job_id = job_id_of(page)
    assert "The report is being generated." in text_of(page)
    final = wait_done(stat, job_id)
    assert 'data-status="done"' in final, final
    report_html = stat.get(f"/report/jobs/{job_id}/html")
    assert report_html.status_code == 200 and report_html.headers["content-type"].startswith("text/html")
    assert f"<title>{TITLE}" in report_html.text or f"<title>{html.escape(TITLE)}" in report_html.text
    assert "2026-06-30" in report_html.text
    pdf = stat.get(f"/report/jobs/{job_id}/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and b"%%EOF" in pdf.content[-1024:]
    with web_db.engine.connect() as conn:
        exported = conn.execute(
            select(audit_log.c.new_value).where(
                audit_log.c.entity == "security", audit_log.c.entity_key == "statistician",
                audit_log.c.field == "exported",
            )
        ).scalars().all()  # fmt: skip
    assert any("report requested" in str(v) for v in exported)

    # only the job's owner sees it: another exporter's page does not list it and its addresses are 404
    dm = client.session("datamanager")
    assert job_id not in dm.get("/report").text
    assert dm.get(f"/report/jobs/{job_id}", headers={"HX-Request": "true"}).status_code == 404
    assert dm.get(f"/report/jobs/{job_id}/pdf").status_code == 404


def test_a_role_without_the_export_right_cannot_open_the_report_page(client: world.Clients) -> None:
    for username in ("investigator", "monitor", "dcp1"):
        assert client.session(username).get("/report").status_code == 403
