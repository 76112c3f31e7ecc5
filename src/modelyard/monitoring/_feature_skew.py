"""Skew between the features a model was served and the same features rebuilt offline.

A version logged with a feature service is served from entity keys: the prediction log
keeps the keys and the values read online. Joining the feature views point in time at each
prediction's time must give the same values; `feature_skew` does that join for the logged
predictions and compares value for value (`skew`). A materialization or stream that
transforms differently from the offline definition, a stale online store or a view changed
without re-materializing shows as mismatches, feature by feature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.features._store import FeatureStore
    from modelyard.models._manifest import FeatureBinding
    from modelyard.monitoring._skew import SkewReport
    from modelyard.serving._log import PredictionLog

_TIME = "__modelyard_prediction_time"


def feature_skew(
    log: PredictionLog,
    store: FeatureStore,
    model: str,
    version: int,
    binding: FeatureBinding | None,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int | None = 10_000,
    rtol: float = 1e-6,
    atol: float = 1e-9,
) -> SkewReport:
    """Compare the served features of `model` version `version`'s logged predictions (the
    latest `limit` in [since_ms, until_ms)) with the offline join at their times."""
    from modelyard.monitoring._skew import skew

    if binding is None:
        raise InvalidInput(
            f"{model} version {version} was not logged with a feature service "
            "(log_model(..., feature_service=...)): there is nothing served to compare"
        )
    rows = log.read(model, version=version, since_ms=since_ms, until_ms=until_ms, limit=limit)
    served = served_features(rows, binding)
    if served.empty:
        raise InvalidInput(
            f"no logged prediction of {model} version {version} was served from entity keys "
            "in that range"
        )
    labels = served[["prediction_id", *binding.join_keys, _TIME]]
    offline = _offline(store, labels, binding)
    return skew(
        offline[["prediction_id", *binding.columns]],
        served[["prediction_id", *binding.columns]],
        key="prediction_id",
        columns=binding.columns,
        rtol=rtol,
        atol=atol,
    )


def served_features(rows: pd.DataFrame, binding: FeatureBinding) -> pd.DataFrame:
    """The logged rows that carry the entity keys and every feature: one column each, plus
    the prediction id and time."""
    import pandas as pd

    needed = [*binding.join_keys, *binding.columns]
    kept: list[dict[str, Any]] = []
    for prediction_id, at, inputs in zip(
        rows["prediction_id"], rows["at"], rows["inputs"], strict=True
    ):
        if isinstance(inputs, dict) and all(name in inputs for name in needed):
            kept.append({"prediction_id": prediction_id, _TIME: at, **inputs})
    return pd.DataFrame(kept, columns=["prediction_id", _TIME, *needed])


def _offline(store: FeatureStore, labels: pd.DataFrame, binding: FeatureBinding) -> pd.DataFrame:
    """The training frame at the predictions' times, as aware UTC times or, for views whose
    times are naive, as naive UTC."""
    try:
        return store.training_frame(
            labels,
            binding.refs,
            timestamp_column=_TIME,
            full_feature_names=binding.full_feature_names,
        )
    except InvalidInput as exc:
        if "naive" not in exc.message:
            raise
    naive = labels.assign(**{_TIME: labels[_TIME].dt.tz_convert("UTC").dt.tz_localize(None)})
    return store.training_frame(
        naive, binding.refs, timestamp_column=_TIME, full_feature_names=binding.full_feature_names
    )
