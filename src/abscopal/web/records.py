"""The per-patient records the web shows and edits, one catalogue for the API and the pages (web.md §3, §7).

Each :class:`Resource` names a kind of record by its URL segment (``lesions``, ``io-cycles`` …), its store
entity and domain class, the action that writes it and the use case that saves it (the services: a rule is
never written twice). :func:`record_states` gives each record's life (entered, edited, verified, signed, locked)
from the SDV marks, signatures and locks of the patient; :func:`visible_patient` is the site check every
patient route makes before anything else (another site's patient is 404, web.md §2).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from abscopal import domain as d
from abscopal.errors import NotFound, ValidationError
from abscopal.protocol.model import ProtocolFile
from abscopal.services import assessments, lesions, safety, screening, treatment
from abscopal.services.common import Action, Actor, StaffRole, visible_to
from abscopal.services.ports import UnitOfWorkLike, records_of
from abscopal.services.signing import content_hash
from abscopal.store.records import Stored
from abscopal.web.context import Principal
from abscopal.web.i18n import N_

Saver = Callable[[UnitOfWorkLike, Actor, Any, str | None, int | None, ProtocolFile | None], Stored[Any]]


def _saver(use_case: Callable[..., Any], result: str | None = None) -> Saver:
    """A resource's save: the service's use case, and the stored record out of what it returns (``result``)."""

    def save(uow: UnitOfWorkLike, actor: Actor, obj: Any, record_id: str | None, version: int | None,
             protocols: ProtocolFile | None) -> Stored[Any]:  # fmt: skip
        out = use_case(uow, actor, obj, record_id=record_id, version=version, protocols=protocols)
        stored: Stored[Any] = getattr(out, result) if result else out
        return stored

    return save


@dataclass(frozen=True)
class Resource:
    """One kind of per-patient record as the web names it."""

    slug: str  # URL segment under /patients/{subject_id}/
    entity: str  # the store's table
    cls: type[Any]
    title: str
    write_action: Action | None  # None: read-only here (written by its own use case, e.g. adjudications)
    save: Saver | None = None
    label: Callable[[Any], str] = field(default=lambda obj: "")

    @property
    def repository(self) -> str:
        from abscopal.store.tables import ENTITY_REPOSITORY

        return ENTITY_REPOSITORY[self.entity]


def _date_label(name: str) -> Callable[[Any], str]:
    return lambda obj: str(getattr(obj, name, "") or "")


RESOURCES: dict[str, Resource] = {
    r.slug: r
    for r in (
        Resource("screening", "screenings", d.Screening, N_("Screening"), Action.SCREENING,
                 _saver(screening.record_screening, "screening"), _date_label("screening_date")),
        Resource("io-history", "immunotherapy_histories", d.ImmunotherapyHistory, N_("Prior immunotherapy"),
                 Action.SCREENING, _saver(screening.record_immunotherapy_history),
                 lambda o: f"{o.agent} {o.start_date}"),
        Resource("adjudications", "adjudications", d.Adjudication, N_("Resistance adjudication"), None,
                 label=_date_label("proposed_at")),
        Resource("lesions", "lesions", d.Lesion, N_("Lesions"), Action.LESION_REGISTRY,
                 _saver(lesions.record_lesion), _date_label("lesion_id")),
        Resource("rt-courses", "radiotherapy_courses", d.RadiotherapyCourse, N_("Radiotherapy courses"),
                 Action.RADIOTHERAPY, _saver(lesions.prescribe_rt_course, "stored"),
                 lambda o: f"{o.lesion_id} {o.start_date}"),
        Resource("fractions", "fractions", d.Fraction, N_("Fractions"), Action.RADIOTHERAPY,
                 _saver(treatment.record_fraction, "stored"), lambda o: f"{o.lesion_id} #{o.fraction_number}"),
        Resource("io-cycles", "immunotherapy_cycles", d.ImmunotherapyCycle, N_("Immunotherapy cycles"),
                 Action.IMMUNOTHERAPY, _saver(treatment.record_immunotherapy_cycle), lambda o: f"C{o.cycle_number}"),
        Resource("assessments", "tumour_assessments", d.TumourAssessment, N_("Tumour assessments"),
                 Action.LESION_REGISTRY, _saver(assessments.record_assessment, "assessment"),
                 _date_label("assessment_date")),
        Resource("adverse-events", "adverse_events", d.AdverseEvent, N_("Adverse events"), Action.ADVERSE_EVENTS,
                 _saver(safety.record_adverse_event), lambda o: f"{o.ae_id} {getattr(o, 'term', '')}"),
        Resource("questionnaires", "questionnaire_answers", d.QuestionnaireAnswer, N_("Questionnaire answers"), None,
                 label=lambda o: f"{o.visit} {o.instrument.value} {o.item}"),
        Resource("deviations", "protocol_deviations", d.ProtocolDeviation, N_("Protocol deviations"), None,
                 label=lambda o: f"{o.check} {o.date}"),
    )
}  # fmt: skip
BY_ENTITY: dict[str, Resource] = {r.entity: r for r in RESOURCES.values()}


#: Where each kind of record is entered in full (its area page, issue 12) rather than in the generic form: resource
#: slug -> path under ``/patients/{subject_id}/``; ``{record_id}`` is filled for an existing record.
ENTRY_PAGES = {
    "screening": "screen",
    "io-history": "screen",
    "lesions": "radiotherapy",
    "rt-courses": "radiotherapy",
    "fractions": "treatment",
    "io-cycles": "treatment",
    "assessments": "assessment-grid?edit={record_id}",
    "adverse-events": "ae-log/{record_id}/edit",
    "questionnaires": "epro/transcribe",
}


def entry_page(slug: str, subject_id: str, record_id: str | None = None) -> str | None:
    """The area page where a record of this kind is entered (a new one when ``record_id`` is None)."""
    path = ENTRY_PAGES.get(slug)
    if path is None:
        return None
    if record_id is None:
        path = {"assessments": "assessment-grid", "adverse-events": "ae-log/new"}.get(slug, path)
    return f"/patients/{subject_id}/{path.format(record_id=record_id)}"


def resource(slug: str) -> Resource:
    found = RESOURCES.get(slug)
    if found is None:
        raise NotFound(f"There is no kind of record called {slug!r} (known: {', '.join(RESOURCES)})")
    return found


# --- the patient's site check


def visible_patient(uow: UnitOfWorkLike, principal: Principal, subject_id: str) -> tuple[Stored[d.Patient], Actor]:
    """The patient and the actor at the patient's site, or NotFound (unknown, or another site's patient)."""
    found = uow.patients.find(subject_id=subject_id)
    if found is None:
        raise NotFound(f"No patient {subject_id!r} at your sites")
    actor = principal.actor(found.value.site_code)
    return visible_to(actor, subject_id, found), actor  # the record read once: patient_of would read it again


PSEUDONYMISED_FIELDS = ("hospital_id", "birth_date")


def pseudonymised(actor: Actor) -> bool:
    """The statistician reads every site without direct identifiers (web.md §2): no hospital id, no birth date."""
    return actor.role is StaffRole.STATISTICIAN


# --- a record's life


@dataclass(frozen=True)
class RecordState:
    """Where a record is in its life (web.md §3); ``voided`` lists signatures its later changes voided."""

    status: str  # entered | edited | verified | signed | locked
    verified_by: str | None = None
    signatures: tuple[dict[str, Any], ...] = ()
    voided: tuple[dict[str, Any], ...] = ()
    locked_by: str | None = None
    locked_at: dt.datetime | None = None
    lock_id: str | None = None
    open_queries: int = 0


@dataclass
class PatientMarks:
    """The SDV marks, signatures, locks and open queries of one patient, read once per page or response."""

    sdv: dict[tuple[str, str], Stored[d.SdvMark]]
    signatures: dict[tuple[str, str], list[Stored[d.RecordSignature]]]
    voided: dict[tuple[str, str], list[Stored[d.RecordSignature]]]
    locks: dict[tuple[str, str], Stored[d.RecordLock]]
    queries: dict[tuple[str, str | None], int]

    def touches(self, key: tuple[str, str], patient_id: str) -> bool:
        """Whether any mark bears on the record ``key`` (or a lock on its whole patient)."""
        return (
            key in self.sdv or key in self.signatures or key in self.voided or key in self.locks
            or key in self.queries or ("patients", patient_id) in self.locks
        )  # fmt: skip


@cache
def _any_mark() -> Any:
    """Whether a patient (``:subject_id``) has any live SDV mark, signature, lock or data query, or a voided
    signature: one statement, built once, that lets most patients' pages skip the four look-ups below."""
    from sqlalchemy import bindparam, exists, or_, select

    from abscopal.store.tables import ENTITIES

    tables = [ENTITIES[name].table for name in ("sdv_marks", "record_signatures", "record_locks", "data_queries")]
    sid: Any = bindparam("subject_id")
    return select(or_(*(exists().where(t.c.subject_id == sid) for t in tables)))


