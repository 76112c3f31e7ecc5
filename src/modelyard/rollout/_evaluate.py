"""What each variant of a deployment did: requests, errors, latency, predictions and, once
labels arrive, the metric — the prediction log joined with feedback, as frames in, numbers out.

The rows of a deployment in the prediction log:

- a served row: `variant` answered the client; `parent_id` is None;
- a mirrored row (a shadow or a challenger): `parent_id` is the id the client got;
- a failure row: a live variant failed (`outputs` is `{"error": ...}`) and the primary
  answered instead, under `parent_id`. The request was assigned to the failing variant, so
  that fallback answer counts for nobody: not as the primary's request, latency or metric.

Feedback is keyed by the id the client got, so a mirrored row takes its parent's label. The
metric is `accuracy` (label equals prediction, per row) or `reward` (the label is a number).
A reward belongs to the answer the client acted on, so mirrored variants get no reward.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.errors import InvalidInput
from modelyard.stats import proportion_interval, quantile_edges

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import NDArray

    from modelyard.rollout._spec import Deployment
    from modelyard.serving._feedback import FeedbackStore
    from modelyard.serving._log import PredictionLog

_PREDICTIONS = (
    "prediction_id", "at", "version", "latency_ms", "inputs", "outputs",
    "deployment", "variant", "parent_id",
)  # fmt: skip
_FEEDBACK = ("prediction_id", "label")
MAX_CLASSES = 20  # numeric predictions with more distinct values are binned at quantiles
_BINS = 10


def _nothing() -> NDArray[np.float64]:
    return np.zeros(0)


@dataclass(frozen=True)
class Pairing:
    """A mirrored variant's answers beside the primary's on the same requests."""

    pairs: int
    agreements: int
    agreement: float | None
    agreement_low: float | None
    agreement_high: float | None
    labelled: int  # pairs with a label: the counts below add up to it
    both_right: int = 0
    only_variant_right: int = 0
    only_primary_right: int = 0
    both_wrong: int = 0

    def correctness(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per labelled pair, whether the primary and the variant were right (1) or not (0)."""
        counts = (self.both_right, self.only_variant_right, self.only_primary_right)
        primary = np.repeat([1.0, 0.0, 1.0, 0.0], (*counts, self.both_wrong))
        variant = np.repeat([1.0, 1.0, 0.0, 0.0], (*counts, self.both_wrong))
        return primary, variant

    def to_dict(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs,
            "agreements": self.agreements,
            "agreement": self.agreement,
            "agreement_interval": [self.agreement_low, self.agreement_high],
            "labelled": self.labelled,
            "both_right": self.both_right,
            "only_variant_right": self.only_variant_right,
            "only_primary_right": self.only_primary_right,
            "both_wrong": self.both_wrong,
        }


@dataclass(frozen=True)
class VariantStats:
    """One variant over one window. `None` where there is nothing to measure yet: an empty
    window has no error rate, never a rate of 0."""

    name: str
    role: str
    version: int
    metric: str
    requests: int = 0  # assigned to this variant (mirrored: requests it scored)
    errors: int = 0
    error_rate: float | None = None
    error_low: float | None = None
    error_high: float | None = None
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    predicted: dict[str, int] = field(default_factory=dict)  # predicted class (or bin) → rows
    labelled: int = 0  # answers with a usable label (a number, for reward)
    metric_value: float | None = None
    metric_low: float | None = None
    metric_high: float | None = None
    units: int | None = None  # distinct sticky keys among the requests, where the log has them
    pairing: Pairing | None = None
    latencies: NDArray[np.float64] = field(default_factory=_nothing, repr=False, compare=False)
    outcomes: NDArray[np.float64] = field(default_factory=_nothing, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.name,
            "role": self.role,
            "version": self.version,
            "requests": self.requests,
            "units": self.units,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "error_interval": [self.error_low, self.error_high],
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "predicted": dict(self.predicted),
            "labelled": self.labelled,
            "metric": {
                "name": self.metric,
                "value": self.metric_value,
                "interval": [self.metric_low, self.metric_high],
            },
            "pairing": None if self.pairing is None else self.pairing.to_dict(),
        }


