"""The registry's REST routes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from modelyard.config import Settings
from modelyard.models import ColumnSpec, Manifest, OutputSpec, Signature
from modelyard.server import create_app
from modelyard.tracking import Metric, RunSpec, RunStatus, open_local_backend
from modelyard.tracking._datasets import describe_dataset
from modelyard.tracking._entities import now_ms
from modelyard.tracking._sql import SqlTracking

API = "/api/v1/models"


@pytest.fixture
def backend(tmp_path: Path) -> SqlTracking:
    return open_local_backend(Settings(home=tmp_path))


@pytest.fixture
def client(backend: SqlTracking) -> Iterator[TestClient]:
    with TestClient(create_app(backend)) as test_client:
        yield test_client


def run_with(backend: SqlTracking, auc: float, penalty: str, seed: int) -> tuple[str, str]:
    """A finished run with a metric, a param and a training dataset; (run id, dataset digest)."""
    experiment = backend.get_experiment("churn", create=True)
    run = backend.create_run(
        RunSpec(
            experiment.id, f"run-{seed}", "ana", now_ms(), environment={"git": {"commit": "c1"}}
        )
    )
    backend.log_batch(run.id, params={"penalty": penalty}, metrics=[Metric("auc", auc, 0, 1)])
    data = pd.DataFrame({"age": np.arange(seed, seed + 10)})
    dataset = describe_dataset(data, name="customers", role="training")
    backend.log_dataset(run.id, dataset)
    backend.finish_run(run.id, RunStatus.FINISHED)
    return run.id, dataset.digest


def store_manifest(backend: SqlTracking, run_id: str, dtype: str) -> str:
    manifest = Manifest(
        flavor="sklearn",
        model_class="sklearn.linear_model:LogisticRegression",
        files=[],
        signature=Signature(
            columns=[ColumnSpec(name="age", dtype=dtype)],
            outputs=[OutputSpec(name="predict", dtype="int64", shape=[-1])],
        ),
        python="3.11.9",
        requirements={"scikit-learn": "1.5.0"},
        run_id=run_id,
        artifact_path="model",
        created_at=now_ms(),
        created_by="ana",
    )
    return backend.artifacts.put_bytes(manifest.to_bytes()).digest


def test_versions_aliases_reviews_and_history_over_http(client: TestClient) -> None:
    created = client.post(API, json={"name": "churn", "protected_aliases": ["champion"]})
    assert created.status_code == 201
    for expected in (1, 2):
        response = client.post(f"{API}/churn/versions", json={"created_by": "ana"})
        assert response.status_code == 201 and response.json()["version"] == expected
    denied = client.put(f"{API}/churn/aliases/champion", json={"version": 1, "actor": "ana"})
    assert denied.status_code == 403
    assert denied.json()["error"]["type"] == "PermissionDenied"
    for version in (1, 2):
        review = client.post(
            f"{API}/churn/versions/{version}/reviews", json={"approved": True, "approver": "lead"}
        )
        assert review.status_code == 201
    for version in (1, 2):
        moved = client.put(
            f"{API}/churn/aliases/champion",
            json={"version": version, "actor": "ana", "reason": "auc"},
        )
        assert moved.status_code == 200 and moved.json()["aliases"] == ["champion"]
    back = client.post(f"{API}/churn/aliases/champion/rollback", json={"actor": "ops"})
    assert back.json()["version"] == 1
    kinds = [e["kind"] for e in client.get(f"{API}/churn/history").json()]
    assert kinds == ["approved", "approved", "set", "move", "rollback"]
    assert client.get(f"{API}/churn").json()["aliases"] == {"champion": 1}


def test_registry_errors_name_the_problem(client: TestClient) -> None:
    missing = client.get(f"{API}/nope")
    assert missing.status_code == 404 and "'nope'" in missing.json()["error"]["message"]
    client.post(f"{API}/churn/versions", json={"created_by": "ana"})
    bad = client.put(f"{API}/churn/aliases/champion", json={"version": "x", "actor": "a"})
    assert bad.status_code == 422 and "version" in bad.json()["error"]["message"]
    absent = client.get(f"{API}/churn/versions/9")
    assert absent.status_code == 404 and "1..1" in absent.json()["error"]["message"]
    huge = client.get(f"{API}/churn/aliases/champion/at", params={"time": 2**70})
    assert huge.status_code in (400, 422)


def test_model_and_version_metadata_are_patched(client: TestClient) -> None:
    client.post(API, json={"name": "churn", "description": "old", "tags": {"team": "risk"}})
    client.post(f"{API}/churn/versions", json={"created_by": "ana", "tags": {"stage": "dev"}})
    patched = client.patch(
        f"{API}/churn", json={"description": "who leaves", "tags": {"tier": "1"}}
    ).json()
    assert (patched["description"], patched["tags"]) == (
        "who leaves",
        {"team": "risk", "tier": "1"},
    )
    kept = client.patch(f"{API}/churn", json={"delete_tags": ["team"]}).json()
    assert (kept["description"], kept["tags"]) == ("who leaves", {"tier": "1"})
    version = client.patch(
        f"{API}/churn/versions/1",
        json={"description": "May", "tags": {"stage": "qa"}},
    ).json()
    assert (version["description"], version["tags"]) == ("May", {"stage": "qa"})
    cleared = client.patch(f"{API}/churn/versions/1", json={"description": ""}).json()
    assert cleared["description"] is None
    missing = client.patch(f"{API}/churn/versions/1", json={"delete_tags": ["nope"]})
    assert missing.status_code == 404 and "tags: stage" in missing.json()["error"]["message"]
    assert client.patch(f"{API}/nope", json={}).status_code == 404


def test_lineage_search_compare_card_and_manifest_over_http(
    client: TestClient, backend: SqlTracking
) -> None:
    run_1, data_1 = run_with(backend, 0.8, "l2", 1)
    run_2, _ = run_with(backend, 0.9, "l1", 2)
    for run_id, dtype in ((run_1, "int64"), (run_2, "float64")):
        body = {
            "created_by": "ana",
            "run_id": run_id,
            "flavor": "sklearn",
            "manifest_digest": store_manifest(backend, run_id, dtype),
        }
        client.post(f"{API}/churn/versions", json=body)
    client.post(f"{API}/fraud/versions", json={"created_by": "ana"})

    lineage = client.get(f"{API}/churn/versions/1/lineage").json()
    assert (lineage["run_id"], lineage["git_commit"]) == (run_1, "c1")
    assert [(d["name"], d["digest"]) for d in lineage["datasets"]] == [("customers", data_1)]

    trained = client.get(f"/api/v1/datasets/{data_1}/versions").json()
    assert [(v["name"], v["version"]) for v in trained] == [("churn", 1)]
    by_name = client.get("/api/v1/datasets/customers/versions").json()
    assert [v["version"] for v in by_name] == [1, 2]

    found = client.get(
        "/api/v1/model-versions",
        params={"filter": "metrics.auc > 0.5", "order_by": ["metrics.auc desc"]},
    ).json()
    assert [(v["name"], v["version"]) for v in found] == [("churn", 2), ("churn", 1)]
    only = client.get("/api/v1/model-versions", params={"name": "fraud"}).json()
    assert [(v["name"], v["version"]) for v in only] == [("fraud", 1)]

    comparison = client.get(f"{API}/churn/compare", params={"a": 1, "b": 2}).json()
    assert comparison["params"] == {"penalty": ["l2", "l1"]}
    assert comparison["metrics"][0]["key"] == "auc"
    assert comparison["metrics"][0]["difference"] == pytest.approx(0.1)
    assert comparison["signature"] == ["column 'age': int64 → float64"]

    card = client.get(f"{API}/churn/versions/2/card")
    assert card.headers["content-type"].startswith("text/markdown")
    assert card.text.startswith("# churn — version 2") and "| auc | 0.9 |" in card.text

    manifest = client.get(f"{API}/churn/versions/1/manifest").json()
    assert manifest["signature"]["columns"][0] == {
        "name": "age",
        "dtype": "int64",
        "nullable": False,
        "categories": None,
        "pii": False,
    }
    none = client.get(f"{API}/fraud/versions/1/manifest")
    assert none.status_code == 404 and "no manifest" in none.json()["error"]["message"]


def test_query_errors_are_400_with_the_position_or_404(client: TestClient) -> None:
    client.post(f"{API}/churn/versions", json={"created_by": "ana"})
    bad = client.get("/api/v1/model-versions", params={"filter": "version > 1 versoin = 2"})
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "InvalidInput"
    assert "at position 12" in bad.json()["error"]["message"]
    unknown = client.get("/api/v1/model-versions", params={"filter": "auc > 1"})
    assert unknown.status_code == 400 and "unknown attribute 'auc'" in unknown.text
    assert client.get("/api/v1/model-versions", params={"name": "nope"}).status_code == 404
    assert client.get("/api/v1/datasets/nope/versions").status_code == 404
    assert client.get(f"{API}/churn/versions/5/lineage").status_code == 404
    assert client.get(f"{API}/churn/versions/5/card").status_code == 404
    assert client.get(f"{API}/churn/compare", params={"a": 1, "b": 5}).status_code == 404
    assert client.get(f"{API}/churn/compare", params={"a": 1}).status_code == 422
