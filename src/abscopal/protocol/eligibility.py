"""Eligibility: every inclusion and exclusion criterion of the protocol as met / not met / unknown, with a sentence.

The semantics of each check kind (``present``, ``range``, ``is_true`` ... of protocols/*.toml) live here ONCE, as
array operations (:func:`decide`, :func:`combine_criterion`, :func:`derive_completeness`, :func:`verdict_codes`).
The scalar path (:func:`evaluate`, one :class:`~abscopal.domain.Screening`) calls them on arrays of length 1;
the vectorised path (:mod:`abscopal.protocol.eligibility_vectorised`) calls them on whole columns.

Three-valued (Kleene) logic with the codes ordered NOT_MET (0) < UNKNOWN (1) < MET (2): an inclusion criterion is
the AND (minimum) of its checks, an exclusion criterion the OR (maximum) of its checks ("met" for an exclusion
means the excluding condition is present). IN8 "complete clinical data" and EX1 "missing key information" follow
from the unknowns of the other criteria (registry inclusion 8, exclusion 1).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from abscopal.domain import Screening
from abscopal.errors import ProtocolError, ValidationError
from abscopal.messages import N_, Joined, Message, Term
from abscopal.protocol import units
from abscopal.protocol.model import (
    AtLeastLevelCheck,
    Check,
    CompleteDataCheck,
    Criterion,
    Eligibility,
    IsFalseCheck,
    IsTrueCheck,
    LabMaxUlnCheck,
    LabMinCheck,
    MissingDataCheck,
    OneOfCheck,
    PresentCheck,
    RangeCheck,
)

Codes = npt.NDArray[np.int8]
Floats = npt.NDArray[np.float64]

NOT_MET: int = 0
UNKNOWN: int = 1
MET: int = 2

# verdict codes
INELIGIBLE: int = 0
INCOMPLETE: int = 1
ELIGIBLE: int = 2


class Status(StrEnum):
    """The outcome of one criterion (for an exclusion, MET means the excluding condition is present)."""

    MET = "met"
    NOT_MET = "not_met"
    UNKNOWN = "unknown"


class Verdict(StrEnum):
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    INCOMPLETE = "incomplete"


STATUS_OF_CODE: dict[int, Status] = {NOT_MET: Status.NOT_MET, UNKNOWN: Status.UNKNOWN, MET: Status.MET}
VERDICT_OF_CODE: dict[int, Verdict] = {
    INELIGIBLE: Verdict.INELIGIBLE,
    INCOMPLETE: Verdict.INCOMPLETE,
    ELIGIBLE: Verdict.ELIGIBLE,
}

DERIVED_KINDS = ("complete_data", "missing_data")
SCREENING_FIELDS = frozenset(Screening.__slots__) - {"labs", "subject_id", "screening_date"}


# ----------------------------------------------------------------------------- the rules, as array operations


def _tri(known: npt.NDArray[np.bool_], passed: npt.NDArray[np.bool_]) -> Codes:
    codes: Codes = np.full(known.shape, UNKNOWN, dtype=np.int8)
    codes[known & passed] = MET
    codes[known & ~passed] = NOT_MET
    return codes


_NONE = np.array(None, dtype=object)


def _recorded(datum: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Elements of an object array that are recorded (None marks "not recorded")."""
    recorded: npt.NDArray[np.bool_] = np.not_equal(datum, _NONE).astype(bool)
    return recorded


