"""`modelyard serve churn@champion --monitors` runs the scheduled monitors itself: windows of
predictions logged before it started and of the traffic it served are judged without anyone
calling run, and its `/metrics` carry the monitors of the model it serves — only those."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import modelyard as my
from _monitored import configured, features, log_model, write_predictions
from _serving import start_model_server, stop_gracefully
from modelyard.config import Settings
from modelyard.monitoring._default import open_monitors
from modelyard.monitoring._monitors import Monitors

BOUND_S = 30  # how long a scheduled monitor may take to judge a complete window


@dataclass(frozen=True)
class Served:
    url: str
    monitors: Monitors  # over the server's stores, to read what its thread judged
    bursts: list[int]  # window starts of the predictions logged before the server started


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`churn` (behind `champion`) and `other`, each with a monitor of 1 s windows due every
    second and an alert rule that always fires; three bursts of 100 `churn` predictions and
    one of `other` in the last half minute; then the server."""
    home = tmp_path_factory.mktemp("monitor-thread") / "home"
    second = time.time_ns() // 1_000_000_000 * 1000
    bursts = [second - 30_000, second - 20_000, second - 10_000]
    with configured(home):
        churn, other = log_model(), log_model("other", seed=5)
        for index, start in enumerate(bursts):
            write_predictions(churn, features(100, seed=20 + index), [start + 500] * 100)
        write_predictions(other, features(50, seed=30), [bursts[-1] + 500] * 50, model="other")
        for model in ("churn", "other"):
            monitor = f"{model}-live"
            my.monitoring.create_monitor(model, name=monitor, window="1s", schedule="1s",
                                         checks=["data_drift", "latency"])  # fmt: skip
            my.monitoring.create_alert(f"{model}-slow", monitor=monitor,
                                       condition="latency.p99_ms >= 0")  # fmt: skip
    process, url = start_model_server(home, "churn@champion", "--monitors")
    try:
        with open_monitors(Settings(home=home)) as monitors:
            yield Served(url, monitors, bursts)
    finally:
        assert stop_gracefully(process)


def wait_for(what: str, found: Callable[[], bool], timeout: float = BOUND_S) -> float:
    """Seconds until `found()`; fails the test after `timeout`."""
    began = time.monotonic()
    while not found():
        assert time.monotonic() - began < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.2)
    return time.monotonic() - began


def test_serve_with_monitors_judges_windows_without_anyone_running_them(served: Served) -> None:
    monitors = served.monitors
    wait_for("the logged bursts judged", lambda: len(monitors.windows("churn-live")) >= 3)
    judged = sorted(monitors.windows("churn-live"), key=lambda w: w.start)
    assert [(w.start, w.end, w.rows, w.version) for w in judged] == [
        (start, start + 1000, 100, 1) for start in served.bursts
    ]
    assert judged[0].evidence["data_drift"]["current_rows"] == 100
    assert monitors.get("churn-live").last_run_at is not None
    # every scheduled monitor runs, whichever model this server serves
    assert [w.rows for w in monitors.windows("other-live")] == [50]

    # traffic the server answers now is judged once its window is over
    instances = features(60, seed=40).to_dict("records")
    answer = httpx.post(f"{served.url}/v1/models/churn:predict",
                        json={"instances": instances}, timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text
    sent = time.time_ns() // 1_000_000

    def live() -> list[int]:
        return [w.rows for w in monitors.windows("churn-live") if w.start > served.bursts[-1]]

    waited = wait_for("the served traffic judged", lambda: bool(live()))
    assert live() == [60]
    (window,) = [w for w in monitors.windows("churn-live") if w.start > served.bursts[-1]]
    assert window.start <= sent and window.end - window.start == 1000
    assert waited < BOUND_S


def test_a_monitor_due_every_second_runs_about_every_second(served: Served) -> None:
    runs: list[int] = []

    def three_runs() -> bool:
        at = served.monitors.get("churn-live").last_run_at
        if at is not None and at not in runs:
            runs.append(at)
        return len(runs) >= 3

    wait_for("three runs of churn-live", three_runs)
    gaps = [later - earlier for earlier, later in itertools.pairwise(runs)]
    assert all(gap < 5_000 for gap in gaps), gaps


def test_metrics_carry_the_served_models_monitors_only(served: Served) -> None:
    wait_for("other's monitor judged", lambda: bool(served.monitors.windows("other-live")))

    def scrape() -> str:
        response = httpx.get(f"{served.url}/metrics", timeout=10)
        assert response.status_code == 200
        return response.text

    wait_for("monitor numbers on /metrics", lambda: 'monitor="churn-live"' in scrape())
    text = scrape()
    labels = {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith(("modelyard_monitor_", "modelyard_alert_"))
    }
    names = {name for name, pairs in labels if ("monitor", "churn-live") in pairs}
    assert names == {
        "modelyard_monitor_value",
        "modelyard_monitor_flagged",
        "modelyard_alert_firing",
    }
    p99 = ("check", "latency"), ("column", ""), ("metric", "p99_ms"), ("monitor", "churn-live")
    assert ("modelyard_monitor_value", p99) in labels
    firing = 'modelyard_alert_firing{monitor="churn-live",rule="churn-slow",severity="warning"}'
    assert f"{firing} 1.0" in text
    assert 'modelyard_monitor_flagged{check="data_drift",monitor="churn-live"}' in text
    # `other` is not served here: its judged monitor and firing rule stay off this server
    assert "other-live" not in text and "other-slow" not in text
