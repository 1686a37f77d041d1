"""The server-rendered pages (web.md §8): one router per area."""

from __future__ import annotations

from fastapi import APIRouter

from abscopal.web.pages import (
    adjudication,
    admin,
    adverse_events,
    api_docs,
    assessments,
    audit,
    auth,
    casebook,
    dicom_import,
    epro,
    exports,
    home,
    patients,
    profile,
    queries,
    radiotherapy,
    records,
    report,
    screening,
    treatment,
    worklists,
)

#: The area routers come before the generic record pages, whose ``/patients/{subject_id}/{slug}/{record_id}`` would
#: otherwise answer an area's own paths.
ROUTERS: list[APIRouter] = [
    auth.router,
    home.router,
    patients.router,
    screening.router,
    adjudication.router,
    casebook.router,
    report.router,
    exports.router,
    dicom_import.router,
    radiotherapy.router,
    treatment.router,
    assessments.router,
    adverse_events.router,
    epro.router,
    worklists.router,
    records.router,
    queries.router,
    audit.router,
    admin.router,
    profile.router,
    api_docs.router,
]
