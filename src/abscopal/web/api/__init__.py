"""The JSON API under ``/api/v1`` (web.md §7): one router per area."""

from __future__ import annotations

from fastapi import APIRouter

from abscopal.web.api import admin, derived, integrity, patients, records, session, trial, workflow

ROUTERS: list[APIRouter] = [
    session.router,
    admin.router,
    patients.router,
    workflow.router,  # before records: /patients/{id}/lesions/rt-roles must win over /lesions/{record_id}
    records.router,
    integrity.router,
    derived.router,
    trial.router,
]
