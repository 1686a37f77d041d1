"""``abscopal report`` end to end: a demo database of 60 synthetic patients, the report written as a self-contained
HTML file and a PDF whose every page has content; an empty database; errors as one sentence."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest
from typer.testing import CliRunner

from abscopal.cli import app
from abscopal.cli.demo import build_demo_database
from abscopal.store.database import make_engine
from abscopal.store.migrate import upgrade

runner = CliRunner()

SECTIONS = ("title", "consort", "baseline", "response", "orr", "bor", "time-to-event", "pfs", "os", "follow-up",
            "dor", "roles", "safety", "safety-overall", "safety-monitor", "safety-soc", "safety-related",
            "safety-aesi", "safety-sae", "qol", "ttd", "options", "reproducibility")  # fmt: skip


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    root = tmp_path_factory.mktemp("report")
    url = f"sqlite:///{root / 'demo.sqlite'}"
    build_demo_database(url, 60, 20221231)
    out = root / "out"
    result = runner.invoke(app, ["report", "--output", str(out), "--database-url", url, "--cutoff", "2030-01-01"])
    assert result.exit_code == 0, result.output
    return out, result.output, url


def page_images(pdf_path: Path) -> list[np.ndarray]:
    pdf = pdfium.PdfDocument(str(pdf_path))
    try:
        return [np.asarray(pdf[i].render(scale=0.4).to_pil().convert("L"), dtype=float) for i in range(len(pdf))]
    finally:
        pdf.close()


def test_report_writes_html_and_pdf_and_says_where(demo_report: tuple[Path, str, str]) -> None:
    out, output, _ = demo_report
    assert (out / "report.html").stat().st_size > 10_000 and (out / "report.pdf").stat().st_size > 10_000
    assert "report.html" in output and "pages" in output


def test_report_html_is_self_contained(demo_report: tuple[Path, str, str]) -> None:
    html = (demo_report[0] / "report.html").read_text(encoding="utf-8")
    references = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html)
    assert references, "the report has images and links"
    assert all(r.startswith(("data:image/png;base64,", "#")) for r in references)
    assert "<link" not in html and "@import" not in html and "url(" not in html


def test_report_html_has_every_section_and_the_key_numbers(demo_report: tuple[Path, str, str]) -> None:
    html = (demo_report[0] / "report.html").read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'id="{section}"' in html, section
    for figure in ("consort", "waterfall", "spider", "swimmer", "pfs", "roles", "heatmap", "qol"):
        assert f'id="fig-{figure}"' in html, figure
    assert "NCT05906329" in html and "Clopper-Pearson" in html and "iRECIST" in html and "RECIST 1.1" in html
    assert re.search(r"content SHA-256 <code>[0-9a-f]{64}</code>", html)
    assert "abscopal report --output" in html  # the command line in the footer
    assert "sd_min_days" in html and "unconfirmed_iupd" in html  # the options used


def test_every_pdf_page_has_content_and_the_page_count_is_plausible(demo_report: tuple[Path, str, str]) -> None:
    pages = page_images(demo_report[0] / "report.pdf")
    assert 8 <= len(pages) <= 40
    for number, page in enumerate(pages, start=1):
        # a blank page has standard deviation 0; a page with one line of text ~2 at this scale
        assert page.std() > 3.0, f"page {number} looks blank"


FLAT = ("Patient", "Lesion", "RadiotherapyCourse", "Fraction", "ImmunotherapyCycle", "AdverseEvent",
        "QuestionnaireAnswer")  # fmt: skip


@pytest.mark.parametrize("name", FLAT)
def test_the_report_reads_the_same_objects_as_the_repository(demo_report: tuple[Path, str, str], name: str) -> None:
    from abscopal import domain as d
    from abscopal.reports.io import flat_records
    from abscopal.store.repository import Repository

    cls = getattr(d, name)
    engine = make_engine(demo_report[2])
    with engine.connect() as conn:
        fast = flat_records(conn, cls)
        assert fast and fast == Repository(conn).all(cls)
    engine.dispose()


@pytest.mark.postgres
def test_the_fast_reader_gives_the_repository_objects_on_sqlite_and_postgresql(engine) -> None:
    import datetime as dt

    from abscopal import domain as d
    from abscopal.reports.io import flat_records
    from abscopal.store.repository import Repository
    from abscopal.store.unit_of_work import UnitOfWork

    at = dt.datetime(2024, 3, 1, 8, 30, tzinfo=dt.UTC)
    records = [
        d.Site("QFS", "Site"),
        d.Patient("S1", "QFS", d.Sex.MALE, dt.date(1960, 1, 1), "1.0", d.PatientStatus.DIED, dt.date(2024, 1, 5)),
        d.AdverseEvent("S1", "S1-AE1", "Fatigue", 10016256, 2, dt.date(2024, 3, 1), serious_hospitalisation=True,
                       attribution_io=d.Attribution.POSSIBLE, awareness_at=at, reported_at=at),
        d.Fraction("S1", "L1", 1, dt.date(2024, 1, 8), 1.6, d.FractionStatus.PARTIAL),
        d.QuestionnaireAnswer("S1", "baseline", d.Instrument.QLQ_C30, 29, None, dt.date(2024, 1, 6)),
    ]  # fmt: skip
    with UnitOfWork(engine, user="test", reason="fixture") as uow:
        uow.add_all(records)
        uow.commit()
    with engine.connect() as conn:
        for record in records[1:]:
            cls = type(record)
            assert flat_records(conn, cls) == [record] == Repository(conn).all(cls)
        with pytest.raises(TypeError, match="child rows"):
            flat_records(conn, d.TumourAssessment)


def test_the_content_hash_is_stable_and_changes_with_the_data(demo_report: tuple[Path, str, str]) -> None:
    from abscopal.reports.io import content_hash

    engine = make_engine(demo_report[2])
    with engine.connect() as conn:
        first, second = content_hash(conn), content_hash(conn)
    engine.dispose()
    assert first == second and re.fullmatch(r"[0-9a-f]{64}", first)
    empty = make_engine(f"sqlite:///{demo_report[0].parent / 'other.sqlite'}")
    upgrade(empty)
    with empty.connect() as conn:
        assert content_hash(conn) != first
    empty.dispose()


def test_report_of_an_empty_database_says_so_in_every_section(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    upgrade(make_engine(url))
    out = tmp_path / "out"
    result = runner.invoke(app, ["report", "-o", str(out), "--database-url", url, "--cutoff", "2025-01-01"])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("No enrolled patients at the data cut-off") >= 5
    assert "No patient has been screened" in html
    assert all(page.std() > 1.0 for page in page_images(out / "report.pdf"))


def test_a_bad_cutoff_is_one_sentence_naming_the_option(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", "-o", str(tmp_path), "--cutoff", "30/06/2025"])
    assert result.exit_code == 1
    assert "--cutoff" in result.output and "YYYY-MM-DD" in result.output and "Traceback" not in result.output


def test_an_output_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "report.txt"
    target.write_text("x")
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    upgrade(make_engine(url))
    result = runner.invoke(app, ["report", "-o", str(target), "--database-url", url])
    assert result.exit_code == 1 and "not a directory" in result.output


@pytest.mark.postgres
def test_report_runs_on_postgresql(postgres_server, tmp_path: Path) -> None:
    if postgres_server is None:
        pytest.skip("PostgreSQL not available (ABSCOPAL_TEST_POSTGRES=0 or no server)")
    name = f"report_{os.getpid()}"
    url = postgres_server.create_database(name)
    try:
        build_demo_database(url, 20, 7)
        out = tmp_path / "out"
        result = runner.invoke(app, ["report", "-o", str(out), "--database-url", url, "--cutoff", "2030-01-01"])
        assert result.exit_code == 0, result.output
        html = (out / "report.html").read_text(encoding="utf-8")
        assert 'id="fig-consort"' in html and "postgresql" in html
        assert len(page_images(out / "report.pdf")) >= 8
    finally:
        postgres_server.drop_database(name)
