"""Electronic signatures on records (21 CFR Part 11 §11.50, §11.70; web.md §5).

A signature holds the signer, the meaning, the UTC time and a SHA-256 hash of the signed record's canonical
state (entity, id, version and every field), so that any later change voids it (the store voids it on change;
:func:`signature_holds` recomputes the hash). Password re-entry is the web's job: the signer passed in is
already authenticated. The casebook (``entity == "patients"``) is signed by the site's PI over every record of the
patient (:mod:`abscopal.services.casebook`); another record by a role that may write it. Adjudications have their
own signatures (:mod:`abscopal.services.adjudication`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from enum import StrEnum
from typing import Any

from abscopal import domain as d
from abscopal.errors import ValidationError
from abscopal.services.common import ACTION_OF_ENTITY, PERMISSIONS, Action, Actor, authorise, patient_of, utc_now
from abscopal.services.ports import UnitOfWorkLike, patient_record, records_of
from abscopal.store.codec import canonical
from abscopal.store.records import Stored


class Meaning(StrEnum):
    """What a signature means (web.md §5)."""

    ADJUDICATED = "adjudicated"
    REVIEWED = "reviewed"
    APPROVED = "approved"
    AUTHORED = "authored"


def content_hash(entity: str, record: Stored[Any]) -> str:
    """SHA-256 of the record's canonical JSON (sorted keys, ISO dates, UTC times; :func:`store.codec.canonical`)."""
    state = {"entity": entity, "id": record.id, "version": record.version, "state": record.value}
    return hashlib.sha256(canonical(state).encode()).hexdigest()


def sign_record(
    uow: UnitOfWorkLike, signer: Actor, entity: str, record_id: str, *, version: int, meaning: Meaning,
    at: dt.datetime | None = None,
) -> Stored[d.RecordSignature]:  # fmt: skip
    """Sign ``version`` of a record with ``meaning``; a record changed since is a ConflictError."""
    if entity == "adjudications":
        raise ValidationError("entity", "an adjudication is signed with sign_adjudication (its own rules)")
    if entity == "patients":  # the casebook: every record of the patient (services.casebook)
        from abscopal.services.casebook import sign_casebook

        patient = uow.patients.get(record_id)
        return sign_casebook(uow, signer, patient.value.subject_id, version=version, meaning=meaning, at=at)
    else:
        action = ACTION_OF_ENTITY.get(entity)
        if action is None:
            raise ValidationError("entity", f"{entity} records are not signed")
        authorise(uow, signer, action if signer.role in PERMISSIONS[action] else Action.SIGN_CASEBOOK)
    record, subject_id = patient_record(uow, entity, record_id)
    patient_of(uow, signer, subject_id)
    if record.version != version:
        raise uow.conflict(entity, record_id, version, record.version)
    signature = d.RecordSignature(
        entity, record_id, subject_id, signer.username, signer.full_name, meaning.value, utc_now(at),
        content_hash(entity, record),
    )  # fmt: skip
    stored = uow.signatures.add(signature)
    uow.commit()
    return stored


def signature_holds(uow: UnitOfWorkLike, signature_id: str) -> bool:
    """True while the signature is live and the record's current content still has the signed hash."""
    stored = uow.signatures.get(signature_id, include_removed=True)
    if stored.removed_reason is not None:
        return False
    s = stored.value
    if s.entity == "patients":  # a casebook signature covers every record of the patient
        from abscopal.services.casebook import casebook_signatures

        return any(c.id == signature_id and c.holds for c in casebook_signatures(uow, s.subject_id))
    return content_hash(s.entity, records_of(uow, s.entity).get(s.record_id)) == s.content_hash
