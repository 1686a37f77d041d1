"""Table rows back to domain objects, field by field, from the dataclasses' own type hints (writes: codec.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from typing import Any

from abscopal import domain as d


def _base(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


Converter = typing.Callable[[Any], Any]
_PLANS: dict[tuple[type[Any], frozenset[str]], tuple[tuple[str, Converter | None], ...]] = {}


def _field_plan(cls: type[Any], skip: frozenset[str]) -> tuple[tuple[str, Converter | None], ...]:
    """(field name, converter of a non-null stored value or None when it is kept as it is) of a dataclass, cached:
    rows are converted by the million in bulk loads, so the type of each field is looked at once, not per row."""
    plan = _PLANS.get((cls, skip))
    if plan is None:
        hints = d.field_hints(cls)
        plan = tuple((f.name, _converter(_base(hints[f.name]))) for f in dataclasses.fields(cls) if f.name not in skip)
        _PLANS[(cls, skip)] = plan
    return plan


def _enum_converter(hint: type[enum.Enum]) -> Converter:
    members = hint._value2member_map_  # the enum's own value -> member table: what hint(value) looks up first

    def convert(value: Any) -> Any:
        try:
            return members[value]
        except (KeyError, TypeError):  # not a value of the enum (or unhashable): the enum's own error
            return hint(value)

    return convert


def _lab_values(value: Any) -> Any:
    return {k: d.LabValue(**v) for k, v in value.items()}


def _aware(value: Any) -> Any:
    return value.replace(tzinfo=dt.UTC) if isinstance(value, dt.datetime) and value.tzinfo is None else value


def _converter(hint: Any) -> Converter | None:
    """How a stored value of a field typed ``hint`` becomes the domain's (None: as it is)."""
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_converter(hint)
    if typing.get_origin(hint) is dict:
        _, vtype = typing.get_args(hint)
        return _lab_values if vtype is d.LabValue else dict
    if hint is dt.datetime:
        return _aware
    if hint is float:
        return float
    return None


def dict_rows(result: Any) -> list[dict[str, Any]]:
    """A result's rows as dicts keyed by column name, as ``[dict(r) for r in result.mappings()]`` gives them but
    ~1.5x faster (a row's values zipped with the names read once; 40 fractions 0.42 -> 0.27 ms, 2026-12-04)."""
    keys = tuple(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result]


def from_row(cls: type[Any], row: typing.Mapping[Any, Any], **extra: Any) -> Any:
    """Build a domain object from a row mapping; ``extra`` supplies child collections."""
    kwargs = {}
    for name, convert in _field_plan(cls, frozenset(extra)):
        value = row[name]
        kwargs[name] = value if value is None or convert is None else convert(value)
    kwargs.update(extra)
    return cls(**kwargs)
