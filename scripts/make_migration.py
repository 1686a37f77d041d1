"""Write a new Alembic revision from the difference between the migrations and the schema (developers only).

Usage: .venv/bin/python scripts/make_migration.py "what changed" [REV_ID]
It upgrades a throw-away SQLite database to the current head, then autogenerates the next revision.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from abscopal.store.migrate import alembic_config


def main() -> None:
    message = sys.argv[1] if len(sys.argv) > 1 else "schema change"
    rev_id = sys.argv[2] if len(sys.argv) > 2 else None
    with tempfile.TemporaryDirectory() as tmp:
        cfg = alembic_config(f"sqlite:///{Path(tmp) / 'scratch.sqlite'}")
        command.upgrade(cfg, "head")
        command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)


if __name__ == "__main__":
    main()
