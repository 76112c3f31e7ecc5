"""Lineage from a model version back to its feature views and dataset versions: a training
frame logged as a dataset version keeps the views it was joined from, a run logs it, and a
model logged with the feature service names the service and the view versions it reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

import modelyard as my

T0 = datetime(2026, 2, 1, tzinfo=UTC)


def test_a_model_version_leads_back_to_its_feature_views_and_datasets(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    source = pd.DataFrame(
        {
            "driver_id": np.repeat(np.arange(20), 10),
            "event_ts": [T0 + timedelta(hours=h) for h in range(10)] * 20,
            "trips": rng.integers(0, 40, 200),
            "rating": rng.uniform(1, 5, 200),
        }
    )
    source.to_parquet(tmp_path / "stats.parquet")
    my.configure(home=tmp_path / "home")
    try:
        driver = my.features.Entity("driver", ["driver_id"])
        stats = my.features.FeatureView(
            "driver_stats",
            entities=[driver],
            source=str(tmp_path / "stats.parquet"),
            timestamp_field="event_ts",
            features=[my.features.Field("trips", "int64"), my.features.Field("rating")],
        )
        my.features.apply([driver, stats, my.features.FeatureService("churn_v1", [stats])])
        labels = pd.DataFrame(
            {
                "driver_id": rng.integers(0, 20, 300),
                "event_timestamp": [T0 + timedelta(hours=int(h)) for h in rng.integers(1, 12, 300)],
            }
        )
        frame = my.features.get_training_frame(labels, service="churn_v1")
        assert frame.attrs["modelyard_lineage"]["feature_views"] == [
            {"name": "driver_stats", "version": 1}
        ]
        stored = my.data.log_dataset(frame, name="churn-train")  # its lineage comes along
        inputs = frame[["trips", "rating"]].astype("float64")
        target = (frame["rating"] > 3).astype(int)
        with my.start_run():
            my.log_dataset(frame, name="churn-train")
            model = LogisticRegression().fit(inputs, target)
            my.log_model(model, "churn", training_data=(inputs, target), feature_service="churn_v1")

        graph = my.data.lineage("churn", 1)
        edges = {(e.source, e.kind, e.target) for e in graph.edges}
        root = "model_version:churn/1"
        assert (root, "reads", "feature_service:churn_v1") in edges
        assert ("feature_service:churn_v1", "derived_from", "feature_view:driver_stats@1") in edges
        runs = [n.id for n in graph.of_kind("run")]
        assert len(runs) == 1 and (root, "trained_by", runs[0]) in edges
        dataset = f"dataset_version:{stored.ref}"
        assert (runs[0], "used", dataset) in edges
        assert (dataset, "derived_from", "feature_view:driver_stats@1") in edges
        assert "feature_view driver_stats@1" in graph.render()
    finally:
        my.configure(home=tmp_path / "unused")
    # the REST API gives the same graph
    from fastapi.testclient import TestClient

    from modelyard.config import Settings
    from modelyard.server import create_app
    from modelyard.tracking import open_local_backend

    backend = open_local_backend(Settings(home=tmp_path / "home"))
    with TestClient(create_app(backend, cache_dir=tmp_path / "cache")) as client:
        served = client.get("/api/v1/data/lineage/churn/1").json()
    assert {(e["source"], e["kind"], e["target"]) for e in served["edges"]} == edges
