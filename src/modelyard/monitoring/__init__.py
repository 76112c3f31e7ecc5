"""Monitoring: profiles, data drift per column and across columns, drift reports, skew,
concept drift, performance with delayed labels and fairness, against the training reference
a version stores. The profile names live in `modelyard.data` and are re-exported here.

Names load on first use, so `import modelyard.monitoring` imports neither scikit-learn nor
SciPy until a check needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.data._profile import ColumnProfile, Profile, profile, profile_parquet
    from modelyard.monitoring._channels import (
        register_action,
        register_callback,
        unregister_action,
        unregister_callback,
    )
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
    from modelyard.monitoring._default import (
        alert_deliveries,
        alert_events,
        create_alert,
        create_monitor,
        delete_alert,
        delete_monitor,
        feature_skew,
        get_monitor,
        history,
        list_alerts,
        list_monitors,
        monitor_windows,
        run_monitor,
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
    from modelyard.monitoring._points import ResultPoint
    from modelyard.monitoring._quality import ColumnQuality, QualityReport, data_quality
    from modelyard.monitoring._reference import TrainingReference, training_reference
    from modelyard.monitoring._report import DriftReport, drift_report, output_drift
    from modelyard.monitoring._skew import ColumnSkew, SkewReport, skew
    from modelyard.monitoring._spec import Monitor
    from modelyard.monitoring._windowing import MonitorRun, WindowResult

_HOMES = {
    "register_action": "_channels",
    "register_callback": "_channels",
    "unregister_action": "_channels",
    "unregister_callback": "_channels",
    "create_monitor": "_default",
    "get_monitor": "_default",
    "list_monitors": "_default",
    "delete_monitor": "_default",
    "run_monitor": "_default",
    "history": "_default",
    "monitor_windows": "_default",
    "create_alert": "_default",
    "feature_skew": "_default",
    "list_alerts": "_default",
    "delete_alert": "_default",
    "alert_events": "_default",
    "alert_deliveries": "_default",
    "MonitorRun": "_windowing",
    "WindowResult": "_windowing",
    "ResultPoint": "_points",
    "Monitor": "_spec",
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
    "ColumnProfile": "modelyard.data._profile",
    "Profile": "modelyard.data._profile",
    "profile": "modelyard.data._profile",
    "profile_parquet": "modelyard.data._profile",
    "ColumnQuality": "_quality",
    "QualityReport": "_quality",
    "data_quality": "_quality",
    "TrainingReference": "_reference",
    "training_reference": "_reference",
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
    "Monitor",
    "MonitorRun",
    "MultivariateDrift",
    "PageHinkley",
    "PerformanceReport",
    "Profile",
    "QualityReport",
    "ResultPoint",
    "SkewReport",
    "TrainingReference",
    "WindowPerformance",
    "WindowResult",
    "alert_deliveries",
    "alert_events",
    "column_drift",
    "create_alert",
    "create_monitor",
    "data_quality",
    "delete_alert",
    "delete_monitor",
    "detect_changes",
    "domain_classifier_drift",
    "drift_report",
    "fairness",
    "feature_skew",
    "get_monitor",
    "history",
    "inputs_frame",
    "join_feedback",
    "list_alerts",
    "list_monitors",
    "monitor_windows",
    "output_drift",
    "performance",
    "profile",
    "profile_parquet",
    "register_action",
    "register_callback",
    "run_monitor",
    "skew",
    "training_reference",
    "unregister_action",
    "unregister_callback",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'modelyard.monitoring' has no attribute {name!r}")
    module = home if "." in home else f"modelyard.monitoring.{home}"
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return list(__all__)
