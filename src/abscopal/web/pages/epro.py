"""Questionnaires (ePRO): QLQ-C30 and QLQ-LC13 for the patient on a phone, and paper transcription (issue 12 item 8)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
