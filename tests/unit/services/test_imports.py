"""Imports run many use cases as one transaction, by a data manager acting for the source system."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from abscopal.errors import PermissionDenied
from abscopal.services import lesions, queries


def _importer(trial: Any) -> Any:
    return dataclasses.replace(trial.DATA_MANAGER, import_source="REDCap export test.xml")


def test_a_data_manager_importing_may_enter_lesions(trial: Any) -> None:
    stored = trial.act(_importer(trial), lesions.record_lesion, trial.lesion("L1"))
    assert stored.value.lesion_id == "L1"


def test_a_data_manager_not_importing_may_not_enter_lesions(trial: Any) -> None:
    with pytest.raises(PermissionDenied):
        trial.act(trial.DATA_MANAGER, lesions.record_lesion, trial.lesion("L1"))


def test_an_import_cannot_answer_queries(trial: Any) -> None:
    raised = trial.act(trial.DATA_MANAGER, queries.raise_query, "S-001", "lesions", "location", "Which lobe?")
    with pytest.raises(PermissionDenied):
        trial.act(_importer(trial), queries.answer_query, raised.id, version=raised.version, answer="RUL")


def test_use_cases_inside_one_transaction_are_saved_together_or_not_at_all(trial: Any) -> None:
    importer = _importer(trial)
    with trial.store.as_user(importer.username, "import") as uow, uow.one_transaction():
        lesions.record_lesion(uow, importer, trial.lesion("L1"))
        with pytest.raises(Exception, match="already exists"):
            lesions.record_lesion(uow, importer, trial.lesion("L1"))
        # the import failed: leaving without the final commit keeps nothing
    assert trial.read().lesions.all() == []


def test_use_cases_inside_one_transaction_are_committed_by_the_final_commit(trial: Any) -> None:
    importer = _importer(trial)
    with trial.store.as_user(importer.username, "import") as uow:
        with uow.one_transaction():
            lesions.record_lesion(uow, importer, trial.lesion("L1"))
            lesions.record_lesion(uow, importer, trial.lesion("L2"))
            assert trial.read().lesions.all() == []  # nothing visible to others yet
        uow.commit()
    assert sorted(s.value.lesion_id for s in trial.read().lesions.all()) == ["L1", "L2"]
