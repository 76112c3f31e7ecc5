"""Monitoring: profiles, data drift per column and across columns, drift reports, skew,
concept drift, performance with delayed labels and fairness.

Names load on first use, so `import modelyard.monitoring` imports neither scikit-learn nor
SciPy until a check needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.monitoring._concept import (
        Adwin,
        ChangePoint,
        ConceptDetector,
        ConceptResult,
        Ddm,
        Kswin,
        PageHinkley,
        detect_changes,
    )
    from modelyard.monitoring._drift import ColumnDrift, Distribution, column_drift
    from modelyard.monitoring._fairness import FairnessReport, GroupRates, fairness
    from modelyard.monitoring._multivariate import MultivariateDrift, domain_classifier_drift
    from modelyard.monitoring._performance import (
        MetricValue,
        PerformanceReport,
        WindowPerformance,
        inputs_frame,
        join_feedback,
        performance,
    )
    from modelyard.monitoring._profile import ColumnProfile, Profile, profile, profile_parquet
    from modelyard.monitoring._quality import ColumnQuality, QualityReport, data_quality
    from modelyard.monitoring._report import DriftReport, drift_report, output_drift
    from modelyard.monitoring._skew import ColumnSkew, SkewReport, skew

_HOMES = {
    "Adwin": "_concept",
    "ChangePoint": "_concept",
    "ConceptDetector": "_concept",
    "ConceptResult": "_concept",
    "Ddm": "_concept",
    "Kswin": "_concept",
    "PageHinkley": "_concept",
    "detect_changes": "_concept",
    "ColumnDrift": "_drift",
    "Distribution": "_drift",
    "column_drift": "_drift",
    "FairnessReport": "_fairness",
    "GroupRates": "_fairness",
    "fairness": "_fairness",
    "MetricValue": "_performance",
    "PerformanceReport": "_performance",
    "WindowPerformance": "_performance",
    "inputs_frame": "_performance",
    "join_feedback": "_performance",
    "performance": "_performance",
    "MultivariateDrift": "_multivariate",
    "domain_classifier_drift": "_multivariate",
    "ColumnProfile": "_profile",
    "Profile": "_profile",
    "profile": "_profile",
    "profile_parquet": "_profile",
    "ColumnQuality": "_quality",
    "QualityReport": "_quality",
    "data_quality": "_quality",
    "DriftReport": "_report",
    "drift_report": "_report",
    "output_drift": "_report",
    "ColumnSkew": "_skew",
    "SkewReport": "_skew",
    "skew": "_skew",
}
__all__ = [
    "Adwin",
    "ChangePoint",
    "ColumnDrift",
    "ColumnProfile",
    "ColumnQuality",
    "ColumnSkew",
    "ConceptDetector",
    "ConceptResult",
    "Ddm",
    "Distribution",
    "DriftReport",
    "FairnessReport",
    "GroupRates",
    "Kswin",
    "MetricValue",
    "MultivariateDrift",
    "PageHinkley",
    "PerformanceReport",
    "Profile",
    "QualityReport",
    "SkewReport",
    "WindowPerformance",
    "column_drift",
    "data_quality",
    "detect_changes",
    "domain_classifier_drift",
    "drift_report",
    "fairness",
    "inputs_frame",
    "join_feedback",
    "output_drift",
    "performance",
    "profile",
    "profile_parquet",
    "skew",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'modelyard.monitoring' has no attribute {name!r}")
    return getattr(importlib.import_module(f"modelyard.monitoring.{home}"), name)


def __dir__() -> list[str]:
    return list(__all__)
