"""Lab unit conversions: the units clinicians write, into the unit the protocol states.

Factors are definitional: 1 g/dL = 10 g/L; 1 cell/uL = 1 cell/mm3 = 10^6 cells/L = 10^-3 x10^9/L;
1 ukat/L = 60 U/L (1 U = 1 umol/min = 1/60 ukat).
"""

from __future__ import annotations

import pytest

from abscopal.errors import ValidationError
from abscopal.protocol import units


@pytest.mark.parametrize(
    ("lab", "value", "unit", "canonical", "expected"),
    [
        ("haemoglobin", 9.5, "g/dL", "g/L", 95.0),
        ("haemoglobin", 95, "g/L", "g/L", 95.0),
        ("haemoglobin", 95, " G / L ", "g/L", 95.0),
        ("neutrophils", 1800, "cells/uL", "10^9/L", 1.8),
        ("neutrophils", 1800, "/mm3", "10^9/L", 1.8),
        ("neutrophils", 1800, "cells/µL", "10^9/L", 1.8),
        ("neutrophils", 1.8, "x10^9/L", "10^9/L", 1.8),
        ("neutrophils", 1.8, "×10~9/L", "10^9/L", 1.8),
        ("platelets", 150, "10^3/uL", "10^9/L", 150.0),
        ("alt", 1.0, "ukat/L", None, 60.0),
        ("alt", 1.0, "µkat/L", None, 60.0),
        ("wbc", 4500, "cells/mcL", "10^9/L", 4.5),
        ("wbc", 4.5, "10E9/L", "10^9/L", 4.5),
        ("alt", 40, "IU/L", None, 40.0),
    ],
)
def test_a_lab_value_converts_to_the_protocol_unit(
    lab: str, value: float, unit: str, canonical: str | None, expected: float
) -> None:
    assert units.convert(lab, value, unit, canonical) == pytest.approx(expected)


def test_an_unknown_unit_names_the_lab_and_lists_the_accepted_units() -> None:
    with pytest.raises(ValidationError) as info:
        units.convert("haemoglobin", 12, "mmol/L", "g/L")
    assert info.value.field == "labs.haemoglobin.unit"
    assert "g/dL" in info.value.reason


def test_a_unit_of_the_wrong_family_is_refused() -> None:
    with pytest.raises(ValidationError, match="neutrophils"):
        units.convert("neutrophils", 3, "g/L", "10^9/L")
