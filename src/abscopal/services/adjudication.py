"""Immunotherapy-resistance adjudication: propose, then two distinct deputy chief physicians sign (web.md §4).

The rules are the resistance engine's (:func:`abscopal.protocol.resistance.sign`: the protocol's signer role,
each user once); the service adds the spec's separation of duties: the proposer cannot sign.
"""

from __future__ import annotations

import datetime as dt

from abscopal import domain as d
from abscopal.errors import PermissionDenied, ValidationError
from abscopal.messages import N_, Message
from abscopal.protocol import resistance
from abscopal.protocol.model import ProtocolFile
from abscopal.services.common import Action, Actor, authorise, patient_of, protocol_of, utc_now
from abscopal.services.ports import UnitOfWorkLike
from abscopal.store.records import Stored


def propose_adjudication(
    uow: UnitOfWorkLike, actor: Actor, subject_id: str, classification: d.ResistanceType | None = None, *,
    protocols: ProtocolFile | None = None, at: dt.datetime | None = None,
) -> Stored[d.Adjudication]:  # fmt: skip
    """Open an adjudication of ``classification`` (by default the engine's classification of the latest prior
    immunotherapy); it has no effect until signed."""
    authorise(uow, actor, Action.PROPOSE_ADJUDICATION)
    patient = patient_of(uow, actor, subject_id)
    when = utc_now(at)
    if classification is None:
        histories = sorted(uow.immunotherapy_histories.for_subject(subject_id), key=lambda s: s.value.start_date)
        if not histories:
            raise ValidationError(
                "classification",
                Message(N_("{subject} has no prior immunotherapy to classify from"), subject=subject_id),
            )
        rules = protocol_of(patient.value, protocols, when.date()).resistance
        classification = resistance.classify(histories[-1].value, rules).classification
    stored = uow.adjudications.add(resistance.propose(subject_id, classification, actor.username, when))
    uow.commit()
    return stored


def sign_adjudication(
    uow: UnitOfWorkLike, actor: Actor, adjudication_id: str, *, version: int,
    protocols: ProtocolFile | None = None, at: dt.datetime | None = None,
) -> Stored[d.Adjudication]:  # fmt: skip
    """Add the actor's signature (a deputy chief physician, not the proposer, not twice) to the adjudication."""
    authorise(uow, actor, Action.SIGN_ADJUDICATION)
    stored = uow.adjudications.get(adjudication_id)
    adjudication = stored.value
    patient = patient_of(uow, actor, adjudication.subject_id)
    if adjudication.proposed_by == actor.username:
        raise PermissionDenied(
            f"{actor.username} proposed this adjudication of {adjudication.subject_id} and cannot also sign it; "
            "two other deputy chief physicians must sign"
        )
    when = utc_now(at)
    rules = protocol_of(patient.value, protocols, when.date()).resistance
    signed = resistance.sign(adjudication, actor.username, d.Role(actor.role.value), when, rules)
    result = uow.adjudications.update(adjudication_id, signed, version=version)
    uow.commit()
    return result


def current_adjudication(uow: UnitOfWorkLike, subject_id: str) -> Stored[d.Adjudication] | None:
    """The patient's latest live adjudication (by proposal time), or None."""
    found = uow.adjudications.for_subject(subject_id)
    return max(found, key=lambda s: s.value.proposed_at) if found else None