def deployment_rows(
    predictions: pd.DataFrame,
    feedback: pd.DataFrame,
    deployment: Deployment,
    *,
    unit_field: str | None = None,
) -> pd.DataFrame:
    """One row per logged prediction of `deployment`, classified and labelled.

    Columns: prediction_id, at_ms, variant, version, latency_ms, mirrored, failed, fallback,
    prediction, predicted (its class or bin, as text), inputs, parent_id, labelled, label,
    and unit (the `unit_field` of the inputs, for sticky assignment; None where missing).
    """
    import pandas as pd

    _require(predictions, _PREDICTIONS, "predictions", "PredictionLog.read")
    _require(feedback, _FEEDBACK, "feedback", "FeedbackStore.read")
    mine = predictions[predictions["deployment"] == deployment.name]
    mirrored_names = {v.name for v in deployment.mirrored}
    outputs = list(mine["outputs"])
    parents = [p if isinstance(p, str) else None for p in mine["parent_id"]]
    variants = [str(v) for v in mine["variant"]]
    failed = [_failed(o) for o in outputs]
    mirrored = [name in mirrored_names for name in variants]
    # answers the primary gave for a live variant that failed: assigned to that variant
    covered = {
        p
        for p, bad, mirror in zip(parents, failed, mirrored, strict=True)
        if bad and not mirror and p is not None
    }
    ids = [str(i) for i in mine["prediction_id"]]
    labels = dict(zip(feedback["prediction_id"], feedback["label"], strict=True))
    keys = [p if p is not None else i for i, p in zip(ids, parents, strict=True)]
    prediction = [None if bad else _predict(o) for o, bad in zip(outputs, failed, strict=True)]
    frame = pd.DataFrame(
        {
            "prediction_id": pd.Series(ids, dtype=object),
            "at_ms": _milliseconds(mine["at"]),
            "variant": pd.Series(variants, dtype=object),
            "version": mine["version"].to_numpy(dtype="int64"),
            "latency_ms": mine["latency_ms"].to_numpy(dtype="float64"),
            "mirrored": np.asarray(mirrored, dtype=bool),
            "failed": np.asarray(failed, dtype=bool),
            "fallback": np.asarray(
                [i in covered and not m for i, m in zip(ids, mirrored, strict=True)], dtype=bool
            ),
            "prediction": pd.Series(prediction, dtype=object),
            "inputs": pd.Series(list(mine["inputs"]), dtype=object),
            "parent_id": pd.Series(parents, dtype=object),
            "labelled": np.asarray([k in labels for k in keys], dtype=bool),
            "label": pd.Series([labels.get(k) for k in keys], dtype=object),
        }
    )
    primary = deployment.primary.name
    frame["predicted"] = _classes(frame, primary)
    frame["unit"] = pd.Series(
        [_unit(x, unit_field) for x in frame["inputs"]] if unit_field else [None] * len(frame),
        dtype=object,
    )
    return frame


def variant_stats(
    rows: pd.DataFrame,
    deployment: Deployment,
    *,
    since_ms: int | None = None,
    confidence: float = 0.95,
) -> dict[str, VariantStats]:
    """Every variant of `deployment` over `deployment_rows` made at or after `since_ms`."""
    window = rows if since_ms is None else rows[rows["at_ms"] >= since_ms]
    window = window[~window["fallback"]]
    metric = str(deployment.policy.get("metric", "accuracy"))
    primary = deployment.primary.name
    primary_rows = window[(window["variant"] == primary) & ~window["failed"]]
    by_id = dict(zip(primary_rows["prediction_id"], primary_rows["prediction"], strict=True))
    found: dict[str, VariantStats] = {}
    for variant in deployment.variants:
        part = window[window["variant"] == variant.name]
        mirrored = bool(variant.role in ("shadow", "challenger"))
        found[variant.name] = _summary(
            part,
            variant.name,
            variant.role,
            variant.version,
            metric,
            confidence,
            by_id if mirrored else None,
        )
    return found


def read_rows(
    log: PredictionLog,
    feedback: FeedbackStore,
    deployment: Deployment,
    *,
    until_ms: int | None = None,
) -> pd.DataFrame:
    """`deployment_rows` of everything the deployment logged since it was created."""
    since = deployment.created_at
    predictions = log.read(deployment.model, since_ms=since, until_ms=until_ms)
    labels = feedback.read(deployment.model, since_ms=since, until_ms=until_ms)
    return deployment_rows(predictions, labels, deployment, unit_field=sticky_field(deployment))


def sticky_field(deployment: Deployment) -> str | None:
    """The input field requests are hashed by, when assignment is sticky by a field."""
    sticky = deployment.policy.get("sticky")
    if isinstance(sticky, str) and sticky.startswith("field:"):
        return sticky.partition(":")[2]
    return None


# -- one variant ---------------------------------------------------------------------------


def _summary(
    part: pd.DataFrame,
    name: str,
    role: str,
    version: int,
    metric: str,
    confidence: float,
    primary_answers: Mapping[str, Any] | None,
) -> VariantStats:
    requests = len(part)
    errors = int(part["failed"].sum())
    answered = part[~part["failed"]]
    latencies = answered["latency_ms"].to_numpy(dtype="float64")
    rate: tuple[float | None, float | None, float | None] = (None, None, None)
    if requests:
        rate = (errors / requests, *proportion_interval(errors, requests, confidence))
    p50, p99 = (
        (float(np.quantile(latencies, 0.5)), float(np.quantile(latencies, 0.99)))
        if latencies.size
        else (None, None)
    )
    outcomes = _outcomes(answered, metric, mirrored=primary_answers is not None)
    value, low, high = _mean_interval(outcomes, metric, confidence)
    units = None
    if requests and part["unit"].notna().all():
        units = int(part["unit"].map(_hashable).nunique())
    pairing = None
    if primary_answers is not None:
        pairing = _pairing(answered, primary_answers, confidence)
    return VariantStats(
        name=name,
        role=role,
        version=version,
        metric=metric,
        requests=requests,
        errors=errors,
        error_rate=rate[0],
        error_low=rate[1],
        error_high=rate[2],
        latency_p50_ms=p50,
        latency_p99_ms=p99,
        predicted={str(k): int(n) for k, n in answered["predicted"].value_counts().items()},
        labelled=int(outcomes.size),
        metric_value=value,
        metric_low=low,
        metric_high=high,
        units=units,
        pairing=pairing,
        latencies=latencies,
        outcomes=outcomes,
    )


