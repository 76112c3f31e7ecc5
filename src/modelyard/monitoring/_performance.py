"""Model performance once labels arrive: the prediction log joined with feedback, per window.

Labels come late and for some predictions only, so each window says how many of its
predictions are labelled (coverage, with a Wilson interval) and how late the labels came,
next to the metrics of its labelled rows. Every metric carries a percentile bootstrap
interval over the labelled rows (label, prediction and score resampled together, the same
resamples for every metric of a window). A metric is *degraded* when its interval lies
wholly on the bad side of the version's validation value: below it for accuracy, precision,
recall, F1 and ROC AUC, above it for log loss, Brier score, MAE, RMSE and MAPE.

A window with fewer than `MIN_LABELS` (30) labelled rows gets "insufficient labels": no
metric values and no verdict, as an interval from a handful of rows says little.

The reported values are scikit-learn's. The bootstrap evaluates the same definitions
vectorized in NumPy (tests hold them equal to scikit-learn's), because scikit-learn's input
checks would cost about 10 ms per resample and metric.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from modelyard.errors import InvalidInput
from modelyard.stats import bootstrap_interval, proportion_interval

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import NDArray

    _Floats = NDArray[np.float64]

Task = Literal["classification", "regression"]

MIN_LABELS = 30
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier")
REGRESSION_METRICS = ("mae", "rmse", "r2", "mape")
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "mae", "rmse", "mape"})
_SCORED = frozenset({"roc_auc", "log_loss", "brier"})
_MAX_CLASSES = 20  # integer-valued labels with at most this many values are taken as classes
_PREDICTIONS = ("prediction_id", "at", "version", "outputs")
_FEEDBACK = ("prediction_id", "at", "label")
_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class MetricValue:
    """A value with its confidence interval; `value` None (with the reason) where undefined."""

    value: float | None
    low: float | None = None
    high: float | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "low": self.low, "high": self.high, "reason": self.reason}


@dataclass(frozen=True)
class Degradation:
    """A window's metric against the version's validation value; `degraded` None: no verdict."""

    metric: str
    baseline: float
    value: float | None
    difference: float | None  # value - baseline
    higher_is_better: bool
    degraded: bool | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "baseline": self.baseline,
            "value": self.value,
            "difference": self.difference,
            "higher_is_better": self.higher_is_better,
            "degraded": self.degraded,
        }


@dataclass(frozen=True)
class WindowPerformance:
    """Predictions made in `[start, end)`: label coverage and delay, metrics, degradation."""

    start: datetime
    end: datetime
    rows: int
    labelled: int
    coverage: MetricValue
    delay_median_s: float | None
    delay_p90_s: float | None
    status: Literal["ok", "insufficient labels"]
    metrics: dict[str, MetricValue]
    degradation: dict[str, Degradation] = field(default_factory=dict)

    @property
    def degraded_metrics(self) -> list[str]:
        return [name for name, d in self.degradation.items() if d.degraded]

    @property
    def degraded(self) -> bool:
        return bool(self.degraded_metrics)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "rows": self.rows,
            "labelled": self.labelled,
            "coverage": self.coverage.to_dict(),
            "delay_median_s": self.delay_median_s,
            "delay_p90_s": self.delay_p90_s,
            "status": self.status,
            "degraded": self.degraded,
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
            "degradation": {name: d.to_dict() for name, d in self.degradation.items()},
        }


@dataclass(frozen=True)
class PerformanceReport:
    """Performance per window of the prediction log, against the version's validation metrics.

    `positive_label` is the class precision, recall, F1 and the scores refer to (None for
    more than two classes, where precision, recall and F1 are macro averages).
    """

    task: Task
    windows: list[WindowPerformance]
    baseline: dict[str, float]
    confidence: float
    n_resamples: int
    min_labels: int
    classes: tuple[Any, ...] = ()
    positive_label: Any = None

    @property
    def degraded(self) -> bool:
        return any(w.degraded for w in self.windows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "degraded": self.degraded,
            "baseline": self.baseline,
            "confidence": self.confidence,
            "n_resamples": self.n_resamples,
            "min_labels": self.min_labels,
            "classes": [_plain(c) for c in self.classes],
            "positive_label": _plain(self.positive_label),
            "windows": [w.to_dict() for w in self.windows],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per window and metric, for plots and the stored time series."""
        import pandas as pd

        rows = []
        for w in self.windows:
            for name, m in w.metrics.items():
                d = w.degradation.get(name)
                rows.append(
                    {
                        "start": w.start,
                        "end": w.end,
                        "rows": w.rows,
                        "labelled": w.labelled,
                        "coverage": w.coverage.value,
                        "status": w.status,
                        "metric": name,
                        "value": m.value,
                        "low": m.low,
                        "high": m.high,
                        "reason": m.reason,
                        "baseline": None if d is None else d.baseline,
                        "difference": None if d is None else d.difference,
                        "degraded": None if d is None else d.degraded,
                    }
                )
        return pd.DataFrame(rows)


