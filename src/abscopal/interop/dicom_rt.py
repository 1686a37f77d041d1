"""DICOM RT import: RT Plans become prescriptions, RT Beams Treatment Records become fractions (interop.md §6).

Identity first (PatientID = the stored hospital ID, birth date and sex agree), then the plan or records are read
in full; every problem is collected and nothing is written unless all is well. The writes go through the use
cases (``lesions.prescribe_rt_course``, ``treatment.record_fraction``) in one transaction, so the protocol's plan
and delivery checks run and their deviations are recorded. PatientName is never read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID
from sqlalchemy import Engine

from abscopal import domain as d
from abscopal.errors import InputFileError, PermissionDenied, Problem, ValidationError
from abscopal.protocol import radiotherapy as rt
from abscopal.protocol.model import ProtocolFile
from abscopal.services import lesions as lesion_services
from abscopal.services import treatment
from abscopal.services.common import PERMISSIONS, Action, Actor, patient_of, protocol_of
from abscopal.services.ports import UnitOfWorkLike
from abscopal.store.records import Stored
from abscopal.store.unit_of_work import UnitOfWork

RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"
RT_STRUCTURE_SET = "1.2.840.10008.5.1.4.1.1.481.3"
RT_BEAMS_RECORD = "1.2.840.10008.5.1.4.1.1.481.4"
KINDS = {RT_PLAN: "RT Plan", RT_STRUCTURE_SET: "RT Structure Set", RT_BEAMS_RECORD: "RT Beams Treatment Record"}
IMPORT_ROLES = PERMISSIONS[Action.DICOM_IMPORT]  # the radiation oncologist and the data manager (web.md §2)
#: ΣBeamDose vs the prescription per fraction, and delivered vs specified meterset: 1 % (interop.md §6)
TOLERANCE = 0.01


@dataclass(frozen=True)
class DicomFile:
    """One DICOM file read in full: its name, SHA-256, SOP class kind and the dataset."""

    path: Path
    sha256: str
    kind: str
    ds: Dataset
    warnings: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def sop_uid(self) -> str:
        return str(self.ds.get("SOPInstanceUID", "") or "")


def _refuse(path: Path | str, field_name: str, reason: str) -> InputFileError:
    return InputFileError(str(path), [Problem(None, field_name, reason)])


def read(path: Path, expect: Sequence[str] | None = None) -> DicomFile:
    """Read ``path`` strictly; without a Part 10 header retry with ``force=True`` only if it has a SOPClassUID.

    Accept RT Plan, RT Structure Set and RT Beams Treatment Record (``expect``: the SOP classes wanted here).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _refuse(path, "", f"cannot be read ({exc.strerror or exc})") from None
    warnings: list[str] = []
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except InvalidDicomError:
        try:
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
            has_class = "SOPClassUID" in ds and bool(ds.SOPClassUID)
        except Exception:
            has_class = False
        if not has_class:
            raise _refuse(path, "", "is not a DICOM file (no DICOM header and no SOPClassUID)") from None
        warnings.append(f"{path.name} has no DICOM Part 10 header; read without it (force=True)")
    except Exception as exc:
        raise _refuse(path, "", f"is not a readable DICOM file ({type(exc).__name__}: {exc})") from None
    try:
        ds.walk(lambda _ds, _elem: None)  # decode every element now: a truncated file fails here, not later
        sop_class = str(ds.get("SOPClassUID", "") or "")
    except Exception as exc:
        raise _refuse(path, "", f"is damaged or truncated ({type(exc).__name__}: {exc})") from None
    wanted = tuple(expect or KINDS)
    if sop_class not in wanted:
        name = UID(sop_class).name if sop_class else "none"
        accepted = ", ".join(f"{KINDS[u]} ({u})" for u in wanted)
        raise _refuse(
            path, "SOPClassUID", f"the SOP class is {name} ({sop_class or 'missing'}); this import takes {accepted}"
        )
    return DicomFile(path, hashlib.sha256(data).hexdigest(), KINDS[sop_class], ds, tuple(warnings))


