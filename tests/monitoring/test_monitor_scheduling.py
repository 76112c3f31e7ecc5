"""Monitors run on their schedules and exported as metrics, without a server: `run_due`
reports a failing monitor and runs the others, `MonitorThread` judges due monitors on its
own and stops at once, and `MonitorExposition` renders the latest window of the monitors
of the served models only — on a real model, its prediction log and feedback (SQLite)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import pytest
from prometheus_client.parser import text_string_to_metric_families

import modelyard as my
from _monitored import T0, configured, features, log_model, log_phases, write_predictions
from modelyard.config import Settings
from modelyard.monitoring import _alerts, _exposition
from modelyard.monitoring._default import open_monitors
from modelyard.monitoring._exposition import MonitorExposition
from modelyard.monitoring._monitors import Monitors
from modelyard.monitoring._scheduler import MonitorThread, run_due
from modelyard.monitoring._windowing import MonitorRun

LATER = T0 + 10 * 3_600_000  # long after the traffic: every window is complete
Sample = tuple[str, tuple[tuple[str, str], ...]]


@pytest.fixture(scope="module")
def monitors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitors]:
    """`churn` (three hours of labelled traffic) and `other`, whose 100 predictions came in
    one request (one moment); monitors over their stores."""
    home = tmp_path_factory.mktemp("monitor-scheduling") / "home"
    with configured(home):
        log_phases(log_model())
        other = log_model("other", seed=5)
        write_predictions(other, features(100, seed=6), [T0] * 100, model="other")
    with open_monitors(Settings(home=home)) as opened:
        yield opened


def wait_for(what: str, done: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.05)


def test_a_monitor_whose_alias_vanished_is_reported_and_the_others_still_run(
    monitors: Monitors, caplog: pytest.LogCaptureFixture
) -> None:
    monitors.registry.set_alias("churn", "canary", 1, actor="test")
    for name, alias in (("a-canary", "canary"), ("b-champion", "champion")):
        monitors.create("churn", name=name, alias=alias, rows=200, checks=["latency"],
                        schedule="1h")  # fmt: skip
    monitors.registry.delete_alias("churn", "canary", actor="test")

    with caplog.at_level(logging.WARNING, logger="modelyard.monitoring"):
        outcomes = dict(run_due(monitors, now=LATER))
    assert outcomes["a-canary"].startswith("failed: ") and "canary" in outcomes["a-canary"]
    assert outcomes["b-champion"] == "3 window(s), 0 flagged, 0 alert(s)"
    assert "monitor a-canary failed" in caplog.text
    assert monitors.windows("a-canary") == []
    # the failed monitor is tried again at the next look; the one that ran is not due
    due = monitors.due(now=LATER + 1000)
    assert "a-canary" in due and "b-champion" not in due

    monitors.registry.set_alias("churn", "canary", 1, actor="test")
    assert dict(run_due(monitors, now=LATER + 1000))["a-canary"].startswith("3 window(s)")


class Flaky:
    """Monitors whose first due monitor fails in a way nobody foresaw."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def due(self, now: int | None = None) -> list[str]:
        return ["broken", "fine"]

    def run(self, name: str, now: int | None = None) -> MonitorRun:
        self.ran.append(name)
        if name == "broken":
            raise RuntimeError("the disk is on fire")
        return MonitorRun(name, [], [])


def test_an_unexpected_error_in_one_monitor_does_not_stop_the_others() -> None:
    flaky = Flaky()
    outcomes = run_due(cast(Monitors, flaky))
    assert flaky.ran == ["broken", "fine"]
    assert outcomes == [
        ("broken", "failed: RuntimeError: the disk is on fire"),
        ("fine", "0 window(s), 0 flagged, 0 alert(s)"),
    ]


def test_the_thread_judges_due_monitors_on_its_own_and_stops_at_once(
    monitors: Monitors,
) -> None:
    monitors.create("churn", name="threaded", alias="champion", rows=200, checks=["latency"],
                    schedule="1s")  # fmt: skip
    thread = MonitorThread(monitors, tick=60)
    thread.start()
    try:
        wait_for("three windows judged", lambda: len(monitors.windows("threaded")) == 3)
    finally:
        began = time.monotonic()
        thread.stop()
    assert time.monotonic() - began < 5  # not a whole tick
    assert "modelyard-monitors" not in {t.name for t in threading.enumerate()}
    assert monitors.get("threaded").last_run_at is not None


def test_the_thread_survives_a_failing_look(caplog: pytest.LogCaptureFixture) -> None:
    looked = threading.Event()

    class Failing:
        calls = 0

        def due(self, now: int | None = None) -> list[str]:
            type(self).calls += 1
            if type(self).calls == 1:
                raise RuntimeError("the database went away")
            looked.set()
            return []

    thread = MonitorThread(cast(Monitors, Failing()), tick=0.01)
    with caplog.at_level(logging.ERROR, logger="modelyard.monitoring"):
        thread.start()
        try:
            assert looked.wait(10), "the thread stopped looking after a failure"
        finally:
            thread.stop()
    assert "running the due monitors failed" in caplog.text


