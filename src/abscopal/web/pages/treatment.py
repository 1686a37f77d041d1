"""Treatment delivery: RT fractions (with a week view for low-dose RT) and immunotherapy cycles (issue 12 item 5)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