def decide(check: Check, datum: npt.NDArray[Any]) -> Codes:
    """Code of ``check`` for each element of ``datum`` (the check's input, NaN/None when not recorded).

    ``datum`` is: bool (recorded?) for ``present``; float for ``range``, ``is_true``, ``is_false``; the value in
    the protocol's unit for ``lab_min``; value / ULN for ``lab_max_uln``; objects (None if missing) for
    ``one_of`` and ``at_least_level``. Plain numpy throughout, so one element or a million cost little.
    """
    kind = check.kind
    if kind == "present":
        return np.where(datum.astype(bool), MET, UNKNOWN).astype(np.int8)
    if kind in ("one_of", "at_least_level"):
        known = _recorded(datum)
        if isinstance(check, OneOfCheck):
            member = np.zeros(datum.shape, dtype=bool)
            for value in check.values:
                member |= np.equal(datum, value).astype(bool)
            return _tri(known, member)
        assert isinstance(check, AtLeastLevelCheck)
        rank = np.full(datum.shape, -1, dtype=np.int64)
        for i, level in enumerate(check.order):
            rank[np.equal(datum, level).astype(bool)] = i
        bad = known & (rank < 0)
        if bad.any():
            value = datum[np.flatnonzero(bad)[0]]
            refusal = Message(
                N_("{value} is not one of {values}"), value=repr(str(value)), values=Joined(", ", check.order)
            )
            raise ValidationError(check.field, refusal)
        return _tri(known, rank >= check.order.index(check.level))
    x = np.asarray(datum, dtype=np.float64)
    known = ~np.isnan(x)
    with np.errstate(invalid="ignore"):
        if isinstance(check, RangeCheck):
            ok = np.ones(x.shape, dtype=bool)
            if check.min is not None:
                ok &= (x >= check.min) if check.min_inclusive else (x > check.min)
            if check.max is not None:
                ok &= (x <= check.max) if check.max_inclusive else (x < check.max)
            return _tri(known, ok)
        if isinstance(check, IsTrueCheck):
            return _tri(known, x == 1.0)
        if isinstance(check, IsFalseCheck):
            return _tri(known, x == 0.0)
        if isinstance(check, LabMinCheck):
            return _tri(known, x >= check.min)
        if isinstance(check, LabMaxUlnCheck):
            return _tri(known, x <= check.max_x_uln)
    raise ValueError(f"check kind {check.kind!r} is derived; use derive_completeness")  # pragma: no cover


def combine_criterion(codes: Sequence[Codes], exclusion: bool) -> Codes:
    """An inclusion is the AND of its checks (minimum code); an exclusion the OR of its checks (maximum)."""
    stacked = np.vstack(codes)
    combined: Codes = (stacked.max(axis=0) if exclusion else stacked.min(axis=0)).astype(np.int8)
    return combined


def any_unknown(criterion_codes: Iterable[Codes]) -> npt.NDArray[np.bool_]:
    """True where at least one of the (non-derived) criteria is unknown."""
    stacked = np.vstack(list(criterion_codes))
    result: npt.NDArray[np.bool_] = (stacked == UNKNOWN).any(axis=0)
    return result


def derive_completeness(check: CompleteDataCheck | MissingDataCheck, unknown: npt.NDArray[np.bool_]) -> Codes:
    """``complete_data`` passes when nothing is unknown; ``missing_data`` (an exclusion) is present when
    something is (registry inclusion 8, exclusion 1)."""
    if isinstance(check, CompleteDataCheck):
        return np.where(unknown, NOT_MET, MET).astype(np.int8)
    return np.where(unknown, MET, NOT_MET).astype(np.int8)


def verdict_codes(
    inclusion: Sequence[Codes], exclusion: Sequence[Codes], unknown: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int8]:
    """Ineligible if a (non-derived) inclusion is not met or an exclusion is met; else incomplete if anything is
    unknown; else eligible. The derived IN8/EX1 only ever fail because of unknowns, so they make it incomplete."""
    failed = np.zeros(unknown.shape, dtype=bool)
    for codes in inclusion:
        failed |= codes == NOT_MET
    for codes in exclusion:
        failed |= codes == MET
    return np.where(failed, INELIGIBLE, np.where(unknown, INCOMPLETE, ELIGIBLE)).astype(np.int8)


def is_derived(criterion: Criterion) -> bool:
    """A criterion that reads the completeness of the others (IN8, EX1)."""
    return any(c.kind in DERIVED_KINDS for c in criterion.checks.values())


