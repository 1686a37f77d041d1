"""REDCap import (interop.md §5): a project's "CDISC ODM (XML)" export or its CSV data export + data dictionary,
mapped by a TOML file onto Abscopal records and written through the use cases in one transaction.

All or nothing (interop.md §1.5): every problem is collected with its location (record, event, instrument,
instance, field, line) and raised as one :class:`~abscopal.errors.InputFileError`; nothing is committed unless
the whole file imports. The dry run runs the same use cases and rolls back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import re
import string
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pydantic
from lxml import etree
from pydantic import BaseModel, ConfigDict, model_validator
from sqlalchemy.engine import Engine

from abscopal import domain as d
from abscopal import validation
from abscopal.errors import AbscopalError, InputFileError, PermissionDenied, Problem
from abscopal.inputs import decode_text, parse_csv, read_input_bytes
from abscopal.protocol.calendar import questionnaire_visit_codes
from abscopal.protocol.model import Protocol, ProtocolFile, load_bundled
from abscopal.qol import ITEMS
from abscopal.qol.eortc import check_answer
from abscopal.safety.ctcae import load_ctcae
from abscopal.safety.events import check_adverse_event
from abscopal.services import lesions, questionnaires, safety, screening, treatment
from abscopal.services.common import Actor, StaffRole
from abscopal.services.ports import UnitOfWorkLike
from abscopal.store.unit_of_work import UnitOfWork

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
REDCAP_NS = "https://projectredcap.org"
_VARIABLE = re.compile(r"^[a-z][a-z0-9_]*$")
_SYSTEM_COLUMNS = (
    "redcap_event_name",
    "redcap_repeat_instrument",
    "redcap_repeat_instance",
    "redcap_data_access_group",
)

# ----------------------------------------------------------------------------- the mapping file


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Strict):
    """One Abscopal field: a REDCap ``field`` (typed, optionally through ``codes``), a constant ``value``, or a
    ``checkbox`` option (``code``) read as a boolean."""

    field: str | None = None
    type: Literal["str", "int", "float", "date", "bool"] = "str"
    codes: dict[str, str] | None = None
    value: str | int | float | bool | None = None
    checkbox: str | None = None
    code: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        given = [n for n in ("field", "value", "checkbox") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of field, value or checkbox")
        if (self.checkbox is None) != (self.code is None):
            raise ValueError("a checkbox needs its code (and code belongs to a checkbox)")
        return self


Spec = str | FieldSpec  # a str is a format string: "{record_id}-AE{instance:02d}"


class Source(_Strict):
    kind: Literal["redcap"]
    project: str
    record_id_field: str = "record_id"
    require_complete: bool = True
    ignore: list[str] = []
    identifier_ok: list[str] = []


class Expand(_Strict):
    """Questionnaire items: ``item = "1-30"``, ``field = "c30_q{item:02d}"``, ``instrument = "QLQ-C30"``."""

    item: str
    field: str
    instrument: d.Instrument

    def items(self) -> list[int]:
        low, _, high = self.item.partition("-")
        return list(range(int(low), int(high or low) + 1))

    @model_validator(mode="after")
    def _range(self) -> Expand:
        if not re.fullmatch(r"\d+(-\d+)?", self.item):
            raise ValueError(f"item {self.item!r} is not a range such as 1-30")
        known = {i.number for i in ITEMS if i.instrument is self.instrument}
        if missing := [n for n in self.items() if n not in known]:
            raise ValueError(f"{self.instrument.value} has no item {missing[0]}")
        return self


ENTITIES: dict[str, type] = {
    "screenings": d.Screening,
    "immunotherapy_histories": d.ImmunotherapyHistory,
    "immunotherapy_cycles": d.ImmunotherapyCycle,
    "lesions": d.Lesion,
    "adverse_events": d.AdverseEvent,
    "questionnaire_answers": d.QuestionnaireAnswer,
}
_QUESTIONNAIRE_FIELDS = frozenset({"completed_on", "instrument_version"})


class RecordMap(_Strict):
    entity: Literal[
        "screenings", "immunotherapy_histories", "immunotherapy_cycles", "lesions", "adverse_events",
        "questionnaire_answers",
    ]  # fmt: skip
    instrument: str
    fields: dict[str, Spec] = {}
    expand: Expand | None = None

    @model_validator(mode="after")
    def _known_fields(self) -> RecordMap:
        if self.entity == "questionnaire_answers":
            if self.expand is None:
                raise ValueError("questionnaire_answers needs expand = {item, field, instrument}")
            allowed = _QUESTIONNAIRE_FIELDS
        else:
            if self.expand is not None:
                raise ValueError("expand is for questionnaire_answers only")
            allowed = validation.fields_of(ENTITIES[self.entity]) - {"subject_id"}
        for name in self.fields:
            if name not in allowed:
                raise ValueError(f"fields.{name}: is not a field of {self.entity} (a typo?)")
        return self


class Mapping_(_Strict):
    source: Source
    subject: dict[str, Spec]
    events: dict[str, str] = {}
    records: list[RecordMap] = []

    @model_validator(mode="after")
    def _subject(self) -> Mapping_:
        allowed = validation.fields_of(d.Patient)
        for name in self.subject:
            if name not in allowed:
                raise ValueError(f"subject.{name}: is not a field of a patient (a typo?)")
        for required in ("subject_id", "site_code"):
            if required not in self.subject:
                raise ValueError(f"subject.{required}: is required")
        return self


def _key_of(loc: tuple[int | str, ...]) -> str:
    """The TOML key of a pydantic error location (union branch names dropped): ``records[2].fields.grade``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("str", "FieldSpec") and not part.startswith("function-"):
            out += ("." if out else "") + part
    return out