# ----------------------------------------------------------------------------- small readers


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _float(ds: Dataset, keyword: str) -> float | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(ds: Dataset, keyword: str) -> int | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _date(value: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(value.strip()[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _items(ds: Dataset, keyword: str) -> list[Dataset]:
    value = ds.get(keyword)
    return list(value) if value else []


# ----------------------------------------------------------------------------- identity


def _actor(uow: UnitOfWorkLike, username: str, source: str, given: Actor | None = None) -> Actor:
    """The importing user: the signed-in web user (``given``, limited to their sites) or, for the CLI, the user of
    that name in the users table, at every site; a radiation oncologist or a data manager either way."""
    if given is not None:
        if given.role not in IMPORT_ROLES:
            raise PermissionDenied(
                f"{given.username} ({given.role.value.replace('_', ' ')}) may not import DICOM RT files; it needs a "
                "radiation oncologist or a data manager"
            )
        return dataclasses.replace(given, import_source=source)
    user = uow.users.find(username=username)
    if user is None:
        raise PermissionDenied(f"{username} is not a user of this database: add the user before importing")
    if user.value.role not in IMPORT_ROLES:
        raise PermissionDenied(
            f"{username} ({user.value.role.value.replace('_', ' ')}) may not import DICOM RT files; it needs a "
            "radiation oncologist or a data manager"
        )
    sites = frozenset(s.value.code for s in uow.sites.all())
    return Actor(username, user.value.full_name, user.value.role, sites=sites, import_source=source)


def identify(
    uow: UnitOfWorkLike, actor: Actor, file: DicomFile, subject_id: str | None, warnings: list[str]
) -> Stored[d.Patient]:
    """The trial patient the file belongs to (``--patient`` or the hospital ID), refused on any mismatch."""
    ds = file.ds
    pid = _text(ds, "PatientID")
    if subject_id is not None:
        stored = patient_of(uow, actor, subject_id)
    else:
        if not pid:
            raise _refuse(file.path, "PatientID", "is empty: name the trial patient with --patient")
        found = [s for s in uow.patients.all() if s.value.hospital_id == pid and s.value.site_code in actor.sites]
        if len(found) != 1:
            how = "no trial patient has" if not found else "several trial patients have"
            raise _refuse(file.path, "PatientID", f"{how} this hospital ID: name the patient with --patient")
        stored = found[0]
    p = stored.value
    problems = []
    if not p.hospital_id:
        problems.append(Problem(None, "PatientID", f"{p.subject_id} has no hospital ID recorded to check it against"))
    elif pid != p.hospital_id:
        problems.append(Problem(None, "PatientID", f"is not the hospital ID recorded for {p.subject_id}"))
    birth = _text(ds, "PatientBirthDate")
    if birth:
        if _date(birth) != p.birth_date:
            problems.append(Problem(None, "PatientBirthDate", f"is not the birth date recorded for {p.subject_id}"))
    else:
        warnings.append(f"{file.name}: PatientBirthDate is empty; identity checked on PatientID and sex only")
    sex = _text(ds, "PatientSex").upper()
    if sex in ("F", "M") and sex != p.sex.value:
        problems.append(Problem(None, "PatientSex", f"{sex} is not the sex recorded for {p.subject_id}"))
    if problems:
        raise InputFileError(str(file.path), problems)
    return stored


# ----------------------------------------------------------------------------- RT Plan


@dataclass(frozen=True)
class PlannedTarget:
    """One TARGET dose reference of a plan, its fraction group and the derived dose per fraction."""

    dose_reference: int
    description: str
    roi_number: int | None
    roi_name: str | None
    fraction_group: int
    fractions: int
    dose_per_fraction_gy: float
    beam_dose_gy: float | None
    prescription_gy: float | None


@dataclass(frozen=True)
class CourseImported:
    target: str
    course: d.RadiotherapyCourse
    bed_gy: float
    eqd2_gy: float
    deviations: tuple[d.ProtocolDeviation, ...]
    unchanged: bool = False


@dataclass(frozen=True)
class PlanImported:
    file: str
    sha256: str
    plan_uid: str
    subject_id: str
    courses: tuple[CourseImported, ...]
    warnings: tuple[str, ...]
    committed: bool


def _structure_rois(structure: DicomFile | None) -> dict[int, str]:
    if structure is None:
        return {}
    rois = {}
    for item in _items(structure.ds, "StructureSetROISequence"):
        number = _int(item, "ROINumber")
        if number is not None:
            rois[number] = _text(item, "ROIName")
    return rois


def plan_targets(
    plan: DicomFile, structure: DicomFile | None, allow_unapproved: bool, warnings: list[str]
) -> list[PlannedTarget]:
    """The plan's TARGET dose references with fraction group, fractions and dose per fraction (§6), or refuse."""
    ds, problems = plan.ds, []
    if not plan.sop_uid:
        problems.append(Problem(None, "SOPInstanceUID", "is missing"))
    status = _text(ds, "ApprovalStatus").upper()
    if not status:
        problems.append(Problem(None, "ApprovalStatus", "is missing: only an approved plan is imported"))
    elif status == "UNAPPROVED" and not allow_unapproved:
        problems.append(Problem(None, "ApprovalStatus", "is UNAPPROVED: import it with --allow-unapproved"))
    elif status not in ("APPROVED", "UNAPPROVED"):
        problems.append(Problem(None, "ApprovalStatus", f"is {status}: only an approved plan is imported"))
    if _text(ds, "RTPlanGeometry").upper() != "PATIENT":
        problems.append(
            Problem(None, "RTPlanGeometry", f"is {_text(ds, 'RTPlanGeometry') or 'missing'}; it must be PATIENT")
        )
    if structure is not None:
        referenced = [_text(i, "ReferencedSOPInstanceUID") for i in _items(ds, "ReferencedStructureSetSequence")]
        if structure.sop_uid not in referenced:
            problems.append(
                Problem(
                    None,
                    "ReferencedStructureSetSequence",
                    f"does not name the structure set {structure.name} (SOPInstanceUID {structure.sop_uid})",
                )
            )
        if _text(structure.ds, "PatientID") != _text(ds, "PatientID"):
            problems.append(Problem(None, "PatientID", f"the structure set {structure.name} is another patient's"))
    rois = _structure_rois(structure)
    beams = {_int(b, "BeamNumber"): b for b in _items(ds, "BeamSequence")}
    treatment_beams = set()
    for number, beam in beams.items():
        if _text(beam, "TreatmentDeliveryType").upper() not in ("", "TREATMENT"):
            continue
        treatment_beams.add(number)
        if _text(beam, "RadiationType").upper() != "PHOTON":
            problems.append(
                Problem(
                    None,
                    "RadiationType",
                    f"beam {number} is {_text(beam, 'RadiationType') or 'unknown'}; only photon plans are imported",
                )
            )
    groups = _items(ds, "FractionGroupSequence")
    if not groups:
        problems.append(Problem(None, "FractionGroupSequence", "is missing"))
    targets = [r for r in _items(ds, "DoseReferenceSequence") if _text(r, "DoseReferenceType").upper() == "TARGET"]
    if not targets:
        problems.append(Problem(None, "DoseReferenceSequence", "has no TARGET dose reference"))
    out: list[PlannedTarget] = []
    for ref in targets:
        number = _int(ref, "DoseReferenceNumber")
        desc = _text(ref, "DoseReferenceDescription")
        name = desc or f"dose reference {number}"
        if number is None:
            problems.append(Problem(None, "DoseReferenceNumber", f"target {name} has none"))
            continue
        naming = [
            g
            for g in groups
            if any(
                _int(r, "ReferencedDoseReferenceNumber") == number for r in _items(g, "ReferencedDoseReferenceSequence")
            )
        ]
        group = naming[0] if len(naming) == 1 else groups[0] if len(groups) == 1 else None
        if group is None:
            problems.append(Problem(None, "FractionGroupSequence", f"no single fraction group delivers target {name}"))
            continue
        n = _int(group, "NumberOfFractionsPlanned")
        fg = _int(group, "FractionGroupNumber")
        if n is None or n <= 0 or fg is None:
            problems.append(
                Problem(None, "NumberOfFractionsPlanned", f"fraction group of target {name} has no planned fractions")
            )
            continue
        doses = [
            _float(b, "BeamDose")
            for b in _items(group, "ReferencedBeamSequence")
            if _int(b, "ReferencedBeamNumber") in treatment_beams
        ]
        beam_dose = sum(x for x in doses if x is not None) if doses and None not in doses else None
        prescription = _float(ref, "TargetPrescriptionDose")
        if prescription is not None:
            dpf = prescription / n
            if beam_dose is not None and abs(beam_dose - dpf) > TOLERANCE * dpf:
                warnings.append(
                    f"target {name}: the beams give {beam_dose:g} Gy per fraction, the prescription "
                    f"{dpf:g} Gy ({abs(beam_dose - dpf) / dpf:.1%} apart)"
                )
        elif beam_dose is not None and len(targets) == 1 and len(groups) == 1:
            dpf = beam_dose
            warnings.append(f"target {name} has no TargetPrescriptionDose: dose per fraction from the beams' BeamDose")
        else:
            problems.append(Problem(None, "TargetPrescriptionDose", f"target {name} has no prescription dose"))
            continue
        roi_number = _int(ref, "ReferencedROINumber")
        out.append(
            PlannedTarget(
                number,
                desc,
                roi_number,
                rois.get(roi_number) if roi_number is not None else None,
                fg,
                n,
                round(dpf, 6),
                beam_dose,
                prescription,
            )
        )
    if problems:
        raise InputFileError(str(plan.path), problems)
    return out


def match_targets(
    plan: DicomFile, targets: Sequence[PlannedTarget], lesions: Sequence[d.Lesion], mapping: Mapping[str, str]
) -> list[tuple[PlannedTarget, d.Lesion]]:
    """Each target's lesion, never fuzzy: ``--map``, else ROI name = label, else description = label (§6)."""
    by_id = {lesion.lesion_id: lesion for lesion in lesions}
    problems, out, used = [], [], set()
    for t in targets:
        names = [x for x in (t.description, t.roi_name, str(t.dose_reference)) if x]
        mapped = [k for k in mapping if k in names]
        shown = t.description or t.roi_name or f"dose reference {t.dose_reference}"
        if mapped:
            used.update(mapped)
            lesion_id = mapping[mapped[0]]
            if lesion_id not in by_id:
                problems.append(
                    Problem(None, "--map", f"{mapped[0]}={lesion_id}: the patient has no lesion {lesion_id}")
                )
                continue
            out.append((t, by_id[lesion_id]))
            continue
        found: list[d.Lesion] = []
        for name in (t.roi_name, t.description):
            if not name:
                continue
            found = [x for x in lesions if x.label and x.label.casefold() == name.casefold()]
            if found:
                break
        if len(found) != 1:
            what = "no lesion is" if not found else "several lesions are"
            problems.append(
                Problem(
                    None,
                    "DoseReferenceSequence",
                    f"target {shown}: {what} labelled so; map it with --map {shown}=LESION",
                )
            )
            continue
        out.append((t, found[0]))
    for key in sorted(set(mapping) - used):
        problems.append(Problem(None, "--map", f"the plan has no target {key}"))
    lesion_ids = [lesion.lesion_id for _, lesion in out]
    for lid in sorted({x for x in lesion_ids if lesion_ids.count(x) > 1}):
        problems.append(Problem(None, "DoseReferenceSequence", f"several targets map to lesion {lid}"))
    if problems:
        raise InputFileError(str(plan.path), problems)
    return out


def parse_mapping(pairs: Sequence[str], field_name: str = "--map") -> dict[str, str]:
    """``TARGET=LESION`` pairs (the CLI's ``--map``, the import page's lines) as target -> lesion id."""
    out: dict[str, str] = {}
    for pair in pairs:
        target, sep, lesion = pair.partition("=")
        if not sep or not target.strip() or not lesion.strip():
            raise ValidationError(field_name, f"{pair!r} is not TARGET=LESION (e.g. PTV=L01)")
        out[target.strip()] = lesion.strip()
    return out


def import_plan(
    engine: Engine,
    path: Path,
    *,
    user: str,
    structure_set: Path | None = None,
    patient: str | None = None,
    mapping: Mapping[str, str] | None = None,
    start: dt.date | None = None,
    allow_unapproved: bool = False,
    dry_run: bool = False,
    protocols: ProtocolFile | None = None,
    at: dt.datetime | None = None,
    actor: Actor | None = None,
) -> PlanImported:
    """Import one RT Plan as prescriptions, all or nothing (``dry_run``: everything but the commit).

    ``actor`` is the signed-in web user (the browser's import page); without it ``user`` is looked up in the users
    table (the CLI)."""
    plan = read(path, [RT_PLAN])
    structure = read(structure_set, [RT_STRUCTURE_SET]) if structure_set is not None else None
    warnings = [*plan.warnings, *(structure.warnings if structure else ())]
    reason = f"imported from DICOM RT Plan {plan.sop_uid} file {plan.name} (sha256 {plan.sha256})"
    with UnitOfWork(engine, user=user, reason=reason) as store:
        uow = cast(UnitOfWorkLike, store)  # the store's repositories are the ports' Records (structurally)
        actor = _actor(uow, user, f"DICOM RT Plan {plan.name}", actor)
        stored = identify(uow, actor, plan, patient, warnings)
        subject = stored.value.subject_id
        targets = plan_targets(plan, structure, allow_unapproved, warnings)
        lesions = [s.value for s in uow.lesions.for_subject(subject)]
        matched = match_targets(plan, targets, lesions, mapping or {})
        begin = start or _date(_text(plan.ds, "RTPlanDate"))
        if begin is None:
            raise _refuse(path, "RTPlanDate", "is missing or not a date: give the first day with --start")
        label = _text(plan.ds, "RTPlanLabel") or None
        courses = [
            d.RadiotherapyCourse(
                subject,
                lesion.lesion_id,
                lesion.rt_role,
                t.dose_per_fraction_gy,
                t.fractions,
                begin,
                plan_label=label,
                plan_uid=plan.sop_uid,
                fraction_group=t.fraction_group,
                dose_reference=t.dose_reference,
            )
            for t, lesion in matched
        ]
        before = [s.value for s in uow.radiotherapy_courses.for_subject(subject) if s.value.plan_uid == plan.sop_uid]
        results: list[CourseImported] = []
        if before:
            key = lambda c: (c.dose_reference or 0, c.lesion_id)  # noqa: E731
            if sorted(before, key=key) != sorted(courses, key=key):
                raise _refuse(
                    path,
                    "SOPInstanceUID",
                    "this plan was imported before with different content; a changed "
                    "plan must have a new SOPInstanceUID",
                )
            for (t, _), c in zip(matched, courses, strict=True):
                results.append(CourseImported(_target_name(t), c, *_doses(c), (), unchanged=True))
            return PlanImported(str(path), plan.sha256, plan.sop_uid, subject, tuple(results), tuple(warnings), False)
        with uow.one_transaction():
            for (t, _), c in zip(matched, courses, strict=True):
                done = lesion_services.prescribe_rt_course(uow, actor, c, protocols=protocols, at=at)
                results.append(CourseImported(_target_name(t), c, *_doses(c), tuple(s.value for s in done.deviations)))
        if not dry_run:
            uow.commit()
    return PlanImported(str(path), plan.sha256, plan.sop_uid, subject, tuple(results), tuple(warnings), not dry_run)


def _target_name(t: PlannedTarget) -> str:
    return t.description or t.roi_name or f"dose reference {t.dose_reference}"


def _doses(c: d.RadiotherapyCourse) -> tuple[float, float]:
    return (
        rt.bed(c.dose_per_fraction_gy, c.fractions, c.alpha_beta_gy),
        rt.eqd2(c.dose_per_fraction_gy, c.fractions, c.alpha_beta_gy),
    )


# ----------------------------------------------------------------------------- RT Beams Treatment Record


@dataclass(frozen=True)
class Session:
    """One treatment record: when, which plan and fraction group, which fraction, delivered vs specified MU."""

    file: DicomFile
    plan_uid: str
    fraction_group: int | None
    date: dt.date
    time: str
    fraction_number: int
    delivered_mu: float
    specified_mu: float
    complete: bool

    @property
    def ratio(self) -> float:
        return self.delivered_mu / self.specified_mu


@dataclass(frozen=True)
class FractionImported:
    file: str
    record_uid: str
    fraction: d.Fraction | None
    deviations: tuple[d.ProtocolDeviation, ...] = ()
    skipped: str | None = None


@dataclass(frozen=True)
class RecordsImported:
    subject_id: str
    fractions: tuple[FractionImported, ...]
    warnings: tuple[str, ...]
    committed: bool


def read_session(file: DicomFile) -> Session:
    """The session a record describes (interop.md §6), or refuse naming every problem."""
    ds, problems = file.ds, []
    if not file.sop_uid:
        problems.append(Problem(None, "SOPInstanceUID", "is missing"))
    plans = _items(ds, "ReferencedRTPlanSequence")
    plan_uid = _text(plans[0], "ReferencedSOPInstanceUID") if plans else ""
    if not plan_uid:
        problems.append(Problem(None, "ReferencedRTPlanSequence", "names no RT Plan"))
    group = _int(plans[0], "ReferencedFractionGroupNumber") if plans else None
    if group is None:
        group = _int(ds, "ReferencedFractionGroupNumber")
    day = _date(_text(ds, "TreatmentDate"))
    if day is None:
        problems.append(Problem(None, "TreatmentDate", "is missing or not a date"))
    numbers, delivered, specified, complete = set(), 0.0, 0.0, True
    beams = [
        b
        for b in _items(ds, "TreatmentSessionBeamSequence")
        if _text(b, "TreatmentDeliveryType").upper() in ("", "TREATMENT")
    ]
    if not beams:
        problems.append(Problem(None, "TreatmentSessionBeamSequence", "has no treatment beam"))
    for beam in beams:
        number = _int(beam, "ReferencedBeamNumber")
        n = _int(beam, "CurrentFractionNumber")
        if n is not None:
            numbers.add(n)
        got, want = _float(beam, "DeliveredPrimaryMeterset"), _float(beam, "SpecifiedPrimaryMeterset")
        points = _items(beam, "ControlPointDeliverySequence")
        if got is None and points:
            got = _float(points[-1], "DeliveredMeterset")
        if want is None and points:
            want = _float(points[-1], "SpecifiedMeterset")
        if got is None or want is None or want <= 0:
            problems.append(
                Problem(None, "DeliveredPrimaryMeterset", f"beam {number}: delivered or specified MU missing")
            )
            continue
        delivered += got
        specified += want
        ended = _text(beam, "TreatmentTerminationStatus").upper()
        if ended != "NORMAL" or abs(got - want) > TOLERANCE * want:
            complete = False
    if len(numbers) != 1:
        problems.append(
            Problem(
                None,
                "CurrentFractionNumber",
                "is missing" if not numbers else f"differs between beams: {sorted(numbers)}",
            )
        )
    if problems:
        raise InputFileError(str(file.path), problems)
    assert day is not None
    return Session(
        file, plan_uid, group, day, _text(ds, "TreatmentTime"), numbers.pop(), delivered, specified, complete
    )


def import_records(
    engine: Engine,
    paths: Sequence[Path],
    *,
    user: str,
    patient: str | None = None,
    dry_run: bool = False,
    protocols: ProtocolFile | None = None,
    at: dt.datetime | None = None,
    actor: Actor | None = None,
) -> RecordsImported:
    """Import RT Beams Treatment Records as fractions, in (date, time, fraction) order, all or nothing (``actor``:
    the signed-in web user, as for :func:`import_plan`)."""
    if not paths:
        raise _refuse("rtrecord", "", "no treatment record files were given")
    files = [read(p, [RT_BEAMS_RECORD]) for p in paths]
    warnings = [w for f in files for w in f.warnings]
    sessions = sorted((read_session(f) for f in files), key=lambda s: (s.date, s.time, s.fraction_number))
    reason = "imported from DICOM RT Beams Treatment Record " + "; ".join(
        f"{f.sop_uid} file {f.name} (sha256 {f.sha256})" for f in files
    )
    with UnitOfWork(engine, user=user, reason=reason) as store:
        uow = cast(UnitOfWorkLike, store)  # the store's repositories are the ports' Records (structurally)
        actor = _actor(uow, user, f"DICOM RT Beams Treatment Record {', '.join(f.name for f in files)}", actor)
        stored = identify(uow, actor, files[0], patient, warnings)
        subject = stored.value.subject_id
        for f in files[1:]:
            if _text(f.ds, "PatientID") != _text(files[0].ds, "PatientID"):
                raise _refuse(f.path, "PatientID", f"is not the PatientID of {files[0].name}: one patient per import")
            identify(uow, actor, f, subject, warnings)
        courses = [s.value for s in uow.radiotherapy_courses.for_subject(subject)]
        known = [s.value for s in uow.fractions.for_subject(subject)]
        seen_uids = {f.record_uid: f for f in known if f.record_uid}
        # (lesion, fraction number) -> (date, where it came from) for every fraction stored or in this batch
        placed: dict[tuple[str, int], tuple[dt.date, str]] = {
            (f.lesion_id, f.fraction_number): (f.date, f"stored record {f.record_uid or '(entered by hand)'}")
            for f in known
        }
        plan: list[tuple[Session, d.RadiotherapyCourse]] = []
        results: list[FractionImported] = []
        problems: list[InputFileError] = []
        batch_uids: dict[str, str] = {}
        for s in sessions:
            uid = s.file.sop_uid
            if uid in seen_uids or uid in batch_uids:
                where = "already imported" if uid in seen_uids else f"the same record as {batch_uids[uid]}"
                results.append(FractionImported(s.file.name, uid, None, skipped=where))
                continue
            batch_uids[uid] = s.file.name
            mine = [c for c in courses if c.plan_uid == s.plan_uid]
            groups = {c.fraction_group for c in mine}
            if s.fraction_group is not None:
                mine = [c for c in mine if c.fraction_group == s.fraction_group]
            elif len(groups) > 1:
                mine = []
            if not mine:
                problems.append(
                    _refuse(
                        s.file.path,
                        "ReferencedRTPlanSequence",
                        f"names RT Plan {s.plan_uid}"
                        + (f" fraction group {s.fraction_group}" if s.fraction_group is not None else "")
                        + f", which has not been imported for {subject}: import the plan first",
                    )
                )
                continue
            for c in mine:
                key = (c.lesion_id, s.fraction_number)
                if key in placed:
                    problems.append(
                        _refuse(
                            s.file.path,
                            "CurrentFractionNumber",
                            f"fraction {s.fraction_number} of lesion "
                            f"{c.lesion_id} is recorded twice: in {s.file.name} and in {placed[key][1]}",
                        )
                    )
                    continue
                later = [
                    (n, when, where)
                    for (lid, n), (when, where) in placed.items()
                    if lid == c.lesion_id
                    and ((n > s.fraction_number and when <= s.date) or (n < s.fraction_number and when > s.date))
                ]
                if later:
                    n, when, where = later[0]
                    problems.append(
                        _refuse(
                            s.file.path,
                            "CurrentFractionNumber",
                            f"fraction numbers go down over time: fraction "
                            f"{s.fraction_number} on {s.date} in {s.file.name}, fraction {n} on {when} in {where}",
                        )
                    )
                    continue
                placed[key] = (s.date, s.file.name)
                plan.append((s, c))
        if problems:
            raise InputFileError(
                ", ".join(dict.fromkeys(e.path for e in problems)), [p for e in problems for p in e.problems]
            )
        with uow.one_transaction():
            for s, c in plan:
                status = d.FractionStatus.DELIVERED if s.complete else d.FractionStatus.PARTIAL
                fraction = d.Fraction(
                    subject,
                    c.lesion_id,
                    s.fraction_number,
                    s.date,
                    round(c.dose_per_fraction_gy * s.ratio, 6),
                    status,
                    record_uid=s.file.sop_uid,
                    meterset_ratio=round(s.ratio, 6),
                )
                done = treatment.record_fraction(uow, actor, fraction, protocols=protocols, at=at)
                added = tuple(x.value for x in done.deviations)
                if not rt.is_fully_delivered(fraction):  # a partial fraction: the engine judges dose only when full
                    added += _partial_deviation(uow, actor, stored.value, c, fraction, protocols)
                results.append(FractionImported(s.file.name, s.file.sop_uid, fraction, added))
        if not dry_run:
            uow.commit()
    return RecordsImported(subject, tuple(results), tuple(warnings), not dry_run and bool(plan))


def _partial_deviation(
    uow: UnitOfWorkLike,
    actor: Actor,
    patient: d.Patient,
    course: d.RadiotherapyCourse,
    fraction: d.Fraction,
    protocols: ProtocolFile | None,
) -> tuple[d.ProtocolDeviation, ...]:
    """A partial fraction is proposed as a deviation (interop.md §6, radiotherapy.md §4).

    The engine judges only fully delivered fractions' doses (and the total once the course ends), so a beam
    terminated early proposes nothing there: the importer proposes the delivered-dose-per-fraction deviation of
    the lesion's role itself, major when outside the role's range (CFRT) or band (LDRT), else minor, unless one
    of that check, lesion and day is already recorded (the store's natural key).
    """
    rules = protocol_of(patient, protocols, fraction.date).radiotherapy
    planned, got = course.dose_per_fraction_gy, fraction.dose_gy
    if course.role is d.RtRole.CONVENTIONAL:
        check = d.DeviationCheck.CFRT_DELIVERED_DOSE_PER_FRACTION
        band = rules.conventional.dose_per_fraction_gy
        major = not band.min - 1e-9 <= got <= band.max + 1e-9
    else:
        check = d.DeviationCheck.LDRT_DELIVERED_DOSE_PER_FRACTION
        pct = abs(got - rules.low_dose.dose_per_fraction_gy) / rules.low_dose.dose_per_fraction_gy * 100
        major = pct > rules.deviations.ldrt_dose_major_pct
    existing = uow.deviations.find(
        subject_id=fraction.subject_id, check=check, lesion_id=fraction.lesion_id, date=fraction.date
    )
    if existing is not None:
        return ()
    ratio = fraction.meterset_ratio or 0.0
    deviation = d.ProtocolDeviation(
        subject_id=fraction.subject_id,
        check=check,
        deviation_class=d.DeviationClass.MAJOR if major else d.DeviationClass.MINOR,
        values=f"fraction {fraction.fraction_number}: {got:g} Gy of {planned:g} Gy planned ({ratio:.1%} of the MU)",
        reason=f"fraction {fraction.fraction_number} on {fraction.date} was partial: a beam ended early or "
        f"delivered more than 1% off its meterset ({ratio:.1%} of the planned MU)",
        lesion_id=fraction.lesion_id,
        recorded_by=f"abscopal for {actor.username}",
        date=fraction.date,
    )
    uow.deviations.add(deviation)
    return (deviation,)


__all__ = [
    "KINDS",
    "DicomFile",
    "PlanImported",
    "RecordsImported",
    "import_plan",
    "import_records",
    "read",
]