def evaluate_codes(
    eligibility: Eligibility, datum_of: Any
) -> tuple[dict[str, dict[str, Codes]], dict[str, Codes], npt.NDArray[np.int8]]:
    """Run every criterion: ``datum_of(check) -> array`` supplies inputs. Returns (check codes per criterion,
    criterion codes, verdict codes). Shared by the scalar and the vectorised paths."""
    check_codes: dict[str, dict[str, Codes]] = {}
    crit_codes: dict[str, Codes] = {}
    sections = [(cid, c, False) for cid, c in eligibility.inclusion.items()]
    sections += [(cid, c, True) for cid, c in eligibility.exclusion.items()]
    for cid, crit, exclusion in sections:
        for name, check in crit.checks.items():
            field_name = getattr(check, "field", None)
            if field_name is not None and field_name not in SCREENING_FIELDS:
                where = f"eligibility.{'exclusion' if exclusion else 'inclusion'}.{cid}.checks.{name}.field"
                raise ProtocolError(where, f"{field_name!r} is not a screening field")
    for cid, crit, exclusion in sections:
        if is_derived(crit):
            continue
        per_check = {name: decide(check, datum_of(check)) for name, check in crit.checks.items()}
        check_codes[cid] = per_check
        crit_codes[cid] = combine_criterion(list(per_check.values()), exclusion)
    unknown = any_unknown(crit_codes.values())
    for cid, crit, exclusion in sections:
        if not is_derived(crit):
            continue
        per_check = {}
        for name, check in crit.checks.items():
            if isinstance(check, CompleteDataCheck | MissingDataCheck):
                per_check[name] = derive_completeness(check, unknown)
            else:
                per_check[name] = decide(check, datum_of(check))
        check_codes[cid] = per_check
        crit_codes[cid] = combine_criterion(list(per_check.values()), exclusion)
    order = [cid for cid, _, _ in sections]
    crit_codes = {cid: crit_codes[cid] for cid in order}
    decisive_in = [crit_codes[cid] for cid, c, ex in sections if not ex and not is_derived(c)]
    decisive_ex = [crit_codes[cid] for cid, c, ex in sections if ex and not is_derived(c)]
    return check_codes, crit_codes, verdict_codes(decisive_in, decisive_ex, unknown)


# ----------------------------------------------------------------------------- scalar path


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    kind: str
    status: Status
    sentence: str


@dataclass(frozen=True, slots=True)
class CriterionResult:
    """One criterion: its status and one sentence (``"Neutrophils 1.5 x10^9/L < 1.8 x10^9/L: not met"``)."""

    criterion_id: str
    section: str  # "inclusion" | "exclusion"
    label: str
    status: Status
    reason: str
    checks: tuple[CheckResult, ...] = ()

    @property
    def excludes(self) -> bool:
        """True when this criterion makes the patient ineligible (or would, once the data are complete)."""
        return (self.section == "inclusion" and self.status is Status.NOT_MET) or (
            self.section == "exclusion" and self.status is Status.MET
        )


@dataclass(frozen=True, slots=True)
class Checklist:
    subject_id: str
    verdict: Verdict
    results: tuple[CriterionResult, ...]
    protocol_version: str | None = None

    def result(self, criterion_id: str) -> CriterionResult:
        for r in self.results:
            if r.criterion_id == criterion_id:
                return r
        raise KeyError(criterion_id)

    @property
    def failed(self) -> list[str]:
        """Criteria that exclude the patient (inclusion not met, exclusion met)."""
        return [r.criterion_id for r in self.results if r.excludes]

    @property
    def unknown(self) -> list[str]:
        return [r.criterion_id for r in self.results if r.status is Status.UNKNOWN]


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    return value


