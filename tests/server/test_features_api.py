"""The routes of `/api/v1/features` over a fresh home: definitions applied as specs, listed
and shown, a training frame, materialization, online reads and pushes, and refusals that
name the problem and change nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from modelyard.config import Settings
from modelyard.server import create_app
from modelyard.tracking import open_local_backend

API = "/api/v1/features"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    home = tmp_path / "home"
    backend = open_local_backend(Settings(home=home))
    with TestClient(create_app(backend, cache_dir=tmp_path / "cache")) as client:
        yield client


def definitions(source: Path) -> list[dict[str, Any]]:
    return [
        {"kind": "entity", "spec": {"name": "driver", "join_keys": ["driver_id"]}},
        {
            "kind": "view",
            "spec": {
                "name": "driver_stats",
                "entities": ["driver"],
                "source": {"kind": "parquet", "path": str(source)},
                "timestamp_field": "event_ts",
                "ttl_s": 86400,
                "features": [{"name": "trips", "dtype": "int64"}, "rating"],
            },
        },
        {"kind": "service", "spec": {"name": "churn_v1", "features": ["driver_stats:trips"]}},
    ]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "stats.parquet"
    pd.DataFrame(
        {
            "driver_id": [1, 1, 2],
            "event_ts": [T0, T0 + timedelta(hours=1), T0],
            "trips": [3, 4, 10],
            "rating": [4.0, 4.5, 3.0],
        }
    ).to_parquet(path)
    return path


def apply(api: TestClient, source: Path, **more: Any) -> Any:
    response = api.post(
        f"{API}/apply", json={"definitions": definitions(source), "actor": "ana", **more}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_definitions_are_applied_listed_and_shown(api: TestClient, source: Path) -> None:
    dry = apply(api, source, dry_run=True)
    assert [c["action"] for c in dry] == ["create"] * 3
    assert api.get(f"{API}/definitions").json() == []
    applied = apply(api, source)
    assert [(c["kind"], c["name"], c["version"]) for c in applied] == [
        ("entity", "driver", 1),
        ("view", "driver_stats", 1),
        ("service", "churn_v1", 1),
    ]
    views = api.get(f"{API}/definitions", params={"kind": "view"}).json()
    assert [(d["name"], d["created_by"]) for d in views] == [("driver_stats", "ana")]
    shown = api.get(f"{API}/definitions/view/driver_stats").json()
    assert [f["dtype"] for f in shown["spec"]["features"]] == ["int64", "float64"]
    assert len(api.get(f"{API}/definitions/view/driver_stats/history").json()) == 1


def test_training_frame_materialize_online_and_push(api: TestClient, source: Path) -> None:
    apply(api, source)
    labels = [
        {"driver_id": 1, "event_timestamp": "2026-01-01T00:30:00+00:00"},
        {"driver_id": 2, "event_timestamp": "2026-01-01T05:00:00+00:00"},
    ]
    frame = api.post(f"{API}/training-frame", json={"labels": labels, "service": "churn_v1"})
    assert frame.status_code == 200, frame.text
    assert [row["trips"] for row in frame.json()] == [3, 10]

    end = (T0 + timedelta(hours=2)).isoformat()
    done = api.post(f"{API}/materialize", json={"end": end}).json()
    assert done["written"] == {"driver_stats": 2}
    assert done["watermarks"] == {"driver_stats": int((T0 + timedelta(hours=2)).timestamp() * 1000)}

    now = datetime.now(UTC).isoformat()
    pushed = api.post(
        f"{API}/push/driver_stats",
        json={"rows": [{"driver_id": 2, "event_ts": now, "trips": 11, "rating": 1.0}]},
    )
    assert pushed.json() == {"written": 1, "rows": 1}
    online = api.post(
        f"{API}/online",
        json={"entities": [{"driver_id": 2}, {"driver_id": 1}], "features": ["driver_stats:trips"]},
    ).json()
    assert [row["trips"] for row in online["rows"]] == [11, None]
    assert [s["driver_stats"] for s in online["status"]] == ["ok", "expired"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "problem"),
    [
        (
            "post",
            "/online",
            {"entities": [{"driver_id": 1}], "features": ["nope:x"]},
            404,
            "no feature view 'nope'",
        ),
        (
            "post",
            "/online",
            {"entities": [{"rider": 1}], "features": ["driver_stats:trips"]},
            400,
            "needs the join keys",
        ),
        (
            "post",
            "/push/driver_stats",
            {"rows": [{"driver_id": 1, "event_ts": "2026-01-01", "trips": "x", "rating": 1.0}]},
            400,
            "trips",
        ),
        (
            "post",
            "/training-frame",
            {"labels": [{"driver_id": 1}], "service": "churn_v1"},
            400,
            "event_timestamp",
        ),
        ("get", "/definitions/view/ghost", None, 404, "no feature view 'ghost'"),
        ("get", "/definitions?kind=table", None, 400, "kind must be one of"),
        ("post", "/materialize", {"end": "yesterday-ish"}, 400, "not a time"),
    ],
)
def test_refusals_name_the_problem(
    api: TestClient, source: Path, method: str, path: str, body: Any, status: int, problem: str
) -> None:
    apply(api, source)
    response = getattr(api, method)(f"{API}{path}", **({"json": body} if body else {}))
    assert response.status_code == status, response.text
    assert problem in response.text


def test_a_breaking_apply_is_refused_and_changes_nothing(api: TestClient, source: Path) -> None:
    apply(api, source)
    changed = definitions(source)
    changed[1]["spec"]["features"] = [{"name": "trips", "dtype": "float64"}, "rating"]
    response = api.post(f"{API}/apply", json={"definitions": changed, "actor": "ana"})
    assert response.status_code == 400 and "changes type" in response.text
    assert api.get(f"{API}/definitions/view/driver_stats").json()["version"] == 1
    forced = api.post(f"{API}/apply", json={"definitions": changed, "actor": "ana", "force": True})
    assert [c["version"] for c in forced.json()][1] == 2


def test_the_skew_of_served_features_is_checked_over_rest(
    tmp_path: Path, api: TestClient, source: Path
) -> None:
    """Predictions logged as a server logs them for entity requests, one served value off."""
    from sklearn.linear_model import LogisticRegression

    import modelyard as my
    from modelyard.serving import PredictionRow, new_ids

    apply(api, source)
    home = tmp_path / "home"
    my.configure(home=home)
    try:
        inputs = pd.DataFrame({"trips": [3.0, 10.0, 4.0, 9.0]})
        with my.start_run():
            model = LogisticRegression().fit(inputs, [0, 1, 0, 1])
            my.log_model(model, "churn", training_data=inputs, feature_service="churn_v1")
        at = T0 + timedelta(hours=2)
        at_ms = int(at.timestamp() * 1000)
        served = [(1, 4), (2, 10), (1, 5)]  # the last one is not what the view holds
        rows = [
            PredictionRow(
                i,
                "churn",
                1,
                at_ms,
                1.0,
                json.dumps({"driver_id": d, "trips": t}),
                json.dumps({"predict": 0}),
            )
            for i, (d, t) in zip(new_ids(3, at_ms), served, strict=True)
        ]
        from modelyard._sdk import default_prediction_log

        default_prediction_log().write(rows)
    finally:
        my.configure(home=tmp_path / "unused")
    report = api.get(f"{API}/skew/churn/1").json()
    assert report["matched"] == 3
    assert report["skewed_columns"] == ["trips"]
    assert report["columns"]["trips"]["mismatches"] == 1
    refused = api.get(f"{API}/skew/churn/7")
    assert refused.status_code in (400, 404) and "churn" in refused.text