def _mapping_problems(exc: pydantic.ValidationError) -> list[Problem]:
    """One problem per key; a value that is neither a format string nor a table names the table's problem."""
    errors = exc.errors()
    tables = {_key_of(e["loc"][:-1]) for e in errors if any("FieldSpec" in str(part) for part in e["loc"])}
    problems: list[Problem] = []
    for err in errors:
        key = _key_of(err["loc"])
        if err["loc"] and err["loc"][-1] == "str" and key in {t.rsplit(".", 1)[0] for t in tables} | tables:
            continue  # the string branch of a table value: the table's own error says more
        reason = (
            "unknown key (a typo?)" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        )
        sub, sep, rest = reason.partition(": ")
        if sep and re.fullmatch(r"[\w.\[\]]+", sub):  # a validator names the key below its model
            key, reason = (f"{key}.{sub}" if key else sub), rest
        if Problem(None, key, reason) not in problems:
            problems.append(Problem(None, key, reason))
    return problems


def load_mapping(path: str | Path, protocol: Protocol | None = None) -> Mapping_:
    """Read and check the mapping file; every problem (unknown key, bad visit code) names its key."""
    source = str(path)
    text = decode_text(read_input_bytes(path), source)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputFileError(
            source, [Problem(getattr(exc, "lineno", None), "", f"is not valid TOML ({exc})")]
        ) from None
    try:
        mapping = Mapping_.model_validate(raw)
    except pydantic.ValidationError as exc:
        problems = _mapping_problems(exc)
        raise InputFileError(source, problems) from None
    codes = questionnaire_visit_codes((protocol or load_bundled().current).schedule)
    bad = [
        Problem(None, f"events.{event}", f"{visit!r} is not a visit code of the protocol ({', '.join(codes[:4])}, ...)")
        for event, visit in mapping.events.items()
        if visit not in codes
    ]
    if bad:
        raise InputFileError(source, bad)
    return mapping


# ----------------------------------------------------------------------------- the export, read


@dataclass
class FormData:
    """One instrument instance of one record in one event, as the export holds it (raw codes)."""

    record: str
    event: str
    instrument: str
    instance: int | None
    values: dict[str, str]
    status: str | None
    line: int | None
    field_lines: dict[str, int] = field(default_factory=dict)

    def where(self, name: str = "") -> str:
        inst = f" #{self.instance}" if self.instance is not None else ""
        return f"record {self.record}, {self.event or '(no event)'}, {self.instrument}{inst}" + (
            f", {name}" if name else ""
        )


@dataclass
class Export:
    """An export reduced to what the import needs, whichever route it came by."""

    source: str
    project: str | None
    variables: dict[str, str]  # variable -> instrument (checkbox variables without ___code)
    identifiers: set[str]
    checkbox: set[str]
    events: list[str]
    forms: list[FormData]
    problems: list[Problem]
    designated: set[tuple[str, str]] | None = None  # (event, instrument) the project allows; None = unknown


def _base(column: str) -> str:
    return column.split("___", 1)[0]