def lab_datum(screening: Screening, check: LabMinCheck | LabMaxUlnCheck) -> float:
    """The lab in the protocol's unit (lab_min) or as a multiple of ULN (lab_max_uln); NaN if not usable."""
    lab = screening.labs.get(check.lab)
    if lab is None:
        return float("nan")
    if isinstance(check, LabMinCheck):
        return units.convert(check.lab, lab.value, lab.unit, check.unit)
    if lab.uln is None:
        return float("nan")
    if lab.uln <= 0:
        raise ValidationError(f"labs.{check.lab}.uln", Message(N_("the upper limit of normal must be positive")))
    # value and ULN are in the same unit (checked), so the ratio is unit-free
    units.factor(check.lab, lab.unit)
    return lab.value / lab.uln


def screening_datum(screening: Screening, check: Check) -> npt.NDArray[Any]:
    """The input of ``check`` for one screening, as an array of length 1 (see :func:`decide`)."""
    if isinstance(check, LabMinCheck | LabMaxUlnCheck):
        return np.array([lab_datum(screening, check)], dtype=np.float64)
    value = _plain(getattr(screening, check.field)) if hasattr(check, "field") else None
    if isinstance(check, PresentCheck):
        return np.array([value is not None], dtype=bool)
    if isinstance(check, RangeCheck | IsTrueCheck | IsFalseCheck):
        return np.array([np.nan if value is None else float(value)], dtype=np.float64)
    arr = np.empty(1, dtype=object)
    arr[0] = value
    return arr


def _fmt(x: float) -> str:
    return f"{x:g}"


def _unit(u: str | None) -> str:
    return f" {u}" if u else ""


def _check_sentence(check: Check, screening: Screening, code: int, unknown_ids: Sequence[str]) -> str:
    """Words for one check; the decision itself was taken by :func:`decide`. The sentences are
    :class:`~abscopal.messages.Message` objects: English text that the web can translate."""
    if isinstance(check, CompleteDataCheck | MissingDataCheck):
        missing = (code == MET) == isinstance(check, MissingDataCheck)
        if missing:
            return Message(
                N_("{name} missing for {criteria}"), name=_term(check.name), criteria=Joined(", ", unknown_ids)
            )
        return Message(N_("{name} complete"), name=_term(check.name))
    if isinstance(check, LabMinCheck | LabMaxUlnCheck):
        return _lab_sentence(check, screening, code)
    value = _plain(getattr(screening, check.field))
    if value is None:
        return Message(N_("{name} not recorded"), name=_term(check.name))
    if isinstance(check, PresentCheck):
        return Message(N_("{name} recorded ({value})"), name=_term(check.name), value=str(value))
    if isinstance(check, IsTrueCheck | IsFalseCheck):
        return Message(N_("{name} = {answer}"), name=_term(check.name), answer=_YES if value else _NO)
    if isinstance(check, OneOfCheck):
        one_of = N_("{name} {value} is one of {values}")
        template = one_of if code == MET else N_("{name} {value} is not one of {values}")
        return Message(template, name=_term(check.name), value=str(value), values=Joined(", ", check.values))
    if isinstance(check, AtLeastLevelCheck):
        rel = ">=" if code == MET else "<"
        return Message("{name} {value} {rel} {level}", name=_term(check.name), value=str(value), rel=rel,
                       level=str(check.level))  # fmt: skip
    assert isinstance(check, RangeCheck)
    x = float(value)
    u = _unit(check.unit)
    if check.min is not None and not ((x >= check.min) if check.min_inclusive else (x > check.min)):
        return _compared(check.name, f"{_fmt(x)}{u}", "<" if check.min_inclusive else "<=", f"{_fmt(check.min)}{u}")
    if check.max is not None and not ((x <= check.max) if check.max_inclusive else (x < check.max)):
        return _compared(check.name, f"{_fmt(x)}{u}", ">" if check.max_inclusive else ">=", f"{_fmt(check.max)}{u}")
    if check.min is not None and check.max is not None:
        return Message(
            N_("{name} {value} in {min}-{max}"),
            name=_term(check.name), value=f"{_fmt(x)}{u}", min=_fmt(check.min), max=f"{_fmt(check.max)}{u}",
        )  # fmt: skip
    if check.min is not None:
        return _compared(check.name, f"{_fmt(x)}{u}", ">=" if check.min_inclusive else ">", f"{_fmt(check.min)}{u}")
    assert check.max is not None
    return _compared(check.name, f"{_fmt(x)}{u}", "<=" if check.max_inclusive else "<", f"{_fmt(check.max)}{u}")


