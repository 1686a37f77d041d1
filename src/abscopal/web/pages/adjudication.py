"""Immunotherapy-resistance adjudication with its two DCP signatures (web.md §4, §5; issue 12 item 2)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
