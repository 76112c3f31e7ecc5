"""JSON encoding of tracking values for the REST API (NaN and infinities as strings)."""

from __future__ import annotations

from dataclasses import is_dataclass
from functools import cache
from typing import Any, TypeVar, cast

from pydantic import ConfigDict, TypeAdapter

T = TypeVar("T")


_CONFIG = ConfigDict(ser_json_inf_nan="strings")


@cache
def _adapter(tp: Any) -> TypeAdapter[Any]:
    if isinstance(tp, type) and is_dataclass(tp):  # dataclasses carry their own config
        return TypeAdapter(tp)
    return TypeAdapter(tp, config=_CONFIG)


def dump(value: Any, tp: Any, *, indent: int | None = None) -> bytes:
    """`value` of type `tp` as JSON bytes."""
    return _adapter(tp).dump_json(value, indent=indent)


def load(data: bytes | str, tp: type[T]) -> T:
    """JSON of type `tp` back into a value (dataclasses rebuilt, NaN restored)."""
    result: T = _adapter(cast(Any, tp)).validate_json(data)
    return result