#: The gettext context of the protocol's check names in the web catalogs.
CHECK_NAME_CONTEXT = "eligibility check"


def _term(name: str) -> Term:
    """A check's name from the protocol file, which the web shows in the page's language (the bundled protocol's
    names are in its catalogs, under :data:`CHECK_NAME_CONTEXT`; a name without a translation stays as written)."""
    return Term(name, CHECK_NAME_CONTEXT)


def _compared(name: str, value: str, rel: str, bound: str) -> Message:
    """``"<name> <value> <rel> <bound>"`` (``"ECOG performance status 2 > 1"``): only the name has words."""
    return Message("{name} {value} {rel} {bound}", name=_term(name), value=value, rel=rel, bound=bound)


_YES = Message(N_("yes"))
_NO = Message(N_("no"))


def _lab_sentence(check: LabMinCheck | LabMaxUlnCheck, screening: Screening, code: int) -> str:
    lab = screening.labs.get(check.lab)
    if lab is None:
        return Message(N_("{name} not recorded"), name=check.name)
    shown = f"{check.name} {_fmt(lab.value)} {lab.unit}"
    if isinstance(check, LabMinCheck):
        canonical = units.display_unit(check.unit)
        converted = units.convert(check.lab, lab.value, lab.unit, check.unit)
        if (
            units.normalise_unit(lab.unit) != units.normalise_unit(check.unit)
            and units.factor(check.lab, lab.unit, check.unit) != 1.0
        ):
            shown += f" (= {_fmt(round(converted, 6))} {canonical})"
        else:
            shown = f"{check.name} {_fmt(lab.value)} {canonical}"
        rel = ">=" if code == MET else "<"
        return f"{shown} {rel} {_fmt(check.min)} {canonical}"
    if lab.uln is None:
        return Message(N_("{lab}, upper limit of normal not recorded"), lab=shown)
    ratio = lab.value / lab.uln
    rel = "<=" if code == MET else ">"
    return f"{shown} = {_fmt(round(ratio, 3))} x ULN ({_fmt(lab.uln)} {lab.unit}) {rel} {_fmt(check.max_x_uln)} x ULN"


_STATUS_WORDS = {
    Status.MET: Message(N_("met")),
    Status.NOT_MET: Message(N_("not met")),
    Status.UNKNOWN: Message(N_("unknown (data missing)")),
}


def evaluate(screening: Screening, eligibility: Eligibility, protocol_version: str | None = None) -> Checklist:
    """Evaluate every criterion for one screening; the verdict is eligible, ineligible or incomplete."""
    check_codes, crit_codes, verdict = evaluate_codes(eligibility, lambda c: screening_datum(screening, c))
    unknown_ids = [
        cid
        for cid, codes in crit_codes.items()
        if int(codes[0]) == UNKNOWN and not is_derived(_criterion(eligibility, cid))
    ]
    results = []
    for section, criteria in (("inclusion", eligibility.inclusion), ("exclusion", eligibility.exclusion)):
        for cid, crit in criteria.items():
            checks = []
            for name, check in crit.checks.items():
                code = int(check_codes[cid][name][0])
                sentence = _check_sentence(check, screening, code, unknown_ids)
                checks.append(CheckResult(name, check.kind, STATUS_OF_CODE[code], sentence))
            status = STATUS_OF_CODE[int(crit_codes[cid][0])]
            # the sentence gives the checks that decided: the failing ones of a criterion not met, the unknown
            # ones of an unknown criterion, all of a criterion met (for an exclusion, the conditions present)
            deciding = [c.sentence for c in checks if c.status is status]
            reason = Message(N_("{checks}: {status}"), checks=Joined("; ", deciding), status=_STATUS_WORDS[status])
            results.append(CriterionResult(cid, section, crit.label, status, reason, tuple(checks)))
    return Checklist(screening.subject_id, VERDICT_OF_CODE[int(verdict[0])], tuple(results), protocol_version)


