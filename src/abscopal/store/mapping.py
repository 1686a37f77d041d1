"""Table rows back to domain objects, field by field, from the dataclasses' own type hints (writes: codec.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from typing import Any

from abscopal import domain as d


def _hints(cls: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _base(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


_PLANS: dict[tuple[type[Any], frozenset[str]], tuple[tuple[str, Any], ...]] = {}


def _field_plan(cls: type[Any], skip: frozenset[str]) -> tuple[tuple[str, Any], ...]:
    """(field name, base type) of a dataclass, cached: rows are converted by the million in bulk loads."""
    plan = _PLANS.get((cls, skip))
    if plan is None:
        hints = _hints(cls)
        plan = tuple((f.name, _base(hints[f.name])) for f in dataclasses.fields(cls) if f.name not in skip)
        _PLANS[(cls, skip)] = plan
    return plan


def _from_db(value: Any, hint: Any) -> Any:
    if value is None:
        return None
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if typing.get_origin(hint) is dict:
        _, vtype = typing.get_args(hint)
        if vtype is d.LabValue:
            return {k: d.LabValue(**v) for k, v in value.items()}
        return dict(value)
    if hint is dt.datetime and isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    if hint is float and value is not None:
        return float(value)
    return value


def from_row(cls: type[Any], row: typing.Mapping[Any, Any], **extra: Any) -> Any:
    """Build a domain object from a row mapping; ``extra`` supplies child collections."""
    kwargs = {name: _from_db(row[name], hint) for name, hint in _field_plan(cls, frozenset(extra))}
    kwargs.update(extra)
    return cls(**kwargs)
