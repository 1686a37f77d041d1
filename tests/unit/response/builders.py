"""Terse builders for tumour assessments in tests: days are counted from 2025-01-06 (baseline)."""

from __future__ import annotations

import datetime as dt

from abscopal.domain import LesionClass, LesionMeasurement, LesionStatus, RtRole, TumourAssessment
from abscopal.protocol.model import ResponseOptions
from abscopal.response.engine import SubjectFacts, SubjectResponse, derive_subject

START = dt.date(2025, 1, 6)


def day(n: int) -> dt.date:
    return START + dt.timedelta(days=n)


def T(lesion: str, mm: float | None, organ: str = "lung", node: bool = False, role: RtRole | None = None):
    return LesionMeasurement(lesion, LesionClass.TARGET, organ, node, diameter_mm=mm, rt_role=role)


def N(
    lesion: str, status: str | None = "present", organ: str = "liver", node: bool = False, role: RtRole | None = None
):
    return LesionMeasurement(
        lesion, LesionClass.NON_TARGET, organ, node, status=LesionStatus(status) if status else None, rt_role=role
    )


def NEW(lesion: str, mm: float | None = None, status: str | None = None, organ: str = "bone", node: bool = False):
    return LesionMeasurement(
        lesion, LesionClass.NEW, organ, node, diameter_mm=mm, status=LesionStatus(status) if status else None
    )


def visits(subject: str, *visits: tuple[int, list[LesionMeasurement]]) -> list[TumourAssessment]:
    return [TumourAssessment(subject, day(d), tuple(ms)) for d, ms in visits]


def derive(
    *visits_: tuple[int, list[LesionMeasurement]],
    criteria: str = "recist11",
    options: ResponseOptions | None = None,
    subject: str = "S1",
    **facts: dt.date | None,
) -> SubjectResponse:
    return derive_subject(
        visits(subject, *visits_), SubjectFacts(subject, **facts), options or ResponseOptions(), criteria
    )


def overall(result: SubjectResponse) -> list[str | None]:
    """Overall responses after baseline, as strings."""
    return [None if t.overall is None else str(t.overall) for t in result.timepoints[1:]]
