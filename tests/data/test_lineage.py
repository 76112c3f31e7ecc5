"""Lineage on real stores: a dataset version derived from feature views and labels trains a
model version in a run, which a deployment serves; the graph links them all, from the model
version and from the dataset."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import modelyard as my
from _monitored import configured
from modelyard.data import LineageGraph
from modelyard.errors import NotFound

LINEAGE = {
    "feature_views": [{"name": "spend", "version": 2}, {"name": "tenure", "version": 1}],
    "labels": {"name": "churn-labels", "version": 1},
    "features": ["spend:total", "tenure:months"],
}


def training_frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(rng.normal(size=(80, 2)), columns=["total", "months"])
    frame["churned"] = (frame["total"] > frame["months"]).astype(int)
    return frame


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Labels, a training set derived from them and two feature views, model `churn` 1
    trained on it and deployed as `churn-live`, and model `other` 1 trained on other data."""
    path = tmp_path_factory.mktemp("lineage") / "home"
    with configured(path):
        frame = training_frame()
        my.data.log_dataset(frame[["churned"]], name="churn-labels")
        my.data.log_dataset(frame, name="churn-train", lineage=LINEAGE)
        features, label = frame[["total", "months"]], frame["churned"]
        with my.start_run("churn-training") as run:
            run.log_dataset(frame, "churn-train")
            run.log_dataset(frame.head(10), "holdout", role="evaluation")
            fitted = LogisticRegression().fit(features, label)
            my.log_model(fitted, "churn", run=run, input_example=features.head(5))
        with my.start_run("other-training") as run:
            fitted = LogisticRegression().fit(features, label)
            my.log_model(fitted, "other", run=run, input_example=features.head(5))
        my.rollout.deploy("churn-live", strategy="single", model="churn/1")
        yield path


def edges(graph: LineageGraph) -> set[tuple[str, str, str]]:
    return {(e.source, e.kind, e.target) for e in graph.edges}


def test_model_lineage_reaches_data_features_labels_and_deployments(home: Path) -> None:
    with configured(home):
        graph = my.data.lineage("churn", 1)
    run = graph.of_kind("run")[0].id
    assert graph.root == "model_version:churn/1"
    assert {
        ("model_version:churn/1", "trained_by", run),
        (run, "used", "dataset_version:churn-train@1"),
        ("dataset_version:churn-train@1", "derived_from", "feature_view:spend@2"),
        ("dataset_version:churn-train@1", "derived_from", "feature_view:tenure@1"),
        ("dataset_version:churn-train@1", "derived_from", "feature:spend:total"),
        ("dataset_version:churn-train@1", "derived_from", "dataset_version:churn-labels@1"),
        ("model_version:churn/1", "deployed_in", "deployment:churn-live"),
    } <= edges(graph)
    holdout = [n for n in graph.of_kind("dataset") if n.attrs["name"] == "holdout"]
    assert holdout and holdout[0].attrs["role"] == "evaluation"  # logged, never versioned
    assert graph.nodes["deployment:churn-live"].attrs["variants"] == ["primary"]
    text = graph.render()
    assert "model_version churn/1" in text.splitlines()[0]
    assert "derived_from → feature_view spend@2" in text
    assert "deployed_in → deployment churn-live" in text
    assert {n["id"] for n in graph.to_dict()["nodes"]} == set(graph.nodes)


def test_dataset_lineage_reaches_the_models_it_trained(home: Path) -> None:
    with configured(home):
        graph = my.data.lineage_of_dataset("churn-train")
    run = graph.of_kind("run")[0].id
    assert {
        ("dataset_version:churn-train@1", "used_by", run),
        (run, "produced", "model_version:churn/1"),
        ("model_version:churn/1", "deployed_in", "deployment:churn-live"),
        ("dataset_version:churn-train@1", "derived_from", "feature_view:spend@2"),
    } <= edges(graph)
    assert "model_version:other/1" not in graph.nodes


def test_a_model_without_versioned_data_or_deployments_has_only_its_run(home: Path) -> None:
    with configured(home):
        graph = my.data.lineage("other", 1)
        with pytest.raises(NotFound, match="no model version churn/9"):
            my.data.lineage("churn", 9)
    assert sorted(n.kind for n in graph.nodes.values()) == ["model_version", "run"]