def read_odm(data: bytes, source: str) -> Export:
    """A REDCap "CDISC ODM (XML)" export: parsed safely (no entities, no network), not schema-validated."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise InputFileError(source, [Problem(exc.lineno, "", f"is not well-formed XML ({exc.msg})")]) from None
    problems: list[Problem] = []
    ns = {"o": ODM_NS, "r": REDCAP_NS}
    if etree.QName(root).localname != "ODM" or etree.QName(root).namespace != ODM_NS:
        raise InputFileError(source, [Problem(root.sourceline, "ODM", "the root element is not an ODM 1.3 <ODM>")])
    if root.get("SourceSystem") != "REDCap":
        problems.append(Problem(root.sourceline, "SourceSystem", f"is {root.get('SourceSystem')!r}, not 'REDCap'"))
    study = root.find("o:Study", ns)
    project = study.get("OID") if study is not None else None
    variables: dict[str, str] = {}
    identifiers: set[str] = set()
    checkbox: set[str] = set()
    events: list[str] = []
    designated: set[tuple[str, str]] = set()
    if study is not None:
        items = {i.get("OID"): i for i in study.iterfind(".//o:ItemDef", ns)}
        groups = {g.get("OID"): g for g in study.iterfind(".//o:ItemGroupDef", ns)}
        for ev in study.iterfind(".//o:StudyEventDef", ns):
            events.append((ev.get("OID") or "").removeprefix("Event."))
            designated |= {
                (events[-1], (ref.get("FormOID") or "").removeprefix("Form.")) for ref in ev.iterfind("o:FormRef", ns)
            }
        for form in study.iterfind(".//o:FormDef", ns):
            instrument = (form.get("OID") or "").removeprefix("Form.")
            for gref in form.iterfind("o:ItemGroupRef", ns):
                group = groups.get(gref.get("ItemGroupOID"))
                if group is None:
                    continue
                for iref in group.iterfind("o:ItemRef", ns):
                    oid = iref.get("ItemOID") or ""
                    item = items.get(oid)
                    name = item.get(f"{{{REDCAP_NS}}}Variable", _base(oid)) if item is not None else _base(oid)
                    if "___" in oid or (item is not None and item.get(f"{{{REDCAP_NS}}}FieldType") == "checkbox"):
                        checkbox.add(name)
                    if item is not None and item.get(f"{{{REDCAP_NS}}}Identifier") == "y":
                        identifiers.add(name)
                    if oid != f"{instrument}_complete":
                        variables.setdefault(name, instrument)
    repeating_events = {
        e.get(f"{{{REDCAP_NS}}}UniqueEventName") for e in root.iterfind(".//r:RepeatingEvent", ns)
    }  # an event repeats as a whole: its forms' instance is the StudyEventRepeatKey
    forms: list[FormData] = []
    for subject in root.iterfind("o:ClinicalData/o:SubjectData", ns):
        record = subject.get("SubjectKey") or ""
        for ev in subject.iterfind("o:StudyEventData", ns):
            event = (ev.get("StudyEventOID") or "").removeprefix("Event.")
            for form in ev.iterfind("o:FormData", ns):
                instrument = (form.get("FormOID") or "").removeprefix("Form.")
                key = form.get("FormRepeatKey") or (
                    ev.get("StudyEventRepeatKey") if event in repeating_events else None
                )
                instance: int | None = None
                if key is not None:
                    if not key.isdigit():
                        problems.append(Problem(form.sourceline, f"record {record}, {event}, {instrument}",
                                                f"repeat key {key!r} is not a number"))  # fmt: skip
                        continue
                    instance = int(key)
                fd = FormData(record, event, instrument, instance, {}, None, form.sourceline)
                for item in form.iterfind("o:ItemGroupData/o:ItemData", ns):
                    oid = item.get("ItemOID") or ""
                    value = item.get("Value") or ""
                    if oid == f"{instrument}_complete":
                        fd.status = value
                    else:
                        fd.values[oid] = value
                        fd.field_lines[oid] = item.sourceline or 0
                forms.append(fd)
    return Export(
        source, project, variables, identifiers, checkbox, events, forms, problems, designated if events else None
    )


def read_dictionary(data: bytes, source: str) -> tuple[dict[str, str], set[str], set[str]]:
    """A REDCap data dictionary: variable -> instrument, the identifier fields and the checkbox fields."""
    table = parse_csv(decode_text(data, source), source, header_case="lower",
                      required=("variable / field name", "form name", "field type"))  # fmt: skip
    variables: dict[str, str] = {}
    identifiers: set[str] = set()
    checkbox: set[str] = set()
    for row in table:
        name = row.get("variable / field name")
        variables[name] = row.get("form name")
        if row.get("field type") == "checkbox":
            checkbox.add(name)
        if row.get("identifier?").lower() == "y":
            identifiers.add(name)
    return variables, identifiers, checkbox


def read_instrument_event_map(data: bytes, source: str) -> set[tuple[str, str]]:
    """REDCap's instrument designation export (``arm_num,unique_event_name,form``): which forms each event has."""
    table = parse_csv(decode_text(data, source), source, header_case="lower", required=("unique_event_name", "form"))
    return {(row.get("unique_event_name"), row.get("form")) for row in table}


