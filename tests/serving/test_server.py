"""`modelyard serve` over real HTTP on 127.0.0.1: every protocol, every bad input, swaps,
feedback, metrics and a graceful stop that loses no prediction record."""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _serving import (
    breast_cancer,
    log_models,
    mixed_frame,
    rows_of,
    start_model_server,
    stop_gracefully,
)

X, Y = breast_cancer()
COLUMNS = list(X.columns)
FRAME, _ = mixed_frame()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("serving-home")
    log_models(folder)
    return folder


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[str]:
    process, url = start_model_server(
        home, "bc@champion", "mixed", "--refresh-s", "0.2", "--max-body-mb", "1"
    )
    yield url
    stop_gracefully(process)


@pytest.fixture(scope="module")
def local_bc(home: Path) -> Any:
    import modelyard as my

    my.configure(home=home)
    try:
        return my.load_model("models:/bc/1").native
    finally:
        my.configure(home=home / "unused")


def post(url: str, path: str, body: Any, **kwargs: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = kwargs.pop("headers", {"content-type": "application/json"})
    return httpx.post(f"{url}{path}", content=content, headers=headers, timeout=30, **kwargs)


# -- health and metadata -------------------------------------------------------------------


def test_health_and_metadata_follow_the_open_inference_protocol(server: str) -> None:
    assert httpx.get(f"{server}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{server}/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{server}/v2").json()["name"] == "modelyard"
    meta = httpx.get(f"{server}/v2/models/bc").json()
    assert meta["name"] == "bc" and meta["platform"] == "sklearn"
    assert [i["name"] for i in meta["inputs"]] == COLUMNS
    assert {i["datatype"] for i in meta["inputs"]} == {"FP64"}
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
    version = meta["versions"][0]
    assert httpx.get(f"{server}/v2/models/bc/versions/{version}").status_code == 200
    assert httpx.get(f"{server}/v2/models/bc/ready").json() == {"name": "bc", "ready": True}
    assert httpx.get(f"{server}/v2/models/bc/versions/{version}/ready").status_code == 200
    missing = httpx.get(f"{server}/v2/models/nope")
    assert missing.status_code == 404 and "served: bc, mixed" in missing.json()["error"]
    assert httpx.get(f"{server}/v2/models/bc/versions/99").status_code == 404
    index = httpx.post(f"{server}/v2/repository/index").json()
    assert {m["name"] for m in index} == {"bc", "mixed"}


# -- predictions ---------------------------------------------------------------------------


def test_oip_v2_infer_answers_with_tensors_ids_and_version(server: str, local_bc: Any) -> None:
    rows = rows_of(X, 0, 3)
    body = {
        "id": "req-7",
        "inputs": [{"name": "input-0", "shape": [3, 30], "datatype": "FP64", "data": rows}],
    }
    response = post(server, "/v2/models/bc/infer", body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model_name"] == "bc" and answer["id"] == "req-7"
    version = answer["model_version"]
    assert response.headers["x-model-version"] == version
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert outputs["predict"]["data"] == local_bc.predict(X.iloc[:3]).tolist()
    assert outputs["predict_proba"]["shape"] == [3, 2]
    ids = answer["parameters"]["prediction_ids"]
    assert len(ids) == 3 and len(set(ids)) == 3
    only = post(server, f"/v2/models/bc/versions/{version}/infer",
                {**body, "outputs": [{"name": "predict_proba"}]}).json()  # fmt: skip
    assert [o["name"] for o in only["outputs"]] == ["predict_proba"]
    proba = local_bc.predict_proba(X.iloc[:3]).ravel().tolist()
    assert only["outputs"][0]["data"] == pytest.approx(proba, abs=1e-6)


def test_v1_predict_takes_rows_and_records(server: str, local_bc: Any) -> None:
    expected = local_bc.predict(X.iloc[5:9]).tolist()
    rows = post(server, "/v1/models/bc:predict", {"instances": rows_of(X, 5, 4)}).json()
    records = X.iloc[5:9].to_dict("records")
    keyed = post(server, "/v1/models/bc:predict", {"instances": records}).json()
    for answer in (rows, keyed):
        assert answer["predictions"] == expected
        assert len(answer["probabilities"]) == 4
        assert len(answer["prediction_ids"]) == 4
        assert answer["model"] == "bc" and isinstance(answer["model_version"], int)


def test_invocations_speak_every_mlflow_format(server: str, local_bc: Any) -> None:
    expected = local_bc.predict(X.iloc[:2]).tolist()
    bodies = [
        {"dataframe_split": {"columns": COLUMNS, "data": rows_of(X, 0, 2)}},
        {"dataframe_records": X.iloc[:2].to_dict("records")},
        {"instances": rows_of(X, 0, 2)},
        {"inputs": {c: X[c].iloc[:2].tolist() for c in COLUMNS}},
    ]
    for body in bodies:
        response = post(server, "/invocations", body)
        assert response.status_code == 200, response.text
        assert response.json()["predictions"] == expected
    csv = X.iloc[:2].to_csv(index=False).encode()
    response = post(server, "/invocations", csv, headers={"content-type": "text/csv"})
    assert response.json()["predictions"] == expected


def test_text_and_category_columns_are_served(server: str) -> None:
    records = FRAME.iloc[:3].to_dict("records")
    records[0]["income"] = None  # nullable: imputed by the pipeline
    answer = post(server, "/v1/models/mixed:predict", {"instances": records}).json()
    assert len(answer["predictions"]) == 3


# -- bad input: a 4xx that names the problem, never a 5xx -----------------------------------

ONE = rows_of(X, 0, 1)[0]
RECORD = X.iloc[0].to_dict()
NO_RADIUS = {k: v for k, v in RECORD.items() if k != "mean radius"}
MIXED = FRAME.iloc[0].to_dict()

BAD = [
    ("/v1/models/bc:predict", {"instances": [NO_RADIUS]},
     400, r"missing column\(s\) 'mean radius'"),
    ("/v1/models/bc:predict", {"instances": [{**RECORD, "shoe size": 43}]},
     400, r"unexpected column\(s\) 'shoe size'"),
    ("/v1/models/bc:predict", {"instances": [[*ONE[:-1], "many"]]},
     400, "column 'worst fractal dimension' expects float64 but row 0 holds 'many'"),
    ("/v1/models/mixed:predict", {"instances": [{**MIXED, "city": "paris"}]},
     400, "column 'city' has unknown categories 'paris'"),
    ("/v1/models/mixed:predict", {"instances": [{**MIXED, "age": None}]},
     400, "column 'age' has missing values"),
    ("/v1/models/bc:predict", {"instances": [ONE[:5]]},
     400, "row 0 has 5 values but the model expects 30"),
    ("/v2/models/bc/infer", {"inputs": [{"name": "x", "shape": [2, 30], "datatype": "FP64",
                                         "data": ONE}]},
     400, r"shape \[2, 30\] holds 60 values but 'data' has 30"),
    ("/v2/models/bc/infer", {"inputs": [{"name": "x", "shape": [1, 29], "datatype": "FP64",
                                         "data": ONE[:29]}]},
     400, r"the model takes \[N, 30\]"),
    ("/v2/models/bc/infer", {"inputs": "everything"}, 400, "'inputs' must be a non-empty list"),
    ("/invocations", {"rows": [ONE]}, 400, "exactly one of dataframe_split"),
    ("/invocations", b'{"instances": [[1, 2,', 400, "not valid JSON"),
    ("/invocations", b"", 400, "body is empty"),
    ("/v1/models/bc:predict", {"instances": []}, 400, "non-empty list"),
    ("/v1/models/nope:predict", {"instances": [ONE]}, 404, "no model named 'nope'"),
    ("/v2/models/bc/versions/42/infer", {"inputs": []}, 404, "not 42"),
    ("/v1/models/bc:predict", b"x" * 1_100_000, 413, "this server takes 1000000"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "status", "message"), BAD)
def test_bad_input_is_a_4xx_that_names_the_problem(
    server: str, path: str, body: Any, status: int, message: str
) -> None:
    response = post(server, path, body)
    assert response.status_code == status, response.text
    answer = response.json()
    text = answer.get("error") or answer.get("message")
    assert re.search(message, text), text
    if path == "/invocations":
        assert answer["error_code"] == "BAD_REQUEST"


def test_a_body_that_is_not_json_is_refused_with_415(server: str) -> None:
    response = post(server, "/v1/models/bc:predict", b"instances=1",
                    headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert response.status_code == 415
    assert "Content-Type: application/json" in response.json()["error"]


def test_a_chunked_body_over_the_limit_is_refused_with_413(server: str) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * 100_000

    response = httpx.post(f"{server}/invocations", content=chunks(), timeout=30,
                          headers={"content-type": "application/json"})  # fmt: skip
    assert response.status_code == 413


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=4),
    max_leaves=20,
)  # fmt: skip
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"instances": json_values}),
    st.fixed_dictionaries({"inputs": json_values}),
    st.fixed_dictionaries({"dataframe_split": st.fixed_dictionaries(
        {"columns": st.lists(st.sampled_from([*COLUMNS[:3], "x"]), max_size=4),
         "data": json_values})}),
    st.fixed_dictionaries({"inputs": st.lists(st.fixed_dictionaries(
        {"name": st.sampled_from(["x", "age", "city"]),
         "shape": st.lists(st.integers(0, 3), max_size=3),
         "datatype": st.sampled_from(["FP64", "BYTES", "INT64", "BOOL"]),
         "data": json_values}), max_size=3)}),
)  # fmt: skip
PATHS = ["/invocations", "/v1/models/bc:predict", "/v1/models/mixed:predict",
         "/v2/models/bc/infer", "/v2/models/mixed/infer"]  # fmt: skip


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=st.sampled_from(PATHS), body=bodies)
def test_no_input_produces_a_server_error(server: str, path: str, body: Any) -> None:
    response = post(server, path, json.dumps(body).encode())  # json: ints beyond 64 bits too
    assert response.status_code < 500, (body, response.text)


