"""Values of the model registry: models, versions, alias events, lineage, comparisons."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ConfigDict

from modelyard.tracking._entities import DatasetInput

_WIRE = ConfigDict(ser_json_inf_nan="strings")


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    created_at: int
    latest_version: int
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    protected_aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelVersion:
    """One immutable version of a registered model."""

    name: str
    version: int
    status: str
    created_at: int
    created_by: str
    run_id: str | None = None
    manifest_digest: str | None = None
    flavor: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class RegistryEvent:
    """One entry of a model's history: an alias change or an approval decision."""

    at: int
    kind: str  # set, move, delete, rollback, approved, rejected
    actor: str
    alias: str | None = None
    from_version: int | None = None
    to_version: int | None = None
    version: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Lineage:
    """Where a version came from: its run, the run's code commit and the datasets it used.

    Run and git fields are None for a version registered without a run (or a run that
    recorded no git state).
    """

    version: ModelVersion
    run_id: str | None = None
    run_name: str | None = None
    experiment_name: str | None = None
    run_status: str | None = None
    parent_run_id: str | None = None
    git_commit: str | None = None
    git_branch: str | None = None
    git_dirty: bool | None = None
    git_remote: str | None = None
    datasets: tuple[DatasetInput, ...] = ()


@dataclass(frozen=True)
class MetricDifference:
    """One metric of two versions side by side; `difference` is b - a (None if one lacks it)."""

    __pydantic_config__ = _WIRE

    key: str
    a: float | None
    b: float | None
    difference: float | None


@dataclass(frozen=True)
class VersionComparison:
    """Two versions of a model and what differs between them.

    Pairs are (a, b); `params` and `requirements` hold only the keys whose values differ.
    `signature` lists the differences `Signature.diff` finds going from a to b.
    """

    __pydantic_config__ = _WIRE

    a: ModelVersion
    b: ModelVersion
    metrics: tuple[MetricDifference, ...] = ()
    params: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    signature: tuple[str, ...] = ()
    flavor: tuple[str | None, str | None] = (None, None)
    model_class: tuple[str | None, str | None] = (None, None)
    python: tuple[str | None, str | None] = (None, None)
    requirements: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
