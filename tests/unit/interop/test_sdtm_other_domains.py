"""SDTM DS, SV, LB, IE, DV and TS for small hand-made cases; expected values worked by hand (rules cited).

Subject QFS-000201: consent 2023-02-20, screened 2023-02-22 aged 70 with brain metastases (screen failure,
reason "age above 65"). Subject QFS-000202: enrolled 2023-03-01, first CFRT fraction 2023-03-06 (RFSTDTC),
died 2023-09-10 (status died), tumour assessments 2023-02-27 (baseline), 2023-04-12 (enrolment + 42 = WEEK 6),
2023-04-20 (unscheduled after WEEK 6 -> 3.01), QoL week_6 completed 2023-04-13.
"""

from __future__ import annotations

import datetime as dt

import pytest

from abscopal import domain as d
from abscopal.errors import ValidationError
from abscopal.interop.sdtm.events import build_ds, build_dv, build_sv
from abscopal.interop.sdtm.findings import build_ie, build_lb
from abscopal.interop.sdtm.spec import SdtmSource
from abscopal.interop.sdtm.trial_design import build_ts
from abscopal.protocol.model import load_bundled
from abscopal.store.records import Stored

D = dt.date
FAIL, ENR = "QFS-000201", "QFS-000202"
U_FAIL, U_ENR = f"NCT05906329-{FAIL}", f"NCT05906329-{ENR}"


def _s(prefix: str, items: list) -> list:  # type: ignore[type-arg]
    return [Stored(f"{prefix}{i}", 1, x) for i, x in enumerate(items, start=1)]


def _source(labs: dict[str, d.LabValue] | None = None, reason: str = "wrong dose") -> SdtmSource:
    patients = [
        d.Patient(FAIL, "QFS", d.Sex.FEMALE, D(1952, 1, 2), "1.0", status=d.PatientStatus.SCREEN_FAILED),
        d.Patient(
            ENR,
            "QFS",
            d.Sex.MALE,
            D(1960, 5, 10),
            "1.0",
            status=d.PatientStatus.DIED,
            enrolment_date=D(2023, 3, 1),
            death_date=D(2023, 9, 10),
        ),
    ]
    screenings = [
        d.Screening(
            FAIL,
            D(2023, 2, 22),
            consent_date=D(2023, 2, 20),
            age_years=70,
            brain_metastases=True,
            screen_failure_reason="age above 65",
        ),
        d.Screening(ENR, D(2023, 2, 24), consent_date=D(2023, 2, 23), labs=labs or {}),
    ]
    fractions = [d.Fraction(ENR, "L01", 1, D(2023, 3, 6), 2.0)]
    ms = (d.LesionMeasurement("L01", d.LesionClass.TARGET, "lung", False, 30.0),)
    assessments = [d.TumourAssessment(ENR, day, ms) for day in (D(2023, 2, 27), D(2023, 4, 12), D(2023, 4, 20))]
    answers = [d.QuestionnaireAnswer(ENR, "week_6", d.Instrument.QLQ_C30, 1, 2, completed_on=D(2023, 4, 13))]
    deviations = [
        d.ProtocolDeviation(
            ENR,
            d.DeviationCheck.CFRT_PRESCRIPTION,
            d.DeviationClass.MAJOR,
            "1.5 Gy",
            reason,
            lesion_id="L01",
            confirmed_by="pi",
            date=D(2023, 3, 6),
        ),
        d.ProtocolDeviation(
            ENR, d.DeviationCheck.CFRT_OVERALL_TIME, d.DeviationClass.MINOR, "50 d", "proposed", date=D(2023, 4, 1)
        ),
    ]
    return SdtmSource(
        protocols=load_bundled(),
        cutoff=D(2023, 12, 31),
        created=dt.datetime(2024, 1, 1),
        sites=[d.Site("QFS", "Qianfoshan", "CN")],
        patients=_s("P", patients),
        screenings=_s("S", screenings),
        fractions=_s("F", fractions),
        assessments=_s("T", assessments),
        answers=_s("Q", answers),
        deviations=_s("D", deviations),
    )


def test_ds_consent_screen_failure_and_death_as_end_of_treatment_and_study() -> None:
    """interop.md §2.2: consent = PROTOCOL MILESTONE; screen failure DSTERM = the reason; DIED -> DEATH twice."""
    (ds,) = build_ds(_source())
    got = [
        (r["USUBJID"], r["DSSEQ"], r["DSTERM"], r["DSDECOD"], r["DSCAT"], r["DSSCAT"], r["DSSTDTC"]) for r in ds.rows
    ]
    assert got == [
        (U_FAIL, 1, "INFORMED CONSENT OBTAINED", "INFORMED CONSENT OBTAINED", "PROTOCOL MILESTONE", None, "2023-02-20"),
        (U_FAIL, 2, "age above 65", "SCREEN FAILURE", "DISPOSITION EVENT", None, "2023-02-22"),
        (U_ENR, 1, "INFORMED CONSENT OBTAINED", "INFORMED CONSENT OBTAINED", "PROTOCOL MILESTONE", None, "2023-02-23"),
        (U_ENR, 2, "DEATH", "DEATH", "DISPOSITION EVENT", "END OF STUDY", "2023-09-10"),
        (U_ENR, 3, "DEATH", "DEATH", "DISPOSITION EVENT", "END OF TREATMENT", "2023-09-10"),
    ]


