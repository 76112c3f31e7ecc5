"""What a stored monitor is: its model, windows, reference and checks, validated.

Checks are named by a string (`"data_drift"`) or a dict with options
(`{"check": "fairness", "sensitive": ["gender"]}`); unknown checks and options are refused
when the monitor is created, never discovered at run time.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelyard.errors import InvalidInput
from modelyard.monitoring._concept import DETECTORS

# Each check with the options it takes (and their types).
CHECK_OPTIONS: dict[str, dict[str, tuple[type, ...]]] = {
    "data_drift": {"columns": (list,), "multivariate": (bool,), "alpha": (float, int)},
    "skew": {"columns": (list,), "alpha": (float, int)},
    "prediction_drift": {"alpha": (float, int)},
    "data_quality": {"key": (str, list)},
    "performance": {
        "task": (str,),
        "positive_label": (str, int, float, bool),
        "confidence": (float,),
        "min_labels": (int,),
    },
    "concept": {"detector": (str,)},
    "fairness": {
        "sensitive": (str, list),
        "positive_label": (str, int, float, bool),
        "four_fifths": (float,),
        "max_difference": (float,),
    },
    "latency": {},
}
DEFAULT_CHECKS = ("data_drift", "prediction_drift", "data_quality", "performance", "latency")
DATASET_ROWS = 100_000  # a dataset reference keeps a uniform sample of at most so many rows
_REQUIRED = {"fairness": ("sensitive",)}
# Option values every window would refuse, refused when the monitor is created instead.
_CHOICES = {"task": ("classification", "regression"), "detector": tuple(DETECTORS)}
_LEVELS = ("alpha", "confidence")  # strictly between 0 and 1
_COLUMN_LISTS = ("columns", "sensitive", "key")  # column names, each given once
_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")


@dataclass(frozen=True)
class Check:
    """One check of a monitor and its options."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.name, **self.options}


@dataclass(frozen=True)
class Monitor:
    """A stored monitor. Exactly one of `window_ms` and `window_rows` is set."""

    name: str
    model: str
    alias: str | None
    version: int | None
    window_ms: int | None
    window_rows: int | None
    checks: tuple[Check, ...]
    reference: dict[str, Any]
    schedule_ms: int | None
    label_delay_ms: int
    created_at: int
    last_run_at: int | None = None

    @property
    def window(self) -> str:
        if self.window_rows is not None:
            return f"{self.window_rows} rows"
        return format_duration(self.window_ms or 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "alias": self.alias,
            "version": self.version,
            "window": self.window,
            "window_ms": self.window_ms,
            "window_rows": self.window_rows,
            "checks": [c.to_dict() for c in self.checks],
            "reference": self.reference,
            "schedule": None if self.schedule_ms is None else format_duration(self.schedule_ms),
            "label_delay": format_duration(self.label_delay_ms),
            "created_at": self.created_at,
            "last_run_at": self.last_run_at,
        }


def parse_duration(text: str | int | float, what: str) -> int:
    """Milliseconds of "90s", "15m", "1h", "1d", "1w" (or a number of seconds)."""
    if isinstance(text, bool):
        raise InvalidInput(f"{what} must be a duration such as '1h', got {text!r}")
    if isinstance(text, int | float):
        ms = round(text * 1000)
    else:
        match = _DURATION.match(str(text))
        if match is None:
            raise InvalidInput(
                f"{what} {text!r} is not a duration: write a number and a unit (ms, s, m, h, d, "
                "w), e.g. '1h' or '15m'"
            )
        ms = round(float(match.group(1)) * _UNITS_MS[match.group(2)])
    if ms < 0:
        raise InvalidInput(f"{what} must not be negative, got {text!r}")
    return ms


