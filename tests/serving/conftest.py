"""Fixtures the serving tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.config import Settings
from modelyard.registry._sql import SqlRegistry
from modelyard.rollout._store import Deployments
from modelyard.store import open_stores


@pytest.fixture(scope="module")
def store(home: Path) -> Iterator[Deployments]:
    """The deployments in the module's `home`."""
    metadata, artifacts = open_stores(Settings(home=home))
    yield Deployments(metadata, SqlRegistry(metadata, artifacts))
    metadata.close()
