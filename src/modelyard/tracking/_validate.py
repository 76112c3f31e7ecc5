"""Checks on names and values before anything is stored."""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Mapping
from numbers import Real
from typing import Any

from modelyard.errors import InvalidInput, NotFound

MAX_KEY = 250
INT64_MAX = 2**63 - 1
_KEY = re.compile(r"^[\w\-. /:]+$")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def check_int64(field: str, value: Any, *, minimum: int = -INT64_MAX - 1) -> int:
    """An integer that fits the database's 64-bit columns."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= INT64_MAX:
        raise InvalidInput(
            f"{field} must be an integer from {minimum} to {INT64_MAX}, got {value!r}"
        )
    return value


def check_text(kind: str, value: str) -> str:
    """Free text (values, notes, sources): anything but NUL, which databases disagree on."""
    if "\x00" in value:
        raise InvalidInput(f"{kind} must not contain a NUL character")
    return value


def run_id(value: Any) -> str:
    """A run id as modelyard makes them (32 hex digits); anything else names no run."""
    if not isinstance(value, str) or not _RUN_ID.match(value):
        raise NotFound(f"run {value!r} does not exist (run ids are 32 hex digits)")
    return value


def check_key(kind: str, key: object) -> str:
    """A metric, param or tag name: 1-250 characters of letters, digits, `_-. /:`."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY or not _KEY.match(key):
        raise InvalidInput(
            f"invalid {kind} name {key!r}: use 1-{MAX_KEY} letters, digits, spaces and _ - . / :"
        )
    if key != key.strip():
        raise InvalidInput(f"invalid {kind} name {key!r}: no leading or trailing spaces")
    return key


def check_name(kind: str, name: object, max_len: int = 256) -> str:
    """A display name (experiment, run): non-empty, at most `max_len` characters."""
    if not isinstance(name, str) or not name.strip() or len(name) > max_len or "\x00" in name:
        raise InvalidInput(f"invalid {kind} name {name!r}: use 1-{max_len} characters, no NUL")
    return name


def metric_value(key: str, value: Any) -> float:
    """A metric value as a float: numbers (NaN and infinities included), not bools or text."""
    if isinstance(value, bool) or not isinstance(value, Real | int | float):
        try:
            import numpy as np

            if isinstance(value, np.generic) and np.issubdtype(value.dtype, np.number):
                return float(value)
        except ImportError:  # pragma: no cover - numpy is a dependency
            pass
        raise InvalidInput(f"metric {key!r} must be a number, got {type(value).__name__} {value!r}")
    return float(value)


def param_value(key: str, value: Any) -> str:
    """Params are stored as text, as `str()` renders them."""
    if value is None or isinstance(value, str | int | float | bool):
        return check_text(f"param {key!r}", str(value))
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return str(value.item())
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, list | tuple | dict):
        return check_text(f"param {key!r}", str(value))
    raise InvalidInput(f"param {key!r}: cannot store a {type(value).__name__} as a param value")


def tag_value(key: str, value: Any) -> str:
    if not isinstance(value, str | int | float | bool):
        raise InvalidInput(f"tag {key!r} must be text, got {type(value).__name__}")
    return check_text(f"tag {key!r}", str(value))


def check_step(step: Any) -> int:
    return check_int64("metric step", step)


def check_timestamp(timestamp: Any) -> int:
    return check_int64("timestamp (Unix ms)", timestamp, minimum=0)


def artifact_path(path: str) -> str:
    """A relative POSIX path inside a run, with no `..`, normalised."""
    if not isinstance(path, str) or not path.strip() or "\x00" in path:
        raise InvalidInput("artifact path must be a non-empty relative path without NUL")
    normalised = posixpath.normpath(path.replace("\\", "/"))
    if normalised.startswith(("/", "../")) or normalised in {".", ".."} or len(normalised) > 1024:
        raise InvalidInput(
            f"invalid artifact path {path!r}: use a relative path inside the run, without '..'"
        )
    return normalised


def string_map(kind: str, values: Mapping[str, Any] | None) -> dict[str, str]:
    converter = param_value if kind == "param" else tag_value
    return {check_key(kind, k): converter(k, v) for k, v in (values or {}).items()}


def is_nan(value: float) -> bool:
    return math.isnan(value)


def metric_point(metric: Any) -> Any:
    """A `Metric` with a checked name, a float value and integer step and timestamp."""
    from modelyard.tracking._entities import Metric

    key = check_key("metric", metric.key)
    return Metric(
        key,
        metric_value(key, metric.value),
        check_step(metric.step),
        check_timestamp(metric.timestamp),
    )
