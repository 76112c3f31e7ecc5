"""Deployments served: routed by strategy and split, sticky by a request key, mirrored off the
request path, a failing candidate answered for by the primary, and changes in the store
reaching a running server without a restart."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from _serving import start_model_server, stop_gracefully
from _variants import Broken, Constant, Slow
from modelyard.config import Settings
from modelyard.errors import InvalidInput, NotFound
from modelyard.rollout._router import assign
from modelyard.rollout._store import Deployments
from modelyard.serving import ServeOptions, SqlPredictionLog, create_app

# versions of model "m": what each predicts for a row with a positive x
PRIMARY, SECOND, THIRD, BROKEN, SLOW, WIDE = (f"m/{v}" for v in range(1, 7))
ROW = {"x": 1.0, "user": 7}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import modelyard as my

    folder = tmp_path_factory.mktemp("deployments-home")
    example = pd.DataFrame({"x": [-1.0, -2.0], "user": [1, 2]})
    my.configure(home=folder)
    try:
        with my.start_run("deployment-tests") as run:
            for k, model in enumerate([Constant(0), Constant(1), Constant(2), Broken(), Slow()]):
                my.log_model(model, "m", run=run, artifact_path=f"m-{k}", input_example=example)
            wide = example.assign(z=[0.5, 0.5])  # a column the primary does not take
            my.log_model(Constant(3), "m", run=run, artifact_path="m-wide", input_example=wide)
    finally:
        my.configure(home=folder / "unused")
    return folder


def deploy(store: Deployments, strategy: str, *candidates: str, **policy: Any) -> str:
    name = f"{strategy.replace('_', '-')}-{uuid.uuid4().hex[:8]}"
    store.create(
        name, strategy=strategy, model=PRIMARY, candidates=candidates, policy=policy, actor="t"
    )
    return name


@contextmanager
def serving(home: Path, *deployments: str, **options: Any) -> Iterator[TestClient]:
    app = create_app(
        deployments=deployments,
        settings=Settings(home=home),
        options=ServeOptions(**{"refresh_s": 0.1, **options}),
    )
    with TestClient(app) as client:
        yield client


def predict(client: TestClient, name: str, *rows: dict[str, Any], **kwargs: Any) -> Any:
    response = client.post(
        f"/v1/deployments/{name}:predict", json={"instances": list(rows or [ROW])}, **kwargs
    )
    assert response.status_code == 200, response.text
    return response.json()


def logged(client: TestClient, store: Deployments, name: str) -> pd.DataFrame:
    """The deployment's rows in the prediction log, once mirrored requests are done."""
    server = client.app.state.modelyard  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while server.deployments.mirroring and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.writer.flush(timeout=10)
    frame = SqlPredictionLog(store.metadata).read("m")
    return frame[frame["deployment"] == name].reset_index(drop=True)