def inputs_frame(predictions: pd.DataFrame) -> pd.DataFrame:
    """The `inputs` dicts of logged predictions as columns, on the same index (non-dicts: NaN)."""
    import pandas as pd

    _require(predictions, ("inputs",), "predictions", "modelyard.serving.read_predictions")
    records = [row if isinstance(row, Mapping) else {} for row in predictions["inputs"]]
    return pd.DataFrame.from_records(records, index=predictions.index)


def join_feedback(predictions: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """One row per prediction with its label, when there is one yet.

    Columns: prediction_id, at, version, prediction (`outputs["predict"]`), score (a binary
    classifier's probability of its second class, `predict_proba[1]`; NaN otherwise), label
    (NaN while none), label_at, delay_s (seconds from prediction to label), and inputs when
    the log has them. Feedback on predictions not in `predictions` is left out.
    """
    import pandas as pd

    _require(predictions, _PREDICTIONS, "predictions", "modelyard.serving.read_predictions")
    _require(feedback, _FEEDBACK, "feedback", "modelyard.serving.read_feedback")
    _refuse_duplicates(predictions, "predictions")
    _refuse_duplicates(feedback, "feedback")
    outputs = list(predictions["outputs"])
    joined = pd.DataFrame(
        {
            "prediction_id": predictions["prediction_id"].to_numpy(dtype=object),
            "at": pd.to_datetime(predictions["at"], utc=True).to_numpy(),
            "version": predictions["version"].to_numpy(),
            "prediction": pd.Series([_predicted(o) for o in outputs], dtype=object),
            "score": pd.Series([_score(o) for o in outputs], dtype="float64"),
        }
    )
    joined["at"] = pd.to_datetime(joined["at"], utc=True)
    labels = pd.DataFrame(
        {
            "prediction_id": feedback["prediction_id"].to_numpy(dtype=object),
            "label": feedback["label"].to_numpy(dtype=object),
            "label_at": pd.to_datetime(feedback["at"], utc=True).to_numpy(),
        }
    )
    joined = joined.merge(labels, on="prediction_id", how="left", validate="one_to_one")
    joined["label_at"] = pd.to_datetime(joined["label_at"], utc=True)
    joined["delay_s"] = (joined["label_at"] - joined["at"]).dt.total_seconds()
    if "inputs" in predictions.columns:
        joined["inputs"] = predictions["inputs"].to_numpy(dtype=object)
    return joined


def performance(
    joined: pd.DataFrame,
    *,
    task: Task | None = None,
    window: str | None = None,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    baseline: Mapping[str, float] | None = None,
    positive_label: Any = None,
    min_labels: int = MIN_LABELS,
) -> PerformanceReport:
    """Metrics per `window` (a pandas offset such as "1h"; None: one window) of `joined`.

    `joined` is `join_feedback`'s frame (at least: at, prediction, label; score for ROC AUC,
    log loss and Brier). `task` is inferred when None: classification when there are scores,
    non-numeric values, or integer values of at most 20 kinds; else regression. `baseline`
    holds the version's validation metrics by name (e.g. `{"accuracy": 0.93}`).
    `positive_label` defaults to 1 for 0/1 labels, else to the larger of two classes.
    """
    _require(joined, ("at", "prediction", "label"), "joined", "join_feedback(...)")
    if len(joined) == 0:
        raise InvalidInput(
            "no predictions to evaluate: the frame is empty; widen since/until of "
            "read_predictions or check the model name and version"
        )
    if not 0.0 < confidence < 1.0:
        raise InvalidInput(f"confidence must lie strictly between 0 and 1; got {confidence}")
    frame = _prepared(joined)
    kind = task if task is not None else _infer_task(frame)
    if kind not in ("classification", "regression"):
        raise InvalidInput(f"task must be 'classification' or 'regression'; got {kind!r}")
    classes: tuple[Any, ...] = ()
    positive = None
    if kind == "classification":
        classes, positive = _classes(frame, positive_label)
    names = CLASSIFICATION_METRICS if kind == "classification" else REGRESSION_METRICS
    limits = _checked_baseline(baseline, names)
    settings = _Settings(kind, classes, positive, confidence, n_resamples, seed, min_labels)
    windows = [
        _window(part, start, end, settings, limits) for start, end, part in _windows(frame, window)
    ]
    return PerformanceReport(
        task=kind,
        windows=windows,
        baseline=limits,
        confidence=confidence,
        n_resamples=n_resamples,
        min_labels=min_labels,
        classes=classes,
        positive_label=positive,
    )


# -- one window ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    task: Task
    classes: tuple[Any, ...]
    positive: Any
    confidence: float
    n_resamples: int
    seed: int
    min_labels: int


def _window(
    part: pd.DataFrame,
    start: datetime,
    end: datetime,
    settings: _Settings,
    baseline: dict[str, float],
) -> WindowPerformance:
    labelled = part[part["label"].notna()]
    rows, count = len(part), len(labelled)
    low, high = proportion_interval(count, rows, settings.confidence)
    delays = labelled["delay_s"].dropna().to_numpy(dtype=np.float64)
    median, p90 = (None, None)
    if delays.size:
        median, p90 = (float(v) for v in np.percentile(delays, [50.0, 90.0]))
    evaluated = labelled[labelled["prediction"].notna()]
    names = CLASSIFICATION_METRICS if settings.task == "classification" else REGRESSION_METRICS
    ok = len(evaluated) >= settings.min_labels
    if ok:
        metrics = _metrics(evaluated, settings)
    else:
        why = f"insufficient labels: {len(evaluated)} < {settings.min_labels}"
        metrics = {name: MetricValue(None, reason=why) for name in names}
    return WindowPerformance(
        start=start,
        end=end,
        rows=rows,
        labelled=count,
        coverage=MetricValue(count / rows, low, high),
        delay_median_s=median,
        delay_p90_s=p90,
        status="ok" if ok else "insufficient labels",
        metrics=metrics,
        degradation={
            name: _degradation(name, value, metrics[name], ok) for name, value in baseline.items()
        },
    )


def _degradation(name: str, baseline: float, metric: MetricValue, judged: bool) -> Degradation:
    higher = name not in LOWER_IS_BETTER
    value = metric.value
    verdict: bool | None = None
    if judged and metric.low is not None and metric.high is not None:
        verdict = metric.high < baseline if higher else metric.low > baseline
    return Degradation(
        metric=name,
        baseline=baseline,
        value=value,
        difference=None if value is None else value - baseline,
        higher_is_better=higher,
        degraded=verdict,
    )


def _metrics(rows: pd.DataFrame, settings: _Settings) -> dict[str, MetricValue]:
    if settings.task == "regression":
        y = _numbers(rows["label"], "label")
        p = _numbers(rows["prediction"], "prediction")
        return {name: _measured(name, (y, p), settings) for name in REGRESSION_METRICS}
    binary = len(settings.classes) <= 2
    if binary:
        y = np.array([v == settings.positive for v in rows["label"]], dtype=np.float64)
        p = np.array([v == settings.positive for v in rows["prediction"]], dtype=np.float64)
    else:
        y = _codes(rows["label"], settings.classes)
        p = _codes(rows["prediction"], settings.classes)
    scores = rows["score"].to_numpy(dtype=np.float64)
    if binary and settings.classes and settings.positive == settings.classes[0]:
        scores = 1.0 - scores  # the score is the probability of the model's second class
    result = {}
    for name in CLASSIFICATION_METRICS:
        if name not in _SCORED:
            result[name] = _measured(name, (y, p), settings, classes=len(settings.classes))
        else:
            result[name] = _scored(name, y, scores, binary, settings)
    return result


def _scored(
    name: str, y: _Floats, scores: _Floats, binary: bool, settings: _Settings
) -> MetricValue:
    if not binary:
        return MetricValue(None, reason=f"{name} needs a binary classifier's scores")
    has_score = ~np.isnan(scores)
    if int(has_score.sum()) < settings.min_labels:
        return MetricValue(
            None,
            reason=f"{name} needs scores (predict_proba) on at least {settings.min_labels} "
            f"labelled rows; {int(has_score.sum())} have one",
        )
    y, scores = y[has_score], scores[has_score]
    if name == "roc_auc" and np.unique(y).size < 2:
        only = "positive" if y[0] == 1.0 else "negative"
        return MetricValue(None, reason=f"roc_auc needs both classes; every label is {only}")
    return _measured(name, (y, scores), settings)


def _measured(
    name: str, samples: tuple[_Floats, _Floats], settings: _Settings, classes: int = 2
) -> MetricValue:
    reported, statistic = _definitions(name, classes)
    value = float(reported(*samples))
    if not math.isfinite(value):
        return MetricValue(None, reason=f"{name} is undefined on this window ({value})")
    try:
        low, high = bootstrap_interval(
            statistic,
            *samples,
            confidence=settings.confidence,
            n_resamples=settings.n_resamples,
            method="percentile",
            seed=settings.seed,
        )
    except InvalidInput as exc:  # e.g. a resample holding one class only: value, no interval
        return MetricValue(value, reason=f"no interval: {exc.message}")
    return MetricValue(value, low, high)


# -- metric definitions: scikit-learn's value, the same definition vectorized -------------

Metric = Callable[..., float]


def _definitions(name: str, classes: int) -> tuple[Metric, Metric]:
    """(scikit-learn's metric, its NumPy twin for the bootstrap) over encoded arrays."""
    from sklearn import metrics as sk

    binary = classes <= 2
    average: Literal["binary", "macro"] = "binary" if binary else "macro"
    labels = None if binary else list(range(classes))
    if name in ("precision", "recall", "f1"):
        scorer = {"precision": sk.precision_score, "recall": sk.recall_score, "f1": sk.f1_score}
        return (
            lambda y, p: scorer[name](
                y, p, average=average, labels=labels, pos_label=1.0, zero_division=0.0
            ),
            _class_rate(name, max(classes, 2), binary),
        )
    table: dict[str, tuple[Metric, Metric]] = {
        "accuracy": (sk.accuracy_score, lambda y, p: float(np.mean(y == p))),
        "roc_auc": (sk.roc_auc_score, _roc_auc),
        "log_loss": (lambda y, s: sk.log_loss(y, s, labels=[0.0, 1.0]), _log_loss),
        "brier": (lambda y, s: sk.brier_score_loss(y, s, pos_label=1.0), _brier),
        "mae": (sk.mean_absolute_error, lambda y, p: float(np.mean(np.abs(y - p)))),
        "rmse": (sk.root_mean_squared_error, lambda y, p: math.sqrt(np.mean((y - p) ** 2))),
        "r2": (sk.r2_score, _r2),
        "mape": (sk.mean_absolute_percentage_error, _mape),
    }
    return table[name]


def _class_rate(name: str, classes: int, binary: bool) -> Metric:
    """Precision, recall or F1 of class 1 (binary), or their macro average over classes."""

    def statistic(y: _Floats, p: _Floats) -> float:
        truth, guess = y.astype(np.intp), p.astype(np.intp)
        hits = np.bincount(truth[truth == guess], minlength=classes).astype(np.float64)
        actual = np.bincount(truth, minlength=classes).astype(np.float64)
        predicted = np.bincount(guess, minlength=classes).astype(np.float64)
        numerator, denominator = {
            "precision": (hits, predicted),
            "recall": (hits, actual),
            "f1": (2.0 * hits, actual + predicted),
        }[name]
        ratio = np.divide(numerator, denominator, out=np.zeros(classes), where=denominator > 0)
        return float(ratio[1]) if binary else float(ratio.mean())

    return statistic


def _roc_auc(y: _Floats, s: _Floats) -> float:
    from scipy.stats import rankdata

    positives = float(y.sum())
    negatives = y.size - positives
    if positives == 0.0 or negatives == 0.0:
        return math.nan
    ranks = rankdata(s)
    return float(
        (ranks[y == 1.0].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    )


def _log_loss(y: _Floats, s: _Floats) -> float:
    clipped = np.clip(s, _EPS, 1.0 - _EPS)
    return float(-np.mean(y * np.log(clipped) + (1.0 - y) * np.log1p(-clipped)))


def _brier(y: _Floats, s: _Floats) -> float:
    return float(np.mean((s - y) ** 2))


def _r2(y: _Floats, p: _Floats) -> float:
    residual = float(np.sum((y - p) ** 2))
    total = float(np.sum((y - y.mean()) ** 2))
    if total == 0.0:  # scikit-learn's force_finite
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total


def _mape(y: _Floats, p: _Floats) -> float:
    return float(np.mean(np.abs(y - p) / np.maximum(np.abs(y), _EPS)))


# -- frames, windows, classes --------------------------------------------------------------


def _prepared(joined: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    frame = joined.copy()
    try:
        frame["at"] = pd.to_datetime(frame["at"], utc=True)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"column 'at' must hold prediction times: {exc}") from None
    if frame["at"].isna().any():
        raise InvalidInput("column 'at' has missing times; every prediction needs its time")
    if "score" not in frame.columns:
        frame["score"] = np.nan
    if "delay_s" not in frame.columns:
        frame["delay_s"] = (
            (pd.to_datetime(frame["label_at"], utc=True) - frame["at"]).dt.total_seconds()
            if "label_at" in frame.columns
            else np.nan
        )
    for column in ("label", "prediction"):
        if any(isinstance(v, list | tuple | dict) for v in frame[column]):
            raise InvalidInput(
                f"column {column!r} holds lists or dicts; performance handles one label "
                "per prediction: evaluate each output separately"
            )
    return frame.sort_values("at", kind="stable")


def _windows(frame: pd.DataFrame, window: str | None) -> Iterator[tuple[Any, Any, pd.DataFrame]]:
    import pandas as pd

    if window is None:
        yield frame["at"].iloc[0], frame["at"].iloc[-1], frame
        return
    try:
        offset = pd.tseries.frequencies.to_offset(window)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"window {window!r} is not a pandas offset; use e.g. '1h', '6h', '1D'"
        ) from None
    for start, part in frame.groupby(pd.Grouper(key="at", freq=offset)):
        if len(part):
            begin = pd.Timestamp(start)  # type: ignore[arg-type]
            yield begin, begin + offset, part


def _infer_task(frame: pd.DataFrame) -> Task:
    if frame["score"].notna().any():
        return "classification"
    values = [v for c in ("label", "prediction") for v in frame[c] if _present(v)]
    if not values:
        raise InvalidInput(
            "cannot tell the task without labels or predictions; pass "
            "task='classification' or task='regression'"
        )
    if any(isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Real) for v in values):
        return "classification"
    numeric = np.asarray(values, dtype=np.float64)
    integral = bool(np.all(numeric == np.round(numeric)))
    return (
        "classification" if integral and np.unique(numeric).size <= _MAX_CLASSES else "regression"
    )


