"""Who acts, what they may do, and the checks every use case shares (web.md §1-§2).

The permission table is data (:data:`PERMISSIONS`, action x role); every use case names its action and calls
:func:`authorise`. A user sees only their sites' patients: another site's patient is :class:`NotFound` (so that
its existence is not leaked, web.md §2), a refused action is :class:`PermissionDenied`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from abscopal import domain as d
from abscopal import validation
from abscopal.errors import NotFound, PermissionDenied, ValidationError
from abscopal.messages import N_, Joined, Message, Term
from abscopal.protocol.model import Protocol, ProtocolFile, load_bundled
from abscopal.services.ports import Records, UnitOfWorkLike
from abscopal.store.records import Stored

StaffRole = d.Role
"""A user's role at a site (web.md §1): the domain's :class:`~abscopal.domain.Role`, one list of roles."""


#: The translation context of an action's name (:class:`~abscopal.messages.Term`) in a refusal's sentence.
ACTION_CONTEXT = "permission"
#: The translation context of a role's name (a refusal, the admin pages, who is signed in).
ROLE_CONTEXT = "role"


def role_name(role: d.Role) -> Term:
    """A role as people say it (``deputy_chief_physician`` -> "deputy chief physician"), translatable."""
    return Term(role.value.replace("_", " "), ROLE_CONTEXT)


def role_names(roles: Iterable[d.Role]) -> Joined:
    """Roles named in alphabetical order of their codes, comma-separated (translated name by name)."""
    return Joined(", ", [role_name(r) for r in sorted(set(roles), key=lambda r: r.value)])


class Action(StrEnum):
    """What a use case does, as the permission table names it (web.md §2)."""

    SCREENING = "screening, consent, history, labs"
    ENROL = "eligibility decision, enrol"
    PROPOSE_ADJUDICATION = "propose resistance adjudication"
    SIGN_ADJUDICATION = "sign adjudication"
    LESION_REGISTRY = "lesions: registry + measurements"
    RADIOTHERAPY = "lesions: RT role, RT course, fractions"
    IMMUNOTHERAPY = "immunotherapy cycles"
    INVESTIGATOR_RESPONSE = "investigator response"
    ADVERSE_EVENTS = "adverse events"
    QUESTIONNAIRES = "questionnaires"
    RAISE_QUERY = "raise query"
    ANSWER_QUERY = "answer query"
    CLOSE_QUERY = "close / reopen query"
    SDV = "SDV mark"
    SIGN_CASEBOOK = "sign casebook (per patient)"
    LOCK = "lock / unlock record or patient"
    READ = "read patient data (own sites)"
    AUDIT_VIEW = "audit trail view"
    EXPORT = "report, SDTM / ODM export"
    DICOM_IMPORT = "DICOM RT plan / treatment record import"
    ADMIN = "users, sites, roles"


T = TypeVar("T")
R = StaffRole
#: web.md §2, the one permission table: action -> roles allowed; every web route declares one of these actions.
#: Refinements (coordinator AE drafts, RT-related AEs for radiation oncologists, monitors closing their own queries,
#: PI-only casebook signature) are in the use cases.
PERMISSIONS: dict[Action, frozenset[StaffRole]] = {
    Action.SCREENING: frozenset({R.COORDINATOR, R.INVESTIGATOR}),
    Action.ENROL: frozenset({R.INVESTIGATOR}),
    Action.PROPOSE_ADJUDICATION: frozenset({R.COORDINATOR, R.INVESTIGATOR}),
    Action.SIGN_ADJUDICATION: frozenset({R.DCP}),
    Action.LESION_REGISTRY: frozenset({R.INVESTIGATOR, R.RADIOLOGIST}),
    Action.RADIOTHERAPY: frozenset({R.RADONC}),
    Action.IMMUNOTHERAPY: frozenset({R.COORDINATOR, R.INVESTIGATOR}),
    Action.INVESTIGATOR_RESPONSE: frozenset({R.INVESTIGATOR}),
    Action.ADVERSE_EVENTS: frozenset({R.COORDINATOR, R.INVESTIGATOR, R.RADONC}),
    Action.QUESTIONNAIRES: frozenset({R.COORDINATOR, R.PATIENT}),
    Action.RAISE_QUERY: frozenset({R.DATA_MANAGER, R.MONITOR}),
    Action.ANSWER_QUERY: frozenset({R.COORDINATOR, R.INVESTIGATOR, R.RADONC, R.RADIOLOGIST}),
    Action.CLOSE_QUERY: frozenset({R.DATA_MANAGER, R.MONITOR}),
    Action.SDV: frozenset({R.MONITOR}),
    Action.SIGN_CASEBOOK: frozenset({R.INVESTIGATOR}),
    Action.LOCK: frozenset({R.DATA_MANAGER}),
    # the read columns: every role but the administrator reads (the statistician every site, pseudonymised; a
    # patient only their own questionnaires, patient_of); the administrator never sees trial data
    Action.READ: frozenset(set(R) - {R.ADMIN}),
    Action.AUDIT_VIEW: frozenset({R.INVESTIGATOR, R.DATA_MANAGER, R.MONITOR, R.ADMIN}),
    Action.EXPORT: frozenset({R.DATA_MANAGER, R.STATISTICIAN}),
    Action.DICOM_IMPORT: frozenset({R.DATA_MANAGER, R.RADONC}),  # interop.md §6
    Action.ADMIN: frozenset({R.ADMIN}),
}

#: Who may enter data of each action from an import file (interop.md §7: data manager; RT also the radiation
#: oncologist). Signatures, queries, SDV and locks are never imported through the use cases.
_DATA_ENTRY = (
    Action.SCREENING, Action.ENROL, Action.PROPOSE_ADJUDICATION, Action.LESION_REGISTRY, Action.IMMUNOTHERAPY,
    Action.INVESTIGATOR_RESPONSE, Action.ADVERSE_EVENTS, Action.QUESTIONNAIRES,
)  # fmt: skip
IMPORTERS: dict[Action, frozenset[StaffRole]] = {
    **{a: frozenset({R.DATA_MANAGER}) for a in _DATA_ENTRY},
    Action.RADIOTHERAPY: frozenset({R.DATA_MANAGER, R.RADONC}),
}

#: Which action writes each kind of record (who may author / review-sign it, signing.py).
ACTION_OF_ENTITY: dict[str, Action] = {
    "patients": Action.SCREENING,
    "screenings": Action.SCREENING,
    "immunotherapy_histories": Action.SCREENING,
    "immunotherapy_cycles": Action.IMMUNOTHERAPY,
    "adjudications": Action.SIGN_ADJUDICATION,
    "lesions": Action.LESION_REGISTRY,
    "radiotherapy_courses": Action.RADIOTHERAPY,
    "fractions": Action.RADIOTHERAPY,
    "protocol_deviations": Action.RADIOTHERAPY,
    "tumour_assessments": Action.LESION_REGISTRY,
    "adverse_events": Action.ADVERSE_EVENTS,
    "questionnaire_answers": Action.QUESTIONNAIRES,
}

#: The ``raised_by`` of a query the services raise from an engine's finding (not a person).
SYSTEM_USER = "abscopal"


@dataclass(frozen=True)
class Actor:
    """An authenticated user acting at their sites (the web resolves the session; the CLI, a named user).

    ``subject_id`` is set for a patient account (it sees only its own questionnaires); ``pi`` marks a site's
    principal investigator (who signs the casebook).
    """

    username: str
    full_name: str
    role: StaffRole
    sites: frozenset[str] = field(default_factory=frozenset)
    pi: bool = False
    subject_id: str | None = None
    import_source: str | None = None  # set while a data manager imports a file (e.g. "REDCap export x.xml")


class Refused(ValidationError):
    """A step of the patient's path refused by an engine, with every reason (web.md §4); maps to 422."""

    def __init__(self, field: str, what: str, reasons: Sequence[str]) -> None:
        self.reasons = list(reasons)
        if isinstance(what, Message):  # the web can translate it (abscopal.messages)
            super().__init__(field, Message(N_("{what}: {reasons}"), what=what, reasons=Joined("; ", self.reasons)))
        else:
            super().__init__(field, f"{what}: " + "; ".join(self.reasons))


