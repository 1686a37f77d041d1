"""REDCap import (interop.md §5, §1.5): hand-written REDCap exports of this trial go in through the use cases, all
or nothing. Expected records are written out by hand from the rows of tests/fixtures/interop/redcap_project.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from abscopal import domain as d
from abscopal.errors import InputFileError, PermissionDenied
from abscopal.interop.redcap import ImportFiles, Report, import_redcap, load_mapping
from abscopal.store.database import make_engine
from abscopal.store.migrate import upgrade
from abscopal.store.tables import audit_head, audit_log, metadata
from abscopal.store.unit_of_work import UnitOfWork


def _fixture() -> ModuleType:
    path = Path(__file__).parents[2] / "fixtures" / "interop" / "redcap_project.py"
    spec = importlib.util.spec_from_file_location("redcap_project", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rp = _fixture()
USER = "dm.wang"


def _with_site(engine: Engine) -> Engine:
    with UnitOfWork(engine, "setup", "test set-up: the trial's site") as uow:
        uow.sites.add(d.Site("QFS", "Qianfoshan Hospital"))
        uow.commit()
    return engine


@pytest.fixture
def db(engine: Engine) -> Engine:
    """SQLite and PostgreSQL, with the site registered."""
    return _with_site(engine)


@pytest.fixture
def lite(tmp_path: Path) -> Engine:
    """SQLite only (most rules do not depend on the database)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'redcap.sqlite'}")
    upgrade(engine)
    return _with_site(engine)


