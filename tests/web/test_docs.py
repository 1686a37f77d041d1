"""docs/web.md shows the permission table exactly as the code has it (web.md §2: the table is the single source)."""

from __future__ import annotations

from pathlib import Path

from abscopal.web.permission_doc import markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "web.md"


def test_the_permission_table_in_docs_web_md_equals_the_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("<!-- permission-table:start -->") + len("<!-- permission-table:start -->")
    end = text.index("<!-- permission-table:end -->")
    assert text[start:end].strip() == markdown(), (
        "regenerate with: python -c 'from abscopal.web.permission_doc import markdown; print(markdown())'"
    )


def test_the_permission_table_names_every_role_once_per_row() -> None:
    rows = [line for line in markdown().splitlines()[2:]]
    assert rows and all(line.count("|") == 12 for line in rows)
