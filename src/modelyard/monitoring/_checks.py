"""A monitor's checks on one window: each gives its evidence (a JSON-ready dict) and the
numbers stored as time series (`ResultPoint`s).

A check that cannot run on a window (no reference, no labels yet, a column missing) says
why in its evidence and stores points without values; it never stops the other checks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.errors import InvalidInput
from modelyard.monitoring._points import ResultPoint
from modelyard.monitoring._spec import Check

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.models._signature import Signature
    from modelyard.monitoring._report import DriftReport

logger = logging.getLogger("modelyard.monitoring")
Evidence = dict[str, Any]
Outcome = tuple[Evidence, list[ResultPoint]]
_MAX_CLASSES = 20  # as performance(): whole numbers of at most this many kinds are classes


@dataclass(frozen=True)
class Window:
    """The predictions of one window joined with the labels that have arrived."""

    joined: pd.DataFrame  # join_feedback rows, with `inputs` and `latency_ms`
    inputs: pd.DataFrame  # the logged inputs as columns


@dataclass(frozen=True)
class Baseline:
    """What a window is compared with: the monitor's reference and the version's training."""

    inputs: pd.DataFrame | None  # reference features
    outputs: pd.DataFrame | None  # reference prediction / score / label
    training: pd.DataFrame | None  # the version's training sample (for skew)
    metrics: dict[str, float] = field(default_factory=dict)  # the version's validation metrics
    signature: Signature | None = None
    note: str = ""  # why a reference is missing


def run_checks(
    checks: tuple[Check, ...], window: Window, baseline: Baseline, state: dict[str, Any]
) -> tuple[dict[str, Evidence], list[ResultPoint]]:
    """Every check on `window`; `state` (concept detectors) is updated in place."""
    evidence: dict[str, Evidence] = {}
    points: list[ResultPoint] = []
    for check in checks:
        run = _CHECKS[check.name]
        try:
            found, numbers = run(window, baseline, check.options, state)
        except InvalidInput as exc:
            found, numbers = {"error": exc.message}, [_missing(check.name, "error")]
        except Exception as exc:  # a check's own failure is reported, never stops the others
            logger.exception("check %s failed", check.name)
            found = {"error": f"{type(exc).__name__}: {exc}"}
            numbers = [_missing(check.name, "error")]
        evidence[check.name] = found
        points.extend(numbers)
    return evidence, points


def _missing(check: str, status: str, metric: str = "status") -> ResultPoint:
    return ResultPoint(check, "", metric, None, status=status)


# -- drift ----------------------------------------------------------------------------------


def _data_drift(window: Window, baseline: Baseline, options: Mapping[str, Any], _: Any) -> Outcome:
    return _drift("data_drift", window, baseline.inputs, baseline.note, options)


def _skew(window: Window, baseline: Baseline, options: Mapping[str, Any], _: Any) -> Outcome:
    note = "" if baseline.training is not None else "the version has no training reference"
    return _drift("skew", window, baseline.training, note, options)


def _drift(
    name: str,
    window: Window,
    reference: pd.DataFrame | None,
    note: str,
    options: Mapping[str, Any],
) -> Outcome:
    from modelyard.monitoring._report import drift_report

    if reference is None:
        return {"error": note or "no reference"}, [_missing(name, "no_reference")]
    current = window.inputs
    wanted = options.get("columns") or [c for c in reference.columns if c in current.columns]
    if absent := [c for c in wanted if c not in current.columns]:
        raise InvalidInput(f"the served inputs lack column(s) {', '.join(map(str, absent))}")
    report = drift_report(
        reference[wanted],
        current[wanted],
        alpha=float(options.get("alpha", 0.05)),
        multivariate=bool(options.get("multivariate", False)),
    )
    return report.to_dict(), _drift_points(name, report)


def _drift_points(name: str, report: DriftReport) -> list[ResultPoint]:
    status = "ok" if report.tested_columns else "insufficient_data"
    share = report.drift_share if report.tested_columns else None
    points = [
        ResultPoint(name, "", "drift_share", share, flagged=report.drifted, status=status),
        ResultPoint(name, "", "drifted_columns", float(len(report.drifted_columns)), status=status),
    ]
    for column, result in report.columns.items():
        points.append(
            ResultPoint(
                name,
                column,
                "drift_score",
                result.effect,
                flagged=result.drifted,
                status=result.status,
            )
        )
        points.append(ResultPoint(name, column, "p_value", result.adjusted_p_value))
    if (found := report.multivariate) is not None:
        points.append(
            ResultPoint(
                name, "", "domain_auc", found.auc, found.auc_low, found.auc_high, found.drifted
            )
        )
    return points


def _prediction_drift(
    window: Window, baseline: Baseline, options: Mapping[str, Any], _: Any
) -> Outcome:
    from modelyard.monitoring._report import output_drift

    if baseline.outputs is None:
        note = baseline.note or "the reference has no model outputs"
        return {"error": note}, [_missing("prediction_drift", "no_reference")]
    report = output_drift(baseline.outputs, window.joined, alpha=float(options.get("alpha", 0.05)))
    return report.to_dict(), _drift_points("prediction_drift", report)


# -- quality and latency --------------------------------------------------------------------


def _data_quality(
    window: Window, baseline: Baseline, options: Mapping[str, Any], _: Any
) -> Outcome:
    from modelyard.monitoring._quality import data_quality

    reference = baseline.inputs
    current = window.inputs
    if reference is not None:
        current = current[[c for c in current.columns if c in reference.columns]]
    report = data_quality(
        current, reference=reference, signature=baseline.signature, key=options.get("key")
    )
    points = [
        ResultPoint(
            "data_quality", "", "issues", float(len(report.issues)), flagged=bool(report.issues)
        ),
        ResultPoint("data_quality", "", "duplicate_rows", float(report.duplicate_rows)),
    ]
    for name, column in report.columns.items():
        bad = column.out_of_range + column.unseen + column.invalid
        share = bad / column.rows if column.rows else None
        flagged = bool(column.issues)
        points.append(
            ResultPoint("data_quality", name, "missing_rate", column.missing_rate, flagged=flagged)
        )
        points.append(ResultPoint("data_quality", name, "invalid_share", share, flagged=flagged))
    return report.to_dict(), points


def _latency(window: Window, baseline: Baseline, options: Mapping[str, Any], _: Any) -> Outcome:
    latency = window.joined["latency_ms"].to_numpy(dtype=np.float64)
    if len(latency) == 0:
        return {"rows": 0}, [_missing("latency", "insufficient_data")]
    p50, p90, p99 = (float(v) for v in np.percentile(latency, [50, 90, 99]))
    found = {"rows": len(latency), "mean_ms": float(latency.mean()), "p50_ms": p50}
    found |= {"p90_ms": p90, "p99_ms": p99, "max_ms": float(latency.max())}
    return found, [
        ResultPoint("latency", "", metric, float(value))
        for metric, value in found.items()
        if metric != "rows"
    ]


# -- labels ---------------------------------------------------------------------------------


def _performance(window: Window, baseline: Baseline, options: Mapping[str, Any], _: Any) -> Outcome:
    from modelyard.monitoring._performance import (
        CLASSIFICATION_METRICS,
        REGRESSION_METRICS,
        performance,
    )

    joined = window.joined
    kwargs = {
        k: options[k]
        for k in ("task", "positive_label", "confidence", "min_labels")
        if k in options
    }
    if joined["label"].notna().sum() == 0:
        coverage = ResultPoint("performance", "", "label_coverage", 0.0)
        return {"note": "no labels yet", "rows": len(joined)}, [
            coverage,
            _missing("performance", "no_labels"),
        ]
    known = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS)
    metrics = {k: v for k, v in baseline.metrics.items() if k in known}
    report = performance(joined, **kwargs)
    names = CLASSIFICATION_METRICS if report.task == "classification" else REGRESSION_METRICS
    metrics = {k: v for k, v in metrics.items() if k in names}
    if metrics:
        report = performance(joined, baseline=metrics, **kwargs)
    (result,) = report.windows
    points = [
        ResultPoint(
            "performance",
            "",
            "label_coverage",
            result.coverage.value,
            result.coverage.low,
            result.coverage.high,
        ),
        ResultPoint("performance", "", "label_delay_s", result.delay_median_s),
    ]
    for name, metric in result.metrics.items():
        degraded = result.degradation.get(name)
        points.append(
            ResultPoint(
                "performance",
                "",
                name,
                metric.value,
                metric.low,
                metric.high,
                flagged=None if degraded is None else degraded.degraded,
                status="ok" if result.status == "ok" else "insufficient_labels",
            )
        )
    return {"task": report.task, **result.to_dict()}, points


def _fairness(window: Window, baseline: Baseline, options: Mapping[str, Any], _: Any) -> Outcome:
    from modelyard.monitoring._fairness import fairness

    kwargs = {
        k: options[k] for k in ("positive_label", "four_fifths", "max_difference") if k in options
    }
    joined = window.joined
    if joined["label"].notna().sum() == 0:
        return {"note": "no labels yet"}, [_missing("fairness", "no_labels")]
    report = fairness(joined, sensitive=options["sensitive"], **kwargs)
    measures = {
        "demographic_parity_difference": report.demographic_parity_difference,
        "equalized_odds_difference": report.equalized_odds_difference,
        "selection_rate_ratio": report.disparate_impact,
    }
    points = [
        ResultPoint("fairness", "", name, m.value, m.low, m.high, flagged=report.unfair)
        for name, m in measures.items()
    ]
    return report.to_dict(), points


def _concept(
    window: Window, baseline: Baseline, options: Mapping[str, Any], state: dict[str, Any]
) -> Outcome:
    from modelyard.monitoring._concept import detect_changes

    labelled = window.joined[window.joined["label"].notna()].sort_values("at", kind="stable")
    if len(labelled) == 0:
        return {"note": "no labels yet"}, [_missing("concept", "no_labels")]
    detector = str(options.get("detector", "adwin"))
    errors = _errors(labelled)
    times = labelled["at"].astype("int64").to_numpy() // 1_000_000
    result = detect_changes(
        errors,
        detector=detector,  # type: ignore[arg-type]
        ids=list(labelled["prediction_id"]),
        times=[int(t) for t in times],
        state=state.get(detector),
    )
    state[detector] = result.state
    found = {k: v for k, v in result.to_dict().items() if k != "state"}
    found["mean_error"] = float(np.mean(errors))
    return found, [
        ResultPoint(
            "concept", "", "change_points", float(result.n_changes), flagged=result.n_changes > 0
        ),
        ResultPoint("concept", "", "mean_error", found["mean_error"]),
    ]


def _errors(labelled: pd.DataFrame) -> list[float]:
    """Absolute errors for a regression (numbers, some fractional or more than 20 kinds),
    else 0/1 misclassification."""
    predicted, labels = list(labelled["prediction"]), list(labelled["label"])
    numeric = all(_number(v) for v in (*predicted, *labels))
    fractional = any(not float(v).is_integer() for v in labels) if numeric else False
    if numeric and (fractional or len(set(labels)) > _MAX_CLASSES):
        return [abs(float(p) - float(y)) for p, y in zip(predicted, labels, strict=True)]
    return [0.0 if p == y else 1.0 for p, y in zip(predicted, labels, strict=True)]


def _number(value: Any) -> bool:
    return (
        isinstance(value, int | float | np.number)
        and not isinstance(value, bool | np.bool_)
        and math.isfinite(float(value))
    )


_CHECKS: dict[str, Callable[[Window, Baseline, Mapping[str, Any], dict[str, Any]], Outcome]] = {
    "data_drift": _data_drift,
    "skew": _skew,
    "prediction_drift": _prediction_drift,
    "data_quality": _data_quality,
    "latency": _latency,
    "performance": _performance,
    "fairness": _fairness,
    "concept": _concept,
}
