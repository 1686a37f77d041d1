"""The packaged CTCAE v5.0 dictionary: counts and grades as NCI published them (ae-qol.md A1, A3)."""

from __future__ import annotations

import hashlib
from collections import Counter
from importlib import resources

import pytest

from abscopal.errors import NotFound
from abscopal.safety.ctcae import SOC_ORDER, grades_label, load_ctcae, parse_ctcae

D = load_ctcae()


@pytest.mark.parametrize(
    ("name", "sha256"),
    [
        ("ctcae_v5.csv", "7e2d91b6eebdb9c066e92b487dbc58f959056f14eccc71c02f361133725b5c7b"),
        ("ctcae_v5_navigational_notes.csv", "134e5629d8d30d017e9bde56a72e875199b0c1cc882788d5b6d666f44b59d57e"),
    ],
)
def test_packaged_files_match_the_checksums_in_provenance(name, sha256):
    data = resources.files("abscopal.safety").joinpath("data", name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == sha256


def test_the_dictionary_has_nci_s_837_terms_with_unique_codes_in_26_socs():
    assert len(D) == 837
    assert len({t.meddra_code for t in D}) == 837
    assert len({t.soc for t in D}) == 26


@pytest.mark.parametrize(
    ("label", "count"), [("1-5", 330), ("1-3", 196), ("2-5", 100), ("1-4", 49), ("3-5", 45), ("1-2", 42)]
)
def test_grade_availability_patterns_match_the_published_counts(label, count):
    assert Counter(t.grades_label for t in D)[label] == count


def test_494_terms_allow_grade_5():
    assert sum(t.defines(5) for t in D) == 494


def test_only_three_terms_are_grade_5_only():
    assert sorted(t.term for t in D if t.grades == (5,)) == ["Death NOS", "Disease progression", "Sudden death NOS"]


def test_each_soc_has_one_other_specify_term_without_definition():
    others = [t for t in D if t.is_other_specify]
    assert len(others) == 26
    assert len({t.soc for t in others}) == 26
    assert all(t.definition is None for t in others)


# ae-qol.md A3 (codes and grades from the CSV).
A3 = [
    ("Pneumonitis", 10035742, "1-5"),
    ("Cough", 10011224, "1-3"),
    ("Hypoxia", 10021143, "2-5"),
    ("Esophagitis", 10015461, "1-5"),
    ("Dermatitis radiation", 10061103, "1-5"),
    ("Chest wall pain", 10008496, "1-3"),
    ("Myocarditis", 10028606, "2-5"),
    ("Fatigue", 10016256, "1-3"),
    ("Nausea", 10028813, "1-3"),
    ("Alanine aminotransferase increased", 10001551, "1-4"),
    ("Thyroid stimulating hormone increased", 10043770, "1"),
    ("Skin hypopigmentation", 10040868, "1-2"),
    ("Stevens-Johnson syndrome", 10042033, "3-5"),
    ("Toxic epidermal necrolysis", 10044223, "4-5"),
    ("Acute kidney injury", 10069339, "3-5"),
    ("Arthritis", 10003246, "1-3"),
    ("Lung infection", 10061229, "2-5"),
]


@pytest.mark.parametrize(("term", "code", "grades"), A3)
def test_terms_of_special_interest_have_the_published_code_and_grades(term, code, grades):
    t = D.get(term)
    assert (t.meddra_code, t.grades_label) == (code, grades)
    assert D.get(code) is t


def test_a_dash_grade_is_not_available():
    fatigue = D.get("Fatigue")
    assert fatigue.describe(4) is None
    assert not fatigue.defines(4)
    assert fatigue.describe(3) == "Fatigue not relieved by rest, limiting self care ADL"


def test_navigational_notes_are_attached_to_their_terms():
    assert D.get("ALT increased").navigational_note == "Also consider Hepatobiliary disorders: Hepatic failure"
    assert sum(1 for t in D if t.navigational_note) == 74


def test_lookup_ignores_case_and_accepts_common_abbreviations():
    assert D.get("pneumonitis").term == "Pneumonitis"
    assert D.get("AST increased").term == "Aspartate aminotransferase increased"


def test_an_unknown_term_is_not_found_with_a_suggestion():
    with pytest.raises(NotFound, match="did you mean 'Pneumonitis'"):
        D.get("Pneumonitiss")


def test_search_ranks_the_exact_term_first():
    hits = D.search("dermatitis radiation")
    assert hits[0].term.term == "Dermatitis radiation"
    assert hits[0].score > hits[1].score


def test_search_by_meddra_code_finds_that_term_only():
    assert [h.term.term for h in D.search("10016256")] == ["Fatigue"]


def test_search_finds_terms_by_words_of_their_grade_definitions():
    hits = D.search("transfusion indicated", limit=50)
    anemia = next(h for h in hits if h.term.term == "Anemia")
    assert "grade 3" in anemia.matched


def test_search_requires_every_word_to_match():
    assert D.search("rash acneiform")[0].term.term == "Rash acneiform"
    assert D.search("pneumonitis zebra") == []


def test_a_term_name_match_ranks_above_a_grade_text_match():
    hits = D.search("fatigue", limit=5)
    assert hits[0].term.term == "Fatigue"
    assert all("term" not in h.matched for h in hits[1:])


def test_socs_come_in_meddra_internationally_agreed_order():
    assert D.socs == SOC_ORDER
    assert D.socs.index("Respiratory, thoracic and mediastinal disorders") < D.socs.index("Investigations")


@pytest.mark.parametrize(("grades", "label"), [((1, 2, 3), "1-3"), ((5,), "5"), ((1, 2, 4), "1, 2, 4"), ((), "none")])
def test_grade_labels_compress_contiguous_runs(grades, label):
    assert grades_label(grades) == label


def test_parsing_reads_a_dash_as_not_available():
    text = "meddra_code,soc,term,grade1,grade2,grade3,grade4,grade5,definition\n1,S,T,-,b,c,-,Death,-\n"
    t = parse_ctcae(text).get("T")
    assert t.grades == (2, 3, 5)
    assert t.definition is None


def test_every_term_the_protocol_names_is_a_ctcae_term():
    from abscopal.protocol.model import load_bundled

    safety = load_bundled().current.safety
    named = [t for terms in safety.aesi.values() for t in terms] + [safety.monitor.term]
    assert [t for t in named if D.find(t) is None] == []
