"""``abscopal export``: the trial's data in the formats the field reads (SDTM + define.xml, ODM 1.3.2).

Each format's commands live in their own module (``cli/export_<format>.py``, with ``register(app)``) and import
their libraries only when run, so ``abscopal export --help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    help="Export the trial: CDISC SDTM (SAS XPORT, CSV, Dataset-JSON) with define.xml, and ODM 1.3.2.",
    no_args_is_help=True,
)

FORMATS = ("abscopal.cli.export_sdtm", "abscopal.cli.export_define", "abscopal.cli.export_odm")

for _name in FORMATS:
    importlib.import_module(_name).register(app)