def metric(client: TestClient, name: str, **labels: str) -> float:
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def until(check: Any, timeout_s: float = 5.0) -> float:
    """Seconds until `check()` held (bounded)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout_s, "the server did not follow the store"
        time.sleep(0.02)
    return time.monotonic() - started


# -- answering -------------------------------------------------------------------------------


def test_a_deployment_answers_on_every_path_and_names_the_variant(
    home: Path, store: Deployments
) -> None:
    name = deploy(store, "single")
    with serving(home, name) as client:
        answer = predict(client, name)
        assert answer["predictions"] == [0] and answer["variant"] == "primary"
        assert answer["model"] == name and answer["model_version"] == 1
        v2 = client.post(
            f"/v2/models/{name}/infer",
            json={"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]},
                             {"name": "user", "shape": [1], "datatype": "INT64", "data": [7]}]},
        )  # fmt: skip
        assert v2.status_code == 200, v2.text
        assert v2.json()["parameters"]["variant"] == "primary"
        assert v2.json()["model_version"] == "1"
        assert v2.headers["x-model-variant"] == "primary"
        mlflow = client.post("/invocations", json={"dataframe_records": [ROW]})
        assert mlflow.json()["predictions"] == [0], mlflow.text
        assert client.post(f"/v1/models/{name}:predict", json={"instances": [ROW]}).is_success
        meta = client.get(f"/v2/models/{name}").json()
        assert [i["name"] for i in meta["inputs"]] == ["x", "user"]
        assert meta["parameters"]["deployment"]["strategy"] == "single"
        assert client.get(f"/v1/deployments/{name}").json()["versions"] == {"primary": "1"}
        bad = client.post(f"/v1/deployments/{name}:predict", json={"instances": [{"x": 1.0}]})
        assert bad.status_code == 400 and "user" in bad.json()["error"]
        unknown = client.post("/v1/deployments/nope:predict", json={"instances": [ROW]})
        assert unknown.status_code == 404 and "no deployment named 'nope'" in unknown.text
        rows = logged(client, store, name)
    assert len(rows) == 4
    assert set(rows["variant"]) == {"primary"} and rows["parent_id"].isna().all()


def test_serving_names_what_is_not_a_deployment(home: Path, store: Deployments) -> None:
    name = deploy(store, "single")
    with pytest.raises(NotFound, match="no deployment named 'nope'"):
        create_app(deployments=["nope"], settings=Settings(home=home))
    with pytest.raises(InvalidInput, match=f"--deployment {name}"):
        create_app([name], deployments=["other"], settings=Settings(home=home))


def test_a_canary_at_half_sends_about_half_the_requests_to_the_candidate(
    home: Path, store: Deployments
) -> None:
    name = deploy(store, "canary", SECOND, steps=[0.5, 1.0])
    with serving(home, name) as client:
        answers = [predict(client, name) for _ in range(400)]
    by_variant = Counter(a["variant"] for a in answers)
    assert 150 < by_variant["candidate"] < 250, by_variant  # 5 standard deviations
    assert by_variant["primary"] + by_variant["candidate"] == 400
    for answer in answers:
        expected = (1, 2) if answer["variant"] == "candidate" else (0, 1)
        assert (answer["predictions"][0], answer["model_version"]) == expected


def test_a_sticky_field_or_header_keeps_each_key_on_one_variant(
    home: Path, store: Deployments
) -> None:
    by_field = deploy(store, "ab", SECOND, sticky="field:user")
    by_header = deploy(store, "ab", SECOND, sticky="header:x-user")
    with serving(home, by_field, by_header) as client:
        for user in range(30):
            row = {"x": 1.0, "user": user}
            columns = {"inputs": {"x": [1.0], "user": [user]}}
            seen = {predict(client, by_field, row)["variant"] for _ in range(2)}
            path = f"/v1/deployments/{by_field}:predict"
            seen.add(client.post(path, json=columns).json()["variant"])
            headers = {"x-user": f"u{user}"}
            seen_by_header = {
                predict(client, by_header, headers=headers)["variant"] for _ in range(3)
            }
            assert len(seen) == 1 and len(seen_by_header) == 1, user
            deployment = store.get(by_field)
            assert seen == {assign(deployment, str(user), None)}  # type: ignore[arg-type]
        users = [predict(client, by_field, {"x": 1.0, "user": u})["variant"] for u in range(30)]
    assert set(users) == {"primary", "candidate"}


# -- mirroring -------------------------------------------------------------------------------


def test_a_shadow_gets_every_request_off_the_path_and_clients_only_see_the_primary(
    home: Path, store: Deployments
) -> None:
    name = deploy(store, "shadow", SECOND)
    with serving(home, name) as client:
        answers = [predict(client, name, ROW, {"x": 2.0, "user": 8}) for _ in range(20)]
        rows = logged(client, store, name)
        assert metric(client, "modelyard_mirrored_requests_total", variant="shadow",
                      outcome="ok") == 20  # fmt: skip
    assert {a["variant"] for a in answers} == {"primary"}
    assert {p for a in answers for p in a["predictions"]} == {0}
    client_ids = {i for a in answers for i in a["prediction_ids"]}
    answered, shadow = rows[rows["variant"] == "primary"], rows[rows["variant"] == "shadow"]
    assert set(answered["prediction_id"]) == client_ids and answered["parent_id"].isna().all()
    assert len(shadow) == 40 and set(shadow["parent_id"]) == client_ids
    assert set(shadow["version"]) == {2}
    assert {o["predict"] for o in shadow["outputs"]} == {1}
    assert (shadow["latency_ms"] > 0).all()


def test_challengers_score_the_same_requests_as_the_champion(
    home: Path, store: Deployments
) -> None:
    name = deploy(store, "champion_challenger", SECOND, THIRD)
    with serving(home, name) as client:
        answers = [predict(client, name) for _ in range(10)]
        rows = logged(client, store, name)
    assert {a["variant"] for a in answers} == {"primary"}
    parents = {a["prediction_ids"][0] for a in answers}
    for variant, version in (("challenger-1", 2), ("challenger-2", 3)):
        mirrored = rows[rows["variant"] == variant]
        assert set(mirrored["parent_id"]) == parents and len(mirrored) == 10
        assert set(mirrored["version"]) == {version}


def test_a_slow_shadow_adds_nothing_to_the_latency_and_overflow_is_dropped(
    home: Path, store: Deployments
) -> None:
    name = deploy(store, "shadow", SLOW)
    with serving(home, name, mirror_capacity=1) as client:
        took = []
        for _ in range(5):
            started = time.perf_counter()
            predict(client, name)
            took.append(time.perf_counter() - started)
        dropped = metric(client, "modelyard_mirrored_requests_dropped_total", deployment=name)
    assert max(took) < 0.25, took  # the shadow takes 0.5 s a request
    assert dropped >= 3


def test_a_shadow_slower_than_the_timeout_is_logged_as_timeouts(
    home: Path, store: Deployments
) -> None:
    name = deploy(store, "shadow", SLOW)
    with serving(home, name, candidate_timeout_ms=100) as client:
        answers = [predict(client, name) for _ in range(4)]
        rows = logged(client, store, name)
        timeouts = metric(client, "modelyard_mirrored_requests_total", outcome="timeout")
    shadow = rows[rows["variant"] == "shadow"]
    # the first is scored past its time, those that waited behind it are not scored at all
    assert [o["error"] for o in shadow["outputs"]] == ["timeout"] * 4
    assert set(shadow["parent_id"]) == {a["prediction_ids"][0] for a in answers}
    assert timeouts == 4


def test_a_broken_shadow_logs_its_errors_and_never_fails_a_client(
    home: Path, store: Deployments
) -> None:
    name = deploy(store, "shadow", BROKEN)
    with serving(home, name) as client:
        answers = [predict(client, name) for _ in range(5)]
        rows = logged(client, store, name)
        errors = metric(client, "modelyard_mirrored_requests_total", outcome="error")
    shadow = rows[rows["variant"] == "shadow"]
    assert {a["variant"] for a in answers} == {"primary"}
    assert len(shadow) == 5 and errors == 5
    assert all(
        o["error"].startswith("RuntimeError: this version is broken") for o in shadow["outputs"]
    )


# -- candidates that fail --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "failure", "reason"),
    [
        (BROKEN, "RuntimeError: this version is broken", "error"),
        (SLOW, "timeout", "timeout"),
        (WIDE, "InvalidInput: missing column(s) 'z'", "error"),
    ],
)
def test_a_failing_candidate_never_fails_a_client_and_its_failures_are_logged(
    home: Path, store: Deployments, candidate: str, failure: str, reason: str
) -> None:
    name = deploy(store, "canary", candidate, steps=[0.5, 1.0])
    requests = 40 if candidate != SLOW else 10
    with serving(home, name, candidate_timeout_ms=100) as client:
        answers = [predict(client, name) for _ in range(requests)]
        fallbacks = metric(client, "modelyard_candidate_fallbacks_total", reason=reason)
        rows = logged(client, store, name)
    assert {(a["variant"], a["predictions"][0]) for a in answers} == {("primary", 0)}
    failed = rows[rows["variant"] == "candidate"]
    assert len(failed) == fallbacks > 0
    assert all(o["error"].startswith(failure) for o in failed["outputs"])
    assert set(failed["parent_id"]) <= {a["prediction_ids"][0] for a in answers}
    assert set(failed["version"]) == {int(candidate.split("/")[1])}
    assert len(rows[rows["variant"] == "primary"]) == requests


# -- following the store ---------------------------------------------------------------------


def test_a_split_changed_in_the_store_reaches_the_server_within_the_refresh(
    home: Path, store: Deployments
) -> None:
    name = deploy(store, "canary", SECOND, steps=[0.5, 1.0])
    with serving(home, name) as client:
        changed = store.set_split(name, {"primary": 0.0, "candidate": 1.0}, actor="t",
                                  reason="test")  # fmt: skip
        status = f"/v1/deployments/{name}"
        waited = until(lambda: client.get(status).json()["revision"] == changed.revision)
        assert {predict(client, name)["variant"] for _ in range(30)} == {"candidate"}
        assert metric(client, "modelyard_deployment_updates_total", deployment=name) >= 1
    assert waited < 2.0


def test_a_deployment_deleted_and_created_again_between_two_looks_is_served_anew(
    home: Path, store: Deployments
) -> None:
    name = deploy(store, "single")
    with serving(home, name, refresh_s=3600) as client:  # looks only when told to
        assert predict(client, name)["model_version"] == 1
        store.delete(name, actor="t")
        again = store.create(name, strategy="single", model=SECOND, actor="t")
        assert again.revision == 1  # the revision alone would not tell them apart
        server = client.app.state.modelyard  # type: ignore[attr-defined]
        assert client.portal.call(server.deployments.refresh) == [name]  # type: ignore[union-attr]
        assert predict(client, name)["model_version"] == 2


def test_a_paused_deployment_keeps_its_split(home: Path, store: Deployments) -> None:
    name = deploy(store, "ab", SECOND, sticky="field:user")
    with serving(home, name) as client:

        def variants() -> list[str]:
            return [predict(client, name, {"x": 1.0, "user": u})["variant"] for u in range(30)]

        before = variants()
        store.pause(name, actor="t", reason="test")
        until(lambda: client.get(f"/v1/deployments/{name}").json()["status"] == "paused")
        assert variants() == before
    assert set(before) == {"primary", "candidate"}


@pytest.mark.parametrize("ending", ["promote", "rollback"])
def test_a_finished_deployment_sends_everything_to_the_variant_left_standing(
    home: Path, store: Deployments, ending: str
) -> None:
    name = deploy(store, "canary", SECOND, steps=[0.5, 1.0])
    winner = "candidate" if ending == "promote" else "primary"
    with serving(home, name) as client:
        getattr(store, ending)(name, actor="t", reason="test")
        until(lambda: client.get(f"/v1/deployments/{name}").json()["status"] != "running")
        assert {predict(client, name)["variant"] for _ in range(40)} == {winner}


@pytest.mark.parametrize("strategy", ["shadow", "champion_challenger"])
def test_a_promoted_mirrored_variant_answers_afterwards(
    home: Path, store: Deployments, strategy: str
) -> None:
    name = deploy(store, strategy, THIRD)
    mirrored = store.get(name).variants[1].name
    with serving(home, name) as client:
        assert {predict(client, name)["variant"] for _ in range(10)} == {"primary"}
        store.promote(name, actor="t", reason="test")
        until(lambda: client.get(f"/v1/deployments/{name}").json()["status"] == "promoted")
        answers = [predict(client, name) for _ in range(20)]
    assert {(a["variant"], a["model_version"]) for a in answers} == {(mirrored, 3)}


def test_a_deleted_deployment_is_no_longer_served_and_comes_back_when_created_again(
    home: Path, store: Deployments
) -> None:
    name = deploy(store, "single")
    with serving(home, name) as client:
        predict(client, name)
        store.delete(name, actor="t")
        path = f"/v1/deployments/{name}:predict"
        until(lambda: client.post(path, json={"instances": [ROW]}).status_code == 404)
        assert client.get(f"/v2/models/{name}").status_code == 404
        store.create(name, strategy="canary", model=PRIMARY, candidates=[THIRD],
                     policy={"steps": [1.0]}, actor="t")  # fmt: skip
        until(lambda: client.post(path, json={"instances": [ROW]}).status_code == 200)
        answer = predict(client, name)
    assert (answer["variant"], answer["model_version"], answer["predictions"]) == (
        "candidate", 3, [2]
    )  # fmt: skip


# -- over real HTTP, with several workers ----------------------------------------------------


def test_modelyard_serve_deployment_keeps_workers_agreeing_and_following_the_store(
    home: Path, store: Deployments
) -> None:
    name = deploy(store, "ab", SECOND, sticky="header:x-user")
    tests = str(Path(__file__).parents[1])  # where the versions' model classes live
    process, url = start_model_server(
        home, "--deployment", name, "--workers", "2", "--refresh-s", "0.1",
        env={"PYTHONPATH": tests},
    )  # fmt: skip
    try:
        with httpx.Client(base_url=url, timeout=30) as http:

            def variant(user: int) -> str:
                body, headers = {"instances": [ROW]}, {"x-user": str(user)}
                response = http.post(f"/v1/deployments/{name}:predict", json=body, headers=headers)
                assert response.status_code == 200, response.text
                return str(response.json()["variant"])

            first = [variant(u) for u in range(20)]
            assert [variant(u) for u in range(20)] == first  # whichever worker answers
            store.set_split(name, {"primary": 1.0, "candidate": 0.0}, actor="t", reason="test")
            until(lambda: {variant(u) for u in range(20)} == {"primary"})
            assert {variant(u) for u in range(40)} == {"primary"}
    finally:
        assert stop_gracefully(process)
    assert set(first) == {"primary", "candidate"}
