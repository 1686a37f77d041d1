"""What an SDTM dataset is, as data: one :class:`DatasetSpec` per dataset feeds XPT, CSV, JSON and define.xml.

A dataset builder is a pure function ``build_<name>(source: SdtmSource) -> list[Dataset]`` (a domain and its
SUPP-- dataset, when it has one). Names ≤ 8 characters, labels ≤ 40 (SAS XPORT v5; SDTMIG 3.4 §2.2), checked by
:func:`check_spec`; values are checked by the writers (≤ 200 bytes, ASCII) before anything is written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from operator import itemgetter
from typing import Any, Literal, overload

from abscopal import domain as d
from abscopal.errors import ValidationError
from abscopal.protocol.model import ProtocolFile
from abscopal.store.records import Stored

DataType = Literal["Char", "Num"]
Core = Literal["Req", "Exp", "Perm"]
Origin = Literal["Collected", "Derived", "Assigned", "Protocol", "Predecessor"]
Value = str | float | int | None


@dataclass(frozen=True)
class Variable:
    """One SDTM variable: name, label, type, core, origin, and where known its codelist and derivation method."""

    name: str
    label: str
    type: DataType = "Char"
    core: Core = "Perm"
    origin: Origin = "Collected"
    codelist: str | None = None  # a codelist OID / name (define.xml CodeListRef)
    method: str | None = None  # a method OID (define.xml MethodDef) for derived variables
    comment: str | None = None  # e.g. why a null is not collected (define.xml def:CommentDef)


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: name, label, class, structure, key variables (the --SEQ sort), and its variables in order."""

    name: str
    label: str
    domain_class: str  # "SPECIAL PURPOSE", "INTERVENTIONS", "EVENTS", "FINDINGS", "TRIAL DESIGN", "RELATIONSHIP"
    structure: str  # e.g. "One record per subject"
    keys: tuple[str, ...]
    variables: tuple[Variable, ...]

    def variable(self, name: str) -> Variable:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(name)

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables)