def read_csv_export(data: bytes, source: str, dictionary: bytes, dictionary_source: str, record_id: str) -> Export:
    """The CSV "raw data" export, split into instrument instances with the data dictionary's forms."""
    text = decode_text(data, source)  # drops a byte-order mark
    variables, identifiers, checkbox = read_dictionary(dictionary, dictionary_source)
    table = parse_csv(text, source)
    labels = [h for h in table.header if not _VARIABLE.match(h)]
    if labels:
        reason = (
            "is not a REDCap variable name: this looks like a 'labels' export; export the data as "
            "'CSV / Microsoft Excel (raw data)'"
        )
        raise InputFileError(source, [Problem(1, labels[0], reason)])
    problems: list[Problem] = []
    if record_id not in table.header:
        problems.append(Problem(1, record_id, "the record id column ([source].record_id_field) is missing"))
    forms_of: dict[str, list[str]] = {}
    for column in table.header:
        if column in _SYSTEM_COLUMNS or column == record_id:
            continue
        if column.endswith(("_complete", "_timestamp")) and column.rsplit("_", 1)[0] in variables.values():
            forms_of.setdefault(column.rsplit("_", 1)[0], [])
            continue
        form = variables.get(_base(column))
        if form is None:
            problems.append(Problem(1, column, "is not in the data dictionary"))
            continue
        forms_of.setdefault(form, []).append(column)
    events: list[str] = []
    forms: list[FormData] = []
    for row in table:
        event = row.get("redcap_event_name")
        if event and event not in events:
            events.append(event)
        repeat = row.get("redcap_repeat_instrument")
        raw_instance = row.get("redcap_repeat_instance")
        instance: int | None = None
        if raw_instance:
            if not raw_instance.isdigit():
                problems.append(Problem(row.line, "redcap_repeat_instance", f"{raw_instance!r} is not a number"))
                continue
            instance = int(raw_instance)
        for form, columns in forms_of.items():
            if repeat and form != repeat:
                continue
            values = {c: row.get(c) for c in columns}
            status = row.get(f"{form}_complete") or None
            if not repeat and not status and not any(values.values()):
                continue  # this form is not in this row's event
            fd = FormData(row.get(record_id), event, form, instance if repeat else None, values, status, row.line)
            fd.field_lines = {c: row.line for c in columns}
            forms.append(fd)
    return Export(source, None, variables, identifiers, checkbox, events, forms, problems)


# ----------------------------------------------------------------------------- building records


@dataclass
class Planned:
    """One record to write (or an item set of a questionnaire) with where it came from."""

    entity: str
    subject_id: str
    value: Any
    where: str
    line: int | None
    origin: dict[str, str] = field(default_factory=dict)  # Abscopal field -> REDCap field
    mapped: frozenset[str] = frozenset()  # the fields the mapping sets: the import owns these, Abscopal the rest

    def onto(self, stored: Any) -> Any:
        """The stored record with the mapped fields replaced by the export's (other fields are Abscopal's own:
        status, RT roles, awareness times...)."""
        return dataclasses.replace(stored, **{f: getattr(self.value, f) for f in self.mapped})


@dataclass
class Report:
    """What the dry run prints and the real run returns (interop.md §5, procedure step 1)."""

    source: str
    sha256: str
    project: str | None
    events_mapped: dict[str, str] = field(default_factory=dict)
    events_unmapped: list[str] = field(default_factory=list)
    instruments_mapped: list[str] = field(default_factory=list)
    instruments_not_mapped: list[str] = field(default_factory=list)  # read for [subject] only, or ignored
    fields_mapped: list[str] = field(default_factory=list)
    fields_ignored: list[str] = field(default_factory=list)
    fields_unaccounted: list[str] = field(default_factory=list)
    skipped_incomplete: int = 0
    skipped_records: list[str] = field(default_factory=list)  # the patient's own form not complete: all skipped
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    written: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def count(self, entity: str, outcome: str) -> None:
        per = self.counts.setdefault(entity, {"new": 0, "identical": 0, "conflicting": 0})
        per[outcome] += 1

    def as_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["problems"] = [p.sentence() for p in self.problems]
        return out


def _format(template: str, **values: Any) -> str:
    return string.Formatter().format(template, **values)


def _convert(raw: str, spec: FieldSpec) -> tuple[Any, str | None]:
    """(value, None) or (None, reason) for one raw REDCap value; blank is None."""
    if raw == "":
        return None, None
    if spec.codes is not None:
        if raw not in spec.codes:
            return None, f"{raw!r} is not one of the mapped codes ({', '.join(spec.codes)})"
        raw = spec.codes[raw]
    try:
        match spec.type:
            case "int":
                if not re.fullmatch(r"-?\d+", raw):
                    raise ValueError
                return int(raw), None
            case "float":
                if not re.fullmatch(r"-?(\d+\.?\d*|\.\d+)", raw):  # no nan, inf or exponent: REDCap "number"
                    raise ValueError
                return float(raw), None
            case "date":
                if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
                    raise ValueError
                return dt.date.fromisoformat(raw), None
            case "bool":
                if raw not in ("0", "1"):
                    raise ValueError
                return raw == "1", None
    except ValueError:
        what = {"int": "a whole number", "float": "a number", "date": "a date (YYYY-MM-DD)", "bool": "1 or 0"}
        return None, f"{raw!r} is not {what[spec.type]}"
    return raw, None


