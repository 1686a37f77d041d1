"""The SDTM writers refuse before writing what XPT v5 cannot hold (interop.md §1.4), and stamp --created (§1.3)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest

from abscopal.errors import ValidationError
from abscopal.interop.sdtm.common import split_text, study_day
from abscopal.interop.sdtm.spec import Dataset, DatasetSpec, Rows, Variable
from abscopal.interop.sdtm.writers import check_datasets, csv_bytes, write_datasets, xpt_bytes

SPEC = DatasetSpec(
    "AE",
    "Adverse Events",
    "EVENTS",
    "One record per adverse event per subject",
    ("STUDYID", "USUBJID", "AESEQ"),
    (
        Variable("STUDYID", "Study Identifier"),
        Variable("USUBJID", "Unique Subject Identifier"),
        Variable("AESEQ", "Sequence Number", "Num"),
        Variable("AETERM", "Reported Term for the Adverse Event"),
    ),
)
CREATED = dt.datetime(2025, 7, 1, 9, 30, 15)


def _ds(*terms: str | None, spec: DatasetSpec = SPEC) -> Dataset:
    rows = [{"STUDYID": "S", "USUBJID": f"S-{i}", "AESEQ": i, "AETERM": t} for i, t in enumerate(terms, start=1)]
    return Dataset(spec, rows)


def _write(ds: Dataset, out: Path, transliterate: bool = False) -> None:
    checked, _ = check_datasets([ds], transliterate=transliterate)
    write_datasets(checked, out, formats=("xpt", "csv"), created=CREATED, studyid="S", version="t")


def test_a_201_byte_value_is_refused_naming_dataset_variable_row_subject_and_seq(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as err:
        _write(_ds("ok", "x" * 201), tmp_path / "out")
    assert "AE.AETERM row 2, USUBJID S-2, AESEQ 2" in str(err.value) and "201 bytes" in str(err.value)
    assert not (tmp_path / "out").exists()  # nothing written
    check_datasets([_ds("x" * 200)])  # 200 bytes is the limit, allowed


def test_a_boolean_among_equal_numbers_of_rows_as_tuples_is_refused_as_not_a_number() -> None:
    """True == 1: the column check reads each distinct value once, but every value's type."""
    rows = Rows(SPEC.names, [("S", "S-1", 1, "a"), ("S", "S-2", True, "b")])
    with pytest.raises(ValidationError, match=r"AE.AESEQ row 2.*True is not a finite number"):
        check_datasets([Dataset(SPEC, rows)])


def test_the_xpt_width_of_rows_as_tuples_is_their_longest_value(tmp_path: Path) -> None:
    rows = Rows(SPEC.names, [("S", "S-1", 1, "nausea"), ("S", "S-2", 2, None), ("S", "S-3", 3, "nausea")])
    _write(Dataset(SPEC, rows), tmp_path / "out")
    frame, meta = pyreadstat.read_xport(str(tmp_path / "out" / "ae.xpt"))
    assert meta.variable_storage_width["AETERM"] == 6 and meta.variable_storage_width["USUBJID"] == 3
    assert frame["AETERM"].tolist() == ["nausea", "", "nausea"]


def test_non_ascii_is_refused_with_its_code_point_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"AE.AETERM row 1, USUBJID S-1, AESEQ 1.*U\+00E8"):
        _write(_ds("fi\u00e8vre caf\u00e9"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_transliterate_maps_only_the_listed_characters_and_reports_each() -> None:
    checked, report = check_datasets(
        [_ds("ANC \u2265 1.5 \u00d7 ULN \u2013 \u201cgrade 2\u201d\uff01")], transliterate=True
    )
    assert checked[0].rows[0]["AETERM"] == 'ANC >= 1.5 x ULN - "grade 2"!'
    assert len(report.substitutions) == 1 and "AE.AETERM row 1" in report.substitutions[0]
    with pytest.raises(ValidationError, match=r"U\+80BA"):  # 肺 (CJK) is never transliterated
        check_datasets([_ds("\u80ba\u708e")], transliterate=True)


def test_a_41_character_label_is_refused_although_pyreadstat_would_truncate_it(tmp_path: Path) -> None:
    long_label = "L" * 41
    bad = DatasetSpec("AE", "Adverse Events", "EVENTS", "x", ("STUDYID",), (Variable("STUDYID", long_label),))
    with pytest.raises(ValidationError, match="longer than 40"):
        _write(Dataset(bad, [{"STUDYID": "S"}]), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # why the check exists: pyreadstat 1.3.7 cuts the label to 40 without a word (interop.md §1.4 [v])
    pyreadstat.write_xport(
        pd.DataFrame({"A": ["x"]}), str(tmp_path / "t.xpt"), column_labels=[long_label], file_format_version=5
    )
    assert pyreadstat.read_xport(str(tmp_path / "t.xpt"))[1].column_labels == ["L" * 40]


def test_xpt_headers_carry_created_not_the_wall_clock(tmp_path: Path) -> None:
    data = xpt_bytes(_ds("a"), CREATED, tmp_path)
    assert data.count(b"01JUL25:09:30:15") == 4  # library and member header: created and modified
    (tmp_path / "ae.xpt").write_bytes(data)
    _, meta = pyreadstat.read_xport(str(tmp_path / "ae.xpt"))
    assert meta.creation_time == CREATED and meta.modification_time == CREATED


def test_csv_is_lf_rfc4180_with_empty_for_null_and_shortest_floats() -> None:
    ds = Dataset(SPEC, [{"STUDYID": "S", "USUBJID": "S-1", "AESEQ": 0.1 + 0.2, "AETERM": 'a "b", c'}])
    assert csv_bytes(ds) == b'STUDYID,USUBJID,AESEQ,AETERM\nS,S-1,0.30000000000000004,"a ""b"", c"\n'
    assert csv_bytes(_ds(None)) == b"STUDYID,USUBJID,AESEQ,AETERM\nS,S-1,1,\n"


@pytest.mark.parametrize(
    ("day", "reference", "expected"),
    [  # SDTMIG 3.4 §4.4.4: no day 0
        (dt.date(2023, 3, 6), dt.date(2023, 3, 6), 1),
        (dt.date(2023, 3, 5), dt.date(2023, 3, 6), -1),
        (dt.date(2023, 4, 5), dt.date(2023, 3, 6), 31),
        (dt.date(2023, 3, 6), None, None),
    ],
)
def test_study_day_has_no_day_zero(day: dt.date, reference: dt.date | None, expected: int | None) -> None:
    assert study_day(day, reference) == expected


def test_split_text_cuts_at_the_last_space_within_200_bytes() -> None:
    text = "a" * 150 + " " + "b" * 60 + " " + "c" * 10
    assert split_text(text) == ["a" * 150, "b" * 60 + " " + "c" * 10]
