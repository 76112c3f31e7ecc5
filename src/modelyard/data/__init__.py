"""Data: mergeable profiles of tables (and, later, dataset versions and their validation).

Profiles live here, in the assets layer, because a model version stores the profile of its
training data; monitoring compares the prediction log against it. Names load on first use,
so `import modelyard.data` imports neither NumPy nor pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.data._profile import ColumnProfile, Profile, profile, profile_parquet

_HOMES = {
    "ColumnProfile": "_profile",
    "Profile": "_profile",
    "profile": "_profile",
    "profile_parquet": "_profile",
}
__all__ = ["ColumnProfile", "Profile", "profile", "profile_parquet"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'modelyard.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"modelyard.data.{home}"), name)


def __dir__() -> list[str]:
    return list(__all__)
