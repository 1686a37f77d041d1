"""The trial report page: generate in the background with progress, then download HTML/PDF (issue 12 item 10)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
