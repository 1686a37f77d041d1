"""The NCI CTCAE v5.0 dictionary: terms, MedDRA codes, SOCs, grade definitions, ranked search.

The data are NCI's "Clean Copy" sheet packaged in ``abscopal/safety/data`` (see PROVENANCE.md there); a
grade cell ``-`` means the grade is not available for the term (CTCAE v5.0 front matter, ae-qol.md A1-A2).
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from abscopal.errors import NotFound

GRADES: tuple[int, ...] = (1, 2, 3, 4, 5)

#: MedDRA's internationally agreed order of System Organ Classes (MedDRA Introductory Guide), used to order
#: SOCs in safety tables (ae-qol.md A4 table 2). "Product issues" has no CTCAE term and is omitted.
SOC_ORDER: tuple[str, ...] = (
    "Infections and infestations",
    "Neoplasms benign, malignant and unspecified (incl cysts and polyps)",
    "Blood and lymphatic system disorders",
    "Immune system disorders",
    "Endocrine disorders",
    "Metabolism and nutrition disorders",
    "Psychiatric disorders",
    "Nervous system disorders",
    "Eye disorders",
    "Ear and labyrinth disorders",
    "Cardiac disorders",
    "Vascular disorders",
    "Respiratory, thoracic and mediastinal disorders",
    "Gastrointestinal disorders",
    "Hepatobiliary disorders",
    "Skin and subcutaneous tissue disorders",
    "Musculoskeletal and connective tissue disorders",
    "Renal and urinary disorders",
    "Pregnancy, puerperium and perinatal conditions",
    "Reproductive system and breast disorders",
    "Congenital, familial and genetic disorders",
    "General disorders and administration site conditions",
    "Investigations",
    "Injury, poisoning and procedural complications",
    "Surgical and medical procedures",
    "Social circumstances",
)

#: Abbreviations in common use (and in ae-qol.md A3) for CTCAE terms whose official name is spelled out.
ALIASES: dict[str, str] = {
    "alt increased": "Alanine aminotransferase increased",
    "ast increased": "Aspartate aminotransferase increased",
    "alp increased": "Alkaline phosphatase increased",
    "ggt increased": "GGT increased",
}

_NOT_AVAILABLE = "-"
_STOPWORDS = frozenset({"a", "an", "and", "or", "of", "the", "in", "to", "with", "for", "on", "by"})
_WORD = re.compile(r"[0-9a-z]+")


def grades_label(grades: Iterable[int]) -> str:
    """Grades as a short label: ``(1, 2, 3)`` -> "1-3", ``(5,)`` -> "5", ``(1, 2, 4)`` -> "1, 2, 4"."""
    gs = sorted(grades)
    if not gs:
        return "none"
    if len(gs) > 1 and gs == list(range(gs[0], gs[-1] + 1)):
        return f"{gs[0]}-{gs[-1]}"
    return ", ".join(str(g) for g in gs)


@dataclass(frozen=True, slots=True)
class CtcaeTerm:
    """One CTCAE v5.0 term; ``grade_text[g - 1]`` is grade g's description or None when NCI wrote "-"."""

    meddra_code: int
    soc: str
    term: str
    grade_text: tuple[str | None, str | None, str | None, str | None, str | None]
    definition: str | None
    navigational_note: str | None = None

    @property
    def grades(self) -> tuple[int, ...]:
        """The grades this term defines (CTCAE v5.0: "-" means the grade is not available)."""
        return tuple(g for g in GRADES if self.grade_text[g - 1] is not None)

    @property
    def grades_label(self) -> str:
        return grades_label(self.grades)

    def defines(self, grade: int) -> bool:
        """True when ``grade`` is one of this term's available grades."""
        return grade in GRADES and self.grade_text[grade - 1] is not None

    def describe(self, grade: int) -> str | None:
        """The grade's description, or None when the grade is not available for this term."""
        return self.grade_text[grade - 1] if grade in GRADES else None

    @property
    def is_other_specify(self) -> bool:
        """The "<SOC> - Other, specify" terms need the investigator's verbatim term (ae-qol.md A1)."""
        return self.term.endswith("- Other, specify")


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A search result: the term, its relevance score (higher first) and where the words matched."""

    term: CtcaeTerm
    score: float
    matched: tuple[str, ...]


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _query_tokens(query: str) -> list[str]:
    tokens = _words(query)
    kept = [t for t in tokens if t not in _STOPWORDS]
    return kept or tokens


def _has_word(words: list[str], token: str) -> bool:
    return any(w.startswith(token) for w in words)


class CtcaeDictionary:
    """All CTCAE v5.0 terms, looked up by term (case-insensitive) or MedDRA code, and searchable."""

    def __init__(self, terms: Iterable[CtcaeTerm]) -> None:
        self.terms: tuple[CtcaeTerm, ...] = tuple(terms)
        self._by_name = {t.term.casefold(): t for t in self.terms}
        self._by_code = {t.meddra_code: t for t in self.terms}
        self._index = [
            (
                t,
                _words(t.term),
                [_words(g) if g else [] for g in t.grade_text],
                _words(t.definition or ""),
                _words(t.navigational_note or ""),
            )
            for t in self.terms
        ]

    def __len__(self) -> int:
        return len(self.terms)

    def __iter__(self) -> Iterator[CtcaeTerm]:
        return iter(self.terms)

    def __contains__(self, term: object) -> bool:
        return isinstance(term, str) and term.casefold() in self._by_name

    @property
    def socs(self) -> tuple[str, ...]:
        """The SOCs present, in MedDRA's internationally agreed order (unknown ones last, alphabetical)."""
        present = {t.soc for t in self.terms}
        ordered = [s for s in SOC_ORDER if s in present]
        return tuple(ordered + sorted(present - set(SOC_ORDER)))

    def find(self, term: str) -> CtcaeTerm | None:
        """The term with this exact name (case-insensitive, surrounding spaces ignored), or None."""
        key = term.strip().casefold()
        found = self._by_name.get(key)
        if found is None and key in ALIASES:
            found = self._by_name.get(ALIASES[key].casefold())
        return found

    def by_code(self, code: int) -> CtcaeTerm | None:
        """The term with this MedDRA LLT code, or None."""
        return self._by_code.get(code)

    def get(self, term_or_code: str | int) -> CtcaeTerm:
        """The term named (or coded) exactly; :class:`NotFound` with the closest suggestions otherwise."""
        text = str(term_or_code).strip()
        found = self.by_code(int(text)) if text.isdigit() else self.find(text)
        if found is not None:
            return found
        hints = [h.term.term for h in self.search(text, limit=3)] or difflib.get_close_matches(
            text, [t.term for t in self.terms], n=3, cutoff=0.75
        )
        hint = f"; did you mean {', '.join(repr(h) for h in hints)}?" if hints else ""
        raise NotFound(f"{text!r} is not a CTCAE v5.0 term or MedDRA code{hint}")

    def search(self, query: str, limit: int = 20) -> list[SearchHit]:
        """Terms matching ``query``, best first: exact term or code, then term words, then grade/definition words.

        Every word of the query must match (as a word prefix) somewhere in the term's name, grade
        descriptions, definition or navigational note; common words ("and", "of") are ignored.
        """
        text = query.strip()
        if not text:
            return []
        hits: list[SearchHit] = []
        if text.isdigit():
            exact = self.by_code(int(text))
            return [SearchHit(exact, 1000.0, ("code",))] if exact else []
        phrase = " ".join(_words(text))
        alias = self.find(text)
        tokens = _query_tokens(text)
        for term, name_words, grade_words, def_words, note_words in self._index:
            name = " ".join(name_words)
            score = 0.0
            matched: list[str] = []
            if name == phrase:
                score += 1000
            elif name.startswith(phrase):
                score += 500
            elif f" {phrase}" in f" {name}":
                score += 300
            if score:
                matched.append("term")
            if term is alias and name != phrase:  # an abbreviation of the term's name ("ALT increased")
                hits.append(SearchHit(term, 1000.0, ("term",)))
                continue
            if len(tokens) > 1:  # the words as a phrase in a grade description rank above scattered words
                spaced = f" {phrase} "
                score += sum(15 for words in grade_words if spaced in f" {' '.join(words)} ")
            all_found = True
            for token in tokens:
                found = False
                if _has_word(name_words, token):
                    score += 50
                    found = True
                    if "term" not in matched:
                        matched.append("term")
                for g, words in zip(GRADES, grade_words, strict=True):
                    if _has_word(words, token):
                        score += 10
                        found = True
                        if f"grade {g}" not in matched:
                            matched.append(f"grade {g}")
                if _has_word(def_words, token):
                    score += 5
                    found = True
                    if "definition" not in matched:
                        matched.append("definition")
                if _has_word(note_words, token):
                    score += 2
                    found = True
                    if "navigational note" not in matched:
                        matched.append("navigational note")
                all_found = all_found and found
            if all_found and score > 0:
                # a shorter term name is the more specific match among equals
                order = ["term", *(f"grade {g}" for g in GRADES), "definition", "navigational note"]
                fields = tuple(sorted(matched, key=order.index))
                hits.append(SearchHit(term, score - len(name_words) * 0.01, fields))
        hits.sort(key=lambda h: (-h.score, h.term.term))
        return hits[:limit]


