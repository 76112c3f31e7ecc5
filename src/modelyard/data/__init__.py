"""Data: quality profiles, dataset versions with lineage, validation and deduplication.

Profiles live here, in the assets layer, because a model version stores the profile of its
training data; monitoring compares the prediction log against it. Dataset versions are
content-hashed and kept in the metadata database with their schema and profile; `validate`
checks a table against a schema or a stored version; `lineage` links a model version to
its data and its deployments. Names load on first use, so `import modelyard.data` imports
neither NumPy nor pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.data._dedup import DedupReport, deduplicate
    from modelyard.data._default import (
        compare_datasets,
        get_dataset,
        lineage,
        lineage_of_dataset,
        list_datasets,
        log_dataset,
        validate,
    )
    from modelyard.data._lineage import LineageEdge, LineageGraph, LineageNode
    from modelyard.data._profile import ColumnProfile, Profile, profile, profile_parquet
    from modelyard.data._validate import ValidationReport, Violation
    from modelyard.data._versions import DatasetComparison, DatasetVersion, DatasetVersions

_HOMES = {
    "ColumnProfile": "_profile",
    "Profile": "_profile",
    "profile": "_profile",
    "profile_parquet": "_profile",
    "DatasetComparison": "_versions",
    "DatasetVersion": "_versions",
    "DatasetVersions": "_versions",
    "ValidationReport": "_validate",
    "Violation": "_validate",
    "DedupReport": "_dedup",
    "deduplicate": "_dedup",
    "LineageEdge": "_lineage",
    "LineageGraph": "_lineage",
    "LineageNode": "_lineage",
    "compare_datasets": "_default",
    "get_dataset": "_default",
    "lineage": "_default",
    "lineage_of_dataset": "_default",
    "list_datasets": "_default",
    "log_dataset": "_default",
    "validate": "_default",
}
__all__ = [
    "ColumnProfile",
    "DatasetComparison",
    "DatasetVersion",
    "DatasetVersions",
    "DedupReport",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "Profile",
    "ValidationReport",
    "Violation",
    "compare_datasets",
    "deduplicate",
    "get_dataset",
    "lineage",
    "lineage_of_dataset",
    "list_datasets",
    "log_dataset",
    "profile",
    "profile_parquet",
    "validate",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'modelyard.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"modelyard.data.{home}"), name)


def __dir__() -> list[str]:
    return list(__all__)
