"""Screening, the live eligibility checklist, screen failure and enrolment (web.md §4, §8; issue 12 items 1, 3)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