# -- feedback ------------------------------------------------------------------------------


def test_feedback_is_stored_once_per_prediction(server: str) -> None:
    answer = post(server, "/v1/models/bc:predict", {"instances": rows_of(X, 0, 2)}).json()
    first, second = answer["prediction_ids"]
    created = post(server, "/v1/feedback", {"prediction_id": first, "label": 1})
    assert created.status_code == 201, created.text
    assert created.json()["feedback"][0]["version"] == answer["model_version"]
    again = post(server, "/v1/feedback", {"prediction_id": first, "label": 0})
    assert again.status_code == 409
    unknown = post(server, "/v1/feedback", {"prediction_id": "0" * 32, "label": 1})
    assert unknown.status_code == 404
    batch = post(server, "/v1/feedback", {"feedback": [{"prediction_id": second, "label": 0}]})
    assert batch.status_code == 201
    assert post(server, "/v1/feedback", {"label": 1}).status_code == 400


# -- metrics and batching ------------------------------------------------------------------


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_concurrent_requests_are_batched_and_counted(server: str) -> None:
    before = httpx.get(f"{server}/metrics").text
    version = httpx.get(f"{server}/v2/models/mixed").json()["versions"][0]
    body = orjson.dumps({"instances": FRAME.iloc[:1].to_dict("records")})

    async def burst() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            responses = await asyncio.gather(
                *(client.post(f"{server}/v1/models/mixed:predict", content=body,
                              headers={"content-type": "application/json"})
                  for _ in range(64))
            )  # fmt: skip
        return [r.status_code for r in responses]

    assert asyncio.run(burst()) == [200] * 64
    after = httpx.get(f"{server}/metrics").text
    labels = {"model": "mixed", "version": version}

    def grew(name: str, **extra: str) -> float:
        return metric(after, name, **labels, **extra) - metric(before, name, **labels, **extra)

    assert grew("modelyard_requests_total", code="200", protocol="v1") == 64
    assert grew("modelyard_predictions_total") == 64
    assert grew("modelyard_request_latency_seconds_count") == 64
    calls = grew("modelyard_batch_rows_count")
    assert grew("modelyard_batch_rows_sum") == 64
    assert calls < 64, "64 concurrent requests ran as 64 separate model calls"
    assert "modelyard_prediction_log_queue_rows" in after
    post(server, "/v1/models/mixed:predict", {"instances": []})
    errors = httpx.get(f"{server}/metrics").text
    assert metric(errors, "modelyard_requests_total", model="mixed", code="400") >= 1