def patient_marks(uow: UnitOfWorkLike, subject_id: str, *, with_voided: bool = True) -> PatientMarks:
    """The marks of ``subject_id``'s records (with the voided signatures unless ``with_voided`` is False)."""
    conn = getattr(uow, "connection", None)
    if conn is not None and not conn.execute(_any_mark(), {"subject_id": subject_id}).scalar():
        return PatientMarks({}, {}, {}, {}, {})  # most patients: nothing marked, one statement instead of four
    sdv = {(s.value.entity, s.value.record_id): s for s in uow.sdv_marks.for_subject(subject_id)}
    sigs: dict[tuple[str, str], list[Stored[d.RecordSignature]]] = {}
    for s in uow.signatures.for_subject(subject_id):
        sigs.setdefault((s.value.entity, s.value.record_id), []).append(s)
    voided: dict[tuple[str, str], list[Stored[d.RecordSignature]]] = {}
    if with_voided:
        from sqlalchemy import select

        from abscopal.store.tables import ENTITIES

        table = ENTITIES["record_signatures"].table
        if conn is not None:
            rows = conn.execute(
                select(table.c.id).where(table.c.subject_id == subject_id, table.c.removed_reason.is_not(None))
            ).scalars()
            for rid in rows:
                s = uow.signatures.get(rid, include_removed=True)
                voided.setdefault((s.value.entity, s.value.record_id), []).append(s)
    locks = {(s.value.entity, s.value.record_id): s for s in uow.locks.for_subject(subject_id)}
    queries: dict[tuple[str, str | None], int] = {}
    for q in uow.queries.for_subject(subject_id):
        if q.value.status is not d.QueryStatus.CLOSED:
            key = (q.value.entity, q.value.record_id)
            queries[key] = queries.get(key, 0) + 1
    return PatientMarks(sdv, sigs, voided, locks, queries)


