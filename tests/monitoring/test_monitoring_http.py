"""End to end through real HTTP: a served model gets traffic that shifts midway and then
returns, labels come back as feedback, a monitor run through the REST API flags only the
shifted windows, shows the performance drop with its interval, and delivers one alert to a
webhook receiver that fails its first delivery — resolved once traffic returns."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import modelyard as my
from _serving import start_model_server, stop_gracefully

from conftest import start_server, stop_server

COLUMNS = ["x0", "x1", "x2", "x3"]
WINDOW = 200
# normal, normal, shifted (x0 + 1 sd, the label rule flipped), shifted, normal again
PHASES = [False, False, True, True, False]


def features(rows: int, seed: int, shifted: bool) -> pd.DataFrame:
    frame = pd.DataFrame(np.random.default_rng(seed).normal(size=(rows, 4)), columns=COLUMNS)
    frame["x0"] += 1.0 if shifted else 0.0
    return frame


def labels(frame: pd.DataFrame, shifted: bool) -> list[int]:
    """Which side of a line a row lies (the line turns when shifted), 5 % of them flipped."""
    score = frame["x0"] - frame["x1"] if shifted else frame["x0"] + frame["x1"]
    noise = np.random.default_rng(len(frame)).random(len(frame)) < 0.05
    return [int(v) for v in (score > 0) ^ noise]


class Receiver(BaseHTTPRequestHandler):
    """A webhook endpoint that answers 500 to the first POST and 200 afterwards."""

    received: ClassVar[list[dict[str, Any]]] = []
    calls = 0

    def do_POST(self) -> None:
        type(self).calls += 1
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = 500 if type(self).calls == 1 else 200
        if status == 200:
            type(self).received.append(orjson.loads(body))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    Receiver.received, Receiver.calls = [], 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """`churn` version 1 behind `champion`, logged with its training data and accuracy."""
    home = tmp_path / "home"
    my.configure(home=home)
    try:
        train = features(3000, seed=1, shifted=False)
        fitted = LogisticRegression().fit(train, labels(train, shifted=False))
        valid = features(1000, seed=2, shifted=False)
        with my.start_run("monitoring-e2e") as run:
            accuracy = float((fitted.predict(valid) == labels(valid, shifted=False)).mean())
            my.log_metric("accuracy", accuracy)
            target = pd.Series(labels(train, shifted=False))
            my.log_model(fitted, "churn", run=run, training_data=(train, target))
        my.registry.set_alias("churn", "champion", 1)
    finally:
        my.configure(home=tmp_path / "unused")
    return home


def test_shifted_traffic_is_flagged_alerted_and_resolved_over_http(
    home: Path, webhook: str
) -> None:
    serving, model_url = start_model_server(home, "churn@champion")
    api_process, api_url = start_server(home)
    try:
        with httpx.Client(timeout=30) as client:
            for phase, shifted in enumerate(PHASES):
                frame = features(WINDOW, seed=100 + phase, shifted=shifted)
                ids: list[str] = []
                for start in range(0, WINDOW, 50):
                    records = frame.iloc[start : start + 50].to_dict("records")
                    answer = client.post(f"{model_url}/v1/models/churn:predict",
                                         json={"instances": records})  # fmt: skip
                    assert answer.status_code == 200, answer.text
                    ids.extend(answer.json()["prediction_ids"])
                feedback = [
                    {"prediction_id": i, "label": y}
                    for i, y in zip(ids, labels(frame, shifted), strict=True)
                ]
                sent = client.post(f"{model_url}/v1/feedback", json={"feedback": feedback})
                assert sent.status_code == 201, sent.text

            api = f"{api_url}/api/v1/monitoring"
            created = client.post(f"{api}/monitors", json={
                "model": "churn", "alias": "champion", "rows": WINDOW,
                "checks": ["data_drift", "prediction_drift", "performance", "latency"],
            })  # fmt: skip
            assert created.status_code == 201, created.text
            rule = client.post(f"{api}/alerts", json={
                "name": "churn-drift", "monitor": "churn",
                "condition": "data_drift.drift_share > 0.2", "severity": "critical",
                "channels": [{"type": "webhook", "url": webhook, "retries": 2, "backoff_s": 0.05}],
            })  # fmt: skip
            assert rule.status_code == 201, rule.text

            run = client.post(f"{api}/monitors/churn/run").json()
            windows = run["windows"]
            assert [w["rows"] for w in windows] == [WINDOW] * len(PHASES)
            flagged = ["data_drift" in w["flagged"] for w in windows]
            assert flagged == PHASES
            assert [e["state"] for e in run["events"]] == ["firing", "resolved"]

            accuracy = client.get(
                f"{api}/monitors/churn/history",
                params={"check": "performance", "metric": "accuracy"},
            ).json()
            assert len(accuracy) == len(PHASES)
            for point, shifted in zip(accuracy, PHASES, strict=True):
                assert point["lower"] <= point["value"] <= point["upper"]
                if shifted:
                    assert point["upper"] < 0.75 and point["flagged"] is True
                else:
                    assert point["lower"] > 0.85 and point["flagged"] is False

            # the webhook: the firing alert failed once, was retried and arrived; then resolved
            assert [body["state"] for body in Receiver.received] == ["firing", "resolved"]
            assert Receiver.received[0]["rule"] == "churn-drift"
            events = client.get(f"{api}/alert-events", params={"monitor": "churn"}).json()
            firing = next(e for e in events if e["state"] == "firing")
            attempts = client.get(f"{api}/alert-events/{firing['id']}/deliveries").json()
            assert [(d["attempt"], d["ok"], d["status_code"]) for d in attempts] == [
                (1, False, 500),
                (2, True, 200),
            ]
            rules = client.get(f"{api}/alerts", params={"monitor": "churn"}).json()
            assert [r["state"] for r in rules] == ["ok"]

            # drift scores on the model server's /metrics
            metrics = client.get(f"{model_url}/metrics").text
            drift = 'check="data_drift",column="",metric="drift_share",monitor="churn"'
            assert f"modelyard_monitor_value{{{drift}}} 0.0" in metrics  # the last window: normal
            rule_state = 'monitor="churn",rule="churn-drift",severity="critical"'
            assert f"modelyard_alert_firing{{{rule_state}}} 0.0" in metrics
    finally:
        stop_server(api_process)
        stop_gracefully(serving)
