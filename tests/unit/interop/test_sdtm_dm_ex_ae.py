"""SDTM DM, EX (+SUPPEX) and AE (+SUPPAE) from one hand-made patient, every expected value worked by hand.

Patient QFS-000101 (site QFS, China), born 1960-05-10, male; screened 2023-02-22 after consent 2023-02-20,
enrolled 2023-03-01. Lesions L01 lung (CFRT, 2 Gy x 25 planned) and L02 liver (LDRT, 1.6 Gy weekly).
Given: IO cycle 1 2023-03-02 (200 mg; cycle 2 2023-03-23 not given); CFRT #1 2023-03-06 2.0 Gy, #2 2023-03-07
partial 1.2 Gy, #3 2023-03-08 missed; LDRT #1 2023-03-10 1.6 Gy.

- RFSTDTC = first delivered RT fraction = 2023-03-06 (§2.0); RFXSTDTC/RFXENDTC = first/last study treatment
  = 2023-03-02 / 2023-03-10 (missed fraction and ungiven cycle are no treatment).
- --DY = date - 2023-03-06, +1 on/after: 03-02 -> -4, 03-05 -> -1, 03-06 -> 1, 03-07 -> 2, 03-10 -> 5,
  04-01 -> 27, 05-01 -> 57, 03-20 -> 15.
- EPOCH: SCREENING before 2023-03-02, TREATMENT to 2023-03-10, FOLLOW-UP after: 03-20, 04-01, 05-01 FOLLOW-UP.
- AGE = age_on(1960-05-10, consent 2023-02-20) = 62 (birthday not reached in 2023).
- EX in key order (EXTRT, EXSTDTC): CFRT 03-06, CFRT 03-07, LDRT 03-10, PEMBROLIZUMAB 03-02 -> EXSEQ 1..4.
- AE in key order (AEDECOD): Fatigue, Nausea, Pneumonitis -> AESEQ 1..3; AEREL (§2.4): Fatigue all three
  attributions <= unlikely -> NOT RELATED; Nausea only CFRT given (unlikely) -> null; Pneumonitis CFRT possible
  -> RELATED. Pneumonitis unresolved at the cut-off 2023-06-30 -> AEENRTPT ONGOING, AEENTPT 2023-06-30.
"""

from __future__ import annotations

import datetime as dt

import pytest

from abscopal import domain as d
from abscopal.errors import ValidationError
from abscopal.interop.sdtm.ae import build_ae
from abscopal.interop.sdtm.dm import build_dm
from abscopal.interop.sdtm.ex import build_ex
from abscopal.interop.sdtm.spec import SdtmSource
from abscopal.protocol.model import load_bundled
from abscopal.store.records import Stored

SID = "QFS-000101"
U = f"NCT05906329-{SID}"
D = dt.date
A = d.Attribution


def _s(prefix: str, items: list) -> list:  # type: ignore[type-arg]
    return [Stored(f"{prefix}{i}", 1, x) for i, x in enumerate(items, start=1)]