def _value(spec: Spec, form: FormData, context: Mapping[str, Any]) -> tuple[Any, str | None, str]:
    """(value, problem, REDCap field) of one mapped Abscopal field in one form instance."""
    if isinstance(spec, str):
        try:
            return _format(spec, **context), None, ""
        except (KeyError, ValueError, IndexError) as exc:
            return None, f"format {spec!r} cannot be filled ({exc})", ""
    if spec.value is not None:
        return spec.value, None, ""
    if spec.checkbox is not None:
        column = f"{spec.checkbox}___{spec.code}"
        raw = form.values.get(column, "")
        if raw not in ("", "0", "1"):
            return None, f"{raw!r} is not 1 or 0", column
        return raw == "1", None, column
    assert spec.field is not None
    value, problem = _convert(form.values.get(spec.field, ""), spec)
    return value, problem, spec.field


def _referenced(spec: Spec) -> list[str]:
    if isinstance(spec, FieldSpec):
        if spec.field:
            return [spec.field]
        if spec.checkbox:
            return [spec.checkbox]
    return []


def _account(mapping: Mapping_, export: Export, report: Report) -> None:
    """Fields mapped / ignored / unaccounted (unaccounted and unapproved identifiers block the import)."""
    mapped: set[str] = {mapping.source.record_id_field}
    for spec in mapping.subject.values():
        mapped.update(_referenced(spec))
    for rec in mapping.records:
        for spec in rec.fields.values():
            mapped.update(_referenced(spec))
        if rec.expand is not None:
            mapped.update(_format(rec.expand.field, item=n) for n in rec.expand.items())
    ignored = set(mapping.source.ignore)
    for name in sorted(mapped - set(export.variables) - {mapping.source.record_id_field}):
        report.problems.append(Problem(None, name, "the mapping reads this field but the export has no such variable"))
    for name, instrument in export.variables.items():
        if name in mapped:
            report.fields_mapped.append(name)
            if name in export.identifiers and name not in mapping.source.identifier_ok:
                why = "is an identifier field: list it in [source].identifier_ok to import it, or in [source].ignore"
                report.problems.append(Problem(None, f"{instrument}.{name}", why))
        elif name in ignored:
            report.fields_ignored.append(name)
        else:
            report.fields_unaccounted.append(name)
            report.problems.append(Problem(None, f"{instrument}.{name}", "is neither mapped nor in [source].ignore: "
                                           "map it or ignore it"))  # fmt: skip
    instruments = set(export.variables.values())
    for i, rec in enumerate(mapping.records):
        if rec.instrument not in instruments:
            why = f"the export has no instrument {rec.instrument!r} ({', '.join(sorted(instruments))})"
            report.problems.append(Problem(None, f"records[{i}].instrument", why))
            continue
        names = [n for spec in rec.fields.values() for n in _referenced(spec)]
        if rec.expand is not None:
            names += [_format(rec.expand.field, item=n) for n in rec.expand.items()]
        for name in names:
            if name in export.variables and export.variables[name] != rec.instrument:
                why = f"is a field of {export.variables[name]}, not of {rec.instrument}: a record reads one instrument"
                report.problems.append(Problem(None, f"records[{i}].{name}", why))
    report.instruments_mapped = sorted({r.instrument for r in mapping.records})
    report.instruments_not_mapped = sorted(set(export.variables.values()) - set(report.instruments_mapped))
    if export.designated is not None:
        seen: set[tuple[str, str, str]] = set()
        for form in export.forms:
            where = (form.record, form.event, form.instrument)
            if form.event and (form.event, form.instrument) not in export.designated and where not in seen:
                seen.add(where)
                why = f"the project does not designate {form.instrument} for {form.event} (instrument-event map)"
                report.problems.append(Problem(form.line, form.where(), why))
    with_data = {f.event for f in export.forms if f.event}
    for event in sorted(with_data - set(mapping.events)):
        report.problems.append(Problem(None, f"event {event}", "has data but is not in [events]: map it to a visit"))
    for event in [*export.events, *sorted(with_data - set(export.events))]:
        if event in mapping.events:
            report.events_mapped[event] = mapping.events[event]
        else:
            report.events_unmapped.append(event)


def _problem(form: FormData, name: str, reason: str) -> Problem:
    line = form.field_lines.get(name, form.line) if name else form.line
    return Problem(line, form.where(name), reason)