class Files:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.mapping = self.write("mapping.toml", rp.MAPPING_TOML.encode())
        self.dictionary = self.write("dictionary.csv", rp.dictionary_csv())

    def write(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        return path

    def odm(self, rows: list[dict[str, Any]] | None = None, **kw: Any) -> ImportFiles:
        return ImportFiles(self.write("export.xml", rp.odm_xml(rows, **kw)), self.mapping)

    def csv(self, rows: list[dict[str, Any]] | None = None, **kw: Any) -> ImportFiles:
        return ImportFiles(self.write("export.csv", rp.raw_csv(rows, **kw)), self.mapping, self.dictionary)


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


def run(engine: Engine, f: ImportFiles, **kw: Any) -> Report:
    return import_redcap(engine, f, user=USER, today=dt.date(2024, 6, 1), **kw)


def state(engine: Engine) -> dict[str, Any]:
    """Row counts of every table and the audit head: equal before and after means nothing was written."""
    with engine.connect() as conn:
        counts = {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in metadata.sorted_tables
        }
        head = conn.execute(sa.select(audit_head.c.last_seq, audit_head.c.last_hash)).all()
    return {"counts": counts, "head": head}


def refused(engine: Engine, f: ImportFiles, **kw: Any) -> InputFileError:
    before = state(engine)
    with pytest.raises(InputFileError) as caught:
        run(engine, f, **kw)
    assert state(engine) == before
    return caught.value


def stored(engine: Engine) -> UnitOfWork:
    return UnitOfWork(engine, "reader", "test read")


# ----------------------------------------------------------------------------- the happy path


def test_odm_export_imports_patients_screenings_lesions_and_adverse_events_as_written_in_redcap(
    db: Engine, files: Files
) -> None:
    report = run(db, files.odm())
    assert report.written
    with stored(db) as uow:
        p101 = uow.patients.find(subject_id="QFS-101")
        assert p101 is not None
        assert p101.value == d.Patient("QFS-101", "QFS", d.Sex.MALE, dt.date(1962, 4, 18), p101.value.protocol_version)
        p102 = uow.patients.find(subject_id="QFS-102")
        assert p102 is not None and (p102.value.sex, p102.value.birth_date) == (d.Sex.FEMALE, dt.date(1958, 11, 2))
        s101 = uow.screenings.find(subject_id="QFS-101")
        assert s101 is not None
        assert s101.value == d.Screening(
            "QFS-101", dt.date(2024, 3, 1), consent_date=dt.date(2024, 2, 28), ecog=1, brain_metastases=False
        )
        lesions = sorted((s.value for s in uow.lesions.for_subject("QFS-101")), key=lambda x: x.lesion_id)
        assert lesions == [
            d.Lesion("QFS-101", "L1", "lung", "右肺上叶 right upper lobe", False, True, 32.5, d.RtRole.NONE),
            d.Lesion("QFS-101", "L2", "lymph node", "纵隔 mediastinal 4R", True, True, 18.0, d.RtRole.NONE),
        ]
        ae1 = uow.adverse_events.find(subject_id="QFS-101", ae_id="101-AE01")
        assert ae1 is not None
        assert ae1.value == d.AdverseEvent(
            "QFS-101", "101-AE01", "Pneumonitis", 10035742, 2, dt.date(2024, 4, 10),
            resolution_date=dt.date(2024, 5, 2), attribution_io=d.Attribution.PROBABLE, immune_related=True,
            verbatim="放射性肺炎",
        )  # fmt: skip


def test_checkbox_option_three_sets_hospitalisation_and_leaves_the_other_criteria_false(
    lite: Engine, files: Files
) -> None:
    run(lite, files.odm())
    with stored(lite) as uow:
        ae2 = uow.adverse_events.find(subject_id="QFS-101", ae_id="101-AE02")
        assert ae2 is not None
        assert ae2.value == d.AdverseEvent(
            "QFS-101", "101-AE02", "Diarrhea", 10012727, 3, dt.date(2024, 4, 15), serious_hospitalisation=True,
            attribution_io=d.Attribution.POSSIBLE, verbatim="腹泻",
        )  # fmt: skip


def test_questionnaire_answers_are_stored_per_visit_with_blank_items_as_missing(lite: Engine, files: Files) -> None:
    run(lite, files.odm())
    with stored(lite) as uow:
        answers = {(s.value.visit, s.value.item): s.value for s in uow.answers.for_subject("QFS-101")}
    assert len(answers) == 90  # baseline, week_6, week_12 x 30 items
    # rp.c30_answers(seed): item n answered (n + seed) % high + 1, high 4 (items 1-28) or 7 (29-30)
    assert answers[("baseline", 1)] == d.QuestionnaireAnswer(
        "QFS-101", "baseline", d.Instrument.QLQ_C30, 1, 2, dt.date(2024, 3, 1)
    )
    assert answers[("week_6", 29)].answer == (29 + 1) % 7 + 1  # = 3
    assert answers[("week_12", 7)].answer is None and answers[("week_12", 30)].answer is None
    assert answers[("week_12", 8)].answer == 10 % 4 + 1


def test_form_not_marked_complete_is_skipped_when_the_mapping_requires_complete(lite: Engine, files: Files) -> None:
    report = run(lite, files.odm())
    with stored(lite) as uow:
        assert uow.answers.for_subject("QFS-102") == []
    assert report.skipped_incomplete == 1


def _demographics_of_102_unverified() -> list[dict[str, Any]]:
    rows = rp.rows()
    for row in rows:
        if row["record_id"] == "102" and "demographics_complete" in row:
            row["demographics_complete"] = "1"  # Unverified
    return rows


@pytest.mark.parametrize("route", ["odm", "csv"])
def test_record_whose_demographics_form_is_not_complete_is_skipped_with_all_its_forms(
    lite: Engine, files: Files, route: str
) -> None:
    # require_complete covers the patient's own form too: without a verified patient, no record of it is imported
    report = run(lite, getattr(files, route)(_demographics_of_102_unverified()))
    assert report.written and report.skipped_records == ["102"]
    assert report.skipped_incomplete == 1  # 102's demographics (its baseline QLQ-C30 is not reached)
    with stored(lite) as uow:
        assert uow.patients.find(subject_id="QFS-102") is None
        assert uow.screenings.find(subject_id="QFS-102") is None
        assert uow.lesions.for_subject("QFS-102") == []
        assert uow.patients.find(subject_id="QFS-101") is not None


def test_demographics_form_not_complete_is_read_when_the_mapping_does_not_require_complete(
    lite: Engine, files: Files
) -> None:
    files.mapping.write_text(rp.MAPPING_TOML.replace("require_complete = true", "require_complete = false"))
    report = run(lite, files.odm(_demographics_of_102_unverified()))
    assert report.skipped_records == [] and report.skipped_incomplete == 0
    with stored(lite) as uow:
        p102 = uow.patients.find(subject_id="QFS-102")
        assert p102 is not None and p102.value.birth_date == dt.date(1958, 11, 2)
        assert len(uow.answers.for_subject("QFS-102")) == 30  # the unverified baseline QLQ-C30 too


def test_csv_export_with_a_byte_order_mark_imports_the_same_records_as_the_odm_export(
    tmp_path: Path, files: Files
) -> None:
    engines = []
    for name, f in (("odm", files.odm()), ("csv", files.csv(bom=True))):
        engine = make_engine(f"sqlite:///{tmp_path / name}.sqlite")
        upgrade(engine)
        run(_with_site(engine), f)
        engines.append(engine)
    values = []
    for engine in engines:
        with stored(engine) as uow:
            values.append(
                sorted(
                    repr(s.value)
                    for repo in (uow.patients, uow.screenings, uow.lesions, uow.adverse_events, uow.answers)
                    for s in repo.all()
                )
            )
    assert values[0] == values[1] and len(values[0]) == 2 + 2 + 3 + 2 + 90


def test_every_audit_record_of_the_import_names_the_project_file_and_its_sha256(db: Engine, files: Files) -> None:
    f = files.odm()
    run(db, f)
    digest = hashlib.sha256(f.export.read_bytes()).hexdigest()
    with db.connect() as conn:
        reasons = set(conn.execute(sa.select(audit_log.c.reason).where(audit_log.c.username == USER)).scalars())
    assert reasons == {f"imported from REDCap project Project.LDRTCFRTNSCLC file export.xml (sha256 {digest})"}


def test_dry_run_reports_new_records_and_writes_nothing(lite: Engine, files: Files) -> None:
    before = state(lite)
    report = run(lite, files.odm(), dry_run=True)
    assert state(lite) == before
    assert not report.written and report.ok
    assert report.counts["adverse_events"] == {"new": 2, "identical": 0, "conflicting": 0}
    assert report.fields_ignored == ["first_name"] and report.fields_unaccounted == []
    assert report.events_mapped == {"baseline_arm_1": "baseline", "week_6_arm_1": "week_6", "week_12_arm_1": "week_12"}


def test_second_import_of_the_same_file_finds_every_record_identical_and_writes_nothing(
    lite: Engine, files: Files
) -> None:
    run(lite, files.odm())
    before = state(lite)
    report = run(lite, files.odm())
    assert state(lite) == before
    assert report.counts["lesions"] == {"new": 0, "identical": 3, "conflicting": 0}
    assert report.counts["questionnaire_answers"]["identical"] == 90


def test_repeating_event_instances_import_as_one_adverse_event_each(lite: Engine, files: Files) -> None:
    run(lite, files.odm(repeating_event="week_6_arm_1"))  # StudyEventRepeatKey 1 and 2, no FormRepeatKey
    with stored(lite) as uow:
        events = {s.value.ae_id: (s.value.term, s.value.grade) for s in uow.adverse_events.for_subject("QFS-101")}
        week_6 = [s for s in uow.answers.for_subject("QFS-101") if s.value.visit == "week_6"]
    assert events == {"101-AE01": ("Pneumonitis", 2), "101-AE02": ("Diarrhea", 3)}
    assert len(week_6) == 30


def test_example_mapping_in_the_docs_is_the_mapping_these_tests_import_with(files: Files) -> None:
    example = Path(__file__).parents[3] / "docs" / "examples" / "redcap-mapping.toml"
    assert load_mapping(example) == load_mapping(files.mapping)


def test_update_keeps_the_fields_the_mapping_does_not_set(lite: Engine, files: Files) -> None:
    run(lite, files.odm())
    aware = dt.datetime(2024, 4, 16, 9, 30, tzinfo=dt.UTC)
    with UnitOfWork(lite, "setup", "test set-up: the site records when it became aware") as uow:
        ae = uow.adverse_events.find(subject_id="QFS-101", ae_id="101-AE02")
        assert ae is not None
        uow.adverse_events.update(ae.id, dataclasses.replace(ae.value, awareness_at=aware), version=ae.version)
        uow.commit()
    assert run(lite, files.odm()).counts["adverse_events"] == {"new": 0, "identical": 2, "conflicting": 0}
    rows = rp.rows()
    _ae(rows, "2")["ae_end"] = "2024-05-20"
    run(lite, files.odm(rows), update=True)
    with stored(lite) as uow:
        ae = uow.adverse_events.find(subject_id="QFS-101", ae_id="101-AE02")
        assert ae is not None
        assert (ae.value.resolution_date, ae.value.awareness_at) == (dt.date(2024, 5, 20), aware)


# ----------------------------------------------------------------------------- refusals


def _ae(rows: list[dict[str, Any]], instance: str = "1") -> dict[str, Any]:
    return next(
        r
        for r in rows
        if r.get("redcap_repeat_instrument") == "adverse_event" and r["redcap_repeat_instance"] == instance
    )


def test_changed_adverse_event_is_refused_as_conflicting_without_update(lite: Engine, files: Files) -> None:
    run(lite, files.odm())
    rows = rp.rows()
    _ae(rows)["ae_grade"] = "3"
    error = refused(lite, files.odm(rows))
    assert any("--update" in p.reason and "101-AE01" in p.reason for p in error.problems)


def test_update_replaces_the_changed_adverse_event_through_the_use_case(lite: Engine, files: Files) -> None:
    run(lite, files.odm())
    rows = rp.rows()
    _ae(rows)["ae_grade"] = "3"
    report = run(lite, files.odm(rows), update=True)
    assert report.counts["adverse_events"] == {"new": 0, "identical": 1, "conflicting": 1}
    with stored(lite) as uow:
        ae = uow.adverse_events.find(subject_id="QFS-101", ae_id="101-AE01")
        assert ae is not None and (ae.value.grade, ae.version) == (3, 2)


def test_grade_seven_is_refused_naming_record_event_instrument_field_and_line(db: Engine, files: Files) -> None:
    rows = rp.rows()
    _ae(rows)["ae_grade"] = "7"
    error = refused(db, files.csv(rows))
    line = 1 + next(i for i, r in enumerate(rp.rows(), start=1) if r is not None and r.get("ae_term") == "Pneumonitis")
    grade = [p for p in error.problems if "ae_grade" in p.field]
    assert [(p.line, p.field) for p in grade] == [(line, "record 101, week_6_arm_1, adverse_event #1, ae_grade")]
    assert "7" in grade[0].reason


def test_every_value_problem_is_listed_not_only_the_first(lite: Engine, files: Files) -> None:
    rows = rp.rows()
    _ae(rows)["ae_grade"] = "7"
    rows[0]["c30_q05"] = "9"  # record 101, baseline: QLQ-C30 item 5 is 1-4
    rows[-1]["les_diam"] = "forty"  # record 102's lesion
    error = refused(lite, files.odm(rows))
    fields = {p.field for p in error.problems}
    assert {
        "record 101, week_6_arm_1, adverse_event #1, ae_grade",
        "record 101, baseline_arm_1, qlq_c30, c30_q05",
        "record 102, baseline_arm_1, lesion #1, les_diam",
    } <= fields


def test_unreadable_date_is_reported_once_with_the_value_as_written(lite: Engine, files: Files) -> None:
    rows = rp.rows()
    _ae(rows, "2")["ae_start"] = "2024-04-31"
    error = refused(lite, files.csv(rows))
    assert [(p.line, p.field, p.reason) for p in error.problems] == [
        (7, "record 101, week_6_arm_1, adverse_event #2, ae_start", "'2024-04-31' is not a date (YYYY-MM-DD)")
    ]  # line 7: header, then the rows of rp.rows() in order (the second adverse event is the sixth row)


def test_odm_with_an_external_entity_is_refused_without_reading_it(lite: Engine, files: Files) -> None:
    secret = files.write("secret.txt", b"Pneumonitis")
    data = (
        rp.odm_xml()
        .replace(
            b'<?xml version="1.0" encoding="UTF-8" ?>',
            f'<?xml version="1.0" encoding="UTF-8" ?><!DOCTYPE ODM [<!ENTITY x SYSTEM "file://{secret}">]>'.encode(),
        )
        .replace(b'Value="Pneumonitis"', b'Value="&x;"')
    )
    error = refused(lite, ImportFiles(files.write("export.xml", data), files.mapping))
    assert "not well-formed XML" in error.problems[0].reason


def test_changed_questionnaire_answer_is_refused_without_update_and_replaced_with_it(
    lite: Engine, files: Files
) -> None:
    run(lite, files.odm())
    rows = rp.rows()
    rows[3]["c30_q01"] = "1"  # record 101, week_6: was (1 + 1) % 4 + 1 = 3
    error = refused(lite, files.odm(rows))
    assert [p.field for p in error.problems] == ["record 101, week_6_arm_1, qlq_c30"]
    report = run(lite, files.odm(rows), update=True)
    assert report.counts["questionnaire_answers"] == {"new": 0, "identical": 89, "conflicting": 1}
    with stored(lite) as uow:
        found = uow.answers.find(subject_id="QFS-101", visit="week_6", instrument=d.Instrument.QLQ_C30, item=1)
        assert found is not None and (found.value.answer, found.version) == (1, 2)


def test_form_in_an_event_the_project_does_not_designate_is_refused(lite: Engine, files: Files) -> None:
    rows = rp.rows()
    rows[8]["redcap_event_name"] = "week_12_arm_1"  # record 102's lesion, entered at week 12
    error = refused(lite, files.odm(rows))
    assert [p.field for p in error.problems] == ["record 102, week_12_arm_1, lesion #1"]
    assert "does not designate lesion for week_12_arm_1" in error.problems[0].reason


def test_csv_route_checks_the_instrument_event_map_when_given(lite: Engine, files: Files) -> None:
    rows = rp.rows()
    rows[8]["redcap_event_name"] = "week_12_arm_1"
    f = files.csv(rows)
    mapped = ImportFiles(f.export, f.mapping, f.dictionary, files.write("events.csv", rp.instrument_event_csv()))
    error = refused(lite, mapped)
    assert [(p.line, p.field) for p in error.problems] == [(10, "record 102, week_12_arm_1, lesion #1")]


def test_registered_user_who_is_not_a_data_manager_may_not_import(lite: Engine, files: Files) -> None:
    with UnitOfWork(lite, "setup", "test set-up: a coordinator account") as uow:
        uow.users.add(d.User(USER, "王芳", d.Role.COORDINATOR, "QFS"))
        uow.commit()
    before = state(lite)
    with pytest.raises(PermissionDenied, match="data manager"):
        run(lite, files.odm())
    assert state(lite) == before


def test_labels_export_is_refused_naming_the_first_header_that_is_not_a_variable(lite: Engine, files: Files) -> None:
    f = ImportFiles(files.write("labels.csv", rp.labels_csv()), files.mapping, files.dictionary)
    error = refused(lite, f)
    assert error.problems[0].line == 1 and "labels" in error.problems[0].reason
    assert error.problems[0].field == "研究编号 Record ID"  # its first column: the record id's label


def test_field_neither_mapped_nor_ignored_blocks_the_import(lite: Engine, files: Files) -> None:
    fields = [*rp.FIELDS, ("ae_notes", "adverse_event", "notes", "备注 Notes", "", "", "")]
    rows = rp.rows()
    _ae(rows)["ae_notes"] = "患者自述咳嗽"
    f = ImportFiles(files.write("export.xml", rp.odm_xml(rows, fields=fields)), files.mapping)
    error = refused(lite, f)
    assert [p.field for p in error.problems] == ["adverse_event.ae_notes"]
    assert "neither mapped nor" in error.problems[0].reason


def test_export_of_another_project_is_refused_by_its_study_oid(db: Engine, files: Files) -> None:
    error = refused(db, files.odm(project="Project.OtherTrial"))
    assert [p.field for p in error.problems] == ["Study OID"]


def test_identifier_field_mapped_without_identifier_ok_is_refused(lite: Engine, files: Files) -> None:
    files.write("mapping.toml", rp.MAPPING_TOML.replace('identifier_ok = ["dob"]', "").encode())
    error = refused(lite, files.odm())
    assert [p.field for p in error.problems] == ["demographics.dob"]


def test_mapping_naming_an_instrument_the_export_lacks_is_refused(lite: Engine, files: Files) -> None:
    files.write("mapping.toml", rp.MAPPING_TOML.replace('instrument = "lesion"', 'instrument = "lesions"').encode())
    error = refused(lite, files.odm())
    assert [p.field for p in error.problems] == ["records[1].instrument"]


def test_csv_export_without_the_data_dictionary_is_refused(lite: Engine, files: Files) -> None:
    f = files.csv()
    error = refused(lite, ImportFiles(f.export, f.mapping))
    assert error.problems[0].field == "--dictionary"


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda t: t.replace("require_complete = true", 'require_complete = true\ncolour = "red"'), "source.colour"),
        (lambda t: t.replace('week_12_arm_1 = "week_12"', 'week_12_arm_1 = "week_13"'), "events.week_12_arm_1"),
        (lambda t: t.replace('ecog = { field = "ecog"', 'ecgo = { field = "ecog"'), "records[0].fields.ecgo"),
    ],
    ids=["unknown key", "visit not in the protocol", "field not in the entity"],
)
def test_mapping_file_problem_is_refused_naming_its_key(files: Files, change: Any, key: str) -> None:
    path = files.write("bad.toml", change(rp.MAPPING_TOML).encode())
    with pytest.raises(InputFileError) as caught:
        load_mapping(path)
    assert any(p.field.startswith(key) for p in caught.value.problems), caught.value.problems


