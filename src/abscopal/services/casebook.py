"""A patient's casebook (web.md §3-§5; issue 12 item 10): every record of the patient, the PI's signature over all
of them, and the data manager's lock.

The casebook signature is a :class:`~abscopal.domain.RecordSignature` on the patient's own record (``entity ==
"patients"``, the one the store already voids when any record of the patient is edited or removed), signed only by
the site's principal investigator with a meaning. Its content hash is SHA-256 over the content hash of every live
trial record of the patient (:func:`casebook_digest`); the digest the PI signed is written with the signature into
the audit trail (its ``reason``), so that a change the store does not void by itself (a record *added* after
signing) is still found: :func:`casebook_signatures` recomputes the digest and :func:`void_changed_signatures`
voids, audited, a signature whose casebook has changed since.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from abscopal import domain as d
from abscopal.errors import NotFound, PermissionDenied
from abscopal.messages import N_, Message
from abscopal.services.common import Action, Actor, authorise, patient_of, utc_now
from abscopal.services.ports import REPOSITORY_OF_ENTITY, UnitOfWorkLike, records_of
from abscopal.services.signing import Meaning, content_hash
from abscopal.store.records import Stored

#: Tables about records, not trial data: they are not part of the signed content.
NOT_CONTENT = frozenset({"sites", "users", "data_queries", "record_locks", "sdv_marks", "record_signatures"})
#: The trial-data tables of a casebook, in a fixed order (the digest must not depend on dictionary order).
CASEBOOK_ENTITIES: tuple[str, ...] = tuple(sorted(e for e in REPOSITORY_OF_ENTITY if e not in NOT_CONTENT))
_DIGEST = re.compile(r"casebook SHA-256 ([0-9a-f]{64})")


@dataclass(frozen=True)
class CasebookSignature:
    """One casebook signature and whether it still holds (live, and the casebook's digest is the one signed)."""

    id: str
    version: int
    username: str
    full_name: str
    meaning: str
    signed_at: dt.datetime
    signed_digest: str | None
    holds: bool
    void_reason: str | None


def casebook_records(uow: UnitOfWorkLike, subject_id: str) -> list[tuple[str, Stored[Any]]]:
    """Every live trial record of the patient as (entity, record), the patient's own record first."""
    found: list[tuple[str, Stored[Any]]] = []
    patient = uow.patients.find(subject_id=subject_id)
    if patient is None:
        raise NotFound(Message(N_("No patient {subject}"), subject=repr(subject_id)))
    found.append(("patients", patient))
    for entity in CASEBOOK_ENTITIES:
        if entity == "patients":
            continue
        found.extend((entity, r) for r in records_of(uow, entity).for_subject(subject_id))
    return found


def casebook_digest(uow: UnitOfWorkLike, subject_id: str, records: list[tuple[str, Stored[Any]]] | None = None) -> str:
    """SHA-256 over the sorted (entity, id, content hash) of every live record of the patient (``records``: the
    patient's :func:`casebook_records`, when already read): any edit, removal or addition changes it."""
    found = casebook_records(uow, subject_id) if records is None else records
    lines = sorted(f"{entity} {r.id} {content_hash(entity, r)}" for entity, r in found)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def signing_reason(meaning: Meaning, digest: str, count: int) -> str:
    """The audited reason of a casebook signature: it carries the digest that was signed."""
    return f"casebook signed ({meaning.value}) over {count} records: casebook SHA-256 {digest}"


def sign_casebook(
    uow: UnitOfWorkLike, signer: Actor, subject_id: str, *, version: int, meaning: Meaning,
    at: dt.datetime | None = None,
) -> Stored[d.RecordSignature]:  # fmt: skip
    """The site's PI signs the patient's whole casebook (``version``: the patient record's, as on the page).

    Refused to anyone but a PI of the patient's site; a patient record changed since the page was read is a
    ConflictError naming who changed what. The digest over every record goes to the audit trail with it.
    """
    authorise(uow, signer, Action.SIGN_CASEBOOK)
    if not signer.pi:
        raise PermissionDenied(
            f"{signer.username} is not the site's principal investigator: only the PI signs the casebook"
        )
    patient = patient_of(uow, signer, subject_id)
    if patient.version != version:
        raise uow.conflict("patients", patient.id, version, patient.version)
    records = casebook_records(uow, subject_id)
    digest = casebook_digest(uow, subject_id, records)
    signature = d.RecordSignature(
        "patients", patient.id, subject_id, signer.username, signer.full_name, meaning.value, utc_now(at),
        content_hash("patients", patient),
    )  # fmt: skip
    stored = uow.signatures.add(signature, signing_reason(meaning, digest, len(records)))
    uow.commit()
    return stored


def _signed_digest(uow: UnitOfWorkLike, signature_id: str) -> str | None:
    """The digest written to the audit trail when the signature was added (None: not signed on this page)."""
    conn = getattr(uow, "connection", None)
    if conn is None:
        return None
    from sqlalchemy import select

    from abscopal.store.audit import ROW
    from abscopal.store.tables import audit_log

    reason = conn.execute(
        select(audit_log.c.reason)
        .where(audit_log.c.entity == "record_signatures", audit_log.c.entity_key == signature_id)
        .where(audit_log.c.field == ROW)
        .order_by(audit_log.c.seq)
        .limit(1)
    ).scalar_one_or_none()
    found = _DIGEST.search(str(reason or ""))
    return found.group(1) if found else None


def _casebook_signature_ids(uow: UnitOfWorkLike, subject_id: str) -> list[str]:
    """Every casebook signature of the patient, voided ones included, oldest first."""
    conn = getattr(uow, "connection", None)
    if conn is None:
        return [s.id for s in uow.signatures.for_subject(subject_id) if s.value.entity == "patients"]
    from sqlalchemy import select

    from abscopal.store.tables import ENTITIES

    table = ENTITIES["record_signatures"].table
    query = select(table.c.id).where(table.c.subject_id == subject_id, table.c.entity == "patients")
    return [str(i) for i in conn.execute(query.order_by(table.c.id)).scalars()]


def casebook_signatures(
    uow: UnitOfWorkLike, subject_id: str, records: list[tuple[str, Stored[Any]]] | None = None
) -> list[CasebookSignature]:
    """The patient's casebook signatures, oldest first, each with whether it still holds (``records``: the
    patient's :func:`casebook_records`, when already read)."""
    digest = casebook_digest(uow, subject_id, records)
    patient = uow.patients.find(subject_id=subject_id)
    out = []
    for sid in _casebook_signature_ids(uow, subject_id):
        s = uow.signatures.get(sid, include_removed=True)
        v = s.value
        signed = _signed_digest(uow, sid)
        same_patient = patient is not None and content_hash("patients", patient) == v.content_hash
        holds = s.removed_reason is None and same_patient and (signed is None or signed == digest)
        out.append(
            CasebookSignature(
                s.id, s.version, v.username, v.full_name, v.meaning, v.signed_at, signed, holds, s.removed_reason
            )
        )
    return out


def void_changed_signatures(uow: UnitOfWorkLike, subject_id: str) -> list[str]:
    """Void (audited, with the reason) every live casebook signature whose casebook changed since it was signed —
    the store voids on an edit or a removal; this catches a record added after signing. Returns the ids voided.

    Run in a unit of work of the system user (:data:`abscopal.services.common.SYSTEM_USER`): the change is the
    software's finding, not a person's decision; it commits.
    """
    voided = []
    for s in casebook_signatures(uow, subject_id):
        if s.void_reason is None and not s.holds:
            uow.signatures.remove(
                s.id,
                version=s.version,
                reason="signature voided: the casebook changed since it was signed (a record was added or changed)",
            )
            voided.append(s.id)
    if voided:
        uow.commit()
    return voided