def _source(lesion_organ: str = "liver", verbatim: str | None = None) -> SdtmSource:
    patient = d.Patient(
        SID,
        "QFS",
        d.Sex.MALE,
        D(1960, 5, 10),
        "1.0",
        status=d.PatientStatus.ON_TREATMENT,
        enrolment_date=D(2023, 3, 1),
        hospital_id="H-SECRET-77",
    )
    screening = d.Screening(SID, D(2023, 2, 22), consent_date=D(2023, 2, 20))
    lesions = [
        d.Lesion(SID, "L01", "lung", "right upper lobe", False, True, 30.0, d.RtRole.CONVENTIONAL),
        d.Lesion(SID, "L02", lesion_organ, "segment IV", False, True, 25.0, d.RtRole.LOW_DOSE),
    ]
    courses = [
        d.RadiotherapyCourse(SID, "L01", d.RtRole.CONVENTIONAL, 2.0, 25, D(2023, 3, 6), plan_label="LUNG50"),
        d.RadiotherapyCourse(SID, "L02", d.RtRole.LOW_DOSE, 1.6, 4, D(2023, 3, 10)),
    ]
    fractions = [
        d.Fraction(SID, "L01", 1, D(2023, 3, 6), 2.0),
        d.Fraction(SID, "L01", 2, D(2023, 3, 7), 1.2, d.FractionStatus.PARTIAL),
        d.Fraction(SID, "L01", 3, D(2023, 3, 8), 0.0, d.FractionStatus.MISSED),
        d.Fraction(SID, "L02", 1, D(2023, 3, 10), 1.6),
    ]
    cycles = [
        d.ImmunotherapyCycle(SID, 1, D(2023, 3, 2), "pembrolizumab", dose=200.0, dose_unit="mg"),
        d.ImmunotherapyCycle(SID, 2, D(2023, 3, 23), "pembrolizumab", given=False),
    ]
    aes = [
        d.AdverseEvent(
            SID,
            "AE01",
            "Pneumonitis",
            10035742,
            2,
            D(2023, 4, 1),
            attribution_cfrt=A.POSSIBLE,
            attribution_ldrt=A.UNLIKELY,
            attribution_io=A.UNRELATED,
            immune_related=True,
            verbatim=verbatim,
        ),
        d.AdverseEvent(
            SID,
            "AE02",
            "Fatigue",
            10016256,
            1,
            D(2023, 3, 5),
            D(2023, 3, 20),
            attribution_cfrt=A.UNLIKELY,
            attribution_ldrt=A.UNLIKELY,
            attribution_io=A.UNRELATED,
            outcome=d.AeOutcome.RECOVERED,
        ),
        d.AdverseEvent(SID, "AE03", "Nausea", 10028813, 1, D(2023, 5, 1), attribution_cfrt=A.UNLIKELY),
    ]
    return SdtmSource(
        protocols=load_bundled(),
        cutoff=D(2023, 6, 30),
        created=dt.datetime(2023, 7, 1, 8, 0),
        sites=[d.Site("QFS", "Qianfoshan", "CN")],
        patients=_s("P", [patient]),
        screenings=_s("S", [screening]),
        lesions=_s("L", lesions),
        courses=_s("C", courses),
        fractions=_s("F", fractions),
        cycles=_s("I", cycles),
        adverse_events=_s("A", aes),
    )


def test_dm_hand_worked_reference_dates_age_arm_and_no_hospital_id() -> None:
    (dm,) = build_dm(_source())
    (row,) = dm.rows
    expected = {
        "STUDYID": "NCT05906329",
        "DOMAIN": "DM",
        "USUBJID": U,
        "SUBJID": SID,
        "RFSTDTC": "2023-03-06",
        "RFXSTDTC": "2023-03-02",
        "RFXENDTC": "2023-03-10",
        "RFICDTC": "2023-02-20",
        "DTHDTC": None,
        "DTHFL": None,
        "SITEID": "QFS",
        "BRTHDTC": "1960",
        "AGE": 62,
        "AGEU": "YEARS",
        "SEX": "M",
        "ARMCD": "CFRTLDRT",
        "ACTARMCD": "CFRTLDRT",
        "ARMNRS": None,
        "COUNTRY": "CHN",
        "RACE": None,
    }
    assert {k: row[k] for k in expected} == expected
    assert "H-SECRET-77" not in {str(v) for v in row.values()}  # the hospital id is never exported (G1)


