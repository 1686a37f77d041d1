"""Immunotherapy resistance: classify primary / acquired / not resistant / undetermined, and adjudicate it.

Rules from the registry's detailed description (NCT05906329) as encoded in the protocol's ``[resistance]`` section;
where the record is vague the SITC consensus applies (Kluger et al., J Immunother Cancer 2020;8:e000398):
exposure counted from the first to the last dose, stable disease lasting from the start of treatment until
progression, progression confirmed by a repeat scan >= 4 weeks later and occurring on treatment or within 12 weeks
of the last dose. A classification takes effect only once ``required_signatures`` distinct users holding
``signer_role`` (deputy chief physicians) have signed it; until then enrolment is refused (:func:`can_enrol`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from abscopal import validation
from abscopal.domain import (
    Adjudication,
    BestResponseOnIO,
    ImmunotherapyHistory,
    ResistanceType,
    Role,
    Signature,
)
from abscopal.errors import PermissionDenied, ValidationError
from abscopal.messages import N_, Joined, Message
from abscopal.protocol.eligibility import Checklist, Verdict
from abscopal.protocol.model import Resistance

RESISTANT = (ResistanceType.PRIMARY, ResistanceType.ACQUIRED)


@dataclass(frozen=True, slots=True)
class ResistanceAssessment:
    """The proposed class and the sentences that led to it (shown to the adjudicators)."""

    classification: ResistanceType
    reasons: tuple[str, ...]
    exposure_days: int | None = None
    progression_days_from_start: int | None = None


def exposure_days(history: ImmunotherapyHistory) -> int | None:
    """Days from the first dose to the last dose (or to progression while still on treatment); SITC 2020."""
    end = history.last_dose_date or history.progression_date
    if end is None:
        return None
    return (end - history.start_date).days


def _at_least(value: int, threshold: int, inclusive: bool) -> bool:
    return value >= threshold if inclusive else value > threshold


def validate_history(history: ImmunotherapyHistory) -> None:
    """Impossible date orders are input errors naming the field: the rules of the validated schema
    (:func:`abscopal.validation.history_order_problems`), the first one raised as ``immunotherapy.<field>``."""
    found = validation.history_order_problems(history, "immunotherapy")
    if found:
        raise ValidationError(found[0].field, found[0].reason)


def classify(history: ImmunotherapyHistory, rules: Resistance) -> ResistanceAssessment:
    """Propose primary / acquired / not resistant / undetermined from the prior immunotherapy (see module doc)."""
    validate_history(history)
    exposure = exposure_days(history)
    if history.progression_date is None:
        return ResistanceAssessment(
            ResistanceType.NOT_RESISTANT, (Message(N_("No progression on immunotherapy is recorded")),), exposure, None
        )
    progression_day = (history.progression_date - history.start_date).days
    reasons: list[Message] = []
    confirmed = history.progression_confirmed_date
    gap = (confirmed - history.progression_date).days if confirmed else None
    if confirmed is None or gap is None or gap < rules.confirmation_scan_min_days:
        shown = (
            Message(N_("no confirmation scan")) if confirmed is None
            else Message(N_("confirmation scan {days} days later"), days=str(gap))
        )  # fmt: skip
        return ResistanceAssessment(
            ResistanceType.UNDETERMINED,
            (
                Message(
                    N_("Progression on {day} is not confirmed: {shown}, a repeat scan >= {min} days later is required"),
                    day=str(history.progression_date),
                    shown=shown,
                    min=str(rules.confirmation_scan_min_days),
                ),
            ),
            exposure,
            progression_day,
        )
    reasons.append(
        Message(N_("Progression {day} confirmed by a scan {days} days later"), day=str(history.progression_date),
                days=str(gap))
    )  # fmt: skip
    best = history.best_response
    if best is None or best is BestResponseOnIO.NE:
        return ResistanceAssessment(
            ResistanceType.UNDETERMINED,
            (*reasons, Message(N_("Best response on immunotherapy is not known"))),
            exposure,
            progression_day,
        )
    assert exposure is not None  # progression_date is set
    if rules.max_days_last_dose_to_progression is not None and history.last_dose_date is not None:
        off_treatment = (history.progression_date - history.last_dose_date).days
        if off_treatment > rules.max_days_last_dose_to_progression:
            return ResistanceAssessment(
                ResistanceType.UNDETERMINED,
                (
                    *reasons,
                    Message(
                        N_(
                            "Progression {days} days after the last dose (> {max}): progression after stopping, not "
                            "resistance on treatment (SITC 2020)"
                        ),
                        days=str(off_treatment),
                        max=str(rules.max_days_last_dose_to_progression),
                    ),
                ),
                exposure,
                progression_day,
            )
    reasons.append(Message(N_("Exposure {days} days, best response {best}"), days=str(exposure), best=best.value))
    short_sd = best is BestResponseOnIO.SD and progression_day < rules.sd_for_acquired_min_days
    if best.value in rules.primary_best_responses and (best is not BestResponseOnIO.SD or short_sd):
        if _at_least(exposure, rules.primary_min_exposure_days, rules.primary_exposure_inclusive):
            if short_sd:
                reasons.append(
                    Message(N_("stable disease lasted {days} days (< {min})"), days=str(progression_day),
                            min=str(rules.sd_for_acquired_min_days))
                )  # fmt: skip
            return ResistanceAssessment(ResistanceType.PRIMARY, tuple(reasons), exposure, progression_day)
        op = ">=" if rules.primary_exposure_inclusive else ">"
        return ResistanceAssessment(
            ResistanceType.UNDETERMINED,
            (
                *reasons,
                Message(
                    N_("exposure is shorter than the {op} {days} days primary resistance needs"),
                    op=op,
                    days=str(rules.primary_min_exposure_days),
                ),
            ),
            exposure,
            progression_day,
        )
    if best.value in rules.acquired_best_responses:
        if best is BestResponseOnIO.SD:
            reasons.append(
                Message(N_("stable disease lasted {days} days (>= {min})"), days=str(progression_day),
                        min=str(rules.sd_for_acquired_min_days))
            )  # fmt: skip
        if _at_least(exposure, rules.acquired_min_exposure_days, rules.acquired_exposure_inclusive):
            return ResistanceAssessment(ResistanceType.ACQUIRED, tuple(reasons), exposure, progression_day)
        op = ">=" if rules.acquired_exposure_inclusive else ">"
        return ResistanceAssessment(
            ResistanceType.UNDETERMINED,
            (
                *reasons,
                Message(
                    N_("exposure is not {op} {days} days, which acquired resistance needs"),
                    op=op,
                    days=str(rules.acquired_min_exposure_days),
                ),
            ),
            exposure,
            progression_day,
        )
    return ResistanceAssessment(
        ResistanceType.UNDETERMINED,
        (*reasons, Message(N_("best response {best} fits neither definition"), best=best.value)),
        exposure,
        progression_day,
    )


# ----------------------------------------------------------------------------- adjudication


def propose(
    subject_id: str, classification: ResistanceType, proposed_by: str, proposed_at: dt.datetime
) -> Adjudication:
    """Open an adjudication of ``classification``; it has no effect until signed (see :func:`is_effective`)."""
    return Adjudication(subject_id, classification, proposed_by, proposed_at)


def sign(
    adjudication: Adjudication, username: str, role: Role, signed_at: dt.datetime, rules: Resistance
) -> Adjudication:
    """Add a signature: only users with the protocol's ``signer_role``, each user once (registry: two or more
    deputy chief physicians determine the progression). Returns the new adjudication."""
    required = Role(rules.signer_role)
    if role is not required:
        raise PermissionDenied(
            f"{username} ({role.value}) may not sign a resistance adjudication; it needs a {required.value}"
        )
    if any(s.username == username for s in adjudication.signatures):
        raise PermissionDenied(
            f"{username} has already signed the adjudication of {adjudication.subject_id}; "
            "a second signature must come from a different user"
        )
    return replace(adjudication, signatures=(*adjudication.signatures, Signature(username, role, signed_at)))


def valid_signers(adjudication: Adjudication, rules: Resistance) -> list[str]:
    """Distinct users with the signer role who signed (duplicates and other roles do not count)."""
    required = Role(rules.signer_role)
    seen: list[str] = []
    for s in adjudication.signatures:
        if s.role is required and s.username not in seen:
            seen.append(s.username)
    return seen


def is_effective(adjudication: Adjudication, rules: Resistance) -> bool:
    """True once at least ``required_signatures`` distinct users with ``signer_role`` have signed."""
    return len(valid_signers(adjudication, rules)) >= rules.required_signatures


def resistance_confirmed(adjudication: Adjudication | None, rules: Resistance) -> bool | None:
    """Inclusion 10's datum from an adjudication: True once an effective adjudication says primary or acquired,
    False once an effective one says otherwise, None (unknown) while unsigned or absent."""
    if adjudication is None or not is_effective(adjudication, rules):
        return None
    return adjudication.classification in RESISTANT


def can_enrol(checklist: Checklist | None, adjudication: Adjudication | None, rules: Resistance) -> list[Message]:
    """Reasons enrolment is refused (an empty list means the patient may be enrolled).

    Needs an eligible checklist and an effective adjudication classifying primary or acquired resistance.
    """
    reasons: list[Message] = []
    if checklist is None:
        reasons.append(Message(N_("Eligibility has not been checked")))
    elif checklist.verdict is Verdict.INELIGIBLE:
        reasons.append(Message(N_("The patient is ineligible ({criteria})"), criteria=Joined(", ", checklist.failed)))
    elif checklist.verdict is Verdict.INCOMPLETE:
        missing = Joined(", ", checklist.unknown)
        reasons.append(Message(N_("Eligibility is incomplete: data missing for {criteria}"), criteria=missing))
    if adjudication is None:
        reasons.append(Message(N_("Immunotherapy resistance has not been adjudicated")))
        return reasons
    if checklist is not None and checklist.subject_id != adjudication.subject_id:
        reasons.append(
            Message(N_("The adjudication is for {theirs}, not for {ours}"), theirs=adjudication.subject_id,
                    ours=checklist.subject_id)
        )  # fmt: skip
    if adjudication.classification not in RESISTANT:
        reasons.append(
            Message(N_("Resistance is classified {classification}; the trial needs primary or acquired resistance"),
                    classification=adjudication.classification.value.replace("_", " "))
        )  # fmt: skip
    signers = valid_signers(adjudication, rules)
    if len(signers) < rules.required_signatures:
        reasons.append(
            Message(N_("The resistance classification has {signed} of the {needed} signatures it needs from distinct "
                       "{role}s"), signed=str(len(signers)), needed=str(rules.required_signatures),
                    role=Role(rules.signer_role).value.replace("_", " "))
        )  # fmt: skip
    return reasons
