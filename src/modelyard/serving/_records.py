"""What the serving hot path hands to the prediction log, and what the log stores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class LoggedBatch:
    """The predictions of one request (or batch), handed to the log off the hot path.

    `inputs` is the validated input, one row per prediction: a DataFrame for a table
    signature, an ndarray for a tensor one. `outputs` maps each output name (`predict`,
    `predict_proba`) to an array with one entry per row. The log writer turns this into
    `PredictionRow`s, masking the `pii` columns.
    """

    model: str
    version: int
    ids: Sequence[str]
    at_ms: int
    latency_ms: float
    inputs: Any
    outputs: Mapping[str, Any]
    pii: frozenset[str] = field(default_factory=frozenset)
    columns: tuple[str, ...] | None = None
    deployment: str | None = None
    variant: str | None = None
    parent_ids: Sequence[str] | None = None


@dataclass(frozen=True, slots=True)
class PredictionRow:
    """One served prediction as the log stores it; `inputs` and `outputs` are JSON text.

    `deployment` and `variant` name the deployment that answered (None for a model served
    by name); `parent_id` is, for a mirrored request or a candidate's failure, the id of the
    prediction the client got.
    """

    id: str
    model: str
    version: int
    at_ms: int
    latency_ms: float
    inputs: str
    outputs: str
    deployment: str | None = None
    variant: str | None = None
    parent_id: str | None = None
