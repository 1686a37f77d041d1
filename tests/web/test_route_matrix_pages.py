"""The role x route matrix for the pages (the checks: :mod:`matrix`; web.md §2, §9)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from matrix import callers, matrix_tests

__all__ = ["callers"]  # the fixture, imported for pytest to find

test_every_caller_gets_what_the_permission_table_gives_its_role, test_another_sites_patient_is_not_found = matrix_tests(
    api=False
)
