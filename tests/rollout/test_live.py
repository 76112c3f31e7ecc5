"""Rollouts live, through real HTTP against a `modelyard serve --deployment` subprocess that
decides on its own background thread: a canary of a worse version, judged on labels sent
back as feedback, is rolled back before its share passes 25 %; a blue-green switch under a
request stream moves every answer from one fully loaded version to the other at once. No
client request fails in either."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import modelyard as my
from _serving import start_model_server, stop_gracefully
from modelyard.config import Settings
from modelyard.rollout import open_deployments

COLUMNS = ["x0", "x1", "x2", "x3"]
SERVE = ("--refresh-s", "0.2", "--decide-every", "0.5")
CLIENTS = 4
MAX_REQUESTS = 1500  # over every client, before the test gives up waiting for the decision
MAX_SECONDS = 25.0


def features(rows: int, seed: int) -> pd.DataFrame:
    return pd.DataFrame(np.random.default_rng(seed).normal(size=(rows, 4)), columns=COLUMNS)


def truth(frame: pd.DataFrame) -> list[int]:
    """The learnable rule: which side of a line a row lies."""
    return [int(v) for v in frame["x0"] + frame["x1"] > 0]


@dataclass
class Versions:
    home: Path
    models: dict[int, Any]  # version: the fitted model, to predict offline


def log_versions(home: Path, second: Any) -> Versions:
    """`churn` version 1, a logistic regression of the rule, and version 2, `second` fitted
    on the same rows with the labels `second` is given."""
    train = features(2000, seed=1)
    label = pd.Series(truth(train))
    first = LogisticRegression().fit(train, label)
    my.configure(home=home)
    try:
        with my.start_run("rollout-live") as run:
            my.log_model(first, "churn", run=run, input_example=train.head(5))
            my.log_model(second, "churn", run=run, artifact_path="churn-2",
                         input_example=train.head(5))  # fmt: skip
        my.registry.set_alias("churn", "champion", 1)
    finally:
        my.configure(home=home / "unused")
    return Versions(home, {1: first, 2: second})


def modelyard(home: Path, *args: str) -> Any:
    """`modelyard --home HOME ARGS --json`, as a person would run it; its JSON answer."""
    done = subprocess.run(
        [sys.executable, "-m", "modelyard", "--home", str(home), *args, "--json"],
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return orjson.loads(done.stdout)


@dataclass(frozen=True)
class Answer:
    """One client request: when it was sent and answered, and what answered it."""

    client: int
    sent: float
    received: float
    status: int
    feedback_status: int | None
    version: int | None
    variant: str | None
    prediction: int | None
    row: int


class Stream:
    """`CLIENTS` threads each sending one row per request to a deployment, and its true
    label as feedback right after, until `stop` is set or the rows run out."""

    def __init__(self, url: str, name: str, frame: pd.DataFrame, feedback: bool) -> None:
        self.url, self.name, self.frame, self.feedback = url, name, frame, feedback
        self.labels = truth(frame)
        self.records = frame.to_dict("records")
        self.answers: list[Answer] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._next = 0

    def _row(self) -> int | None:
        with self._lock:
            if self._next >= len(self.records) or self.stop.is_set():
                return None
            self._next += 1
            return self._next - 1

    def client(self, number: int) -> None:
        with httpx.Client(timeout=30) as http:
            while (row := self._row()) is not None:
                self.answers.append(self.send(http, number, row))

    def send(self, http: httpx.Client, number: int, row: int) -> Answer:
        sent = time.monotonic()
        answer = http.post(f"{self.url}/v1/deployments/{self.name}:predict",
                           json={"instances": [self.records[row]]})  # fmt: skip
        received = time.monotonic()
        if answer.status_code != 200:
            return Answer(number, sent, received, answer.status_code, None, None, None, None, row)
        body = answer.json()
        feedback = None
        if self.feedback:
            feedback = http.post(f"{self.url}/v1/feedback", json={
                "prediction_id": body["prediction_ids"][0], "label": self.labels[row],
            }).status_code  # fmt: skip
        return Answer(
            number, sent, received, 200, feedback, body["model_version"], body["variant"],
            int(body["predictions"][0]), row,
        )  # fmt: skip

    @contextmanager
    def running(self) -> Iterator[None]:
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(self.client, n) for n in range(CLIENTS)]
            try:
                yield
            finally:
                self.stop.set()
                for future in futures:
                    future.result()


def until(check: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Seconds until `check()` held."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout_s, f"{what}: not within {timeout_s} s"
        time.sleep(0.05)
    return time.monotonic() - started


def served_status(url: str, name: str) -> str:
    """The deployment's status as the server routes it now (not as the store has it)."""
    described = httpx.get(f"{url}/v2/models/{name}", timeout=10).json()
    return str(described["parameters"]["deployment"]["status"])


