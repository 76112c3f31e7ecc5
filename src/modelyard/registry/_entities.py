"""Values of the model registry: registered models, versions, alias events, approvals."""

from __future__ import annotations

from dataclasses import dataclass, field


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