def authorise(uow: UnitOfWorkLike, actor: Actor, action: Action) -> None:
    """Refuse an actor whose role may not do ``action``, or who is not the user the unit of work audits."""
    if actor.username != uow.user:
        raise PermissionDenied(
            f"{actor.username} cannot act in a unit of work opened for {uow.user}: the audit trail must name "
            "the person who made each change"
        )
    if actor.import_source is not None and actor.role in IMPORTERS.get(action, frozenset()):
        return  # an import enters what the source system collected (interop.md §7: imports by data managers)
    if actor.role not in PERMISSIONS[action]:
        raise PermissionDenied(
            Message(
                N_("{user} ({role}) may not do '{action}'; it needs: {allowed}"),
                user=actor.username,
                role=role_name(actor.role),
                action=Term(action.value, ACTION_CONTEXT),
                allowed=role_names(PERMISSIONS[action]),
            )
        )


def patient_of(uow: UnitOfWorkLike, actor: Actor, subject_id: str) -> Stored[d.Patient]:
    """The patient, if the actor may see it: an unknown patient and another site's patient are both NotFound."""
    return visible_to(actor, subject_id, uow.patients.find(subject_id=subject_id))


def visible_to(actor: Actor, subject_id: str, found: Stored[d.Patient] | None) -> Stored[d.Patient]:
    """``found`` (the patient read for ``subject_id``), if the actor may see it; else NotFound, as for an unknown
    patient: a patient is seen at its own sites, by the statistician, and by its own account only."""
    visible = found is not None and (
        found.value.site_code in actor.sites
        or actor.role is StaffRole.STATISTICIAN
        or (actor.role is StaffRole.PATIENT and actor.subject_id == subject_id)
    )
    if actor.role is StaffRole.PATIENT and actor.subject_id != subject_id:
        visible = False
    if found is None or not visible:
        raise NotFound(Message(N_("No patient {subject} at your sites"), subject=repr(subject_id)))
    return found


