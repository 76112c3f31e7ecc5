"""Values of the tracking domain: experiments, runs, metrics, artifacts, dataset inputs.

Frozen dataclasses that cross every boundary (store, REST, SDK); pydantic serializes
them for the wire, with NaN and infinities kept as strings so no metric value is lost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from pydantic import ConfigDict

_WIRE = ConfigDict(ser_json_inf_nan="strings")

View = Literal["active", "deleted", "all"]


def now_ms() -> int:
    """Wall-clock time in Unix milliseconds, the unit of every stored timestamp."""
    return time.time_ns() // 1_000_000


class RunStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"


@dataclass(frozen=True)
class Experiment:
    id: int
    name: str
    lifecycle: str
    created_at: int
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    """One point of a metric's history."""

    __pydantic_config__ = _WIRE

    key: str
    value: float
    step: int
    timestamp: int


@dataclass(frozen=True)
class LogBatch:
    """Params, metric points and tags logged to a run in one transaction."""

    __pydantic_config__ = _WIRE

    params: dict[str, str] = field(default_factory=dict)
    metrics: tuple[Metric, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Artifact:
    path: str
    digest: str
    size: int
    created_at: int


@dataclass(frozen=True)
class DatasetInput:
    """A dataset a run used: its content hash, schema and role (training, validation, …)."""

    name: str
    role: str
    digest: str
    schema: dict[str, str]
    num_rows: int | None = None
    num_columns: int | None = None
    source: str | None = None


@dataclass(frozen=True)
class RunSpec:
    """What is needed to create a run."""

    experiment_id: int
    name: str
    user: str
    start_time: int
    tags: dict[str, str] = field(default_factory=dict)
    parent_id: str | None = None
    environment: dict[str, Any] | None = None


@dataclass(frozen=True)
class Run:
    """A snapshot of a run: its attributes, params, tags and final metric values."""

    id: str
    name: str
    experiment_id: int
    experiment_name: str
    status: RunStatus
    lifecycle: str
    user: str
    start_time: int
    end_time: int | None = None
    parent_id: str | None = None
    note: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Metric] = field(default_factory=dict)
    datasets: tuple[DatasetInput, ...] = ()
    environment: dict[str, Any] | None = None

    @property
    def duration_ms(self) -> int | None:
        return None if self.end_time is None else self.end_time - self.start_time


@dataclass(frozen=True)
class RunQuery:
    """A run search: filter text, ordering and one page's bounds."""

    experiment_ids: tuple[int, ...] | None = None
    filter: str | None = None
    order_by: tuple[str, ...] = ()
    max_results: int = 1000
    page_token: str | None = None
    view: View = "active"


@dataclass(frozen=True)
class RunPage:
    """One page of search results; `next_page_token` is None on the last page."""

    runs: tuple[Run, ...]
    next_page_token: str | None = None
