"""Guards of "a rule lives in exactly one module" (docs/CONTRIBUTING.md; issue 10, deliverable 9).

- A fraction's status is compared only in :mod:`abscopal.protocol.radiotherapy` (``is_delivered`` and friends).
- The analysis engines import neither the store, the report layer, nor a database, drawing or template library.
- QoL scores in the analysis and the report come from the QoL engine's ``score_answers``, not its parts.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import abscopal

SRC = Path(abscopal.__file__).parent
RULE_MODULE = "protocol/radiotherapy.py"
#: Modules still allowed to compare a fraction's status themselves (none: every caller uses is_delivered).
PENDING: set[str] = set()
STATUS_WORDS = {"delivered", "partial", "missed"}


def _modules(under: Path = SRC) -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(under.rglob("*.py")):
        yield path.relative_to(SRC).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def _operands(node: ast.Compare) -> Iterator[ast.expr]:
    for x in (node.left, *node.comparators):
        if isinstance(x, ast.Tuple | ast.List | ast.Set):
            yield from x.elts
        else:
            yield x


def _is_status_value(x: ast.expr) -> bool:
    if isinstance(x, ast.Attribute):
        owner = x.value
        name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
        return name == "FractionStatus"
    return False


def _status_comparisons(tree: ast.Module) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = list(_operands(node))
        by_enum = any(_is_status_value(x) for x in operands)
        by_text = any(isinstance(x, ast.Attribute) and x.attr == "status" for x in operands) and any(
            isinstance(x, ast.Constant) and x.value in STATUS_WORDS for x in operands
        )
        if by_enum or by_text:
            lines.append(node.lineno)
    return lines


def test_a_fraction_status_is_compared_only_in_the_radiotherapy_engine():
    found = {
        name: lines
        for name, tree in _modules()
        if name != RULE_MODULE and name not in PENDING and (lines := _status_comparisons(tree))
    }
    assert found == {}, f"use abscopal.protocol.radiotherapy.is_delivered instead: {found}"


def test_the_guard_sees_the_comparisons_of_the_defining_module():
    tree = ast.parse((SRC / RULE_MODULE).read_text(encoding="utf-8"))
    assert _status_comparisons(tree)  # the guard is not blind: is_delivered compares statuses


@pytest.mark.parametrize(
    "code",
    ["f.status is not FractionStatus.MISSED", "f.status == 'delivered'", "s in (d.FractionStatus.PARTIAL,)"],
)
def test_the_guard_catches_each_way_of_testing_a_status(code: str):
    assert _status_comparisons(ast.parse(code))


FORBIDDEN = ("abscopal.store", "abscopal.reports", "abscopal.cli", "sqlalchemy", "matplotlib", "jinja2", "weasyprint")


def test_the_analysis_engines_import_nothing_of_the_store_or_the_report_layer():
    imported = set()
    for _, tree in _modules(SRC / "analysis"):
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(a.name for a in node.names)
    assert sorted(m for m in imported if m.startswith(FORBIDDEN)) == []


def test_importing_the_analysis_engines_loads_no_store_or_drawing_module():
    code = f"import sys, abscopal.analysis; print(sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


QOL_PARTS = {"score_scale", "score_instrument", "raw_score", "linear_transform", "summary_score"}


@pytest.mark.parametrize("package", ["analysis", "reports"])
def test_qol_scores_come_from_score_answers_only(package: str):
    used = {
        (name, node.lineno)
        for name, tree in _modules(SRC / package)
        for node in ast.walk(tree)
        if (isinstance(node, ast.Name) and node.id in QOL_PARTS)
        or (isinstance(node, ast.Attribute) and node.attr in QOL_PARTS)
        or (isinstance(node, ast.alias) and node.name in QOL_PARTS)
    }
    assert used == set()
