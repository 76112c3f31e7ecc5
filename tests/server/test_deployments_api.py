"""The routes of `/api/v1/deployments` over a home holding versions 1..3 of a real model:
what each route answers, and that a refused call answers its status, names the problem
and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from _deployed import log_versions, serve_traffic, stored
from _monitored import configured
from modelyard.config import Settings
from modelyard.server import create_app
from modelyard.tracking import open_local_backend
from modelyard.tracking._sql import SqlTracking

API = "/api/v1/deployments"
CANARY = {"strategy": "canary", "model": "churn@champion", "candidates": ["churn@challenger"]}


@dataclass(frozen=True)
class Live:
    api: TestClient
    backend: SqlTracking
    home: Path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The REST API over a home with `churn` versions 1..3 (champion 1, challenger 2)."""
    home = tmp_path_factory.mktemp("deployments-api") / "home"
    with configured(home):
        log_versions()
    backend = open_local_backend(Settings(home=home))
    with TestClient(create_app(backend), base_url=f"http://testserver{API}") as client:
        yield Live(client, backend, home)


def answer(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return None if status == 204 else response.json()


def create(live: Live, name: str, **fields: Any) -> dict[str, Any]:
    body = {"name": name, "actor": "ana", **CANARY, **fields}
    created: dict[str, Any] = answer(live.api.post("", json=body), 201)
    return created


def test_create_answers_201_with_the_deployment_and_get_answers_its_status(live: Live) -> None:
    created = create(live, "bird", policy={"steps": [0.1, 1.0], "sticky": "header:x-user"})
    assert isinstance(created.pop("created_at"), int)
    assert created.pop("updated_at") == created.pop("step_started_at")
    assert created == {
        "name": "bird",
        "model": "churn",
        "strategy": "canary",
        "alias": "champion",
        "variants": [
            {"name": "primary", "role": "primary", "ref": "churn@champion", "version": 1},
            {"name": "candidate", "role": "candidate", "ref": "churn@challenger", "version": 2},
        ],
        "split": {"primary": 0.9, "candidate": 0.1},
        "policy": {
            "auto": True,
            "sticky": "header:x-user",
            "metric": "accuracy",
            "alpha": 0.05,
            "min_samples": 200,
            "steps": [0.1, 1.0],
            "max_error_rate_increase": 0.01,
            "max_p99_ratio": 1.2,
            "max_prediction_shift": 0.1,
            "max_metric_drop": 0.02,
        },
        "status": "running",
        "step": 0,
        "revision": 1,
        "created_by": "ana",
    }
    status = answer(live.api.get("/bird"), 200)
    assert (status["decision"], status["events"]) == (None, 1)
    assert {k: status["deployment"][k] for k in created} == created
    assert status["live"]["action"] == "continue"  # no traffic yet: nothing to judge
    duel = create(live, "duel", strategy="champion_challenger", model="churn/1",
                  candidates=["churn/2", "churn/3"], alias="prod")  # fmt: skip
    assert [v["name"] for v in duel["variants"]] == ["primary", "challenger-1", "challenger-2"]
    assert (duel["split"], duel["alias"]) == ({"primary": 1.0}, "prod")


def test_status_takes_a_live_look_at_the_traffic_without_recording_it(live: Live) -> None:
    create(live, "ab", strategy="ab", candidates=["churn/3"], policy={"min_samples": 20})
    with configured(live.home):
        serve_traffic("ab", {"primary": 1, "candidate": 3}, per_variant=40)
    before = stored(live.backend.metadata)
    status = answer(live.api.get("/ab"), 200)
    assert stored(live.backend.metadata) == before
    assert (status["decision"], status["events"]) == (None, 1)
    variants = status["live"]["variants"]
    assert [(s["requests"], s["labelled"], s["errors"]) for s in variants.values()] == [
        (40, 40, 0),
        (40, 40, 0),
    ]
    assert (variants["primary"]["metric"]["value"], variants["candidate"]["metric"]["value"]) == (
        0.5,
        1.0,
    )
    assert status["live"]["sample_ratio"]["counts"] == [40, 40]


def test_decide_acts_now_and_records_the_decision(live: Live) -> None:
    policy = {"steps": [0.5, 1.0], "min_samples": 50, "max_metric_drop": 0.1,
              "max_error_rate_increase": 0.1}  # fmt: skip
    create(live, "decided", candidates=["churn/3"], policy=policy)
    with configured(live.home):
        serve_traffic("decided", {"primary": 1, "candidate": 3}, per_variant=80)
    decision = answer(live.api.post("/decided/decide", json={"actor": "ana"}), 200)
    assert decision["action"] == "step", decision["reason"]
    history = answer(live.api.get("/decided/history"), 200)
    assert [(e["kind"], e["actor"]) for e in history] == [("created", "ana"), ("step", "ana")]
    assert history[-1]["split"] == {"primary": 0.0, "candidate": 1.0}
    answer(live.api.post("/nobody/decide", json={"actor": "ana"}), 404)


def test_list_answers_every_deployment_or_only_the_live_ones(live: Live) -> None:
    create(live, "listed", strategy="single", model="churn/3", candidates=[])
    create(live, "ended", strategy="single", model="churn/3", candidates=[])
    answer(live.api.post("/ended/rollback", json={"actor": "ana"}), 200)
    listed = answer(live.api.get(""), 200)
    assert [d["name"] for d in listed] == sorted(d["name"] for d in listed)
    assert {"listed", "ended"} <= {d["name"] for d in listed}
    running = answer(live.api.get("", params={"include_finished": False}), 200)
    assert "listed" in {d["name"] for d in running}
    assert "ended" not in {d["name"] for d in running}


def test_every_change_answers_the_deployment_after_it_and_is_in_the_history(live: Live) -> None:
    create(live, "moves")
    split = answer(live.api.put("/moves/split", json={
        "split": {"primary": 0.75, "candidate": 0.25}, "actor": "bo", "reason": "step 2",
    }), 200)  # fmt: skip
    assert (split["split"], split["revision"]) == ({"primary": 0.75, "candidate": 0.25}, 2)
    paused = answer(live.api.post("/moves/pause", json={"actor": "bo", "reason": "freeze"}), 200)
    assert (paused["status"], paused["revision"]) == ("paused", 3)
    assert answer(live.api.post("/moves/resume", json={"actor": "bo"}), 200)["status"] == "running"
    status = answer(live.api.get("/moves"), 200)
    assert (status["decision"]["kind"], status["decision"]["actor"]) == ("resume", "bo")
    promoted = answer(live.api.post("/moves/promote", json={
        "actor": "cy", "reason": "guardrails held", "variant": "candidate",
    }), 200)  # fmt: skip
    assert (promoted["status"], promoted["split"], promoted["revision"]) == (
        "promoted",
        {"candidate": 1.0},
        5,
    )
    aliases = answer(live.api.get("http://testserver/api/v1/models/churn"), 200)["aliases"]
    assert aliases["champion"] == 2
    history = answer(live.api.get("/moves/history"), 200)
    assert [(e["kind"], e["actor"], e["reason"]) for e in history] == [
        ("created", "ana", "canary of churn@champion, churn@challenger"),
        ("split", "bo", "step 2"),
        ("pause", "bo", "freeze"),
        ("resume", "bo", ""),
        ("promote", "cy", "guardrails held"),
    ]
    assert history[-1]["evidence"]["winner"]["version"] == 2
    assert answer(live.api.get("/moves"), 200)["decision"] == history[-1]
    # put the champion back for the other tests
    answer(live.api.put("http://testserver/api/v1/models/churn/aliases/champion",
                        json={"version": 1, "actor": "ana"}), 200)  # fmt: skip

    create(live, "fallen")
    rolled = answer(live.api.post("/fallen/rollback", json={"actor": "ana"}), 200)
    assert (rolled["status"], rolled["split"]) == ("rolled_back", {"primary": 1.0})
    assert answer(live.api.get("/fallen/history"), 200)[-1]["reason"] == "rolled back by hand"

    create(live, "doomed")
    answer(live.api.delete("/doomed", params={"actor": "ana"}), 204)
    assert answer(live.api.get("/doomed"), 404)["error"]["type"] == "NotFound"


@pytest.fixture(scope="module")
def settled(live: Live) -> Live:
    """`live` running, `held` paused, `over` rolled back, `guarded` behind a protected alias."""
    for name in ("live", "held", "over"):
        create(live, name)
    create(live, "guarded", alias="prod")
    answer(live.api.post("/held/pause", json={"actor": "ana"}), 200)
    answer(live.api.post("/over/rollback", json={"actor": "ana"}), 200)
    answer(live.api.put("http://testserver/api/v1/models/churn/protected-aliases",
                        json={"aliases": ["prod"]}), 200)  # fmt: skip
    return live


NEW = {"name": "x", "actor": "ana"}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "kind", "problem"),
    [
        ("POST", "", {**NEW, **CANARY, "model": "churn/9"}, 404, "NotFound", "no version 9"),
        ("POST", "", {**NEW, **CANARY, "candidates": ["churn@gone"]}, 404, "NotFound",
         "model 'churn' has no alias 'gone'"),
        ("POST", "", {**NEW, **CANARY, "candidates": ["churn/1"]}, 400, "InvalidInput",
         "named twice"),
        ("POST", "", {**NEW, **CANARY, "strategy": "rainbow"}, 400, "InvalidInput",
         "unknown strategy 'rainbow'"),
        ("POST", "", {**NEW, **CANARY, "candidates": []}, 400, "InvalidInput",
         "takes 1 candidate(s), got 0"),
        ("POST", "", {**NEW, **CANARY, "policy": {"steps": [0.5]}}, 400, "InvalidInput",
         "steps must be a list of shares ending at 1.0"),
        ("POST", "", {**NEW, **CANARY, "policy": {"colour": 1}}, 400, "InvalidInput",
         "has no option(s) colour"),
        ("POST", "", {**NEW, **CANARY, "name": "live"}, 409, "AlreadyExists",
         "a deployment named 'live' exists"),
        ("POST", "", {**NEW, **CANARY, "name": "churn"}, 400, "InvalidInput",
         "names a registered model"),
        ("POST", "", {**CANARY, "name": "x"}, 422, "InvalidInput", "actor"),
        ("GET", "/nope", None, 404, "NotFound", "no deployment named 'nope'"),
        ("GET", "/nope/history", None, 404, "NotFound", "no deployment named 'nope'"),
        ("POST", "/nope/promote", {"actor": "ana"}, 404, "NotFound", "no deployment"),
        ("POST", "/held/promote", {"actor": "ana"}, 409, "Conflict",
         "cannot promote deployment 'held': it is paused"),
        ("POST", "/over/promote", {"actor": "ana"}, 409, "Conflict", "it is rolled back"),
        ("POST", "/guarded/promote", {"actor": "ana"}, 403, "PermissionDenied",
         "alias 'prod' of 'churn' is protected and version 2 has no approval"),
        ("POST", "/live/promote", {"actor": "ana", "variant": "ghost"}, 400, "InvalidInput",
         "has no variant 'ghost'"),
        ("POST", "/over/rollback", {"actor": "ana"}, 409, "Conflict", "cannot roll back"),
        ("POST", "/held/pause", {"actor": "ana"}, 409, "Conflict", "cannot pause"),
        ("POST", "/live/resume", {"actor": "ana"}, 409, "Conflict", "it is running"),
        ("PUT", "/live/split", {"actor": "ana", "split": {"primary": 0.5}}, 400,
         "InvalidInput", "the split must sum to 100 %, it sums to 50 %"),
        ("PUT", "/live/split", {"actor": "ana", "split": {"primary": 0.5, "ghost": 0.5}},
         400, "InvalidInput", "variant(s) ghost"),
        ("PUT", "/live/split", {"actor": "ana", "split": {"primary": "all"}}, 400,
         "InvalidInput", "the share of 'primary' must be between 0 and 1"),
        ("PUT", "/held/split", {"actor": "ana", "split": {"primary": 1.0}}, 409, "Conflict",
         "cannot change the split"),
        ("DELETE", "/nope?actor=ana", None, 404, "NotFound", "no deployment named 'nope'"),
    ],
)  # fmt: skip
def test_a_refused_call_answers_its_status_and_changes_nothing(
    settled: Live,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    kind: str,
    problem: str,
) -> None:
    before = stored(settled.backend.metadata)
    error = answer(settled.api.request(method, path, json=body), status)["error"]
    assert error["type"] == kind and problem in error["message"], error
    assert stored(settled.backend.metadata) == before