def test_concurrent_rows_on_the_onnx_runtime_agree_with_the_native_model(home: Path) -> None:
    import modelyard as my

    my.configure(home=home)
    try:
        native = my.load_model("models:/bc/2").native
    finally:
        my.configure(home=home / "unused")
    process, url = start_model_server(home, "bc/2", "--runtime", "onnx")
    try:
        assert httpx.get(f"{url}/v2/models/bc").json()["parameters"]["runtime"] == "onnx"

        async def burst() -> list[Any]:
            async with httpx.AsyncClient(timeout=30) as client:
                responses = await asyncio.gather(
                    *(client.post(f"{url}/v1/models/bc:predict",
                                  json={"instances": rows_of(X, k, 1)}) for k in range(64))
                )  # fmt: skip
            return [r.json() for r in responses]

        answers = asyncio.run(burst())
        batches = metric(httpx.get(f"{url}/metrics").text, "modelyard_batch_rows_count")
    finally:
        stop_gracefully(process)
    rows = X.iloc[:64]
    assert [a["predictions"][0] for a in answers] == native.predict(rows).tolist()
    np.testing.assert_allclose(
        [a["probabilities"][0] for a in answers], native.predict_proba(rows), atol=1e-4
    )
    assert batches < 64, "the rows were never run together"


# -- alias swap ----------------------------------------------------------------------------


