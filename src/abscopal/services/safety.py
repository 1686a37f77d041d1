"""Adverse events (web.md §2, ae-qol.md A2-A4): coordinators record drafts, investigators grade and attribute,
radiation oncologists record RT-related events. Each record passes the CTCAE checks of
:mod:`abscopal.safety.events` and the shared value rules.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from abscopal import domain as d
from abscopal.errors import PermissionDenied
from abscopal.messages import N_, Message
from abscopal.protocol.model import ProtocolFile
from abscopal.safety.ctcae import load_ctcae
from abscopal.safety.events import validate_adverse_event
from abscopal.services.common import (
    Action,
    Actor,
    StaffRole,
    add_or_update,
    authorise,
    check_values,
    patient_of,
    protocol_of,
    site_today,
)
from abscopal.services.ports import UnitOfWorkLike
from abscopal.store.records import Stored

#: The investigator's judgement (web.md §1): a coordinator's draft leaves these as they are.
INVESTIGATOR_FIELDS = (
    "grade",
    "attribution_cfrt",
    "attribution_ldrt",
    "attribution_io",
    "serious_death",
    "serious_life_threatening",
    "serious_hospitalisation",
    "serious_disability",
    "serious_congenital",
    "serious_medically_important",
    "immune_related",
)
_DRAFT = {f.name: None if f.default is dataclasses.MISSING else f.default for f in dataclasses.fields(d.AdverseEvent)}
_RELATED = (d.Attribution.POSSIBLE, d.Attribution.PROBABLE, d.Attribution.DEFINITE)


def record_adverse_event(
    uow: UnitOfWorkLike, actor: Actor, event: d.AdverseEvent, *, record_id: str | None = None,
    version: int | None = None, protocols: ProtocolFile | None = None, at: dt.datetime | None = None,
) -> Stored[d.AdverseEvent]:  # fmt: skip
    """Add or edit an adverse event (role refinements of web.md §2 apply)."""
    authorise(uow, actor, Action.ADVERSE_EVENTS)
    patient = patient_of(uow, actor, event.subject_id)
    before = uow.adverse_events.get(record_id).value if record_id else None
    if actor.role is StaffRole.COORDINATOR:
        for name in INVESTIGATOR_FIELDS:
            old = getattr(before, name) if before else _DRAFT[name]
            if getattr(event, name) != old:
                raise PermissionDenied(
                    Message(N_("{field}: a coordinator records a draft; the investigator sets {field}"), field=name)
                )
    if actor.role is StaffRole.RADONC and not (
        event.attribution_cfrt in _RELATED or event.attribution_ldrt in _RELATED
    ):
        raise PermissionDenied(
            "a radiation oncologist records radiotherapy-related events: attribute it to CFRT or LDRT "
            "(possible, probable or definite)"
        )
    today = site_today(uow, patient.value, at)
    check_values(event, protocol_of(patient.value, protocols, today), today)
    validate_adverse_event(event, load_ctcae())
    stored = add_or_update(uow.adverse_events, event, record_id, version)
    uow.commit()
    return stored


def next_ae_id(uow: UnitOfWorkLike, subject_id: str) -> str:
    """The sponsor's id for the patient's next adverse event: ``<subject>-AE<nn>``, one past the highest so far
    (the synthetic cohort and the CSV imports use the same form)."""
    prefix = f"{subject_id}-AE"
    numbers = [
        int(s.value.ae_id[len(prefix) :])
        for s in uow.adverse_events.for_subject(subject_id)
        if s.value.ae_id.startswith(prefix) and s.value.ae_id[len(prefix) :].isdigit()
    ]
    return f"{prefix}{max(numbers, default=0) + 1:02d}"
