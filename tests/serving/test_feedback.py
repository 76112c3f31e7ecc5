"""Feedback by prediction id: through the SDK on local stores and on a server, and over REST.

Recording is all or nothing: a malformed id or label is 400, an unknown prediction 404, a
prediction that already has a label 409, and none of them leaves anything recorded.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest

from modelyard._sdk import default_prediction_log
from modelyard.errors import Conflict, InvalidInput, NotFound
from modelyard.serving import (
    Feedback,
    PredictionRow,
    SqlFeedback,
    SqlPredictionLog,
    new_ids,
    read_feedback,
    read_predictions,
    record_feedback,
)
from modelyard.store import MetadataStore

API = "/api/v1"


@pytest.fixture
def model() -> str:
    return f"churn-{uuid.uuid4().hex[:8]}"


def predictions(log: Any, model: str, count: int, version: int = 2) -> list[str]:
    """Ids of `count` predictions of `model` written to `log`."""
    ids = new_ids(count)
    at = int(ids[0][:12], 16)
    log.write(
        [PredictionRow(i, model, version, at, 1.0, '{"x": 1}', '{"predict": 0}') for i in ids]
    )
    return ids


@pytest.fixture
def ids(sdk: ModuleType, model: str) -> list[str]:
    """Three predictions in the prediction log of the configured stores or server."""
    return predictions(default_prediction_log(), model, 3)


def labels(model: str) -> dict[str, Any]:
    frame = read_feedback(model)
    return dict(zip(frame["prediction_id"], frame["label"], strict=True))


def test_feedback_is_recorded_with_the_version_that_predicted(
    sdk: ModuleType, ids: list[str], model: str
) -> None:
    recorded = sdk.feedback(ids[0], 1)
    assert isinstance(recorded, Feedback)
    assert (recorded.prediction_id, recorded.label, recorded.model, recorded.version) == (
        ids[0],
        1,
        model,
        2,
    )
    frame = read_feedback(model)
    assert list(frame.columns) == ["prediction_id", "model", "version", "at", "label"]
    assert str(frame["at"].dtype) == "datetime64[ms, UTC]"
    assert frame.iloc[0]["at"] == pd.Timestamp(recorded.at_ms, unit="ms", tz="UTC")
    assert labels(model) == {ids[0]: 1}


def test_labels_of_every_allowed_shape_round_trip(
    sdk: ModuleType, ids: list[str], model: str
) -> None:
    recorded = record_feedback({ids[0]: "churned", ids[1]: [1, 0.5, True, "x"], ids[2]: 2.5})
    assert [r.label for r in recorded] == ["churned", [1, 0.5, True, "x"], 2.5]
    assert labels(model) == {ids[0]: "churned", ids[1]: [1, 0.5, True, "x"], ids[2]: 2.5}
    assert len(read_feedback(model, version=2, limit=2)) == 2
    assert read_feedback(model, version=1).empty


def test_numpy_labels_are_taken_as_plain_values(sdk: ModuleType, ids: list[str]) -> None:
    recorded = record_feedback([(ids[0], np.int64(3)), (ids[1], np.array([1.5, 2.0])[0])])
    assert [(type(r.label), r.label) for r in recorded] == [(int, 3), (float, 1.5)]


def test_an_unknown_prediction_is_not_found_and_nothing_is_recorded(
    sdk: ModuleType, ids: list[str], model: str
) -> None:
    unknown = new_ids(1)[0]
    with pytest.raises(NotFound, match=unknown):
        record_feedback([(ids[0], 1), (unknown, 0)])
    assert labels(model) == {}


def test_a_second_label_for_a_prediction_is_a_conflict(
    sdk: ModuleType, ids: list[str], model: str
) -> None:
    sdk.feedback(ids[0], 1)
    with pytest.raises(Conflict, match=ids[0]):
        record_feedback([(ids[1], 0), (ids[0], 0)])
    with pytest.raises(Conflict, match=ids[2]):
        record_feedback([(ids[2], 0), (ids[2], 1)])
    assert labels(model) == {ids[0]: 1}


@pytest.mark.parametrize(
    ("label", "message"),
    [
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (None, "must be text, a number"),
        ({"a": 1}, "must be text, a number"),
        ([[1, 2]], "must be text, a number"),
        (2**70, "64-bit"),
    ],
)
def test_a_bad_label_is_invalid_and_nothing_is_recorded(
    sdk: ModuleType, ids: list[str], model: str, label: Any, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        record_feedback([(ids[0], 1), (ids[1], label)])
    assert labels(model) == {}


def test_a_malformed_id_is_invalid(sdk: ModuleType, ids: list[str], model: str) -> None:
    with pytest.raises(InvalidInput, match="'abc'"):
        record_feedback([(ids[0], 1), ("abc", 1)])
    assert labels(model) == {}


def test_predictions_read_back_through_the_sdk(sdk: ModuleType, ids: list[str], model: str) -> None:
    assert sorted(read_predictions(model)["prediction_id"]) == sorted(ids)
    at = int(ids[0][:12], 16)
    assert read_predictions(model, since=at + 1).empty
    since = pd.Timestamp(at, unit="ms", tz="UTC").to_pydatetime()
    assert len(read_predictions(model, since=since, limit=2)) == 2


def race(store: SqlFeedback, prediction_id: str, senders: int) -> list[str]:
    """`senders` threads labelling one prediction at the same moment; what each got."""
    outcomes: list[str] = []
    start = threading.Barrier(senders)

    def send(label: int) -> None:
        start.wait()
        try:
            store.record([(prediction_id, label)])
            outcomes.append("recorded")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=send, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(outcomes)


def test_concurrent_labels_for_one_prediction_record_exactly_one(db_url: str) -> None:
    metadata = MetadataStore(db_url)
    log = SqlPredictionLog(metadata)
    store = SqlFeedback(metadata, log)
    try:
        for _ in range(5):
            (prediction_id,) = predictions(log, "churn", 1)
            assert race(store, prediction_id, 4) == ["conflict"] * 3 + ["recorded"]
    finally:
        metadata.close()


# -- REST ----------------------------------------------------------------------------


@pytest.fixture
def api(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{live_server}{API}", timeout=30) as client:
        yield client


@pytest.fixture
def rest_ids(api: httpx.Client, model: str) -> list[str]:
    ids = new_ids(3)
    at = int(ids[0][:12], 16)
    rows = [
        {
            "id": i,
            "model": model,
            "version": 4,
            "at_ms": at,
            "latency_ms": 1.5,
            "inputs": '{"x": 1}',
            "outputs": '{"predict": 1}',
        }
        for i in ids
    ]
    assert api.post("/predictions", json={"rows": rows}).status_code == 204
    return ids


def error_of(response: httpx.Response) -> str:
    kind: str = response.json()["error"]["type"]
    return kind


def test_rest_feedback_answers_201_with_the_record(
    api: httpx.Client, rest_ids: list[str], model: str
) -> None:
    one = api.post("/feedback", json={"prediction_id": rest_ids[0], "label": "yes"})
    assert one.status_code == 201, one.text
    assert {k: v for k, v in one.json().items() if k != "at_ms"} == {
        "prediction_id": rest_ids[0],
        "label": "yes",
        "model": model,
        "version": 4,
    }
    many = api.post(
        "/feedback",
        json={"feedback": [{"prediction_id": i, "label": [1, 2]} for i in rest_ids[1:]]},
    )
    assert many.status_code == 201, many.text
    assert [r["prediction_id"] for r in many.json()["feedback"]] == rest_ids[1:]
    listed = api.get("/feedback", params={"model": model})
    assert listed.status_code == 200
    assert {r["prediction_id"]: r["label"] for r in listed.json()} == {
        rest_ids[0]: "yes",
        rest_ids[1]: [1, 2],
        rest_ids[2]: [1, 2],
    }


def test_rest_feedback_errors_have_their_status_codes(
    api: httpx.Client, rest_ids: list[str], model: str
) -> None:
    unknown = api.post("/feedback", json={"prediction_id": new_ids(1)[0], "label": 1})
    assert (unknown.status_code, error_of(unknown)) == (404, "NotFound")
    assert api.post("/feedback", json={"prediction_id": rest_ids[0], "label": 1}).status_code == 201
    again = api.post("/feedback", json={"prediction_id": rest_ids[0], "label": 0})
    assert (again.status_code, error_of(again)) == (409, "Conflict")
    twice = api.post(
        "/feedback",
        json={"feedback": [{"prediction_id": rest_ids[1], "label": n} for n in (0, 1)]},
    )
    assert (twice.status_code, error_of(twice)) == (409, "Conflict")
    for body in (
        {"prediction_id": "nope", "label": 1},
        {"prediction_id": rest_ids[1], "label": {"a": 1}},
        {"prediction_id": rest_ids[1]},
        {"label": 1},
        {},
    ):
        bad = api.post("/feedback", json=body)
        assert (bad.status_code, error_of(bad)) == (400, "InvalidInput"), body
    nan = api.post(
        "/feedback",
        content=orjson.dumps({"prediction_id": rest_ids[1]})[:-1] + b', "label": NaN}',
        headers={"Content-Type": "application/json"},
    )
    assert nan.status_code == 400
    assert [r["prediction_id"] for r in api.get("/feedback", params={"model": model}).json()] == [
        rest_ids[0]
    ]


def test_rest_prediction_routes(api: httpx.Client, rest_ids: list[str], model: str) -> None:
    rows = api.get("/predictions", params={"model": model, "limit": 2})
    assert rows.status_code == 200
    assert [r["prediction_id"] for r in rows.json()] == sorted(rest_ids)[1:]
    assert rows.json()[0]["inputs"] == {"x": 1}
    found = api.post("/predictions/find", json={"ids": [rest_ids[0], "x"]})
    assert found.json() == {"found": {rest_ids[0]: {"model": model, "version": 4}}}
    count = api.get("/predictions/count", params={"model": model, "version": 4})
    assert count.json() == {"count": 3}
    bad = api.post("/predictions", json={"rows": [{"id": "x"}]})
    assert bad.status_code == 422
    malformed = api.post(
        "/predictions",
        json={
            "rows": [
                {
                    "id": "x" * 32,
                    "model": model,
                    "version": 1,
                    "at_ms": 0,
                    "latency_ms": 1,
                    "inputs": "{}",
                    "outputs": "{}",
                }
            ]
        },
    )
    assert (malformed.status_code, error_of(malformed)) == (400, "InvalidInput")
