"""Which SDTM datasets an export can build: dataset name -> builder, in the order datasets are written.

A builder is a pure function ``build_<name>(source: SdtmSource) -> list[Dataset]`` (the domain and, when it has
one, its SUPP-- dataset). Entries are ``"module:function"`` strings resolved on use, so one module's import
error names that module and no module is imported before an export needs it. To add a dataset, add one line
to :data:`DATASETS` (its name is what ``abscopal export sdtm --domains`` accepts).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable

from abscopal.errors import ValidationError
from abscopal.interop.sdtm.spec import Dataset, SdtmSource

Builder = Callable[[SdtmSource], list[Dataset]]

_P = "abscopal.interop.sdtm"

#: dataset (domain) name -> "module:function"; trial design first, then special purpose, interventions,
#: events, findings (SDTMIG 3.4 §2.1 order)
DATASETS: dict[str, str] = {
    "TS": f"{_P}.trial_design:build_ts",
    "TI": f"{_P}.trial_design:build_ti",
    "TA": f"{_P}.trial_design:build_ta",
    "TE": f"{_P}.trial_design:build_te",
    "TV": f"{_P}.trial_design:build_tv",
    "DM": f"{_P}.dm:build_dm",
    "DS": f"{_P}.events:build_ds",
    "SV": f"{_P}.events:build_sv",
    "EX": f"{_P}.ex:build_ex",
    "AE": f"{_P}.ae:build_ae",
    "DV": f"{_P}.events:build_dv",
    "LB": f"{_P}.findings:build_lb",
    "IE": f"{_P}.findings:build_ie",
    "TU": f"{_P}.tu:build_tu",
    "TR": f"{_P}.tr:build_tr",
    "RS": f"{_P}.rs:build_rs",
    "QS": f"{_P}.qs:build_qs",
}


def builder(name: str) -> Builder:
    """The builder of dataset ``name`` (case-insensitive); an unknown name is refused naming the known ones."""
    key = name.strip().upper()
    if key not in DATASETS:
        raise ValidationError(
            "--domains", f"{name!r} is not a dataset this export builds (known: {', '.join(DATASETS)})"
        )
    module_name, _, function = DATASETS[key].partition(":")
    fn: Builder = getattr(importlib.import_module(module_name), function)
    return fn


def selected(names: Iterable[str] | None = None) -> list[str]:
    """The dataset names to build, in :data:`DATASETS` order (all when ``names`` is None); unknown ones refused."""
    if names is None:
        return list(DATASETS)
    wanted = {n.strip().upper() for n in names if n.strip()}
    for n in wanted:
        builder(n)  # refuses an unknown name
    return [n for n in DATASETS if n in wanted]


def build_all(source: SdtmSource, names: Iterable[str] | None = None) -> list[Dataset]:
    """Every selected dataset (domains and their SUPP-- datasets), in registry order."""
    out: list[Dataset] = []
    for n in selected(names):
        out.extend(builder(n)(source))
    return out