def _classes(frame: pd.DataFrame, positive_label: Any) -> tuple[tuple[Any, ...], Any]:
    seen = {v for c in ("label", "prediction") for v in frame[c] if _present(v)}
    if positive_label is not None:
        seen.add(positive_label)
    try:
        classes = tuple(sorted(seen))
    except TypeError:
        raise InvalidInput(
            "labels and predictions mix kinds of values (e.g. text and numbers): map the "
            f"labels to the model's classes first; seen: {sorted(map(repr, seen))[:10]}"
        ) from None
    if positive_label is not None:
        if len(classes) > 2:
            raise InvalidInput(
                f"positive_label applies to binary classification; there are {len(classes)} "
                f"classes: {list(classes)[:10]}"
            )
        return classes, positive_label
    if len(classes) > 2:
        return classes, None
    if all(isinstance(c, numbers.Real) and c in (0, 1) for c in classes):
        return classes, 1
    return classes, classes[-1] if classes else None


def _codes(values: pd.Series, classes: tuple[Any, ...]) -> _Floats:
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[v] for v in values], dtype=np.float64)


def _numbers(values: pd.Series, name: str) -> _Floats:
    try:
        numeric = np.asarray(values.to_numpy(), dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"regression needs numeric {name}s; found {values.map(type).unique()[:3]!r}: "
            "pass task='classification' for class labels"
        ) from None
    return numeric