def _outcomes(answered: pd.DataFrame, metric: str, *, mirrored: bool) -> NDArray[np.float64]:
    labelled = answered[answered["labelled"]]
    if metric == "accuracy":
        return np.asarray(
            [_same(y, p) for y, p in zip(labelled["label"], labelled["prediction"], strict=True)],
            dtype="float64",
        )
    if mirrored:  # a reward was earned by the answer the client got, not by a mirror
        return np.zeros(0)
    return np.asarray([float(y) for y in labelled["label"] if _number(y)], dtype="float64")


def _mean_interval(
    outcomes: NDArray[np.float64], metric: str, confidence: float
) -> tuple[float | None, float | None, float | None]:
    n = outcomes.size
    if n == 0:
        return None, None, None
    mean = float(outcomes.mean())
    if metric == "accuracy":
        low, high = proportion_interval(float(outcomes.sum()), n, confidence)
        return mean, low, high
    if n < 2:
        return mean, None, None
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    half = z * float(outcomes.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def _pairing(
    answered: pd.DataFrame, primary_answers: Mapping[str, Any], confidence: float
) -> Pairing:
    agreements = pairs = 0
    counts = [0, 0, 0, 0]  # both right, only variant, only primary, both wrong
    for parent, mine, labelled, label in zip(
        answered["parent_id"],
        answered["prediction"],
        answered["labelled"],
        answered["label"],
        strict=True,
    ):
        if parent not in primary_answers:
            continue
        theirs = primary_answers[parent]
        pairs += 1
        agreements += _same(mine, theirs)
        if labelled:
            right_primary, right_mine = _same(label, theirs), _same(label, mine)
            counts[(not right_primary) + 2 * (not right_mine)] += 1
    low = high = agreement = None
    if pairs:
        agreement = agreements / pairs
        low, high = proportion_interval(agreements, pairs, confidence)
    return Pairing(pairs, agreements, agreement, low, high, sum(counts), *counts)


# -- values --------------------------------------------------------------------------------


def _failed(outputs: Any) -> bool:
    return not isinstance(outputs, Mapping) or "error" in outputs


def _predict(outputs: Any) -> Any:
    return outputs.get("predict") if isinstance(outputs, Mapping) else None


def _number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values (1 equals 1.0; a list equals a list of equal items)."""
    if a is None or b is None:
        return False
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _unit(inputs: Any, name: str | None) -> Any:
    if name is None or not isinstance(inputs, Mapping):
        return None
    value = inputs.get(name)
    return _hashable(value) if value is not None else None


def _classes(frame: pd.DataFrame, primary: str) -> pd.Series:
    """Each answer's predicted class as text; numeric predictions with more than
    `MAX_CLASSES` values fall in bins at the primary's quantiles, shared by every variant."""
    import pandas as pd

    values = [p for p, bad in zip(frame["prediction"], frame["failed"], strict=True) if not bad]
    numeric = bool(values) and all(_number(p) for p in values)
    if numeric and len({float(p) for p in values}) > MAX_CLASSES:
        base = frame[(frame["variant"] == primary) & ~frame["failed"]]["prediction"]
        reference = [float(p) for p in (base if len(base) else values)]
        edges = quantile_edges(reference, _BINS)
        names = [f"({lo:.4g}, {hi:.4g}]" for lo, hi in itertools.pairwise(edges)]
        keys: list[str | None] = []
        for p, bad in zip(frame["prediction"], frame["failed"], strict=True):
            index = int(np.searchsorted(edges, float(p), side="left")) - 1
            keys.append(None if bad else names[max(index, 0)])
        return pd.Series(keys, dtype=object, index=frame.index)
    return pd.Series(
        [
            None if bad else _class(p)
            for p, bad in zip(frame["prediction"], frame["failed"], strict=True)
        ],
        dtype=object,
        index=frame.index,
    )


def _class(value: Any) -> str:
    if isinstance(value, list | dict):
        import orjson

        return orjson.dumps(value).decode()
    return str(value)


def _milliseconds(at: pd.Series) -> NDArray[np.int64]:
    import pandas as pd

    if len(at) == 0:
        return np.zeros(0, dtype="int64")
    stamps = pd.to_datetime(at, utc=True).dt.as_unit("ms").astype("int64")
    return np.asarray(stamps, dtype="int64")


def _require(frame: pd.DataFrame, columns: Sequence[str], name: str, source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"{name} lack column(s) {', '.join(missing)}: pass the frame {source} returns"
        )
