"""The JSON API under ``/api/v1`` (web.md §7): one router per area."""

from __future__ import annotations

from fastapi import APIRouter

from abscopal.web.api import session

ROUTERS: list[APIRouter] = [session.router]
