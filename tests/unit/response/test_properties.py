"""Invariants of the derivation (hypothesis): permuting rows changes nothing; a cohort derived at once equals
each subject derived alone and the CSV path; adding a new lesion never improves a response; scaling every
diameter by an integer k >= 1 changes nothing when the 5 mm rule never binds (RECIST 1.1)."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
from builders import START
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from abscopal.domain import LesionClass, LesionMeasurement, LesionStatus, TumourAssessment
from abscopal.protocol.model import ResponseOptions
from abscopal.response.codes import Code, Criteria, parse_response
from abscopal.response.engine import SubjectFacts, derive_cohort, derive_table, subject_result
from abscopal.response.io import read_measurements
from abscopal.response.lesions import check_table
from abscopal.response.table import from_assessments

ORGANS = ("lung", "liver", "adrenal")
STATUSES = [s.value for s in LesionStatus]


@st.composite
def subject(draw: st.DrawFn, sid: str, nodes: bool = True, new_diameters: bool = True) -> list[TumourAssessment]:
    n_t = draw(st.integers(0, 3))
    n_nt = draw(st.integers(0 if n_t else 1, 2))
    node_flags = [nodes and draw(st.booleans()) for _ in range(n_t)]
    base = [draw(st.integers(15, 60)) for _ in range(n_t)]
    visits = draw(st.integers(1, 6))
    day = 0
    out = []
    for v in range(visits + 1):
        ms = []
        for i in range(n_t):
            mm = (
                base[i]
                if v == 0
                else draw(
                    st.one_of(st.none(), st.integers(0, 90)) if draw(st.integers(0, 9)) == 0 else st.integers(0, 90)
                )
            )
            ms.append(LesionMeasurement(f"T{i}", LesionClass.TARGET, ORGANS[i], node_flags[i], diameter_mm=mm))
        for j in range(n_nt):
            status = "present" if v == 0 else draw(st.sampled_from([*STATUSES, None]))
            ms.append(
                LesionMeasurement(
                    f"N{j}", LesionClass.NON_TARGET, "bone", False, status=LesionStatus(status) if status else None
                )
            )
        if v > 0 and draw(st.integers(0, 4)) == 0:
            if new_diameters and draw(st.booleans()):
                ms.append(
                    LesionMeasurement(f"X{v}", LesionClass.NEW, "brain", False, diameter_mm=draw(st.integers(1, 30)))
                )
            else:
                ms.append(LesionMeasurement(f"X{v}", LesionClass.NEW, "brain", False, status=LesionStatus.PRESENT))
        out.append(TumourAssessment(sid, START + __import__("datetime").timedelta(days=day), tuple(ms)))
        day += draw(st.integers(14, 70))
    return out


@st.composite
def cohort(draw: st.DrawFn, **kw: bool) -> list[TumourAssessment]:
    n = draw(st.integers(1, 4))
    return [a for i in range(n) for a in draw(subject(f"S{i}", **kw))]


CRITERIA = st.sampled_from(["recist11", "irecist"])
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _shuffled(assessments: list[TumourAssessment], seed: int) -> list[TumourAssessment]:
    rng = random.Random(seed)
    out = [
        dataclasses.replace(a, measurements=tuple(rng.sample(a.measurements, len(a.measurements)))) for a in assessments
    ]
    rng.shuffle(out)
    return out


@FAST
@given(cohort(), CRITERIA, st.integers(0, 1000))
def test_permuting_rows_and_assessments_changes_nothing(
    assessments: list[TumourAssessment], criteria: str, seed: int
) -> None:
    options = ResponseOptions()
    assert derive_cohort(_shuffled(assessments, seed), {}, options, criteria) == derive_cohort(
        assessments, {}, options, criteria
    )


@FAST
@given(cohort(), CRITERIA)
def test_cohort_at_once_equals_each_subject_alone(assessments: list[TumourAssessment], criteria: str) -> None:
    options = ResponseOptions()
    together = derive_cohort(assessments, {}, options, criteria)
    for sid, result in together.items():
        alone = derive_cohort([a for a in assessments if a.subject_id == sid], [SubjectFacts(sid)], options, criteria)
        assert alone[sid] == result


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(cohort(), CRITERIA)
def test_csv_path_equals_domain_path(tmp_path: Path, assessments: list[TumourAssessment], criteria: str) -> None:
    lines = ["subject_id,assessment_date,lesion_id,lesion_class,organ,is_node,diameter_mm,status"]
    for a in assessments:
        for m in a.measurements:
            mm = "" if m.diameter_mm is None else str(m.diameter_mm)
            lines.append(
                f"{a.subject_id},{a.assessment_date},{m.lesion_id},{m.lesion_class},{m.organ},"
                f"{str(m.is_node).lower()},{mm},{m.status or ''}"
            )
    path = tmp_path / "m.csv"
    path.write_text("\n".join(lines) + "\n")
    options = ResponseOptions()
    arrays = derive_table(read_measurements(path).table, {}, options, Criteria(criteria))
    from_csv = {sid: subject_result(arrays, s) for s, sid in enumerate(arrays.subject_ids)}
    assert from_csv == derive_cohort(assessments, {}, options, criteria)


def _worse_or_equal(with_new: str | None, without: str | None) -> bool:
    if with_new is None or without is None:
        return with_new == without
    a, b = parse_response(with_new), parse_response(without)
    if a is None or b is None or Code.NE in (a, b):
        return True  # NE is not ordered against a response
    return a >= b


@FAST
@given(cohort(), CRITERIA, st.integers(0, 1000))
def test_adding_a_new_lesion_never_improves_a_response(
    assessments: list[TumourAssessment], criteria: str, seed: int
) -> None:
    options = ResponseOptions()
    rng = random.Random(seed)
    followups = [
        i
        for i, a in enumerate(assessments)
        if any(b.subject_id == a.subject_id and b.assessment_date < a.assessment_date for b in assessments)
    ]
    assume(followups)
    i = rng.choice(followups)
    extra = LesionMeasurement("ADDED", LesionClass.NEW, "brain", False, status=LesionStatus.PRESENT)
    changed = list(assessments)
    changed[i] = dataclasses.replace(assessments[i], measurements=(*assessments[i].measurements, extra))
    before = derive_cohort(assessments, {}, options, criteria)
    after = derive_cohort(changed, {}, options, criteria)
    for sid in before:
        for x, y in zip(after[sid].timepoints, before[sid].timepoints, strict=True):
            assert _worse_or_equal(x.overall, y.overall)
        for field in ("bor", "bor_confirmed"):
            new, old = str(getattr(after[sid], field)), str(getattr(before[sid], field))
            if parse_response(new) in (Code.CR, Code.PR, Code.SD, Code.NN):
                assert parse_response(old) is not None and parse_response(old) <= parse_response(new)


@FAST
@given(cohort(nodes=False, new_diameters=False), st.integers(2, 4))
def test_scaling_diameters_by_integer_k_changes_nothing_when_the_5_mm_rule_does_not_bind(
    assessments: list[TumourAssessment], k: int
) -> None:
    table = from_assessments(assessments)
    assume(not check_table(table))
    options = ResponseOptions()
    arrays = derive_table(table, {}, options, Criteria.RECIST11)
    s, nadir, tp = arrays.tp.target_sum, arrays.nadir_um, arrays.tp
    binds = tp.valid & (10 * s >= 12 * nadir) & (s - nadir < 5000) & (tp.n_targets[:, None] > 0)
    binds[:, 0] = False
    assume(not binds.any())
    scaled = [
        dataclasses.replace(
            a,
            measurements=tuple(
                dataclasses.replace(m, diameter_mm=None if m.diameter_mm is None else m.diameter_mm * k)
                for m in a.measurements
            ),
        )
        for a in assessments
    ]
    before = derive_cohort(assessments, {}, options, "recist11")
    after = derive_cohort(scaled, {}, options, "recist11")
    for sid in before:
        assert [t.overall for t in after[sid].timepoints] == [t.overall for t in before[sid].timepoints]
        assert (after[sid].bor, after[sid].bor_confirmed, after[sid].pfs) == (
            before[sid].bor,
            before[sid].bor_confirmed,
            before[sid].pfs,
        )
    assert np.array_equal(
        arrays.overall, derive_table(from_assessments(scaled), {}, options, Criteria.RECIST11).overall
    )
