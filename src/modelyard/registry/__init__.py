"""The model registry: versions, aliases with their history, approvals, rollback."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.errors import InvalidInput
from modelyard.registry._entities import ModelVersion, RegisteredModel, RegistryEvent
from modelyard.registry._sql import SqlRegistry, check_alias, parse_model_uri

if TYPE_CHECKING:
    from modelyard.config import Settings


def open_registry(settings: Settings) -> SqlRegistry:
    """The registry in the metadata database `settings` names."""
    from modelyard.store import MetadataStore

    if settings.tracking_uri:
        raise InvalidInput(
            "the registry is not served over HTTP yet: use it where the metadata database is "
            "(unset tracking_uri and set db_url)"
        )
    return SqlRegistry(
        MetadataStore(settings.resolved_db_url, busy_timeout_s=settings.sqlite_busy_timeout_s)
    )


__all__ = [
    "ModelVersion",
    "RegisteredModel",
    "RegistryEvent",
    "SqlRegistry",
    "check_alias",
    "open_registry",
    "parse_model_uri",
]
