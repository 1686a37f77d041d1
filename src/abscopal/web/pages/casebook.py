"""A patient's casebook: the PI's signature over every record and the data manager's lock (issue 12 item 10)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
