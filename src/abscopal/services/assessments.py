"""Tumour assessments: measurements (radiologist, investigator) and the investigator's response (investigator).

After each write the patient's iRECIST responses are derived (:mod:`abscopal.response`); an investigator
response that differs from the derived one raises a data query on that assessment automatically
(:func:`abscopal.response.find_discrepancies`; web.md §4).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from abscopal import domain as d
from abscopal.errors import PermissionDenied
from abscopal.protocol import radiotherapy as rt
from abscopal.protocol.model import ProtocolFile
from abscopal.response import Criteria, ResponseDiscrepancy, SubjectFacts, derive_subject, find_discrepancies
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
        raise PermissionDenied(f"{actor.username} ({actor.role.value}) may not record the investigator response")
    patient = patient_of(uow, actor, assessment.subject_id)
    when = utc_now(at)
    protocol = protocol_of(patient.value, protocols, when.date())
    check_values(assessment, protocol, when.date())
    stored = add_or_update(uow.assessments, assessment, record_id, version)
    all_assessments = [s.value for s in uow.assessments.for_subject(assessment.subject_id)]
    fractions = [s.value for s in uow.fractions.for_subject(assessment.subject_id)]
    cycles = [s.value for s in uow.immunotherapy_cycles.for_subject(assessment.subject_id)]
    p = patient.value
    # the response reference date is the first study treatment (response-rules.md §4, §6), as in the report
    reference = rt.first_study_treatment(fractions, cycles, p.enrolment_date)
    facts = SubjectFacts(p.subject_id, reference, p.death_date, p.new_therapy_date)
    derived = derive_subject(all_assessments, facts, protocol.response, Criteria.IRECIST)
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