def samples(text: bytes) -> list[tuple[str, dict[str, str], float]]:
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    ]


def of_monitor(text: bytes, monitor: str) -> dict[Sample, float]:
    found: dict[Sample, float] = {}
    for name, labels, value in samples(text):
        if labels.get("monitor") == monitor:
            key = (name, tuple(sorted((k, v) for k, v in labels.items() if k != "monitor")))
            assert key not in found, f"{key} exported twice"
            found[key] = value
    return found


def value_of(check: str, column: str, metric: str) -> Sample:
    """The key of `of_monitor` for one number of `modelyard_monitor_value`."""
    return ("modelyard_monitor_value", (("check", check), ("column", column), ("metric", metric)))


@pytest.fixture(scope="module")
def exported(monitors: Monitors) -> Monitors:
    """Monitor `expo` of `churn` (windows of 200; rules `expo-drift`, `expo-slow`) and
    `other-mon` of `other` (windows of 50; rule `other-slow`), judged."""
    monitors.create("churn", name="expo", rows=200, checks=["data_drift", "latency"])
    monitors.create("other", name="other-mon", rows=50, checks=["latency"])
    for rule, monitor, condition in (
        ("expo-drift", "expo", "data_drift.drift_share > 0.2"),
        ("expo-slow", "expo", "latency.p99_ms > 1"),
        ("other-slow", "other-mon", "latency.p99_ms > 1"),
    ):
        _alerts.create_rule(monitors.metadata, rule, monitor=monitor, condition=condition,
                            severity="critical" if rule == "expo-drift" else "warning")  # fmt: skip
    for name in ("expo", "other-mon"):
        monitors.run(name, now=LATER, deliver=False)
    return monitors


def test_metrics_show_the_latest_window_of_the_served_models_monitors(
    exported: Monitors,
) -> None:
    text = MonitorExposition(exported, ["churn"]).text()
    expo = of_monitor(text, "expo")
    (latest,) = exported.windows("expo", limit=1)
    assert latest.start == T0 + 2 * 3_600_000 and len(exported.windows("expo")) == 3
    values = {
        value_of(p.check, p.column, p.metric): p.value for p in latest.points if p.value is not None
    }
    assert {k: v for k, v in expo.items() if k[0] == "modelyard_monitor_value"} == values
    assert values[value_of("data_drift", "", "drift_share")] == 0.0
    assert expo[("modelyard_monitor_flagged", (("check", "data_drift"),))] == 0.0
    firing = {k[1]: v for k, v in expo.items() if k[0] == "modelyard_alert_firing"}
    assert firing == {
        (("rule", "expo-drift"), ("severity", "critical")): 0.0,  # fired, then resolved
        (("rule", "expo-slow"), ("severity", "warning")): 1.0,
    }
    # the monitors of a model this server does not serve are not there, judged as they are
    assert exported.windows("other-mon") and of_monitor(text, "other-mon") == {}
    assert all(labels.get("rule") != "other-slow" for _, labels, _ in samples(text))


def test_windows_that_start_together_are_exported_once(exported: Monitors) -> None:
    """`other`'s 100 predictions share one moment: its two windows of 50 share a start."""
    newest, older = exported.windows("other-mon")
    assert newest.start == older.start == T0 and newest.id > older.id
    text = MonitorExposition(exported, ["other"]).text()
    other = of_monitor(text, "other-mon")  # fails on a label set exported twice
    p99 = next(p.value for p in newest.points if p.metric == "p99_ms")
    assert other[value_of("latency", "", "p99_ms")] == p99


def test_windows_that_start_together_are_listed_newest_first(db_url: str, tmp_path: Path) -> None:
    """On PostgreSQL too, where rows with equal sort keys come back in any order."""
    with configured(tmp_path / "home", db_url):
        fitted = log_model()
        write_predictions(fitted, features(200, seed=3), [T0] * 200)  # one request
        my.monitoring.create_monitor("churn", rows=50, checks=["latency"])
        judged = my.monitoring.run_monitor("churn", now=LATER).windows
        listed = my.monitoring.monitor_windows("churn")
    assert [w.id for w in listed] == [w.id for w in reversed(judged)]
    assert len(listed) == 4 and {w.start for w in listed} == {T0}


def test_metrics_are_read_again_only_after_max_age(
    exported: Monitors, monkeypatch: pytest.MonkeyPatch
) -> None:
    exposition = MonitorExposition(exported, ["churn"], max_age_s=5)
    before = exposition.text()
    _alerts.create_rule(exported.metadata, "expo-new", monitor="expo",
                        condition="latency.p50_ms > 1000")  # fmt: skip
    assert exposition.text() == before  # cached
    clock = time.monotonic
    monkeypatch.setattr(_exposition.time, "monotonic", lambda: clock() + 5.1)
    after = exposition.text()
    assert b'rule="expo-new"' in after and b'rule="expo-new"' not in before
