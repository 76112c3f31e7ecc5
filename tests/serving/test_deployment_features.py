"""Deployments of versions logged with a feature service, served by `modelyard serve
--deployment` over real HTTP from entity keys alone: every variant reads the request with
its own feature service (or fails over to the primary when it has none), sticky routing
finds an entity key, and the prediction log keeps, per variant, the keys and the values it
was served."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import modelyard as my
from _serving import start_model_server, stop_gracefully
from modelyard.config import Settings
from modelyard.features._default import open_feature_store
from modelyard.rollout._router import assign
from modelyard.rollout._store import Deployments
from modelyard.serving import SqlPredictionLog

DRIVERS = 20
NOW = datetime.now(UTC).replace(microsecond=0)
# versions of model "churn": 1 and 2 read service churn_v1 (trips_per_hour, rating), 3 takes
# the same columns as inputs (no feature service), 4 reads service churn_rating (rating)
FIRST, SECOND, PLAIN, RATING = (f"churn/{v}" for v in range(1, 5))
SERVED = {"driver_id", "trips_per_hour", "rating"}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A driver view materialized online, and the four versions of `churn`."""
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("deployment-features")
    rng = np.random.default_rng(3)
    times = [NOW - timedelta(hours=h) for h in (30, 20, 10)]
    pd.DataFrame(
        [
            {"driver_id": d, "event_ts": t, "trips_per_hour": float(rng.uniform(0, 9)),
             "rating": float(rng.uniform(1, 5))}
            for d in range(DRIVERS) for t in times
        ]
    ).to_parquet(root / "stats.parquet")  # fmt: skip
    driver = my.features.Entity("driver", ["driver_id"])
    stats = my.features.FeatureView(
        "driver_stats",
        entities=[driver],
        source=str(root / "stats.parquet"),
        timestamp_field="event_ts",
        ttl=timedelta(days=7),
        features=[my.features.Field("trips_per_hour"), my.features.Field("rating")],
    )
    both = my.features.FeatureService("churn_v1", [stats])
    rating = my.features.FeatureService("churn_rating", ["driver_stats:rating"])
    inputs = pd.DataFrame(
        {"trips_per_hour": rng.uniform(0, 9, 200), "rating": rng.uniform(1, 5, 200)}
    )
    target = (inputs["rating"] > 3).astype(int)
    home = root / "home"
    my.configure(home=home)
    try:
        my.features.apply([driver, stats, both, rating])
        versions = [(1.0, both), (0.01, both), (1.0, None), (1.0, rating)]
        for c, service in versions:
            columns = ["rating"] if service is rating else ["trips_per_hour", "rating"]
            model = LogisticRegression(C=c).fit(inputs[columns], target)
            with my.start_run():  # one run each: each logs its own training data
                data = (inputs[columns], target)
                name = service.name if service is not None else None
                my.log_model(model, "churn", training_data=data, feature_service=name)
        my.features.materialize(end=NOW + timedelta(seconds=1))
    finally:
        my.configure(home=root / "unused")
    return home


def deploy(store: Deployments, strategy: str, primary: str, *candidates: str, **policy: Any) -> str:
    name = f"{strategy.replace('_', '-')}-{uuid.uuid4().hex[:8]}"
    store.create(
        name, strategy=strategy, model=primary, candidates=candidates, policy=policy, actor="t"
    )
    return name


@pytest.fixture(scope="module")
def deployments(store: Deployments) -> dict[str, str]:
    """The deployments the module's server serves, by what they show."""
    return {
        "canary": deploy(store, "canary", FIRST, SECOND, steps=[0.5, 1.0]),
        "sticky": deploy(store, "ab", FIRST, SECOND, sticky="field:driver_id"),
        "shadow": deploy(store, "shadow", FIRST, RATING),
        "unbound": deploy(store, "canary", FIRST, PLAIN, steps=[0.5, 1.0]),
    }


def serve(home: Path, *names: str) -> tuple[subprocess.Popen[bytes], str]:
    flags = [arg for name in names for arg in ("--deployment", name)]
    return start_model_server(home, *flags, "--refresh-s", "0.1", "--decide-every", "0")


@pytest.fixture(scope="module")
def url(home: Path, deployments: dict[str, str]) -> Iterator[str]:
    process, url = serve(home, *deployments.values())
    try:
        yield url
    finally:
        assert stop_gracefully(process)


def predict(url: str, name: str, body: dict[str, Any], v2: bool = False) -> dict[str, Any]:
    path = f"/v2/models/{name}/infer" if v2 else f"/v1/deployments/{name}:predict"
    response = httpx.post(url + path, json=body, timeout=30)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    if v2:  # /v1 names the variant and the ids at the top, OIP v2 in its parameters
        answer |= {k: answer["parameters"][k] for k in ("variant", "prediction_ids")}
    return answer


def by_entity(url: str, name: str, driver: int, *, v2: bool = False) -> dict[str, Any]:
    entities = {"driver_id": driver}
    body = {"inputs": [], "parameters": {"entities": entities}} if v2 else {"entities": entities}
    return predict(url, name, body, v2)


def logged(store: Deployments, name: str, rows: int) -> pd.DataFrame:
    """The deployment's rows in the prediction log, once the server has written `rows`."""
    log = SqlPredictionLog(store.metadata)
    deadline = time.monotonic() + 10
    while True:
        frame = log.read("churn")
        frame = frame[frame["deployment"] == name].reset_index(drop=True)
        if len(frame) >= rows or time.monotonic() > deadline:
            return frame
        time.sleep(0.1)


