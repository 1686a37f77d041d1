"""``abscopal ae summary | search | grades`` on hand-made fixtures (tests/fixtures/safety/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from abscopal.cli import app

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "safety"
COHORT = str(FIXTURES / "ae_cohort.csv")
runner = CliRunner()


def _summary_json(*extra: str) -> dict:
    result = runner.invoke(app, ["ae", "summary", "--input", COHORT, *extra, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_summary_json_gives_the_hand_counted_overall_table():
    data = _summary_json("--safety-population", str(FIXTURES / "safety_population.csv"))
    overall = {r["label"]: (r["count"]["n"], r["count"]["pct"]) for r in data["tables"]["overall"]}
    assert overall["Any AE"] == (4, 80.0)
    assert overall["Grade >= 3 AE"] == (2, 40.0)
    assert overall["Serious AE"] == (2, 40.0)
    assert overall["AE leading to immunotherapy discontinuation"] == (1, 20.0)


def test_rows_marked_not_treatment_emergent_are_left_out():
    data = _summary_json("--population", "5")
    terms = {r["term"] for r in data["tables"]["by_soc_term"] if r["level"] == "term"}
    assert "Anemia" not in terms
    assert "Alanine aminotransferase increased" in terms  # "ALT increased" read as the CTCAE term


def test_the_population_number_sets_the_denominator():
    data = _summary_json("--population", "8")
    any_ae = data["tables"]["by_soc_term"][0]["counts"]["any_grade"]
    assert (any_ae["n"], any_ae["pct"]) == (4, 50.0)


def test_summary_evaluates_the_protocol_monitor():
    # one patient with grade >= 3 pneumonitis of 5: Beta(2, 5), P(p > .2) = .65536 (see test_monitor.py)
    data = _summary_json("--population", "5")
    assert data["monitor"]["events"] == 1
    assert abs(data["monitor"]["probability_above"] - 0.65536) < 1e-9
    assert data["monitor"]["alert"] is False


def test_summary_prints_rich_tables():
    result = runner.invoke(app, ["ae", "summary", "--input", COHORT, "--population", "5"])
    assert result.exit_code == 0, result.output
    assert "Overall summary" in result.output
    assert "4 (80.0)" in result.output
    assert "query" in result.output


def test_summary_needs_exactly_one_way_to_give_the_population():
    result = runner.invoke(app, ["ae", "summary", "--input", COHORT])
    assert result.exit_code == 1
    assert "--population N or --safety-population FILE" in result.output


def test_a_bad_ae_file_names_every_bad_line():
    result = runner.invoke(app, ["ae", "summary", "--input", str(FIXTURES / "ae_bad.csv"), "--population", "5"])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "line 2, grade: Fatigue: grade 4 is not defined in CTCAE v5.0 (Fatigue allows grades 1-3)" in text
    for line in (4, 5, 6, 7, 8):
        assert f"line {line}," in text
    assert "line 3," not in text
    assert "'two' is not a whole number" in text
    assert "'X' is not Y or N" in text


def test_a_subject_outside_the_listed_safety_population_is_a_query(tmp_path):
    population = tmp_path / "pop.csv"
    population.write_text("subject_id\nP1\nP2\nP3\n")
    result = runner.invoke(app, ["ae", "summary", "--input", COHORT, "--safety-population", str(population)])
    assert result.exit_code == 0, result.output
    assert "P4 is not in the safety population" in " ".join(result.output.split())


def test_search_lists_matching_terms_best_first():
    result = runner.invoke(app, ["ae", "search", "pneumonitis", "--json"])
    assert result.exit_code == 0
    hits = json.loads(result.stdout)
    assert hits[0]["term"] == "Pneumonitis"
    assert hits[0]["meddra_code"] == 10035742


def test_grades_shows_definitions_not_available_grades_and_the_navigational_note():
    result = runner.invoke(app, ["ae", "grades", "ALT", "increased"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Alanine aminotransferase increased" in text
    assert "not available" in text  # grade 5
    assert "Also consider Hepatobiliary disorders: Hepatic failure" in text


def test_grades_of_an_unknown_term_is_one_sentence_with_a_suggestion():
    result = runner.invoke(app, ["ae", "grades", "Pneumonitiss"])
    assert result.exit_code == 1
    assert "did you mean 'Pneumonitis'" in result.output