def test_moving_the_alias_swaps_versions_with_no_failed_request(home: Path, server: str) -> None:
    import modelyard as my

    body = orjson.dumps({"instances": rows_of(X, 0, 1)})
    seen: list[tuple[int, Any]] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            for _ in range(2000):  # bounded: at most 2,000 requests
                if stop.is_set():
                    return
                response = http.post(f"{server}/v1/models/bc:predict", content=body,
                                     headers={"content-type": "application/json"})  # fmt: skip
                version = response.json().get("model_version")
                seen.append((response.status_code, version))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    my.configure(home=home)
    try:
        start = my.registry.get_model("bc").aliases["champion"]
        target = 2 if start == 1 else 1
        while len(seen) < 50:
            threading.Event().wait(0.01)
        my.registry.set_alias("bc", "champion", target)
        deadline = 200
        while deadline and not any(v == target for _, v in seen[-20:]):
            threading.Event().wait(0.05)
            deadline -= 1
        count = len(seen)
        while len(seen) < count + 50:
            threading.Event().wait(0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        my.configure(home=home / "unused")
    assert [s for s, _ in seen] == [200] * len(seen)
    versions = [v for _, v in seen]
    assert start in versions and target in versions
    assert versions[-1] == target


def test_load_reresolves_an_alias_at_once(home: Path) -> None:
    import modelyard as my

    process, url = start_model_server(home, "bc@champion", "--refresh-s", "3600")
    try:
        current = int(httpx.get(f"{url}/v2/models/bc").json()["versions"][0])
        target = 2 if current == 1 else 1
        my.configure(home=home)
        try:
            my.registry.set_alias("bc", "champion", target)
        finally:
            my.configure(home=home / "unused")
        loaded = httpx.post(f"{url}/v2/repository/models/bc/load", timeout=60).json()
        assert loaded == {"name": "bc", "version": str(target), "swapped": True}
        answer = post(url, "/v1/models/bc:predict", {"instances": rows_of(X, 0, 1)}).json()
        assert answer["model_version"] == target
        assert httpx.post(f"{url}/v2/repository/models/nope/load").status_code == 404
    finally:
        stop_gracefully(process)


# -- the prediction log --------------------------------------------------------------------


@pytest.mark.parametrize("log", ["db", "parquet"])
def test_a_graceful_stop_leaves_exactly_every_prediction_in_the_log(
    tmp_path: Path, home: Path, log: str
) -> None:
    import shutil

    import modelyard as my

    own = tmp_path / "home"
    shutil.copytree(home, own, ignore=shutil.ignore_patterns("serve-*.log"))

    def logged() -> Any:
        my.configure(home=own, prediction_log=log)
        try:
            return my.serving.read_predictions("mixed")
        finally:
            my.configure(home=own / "unused")

    before = set(logged()["prediction_id"])  # the copied home holds earlier tests' records
    process, url = start_model_server(own, "mixed", env={"MODELYARD_PREDICTION_LOG": log})
    body = orjson.dumps({"instances": FRAME.iloc[:2].to_dict("records")})

    async def send(count: int) -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            limit = asyncio.Semaphore(16)

            async def one() -> int:
                async with limit:
                    response = await client.post(
                        f"{url}/v1/models/mixed:predict",
                        content=body,
                        headers={"content-type": "application/json"},
                    )
                    return response.status_code

            return await asyncio.gather(*(one() for _ in range(count)))

    try:
        assert asyncio.run(send(150)) == [200] * 150
    finally:
        assert stop_gracefully(process)
    records = logged()
    records = records[~records["prediction_id"].isin(before)]
    assert len(records) == 300  # 150 requests of 2 rows
    assert records["prediction_id"].is_unique
    first = records.iloc[0]
    assert set(first["inputs"]) == {"age", "income", "city", "email"}
    assert {row["email"] for row in records["inputs"]} == {"***"}  # personal data, masked
    assert set(first["outputs"]) == {"predict", "predict_proba"}
    probabilities = [p for out in records["outputs"] for p in out["predict_proba"]]
    assert all(isinstance(p, float) for p in probabilities)
    assert not math.isnan(first["latency_ms"])


def test_a_full_log_queue_drops_records_counts_them_and_still_answers(home: Path) -> None:
    process, url = start_model_server(home, "mixed", "--log-capacity", "1")
    try:
        body = {"instances": FRAME.iloc[:5].to_dict("records")}
        assert post(url, "/v1/models/mixed:predict", body).status_code == 200
        text = httpx.get(f"{url}/metrics").text
        assert metric(text, "modelyard_prediction_log_dropped_rows_total", model="mixed") == 5
    finally:
        stop_gracefully(process)


def test_several_workers_serve_one_port_and_share_metrics(home: Path) -> None:
    process, url = start_model_server(home, "mixed", "--workers", "2")
    try:
        body = {"instances": FRAME.iloc[:1].to_dict("records")}
        for _ in range(20):
            assert post(url, "/v1/models/mixed:predict", body).status_code == 200
        text = httpx.get(f"{url}/metrics").text
        assert metric(text, "modelyard_requests_total", model="mixed", code="200") == 20
    finally:
        assert stop_gracefully(process)
