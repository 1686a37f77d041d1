"""Immunotherapy resistance: classification (registry + SITC, Kluger 2020) and two-signer adjudication.

Expected classes are worked by hand from the protocol's [resistance] section: primary >= 42 days exposure with best
response PD (or SD lasting < 183 days); acquired > 183 days exposure with CR/PR/SD (SD >= 183 days); progression
confirmed by a scan >= 28 days later; within 84 days of the last dose.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from abscopal.domain import Adjudication, BestResponseOnIO, ImmunotherapyHistory, ResistanceType, Role, Screening
from abscopal.errors import PermissionDenied, ValidationError
from abscopal.protocol.eligibility import evaluate
from abscopal.protocol.model import Protocol, load_bundled
from abscopal.protocol.resistance import can_enrol, classify, is_effective, propose, sign, validate_history
from abscopal.validation import problems

START = dt.date(2023, 1, 2)
AT = dt.datetime(2024, 3, 1, 9, 0)
PD, SD, PR, CR, NE = (
    BestResponseOnIO.PD,
    BestResponseOnIO.SD,
    BestResponseOnIO.PR,
    BestResponseOnIO.CR,
    BestResponseOnIO.NE,
)


def history(
    last_dose_day: int | None,
    best: BestResponseOnIO | None,
    progression_day: int | None,
    confirmed_after: int | None = 28,
) -> ImmunotherapyHistory:
    def day(n: int) -> dt.date:
        return START + dt.timedelta(days=n)

    progression = day(progression_day) if progression_day is not None else None
    confirmed = (
        progression + dt.timedelta(days=confirmed_after) if progression and confirmed_after is not None else None
    )
    return ImmunotherapyHistory(
        "S-001",
        "pembrolizumab",
        START,
        day(last_dose_day) if last_dose_day is not None else None,
        best,
        progression,
        confirmed,
    )


CASES = [
    # (last dose day, best response, progression day, confirmation gap, expected)
    (42, PD, 49, 28, ResistanceType.PRIMARY),  # exactly 6 weeks of exposure (inclusive)
    (41, PD, 49, 28, ResistanceType.UNDETERMINED),  # one day short of 6 weeks
    (120, SD, 182, 28, ResistanceType.PRIMARY),  # SD lasting 182 days < 183
    (190, SD, 190, 28, ResistanceType.ACQUIRED),  # SD lasting 190 days, exposure 190 > 183
    (183, PR, 190, 28, ResistanceType.UNDETERMINED),  # exposure exactly 183 days is not "more than 6 months"
    (184, PR, 190, 28, ResistanceType.ACQUIRED),
    (300, CR, 310, 28, ResistanceType.ACQUIRED),
    (100, PR, 120, 28, ResistanceType.UNDETERMINED),  # responded, progressed before 6 months of exposure
    (42, PD, 49, 27, ResistanceType.UNDETERMINED),  # confirmation scan 27 days later: too early
    (42, PD, 49, None, ResistanceType.UNDETERMINED),  # no confirmation scan
    (200, None, 210, 28, ResistanceType.UNDETERMINED),  # best response not known
    (200, NE, 210, 28, ResistanceType.UNDETERMINED),
    (200, PR, None, None, ResistanceType.NOT_RESISTANT),  # no progression
    (100, PD, 184, 28, ResistanceType.PRIMARY),  # progression 84 days after the last dose: still on treatment
    (None, PD, 60, 28, ResistanceType.PRIMARY),  # still on treatment at progression: exposure to progression
]


@pytest.mark.parametrize(("last", "best", "prog", "gap", "expected"), CASES)
def test_resistance_class_follows_exposure_best_response_and_confirmed_progression(
    last: int | None,
    best: BestResponseOnIO | None,
    prog: int | None,
    gap: int | None,
    expected: ResistanceType,
    protocol: Protocol,
) -> None:
    assessment = classify(history(last, best, prog, gap), protocol.resistance)
    assert assessment.classification is expected, assessment.reasons


def test_progression_more_than_12_weeks_after_the_last_dose_is_not_resistance_on_treatment(protocol: Protocol) -> None:
    assessment = classify(history(100, PD, 185, 28), protocol.resistance)
    assert assessment.classification is ResistanceType.UNDETERMINED
    assert "85 days after the last dose" in assessment.reasons[-1]


def test_a_confirmation_scan_before_the_progression_is_an_input_error(protocol: Protocol) -> None:
    h = replace(history(42, PD, 49, 28), progression_confirmed_date=START + dt.timedelta(days=48))
    with pytest.raises(ValidationError, match="progression_confirmed_date"):
        classify(h, protocol.resistance)


def test_a_last_dose_before_the_start_is_an_input_error(protocol: Protocol) -> None:
    with pytest.raises(ValidationError, match="last_dose_date"):
        classify(history(-1, PD, 49, 28), protocol.resistance)


def test_a_confirmation_scan_without_a_progression_is_an_input_error_naming_the_progression() -> None:
    h = replace(history(42, PD, None), progression_confirmed_date=START + dt.timedelta(days=80))
    with pytest.raises(ValidationError, match=r"^immunotherapy.progression_date: a confirmation scan is given without"):
        validate_history(h)


@pytest.mark.parametrize(
    "changes",
    [
        {"last_dose_date": START - dt.timedelta(days=1)},
        {"progression_date": START - dt.timedelta(days=1), "progression_confirmed_date": None},
        {"progression_confirmed_date": START + dt.timedelta(days=48)},
        {"progression_date": None},
    ],
)
def test_the_history_date_rules_are_the_validated_schemas(changes: dict[str, object]) -> None:
    # one definition: validate_history raises the first problem the schema (abscopal.validation) finds
    h = replace(history(42, PD, 49, 28), **changes)  # type: ignore[arg-type]
    first = problems(h, today=dt.date(2030, 1, 1), prefix="immunotherapy")[0]
    with pytest.raises(ValidationError) as caught:
        validate_history(h)
    assert (caught.value.field, caught.value.reason) == (first.field, first.reason)


# --- adjudication


def _proposed() -> Adjudication:
    return propose("S-001", ResistanceType.PRIMARY, "coordinator1", AT)


def test_one_signature_does_not_make_the_classification_effective(protocol: Protocol) -> None:
    adj = sign(_proposed(), "dcp1", Role.DEPUTY_CHIEF_PHYSICIAN, AT, protocol.resistance)
    assert not is_effective(adj, protocol.resistance)


def test_two_distinct_deputy_chief_physicians_make_it_effective(protocol: Protocol) -> None:
    adj = sign(_proposed(), "dcp1", Role.DEPUTY_CHIEF_PHYSICIAN, AT, protocol.resistance)
    adj = sign(adj, "dcp2", Role.DEPUTY_CHIEF_PHYSICIAN, AT, protocol.resistance)
    assert is_effective(adj, protocol.resistance)


def test_the_same_user_cannot_sign_twice(protocol: Protocol) -> None:
    adj = sign(_proposed(), "dcp1", Role.DEPUTY_CHIEF_PHYSICIAN, AT, protocol.resistance)
    with pytest.raises(PermissionDenied, match="dcp1 has already signed"):
        sign(adj, "dcp1", Role.DEPUTY_CHIEF_PHYSICIAN, AT, protocol.resistance)


def test_a_signer_without_the_role_is_denied(protocol: Protocol) -> None:
    with pytest.raises(PermissionDenied, match="radiologist"):
        sign(_proposed(), "rad1", Role.RADIOLOGIST, AT, protocol.resistance)


def test_signatures_injected_without_sign_still_count_each_valid_user_once(protocol: Protocol) -> None:
    from abscopal.domain import Signature

    adj = Adjudication(
        "S-001",
        ResistanceType.PRIMARY,
        "coordinator1",
        AT,
        (
            Signature("dcp1", Role.DEPUTY_CHIEF_PHYSICIAN, AT),
            Signature("dcp1", Role.DEPUTY_CHIEF_PHYSICIAN, AT),
            Signature("rad1", Role.RADIOLOGIST, AT),
        ),
    )
    assert not is_effective(adj, protocol.resistance)


def test_enrolment_is_refused_until_the_adjudication_is_signed(
    protocol: Protocol, make_screening: Callable[..., Screening]
) -> None:
    checklist = evaluate(make_screening(), protocol.eligibility)
    adj = sign(_proposed(), "dcp1", Role.DEPUTY_CHIEF_PHYSICIAN, AT, protocol.resistance)
    reasons = can_enrol(checklist, adj, protocol.resistance)
    assert reasons == [
        "The resistance classification has 1 of the 2 signatures it needs from distinct deputy chief physicians"
    ]
    adj = sign(adj, "dcp2", Role.DEPUTY_CHIEF_PHYSICIAN, AT, protocol.resistance)
    assert can_enrol(checklist, adj, protocol.resistance) == []


def test_enrolment_is_refused_without_an_adjudication(
    protocol: Protocol, make_screening: Callable[..., Screening]
) -> None:
    checklist = evaluate(make_screening(), protocol.eligibility)
    assert can_enrol(checklist, None, protocol.resistance) == ["Immunotherapy resistance has not been adjudicated"]


def test_enrolment_is_refused_for_a_signed_not_resistant_classification(
    protocol: Protocol, make_screening: Callable[..., Screening]
) -> None:
    checklist = evaluate(make_screening(), protocol.eligibility)
    adj = propose("S-001", ResistanceType.NOT_RESISTANT, "coordinator1", AT)
    for user in ("dcp1", "dcp2"):
        adj = sign(adj, user, Role.DEPUTY_CHIEF_PHYSICIAN, AT, protocol.resistance)
    reasons = can_enrol(checklist, adj, protocol.resistance)
    assert reasons == ["Resistance is classified not resistant; the trial needs primary or acquired resistance"]


def test_enrolment_is_refused_for_an_ineligible_patient(
    protocol: Protocol, make_screening: Callable[..., Screening]
) -> None:
    checklist = evaluate(make_screening(brain_metastases=True), protocol.eligibility)
    adj = _proposed()
    for user in ("dcp1", "dcp2"):
        adj = sign(adj, user, Role.DEPUTY_CHIEF_PHYSICIAN, AT, protocol.resistance)
    assert can_enrol(checklist, adj, protocol.resistance) == ["The patient is ineligible (EX4)"]


@given(
    st.one_of(st.none(), st.integers(0, 400)),
    st.one_of(st.none(), st.sampled_from(list(BestResponseOnIO))),
    st.one_of(st.none(), st.integers(0, 500)),
    st.one_of(st.none(), st.integers(0, 60)),
)
def test_resistance_is_never_classified_without_a_progression_confirmed_28_days_later(
    last: int | None, best: BestResponseOnIO | None, prog: int | None, gap: int | None
) -> None:
    rules = load_bundled().current.resistance
    assessment = classify(history(last, best, prog, gap), rules)
    if assessment.classification in (ResistanceType.PRIMARY, ResistanceType.ACQUIRED):
        assert prog is not None and gap is not None and gap >= rules.confirmation_scan_min_days
        assert assessment.exposure_days is not None
        assert assessment.exposure_days >= rules.primary_min_exposure_days
