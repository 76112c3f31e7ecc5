"""One monitoring-benchmark measurement on Evidently, run by `bench/monitoring.py` with the
interpreter of Evidently's venv (`bench/.venvs/evidently`).

Argument: a JSON spec (`reference`, `current`: Parquet files). Prints one JSON object on
stdout. Evidently's `DataDriftPreset` with its defaults; column types are left to Evidently,
which reads the 20 numeric columns as numerical and the 5 string ones as categorical (the
result lists the method it chose per column, so this is checked, not assumed). The clock
and the memory reading are those of the modelyard side (`_monitoring_worker.measured`).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from _monitoring_worker import load_frames, measured


def _modern_flags(reference: Any, current: Any, methods: dict[str, str]) -> list[str]:
    """Evidently 0.7+: per-column `ValueDrift` scores against their thresholds.

    With the Report's defaults (`include_tests=False`) the snapshot holds each column's
    score, method and threshold; Evidently's own rule turns them into a verdict: a
    p-value drifts below the threshold, a distance at or above it.
    """
    from evidently import Report
    from evidently.presets import DataDriftPreset

    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    flagged, count = [], None
    for metric in snapshot.dict()["metrics"]:
        config, value = metric["config"], metric["value"]
        if config["type"].endswith(":DriftedColumnsCount"):
            count = int(value["count"])
        elif config["type"].endswith(":ValueDrift"):
            method, threshold = config["method"], config["threshold"]
            methods[config["column"]] = f"{method} ({threshold})"
            p_value = "p_value" in method.lower().replace("-", "_")
            if (value < threshold) if p_value else (value >= threshold):
                flagged.append(config["column"])
    if count is not None and count != len(flagged):
        raise RuntimeError(f"Evidently counts {count} drifted columns, the scores give {flagged}")
    return flagged


def _legacy_flags(reference: Any, current: Any, methods: dict[str, str]) -> list[str]:
    """Evidently 0.4-0.6: the `DataDriftTable` result's `drift_by_columns`."""
    from evidently.metric_preset import DataDriftPreset
    from evidently.report import Report

    report = Report(metrics=[DataDriftPreset()])
    report.run(reference_data=reference, current_data=current)
    flagged = []
    for metric in report.as_dict()["metrics"]:
        for name, column in metric["result"].get("drift_by_columns", {}).items():
            methods[name] = f"{column['stattest_name']} ({column['stattest_threshold']})"
            if column["drift_detected"]:
                flagged.append(name)
    return flagged


def main() -> None:
    import evidently

    spec = json.loads(sys.argv[1])
    try:
        from evidently.presets import DataDriftPreset  # noqa: F401

        flags = _modern_flags
    except ImportError:
        flags = _legacy_flags
    reference, current = load_frames(spec)
    methods: dict[str, str] = {}
    result = measured(lambda ref, cur: flags(ref, cur, methods), reference, current)
    version = getattr(evidently, "__version__", "?")
    print(json.dumps({"version": version, "methods": methods, **result}))


if __name__ == "__main__":
    main()