# -- canary --------------------------------------------------------------------------------

CANARY = {
    "steps": [0.05, 0.25, 0.5, 1.0],
    "min_samples": 50,
    "max_metric_drop": 0.05,
    "max_p99_ratio": 3.0,  # latencies of a busy test machine, not the point here
    # the distance is at most 1: the labels, not the class mix, are to decide (a model fit
    # on shuffled labels may well predict another class mix, and be caught on that first)
    "max_prediction_shift": 1.0,
}


@pytest.fixture
def canary_versions(tmp_path: Path) -> Versions:
    """Version 2 learnt nothing: the same model fitted on shuffled labels."""
    train = features(2000, seed=1)
    shuffled = np.random.default_rng(3).permutation(truth(train))
    return log_versions(tmp_path / "home", LogisticRegression().fit(train, shuffled))


def test_a_worse_canary_is_rolled_back_on_its_labels_before_a_quarter_of_traffic(
    canary_versions: Versions,
) -> None:
    home = canary_versions.home
    created = modelyard(
        home, "deploy", "create", "churn-canary", "--strategy", "canary",
        "--model", "churn@champion", "--candidate", "churn/2",
        "--policy", orjson.dumps(CANARY).decode(),
    )  # fmt: skip
    assert created["split"] == {"primary": 0.95, "candidate": 0.05}
    frame = features(MAX_REQUESTS + 200, seed=10)
    process, url = start_model_server(home, "--deployment", "churn-canary", *SERVE)
    try:
        stream = Stream(url, "churn-canary", frame.head(MAX_REQUESTS), feedback=True)
        with open_deployments(Settings(home=home)) as deployments, stream.running():
            started = time.monotonic()
            waited = until(
                lambda: (
                    deployments.get("churn-canary").status != "running"
                    or len(stream.answers) >= MAX_REQUESTS
                ),
                MAX_SECONDS,
                "the canary was not decided",
            )
        elapsed = time.monotonic() - started
        during = list(stream.answers)
        until(lambda: served_status(url, "churn-canary") == "rolled_back", 5, "not followed")
        after = Stream(url, "churn-canary", frame.tail(200), feedback=False)
        with httpx.Client(timeout=30) as http:
            after.answers.extend(after.send(http, 0, row) for row in range(200))
    finally:
        assert stop_gracefully(process)
    history = modelyard(home, "deploy", "history", "churn-canary")

    kinds = [event["kind"] for event in history]
    rollbacks = [event for event in history if event["kind"] == "rollback"]
    assert len(rollbacks) == 1, kinds
    rollback = rollbacks[0]
    failing = [g for g in rollback["evidence"]["guardrails"] if g["verdict"] == "fail"]
    by_candidate = [a for a in during if a.variant == "candidate"]
    accuracy = {
        variant: float(np.mean([a.prediction == truth(frame.iloc[[a.row]])[0] for a in mine]))
        for variant in ("primary", "candidate")
        if (mine := [a for a in during if a.variant == variant])
    }
    print(
        f"\ncanary: {len(during)} requests in {elapsed:.1f} s "
        f"(decided after {waited:.1f} s), {len(by_candidate)} answered by the candidate; "
        f"accuracy seen by clients {accuracy}\n"
        f"history: {kinds}\n"
        f"rollback at share {rollback['evidence']['share']}: {rollback['reason']}\n"
        + "\n".join(
            f"  {g['name']}: {g['verdict']} value {g['value']} interval {g['interval']} "
            f"limit {g['limit']}"
            for g in rollback["evidence"]["guardrails"]
        )
        + f"\nafter the rollback: {len(after.answers)} requests, variants "
        f"{sorted({str(a.variant) for a in after.answers})}"
    )
    # zero failed client requests, and every label was taken
    assert [a for a in during + after.answers if a.status != 200] == []
    assert {a.feedback_status for a in during} == {201}
    # rolled back on the label metric, never above a quarter of traffic
    assert history[-1]["kind"] == "rollback" and history[-1]["actor"] == "modelyard"
    assert history[-1]["split"].get("candidate", 0.0) == 0.0
    assert history[-1]["split"]["primary"] == 1.0
    assert "accuracy_drop" in [g["name"] for g in failing], failing
    drop = next(g for g in failing if g["name"] == "accuracy_drop")
    assert drop["interval"][0] > CANARY["max_metric_drop"]
    assert max(event["split"].get("candidate", 0.0) for event in history) <= 0.25
    assert rollback["evidence"]["share"] <= 0.25
    # once the server follows the rollback, every answer is the primary's
    assert {(a.variant, a.version) for a in after.answers} == {("primary", 1)}