def _signature(s: Stored[d.RecordSignature]) -> dict[str, Any]:
    v = s.value
    return {"id": s.id, "username": v.username, "full_name": v.full_name, "meaning": v.meaning, "at": v.signed_at,
            "void_reason": s.removed_reason}  # fmt: skip


def record_state(
    entity: str, record: Stored[Any], marks: PatientMarks, patient_id: str, *, hash_of: str | None = None
) -> RecordState:
    """The state of one record: locked > signed (a live signature whose hash holds) > verified > edited/entered."""
    key = (entity, record.id)
    if not marks.touches(key, patient_id):  # most records: no mark at all (a page lists ~100 of them)
        return _ENTERED if record.version == 1 else _EDITED
    lock = marks.locks.get(key) or marks.locks.get(("patients", patient_id))
    signed = marks.signatures.get(key, [])
    current_hash = (hash_of or content_hash(entity, record)) if signed else ""  # hashing only what was signed
    live = tuple(_signature(s) for s in signed if s.value.content_hash == current_hash)
    voided = tuple(_signature(s) for s in marks.voided.get(key, []))
    sdv = marks.sdv.get(key)
    verified = sdv is not None and sdv.value.record_version == record.version
    status = "entered" if record.version == 1 else "edited"
    if verified:
        status = "verified"
    if live:
        status = "signed"
    if lock is not None:
        status = "locked"
    return RecordState(
        status, sdv.value.verified_by if verified and sdv else None, live, voided,
        lock.value.locked_by if lock else None, lock.value.locked_at if lock else None, lock.id if lock else None,
        marks.queries.get(key, 0),
    )  # fmt: skip


