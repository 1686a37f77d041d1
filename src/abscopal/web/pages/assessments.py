"""The tumour-assessment grid: lesions x dates, sums, % change, derived RECIST 1.1/iRECIST (issue 12 item 6)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
