"""SDTM TU, TR, RS, QS built from one hand-made patient (interop.md §2.0, §2.6, §2.7; response-rules.md §2-5, §9).

The patient QFS-000001, enrolled 2025-01-06, first study treatment (CFRT fraction 1) 2025-01-08, last IO cycle
2025-04-04. Lesions: T1 lung 30 mm (non-nodal target, CFRT, primary), T2 mediastinal node 20 mm short axis (nodal
target, LDRT), N1 liver (non-target), NEW1 lung 15 mm first seen at week 12 (measured new lesion).

| visit (VISITNUM) | date (TRDY) | T1 | T2 | N1 | NEW1 | SOD (hand) | RECIST 1.1 | iRECIST |
|---|---|---|---|---|---|---|---|---|
| BASELINE (2) | 2025-01-03 (-5) | 30 | 20 | present | - | 50 | - | - |
| WEEK 6 (3) | 2025-02-17 (41) | 20 | 12 | present | - | 32 (-36%) | PR | iPR |
| WEEK 12 (4) | 2025-03-31 (83) | 20 | 12 | present | 15 | 32 | PD (new lesion) | iUPD |
| WEEK 18 (5) | 2025-05-12 (125) | not done | 12 | present | 15 | not done | PD/NE | - |

Study day: date - 2025-01-08, +1 on/after (no day 0). EPOCH: SCREENING before 2025-01-08, TREATMENT to the last
study treatment 2025-04-04, FOLLOW-UP after.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import pytest

from abscopal import domain as d
from abscopal.errors import ValidationError
from abscopal.interop.sdtm.oncology_common import cdisc_location
from abscopal.interop.sdtm.qs import QS_SPEC, build_qs
from abscopal.interop.sdtm.rs import RS_SPEC, build_rs
from abscopal.interop.sdtm.spec import Dataset, SdtmSource, Value, check_spec
from abscopal.interop.sdtm.tr import TR_SPEC, build_tr
from abscopal.interop.sdtm.tu import SUPPTU_SPEC, TU_SPEC, build_tu
from abscopal.protocol.model import load_bundled
from abscopal.qol import score_answers
from abscopal.response import Criteria, SubjectFacts, derive_subject
from abscopal.store.records import Stored

SID = "QFS-000001"
USUBJID = "NCT05906329-QFS-000001"
BASE, W6, W12, W18 = dt.date(2025, 1, 3), dt.date(2025, 2, 17), dt.date(2025, 3, 31), dt.date(2025, 5, 12)
LC, NT, NW = d.LesionClass.TARGET, d.LesionClass.NON_TARGET, d.LesionClass.NEW
PRESENT = d.LesionStatus.PRESENT


def _t1(mm: float | None) -> d.LesionMeasurement:
    return d.LesionMeasurement("T1", LC, "lung", False, diameter_mm=mm, not_done_reason=None if mm else "scan cut off")


def _t2(mm: float) -> d.LesionMeasurement:
    return d.LesionMeasurement("T2", LC, "lymph_node", True, diameter_mm=mm)


N1 = d.LesionMeasurement("N1", NT, "liver", False, status=PRESENT)
NEW1 = d.LesionMeasurement("NEW1", NW, "lung", False, diameter_mm=15.0)

ASSESSMENTS = (
    d.TumourAssessment(SID, BASE, (_t1(30.0), _t2(20.0), N1), method="CT"),
    d.TumourAssessment(
        SID, W6, (_t1(20.0), _t2(12.0), N1), d.InvestigatorResponse.IPR, method="CT", criteria="irecist"
    ),
    d.TumourAssessment(SID, W12, (_t1(20.0), _t2(12.0), N1, NEW1), d.InvestigatorResponse.IUPD, method="CT"),
    d.TumourAssessment(SID, W18, (_t1(None), _t2(12.0), N1, NEW1), method="MRI"),
)
C30 = {i: 1 + i % 4 for i in range(1, 29)} | {29: 5, 30: 6}  # items 29-30 are 1-7
LC13 = {30 + k: 1 + k % 4 for k in range(1, 14)} | {43: None}  # LC13 item 13 (43) left blank


def _answers() -> list[d.QuestionnaireAnswer]:
    out = []
    for items, instrument in ((C30, d.Instrument.QLQ_C30), (LC13, d.Instrument.QLQ_LC13)):
        for item, answer in items.items():
            out.append(d.QuestionnaireAnswer(SID, "week_6", instrument, item, answer, completed_on=W6))
    return out


def _source() -> SdtmSource:
    protocols = load_bundled()
    patient = d.Patient(SID, "QFS", d.Sex.MALE, dt.date(1960, 5, 1), "1.0", enrolment_date=dt.date(2025, 1, 6))
    lesions = [
        d.Lesion(SID, "T1", "lung", "right upper lobe", False, True, 30.0, d.RtRole.CONVENTIONAL, is_primary=True),
        d.Lesion(SID, "T2", "lymph_node", "mediastinal station 4R", True, True, 20.0, d.RtRole.LOW_DOSE),
        d.Lesion(SID, "N1", "liver", "liver segment IV", False, False, None, d.RtRole.NONE, NT, is_symptomatic=True),
    ]
    fractions = [d.Fraction(SID, "T1", n, dt.date(2025, 1, 7 + n), 2.0) for n in (1, 2)]
    cycles = [
        d.ImmunotherapyCycle(SID, n, dt.date(2025, 1, 10) + dt.timedelta(days=21 * (n - 1)), "tislelizumab")
        for n in range(1, 6)
    ]  # 2025-01-10 ... 2025-04-04
    return SdtmSource(
        protocols=protocols,
        cutoff=dt.date(2025, 6, 30),
        created=dt.datetime(2025, 7, 1, 12, 0),
        patients=[Stored("p1", 1, patient)],
        lesions=[Stored(f"l{i}", 1, x) for i, x in enumerate(lesions, 1)],
        fractions=[Stored(f"f{i}", 1, x) for i, x in enumerate(fractions, 1)],
        cycles=[Stored(f"c{i}", 1, x) for i, x in enumerate(cycles, 1)],
        assessments=[Stored(f"ta{i}", 1, x) for i, x in enumerate(ASSESSMENTS, 1)],
        answers=[Stored(f"q{i}", 1, x) for i, x in enumerate(_answers(), 1)],
    )


@pytest.fixture(scope="module")
def source() -> SdtmSource:
    return _source()


@pytest.fixture(scope="module")
def tu(source: SdtmSource) -> list[Dataset]:
    return build_tu(source)


@pytest.fixture(scope="module")
def tr(source: SdtmSource) -> Dataset:
    return build_tr(source)[0]


@pytest.fixture(scope="module")
def rs(source: SdtmSource) -> Dataset:
    return build_rs(source)[0]


@pytest.fixture(scope="module")
def qs(source: SdtmSource) -> Dataset:
    return build_qs(source)[0]


def _pick(rows: Sequence[Mapping[str, Value]], *names: str) -> list[tuple[Value, ...]]:
    return [tuple(r[n] for n in names) for r in rows]


# --- specs


@pytest.mark.parametrize("spec", [TU_SPEC, SUPPTU_SPEC, TR_SPEC, RS_SPEC, QS_SPEC], ids=lambda s: s.name)
def test_every_dataset_spec_fits_sas_xport_names_and_labels(spec):
    check_spec(spec)


def test_every_row_has_exactly_the_spec_variables(tu, tr, rs, qs):
    for ds in (*tu, tr, rs, qs):
        assert all(tuple(r) == ds.spec.names for r in ds.rows), ds.spec.name


@pytest.mark.parametrize("name", ["tu", "tr", "rs", "qs"])
def test_usubjid_and_seq_are_unique_and_numbered_one_to_n(name, request):
    ds = request.getfixturevalue(name)
    ds = ds[0] if isinstance(ds, list) else ds
    prefix = ds.spec.name
    keys = [(r["USUBJID"], r[f"{prefix}SEQ"]) for r in ds.rows]
    assert len(set(keys)) == len(keys)
    assert [k[1] for k in keys] == list(range(1, len(keys) + 1))


# --- TU


def test_tu_has_one_identification_per_lesion_with_its_first_sighting(tu):
    # hand-written from the table above: NEW1 first seen at WEEK 12, the others at BASELINE
    assert _pick(
        tu[0].rows,
        "TUSEQ",
        "TULNKID",
        "TUSPID",
        "TUORRES",
        "TUSTRESC",
        "TULOC",
        "VISITNUM",
        "VISIT",
        "TUDTC",
        "TUDY",
        "EPOCH",
        "TULOBXFL",
    ) == [
        (1, "N1", "l3", "NON-TARGET", "NON-TARGET", "LIVER", 2.0, "BASELINE", "2025-01-03", -5, "SCREENING", "Y"),
        (2, "T1", "l1", "TARGET", "TARGET", "LUNG", 2.0, "BASELINE", "2025-01-03", -5, "SCREENING", "Y"),
        (3, "T2", "l2", "TARGET", "TARGET", "LYMPH NODE", 2.0, "BASELINE", "2025-01-03", -5, "SCREENING", "Y"),
        (4, "NEW1", None, "NEW", "NEW", "LUNG", 4.0, "WEEK 12", "2025-03-31", 83, "TREATMENT", None),
    ]


def test_tu_is_identified_by_the_investigator_as_tumidentification(tu):
    assert {(r["TUTESTCD"], r["TUTEST"], r["TUEVAL"], r["USUBJID"], r["STUDYID"]) for r in tu[0].rows} == {
        ("TUMIDENT", "Tumor Identification", "INVESTIGATOR", USUBJID, "NCT05906329")
    }


def test_supptu_carries_rt_role_location_detail_and_flags_per_tuseq(tu):
    assert _pick(tu[1].rows, "IDVARVAL", "QNAM", "QVAL") == [
        ("1", "RTROLE", "NONE"),
        ("1", "LOCDTL", "liver segment IV"),
        ("1", "PRIMFL", "N"),
        ("1", "SYMPFL", "Y"),
        ("2", "RTROLE", "CONVENTIONAL"),
        ("2", "LOCDTL", "right upper lobe"),
        ("2", "PRIMFL", "Y"),
        ("2", "SYMPFL", "N"),
        ("3", "RTROLE", "LOW DOSE"),
        ("3", "LOCDTL", "mediastinal station 4R"),
        ("3", "PRIMFL", "N"),
        ("3", "SYMPFL", "N"),
    ]


def test_an_organ_without_a_cdisc_location_is_refused_not_guessed():
    with pytest.raises(ValidationError, match="spleen-ish"):
        cdisc_location("spleen-ish", load_bundled().current)


# --- TR


def test_tr_measures_non_nodal_by_ldiam_nodal_by_lperp_and_non_targets_by_state(tr):
    week12 = [r for r in tr.rows if r["TRDTC"] == "2025-03-31"]
    assert _pick(week12, "TRLNKID", "TRTESTCD", "TRORRES", "TRSTRESN", "TRORRESU", "TRGRPID", "TREVAL") == [
        ("N1", "TUMSTATE", "PRESENT", None, None, None, "INVESTIGATOR"),
        ("NEW1", "LDIAM", "15", 15.0, "mm", None, "INVESTIGATOR"),
        ("T1", "LDIAM", "20", 20.0, "mm", None, "INVESTIGATOR"),
        ("T2", "LPERP", "12", 12.0, "mm", None, "INVESTIGATOR"),
        # SOD 20 + 12 = 32 (the new lesion is not added, response-rules.md §5); NLT-SOD 15
        (None, "SUMDIAM", "15", 15.0, "mm", "NEW LESION TARGET", "SPONSOR"),
        (None, "SUMDIAM", "32", 32.0, "mm", "TARGET", "SPONSOR"),
    ]


def test_tr_target_sums_are_the_hand_worked_sums_of_diameters(tr):
    sums = [(r["TRDTC"], r["TRSTRESN"], r["TRSTAT"]) for r in tr.rows if r["TRGRPID"] == "TARGET"]
    assert sums == [
        ("2025-01-03", 50.0, None),
        ("2025-02-17", 32.0, None),
        ("2025-03-31", 32.0, None),
        ("2025-05-12", None, "NOT DONE"),
    ]


def test_tr_unmeasured_target_is_not_done_with_its_reason(tr):
    row = next(r for r in tr.rows if r["TRDTC"] == "2025-05-12" and r["TRLNKID"] == "T1")
    assert (row["TRSTAT"], row["TRREASND"], row["TRORRES"], row["TRSTRESN"]) == ("NOT DONE", "scan cut off", None, None)


def test_tr_links_each_row_to_its_assessment_and_visit(tr):
    got = {
        (r["TRDTC"], r["TRLNKGRP"], r["VISITNUM"], r["VISIT"], r["TRDY"], r["EPOCH"], r["TRMETHOD"]) for r in tr.rows
    }
    assert got == {
        ("2025-01-03", "Ata1", 2.0, "BASELINE", -5, "SCREENING", "CT"),
        ("2025-02-17", "Ata2", 3.0, "WEEK 6", 41, "TREATMENT", "CT"),
        ("2025-03-31", "Ata3", 4.0, "WEEK 12", 83, "TREATMENT", "CT"),
        ("2025-05-12", "Ata4", 5.0, "WEEK 18", 125, "FOLLOW-UP", "MRI"),
    }


def test_every_tr_lesion_row_has_a_tu_row(tu, tr):
    tu_ids = {(r["USUBJID"], r["TULNKID"]) for r in tu[0].rows}
    linked = {(r["USUBJID"], r["TRLNKID"]) for r in tr.rows if r["TRLNKID"] is not None}
    assert linked and linked <= tu_ids
    assert all(r["TRTESTCD"] == "SUMDIAM" for r in tr.rows if r["TRLNKID"] is None)


def test_tr_flags_the_baseline_assessment_as_last_before_exposure(tr):
    assert {r["TRDTC"] for r in tr.rows if r["TRLOBXFL"] == "Y"} == {"2025-01-03"}


# --- RS


def _engine(criteria: Criteria):
    protocol = load_bundled().current
    facts = SubjectFacts(SID, reference_date=dt.date(2025, 1, 8))
    return derive_subject(list(ASSESSMENTS), facts, protocol.response, criteria)


@pytest.mark.parametrize("criteria, category", [(Criteria.RECIST11, "RECIST 1.1"), (Criteria.IRECIST, "iRECIST")])
def test_rs_sponsor_overall_responses_equal_the_response_engine(rs, criteria, category):
    expected = [(t.assessment_date.isoformat(), str(t.overall)) for t in _engine(criteria).timepoints if t.overall]
    got = [
        (r["RSDTC"], r["RSORRES"])
        for r in rs.rows
        if r["RSTESTCD"] == "OVRLRESP" and r["RSEVAL"] == "SPONSOR" and r["RSCAT"] == category
    ]
    assert got == expected


@pytest.mark.parametrize("criteria, category", [(Criteria.RECIST11, "RECIST 1.1"), (Criteria.IRECIST, "iRECIST")])
def test_rs_best_response_equals_the_engines_confirmed_best_response(rs, criteria, category):
    best = [r for r in rs.rows if r["RSTESTCD"] == "BESTRESP" and r["RSCAT"] == category]
    assert [(r["RSORRES"], r["RSEVAL"], r["RSLNKGRP"]) for r in best] == [
        (str(_engine(criteria).bor_confirmed), "SPONSOR", None)
    ]


def test_rs_week_12_new_lesion_is_recist_pd_and_irecist_iupd_by_hand(rs):
    # response-rules.md §2-§5: SOD 32 vs baseline 50 (-36%) is target PR, N1 present is non-CR/non-PD, and NEW1
    # appears: RECIST 1.1 PD, iRECIST iUPD (first PD, unconfirmed)
    week12 = {
        (r["RSCAT"], r["RSTESTCD"]): r["RSSTRESC"]
        for r in rs.rows
        if r["RSDTC"] == "2025-03-31" and r["RSEVAL"] == "SPONSOR" and r["RSTESTCD"] != "BESTRESP"
    }
    assert week12 == {
        ("RECIST 1.1", "TRGRESP"): "PR",
        ("RECIST 1.1", "NTRGRESP"): "NON-CR/NON-PD",
        ("RECIST 1.1", "NEWLPROG"): "Y",
        ("RECIST 1.1", "OVRLRESP"): "PD",
        ("iRECIST", "TRGRESP"): "PR",
        ("iRECIST", "NTRGRESP"): "NON-CR/NON-PD",
        ("iRECIST", "NEWLPROG"): "Y",
        ("iRECIST", "OVRLRESP"): "iUPD",
    }


def test_rs_investigator_response_keeps_its_criteria_and_defaults_to_the_protocols(rs):
    inv = [(r["RSDTC"], r["RSCAT"], r["RSORRES"], r["RSACPTFL"]) for r in rs.rows if r["RSEVAL"] == "INVESTIGATOR"]
    # week 6 recorded criteria "irecist"; week 12 recorded none: the protocol's [response].criteria (irecist)
    assert inv == [("2025-02-17", "iRECIST", "iPR", "Y"), ("2025-03-31", "iRECIST", "iUPD", "Y")]


def test_rs_accepts_only_the_investigator_by_default(rs):
    assert {r["RSEVAL"] for r in rs.rows if r["RSACPTFL"] == "Y"} == {"INVESTIGATOR"}


def test_rs_link_groups_are_the_tr_link_groups_of_the_same_assessment(rs, tr):
    tr_groups = {(r["TRDTC"], r["TRLNKGRP"]) for r in tr.rows}
    rs_groups = {(r["RSDTC"], r["RSLNKGRP"]) for r in rs.rows if r["RSLNKGRP"] is not None}
    assert rs_groups and rs_groups <= tr_groups


def test_rs_has_no_response_at_baseline(rs):
    assert not [r for r in rs.rows if r["RSDTC"] == "2025-01-03" and r["RSTESTCD"] != "BESTRESP"]


# --- QS


def test_qs_has_every_c30_and_lc13_item_with_its_code(qs):
    items = [r["QSTESTCD"] for r in qs.rows if r["QSDRVFL"] is None]
    assert items == [f"C30Q{i:02d}" for i in range(1, 31)] + [f"LC13Q{i}" for i in range(31, 44)]


def test_qs_item_answer_is_original_and_standard_result(qs):
    row = next(r for r in qs.rows if r["QSTESTCD"] == "C30Q29")
    assert (row["QSORRES"], row["QSSTRESC"], row["QSSTRESN"], row["QSSTAT"]) == ("5", "5", 5.0, None)


def test_qs_blank_item_is_not_done(qs):
    row = next(r for r in qs.rows if r["QSTESTCD"] == "LC13Q43")
    assert (row["QSORRES"], row["QSSTRESC"], row["QSSTRESN"], row["QSSTAT"]) == (None, None, None, "NOT DONE")


def test_qs_scale_rows_equal_the_qol_engine_unrounded(qs, source):
    expected = [(s.scale, s.score) for s in score_answers([a.value for a in source.answers])]
    got = [(r["QSTESTCD"], r["QSSTRESN"]) for r in qs.rows if r["QSDRVFL"] == "Y"]
    assert got == expected
    assert all(r["QSORRES"] is None for r in qs.rows if r["QSDRVFL"] == "Y")


def test_qs_global_health_status_is_hand_worked(qs):
    # QL2 = items 29, 30 (1-7): raw (5 + 6) / 2 = 5.5, score (5.5 - 1) / 6 * 100 = 75 (EORTC manual, 3rd ed.)
    row = next(r for r in qs.rows if r["QSTESTCD"] == "QL2")
    assert row["QSSTRESN"] == pytest.approx(75.0, rel=1e-14)


def test_qs_visit_comes_from_the_questionnaire_visit_code(qs):
    assert {(r["VISIT"], r["VISITNUM"], r["QSDTC"], r["QSDY"], r["EPOCH"]) for r in qs.rows} == {
        ("WEEK 6", 3.0, "2025-02-17", 41, "TREATMENT")
    }