def _build(mapping: Mapping_, export: Export, protocol: Protocol, today: dt.date, report: Report) -> list[Planned]:
    """Every record the export maps to, each value typed and checked by the shared schema (all problems kept)."""
    limits, schedule = protocol.plausibility, protocol.schedule
    by_record: dict[str, list[FormData]] = {}
    for form in export.forms:
        by_record.setdefault(form.record, []).append(form)
    # the instruments [subject] reads (demographics): with require_complete, only their Complete forms count
    subject_instruments = {
        export.variables[n] for spec in mapping.subject.values() for n in _referenced(spec) if n in export.variables
    }
    planned: list[Planned] = []
    for record, forms in by_record.items():
        if not record:
            report.problems.append(Problem(forms[0].line, mapping.source.record_id_field, "the record id is blank"))
            continue
        own = [f for f in forms if f.instance is None and f.instrument in subject_instruments]
        complete = {f.instrument for f in own if f.status == "2"}
        unverified = [f for f in own if f.status != "2"] if mapping.source.require_complete else []
        if {f.instrument for f in unverified} - complete:
            # a subject instrument with no Complete form: no patient, so none of the record's forms either
            report.skipped_incomplete += len(unverified)
            report.skipped_records.append(record)
            continue
        report.skipped_incomplete += len(unverified)  # a second, unverified copy beside a Complete one
        # the patient: first non-blank value of each field over the record's non-repeating forms
        merged = FormData(record, forms[0].event, "[subject]", None, {}, "2", forms[0].line)
        for f in forms:
            if f.instance is None and all(f is not u for u in unverified):
                for k, v in f.values.items():
                    if v and not merged.values.get(k):
                        merged.values[k] = v
                        merged.field_lines[k] = f.field_lines.get(k, f.line or 0)
        context = {"record_id": record, "instance": 1, "event": ""}
        data: dict[str, Any] = {}
        origin: dict[str, str] = {}
        bad: set[str] = set()  # fields whose value could not be read
        for name, spec in mapping.subject.items():
            value, problem, column = _value(spec, merged, context)
            if problem:
                report.problems.append(_problem(merged, column, problem))
                bad.add(name)
            elif value is not None:
                data[name] = value
            origin[name] = column
        data.setdefault("protocol_version", protocol.version.number)
        patient, found = validation.parse_record(d.Patient, data, limits, today)
        for p in found:
            if p.field not in bad:  # an unreadable value is reported once, not again as missing
                report.problems.append(_problem(merged, origin.get(p.field, ""), f"{p.field}: {p.reason}"))
        if patient is None or bad:
            continue
        owned = frozenset(mapping.subject) - {"protocol_version"}  # the use case sets the protocol version
        planned.append(Planned("patients", patient.subject_id, patient, merged.where(), merged.line, origin, owned))
        for rec in mapping.records:
            for form in forms:
                if form.instrument != rec.instrument:
                    continue
                if mapping.source.require_complete and form.status != "2":
                    report.skipped_incomplete += 1
                    continue
                planned += _build_form(rec, form, patient.subject_id, mapping, limits, schedule, today, report)
    return planned


def _build_form(
    rec: RecordMap, form: FormData, subject_id: str, mapping: Mapping_, limits: Any, schedule: Any,
    today: dt.date, report: Report,
) -> list[Planned]:  # fmt: skip
    context = {"record_id": form.record, "instance": form.instance or 1, "event": form.event}
    data: dict[str, Any] = {}
    origin: dict[str, str] = {}
    bad: set[str] = set()  # fields whose value could not be read
    for name, spec in rec.fields.items():
        value, problem, column = _value(spec, form, context)
        if problem:
            report.problems.append(_problem(form, column, problem))
            bad.add(name)
        elif value is not None:
            data[name] = value
        origin[name] = column
    if rec.entity == "questionnaire_answers":
        assert rec.expand is not None
        visit = mapping.events.get(form.event)
        if visit is None:
            report.problems.append(_problem(form, "", f"event {form.event!r} is not in [events]: map it to a visit"))
            return []
        out: list[Planned] = []
        answers: dict[int, int | None] = {}
        for n in rec.expand.items():
            column = _format(rec.expand.field, item=n)
            value, problem = _convert(form.values.get(column, ""), FieldSpec(field=column, type="int"))
            if problem is None:
                try:
                    check_answer(rec.expand.instrument, n, value)
                except AbscopalError as exc:
                    problem = getattr(exc, "reason", str(exc))
            if problem:
                report.problems.append(_problem(form, column, problem))
                bad.add(column)
                continue
            answers[n] = value
        if bad:
            return []
        for n, answer in answers.items():
            item_data = {"visit": visit, "instrument": rec.expand.instrument, "item": n, "answer": answer, **data}
            record, found = validation.parse_record(
                d.QuestionnaireAnswer, item_data, limits, today, schedule=schedule, subject_id=subject_id
            )
            for p in found:
                report.problems.append(_problem(form, origin.get(p.field, ""), f"{p.field}: {p.reason}"))
            if record is not None:
                out.append(Planned(rec.entity, subject_id, record, form.where(), form.line, origin))
        return out
    if rec.entity == "lesions":
        data.setdefault("rt_role", d.RtRole.NONE)
    record, found = validation.parse_record(ENTITIES[rec.entity], data, limits, today, subject_id=subject_id)
    if isinstance(record, d.AdverseEvent):  # CTCAE v5.0 term, code and grade, as the use case checks them
        found += [Problem(None, e.field, e.reason) for e in check_adverse_event(record, load_ctcae())]
    for p in found:
        if p.field.split(".")[0] not in bad:  # an unreadable value is reported once, not again as missing
            report.problems.append(_problem(form, origin.get(p.field.split(".")[0], ""), f"{p.field}: {p.reason}"))
    if record is None or bad or found:
        return []
    return [Planned(rec.entity, subject_id, record, form.where(), form.line, origin, frozenset(rec.fields))]


