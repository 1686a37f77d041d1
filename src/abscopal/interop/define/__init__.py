"""define.xml 2.1 for the SDTM export (interop.md §3), and its HTML rendering for reviewers."""

from __future__ import annotations

from abscopal.interop.define.build import build_define, column_type, write_define
from abscopal.interop.define.html import write_define_html

__all__ = ["build_define", "column_type", "write_define", "write_define_html"]
