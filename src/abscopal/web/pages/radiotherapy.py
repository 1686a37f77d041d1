"""The lesion registry, RT roles with live role rules, and the RT course with BED/EQD2 (issue 12 item 4)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
