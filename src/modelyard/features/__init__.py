"""Features: entities and feature views defined once in Python, joined point in time for
training (DuckDB), served online with their TTL honoured (SQLite or Redis), and the named
sets of features models use. Names load on first use, so `import modelyard.features`
imports neither pandas nor DuckDB.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.features._default import (
        apply,
        dead_letters,
        get_definition,
        get_online,
        get_training_frame,
        ingest,
        list_definitions,
        materialize,
        open_feature_store,
        push,
    )
    from modelyard.features._definitions import (
        DataFrameSource,
        Entity,
        FeatureService,
        FeatureView,
        Field,
        FileSource,
        SqlSource,
    )
    from modelyard.features._registry import Change, Definition, FeatureRegistry
    from modelyard.features._store import FeatureStore, OnlineFeatures

_HOMES = {
    "apply": "_default",
    "dead_letters": "_default",
    "ingest": "_default",
    "get_definition": "_default",
    "get_online": "_default",
    "get_training_frame": "_default",
    "list_definitions": "_default",
    "materialize": "_default",
    "open_feature_store": "_default",
    "push": "_default",
    "DataFrameSource": "_definitions",
    "Entity": "_definitions",
    "FeatureService": "_definitions",
    "FeatureView": "_definitions",
    "Field": "_definitions",
    "FileSource": "_definitions",
    "SqlSource": "_definitions",
    "Change": "_registry",
    "Definition": "_registry",
    "FeatureRegistry": "_registry",
    "FeatureStore": "_store",
    "OnlineFeatures": "_store",
}
__all__ = [
    "Change",
    "DataFrameSource",
    "Definition",
    "Entity",
    "FeatureRegistry",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "Field",
    "FileSource",
    "OnlineFeatures",
    "SqlSource",
    "apply",
    "dead_letters",
    "get_definition",
    "get_online",
    "get_training_frame",
    "ingest",
    "list_definitions",
    "materialize",
    "open_feature_store",
    "push",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'modelyard.features' has no attribute {name!r}")
    return getattr(importlib.import_module(f"modelyard.features.{home}"), name)


def __dir__() -> list[str]:
    return list(__all__)