# ----------------------------------------------------------------------------- writing through the use cases

_REPOSITORY = {
    "patients": "patients", "screenings": "screenings", "immunotherapy_histories": "immunotherapy_histories",
    "immunotherapy_cycles": "immunotherapy_cycles", "lesions": "lesions", "adverse_events": "adverse_events",
    "questionnaire_answers": "answers",
}  # fmt: skip
_NATURAL = {
    "patients": ("subject_id",), "screenings": ("subject_id",),
    "immunotherapy_histories": ("subject_id", "agent", "start_date"),
    "immunotherapy_cycles": ("subject_id", "cycle_number"), "lesions": ("subject_id", "lesion_id"),
    "adverse_events": ("subject_id", "ae_id"), "questionnaire_answers": ("subject_id", "visit", "instrument", "item"),
}  # fmt: skip
_ORDER = ("patients", "screenings", "immunotherapy_histories", "lesions", "immunotherapy_cycles", "adverse_events",
          "questionnaire_answers")  # fmt: skip


def _write(uow: UnitOfWork, actor: Actor, planned: list[Planned], update: bool, report: Report,
           progress: Callable[[int], None] | None, protocols: ProtocolFile | None = None) -> None:  # fmt: skip
    """Each planned record through its use case, in a savepoint; every refusal is kept as a problem.

    ``protocols``: the protocol file the use cases check against, read once for the import (each use case
    would otherwise read and parse the bundled TOML again for every record)."""
    port: UnitOfWorkLike = uow  # the store satisfies the services' protocol structurally
    failed_subjects: set[str] = set()
    questionnaires_: dict[tuple[str, str, d.Instrument], list[Planned]] = {}
    for p in sorted(planned, key=lambda x: _ORDER.index(x.entity)):
        if p.entity == "questionnaire_answers":
            key = (p.subject_id, p.value.visit, p.value.instrument)
            questionnaires_.setdefault(key, []).append(p)
            continue
        if p.subject_id in failed_subjects:
            continue
        repo = getattr(uow, _REPOSITORY[p.entity])
        found = repo.find(**{k: getattr(p.value, k) for k in _NATURAL[p.entity]})
        value = p.value if found is None else p.onto(found.value)
        if found is not None and found.value == value:
            report.count(p.entity, "identical")
            continue
        report.count(p.entity, "new" if found is None else "conflicting")
        if found is not None and not update:
            report.problems.append(Problem(p.line, p.where, f"{p.entity} {_describe(p)} is already stored with other "
                                           "values; rerun with --update to replace them"))  # fmt: skip
            continue
        if found is not None and p.entity == "patients":
            report.problems.append(Problem(p.line, p.where, f"patient {p.subject_id} is already registered with "
                                           "other values; no use case edits a registered patient"))  # fmt: skip
            continue
        ident = {"record_id": found.id, "version": found.version} if found is not None else {}
        ok = _attempt(
            uow, p, report, functools.partial(_CALL[p.entity], port, actor, value, protocols=protocols, **ident)
        )
        if not ok and p.entity == "patients":
            failed_subjects.add(p.subject_id)
        if progress:
            progress(1)
    stored_answers: dict[str, dict[tuple[str, d.Instrument, int], Any]] = {}
    for (subject_id, visit, instrument), items in questionnaires_.items():
        if subject_id in failed_subjects:
            continue
        if subject_id not in stored_answers:  # one query per patient, not one per item (groups share no item)
            stored_answers[subject_id] = {
                (s.value.visit, s.value.instrument, s.value.item): s for s in uow.answers.for_subject(subject_id)
            }
        answers: dict[int, int | None] = {}
        versions: dict[int, int] = {}
        completed_on = None
        for p in items:
            found = stored_answers[subject_id].get((visit, instrument, p.value.item))
            completed_on = p.value.completed_on
            if found is not None and found.value == p.value:
                report.count(p.entity, "identical")
                continue
            report.count(p.entity, "new" if found is None else "conflicting")
            if found is not None:
                if not update:
                    report.problems.append(Problem(p.line, p.where, f"{instrument.value} item {p.value.item} at "
                                                   f"{visit} is already stored with another answer; rerun with "
                                                   "--update to replace it"))  # fmt: skip
                    continue
                versions[p.value.item] = found.version
            answers[p.value.item] = p.value.answer
        if answers:
            first = items[0]
            if completed_on is None:
                report.problems.append(Problem(first.line, first.where, "completed_on: a questionnaire needs the "
                                               "date it was completed (map completed_on)"))  # fmt: skip
                continue
            call = functools.partial(
                questionnaires.record_questionnaire, port, actor, subject_id, visit, instrument, answers,
                completed_on=completed_on, versions=versions, protocols=protocols,
            )  # fmt: skip
            _attempt(uow, first, report, call)
        if progress:
            progress(1)


