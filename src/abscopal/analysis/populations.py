"""Who is counted where: the analysis sets (CONSORT 2010, ICH E9), the CONSORT flow and the baseline table.

Pure. Treated = at least one study treatment given (:func:`abscopal.protocol.radiotherapy.study_treatment_dates`);
the safety population is the safety engine's (:func:`abscopal.safety.safety_population`), passed in.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from abscopal import domain as d
from abscopal.analysis.cutoff import TrialData
from abscopal.protocol.eligibility import evaluate, screening_log
from abscopal.protocol.model import Protocol, ProtocolFile
from abscopal.protocol.radiotherapy import study_treatment_dates


@dataclass(frozen=True)
class Populations:
    """Who is counted where (CONSORT 2010 and ICH E9 analysis sets)."""

    screened: tuple[str, ...]
    enrolled: tuple[str, ...]
    treated: tuple[str, ...]
    efficacy: tuple[str, ...]
    safety: tuple[str, ...]


@dataclass(frozen=True)
class ConsortFlow:
    """The CONSORT 2010 flow of a single-arm trial, from the screening log and the enrolment records."""

    screened: int
    excluded: int
    exclusion_reasons: Sequence[tuple[str, int]]
    enrolled: int
    treated: int
    not_treated: int
    analysed: int
    not_analysed: int = 0
    discontinued: Sequence[tuple[str, int]] = ()


@dataclass(frozen=True)
class Row:
    """One row of a simple table: a label and its cells."""

    label: str
    cells: tuple[str, ...]
    level: int = 0


R = TypeVar("R", d.Fraction, d.ImmunotherapyCycle)


def by_subject(records: Iterable[R]) -> dict[str, list[R]]:
    """Records grouped by subject id (a missing subject reads as no records)."""
    out: dict[str, list[R]] = defaultdict(list)
    for r in records:
        out[r.subject_id].append(r)
    return out


def populations(data: TrialData, safety_subjects: Iterable[str]) -> Populations:
    """Screened (a screening record), enrolled (an enrolment date), treated (a study treatment given: an RT
    fraction, or an immunotherapy cycle on or after enrolment), efficacy (treated with a baseline tumour
    assessment); safety as given (the safety engine's population: >= 1 RT fraction, ae-qol.md A4)."""
    screened = sorted({s.subject_id for s in data.screenings} | {p.subject_id for p in data.patients})
    enrolment = {p.subject_id: p.enrolment_date for p in data.patients if p.enrolment_date is not None}
    enrolled = sorted(enrolment)
    fractions, cycles = by_subject(data.fractions), by_subject(data.cycles)
    treated = [s for s in enrolled if study_treatment_dates(fractions[s], cycles[s], enrolment[s])]
    assessed = {a.subject_id for a in data.assessments}
    efficacy = [s for s in treated if s in assessed]
    return Populations(
        tuple(screened), tuple(enrolled), tuple(treated), tuple(efficacy), tuple(sorted(safety_subjects))
    )


def consort_flow(data: TrialData, pops: Populations, protocol_file: ProtocolFile) -> ConsortFlow:
    """The CONSORT numbers; the exclusion reasons are the eligibility engine's screening log (criteria that
    exclude each patient who was not enrolled), labelled with the protocol's criterion labels."""
    enrolled = set(pops.enrolled)
    patients = {p.subject_id: p for p in data.patients}
    checklists = []
    for s in data.screenings:
        if s.subject_id in enrolled:
            continue
        version = patients[s.subject_id].protocol_version if s.subject_id in patients else None
        protocol = _version(protocol_file, version)
        checklists.append(evaluate(s, protocol.eligibility, protocol.version.number))
    log = screening_log(checklists)
    labels = _criterion_labels(protocol_file.current)
    reasons = sorted(log.reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    named = [(_short(f"{cid} {labels.get(cid, '')}".strip()), n) for cid, n in reasons]
    eligible_not_enrolled = log.eligible
    if eligible_not_enrolled:
        named.append(("eligible but not enrolled", eligible_not_enrolled))
    if log.incomplete:
        named.append(("screening data incomplete", log.incomplete))
    not_screened = len(pops.screened) - len(enrolled) - log.screened
    if not_screened > 0:
        named.append(("no screening record", not_screened))
    discontinued = []
    no_baseline = len(pops.treated) - len(pops.efficacy)
    if no_baseline:
        discontinued.append(("no baseline tumour assessment", no_baseline))
    return ConsortFlow(
        screened=len(pops.screened),
        excluded=len(pops.screened) - len(enrolled),
        exclusion_reasons=tuple(named),
        enrolled=len(enrolled),
        treated=len(pops.treated),
        not_treated=len(enrolled) - len(pops.treated),
        analysed=len(pops.efficacy),
        not_analysed=no_baseline,
        discontinued=tuple(discontinued),
    )


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _version(protocol_file: ProtocolFile, number: str | None) -> Protocol:
    if number is not None and number in protocol_file.versions:
        return protocol_file.version(number)
    return protocol_file.current


def _criterion_labels(protocol: Protocol) -> dict[str, str]:
    crit = {**protocol.eligibility.inclusion, **protocol.eligibility.exclusion}
    return {cid: c.label for cid, c in crit.items()}


def _pct(n: int, total: int) -> str:
    return f"{n} ({100.0 * n / total:.1f}%)" if total else f"{n}"


def _median_range(values: Sequence[float]) -> str:
    if not values:
        return "not recorded"
    return f"{statistics.median(values):g} ({min(values):g}-{max(values):g})"


def baseline_table(data: TrialData, subjects: Sequence[str]) -> tuple[Row, ...]:
    """Baseline characteristics of the enrolled patients: n (%) or median (range), from the screening records."""
    chosen = set(subjects)
    n = len(chosen)
    patients = [p for p in data.patients if p.subject_id in chosen]
    screenings = [s for s in data.screenings if s.subject_id in chosen]
    rows: list[Row] = [Row("Patients", (str(n),))]
    ages = [float(s.age_years) for s in screenings if s.age_years is not None]
    rows.append(Row("Age, years: median (range)", (_median_range(ages),)))
    rows.append(Row("Sex", ()))
    for sex, count in sorted(Counter(p.sex.value for p in patients).items()):
        rows.append(Row({"F": "Female", "M": "Male"}.get(sex, "Unknown"), (_pct(count, n),), 1))
    rows.append(Row("ECOG performance status", ()))
    for ecog, count in sorted(Counter(s.ecog for s in screenings).items(), key=lambda kv: (kv[0] is None, kv[0])):
        rows.append(Row("not recorded" if ecog is None else str(ecog), (_pct(count, n),), 1))
    rows.append(Row("Histology", ()))
    for hist, count in Counter(s.histology.value if s.histology else "not recorded" for s in screenings).most_common():
        rows.append(Row(hist.replace("_", " "), (_pct(count, n),), 1))
    lesions = [float(s.lesion_count) for s in screenings if s.lesion_count is not None]
    organs = [float(s.metastatic_organ_count) for s in screenings if s.metastatic_organ_count is not None]
    rows.append(Row("Lesions at screening: median (range)", (_median_range(lesions),)))
    rows.append(Row("Organs with metastases: median (range)", (_median_range(organs),)))
    latest: dict[str, d.Adjudication] = {}
    for a in sorted(data.adjudications, key=lambda a: a.proposed_at):
        if a.subject_id in chosen:
            latest[a.subject_id] = a
    rows.append(Row("Immunotherapy resistance (adjudicated)", ()))
    for kind, count in Counter(a.classification.value for a in latest.values()).most_common():
        rows.append(Row(kind.replace("_", " "), (_pct(count, n),), 1))
    if n - len(latest):
        rows.append(Row("not adjudicated", (_pct(n - len(latest), n),), 1))
    return tuple(rows)
