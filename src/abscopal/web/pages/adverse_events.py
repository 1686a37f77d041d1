"""The adverse-event log with CTCAE v5.0 term search and grade definitions (issue 12 item 7)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