def utc_now(at: dt.datetime | None = None) -> dt.datetime:
    """``at`` in UTC (naive means UTC), or now: every stored timestamp is UTC (web.md §5)."""
    if at is None:
        return dt.datetime.now(dt.UTC)
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def site_today(uow: UnitOfWorkLike, patient: d.Patient, at: dt.datetime | None = None) -> dt.date:
    """Today where the patient's site is (its ``time_zone``; the trial's default zone when it has none, as the
    pages show it): the day a record made there today carries, so that "not in the future" holds from local
    midnight, not from UTC's."""
    from zoneinfo import ZoneInfo

    site = uow.sites.find(code=patient.site_code)
    zone = (site.value.time_zone if site is not None else None) or d.DEFAULT_TIME_ZONE
    return utc_now(at).astimezone(ZoneInfo(zone)).date()


def protocols_or_bundled(protocols: ProtocolFile | None) -> ProtocolFile:
    return protocols if protocols is not None else load_bundled()


def protocol_of(patient: d.Patient, protocols: ProtocolFile | None, on: dt.date | None = None) -> Protocol:
    """The rules a patient's records are checked against: the version they were enrolled under, else (while
    screening) the version in force on ``on``."""
    file = protocols_or_bundled(protocols)
    if patient.status is not d.PatientStatus.SCREENING and patient.protocol_version in file.versions:
        return file.version(patient.protocol_version)
    return file.version_on(on or dt.date.today())


def check_values(record: object, protocol: Protocol, today: dt.date) -> None:
    """The one call to the shared value rules (:mod:`abscopal.validation`): plausibility limits from the
    protocol and field rules; raises ValidationError naming the first bad field."""
    validation.validate(record, protocol.plausibility, today, schedule=protocol.schedule)


def add_or_update(records: Records[T], obj: T, record_id: str | None, version: int | None) -> Stored[T]:
    """Add ``obj`` (no id) or store it as the new state of ``record_id`` if still at ``version`` (web.md §3)."""
    if record_id is None:
        if version is not None:
            raise ValidationError("record_id", Message(N_("a version was given without the record it belongs to")))
        return records.add(obj)
    if version is None:
        raise ValidationError("version", Message(N_("an edit must send the version it was based on")))
    return records.update(record_id, obj, version=version)


def require(value: str | None, field: str, why: str) -> str:
    """A required free-text value (a reason, an answer), stripped; empty is a ValidationError naming ``field``."""
    if value is None or not value.strip():
        raise ValidationError(field, why)
    return value.strip()
