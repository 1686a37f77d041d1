"""The PostgreSQL cursor's lazy description (store/pg_cursor.py) against psycopg's own ``Cursor.description``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from abscopal.store.pg_cursor import LazyDescription, LazyDescriptionCursor


@pytest.fixture
def pg(postgres_server: Any) -> Iterator[psycopg.Connection[Any]]:
    if postgres_server is None:
        pytest.skip("PostgreSQL not available; `make test` installs and starts it")
    name = f"test_pg_cursor_{uuid.uuid4().hex[:12]}"  # one per test: the suite runs in parallel
    url = postgres_server.create_database(name)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        yield conn
    postgres_server.drop_database(name)


def columns(description: Any) -> list[tuple[Any, ...]]:
    return [tuple(c) for c in description]


QUERIES = [
    "SELECT 1 AS one, 'a'::text AS letter, now() AS at, NULL::numeric(5, 2) AS amount, '{}'::jsonb AS doc",
    "SELECT",  # rows of no column: psycopg gives an empty description, not None
    "SELECT x FROM generate_series(1, 3) AS x",
]


@pytest.mark.parametrize("query", QUERIES)
def test_the_lazy_description_equals_psycopgs_own(pg: psycopg.Connection[Any], query: str) -> None:
    plain = pg.cursor()
    plain.execute(query)
    lazy = LazyDescriptionCursor(pg)
    lazy.execute(query)
    assert isinstance(lazy.description, LazyDescription)
    assert plain.description is not None
    assert columns(lazy.description) == columns(plain.description)
    assert len(lazy.description) == len(plain.description)
    assert [c.name for c in lazy.description] == [c.name for c in plain.description]
    assert [c.type_code for c in lazy.description] == [c.type_code for c in plain.description]


def test_a_statement_without_rows_has_no_description(pg: psycopg.Connection[Any]) -> None:
    cursor = LazyDescriptionCursor(pg)
    cursor.execute("CREATE TEMPORARY TABLE t (a int)")
    assert cursor.description is None
    cursor.execute("INSERT INTO t VALUES (1)")
    assert cursor.description is None


def test_a_description_read_after_the_next_statement_still_describes_its_own(pg: psycopg.Connection[Any]) -> None:
    cursor = LazyDescriptionCursor(pg)
    cursor.execute("SELECT 1 AS first, 2 AS second")
    kept = cursor.description
    cursor.execute("SELECT 'x'::text AS other")
    assert kept is not None and [c.name for c in kept] == ["first", "second"]
    assert kept[1].name == "second" and [c.name for c in kept[:1]] == ["first"]


def test_the_engine_for_postgresql_uses_the_lazy_cursor(postgres_server: Any) -> None:
    from sqlalchemy import text

    from abscopal.store.database import make_engine

    if postgres_server is None:
        pytest.skip("PostgreSQL not available; `make test` installs and starts it")
    name = f"test_pg_cursor_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            result = conn.execute(text("SELECT 1 AS one, 'two' AS two"))
            assert isinstance(result.cursor, LazyDescriptionCursor)
            assert list(result.keys()) == ["one", "two"] and result.all() == [(1, "two")]
    finally:
        engine.dispose()
        postgres_server.drop_database(name)
