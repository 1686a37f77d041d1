"""``abscopal import``: data from the systems a hospital already runs (ODM, REDCap, DICOM RT), all or nothing.

Each source's commands live in their own module (``cli/import_<source>.py``, with ``register(app)``).
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    help="Import an ODM file, a REDCap project, or DICOM RT plans and treatment records; a failed import writes "
    "nothing.",
    no_args_is_help=True,
)

SOURCES = ("abscopal.cli.import_odm", "abscopal.cli.import_redcap", "abscopal.cli.import_rt")

for _name in SOURCES:
    importlib.import_module(_name).register(app)
