"""`abscopal export sdtm` end to end on a stored synthetic cohort (SQLite and PostgreSQL), checked by readers
that share no code with the writers: pyreadstat for XPT, the stdlib csv and json modules (interop.md §8)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from pathlib import Path

import pyreadstat
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from abscopal.cli import app
from abscopal.interop.sdtm import registry
from abscopal.interop.sdtm.export import export_sdtm
from abscopal.interop.sdtm.source import load_source
from abscopal.protocol.model import load_bundled
from abscopal.store.cohort_loader import store_cohort_chunks
from abscopal.synth import iter_cohort_chunks

PROTOCOLS = load_bundled()
CREATED = dt.datetime(2025, 7, 1, 9, 30, 15)
CUTOFF = dt.date(2024, 3, 31)


@pytest.fixture(scope="module")
def cohort(module_engine: Engine) -> Engine:
    """Eight synthetic patients, stored once per backend: the tests only read them."""
    chunks = iter_cohort_chunks(8, seed=11, protocol=PROTOCOLS.current, chunk_size=8)
    store_cohort_chunks(module_engine, chunks, user="loader", reason="synthetic cohort for the SDTM tests")
    return module_engine


def _export(engine: Engine, out: Path) -> None:
    export_sdtm(engine, PROTOCOLS, out, cutoff=CUTOFF, created=CREATED, formats=("xpt", "csv", "json"), parallel=False)


@pytest.fixture(scope="module")
def exported(cohort: Engine, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cohort's export (XPT, CSV, Dataset-JSON), written once per backend for the tests that read it back."""
    out = tmp_path_factory.mktemp("sdtm")
    _export(cohort, out)
    return out


def test_every_xpt_reads_back_with_names_labels_widths_and_the_created_stamp(cohort: Engine, exported: Path) -> None:
    tmp_path = exported
    assert {"DM", "EX", "AE"} <= set(registry.selected())  # and any dataset another module registered
    for ds in registry.build_all(_source(cohort)):
        frame, meta = pyreadstat.read_xport(str(tmp_path / f"{ds.spec.name.lower()}.xpt"))
        assert meta.table_name == ds.spec.name
        assert list(frame.columns) == list(ds.spec.names)
        assert meta.column_labels == [v.label for v in ds.spec.variables]
        assert meta.creation_time == CREATED and meta.modification_time == CREATED
        assert len(frame) == len(ds.rows)
        for var in ds.spec.variables:
            values = [r[var.name] for r in ds.rows]
            if var.type == "Char":
                longest = max([1, *(len(str(v).encode()) for v in values if v is not None)])
                assert meta.variable_storage_width[var.name] == longest, var.name
                assert list(frame[var.name]) == ["" if v is None else v for v in values]
            else:
                for got, want in zip(frame[var.name], values, strict=True):
                    if want is None:
                        assert math.isnan(got)
                    else:
                        assert got == pytest.approx(float(want), rel=1e-14)


def _source(engine: Engine):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return load_source(conn, PROTOCOLS, CUTOFF, CREATED)


def test_keys_are_unique_and_seq_runs_one_to_n_per_subject(exported: Path) -> None:
    tmp_path = exported
    for name, seq in (("ex", "EXSEQ"), ("ae", "AESEQ")):
        frame, _ = pyreadstat.read_xport(str(tmp_path / f"{name}.xpt"))
        assert len(frame) > 0, name
        keys = list(zip(frame["STUDYID"], frame["USUBJID"], frame[seq], strict=True))
        assert len(set(keys)) == len(keys)
        for _subject, group in frame.groupby("USUBJID"):
            assert list(group[seq]) == [float(i) for i in range(1, len(group) + 1)]
    dm, _ = pyreadstat.read_xport(str(tmp_path / "dm.xpt"))
    assert dm["USUBJID"].is_unique
    assert all(u == f"NCT05906329-{s}" for u, s in zip(dm["USUBJID"], dm["SUBJID"], strict=True))  # §2.0


def test_csv_and_json_read_back_with_the_stdlib_equal_the_xpt(exported: Path) -> None:
    tmp_path = exported
    for name in ("dm", "ex", "suppex", "ae", "suppae"):
        frame, _ = pyreadstat.read_xport(str(tmp_path / f"{name}.xpt"))
        raw = (tmp_path / f"{name}.csv").read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf") and b"\r\n" not in raw
        with (tmp_path / f"{name}.csv").open(encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == list(frame.columns)
        doc = json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))
        assert doc["datasetJSONVersion"] == "1.1.0" and doc["records"] == len(frame)
        assert doc["datasetJSONCreationDateTime"] == "2025-07-01T09:30:15"
        assert [c["name"] for c in doc["columns"]] == list(frame.columns)
        for i, (cells, jrow) in enumerate(zip(rows[1:], doc["rows"], strict=True)):
            for col, cell, jval in zip(frame.columns, cells, jrow, strict=True):
                x = frame[col].iloc[i]
                if isinstance(x, str):
                    assert cell == x and (jval if jval is not None else "") == x
                elif math.isnan(x):
                    assert cell == "" and jval is None
                else:
                    assert float(cell) == pytest.approx(x, rel=1e-14) and float(jval) == pytest.approx(x, rel=1e-14)
        assert len(rows) - 1 == len(frame)


