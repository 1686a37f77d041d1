"""The permission table as Markdown (docs/web.md shows it; a test keeps the two equal)."""

from __future__ import annotations

from abscopal.domain import Role
from abscopal.services.common import PERMISSIONS, Action

COLUMNS: tuple[tuple[Role, str], ...] = (
    (Role.COORDINATOR, "coord"), (Role.INVESTIGATOR, "inv"), (Role.DCP, "dcp"), (Role.RADONC, "radonc"),
    (Role.RADIOLOGIST, "radiol"), (Role.DATA_MANAGER, "dm"), (Role.MONITOR, "monitor"), (Role.STATISTICIAN, "stat"),
    (Role.PATIENT, "patient"), (Role.ADMIN, "admin"),
)  # fmt: skip


def markdown() -> str:
    """One row per action of :data:`abscopal.services.common.PERMISSIONS`: Y where the role may."""
    head = "| Action | " + " | ".join(short for _, short in COLUMNS) + " |"
    rule = "|---" * (len(COLUMNS) + 1) + "|"
    rows = [
        f"| {action.value} | " + " | ".join("Y" if role in PERMISSIONS[action] else "–" for role, _ in COLUMNS) + " |"
        for action in Action
    ]
    return "\n".join([head, rule, *rows])
