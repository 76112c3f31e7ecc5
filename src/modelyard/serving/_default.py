"""`my.serving.*`: the prediction log and feedback of the default stores or server (what
`my.configure` names)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.serving._feedback import Feedback

Moment = dt.datetime | int
"""A point in time: a datetime (naive means UTC) or Unix milliseconds."""
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_ms(value: Moment | None, name: str = "time") -> int | None:
    """`value` in Unix milliseconds."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return (aware - _EPOCH) // dt.timedelta(milliseconds=1)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InvalidInput(f"{name} must be a datetime or Unix milliseconds, got {value!r}")


def read_predictions(
    model: str,
    *,
    version: int | None = None,
    since: Moment | None = None,
    until: Moment | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Logged predictions of `model` made `since <= at < until`, oldest first (`limit`: the
    most recent). Columns: prediction_id, model, version, at, latency_ms, inputs, outputs,
    and deployment, variant, parent_id (None for a model served by name)."""
    from modelyard._sdk import default_prediction_log

    return default_prediction_log().read(
        model,
        version=version,
        since_ms=to_ms(since, "since"),
        until_ms=to_ms(until, "until"),
        limit=limit,
    )


def read_feedback(
    model: str,
    *,
    version: int | None = None,
    since: Moment | None = None,
    until: Moment | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Feedback on `model` received `since <= at < until`, oldest first (`limit`: the most
    recent). Columns: prediction_id, model, version, at, label."""
    from modelyard._sdk import default_feedback

    return default_feedback().read(
        model,
        version=version,
        since_ms=to_ms(since, "since"),
        until_ms=to_ms(until, "until"),
        limit=limit,
    )


def record_feedback(items: Sequence[tuple[str, Any]] | Mapping[str, Any]) -> list[Feedback]:
    """Record labels for several predictions, `{prediction_id: label}` or pairs, all or none."""
    from modelyard._sdk import default_feedback

    pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
    return default_feedback().record(pairs)
