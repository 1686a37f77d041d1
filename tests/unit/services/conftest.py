"""A small trial in the in-memory unit of work: one site, one patient at screening, the team (web.md §1)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from abscopal import domain as d
from abscopal.services.common import Actor, StaffRole
from abscopal.store.fake_unit_of_work import FakeUnitOfWork

T = TypeVar("T")
AT = dt.datetime(2024, 6, 3, 9, 0, tzinfo=dt.UTC)  # "now" in every test: after every date used below
SITE = frozenset({"JN"})


def actor(username: str, role: StaffRole, **kw: Any) -> Actor:
    return Actor(username, username.title(), role, SITE, **kw)


COORDINATOR = actor("crc.zhao", StaffRole.COORDINATOR)
INVESTIGATOR = actor("dr.li", StaffRole.INVESTIGATOR, pi=True)
DCP1 = actor("dcp.wang", StaffRole.DCP)
DCP2 = actor("dcp.chen", StaffRole.DCP)
RADONC = actor("dr.sun", StaffRole.RADONC)
RADIOLOGIST = actor("dr.zhou", StaffRole.RADIOLOGIST)
DATA_MANAGER = actor("dm.qian", StaffRole.DATA_MANAGER)
MONITOR = actor("cra.wu", StaffRole.MONITOR)

PATIENT = d.Patient("S-001", "JN", d.Sex.FEMALE, dt.date(1969, 5, 2), "1.0")


def eligible_screening(**changes: Any) -> d.Screening:
    """Meets every inclusion and no exclusion of NCT05906329 (as tests/unit/protocol/conftest.py)."""
    base = d.Screening(
        subject_id="S-001",
        screening_date=dt.date(2024, 3, 1),
        consent_date=dt.date(2024, 3, 1),
        age_years=54,
        ecog=1,
        life_expectancy_months=12,
        diet=d.DietLevel.NORMAL,
        severe_allergy_history=False,
        labs={
            "haemoglobin": d.LabValue(120, "g/L"),
            "wbc": d.LabValue(6.0, "x10^9/L"),
            "neutrophils": d.LabValue(3.0, "x10^9/L"),
            "platelets": d.LabValue(200, "x10^9/L"),
            "ast": d.LabValue(30, "U/L", 40),
            "alt": d.LabValue(30, "U/L", 40),
            "alp": d.LabValue(100, "U/L", 120),
        },
        histology=d.Histology.ADENOCARCINOMA,
        histology_confirmed_by=d.HistologyConfirmation.HISTOLOGY,
        lesion_count=4,
        metastatic_organ_count=2,
        has_measurable_disease=True,
        immunotherapy_resistance_confirmed=None,
        no_standard_treatment_option=True,
        refuses_cooperation=False,
        other_trial_within_3_months=False,
        brain_metastases=False,
        investigator_judges_unsuitable=False,
        severe_infection=False,
        serious_comorbidity=False,
        prior_immune_related_toxicity=False,
        prior_radiotherapy=False,
    )
    return dataclasses.replace(base, **changes)


def lesion(lesion_id: str, diameter: float = 30.0, role: d.RtRole = d.RtRole.NONE, organ: str = "lung") -> d.Lesion:
    return d.Lesion("S-001", lesion_id, organ, "RUL", False, True, diameter, role)


class Trial:
    """The committed records, the team, and a way to act as one person in a fresh unit of work."""

    AT = AT
    COORDINATOR = COORDINATOR
    INVESTIGATOR = INVESTIGATOR
    DCP1 = DCP1
    DCP2 = DCP2
    RADONC = RADONC
    RADIOLOGIST = RADIOLOGIST
    DATA_MANAGER = DATA_MANAGER
    MONITOR = MONITOR
    screening = staticmethod(eligible_screening)
    lesion = staticmethod(lesion)

    def __init__(self) -> None:
        self.store = FakeUnitOfWork("setup", "test set-up")

    def act(self, who: Actor, use_case: Callable[..., T], *args: Any, **kw: Any) -> T:
        if "at" in use_case.__code__.co_varnames:
            kw.setdefault("at", AT)
        with self.store.as_user(who.username, "test") as uow:
            return use_case(uow, who, *args, **kw)

    def seed(self, *records: Any) -> list[str]:
        """Add records directly (set-up, not under test) and commit; their ids."""
        with self.store as uow:
            ids = [getattr(uow, _repo(r)).add(r).id for r in records]
            uow.commit()
        return ids

    def read(self) -> FakeUnitOfWork:
        return self.store.as_user("reader")


def _repo(record: Any) -> str:
    return {
        d.Site: "sites", d.Patient: "patients", d.Screening: "screenings", d.Lesion: "lesions",
        d.RadiotherapyCourse: "radiotherapy_courses", d.TumourAssessment: "assessments",
        d.Adjudication: "adjudications", d.AdverseEvent: "adverse_events", d.Fraction: "fractions",
    }[type(record)]  # fmt: skip


@pytest.fixture
def trial() -> Trial:
    t = Trial()
    t.seed(d.Site("JN", "Qianfoshan Hospital"), PATIENT)
    return t


@pytest.fixture
def enrolled(trial: Trial) -> Trial:
    """The patient enrolled (set directly: the enrolment rules have their own tests)."""
    with trial.store as uow:
        p = uow.patients.find(subject_id="S-001")
        assert p is not None
        uow.patients.update(
            p.id,
            dataclasses.replace(p.value, status=d.PatientStatus.ENROLLED, enrolment_date=dt.date(2024, 3, 1)),
            version=p.version,
        )
        uow.commit()
    return trial
