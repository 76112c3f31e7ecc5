"""Monitoring: data profiles, drift per column and across columns, and drift reports.

Names load on first use, so `import modelyard.monitoring` imports neither scikit-learn nor
SciPy until a check needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.monitoring._drift import ColumnDrift, Distribution, column_drift
    from modelyard.monitoring._multivariate import MultivariateDrift, domain_classifier_drift
    from modelyard.monitoring._profile import ColumnProfile, Profile, profile, profile_parquet
    from modelyard.monitoring._report import DriftReport, drift_report

_HOMES = {
    "ColumnDrift": "_drift",
    "Distribution": "_drift",
    "column_drift": "_drift",
    "MultivariateDrift": "_multivariate",
    "domain_classifier_drift": "_multivariate",
    "ColumnProfile": "_profile",
    "Profile": "_profile",
    "profile": "_profile",
    "profile_parquet": "_profile",
    "DriftReport": "_report",
    "drift_report": "_report",
}
__all__ = [
    "ColumnDrift",
    "ColumnProfile",
    "Distribution",
    "DriftReport",
    "MultivariateDrift",
    "Profile",
    "column_drift",
    "domain_classifier_drift",
    "drift_report",
    "profile",
    "profile_parquet",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'modelyard.monitoring' has no attribute {name!r}")
    return getattr(importlib.import_module(f"modelyard.monitoring.{home}"), name)


def __dir__() -> list[str]:
    return list(__all__)
