"""define.xml 2.1 for the SDTM export (interop.md §3), and its HTML rendering for reviewers."""

from __future__ import annotations

from abscopal.interop.define.build import build_define, column_type, write_define

__all__ = ["build_define", "column_type", "write_define"]