def test_ex_hand_worked_rows_in_key_order_with_study_day_epoch_and_location() -> None:
    ex, suppex = build_ex(_source())
    got = [
        (
            r["EXSEQ"],
            r["EXTRT"],
            r["EXSTDTC"],
            r["EXDOSE"],
            r["EXDOSU"],
            r["EXDOSFRQ"],
            r["EXLOC"],
            r["EXADJ"],
            r["EXSTDY"],
            r["EPOCH"],
            r["EXLNKID"],
        )
        for r in ex.rows
    ]
    assert got == [
        (
            1,
            "CONVENTIONAL FRACTIONATED RADIOTHERAPY",
            "2023-03-06",
            2.0,
            "Gy",
            "QD",
            "LUNG",
            None,
            1,
            "TREATMENT",
            "L01",
        ),
        (
            2,
            "CONVENTIONAL FRACTIONATED RADIOTHERAPY",
            "2023-03-07",
            1.2,
            "Gy",
            "QD",
            "LUNG",
            "PARTIAL FRACTION",
            2,
            "TREATMENT",
            "L01",
        ),
        (3, "LOW-DOSE RADIOTHERAPY", "2023-03-10", 1.6, "Gy", "QW", "LIVER", None, 5, "TREATMENT", "L02"),
        (4, "PEMBROLIZUMAB", "2023-03-02", 200.0, "mg", "Q3W", None, None, -4, "TREATMENT", None),
    ]
    assert [r["EXSPID"] for r in ex.rows] == ["F1", "F2", "F4", "I1"]  # the stored ids (§1 stable ids)
    assert ex.rows[3]["EXROUTE"] == "INTRAVENOUS" and ex.rows[0]["EXGRPID"] == "C1"
    supp = {(r["IDVARVAL"], r["QNAM"]): r["QVAL"] for r in suppex.rows}
    # course L01: 2 Gy x 25 = 50 Gy prescribed, plan LUNG50; course L02: 1.6 x 4 = 6.4 Gy, no plan label
    assert supp == {
        ("1", "RXDOSE"): "50.0",
        ("1", "RXNFRAC"): "25",
        ("1", "RTPLAN"): "LUNG50",
        ("2", "RXDOSE"): "50.0",
        ("2", "RXNFRAC"): "25",
        ("2", "RTPLAN"): "LUNG50",
        ("3", "RXDOSE"): "6.4",
        ("3", "RXNFRAC"): "4",
    }


def test_ex_refuses_an_organ_without_a_cdisc_location_naming_it() -> None:
    with pytest.raises(ValidationError, match="organ 'spleen' has no CDISC LOC"):
        build_ex(_source(lesion_organ="spleen"))


def test_ae_hand_worked_order_relatedness_ongoing_and_study_days() -> None:
    ae, suppae = build_ae(_source())
    got = [
        (r["AESEQ"], r["AEDECOD"], r["AEREL"], r["AESTDY"], r["AEENDY"], r["EPOCH"], r["AEENRTPT"], r["AEENTPT"])
        for r in ae.rows
    ]
    assert got == [
        (1, "Fatigue", "NOT RELATED", -1, 15, "TREATMENT", None, None),
        (2, "Nausea", None, 57, None, "FOLLOW-UP", "ONGOING", "2023-06-30"),
        (3, "Pneumonitis", "RELATED", 27, None, "FOLLOW-UP", "ONGOING", "2023-06-30"),
    ]
    assert ae.rows[0]["AEBODSYS"] == "General disorders and administration site conditions"
    assert ae.rows[0]["AEOUT"] == "RECOVERED/RESOLVED" and ae.rows[0]["AESER"] == "N"
    q = {(r["IDVARVAL"], r["QNAM"]): r["QVAL"] for r in suppae.rows}
    assert q[("3", "AERELCF")] == "POSSIBLE" and q[("3", "AEIRAE")] == "Y" and q[("1", "AERELIO")] == "UNRELATED"
    assert ("2", "AERELLD") not in q  # a null qualifier has no SUPP record


def test_ae_term_over_200_bytes_is_split_at_the_last_space_into_suppae() -> None:
    words = " ".join(f"word{i:03d}" for i in range(40))  # 40 x 7 chars + 39 spaces = 319 bytes
    ae, suppae = build_ae(_source(verbatim=words))
    row = next(r for r in ae.rows if r["AEDECOD"] == "Pneumonitis")
    head = str(row["AETERM"])
    # 25 words fill 25*7 + 24 = 199 bytes; a 26th would make 207 > 200
    assert head == " ".join(f"word{i:03d}" for i in range(25))
    rest = [r["QVAL"] for r in suppae.rows if r["QNAM"] == "AETERM1"]
    assert rest == [" ".join(f"word{i:03d}" for i in range(25, 40))]
