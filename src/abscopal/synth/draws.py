"""Fast random draws on a per-patient ``random.Random`` (the generator's hot path calls these millions of times)."""

from __future__ import annotations

import random
from typing import TypeVar

T = TypeVar("T")


def randint(r: random.Random, low: int, high: int) -> int:
    """A whole number in [low, high], both included (like ``Random.randint``, without its argument checks)."""
    return low + int(r.random() * (high - low + 1))


def pick(r: random.Random, table: tuple[tuple[T, float], ...]) -> T:
    """A weighted choice from ``(value, weight)`` pairs."""
    total = 0.0
    for _, w in table:
        total += w
    x = r.random() * total
    for value, w in table:
        x -= w
        if x < 0:
            return value
    return table[-1][0]