class RowView(Mapping[str, Value]):
    """One row of :class:`Rows` read as a mapping from variable name to value (no copy)."""

    __slots__ = ("_index", "_names", "_values")

    def __init__(self, names: tuple[str, ...], index: Mapping[str, int], values: tuple[Value, ...]) -> None:
        self._names = names
        self._index = index
        self._values = values

    def __getitem__(self, name: str) -> Value:
        return self._values[self._index[name]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return repr(dict(zip(self._names, self._values, strict=True)))


class Rows(Sequence[Mapping[str, Value]]):
    """A dataset's rows held as tuples in spec order (a large dataset without a dict per row); each row reads as a
    mapping (:class:`RowView`), a column as a list (:func:`column`)."""

    __slots__ = ("memo", "names", "positions", "tuples")

    tuples: list[tuple[Any, ...]]
    #: what the writers learnt of a column once (abscopal.interop.sdtm.writers: its checks and its XPT widths both
    #: read it), by variable name; the rows are not changed once built
    memo: dict[str, Any]

    def __init__(self, names: tuple[str, ...], tuples: list[tuple[Value, ...]]) -> None:
        bad = next((t for t in tuples if len(t) != len(names)), None)
        if bad is not None:
            raise ValidationError("rows", f"a row of {len(bad)} values for {len(names)} variables")
        self.names = names
        self.positions = {n: i for i, n in enumerate(names)}
        self.tuples = tuples
        self.memo = {}

    def __len__(self) -> int:
        return len(self.tuples)

    @overload
    def __getitem__(self, i: int) -> Mapping[str, Value]: ...

    @overload
    def __getitem__(self, i: slice) -> Rows: ...

    def __getitem__(self, i: int | slice) -> Mapping[str, Value] | Rows:
        if isinstance(i, slice):
            return Rows(self.names, self.tuples[i])
        return RowView(self.names, self.positions, self.tuples[i])

    def __iter__(self) -> Iterator[Mapping[str, Value]]:
        names, positions = self.names, self.positions
        return (RowView(names, positions, t) for t in self.tuples)

    def column(self, name: str) -> list[Value]:
        return list(map(itemgetter(self.positions[name]), self.tuples))


class PartRows(Rows):
    """Rows made of shared parts (QS's 2.75 M rows at 10,000 patients): each row a tuple whose items are part
    tuples or values; variable k is at ``where[k]`` = (item, position in that part), position -1 for a value held
    by the row itself. A part many rows share (a subject's ids; a questionnaire's visit, date and EPOCH; an
    item's codes; an answer's result) is held once, not once per row."""

    __slots__ = ("_parts", "where")

    def __init__(self, names: tuple[str, ...], where: Sequence[tuple[int, int]], tuples: list[tuple[Any, ...]]) -> None:
        if len(where) != len(names):
            raise ValidationError("rows", f"{len(where)} places for {len(names)} variables")
        width = 1 + max(p for p, _ in where)
        if any(n != width for n in set(map(len, tuples))):
            raise ValidationError("rows", f"a row not of {width} parts")
        self.names = names
        self.positions = {n: i for i, n in enumerate(names)}
        self.where = tuple(where)
        self.tuples = tuples
        self.memo = {}
        self._parts: dict[int, list[tuple[Any, ...]]] = {}

    def _flat(self, row: tuple[Any, ...]) -> tuple[Value, ...]:
        return tuple(row[p] if i < 0 else row[p][i] for p, i in self.where)

    @overload
    def __getitem__(self, i: int) -> Mapping[str, Value]: ...

    @overload
    def __getitem__(self, i: slice) -> Rows: ...

    def __getitem__(self, i: int | slice) -> Mapping[str, Value] | Rows:
        if isinstance(i, slice):
            return PartRows(self.names, self.where, self.tuples[i])
        return RowView(self.names, self.positions, self._flat(self.tuples[i]))

    def __iter__(self) -> Iterator[Mapping[str, Value]]:
        names, positions = self.names, self.positions
        return (RowView(names, positions, self._flat(t)) for t in self.tuples)

    def column(self, name: str) -> list[Value]:
        p, i = self.where[self.positions[name]]
        if i < 0:
            return list(map(itemgetter(p), self.tuples))
        return list(map(itemgetter(i), map(itemgetter(p), self.tuples)))

    def held(self, name: str) -> int | None:
        """The item of each row holding ``name`` when that item is a shared part (None: a value of the row)."""
        p, i = self.where[self.positions[name]]
        return None if i < 0 else p

    def distinct_parts(self, p: int) -> list[tuple[Any, ...]]:
        """The distinct part objects at item ``p`` of all rows (by identity, in order of first appearance; found
        once per item)."""
        if p not in self._parts:
            self._parts[p] = list({id(x): x for x in map(itemgetter(p), self.tuples)}.values())
        return self._parts[p]

    def parts(self, p: int) -> tuple[list[tuple[Any, ...]], Any]:
        """The distinct part objects at item ``p`` (by identity, in order of first appearance) and each row's
        index among them (a numpy array)."""
        import numpy as np

        held = list(map(itemgetter(p), self.tuples))
        by_id = dict(zip(map(id, held), held, strict=True))  # first appearance order; the same object per id
        position = {k: j for j, k in enumerate(by_id)}
        index = np.fromiter(map(position.__getitem__, map(id, held)), dtype=np.intp, count=len(held))
        return list(by_id.values()), index


def distinct_values(rows: Sequence[Mapping[str, Value]], name: str) -> list[Value]:
    """The values of ``name`` over the rows, each row's at least once (for checks that do not depend on order
    or repetition: types, lengths, ranges): a part-held variable of :class:`PartRows` is read from its
    distinct parts, any other column whole."""
    if isinstance(rows, PartRows):
        p = rows.held(name)
        if p is not None:
            i = rows.where[rows.positions[name]][1]
            return [part[i] for part in rows.distinct_parts(p)]
    return column(rows, name)


def column(rows: Sequence[Mapping[str, Value]], name: str) -> list[Value]:
    """Every row's value of ``name``, in row order."""
    if isinstance(rows, Rows):
        return rows.column(name)
    return [r[name] for r in rows]


@dataclass(frozen=True)
class Dataset:
    """A built dataset: its spec and its rows (each a mapping from variable name to value), in key order."""

    spec: DatasetSpec
    rows: Sequence[Mapping[str, Value]]


@dataclass(frozen=True)
class SdtmSource:
    """Everything the builders read, with the store's stable ids (for --SPID, --LNKID, --LNKGRP), at one cut-off.

    Built from the database by :func:`abscopal.interop.sdtm.source.load_source` (records after ``cutoff``
    dropped as the analysis engines' cut-off does); tests build it directly from domain objects.
    """

    protocols: ProtocolFile
    cutoff: dt.date
    created: dt.datetime  # the export's creation time (a parameter: same input -> identical files)
    sites: Sequence[d.Site] = ()
    patients: Sequence[Stored[d.Patient]] = ()
    screenings: Sequence[Stored[d.Screening]] = ()
    histories: Sequence[Stored[d.ImmunotherapyHistory]] = ()
    adjudications: Sequence[Stored[d.Adjudication]] = ()
    lesions: Sequence[Stored[d.Lesion]] = ()
    courses: Sequence[Stored[d.RadiotherapyCourse]] = ()
    fractions: Sequence[Stored[d.Fraction]] = ()
    cycles: Sequence[Stored[d.ImmunotherapyCycle]] = ()
    deviations: Sequence[Stored[d.ProtocolDeviation]] = ()
    assessments: Sequence[Stored[d.TumourAssessment]] = ()
    adverse_events: Sequence[Stored[d.AdverseEvent]] = ()
    answers: Sequence[Stored[d.QuestionnaireAnswer]] = ()
    options: Mapping[str, str] = field(default_factory=dict)  # e.g. {"birth_date": "year"}
    #: (subject id, visit code, completion date) of the answers, each once, when the answers themselves were not
    #: read (SV's questionnaire visits); None: SV derives them from ``answers``
    answered_visits: Sequence[tuple[str, str, dt.date]] | None = None


NAME_MAX = 8
LABEL_MAX = 40


def check_spec(spec: DatasetSpec) -> None:
    """Refuse a spec that XPT v5 cannot hold: names ≤ 8 (upper case, letters, digits, _), labels ≤ 40 ASCII."""
    for item in (spec.name, *spec.names):
        if len(item) > NAME_MAX or not item.isascii() or not item.replace("_", "A").isalnum() or item != item.upper():
            raise ValidationError(
                f"{spec.name}.{item}", f"is not an SDTM name (≤ {NAME_MAX} upper-case letters/digits)"
            )
    for label, where in ((spec.label, spec.name), *((v.label, f"{spec.name}.{v.name}") for v in spec.variables)):
        if len(label) > LABEL_MAX or not label.isascii():
            raise ValidationError(where, f"label {label!r} is longer than {LABEL_MAX} characters or not ASCII")
    if len(set(spec.names)) != len(spec.names):
        raise ValidationError(spec.name, "names a variable twice")
    missing = [k for k in spec.keys if k not in spec.names]
    if missing:
        raise ValidationError(spec.name, f"key variables {missing} are not variables of the dataset")