def _describe(p: Planned) -> str:
    return ", ".join(f"{k}={getattr(p.value, k)}" for k in _NATURAL[p.entity])


def _attempt(uow: UnitOfWork, p: Planned, report: Report, call: Callable[[], object]) -> bool:
    savepoint = uow.connection.begin_nested()
    try:
        call()
    except AbscopalError as exc:
        savepoint.rollback()
        field_name = getattr(exc, "field", "")
        column = p.origin.get(str(field_name).split(".")[0], "")
        where = f"{p.where}, {column}" if column else p.where
        report.problems.append(Problem(p.line, where, str(exc)))
        return False
    savepoint.commit()
    return True


_CALL: dict[str, Callable[..., object]] = {
    "patients": lambda uow, actor, v, protocols=None: screening.register_patient(uow, actor, v, protocols=protocols),
    "screenings": screening.record_screening,
    "immunotherapy_histories": screening.record_immunotherapy_history,
    "immunotherapy_cycles": treatment.record_immunotherapy_cycle,
    "lesions": lesions.record_lesion,
    "adverse_events": safety.record_adverse_event,
}


# ----------------------------------------------------------------------------- the import


#: Called once with the number of records to write; returns the callback advanced after each one.
Progress = Callable[[int], Callable[[int], None]]


@dataclass(frozen=True)
class ImportFiles:
    export: Path
    mapping: Path
    dictionary: Path | None = None
    instrument_events: Path | None = None  # CSV route: the instrument-event map (optional)


def read_export(files: ImportFiles, mapping: Mapping_) -> tuple[Export, bytes]:
    """Read the export by its route: XML (ODM) or CSV (+ the data dictionary)."""
    data = read_input_bytes(files.export)
    source = str(files.export)
    if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return read_odm(data, source), data
    if files.dictionary is None:
        raise InputFileError(source, [Problem(None, "--dictionary", "a CSV export needs the project's data "
                                      "dictionary (Project Setup > Data Dictionary > Download)")])  # fmt: skip
    dictionary = read_input_bytes(files.dictionary)
    export = read_csv_export(data, source, dictionary, str(files.dictionary), mapping.source.record_id_field)
    if files.instrument_events is not None:
        export.designated = read_instrument_event_map(
            read_input_bytes(files.instrument_events), str(files.instrument_events)
        )
    return export, data


def import_redcap(
    engine: Engine, files: ImportFiles, *, user: str, full_name: str | None = None, dry_run: bool = False,
    update: bool = False, today: dt.date | None = None, progress: Progress | None = None,
) -> Report:  # fmt: skip
    """Import (or, with ``dry_run``, check) a REDCap export; raises InputFileError listing every problem when a
    real run cannot import everything, and then nothing is written. A dry run returns the report instead."""
    protocols = load_bundled()
    protocol = protocols.current
    mapping = load_mapping(files.mapping, protocol)
    export, data = read_export(files, mapping)
    digest = hashlib.sha256(data).hexdigest()
    name = files.export.name
    report = Report(str(files.export), digest, export.project, problems=list(export.problems))
    if export.project is not None and export.project != mapping.source.project:
        report.problems.append(Problem(None, "Study OID", f"the export is of {export.project!r}, the mapping of "
                                       f"[source].project = {mapping.source.project!r}"))  # fmt: skip
    _account(mapping, export, report)
    project = export.project or mapping.source.project
    planned = _build(mapping, export, protocol, today or dt.date.today(), report) if report.ok else []
    if report.ok:
        reason = f"imported from REDCap project {project} file {name} (sha256 {digest})"
        with UnitOfWork(engine, user=user, reason=reason) as uow:
            sites = frozenset(s.value.code for s in uow.sites.all())
            account = uow.users.find(username=user)
            if account is not None and account.value.role is not d.Role.DATA_MANAGER:
                raise PermissionDenied(
                    f"{user} is registered as {account.value.role.value.replace('_', ' ')}: a REDCap import is run "
                    "by a data manager (interop.md §7)"
                )
            full_name = full_name or (account.value.full_name if account is not None else None)
            actor = Actor(user, full_name or user, StaffRole.DATA_MANAGER, sites=sites,
                          import_source=f"REDCap project {project} file {name}")  # fmt: skip
            step = progress(len(planned)) if progress else None
            if uow.connection.dialect.name == "postgresql":
                # the import is one transaction of thousands of statements: a generic plan PostgreSQL caches for
                # a prepared statement while the tables still look empty (new, never analysed) scans the rows the
                # import adds, so each statement grows slower (400 records' dry run: 73 s, 23 s with this)
                uow.connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
            with uow.one_transaction():
                _write(uow, actor, planned, update, report, step, protocols)
            if report.ok and not dry_run:
                uow.commit()
                report.written = True
    report.problems.sort(key=lambda p: (p.line is None, p.line or 0))  # file order (stable within a line)
    if not report.ok and not dry_run:
        raise InputFileError(str(files.export), report.problems)
    return report
