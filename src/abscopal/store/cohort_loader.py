"""Storing a synthetic (or imported) cohort in bulk, in chunks, each chunk one audited transaction.

This is an import, not a use case: it writes through the unit of work's bulk path (``uow.add_all``, one audit
record per batch) without the per-record checks of :mod:`abscopal.services`, which every interactive write
(web, API, CLI) goes through. It is used by ``abscopal demo`` on an empty (or demo-only) database.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Engine

from abscopal import domain as d
from abscopal.store.tables import ENTITY_BY_CLASS
from abscopal.store.unit_of_work import UnitOfWork

_SHARED = (d.Site, d.User)


def store_cohort_chunks(
    engine: Engine,
    chunks: Iterable[Any],
    *,
    user: str,
    reason: str,
    on_chunk: Callable[[int, int], None] | None = None,
) -> int:
    """Insert every record of every chunk (a dataclass of tuples of domain objects); return rows written.

    Sites and users repeated across chunks are written once; fields that are not trial data are skipped.
    ``on_chunk(patients, rows)`` reports progress.
    """
    seen: set[tuple[type[Any], str]] = set()
    total = 0
    for chunk in chunks:
        objects: list[Any] = []
        patients = 0
        for f in dataclasses.fields(chunk):
            items = getattr(chunk, f.name)
            if not items or type(items[0]) not in ENTITY_BY_CLASS:
                continue  # not trial data (e.g. the generator's own record of what it intended)
            for obj in items:
                if isinstance(obj, _SHARED):
                    ident = (type(obj), obj.code if isinstance(obj, d.Site) else obj.username)
                    if ident in seen:
                        continue
                    seen.add(ident)
                elif isinstance(obj, d.Patient):
                    patients += 1
                objects.append(obj)
        with UnitOfWork(engine, user=user, reason=reason) as uow:
            rows = uow.add_all(objects)
            uow.commit()
        total += rows
        if on_chunk is not None:
            on_chunk(patients, rows)
    return total