def online(home: Path, service: str) -> dict[int, dict[str, Any]]:
    """Each driver's online values of `service`, keys included, as the server reads them."""
    with open_feature_store(Settings(home=home)) as features:
        found = features.get_online([{"driver_id": d} for d in range(DRIVERS)], service=service)
    return {row["driver_id"]: row for row in found.rows}


def until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "the server did not follow the store"
        time.sleep(0.05)


def metric(url: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_canary_answers_entity_requests_from_both_variants_and_logs_what_each_was_served(
    home: Path, store: Deployments, deployments: dict[str, str], url: str
) -> None:
    name = deployments["canary"]
    answers = [by_entity(url, name, d % DRIVERS, v2=d % 2 == 1) for d in range(60)]
    by_variant = Counter(a["variant"] for a in answers)
    assert set(by_variant) == {"primary", "candidate"}, by_variant
    for answer in answers:
        assert int(answer["model_version"]) == (2 if answer["variant"] == "candidate" else 1)
    rows = logged(store, name, 60)
    assert len(rows) == 60 and rows["parent_id"].isna().all()
    assert Counter(rows["variant"]) == by_variant
    assert {(v, n) for v, n in zip(rows["variant"], rows["version"], strict=True)} == {
        ("primary", 1), ("candidate", 2)
    }  # fmt: skip
    values = online(home, "churn_v1")
    for served in rows["inputs"]:
        assert set(served) == SERVED
        assert served == pytest.approx(values[served["driver_id"]])


def test_a_sticky_field_named_like_an_entity_key_keeps_each_driver_on_one_variant(
    store: Deployments, deployments: dict[str, str], url: str
) -> None:
    name = deployments["sticky"]
    deployment = store.get(name)
    seen = {}
    for driver in range(DRIVERS):
        variants = {by_entity(url, name, driver, v2=v2)["variant"] for v2 in (False, True, False)}
        assert variants == {assign(deployment, str(driver), None)}, driver
        seen[driver] = variants.pop()
    assert set(seen.values()) == {"primary", "candidate"}


def test_a_shadow_reading_another_feature_service_logs_the_values_it_was_served(
    home: Path, store: Deployments, deployments: dict[str, str], url: str
) -> None:
    name = deployments["shadow"]
    answers = [by_entity(url, name, d) for d in range(10)]
    assert {(a["variant"], a["model_version"]) for a in answers} == {("primary", 1)}
    rows = logged(store, name, 20)
    answered, shadow = rows[rows["variant"] == "primary"], rows[rows["variant"] == "shadow"]
    assert len(answered) == 10 and len(shadow) == 10
    assert set(shadow["parent_id"]) == {a["prediction_ids"][0] for a in answers}
    assert set(shadow["version"]) == {4}
    assert all("error" not in o for o in shadow["outputs"])
    values = online(home, "churn_rating")
    for served in shadow["inputs"]:  # its own service: the rating alone
        assert set(served) == {"driver_id", "rating"}
        assert served == pytest.approx(values[served["driver_id"]])
    assert all(set(served) == SERVED for served in answered["inputs"])
    outcome = {"deployment": name, "variant": "shadow", "outcome": "ok"}
    assert metric(url, "modelyard_mirrored_requests_total", **outcome) == 10


def test_a_candidate_without_a_feature_service_falls_back_to_the_primary_on_entity_requests(
    store: Deployments, deployments: dict[str, str], url: str
) -> None:
    name = deployments["unbound"]
    answers = [by_entity(url, name, d % DRIVERS, v2=d % 2 == 1) for d in range(40)]
    assert {(a["variant"], int(a["model_version"])) for a in answers} == {("primary", 1)}
    labels = {"deployment": name, "variant": "candidate", "reason": "error"}
    fallbacks = metric(url, "modelyard_candidate_fallbacks_total", **labels)
    rows = logged(store, name, 40 + int(fallbacks))
    failed = rows[rows["variant"] == "candidate"]
    assert len(failed) == fallbacks > 0
    assert set(failed["version"]) == {3}
    for outputs in failed["outputs"]:
        assert outputs["error"].startswith(
            "InvalidInput: churn version 3 was not logged with a feature service"
        )
    assert set(failed["parent_id"]) <= {a["prediction_ids"][0] for a in answers}
    assert all(set(served) == SERVED for served in failed["inputs"])  # as the primary read it
    assert len(rows[rows["variant"] == "primary"]) == 40


def test_a_version_with_a_feature_service_deployed_while_serving_reads_its_features(
    home: Path, store: Deployments
) -> None:
    name = deploy(store, "single", PLAIN)
    process, url = serve(home, name)
    try:
        path = f"{url}/v1/deployments/{name}:predict"
        refused = httpx.post(path, json={"entities": {"driver_id": 1}}, timeout=30)
        assert refused.status_code == 400
        assert "was not logged with a feature service" in refused.json()["error"]
        entities = {"entities": {"driver_id": 1}}
        store.delete(name, actor="t")
        until(lambda: httpx.post(path, json=entities, timeout=30).status_code == 404)
        store.create(name, strategy="single", model=FIRST, actor="t")
        until(lambda: httpx.post(path, json=entities, timeout=30).status_code == 200)
        answer = httpx.post(path, json=entities, timeout=30)
    finally:
        assert stop_gracefully(process)  # the log is written out
    assert (answer.json()["variant"], answer.json()["model_version"]) == ("primary", 1)
    rows = logged(store, name, 1)
    assert len(rows) >= 2 and all(set(served) == SERVED for served in rows["inputs"])
