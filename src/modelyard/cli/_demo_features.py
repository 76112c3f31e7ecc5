"""The features part of `modelyard demo`: driver statistics defined once as a feature view
with a transform, a point-in-time training frame, a model trained on it and logged with the
feature service, the online store materialized, and the model served over HTTP from entity
keys alone — with a skew check of what was served against the offline definition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from modelyard.cli._demo_serving import served
from modelyard.cli._output import console, fmt, print_table

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.config import Settings
    from modelyard.features._store import FeatureStore
    from modelyard.registry import Registry
    from modelyard.tracking import Tracker

MODEL = "driver-churn"
DRIVERS = 200
DAYS = 14
SEED = 11


def per_hour(frame: pd.DataFrame) -> pd.DataFrame:
    """Trips per hour online: the one definition used offline and online."""
    return frame.assign(trips_per_hour=frame["trips"] / frame["hours"])


def show_features(tracker: Tracker, registry: Registry, settings: Settings) -> None:
    """Define, join, train, materialize and serve from entity keys; print each step."""
    from modelyard.features._default import feature_store_of

    metadata = getattr(tracker.backend, "metadata", None)
    if settings.tracking_uri or metadata is None:
        console.print("\n[bold]features[/bold] skipped: the feature store needs the database")
        return
    console.print("\n[bold]features[/bold]: defined once, joined point in time, served online")
    now = datetime.now(UTC).replace(microsecond=0)
    store = feature_store_of(metadata, settings)
    try:
        _define(store, settings, now)
        frame = _training_frame(store, now)
        version = _train(tracker, registry, store, frame)
        written = store.materialize(end=now)
        console.print(f"  materialized {fmt(written['driver_stats'])} drivers online")
        _serve(store, settings, version)
    finally:
        store.close()


def _define(store: FeatureStore, settings: Settings, now: datetime) -> None:
    import numpy as np
    import pandas as pd

    from modelyard.features import Entity, FeatureService, FeatureView, Field

    rng = np.random.default_rng(SEED)
    start = now - timedelta(days=DAYS)
    times = [start + timedelta(hours=h) for h in range(0, DAYS * 24, 6)]
    source = pd.DataFrame(
        {
            "driver_id": np.repeat(np.arange(DRIVERS), len(times)),
            "event_ts": times * DRIVERS,
            "trips": rng.poisson(12, DRIVERS * len(times)),
            "hours": rng.integers(2, 9, DRIVERS * len(times)).astype(float),
            "rating": np.clip(rng.normal(4.2, 0.5, DRIVERS * len(times)), 1, 5),
        }
    )
    folder = settings.home / "demo-features"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "driver_stats.parquet"
    source.to_parquet(path)
    driver = Entity("driver", ["driver_id"], description="a driver of the demo")
    stats = FeatureView(
        "driver_stats",
        entities=[driver],
        source=str(path),
        timestamp_field="event_ts",
        ttl=timedelta(days=2),
        features=[Field("trips_per_hour"), Field("rating")],
        transform=per_hour,
        description="trips per hour and rating, every 6 hours",
    )
    changes = store.apply([driver, stats, FeatureService("churn_v1", [stats])], force=True)
    print_table(
        "feature definitions applied",
        ["kind", "name", "action", "version"],
        [(c.kind, c.name, c.action, f"v{c.version}") for c in changes],
    )


def _training_frame(store: FeatureStore, now: datetime) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(SEED + 1)
    count = 3000
    labels = pd.DataFrame(
        {
            "driver_id": rng.integers(0, DRIVERS, count),
            "event_timestamp": [
                now - timedelta(days=DAYS + 1) + timedelta(minutes=int(m))
                for m in rng.integers(0, (DAYS + 1) * 24 * 60, count)
            ],
        }
    )
    frame = store.training_frame(labels, service="churn_v1")
    known = frame.dropna()
    noise = rng.normal(0, 0.3, len(known))
    churned = (known["rating"] < 4.1) & (known["trips_per_hour"] + noise < 3.0)
    known = known.assign(churned=churned.astype(int))
    console.print(
        f"  training frame: {len(frame):,} label rows, {len(frame) - len(known):,} with no "
        "feature value within the TTL (before the first event), none lost or duplicated"
    )
    return known


def _train(tracker: Tracker, registry: Registry, store: FeatureStore, frame: pd.DataFrame) -> int:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    from modelyard.models._package import ModelSpec, log_model

    inputs, target = frame[["trips_per_hour", "rating"]], frame["churned"]
    x_train, x_test, y_train, y_test = train_test_split(inputs, target, random_state=SEED)
    model = LogisticRegression().fit(x_train, y_train)
    auc = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])
    with tracker.start_run("demo-features", "driver-churn", tags={"demo": "true"}) as run:
        run.log_metric("auc", float(auc))
        spec = ModelSpec(
            name=MODEL,
            artifact_path="model",
            training_data=(x_train, y_train),
            features=store.binding("churn_v1"),
            description="Demo: churn risk of a driver from online features.",
        )
        version = log_model(model, spec, run_id=run.id, tracker=tracker, registry=registry)
    console.print(f"  trained on the frame (AUC {auc:.3f}); registered {MODEL} v{version.version}")
    return version.version


def _serve(store: FeatureStore, settings: Settings, version: int) -> None:
    from modelyard.monitoring._feature_skew import feature_skew
    from modelyard.serving import create_app
    from modelyard.serving._log import SqlPredictionLog

    app = create_app([f"{MODEL}/{version}"], settings=settings)
    with served(app) as http:
        answer: dict[str, Any] = http.post(
            f"/v1/models/{MODEL}:predict", json={"entities": {"driver_id": [3, 14, 159]}}
        ).json()
    probabilities = [round(p[1], 3) for p in answer["probabilities"]]
    console.print(
        f'  POST /v1/models/{MODEL}:predict {{"entities": {{"driver_id": [3, 14, 159]}}}} '
        f"-> churn risk {probabilities}"
    )
    log = SqlPredictionLog(store.registry.metadata)
    report = feature_skew(log, store, MODEL, version, store.binding("churn_v1"))
    verdict = "no mismatch" if not report.skewed_columns else f"skewed: {report.skewed_columns}"
    console.print(f"  skew of the {report.matched} served rows against the offline join: {verdict}")
