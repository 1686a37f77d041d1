"""Rows held as tuples (:class:`abscopal.interop.sdtm.spec.Rows`, issue 13) behave as the dict rows they replace:
the same checks and refusals, the same XPT bytes, and a define digest that writes the same define.xml bytes."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest

from abscopal.errors import ValidationError
from abscopal.interop.define import write_define
from abscopal.interop.sdtm.define_digest import define_digest
from abscopal.interop.sdtm.qs import QS_SPEC
from abscopal.interop.sdtm.spec import Dataset, PartRows, Rows, Value, column
from abscopal.interop.sdtm.writers import check_datasets, xpt_bytes
from abscopal.protocol.model import load_bundled

CREATED = dt.datetime(2026, 12, 1, 0, 0, 0)
S = "NCT05906329"


def _qs_rows(n: int) -> list[dict[str, Value]]:
    """QS-shaped rows whose values vary in every way define.xml and XPT tell apart: whole and fractional
    numbers, dates and date-times, codelist terms, nulls, slices with and without derived rows."""
    rows: list[dict[str, Value]] = []
    for i in range(n):
        derived = i % 3 == 0
        number: Value = None if i % 7 == 0 else (float(i % 5) if i % 2 else (i % 5) + 1 / (i + 3))
        rows.append(
            dict.fromkeys(QS_SPEC.names)
            | {
                "STUDYID": S,
                "DOMAIN": "QS",
                "USUBJID": f"{S}-QFS-{i // 10:06d}",
                "QSSEQ": i % 10 + 1,
                "QSSPID": None if derived else f"{i:032x}",
                "QSTESTCD": f"C30Q{i % 4:02d}",
                "QSTEST": "Question " + "x" * (i % 13),
                "QSCAT": "EORTC QLQ-C30 V3.0",
                "QSORRES": None if number is None or derived else str(i % 5),
                "QSSTRESC": None if number is None else repr(number),
                "QSSTRESN": number,
                "QSSTAT": "NOT DONE" if number is None else None,
                "QSDRVFL": "Y" if derived and i % 4 != 1 else None,
                "QSEVAL": "STUDY SUBJECT",
                "VISITNUM": 2.0 + i % 3,
                "VISIT": "BASELINE" if i % 3 == 0 else f"WEEK {6 * (i % 3)}",
                "QSDTC": f"2024-01-{1 + i % 28:02d}" + ("T10:00" if i == 17 else ""),
                "QSDY": (i % 40) - 3,
            }
        )
    return rows


def _as_rows(rows: list[dict[str, Value]]) -> Rows:
    return Rows(QS_SPEC.names, [tuple(r[n] for n in QS_SPEC.names) for r in rows])


def test_rows_read_as_the_mappings_they_hold() -> None:
    dicts = _qs_rows(25)
    rows = _as_rows(dicts)
    assert len(rows) == 25
    assert [dict(r) for r in rows] == dicts
    assert rows[3] == dicts[3] and tuple(rows[3]) == QS_SPEC.names
    assert rows[4]["QSSTRESN"] == dicts[4]["QSSTRESN"] and rows[4].get("NOPE") is None
    assert [dict(r) for r in rows[5:9]] == dicts[5:9]
    assert column(rows, "QSTESTCD") == column(dicts, "QSTESTCD") == [r["QSTESTCD"] for r in dicts]
    with pytest.raises(ValidationError, match="a row of 2 values for 21 variables"):
        Rows(QS_SPEC.names, [("a", "b")])


@pytest.mark.parametrize(
    ("row", "variable", "value"),
    [
        (2, "QSTEST", "x" * 201),
        (0, "QSSTRESN", math.inf),
        (4, "QSSTRESN", "3"),
        (1, "QSORRES", 3),
        (3, "QSREASND", "caf\u00e9"),
        (5, "QSSEQ", True),
    ],
)
def test_tuple_rows_are_refused_as_dict_rows_are(row: int, variable: str, value: Value) -> None:
    dicts = _qs_rows(8)
    dicts[row][variable] = value
    with pytest.raises(ValidationError) as from_dicts:
        check_datasets([Dataset(QS_SPEC, dicts)])
    with pytest.raises(ValidationError) as from_tuples:
        check_datasets([Dataset(QS_SPEC, _as_rows(dicts))])
    assert str(from_tuples.value) == str(from_dicts.value)
    assert f"QS.{variable} row {row + 1}" in str(from_tuples.value)


def test_tuple_rows_transliterate_as_dict_rows_do() -> None:
    dicts = _qs_rows(6)
    dicts[4]["QSREASND"] = "patient \u2013 too tired"
    out_dicts, report_dicts = check_datasets([Dataset(QS_SPEC, dicts)], transliterate=True)
    out_tuples, report_tuples = check_datasets([Dataset(QS_SPEC, _as_rows(dicts))], transliterate=True)
    assert report_tuples.substitutions == report_dicts.substitutions
    assert len(report_tuples.substitutions) == 1 and "QS.QSREASND row 5" in report_tuples.substitutions[0]
    assert [dict(r) for r in out_tuples[0].rows] == [dict(r) for r in out_dicts[0].rows]
    assert out_tuples[0].rows[4]["QSREASND"] == "patient - too tired"


def test_valid_rows_pass_the_check_uncopied() -> None:
    ds = Dataset(QS_SPEC, _as_rows(_qs_rows(30)))
    (checked,), report = check_datasets([ds])
    assert checked.rows is ds.rows and report.substitutions == []


def test_xpt_of_tuple_rows_is_the_xpt_of_dict_rows(tmp_path: Path) -> None:
    dicts = _qs_rows(60)
    from_dicts = xpt_bytes(Dataset(QS_SPEC, dicts), CREATED, tmp_path)
    from_tuples = xpt_bytes(Dataset(QS_SPEC, _as_rows(dicts)), CREATED, tmp_path)
    assert from_tuples == from_dicts


@pytest.mark.parametrize("tuples", [False, True])
def test_define_digest_writes_the_same_define_bytes_with_fewer_rows(tmp_path: Path, tuples: bool) -> None:
    dicts = _qs_rows(400)
    ds = Dataset(QS_SPEC, _as_rows(dicts) if tuples else dicts)
    digest = define_digest(ds)
    assert len(digest.rows) < len(dicts) / 4  # QSSPID is distinct per row: a few values per slice kept, not all
    protocols = load_bundled()
    full = write_define([ds], protocols=protocols, created=CREATED, context="Other", path=tmp_path / "full.xml")
    small = write_define([digest], protocols=protocols, created=CREATED, context="Other", path=tmp_path / "dig.xml")
    assert small.read_bytes() == full.read_bytes()
    text = full.read_text()
    assert 'DataType="datetime"' in text and 'DataType="float"' in text and "NOT DONE" in text


def test_part_rows_read_as_the_flat_rows_they_share_parts_of(tmp_path: Path) -> None:
    names = ("A", "B", "C", "D")
    where = [(0, 1), (1, -1), (0, 0), (2, 0)]
    shared = ("c", "a")
    rows = PartRows(names, where, [(shared, 1, ("d1",)), (shared, 2.5, ("d2",)), (shared, None, ("d3",))])
    assert [dict(r) for r in rows] == [
        {"A": "a", "B": 1, "C": "c", "D": "d1"},
        {"A": "a", "B": 2.5, "C": "c", "D": "d2"},
        {"A": "a", "B": None, "C": "c", "D": "d3"},
    ]
    assert column(rows, "B") == [1, 2.5, None] and column(rows, "A") == ["a", "a", "a"]
    assert [dict(r) for r in rows[1:]] == [dict(r) for r in list(rows)[1:]]
    with pytest.raises(ValidationError, match="not of 3 parts"):
        PartRows(names, where, [(shared, 1)])


def test_qs_rows_in_parts_write_the_bytes_of_their_flat_rows(tmp_path: Path) -> None:
    dicts = _qs_rows(50)
    places = [(0, i) for i in range(len(QS_SPEC.names))]
    parts = PartRows(QS_SPEC.names, places, [(tuple(r[n] for n in QS_SPEC.names),) for r in dicts])
    assert xpt_bytes(Dataset(QS_SPEC, parts), CREATED, tmp_path) == xpt_bytes(
        Dataset(QS_SPEC, dicts), CREATED, tmp_path
    )
    assert [dict(r) for r in define_digest(Dataset(QS_SPEC, parts)).rows] == [
        dict(r) for r in define_digest(Dataset(QS_SPEC, dicts)).rows
    ]
