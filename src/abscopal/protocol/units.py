"""Laboratory units as clinicians write them, converted to the unit the protocol states.

Haemoglobin in g/L or g/dL; blood counts in x10^9/L or cells/uL (= /mm3); enzymes in U/L read against the
site's upper limit of normal (ULN). One table of factors serves the scalar and the vectorised eligibility paths.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from abscopal.errors import ValidationError
from abscopal.messages import N_, Message

# Unit families: canonical unit -> {accepted spelling (normalised): factor to multiply by to get canonical}.
_MASS_CONCENTRATION = {"g/l": 1.0, "g/dl": 10.0, "mg/dl": 0.01, "mg/l": 0.001}
_CELL_COUNT = {
    "10^9/l": 1.0,
    "x10^9/l": 1.0,
    "10^3/ul": 1.0,
    "x10^3/ul": 1.0,
    "k/ul": 1.0,
    "10^3/mm3": 1.0,
    "cells/ul": 0.001,
    "/ul": 0.001,
    "cells/mm3": 0.001,
    "/mm3": 0.001,
    "10^6/l": 0.001,
}
_ENZYME = {"u/l": 1.0, "iu/l": 1.0, "ukat/l": 60.0}

_FAMILIES: dict[str, dict[str, float]] = {
    "g/l": _MASS_CONCENTRATION,
    "10^9/l": _CELL_COUNT,
    "u/l": _ENZYME,
}

# Which family each protocol lab belongs to (the protocol's lab_min checks also state their unit).
LAB_FAMILY: dict[str, str] = {
    "haemoglobin": "g/l",
    "wbc": "10^9/l",
    "neutrophils": "10^9/l",
    "platelets": "10^9/l",
    "ast": "u/l",
    "alt": "u/l",
    "alp": "u/l",
}


def normalise_unit(unit: str) -> str:
    """Fold the spellings clinicians use into one key: case, spaces, micro signs, x/×, ~ for ^, mm³."""
    u = unit.strip().lower().replace(" ", "")
    for micro in ("µ", "μ"):  # micro sign and Greek mu
        u = u.replace(micro, "u")
    u = u.replace("mcl", "ul")
    u = u.replace("×", "x").replace("*", "x").replace("~", "^").replace("mm³", "mm3").replace("mm^3", "mm3")
    u = u.replace("e9/l", "^9/l").replace("e3/ul", "^3/ul").replace("e6/l", "^6/l")
    if u.startswith("x10"):
        u = u[1:]
    return u


def family_of(lab: str, canonical_unit: str | None = None) -> dict[str, float]:
    """The accepted units of ``lab`` (by the protocol's canonical unit when given, else by the lab's name)."""
    key = normalise_unit(canonical_unit) if canonical_unit else LAB_FAMILY.get(lab)
    if key is None or key not in _FAMILIES:
        raise ValidationError(f"labs.{lab}", Message(N_("no known unit family for {lab}"), lab=repr(lab)))
    return _FAMILIES[key]


def factor(lab: str, unit: str, canonical_unit: str | None = None) -> float:
    """Factor converting a value of ``lab`` in ``unit`` to the canonical unit; unknown unit -> ValidationError."""
    family = family_of(lab, canonical_unit)
    key = normalise_unit(unit)
    if key not in family:
        accepted = ", ".join(sorted({_display(k) for k in family}))
        raise ValidationError(
            f"labs.{lab}.unit",
            Message(N_("unit {unit} is not known for {lab} (accepted: {accepted})"), unit=repr(unit), lab=lab,
                    accepted=accepted),
        )  # fmt: skip
    scale = family[key]
    if canonical_unit is not None:
        scale /= family[normalise_unit(canonical_unit)]
    return scale


def convert(lab: str, value: float, unit: str, canonical_unit: str | None = None) -> float:
    """``value`` of ``lab`` in ``unit`` expressed in the canonical unit (e.g. 9.5 g/dL -> 95 g/L)."""
    return value * factor(lab, unit, canonical_unit)


def factors_for(lab: str, units: Iterable[str | None], canonical_unit: str | None = None) -> npt.NDArray[np.float64]:
    """Factors for a sequence of distinct unit spellings (None -> NaN): the vectorised path maps codes to these."""
    return np.array(
        [np.nan if u is None else factor(lab, u, canonical_unit) for u in units],
        dtype=np.float64,
    )


def display_unit(unit: str) -> str:
    """How a canonical unit is printed in explanations (10^9/L is shown as x10^9/L)."""
    return _display(normalise_unit(unit))


def _display(key: str) -> str:
    return {
        "g/l": "g/L",
        "g/dl": "g/dL",
        "mg/dl": "mg/dL",
        "mg/l": "mg/L",
        "10^9/l": "x10^9/L",
        "x10^9/l": "x10^9/L",
        "10^3/ul": "x10^3/uL",
        "x10^3/ul": "x10^3/uL",
        "k/ul": "K/uL",
        "10^3/mm3": "x10^3/mm3",
        "cells/ul": "cells/uL",
        "/ul": "/uL",
        "cells/mm3": "cells/mm3",
        "/mm3": "/mm3",
        "10^6/l": "x10^6/L",
        "u/l": "U/L",
        "iu/l": "IU/L",
        "ukat/l": "ukat/L",
    }.get(key, key)
