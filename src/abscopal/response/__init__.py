"""Tumour response by RECIST 1.1 and iRECIST (shared/specs/response-rules.md; docs/response.md).

Pure engines: :func:`derive_subject` / :func:`derive_cohort` take :mod:`abscopal.domain` assessments and
return typed results; :func:`find_discrepancies` compares them with investigator-entered responses.
"""

from abscopal.response.codes import Criteria, IrecistResponse, RecistResponse, Response
from abscopal.response.discrepancy import ResponseDiscrepancy, find_discrepancies
from abscopal.response.engine import (
    DurationOfResponse,
    PfsOutcome,
    RoleTimepoint,
    SubjectFacts,
    SubjectResponse,
    TimepointResponse,
    cohort_role_rates,
    derive_cohort,
    derive_subject,
    role_rates,
)
from abscopal.response.roles import RoleRate

__all__ = [
    "Criteria",
    "DurationOfResponse",
    "IrecistResponse",
    "PfsOutcome",
    "RecistResponse",
    "Response",
    "ResponseDiscrepancy",
    "RoleRate",
    "RoleTimepoint",
    "SubjectFacts",
    "SubjectResponse",
    "TimepointResponse",
    "cohort_role_rates",
    "derive_cohort",
    "derive_subject",
    "find_discrepancies",
    "role_rates",
]