def _checked_baseline(
    baseline: Mapping[str, float] | None, names: Sequence[str]
) -> dict[str, float]:
    if not baseline:
        return {}
    unknown = sorted(set(baseline) - set(names))
    if unknown:
        raise InvalidInput(
            f"baseline names metrics this task does not compute: {unknown}; use some of "
            f"{list(names)} (e.g. pick them from the run's validation metrics)"
        )
    return {name: float(value) for name, value in baseline.items()}


def _require(frame: Any, columns: Sequence[str], what: str, source: str) -> None:
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput(f"{what} must be a pandas DataFrame (from {source}); got {type(frame)}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"{what} lacks column(s) {missing}; it has {list(frame.columns)}: pass the frame "
            f"of {source}"
        )


def _refuse_duplicates(frame: pd.DataFrame, what: str) -> None:
    repeated = frame["prediction_id"][frame["prediction_id"].duplicated()]
    if len(repeated):
        raise InvalidInput(
            f"{what} holds prediction id(s) more than once: {list(repeated.unique()[:5])}; "
            "one row per prediction is expected (drop_duplicates('prediction_id') first)"
        )


def _predicted(outputs: Any) -> Any:
    return outputs.get("predict") if isinstance(outputs, Mapping) else None


def _score(outputs: Any) -> float:
    proba = outputs.get("predict_proba") if isinstance(outputs, Mapping) else None
    if isinstance(proba, list | tuple) and len(proba) == 2:
        try:
            return float(proba[1])
        except (TypeError, ValueError):
            return math.nan
    return math.nan


def _present(value: Any) -> bool:
    if value is None:
        return False
    return not (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