def test_sv_visit_numbers_follow_the_calendar_grid() -> None:
    """interop.md §2.0: SCREENING 1, BASELINE 2 (enrolment; the 02-27 baseline scan is earlier, so BASELINE
    is dated 02-27), WEEK 6 = 2+1 (assessment 04-12 = enrolment + 42; QoL week_6 on 04-13 is the same visit),
    unscheduled after WEEK 6 -> 3.01."""
    (sv,) = build_sv(_source())
    got = [(r["VISITNUM"], r["VISIT"], r["SVSTDTC"], r["SVSTDY"]) for r in sv.rows if r["USUBJID"] == U_ENR]
    assert got == [
        (1.0, "SCREENING", "2023-02-24", -10),
        (2.0, "BASELINE", "2023-02-27", -7),
        (3.0, "WEEK 6", "2023-04-12", 38),
        (3.01, "UNSCHEDULED", "2023-04-20", 46),
    ]


def test_lb_converts_to_standard_units_and_sets_the_range_indicator_only_with_both_limits() -> None:
    labs = {
        "haemoglobin": d.LabValue(9.5, "g/dL", uln=17.5),  # x10 (protocol/units.py) -> 95 g/L; no LLN -> no LBNRIND
        "neutrophils": d.LabValue(1500.0, "cells/uL"),  # x0.001 -> 1.5 10^9/L
        "alt": d.LabValue(90.0, "U/L", uln=40.0, lln=7.0),  # 90 > 40 -> HIGH
        "ast": d.LabValue(40.0, "U/L", uln=40.0, lln=0.0),  # 40 = ULN -> NORMAL
    }
    (lb,) = build_lb(_source(labs))
    got = [(r["LBSEQ"], r["LBTESTCD"], r["LBCAT"], r["LBSTRESN"], r["LBSTRESU"], r["LBNRIND"]) for r in lb.rows]
    assert got == [
        (1, "ALT", "CHEMISTRY", 90.0, "U/L", "HIGH"),
        (2, "AST", "CHEMISTRY", 40.0, "U/L", "NORMAL"),
        (3, "HGB", "HEMATOLOGY", 95.0, "g/L", None),
        (4, "NEUT", "HEMATOLOGY", 1.5, "10^9/L", None),
    ]
    assert lb.rows[2]["LBORRES"] == "9.5" and lb.rows[2]["LBORRESU"] == "g/dL" and lb.rows[2]["LBORNRHI"] == "17.5"
    assert {r["VISITNUM"] for r in lb.rows} == {1.0} and {r["LBDTC"] for r in lb.rows} == {"2023-02-24"}


def test_lb_refuses_a_lab_it_cannot_code() -> None:
    with pytest.raises(ValidationError, match="lab 'ferritin' has no LBTESTCD"):
        build_lb(_source({"ferritin": d.LabValue(30.0, "ug/L")}))


def test_ie_lists_the_criteria_the_eligibility_engine_finds_excluding() -> None:
    """Aged 70 (IN2 18-65 not met -> N), data incomplete (IN8 not met -> N; EX1 missing key information met -> Y),
    brain metastases (EX4 met -> Y); criteria the engine calls unknown are not listed (interop.md §2.8)."""
    (ie,) = build_ie(_source())
    got = [(r["IESEQ"], r["IETESTCD"], r["IECAT"], r["IEORRES"]) for r in ie.rows if r["USUBJID"] == U_FAIL]
    assert got == [
        (1, "IN2", "INCLUSION", "N"),
        (2, "IN8", "INCLUSION", "N"),
        (3, "EX1", "EXCLUSION", "Y"),
        (4, "EX4", "EXCLUSION", "Y"),
    ]


def test_dv_has_confirmed_deviations_only_and_splits_a_long_term_into_suppdv() -> None:
    long_reason = "the " * 60 + "end"  # 243 bytes: 200-byte head cut at a space, the rest in DVTERM1
    dv, suppdv = build_dv(_source(reason=long_reason))
    (row,) = dv.rows
    assert row["DVDECOD"] == "CFRT.PRESCRIPTION" and row["DVSCAT"] == "MAJOR" and row["DVSPID"] == "D1"
    assert len(str(row["DVTERM"]).encode()) <= 200
    (cont,) = suppdv.rows
    assert cont["QNAM"] == "DVTERM1" and f"{row['DVTERM']} {cont['QVAL']}" == long_reason.strip()


def test_ts_states_unknown_phase_as_a_null_flavour_and_the_cutoff() -> None:
    (ts,) = build_ts(_source())
    by = {(r["TSPARMCD"], r["TSSEQ"]): r for r in ts.rows}
    assert by[("TPHASE", 1)]["TSVAL"] is None and by[("TPHASE", 1)]["TSVALNF"] == "NI"  # G10: not in the registry
    assert by[("DCUTDTC", 1)]["TSVAL"] == "2023-12-31"
    assert by[("AGEMIN", 1)]["TSVAL"] == "P18Y" and by[("AGEMAX", 1)]["TSVAL"] == "P65Y"  # IN2 age 18-65
    assert by[("OUTMSPRI", 1)]["TSVAL"] == "ORR (iRECIST)" and ("OUTMSSEC", 5) in by
    assert [by[("TTYPE", 1)]["TSVAL"], by[("TTYPE", 2)]["TSVAL"]] == ["EFFICACY", "SAFETY"]