def test_same_database_cutoff_and_created_give_identical_bytes(cohort: Engine, exported: Path, tmp_path: Path) -> None:
    _export(cohort, tmp_path / "b")
    files = sorted(p.name for p in exported.iterdir())
    assert "manifest.json" in files and "dm.xpt" in files
    assert files == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in files:
        assert (exported / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    manifest = json.loads((exported / "manifest.json").read_text())
    assert manifest["cutoff"] == "2024-03-31" and manifest["audit_head"]["seq"] > 0
    assert {f["name"] for f in manifest["files"]} == set(files) - {"manifest.json"}


def test_records_after_the_cutoff_are_dropped_and_ids_are_the_stored_ones(cohort: Engine, tmp_path: Path) -> None:
    source = _source(cohort)
    datasets = {d.spec.name: d for d in registry.build_all(source)}
    assert all(str(r["EXSTDTC"]) <= "2024-03-31" for r in datasets["EX"].rows)
    assert all(str(r["AESTDTC"]) <= "2024-03-31" for r in datasets["AE"].rows)
    stored_fraction_ids = {f.id for f in source.fractions} | {c.id for c in source.cycles}
    assert {r["EXSPID"] for r in datasets["EX"].rows} <= stored_fraction_ids
    # an AE still open on the cut-off date: AEENRTPT ONGOING, AEENTPT = the DCO (interop.md §2.0)
    for r in datasets["AE"].rows:
        assert (r["AEENDTC"] is None) == (r["AEENRTPT"] == "ONGOING")
        if r["AEENDTC"] is None:
            assert r["AEENTPT"] == "2024-03-31"
        else:
            assert str(r["AEENDTC"]) <= "2024-03-31"


def test_cli_writes_the_files_and_refuses_an_unknown_domain(cohort: Engine, tmp_path: Path) -> None:
    url = str(cohort.url.render_as_string(hide_password=False))
    runner = CliRunner()
    ok = runner.invoke(
        app,
        [
            "export",
            "sdtm",
            "--output",
            str(tmp_path / "o"),
            "--cutoff",
            "2024-03-31",
            "--format",
            "xpt,csv",
            "--domains",
            "DM,AE",
            "--created",
            "2025-07-01T09:30:15",
            "--database-url",
            url,
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "ae.csv",
        "ae.xpt",
        "dm.csv",
        "dm.xpt",
        "manifest.json",
        "suppae.csv",
        "suppae.xpt",
    ]
    bad = runner.invoke(
        app, ["export", "sdtm", "--output", str(tmp_path / "p"), "--domains", "XX", "--database-url", url]
    )
    assert bad.exit_code == 1
    assert "'XX' is not a dataset" in bad.output
    assert not (tmp_path / "p").exists()


def test_qs_built_by_a_second_process_gives_the_same_bytes_as_one_process(cohort: Engine, tmp_path: Path) -> None:
    from abscopal.interop.sdtm.export import _worker_url

    kwargs = {"cutoff": CUTOFF, "created": CREATED, "formats": ("xpt", "csv"), "define_context": "Other"}
    steps: list[str] = []
    export_sdtm(cohort, PROTOCOLS, tmp_path / "two", parallel=True, on_step=steps.append, **kwargs)  # type: ignore[arg-type]
    export_sdtm(cohort, PROTOCOLS, tmp_path / "one", parallel=False, **kwargs)  # type: ignore[arg-type]
    files = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "two").iterdir()) and "qs.xpt" in files
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    assert steps[-4:] == ["RS", "QS", "define", "manifest"]
    assert _worker_url(cohort) is not None  # a file or a server: the worker was used


def test_the_sqlite_drivers_rows_give_the_same_records_as_sqlalchemys_for_every_table(
    cohort: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """source._fetch reads SQLite through the driver's cursor and applies the column types' result processors
    itself: each record (repr: a date is not its text, True is not 1) is the one SQLAlchemy's rows give."""
    from abscopal.interop.sdtm import source
    from abscopal.store.tables import ENTITIES

    entities = [n for n in ENTITIES if n not in ("users", "sites") and not ENTITIES[n].parent_column]
    with cohort.connect() as conn:
        fast = {n: [repr(s) for s in source._stored(conn, n)] for n in entities}
    with monkeypatch.context() as patched:

        def through_sqlalchemy(conn, query):  # type: ignore[no-untyped-def]
            result = conn.execute(query.execution_options(yield_per=source._BATCH))
            return list(result.keys()), result, {}

        patched.setattr(source, "_fetch", through_sqlalchemy)
        with cohort.connect() as conn:
            slow = {n: [repr(s) for s in source._stored(conn, n)] for n in entities}
    assert sum(map(len, slow.values())) > 1000 and all(slow[n] for n in ("patients", "screenings", "fractions"))
    assert fast == slow