# ----------------------------------------------------------------------------- the command line


def test_cli_dry_run_exits_one_and_names_the_problem_when_the_import_would_fail(
    lite: Engine, files: Files, tmp_path: Path
) -> None:
    from abscopal.cli import build_app

    rows = rp.rows()
    _ae(rows)["ae_grade"] = "7"
    f = files.odm(rows)
    url = str(lite.url)
    result = CliRunner().invoke(
        build_app("import"),
        [
            "import",
            "redcap",
            str(f.export),
            "--mapping",
            str(f.mapping),
            "--dry-run",
            "--user",
            USER,
            "--database-url",
            url,
        ],
    )
    assert result.exit_code == 1
    assert "ae_grade" in result.output


def test_cli_imports_the_export_exits_zero_and_writes_the_json_report(lite: Engine, files: Files) -> None:
    from abscopal.cli import build_app

    f = files.csv(bom=True)
    out = files.folder / "report.json"
    result = CliRunner().invoke(
        build_app("import"),
        ["import", "redcap", str(f.export), "--mapping", str(f.mapping), "--dictionary", str(f.dictionary),
         "--user", USER, "--database-url", str(lite.url), "--report", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["written"] is True and report["counts"]["adverse_events"]["new"] == 2
    with stored(lite) as uow:
        assert len(uow.adverse_events.all()) == 2


# ----------------------------------------------------------------------------- malformed files (hypothesis)

_TYPED = [
    "dob",
    "scr_date",
    "ecog",
    "les_diam",
    "les_node",
    "ae_meddra",
    "ae_grade",
    "ae_start",
    "ae_rel_io",
    "c30_q03",
]
_BAD_VALUES = st.sampled_from(["x", "-", "2024-13-01", "999", "1.5.2", "二", "2024/04/10", "1e999x"])


class Variant(NamedTuple):
    fmt: str
    data: bytes
    defect: str

    def __repr__(self) -> str:  # the defect, not 40 kB of export
        return f"Variant({self.fmt}, {self.defect})"


@st.composite
def malformed(draw: st.DrawFn) -> Variant:
    """A REDCap export with one planted defect that the import must refuse (every variant is invalid)."""
    rows = rp.rows()
    kind = draw(st.sampled_from(["value", "event", "checkbox", "truncate", "record", "header", "instance"]))
    fmt = draw(st.sampled_from(["odm", "csv"]))
    if kind == "value":
        name = draw(st.sampled_from(_TYPED))
        row = next(r for r in rows if name in r)
        row[name] = draw(_BAD_VALUES)
    elif kind == "event":
        draw(st.sampled_from(rows))["redcap_event_name"] = draw(st.sampled_from(["week_7_arm_1", "baseline_arm_2"]))
    elif kind == "checkbox":
        _ae(rows, draw(st.sampled_from(["1", "2"])))[f"ae_ser___{draw(st.sampled_from('123456'))}"] = draw(
            st.sampled_from(["2", "yes", "-1"])
        )
    elif kind == "record":
        rows[0]["record_id"] = ""
        if fmt == "odm":  # ODM has no blank record: plant a bad repeat key instead
            rows[0]["record_id"] = "101"
            _ae(rows)["redcap_repeat_instance"] = draw(st.sampled_from(["one", "1a"]))
    elif kind == "instance":
        _ae(rows)["redcap_repeat_instance"] = draw(st.sampled_from(["x", "1.5"]))
    data = rp.odm_xml(rows) if fmt == "odm" else rp.raw_csv(rows, bom=draw(st.booleans()))
    if kind == "truncate":
        cut = draw(st.integers(min_value=1, max_value=len(data) - 20))
        data = data[:cut]
        if fmt == "csv":  # a cut CSV may still parse: end it inside an open quote, which never does
            data += b',"unterminated'
    if kind == "header":
        if fmt == "odm":
            data = data.replace(b'SourceSystem="REDCap"', b'SourceSystem="OpenClinica"')
        else:
            data = data.replace(b"redcap_event_name", b"Event Name", 1)
    return Variant(fmt, data, f"{kind}: {_diff(rows)}")


def _diff(rows: list[dict[str, Any]]) -> str:
    base = rp.rows()
    changed = [(i, k, v) for i, r in enumerate(rows) for k, v in r.items() if base[i].get(k) != v]
    return repr(changed)


def test_malformed_redcap_exports_are_refused_and_leave_the_database_unchanged(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fuzz.sqlite'}")
    upgrade(engine)
    _with_site(engine)
    files = Files(tmp_path)
    run(engine, files.odm())  # something to leave unchanged
    before = state(engine)

    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(malformed())
    def check(variant: Variant) -> None:
        fmt, data, _ = variant
        path = files.write(f"fuzz.{'xml' if fmt == 'odm' else 'csv'}", data)
        f = ImportFiles(path, files.mapping, files.dictionary if fmt == "csv" else None)
        with pytest.raises(InputFileError):
            run(engine, f, update=True)
        assert state(engine) == before

    check()
