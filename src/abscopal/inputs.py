"""Reading the files users hand to Abscopal (CSV, JSON): a missing or unreadable file is one sentence."""

from __future__ import annotations

from pathlib import Path

from abscopal.errors import InputFileError, Problem


def read_input_text(path: str | Path) -> str:
    """The file's text (UTF-8, a byte-order mark dropped), or :class:`InputFileError` saying why not."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputFileError(str(p), [Problem(None, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(str(p), [Problem(None, "", f"cannot be read ({exc.__class__.__name__})")]) from None
