"""The server-rendered pages (web.md §8): one router per area."""

from __future__ import annotations

from fastapi import APIRouter

from abscopal.web.pages import admin, api_docs, audit, auth, home, patients, profile, queries, records

ROUTERS: list[APIRouter] = [
    auth.router,
    home.router,
    patients.router,
    records.router,
    queries.router,
    audit.router,
    admin.router,
    profile.router,
    api_docs.router,
]
