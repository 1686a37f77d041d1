"""The protocol file: every registered rule is data, errors name the key, amendments make versions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from abscopal.errors import ProtocolError
from abscopal.protocol.model import LabMinCheck, RangeCheck, bundled_protocol_path, load_bundled, parse_protocol

TEXT = bundled_protocol_path().read_text(encoding="utf-8")

AMENDMENT = """
[[amendments]]
version = "1.1"
effective_date = 2023-06-01
description = "Platelets >= 100 x10^9/L"
[amendments.set]
"eligibility.inclusion.IN6.checks.platelets.min" = 100
"""


def test_bundled_protocol_is_the_registry_record_version() -> None:
    p = load_bundled().current
    assert p.trial.id == "NCT05906329"
    assert p.version.number == "1.0"


def test_age_limits_are_18_to_65_inclusive() -> None:
    check = load_bundled().current.eligibility.inclusion["IN2"].checks["age"]
    assert isinstance(check, RangeCheck)
    assert (check.min, check.max, check.min_inclusive, check.max_inclusive) == (18, 65, True, True)


def test_life_expectancy_must_exceed_six_months_strictly() -> None:
    check = load_bundled().current.eligibility.inclusion["IN3"].checks["life_expectancy"]
    assert isinstance(check, RangeCheck)
    assert (check.min, check.min_inclusive) == (6, False)


@pytest.mark.parametrize(
    ("lab", "minimum", "unit"),
    [("haemoglobin", 100, "g/L"), ("wbc", 3.5, "10^9/L"), ("neutrophils", 1.8, "10^9/L"), ("platelets", 10, "10^9/L")],
)
def test_blood_count_thresholds_are_as_registered(lab: str, minimum: float, unit: str) -> None:
    check = load_bundled().current.eligibility.inclusion["IN6"].checks[lab]
    assert isinstance(check, LabMinCheck)
    assert (check.min, check.unit) == (minimum, unit)


def test_registered_platelet_threshold_carries_a_typo_note() -> None:
    check = load_bundled().current.eligibility.inclusion["IN6"].checks["platelets"]
    assert check.note is not None and "typo" in check.note


def test_there_are_eleven_inclusion_and_nine_exclusion_criteria() -> None:
    elig = load_bundled().current.eligibility
    assert (len(elig.inclusion), len(elig.exclusion)) == (11, 9)


def test_five_histologies_are_accepted() -> None:
    check = load_bundled().current.eligibility.inclusion["IN7"].checks["histology"]
    assert len(check.values) == 5  # type: ignore[union-attr]


def test_radiotherapy_regimen_is_the_registered_one() -> None:
    rt = load_bundled().current.radiotherapy
    assert (rt.conventional.dose_per_fraction_gy.min, rt.conventional.dose_per_fraction_gy.max) == (1.8, 2.0)
    assert (rt.conventional.total_dose_gy.min, rt.conventional.total_dose_gy.max) == (40, 60)
    assert rt.low_dose.dose_per_fraction_gy == 1.6
    assert (rt.low_dose.fractions.min, rt.low_dose.fractions.max, rt.low_dose.max_lesions) == (4, 6, 10)
    assert rt.observation.min_lesions == 1


def test_immunotherapy_every_21_days_and_assessments_every_6_weeks() -> None:
    p = load_bundled().current
    assert p.immunotherapy.interval_days == 21
    assert (p.schedule.assessment_interval_days, p.schedule.assessment_window_days) == (42, 7)


def test_resistance_needs_two_deputy_chief_physicians() -> None:
    r = load_bundled().current.resistance
    assert (r.required_signatures, r.signer_role) == (2, "deputy_chief_physician")
    assert (r.primary_min_exposure_days, r.acquired_min_exposure_days) == (42, 183)


def test_amendment_changes_the_value_in_its_version_only() -> None:
    pf = parse_protocol(TEXT + AMENDMENT)
    assert pf.versions == ["1.0", "1.1"]
    assert pf.version("1.0").eligibility.inclusion["IN6"].checks["platelets"].min == 10  # type: ignore[union-attr]
    assert pf.version("1.1").eligibility.inclusion["IN6"].checks["platelets"].min == 100  # type: ignore[union-attr]
    assert pf.current.version.number == "1.1"


def test_version_on_a_date_picks_the_amendment_in_force() -> None:
    pf = parse_protocol(TEXT + AMENDMENT)
    assert pf.version_on(dt.date(2023, 5, 31)).version.number == "1.0"
    assert pf.version_on(dt.date(2023, 6, 1)).version.number == "1.1"


def test_amendment_of_a_key_that_does_not_exist_names_it() -> None:
    bad = AMENDMENT.replace("checks.platelets.min", "checks.platelet.min")
    with pytest.raises(ProtocolError, match=r"amendments\[0\]\.set\.eligibility\.inclusion\.IN6\.checks\.platelet"):
        parse_protocol(TEXT + bad)


def test_amendment_with_an_invalid_value_names_the_key() -> None:
    bad = AMENDMENT.replace('min" = 100', 'min" = "a hundred"')
    with pytest.raises(ProtocolError, match=r"amendments\[0\]\.eligibility\.inclusion\.IN6\.checks\.platelets\.min"):
        parse_protocol(TEXT + bad)


def test_amendment_reusing_a_version_number_is_refused() -> None:
    with pytest.raises(ProtocolError, match="used twice"):
        parse_protocol(TEXT + AMENDMENT.replace('"1.1"', '"1.0"'))


def test_unknown_key_is_named_as_a_probable_typo() -> None:
    bad = TEXT.replace("interval_days = 21", "intervall_days = 21")
    with pytest.raises(ProtocolError, match=r"immunotherapy\.intervall_days: unknown key"):
        parse_protocol(bad)


def test_missing_key_is_named() -> None:
    bad = TEXT.replace("assessment_interval_days = 42\n", "")
    with pytest.raises(ProtocolError, match=r"schedule\.assessment_interval_days: required key is missing"):
        parse_protocol(bad)


def test_inverted_range_is_refused_naming_the_check() -> None:
    bad = TEXT.replace("min = 18\nmax = 65", "min = 65\nmax = 18")
    with pytest.raises(ProtocolError, match=r"eligibility\.inclusion\.IN2\.checks\.age"):
        parse_protocol(bad)


def test_unknown_check_kind_is_named() -> None:
    bad = TEXT.replace('kind = "lab_max_uln"', 'kind = "lab_max_ulnn"', 1)
    with pytest.raises(ProtocolError, match=r"eligibility\.inclusion\.IN6\.checks\.ast"):
        parse_protocol(bad)


def test_invalid_toml_says_so() -> None:
    with pytest.raises(ProtocolError, match="not valid TOML"):
        parse_protocol("[trial\nid=1")


def test_missing_file_says_file_not_found(tmp_path: Path) -> None:
    from abscopal.protocol.model import load_protocol_file

    with pytest.raises(ProtocolError, match="does not exist"):
        load_protocol_file(tmp_path / "nope.toml")