#: The record states' badge labels (web.md §3's life of a record), for the pages that list records.
STATE_LABELS = {
    "entered": N_("entered"), "edited": N_("edited"), "verified": N_("verified"), "signed": N_("signed"),
    "locked": N_("locked"),
}  # fmt: skip

_PROGRESS = ("entered", "edited", "verified", "signed")


_ENTERED = RecordState("entered")
_EDITED = RecordState("edited")


def unmarked_state(version: int) -> RecordState:
    """The state of a record no mark bears on: entered (version 1) or edited."""
    return _ENTERED if version == 1 else _EDITED


def combined_state(states: list[RecordState]) -> RecordState:
    """One state for a group of records shown as one row (a questionnaire's items): locked if any is, else the
    least advanced of entered < edited < verified < signed; open queries add up."""
    if not states:
        return RecordState("entered")
    locked = next((st for st in states if st.status == "locked"), None)
    if locked is not None:
        return dataclasses.replace(locked, open_queries=sum(st.open_queries for st in states))
    least = min(states, key=lambda st: _PROGRESS.index(st.status) if st.status in _PROGRESS else 0)
    edited = any(st.status != "entered" for st in states) and least.status == "entered"
    return dataclasses.replace(
        least, status="edited" if edited else least.status, open_queries=sum(st.open_queries for st in states)
    )


# --- bodies: the shared schema (the domain dataclasses) as Pydantic models for the API and forms

_FORBID = ConfigDict(extra="forbid")


_INPUT_MODELS: dict[type[Any], type[BaseModel]] = {}


def input_model(cls: type[Any]) -> type[BaseModel]:
    """A request body for ``cls`` without ``subject_id`` (it comes from the path); unknown fields are refused.

    Built once per class (a form post or API write asks for it every time)."""
    found = _INPUT_MODELS.get(cls)
    if found is None:
        found = _INPUT_MODELS[cls] = _input_model(cls)
    return found


def _input_model(cls: type[Any]) -> type[BaseModel]:
    hints = d.field_hints(cls)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name == "subject_id":
            continue
        if f.default is not dataclasses.MISSING:
            fields[f.name] = (hints[f.name], f.default)
        elif f.default_factory is not dataclasses.MISSING:
            fields[f.name] = (hints[f.name], f.default_factory())
        else:
            fields[f.name] = (hints[f.name], ...)
    model: type[BaseModel] = create_model(f"{cls.__name__}Input", __config__=_FORBID, **fields)
    return model


def output_model(cls: type[Any]) -> type[BaseModel]:
    hints = d.field_hints(cls)
    fields: dict[str, Any] = {f.name: (hints[f.name] | None, None) for f in dataclasses.fields(cls)}
    model: type[BaseModel] = create_model(f"{cls.__name__}Data", **fields)
    return model


def build(cls: type[Any], subject_id: str, body: BaseModel | Mapping[str, Any]) -> Any:
    """The domain object from a validated body and the path's patient."""
    values = dict(body)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValidationError(unknown[0], "is not a field of this record")
    if "subject_id" in names:
        values["subject_id"] = subject_id
    return cls(**values)


def record_data(obj: Any, actor: Actor) -> dict[str, Any]:
    """A record's fields for the API (the statistician's copy without direct identifiers)."""
    data = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, d.Patient) and pseudonymised(actor):
        for name in PSEUDONYMISED_FIELDS:
            data[name] = None
        data["birth_year"] = obj.birth_date.year
    return data


def records_for(uow: UnitOfWorkLike, entity: str, subject_id: str) -> list[Stored[Any]]:
    return records_of(uow, entity).for_subject(subject_id)
