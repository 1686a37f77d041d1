"""The JSON API under ``/api/v1`` (web.md §7): one router per area."""

from __future__ import annotations

from fastapi import APIRouter

from abscopal.web.api import patients, records, session

ROUTERS: list[APIRouter] = [session.router, patients.router, records.router]