def format_duration(ms: int) -> str:
    if ms == 0:
        return "0s"
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS_MS[unit]
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def parse_checks(checks: Sequence[str | Mapping[str, Any]] | None) -> tuple[Check, ...]:
    """Validated checks; None gives `DEFAULT_CHECKS`."""
    if checks is None:
        return tuple(Check(name) for name in DEFAULT_CHECKS)
    if isinstance(checks, str | bytes) or not isinstance(checks, Sequence) or not checks:
        raise InvalidInput("checks must be a non-empty list of check names or dicts")
    parsed = [_check(item) for item in checks]
    names = [c.name for c in parsed]
    if repeated := sorted({n for n in names if names.count(n) > 1}):
        raise InvalidInput(f"check(s) {', '.join(repeated)} given twice: give each check once")
    return tuple(parsed)


def _check(item: str | Mapping[str, Any]) -> Check:
    if isinstance(item, str):
        name, options = item, {}
    elif isinstance(item, Mapping) and isinstance(item.get("check"), str):
        name, options = item["check"], {k: v for k, v in item.items() if k != "check"}
    else:
        raise InvalidInput(
            f"a check is a name or a dict with a 'check' key, e.g. {{'check': 'fairness', "
            f"'sensitive': ['gender']}}; got {item!r}"
        )
    allowed = CHECK_OPTIONS.get(name)
    if allowed is None:
        raise InvalidInput(f"unknown check {name!r}; the checks are {', '.join(CHECK_OPTIONS)}")
    for key, value in options.items():
        types = allowed.get(key)
        if types is None:
            known = ", ".join(allowed) or "none"
            raise InvalidInput(f"check {name!r} has no option {key!r}; its options: {known}")
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            wanted = " or ".join(t.__name__ for t in types)
            raise InvalidInput(f"option {key!r} of check {name!r} must be {wanted}, got {value!r}")
        _check_value(name, key, value)
    if missing := [k for k in _REQUIRED.get(name, ()) if k not in options]:
        raise InvalidInput(f"check {name!r} needs option(s) {', '.join(missing)}")
    return Check(name, dict(options))


def _check_value(check: str, key: str, value: Any) -> None:
    where = f"option {key!r} of check {check!r}"
    if key in _CHOICES and value not in _CHOICES[key]:
        raise InvalidInput(f"{where} is one of {', '.join(_CHOICES[key])}, got {value!r}")
    if key in _LEVELS and not 0 < value < 1:
        raise InvalidInput(f"{where} must be strictly between 0 and 1, got {value!r}")
    if key in _COLUMN_LISTS and isinstance(value, list):
        if not all(isinstance(column, str) for column in value):
            raise InvalidInput(f"{where} is a list of column names, got {value!r}")
        if repeated := sorted({c for c in value if value.count(c) > 1}):
            raise InvalidInput(f"{where} names column(s) {', '.join(repeated)} more than once")


def parse_reference(reference: Any) -> tuple[dict[str, Any], bytes | None]:
    """The stored form of a reference: its JSON spec, and Parquet bytes for a dataset."""
    import pandas as pd

    from modelyard.serving._default import to_ms

    if isinstance(reference, str) and reference == "training":
        return {"kind": "training"}, None
    if isinstance(reference, pd.DataFrame):
        if len(reference) == 0:
            raise InvalidInput("the reference dataset is empty")
        rows = len(reference)
        sample = (
            reference.sample(DATASET_ROWS, random_state=0).sort_index()
            if rows > DATASET_ROWS
            else reference
        )
        buffer = io.BytesIO()
        sample.reset_index(drop=True).set_axis([str(c) for c in sample.columns], axis=1).to_parquet(
            buffer
        )
        return {"kind": "dataset", "rows": rows, "sample_rows": len(sample)}, buffer.getvalue()
    if isinstance(reference, Mapping) and set(reference) == {"since", "until"}:
        since, until = to_ms(reference["since"], "since"), to_ms(reference["until"], "until")
        assert since is not None and until is not None
        if since >= until:
            raise InvalidInput("the reference window must end after it starts")
        return {"kind": "window", "since": since, "until": until}, None
    raise InvalidInput(
        "reference is 'training' (the version's training data), a window "
        "{'since': ..., 'until': ...} of the prediction log, or a pandas DataFrame"
    )