def _criterion(eligibility: Eligibility, cid: str) -> Criterion:
    return eligibility.inclusion.get(cid) or eligibility.exclusion[cid]


# ----------------------------------------------------------------------------- screening log


@dataclass
class ScreeningLog:
    """Screen-failure reasons aggregated over checklists: counts per criterion id (for the CONSORT diagram).

    A patient counts once under every criterion that excludes them; ``unknown`` counts criteria left unknown
    among patients who were not found eligible.
    """

    screened: int = 0
    eligible: int = 0
    ineligible: int = 0
    incomplete: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    unknown: Counter[str] = field(default_factory=Counter)

    def add(self, checklist: Checklist) -> None:
        self.screened += 1
        if checklist.verdict is Verdict.ELIGIBLE:
            self.eligible += 1
            return
        if checklist.verdict is Verdict.INELIGIBLE:
            self.ineligible += 1
        else:
            self.incomplete += 1
        self.reasons.update(checklist.failed)
        self.unknown.update(checklist.unknown)

    def as_dict(self) -> dict[str, Any]:
        return {
            "screened": self.screened,
            "eligible": self.eligible,
            "ineligible": self.ineligible,
            "incomplete": self.incomplete,
            "reasons": dict(sorted(self.reasons.items(), key=_criterion_sort)),
            "unknown": dict(sorted(self.unknown.items(), key=_criterion_sort)),
        }


def _criterion_sort(item: tuple[str, int]) -> tuple[str, int]:
    cid = item[0]
    head = cid.rstrip("0123456789")
    tail = cid[len(head) :]
    return (head, int(tail) if tail else 0)


def screening_log(checklists: Iterable[Checklist]) -> ScreeningLog:
    """Aggregate screen-failure reasons of many checklists."""
    log = ScreeningLog()
    for c in checklists:
        log.add(c)
    return log


def as_dict(checklist: Checklist) -> dict[str, Any]:
    """A JSON-ready view of a checklist (for ``--json`` and the web)."""
    return {
        "subject_id": checklist.subject_id,
        "protocol_version": checklist.protocol_version,
        "verdict": checklist.verdict.value,
        "failed": checklist.failed,
        "unknown": checklist.unknown,
        "criteria": [
            {
                "id": r.criterion_id,
                "section": r.section,
                "label": r.label,
                "status": r.status.value,
                "reason": r.reason,
                "checks": [
                    {"name": c.name, "kind": c.kind, "status": c.status.value, "sentence": c.sentence} for c in r.checks
                ],
            }
            for r in checklist.results
        ],
    }


def age_on(birth_date: dt.date, on: dt.date) -> int:
    """Completed years of age on a date (for filling ``Screening.age_years`` from a birth date)."""
    years = on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))
    if years < 0:
        raise ValidationError("birth_date", f"{birth_date} is after {on}")
    return years


__all__ = [
    "ELIGIBLE",
    "INCOMPLETE",
    "INELIGIBLE",
    "MET",
    "NOT_MET",
    "UNKNOWN",
    "CheckResult",
    "Checklist",
    "CriterionResult",
    "ScreeningLog",
    "Status",
    "Verdict",
    "age_on",
    "as_dict",
    "combine_criterion",
    "decide",
    "derive_completeness",
    "evaluate",
    "evaluate_codes",
    "screening_log",
    "verdict_codes",
]