def parse_ctcae(terms_csv: str, notes_csv: str = "") -> CtcaeDictionary:
    """Build the dictionary from the text of ``ctcae_v5.csv`` and ``ctcae_v5_navigational_notes.csv``."""
    notes: dict[int, str] = {}
    if notes_csv:
        for row in csv.DictReader(io.StringIO(notes_csv)):
            notes[int(row["meddra_code"])] = row["navigational_note"]
    terms = []
    for row in csv.DictReader(io.StringIO(terms_csv)):
        code = int(row["meddra_code"])
        cells = [row[f"grade{g}"].strip() for g in GRADES]
        grade_text = tuple(None if c == _NOT_AVAILABLE else c for c in cells)
        definition = row["definition"].strip()
        terms.append(
            CtcaeTerm(
                meddra_code=code,
                soc=row["soc"],
                term=row["term"],
                grade_text=(grade_text[0], grade_text[1], grade_text[2], grade_text[3], grade_text[4]),
                definition=None if definition == _NOT_AVAILABLE else definition,
                navigational_note=notes.get(code),
            )
        )
    return CtcaeDictionary(terms)


@lru_cache(maxsize=1)
def load_ctcae() -> CtcaeDictionary:
    """The CTCAE v5.0 dictionary packaged with Abscopal (read once, then cached)."""
    data = resources.files("abscopal.safety").joinpath("data")
    terms = data.joinpath("ctcae_v5.csv").read_text(encoding="utf-8")
    notes = data.joinpath("ctcae_v5_navigational_notes.csv").read_text(encoding="utf-8")
    return parse_ctcae(terms, notes)
