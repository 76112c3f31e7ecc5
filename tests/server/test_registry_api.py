"""The registry's REST routes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelyard.config import Settings
from modelyard.server import create_app
from modelyard.tracking import open_local_backend

API = "/api/v1/models"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(open_local_backend(Settings(home=tmp_path)))) as test_client:
        yield test_client


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
