"""``store.mapping.dict_rows`` gives the rows SQLAlchemy's mappings give, on both databases."""

from __future__ import annotations

from sqlalchemy import Engine, text

from abscopal.store.mapping import dict_rows

QUERY = "SELECT 1 AS id, 'a' AS name, NULL AS missing UNION ALL SELECT 2, 'b', NULL ORDER BY 1"


def test_dict_rows_equal_the_results_mappings_as_dicts_in_column_order(engine: Engine) -> None:
    with engine.connect() as conn:
        expected = [dict(r) for r in conn.execute(text(QUERY)).mappings()]
        got = dict_rows(conn.execute(text(QUERY)))
    assert got == expected == [{"id": 1, "name": "a", "missing": None}, {"id": 2, "name": "b", "missing": None}]
    assert [list(r) for r in got] == [["id", "name", "missing"]] * 2


def test_dict_rows_of_a_result_without_rows_is_empty(engine: Engine) -> None:
    with engine.connect() as conn:
        assert dict_rows(conn.execute(text("SELECT 1 AS id WHERE 1 = 0"))) == []