# -- blue-green ----------------------------------------------------------------------------

BLUE_GREEN = {"smoke_requests": 20, "grace_s": 60, "min_samples": 20}


@pytest.fixture
def blue_green_versions(tmp_path: Path) -> Versions:
    """Version 2 learnt a neighbouring rule: it answers some rows otherwise."""
    train = features(2000, seed=1)
    other = (train["x0"] + 0.5 * train["x1"] > 0).astype(int)
    return log_versions(tmp_path / "home", LogisticRegression().fit(train, other))


def test_a_blue_green_switch_moves_every_answer_to_the_new_version_at_once(
    blue_green_versions: Versions,
) -> None:
    home, models = blue_green_versions.home, blue_green_versions.models
    modelyard(
        home, "deploy", "create", "churn-bg", "--strategy", "blue_green",
        "--model", "churn@champion", "--candidate", "churn/2",
        "--policy", orjson.dumps(BLUE_GREEN).decode(),
    )  # fmt: skip
    frame = features(MAX_REQUESTS, seed=20)
    process, url = start_model_server(home, "--deployment", "churn-bg", *SERVE)
    try:
        stream = Stream(url, "churn-bg", frame, feedback=False)
        with open_deployments(Settings(home=home)) as deployments, stream.running():
            started = time.monotonic()
            switched = until(
                lambda: (
                    deployments.get("churn-bg").split.get("candidate") == 1.0
                    or len(stream.answers) >= MAX_REQUESTS
                ),
                MAX_SECONDS,
                "blue-green did not switch",
            )
            followed = until(
                lambda: (
                    httpx.get(f"{url}/v2/models/churn-bg", timeout=10)
                    .json()["parameters"]["deployment"]["split"]
                    .get("candidate")
                    == 1.0
                ),
                5,
                "the server did not follow the switch",
            )
            answered = len(stream.answers)
            until(lambda: len(stream.answers) >= answered + 100, 10, "too few after the switch")
        elapsed = time.monotonic() - started
    finally:
        assert stop_gracefully(process)
    history = modelyard(home, "deploy", "history", "churn-bg")

    answers = sorted(stream.answers, key=lambda a: a.sent)
    first_v2 = min(a.received for a in answers if a.version == 2)
    late_v1 = [a for a in answers if a.version == 1 and a.sent > first_v2]
    offline = {v: models[v].predict(frame[COLUMNS]) for v in (1, 2)}
    wrong = [
        a for a in answers if a.version in offline and a.prediction != offline[a.version][a.row]
    ]
    differ = int((offline[1] != offline[2]).sum())
    step = next(e for e in history if e["kind"] == "step")
    smoke = step["evidence"]["smoke_test"]
    counts = {v: sum(a.version == v for a in answers) for v in (1, 2)}
    print(
        f"\nblue-green: {len(answers)} requests in {elapsed:.1f} s; switched in the store after "
        f"{switched:.1f} s, served {followed:.2f} s later; answers by version {counts}; "
        f"v1 answers sent after the first v2 answer: {len(late_v1)}; v2 predictions unlike "
        f"v1's on {differ} of {len(frame)} rows, answers unlike their version offline: "
        f"{len(wrong)}\nhistory: {[e['kind'] for e in history]}\n"
        f"switch: {step['reason']} split {step['split']}, smoke test {smoke}"
    )
    # zero failures, every answer from a whole version, the primary's or the candidate's
    assert [a for a in answers if a.status != 200] == []
    assert {(a.variant, a.version) for a in answers} == {("primary", 1), ("candidate", 2)}
    assert wrong == [] and differ > 0
    # one switch, from 1 to 2, never back: per client, and across clients in time
    for client in range(CLIENTS):
        mine = [a.version or 0 for a in answers if a.client == client]
        assert mine == sorted(mine), f"client {client} went back to version 1"
    assert late_v1 == []
    # the history: the smoke test passed, then the switch, and no rollback
    assert smoke["verdict"] == "pass" and smoke["replayed"] == BLUE_GREEN["smoke_requests"]
    assert smoke["failures"] == 0
    assert step["actor"] == "modelyard" and step["split"]["candidate"] == 1.0
    assert step["split"].get("primary", 0.0) == 0.0
    assert [e["kind"] for e in history if e["kind"] in ("step", "split", "rollback")] == ["step"]
