"""The routes of `/api/v1/data` over a home holding dataset versions, a model version
trained on one and its deployment: listing, one version, validation of posted rows against
a stored version, and lineage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression

import modelyard as my
from _monitored import configured
from modelyard.config import Settings
from modelyard.server import create_app
from modelyard.tracking import open_local_backend

API = "/api/v1/data"


def frame(rows: int = 50, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "total": rng.uniform(0.0, 10.0, rows),
            "months": rng.integers(1, 60, rows),
            "seen": pd.date_range("2024-01-01", periods=rows, freq="D"),
        }
    )


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    home: Path = tmp_path_factory.mktemp("data-api") / "home"
    with configured(home):
        train = frame()
        my.data.log_dataset(train, name="train", lineage={"labels": "labels@1"})
        my.data.log_dataset(frame(seed=1), name="train")
        with my.start_run("fit") as run:
            run.log_dataset(train, "train")
            features = train[["total", "months"]]
            model = LogisticRegression().fit(features, train["months"] > 30)
            my.log_model(model, "churn", run=run, input_example=features)
        my.rollout.deploy("live", strategy="single", model="churn/1")
    backend = open_local_backend(Settings(home=home))
    with TestClient(create_app(backend), base_url=f"http://testserver{API}") as client:
        yield client


def answer(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_datasets_lists_latest_versions_and_versions_of_one(api: TestClient) -> None:
    assert [(d["name"], d["version"]) for d in answer(api.get("/datasets"))] == [("train", 2)]
    assert [d["version"] for d in answer(api.get("/datasets/train"))] == [1, 2]
    one = answer(api.get("/datasets/train/1"))
    assert one["lineage"] == {"labels": "labels@1"} and one["profile"]["rows"] == 50
    assert one["ranges"]["seen"]["min"] == "2024-01-01T00:00:00"


def test_unknown_datasets_answer_404(api: TestClient) -> None:
    error = answer(api.get("/datasets/nope"), 404)["error"]
    assert error == {"type": "NotFound", "message": "no dataset 'nope'; datasets: train"}
    assert answer(api.get("/datasets/train/9"), 404)["error"]["type"] == "NotFound"


def test_validate_answers_every_violation_of_posted_rows(api: TestClient) -> None:
    rows = [
        {"total": 1.0, "months": 3, "seen": "2024-01-02T00:00:00"},
        {"total": 99.0, "months": "many", "seen": "2030-01-01T00:00:00"},
        {"total": None, "months": 4, "seen": "2024-01-03"},
    ]
    report = answer(api.post("/validate", json={"rows": rows, "against": "train@1"}))
    found = {(v["column"], v["kind"]): v["rows"] for v in report["violations"]}
    assert found == {
        ("total", "range"): [1],
        ("total", "null"): [2],
        ("months", "dtype"): [1],
        ("seen", "range"): [1],
    }
    assert report["ok"] is False and report["against"] == "train@1"
    clean = answer(api.post("/validate", json={"rows": rows[:1], "against": "train"}))
    assert clean["ok"] is True and clean["against"] == "train@2"


def test_compare_and_lineage(api: TestClient) -> None:
    compared = answer(api.get("/datasets/train/compare", params={"a": 1, "b": 2}))
    assert compared["rows"] == {"a": 50, "b": 50, "change": 0}
    graph = answer(api.get("/lineage/churn/1"))
    ids = {n["id"] for n in graph["nodes"]}
    assert {"dataset_version:train@1", "dataset:labels@1", "deployment:live"} <= ids
    assert answer(api.get("/lineage/churn/7"), 404)["error"]["type"] == "NotFound"
    by_dataset = answer(api.get("/datasets/train/lineage", params={"version": 1}))
    assert "model_version:churn/1" in {n["id"] for n in by_dataset["nodes"]}
