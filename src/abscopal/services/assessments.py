"""Tumour assessments: measurements (radiologist, investigator) and the investigator's response (investigator).

After each write the patient's responses are derived under the protocol's criteria (iRECIST for this trial;
:mod:`abscopal.response`); an investigator response that differs from the derived one raises a data query on that
assessment automatically (:func:`abscopal.response.find_discrepancies`; web.md §4). :func:`pending_iupd` names an
iUPD still awaiting its confirming scan and that scan's window, for the assessment grid.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from abscopal import domain as d
from abscopal.errors import PermissionDenied, ValidationError
from abscopal.messages import N_, Message
from abscopal.protocol import radiotherapy as rt
from abscopal.protocol.model import ProtocolFile, ResponseOptions
from abscopal.response import (
    Criteria,
    ResponseDiscrepancy,
    SubjectFacts,
    SubjectResponse,
    derive_subject,
    find_discrepancies,
)
from abscopal.services.common import (
    PERMISSIONS,
    SYSTEM_USER,
    Action,
    Actor,
    add_or_update,
    authorise,
    check_values,
    patient_of,
    protocol_of,
    utc_now,
)
from abscopal.services.ports import UnitOfWorkLike
from abscopal.services.queries import open_query
from abscopal.store.records import Stored


def check_targets_read(assessment: d.TumourAssessment) -> None:
    """Every target lesion of the assessment has its reading: a diameter (0 when it has gone), "too small to
    measure", or the reason it was not evaluated (RECIST 1.1 §4.3: an unread target is an omission to correct, not
    silently NE). Raises ValidationError naming ``measurements[i].diameter_mm``."""
    for i, m in enumerate(assessment.measurements):
        if m.lesion_class is not d.LesionClass.TARGET or m.diameter_mm is not None:
            continue
        if m.too_small or (m.not_done_reason or "").strip():
            continue
        raise ValidationError(
            f"measurements[{i}].diameter_mm",
            f"target lesion {m.lesion_id} needs its diameter in mm (0 if it has disappeared), or the reason it "
            "was not evaluated",
        )


@dataclass(frozen=True)
class PendingIupd:
    """An iUPD not yet confirmed or reset at the latest assessment: the assessment that raised it and the window in
    which the confirming scan should be done (``icpd_window_days`` after it; response-rules.md §5)."""

    iupd_date: dt.date
    window_start: dt.date
    window_end: dt.date
    triggers: str


def pending_iupd(derived: SubjectResponse, options: ResponseOptions) -> PendingIupd | None:
    """The iUPD awaiting confirmation at the last assessment of an iRECIST derivation, or None.

    The engine keeps a subject in iUPD (NE included) until iCPD or a reset; the iUPD the window counts from is the
    first of that run (the one with the triggers)."""
    if derived.criteria is not Criteria.IRECIST or not derived.timepoints:
        return None
    points = derived.timepoints
    if str(points[-1].overall) not in ("iUPD", "NE"):
        return None
    start = None
    for t in reversed(points):
        shown = str(t.overall) if t.overall is not None else ""
        if shown == "iUPD":
            start = t
        elif shown != "NE":
            break
    if start is None:
        return None
    window = options.icpd_window_days
    return PendingIupd(
        start.assessment_date,
        start.assessment_date + dt.timedelta(days=int(window.min)),
        start.assessment_date + dt.timedelta(days=int(window.max)),
        start.iupd_triggers,
    )


@dataclass(frozen=True)
class AssessmentRecorded:
    """The stored assessment, the discrepancy with the derived iRECIST response (if any) and the query raised."""

    assessment: Stored[d.TumourAssessment]
    discrepancy: ResponseDiscrepancy | None
    query: Stored[d.DataQuery] | None


def record_assessment(
    uow: UnitOfWorkLike, actor: Actor, assessment: d.TumourAssessment, *, record_id: str | None = None,
    version: int | None = None, protocols: ProtocolFile | None = None, at: dt.datetime | None = None,
) -> AssessmentRecorded:  # fmt: skip
    """Add or edit an assessment; only an investigator may set or change the investigator response."""
    authorise(uow, actor, Action.LESION_REGISTRY)
    before = uow.assessments.get(record_id).value.investigator_response if record_id else None
    if assessment.investigator_response != before and actor.role not in PERMISSIONS[Action.INVESTIGATOR_RESPONSE]:
        raise PermissionDenied(
            Message(N_("{user} ({role}) may not record the investigator response"), user=actor.username,
                    role=actor.role.value)
        )  # fmt: skip
    patient = patient_of(uow, actor, assessment.subject_id)
    when = utc_now(at)
    protocol = protocol_of(patient.value, protocols, when.date())
    check_values(assessment, protocol, when.date())
    check_targets_read(assessment)
    stored = add_or_update(uow.assessments, assessment, record_id, version)
    all_assessments = [s.value for s in uow.assessments.for_subject(assessment.subject_id)]
    fractions = [s.value for s in uow.fractions.for_subject(assessment.subject_id)]
    cycles = [s.value for s in uow.immunotherapy_cycles.for_subject(assessment.subject_id)]
    p = patient.value
    # the response reference date is the first study treatment (response-rules.md §4, §6), as in the report
    reference = rt.first_study_treatment(fractions, cycles, p.enrolment_date)
    facts = SubjectFacts(p.subject_id, reference, p.death_date, p.new_therapy_date)
    derived = derive_subject(all_assessments, facts, protocol.response, Criteria(protocol.response.criteria))
    found = [x for x in find_discrepancies(all_assessments, derived) if x.assessment_date == assessment.assessment_date]
    discrepancy = found[0] if found else None
    query = None
    if discrepancy is not None:
        text = f"Please review the investigator response: {discrepancy.reason}"
        query = open_query(
            uow, p.subject_id, "tumour_assessments", "investigator_response", text, SYSTEM_USER, stored.id, when
        )
    uow.commit()
    return AssessmentRecorded(stored, discrepancy, query)
