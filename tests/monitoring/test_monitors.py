"""Stored monitors: windows of the prediction log judged once against the version's training
reference, results kept as time series, alert rules fired and resolved — on SQLite and
PostgreSQL, with a real model, the real prediction log and feedback store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import modelyard as my
from modelyard.errors import AlreadyExists, InvalidInput, NotFound
from modelyard.serving._ids import new_ids
from modelyard.serving._records import PredictionRow

COLUMNS = ["x0", "x1", "x2", "x3"]
HOUR = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00Z


def features(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 4)), columns=COLUMNS)
    frame["x0"] += shift
    return frame


def concept(frame: pd.DataFrame, flipped: bool = False) -> np.ndarray:
    """The true label: which side of a line a row lies; `flipped` swaps the rule."""
    score = frame["x0"] - frame["x1"] if flipped else frame["x0"] + frame["x1"]
    return (score > 0).astype(int).to_numpy()


@pytest.fixture(params=["sqlite", "postgresql"])
def home(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    if request.param == "sqlite":
        my.configure(home=tmp_path / "home")
    else:
        my.configure(home=tmp_path / "home", db_url=request.getfixturevalue("pg_url"))
    yield tmp_path / "home"
    my.configure(home=tmp_path / "unused")


@pytest.fixture
def model(home: Path) -> LogisticRegression:
    """`churn` version 1 behind `champion`, with its training reference and accuracy."""
    train = features(3000, seed=1)
    fitted = LogisticRegression().fit(train, concept(train))
    valid = features(1000, seed=2)
    with my.start_run("monitors") as run:
        my.log_metric("accuracy", float((fitted.predict(valid) == concept(valid)).mean()))
        my.log_model(fitted, "churn", run=run, training_data=(train, pd.Series(concept(train))))
    my.registry.set_alias("churn", "champion", 1)
    return fitted


def serve(
    fitted: LogisticRegression, frame: pd.DataFrame, start_ms: int, step_ms: int
) -> list[str]:
    """Log the model's answers to `frame` as served predictions, one every `step_ms`."""
    from modelyard._sdk import default_prediction_log

    predicted = fitted.predict(frame)
    proba = fitted.predict_proba(frame)
    ats = [start_ms + i * step_ms for i in range(len(frame))]
    ids = [new_ids(1, at)[0] for at in ats]
    rows = [
        PredictionRow(
            id=ids[i],
            model="churn",
            version=1,
            at_ms=ats[i],
            latency_ms=2.0 + (i % 7),
            inputs=orjson.dumps(frame.iloc[i].to_dict()).decode(),
            outputs=orjson.dumps(
                {"predict": int(predicted[i]), "predict_proba": proba[i].tolist()}
            ).decode(),
        )
        for i in range(len(frame))
    ]
    default_prediction_log().write(rows)
    return ids


def send_labels(ids: list[str], labels: np.ndarray) -> None:
    my.serving.record_feedback(list(zip(ids, (int(v) for v in labels), strict=True)))


def traffic(fitted: LogisticRegression) -> None:
    """Four windows of 500 predictions an hour apart: normal, normal, shifted with a changed
    concept, normal again; every prediction labelled."""
    for index in range(4):
        shifted = index == 2
        frame = features(500, seed=10 + index, shift=1.0 if shifted else 0.0)
        ids = serve(fitted, frame, T0 + index * HOUR, step_ms=1000)
        send_labels(ids, concept(frame, flipped=shifted))


def test_a_monitor_flags_only_the_shifted_window_and_alerts_fire_then_resolve(
    model: LogisticRegression,
) -> None:
    traffic(model)
    monitor = my.monitoring.create_monitor(
        "churn",
        alias="champion",
        rows=500,
        checks=["data_drift", "prediction_drift", "performance", "latency", "concept"],
    )
    assert monitor.window == "500 rows"
    heard: list[dict[str, Any]] = []
    my.monitoring.register_callback("test", lambda event: heard.append(event.to_dict()))
    try:
        my.monitoring.create_alert(
            "drift",
            monitor="churn",
            condition="data_drift.drift_share > 0.2",
            channels=["callback:test"],
        )
        result = my.monitoring.run_monitor("churn", now=T0 + 10 * HOUR)
    finally:
        my.monitoring.unregister_callback("test")

    assert len(result.windows) == 4
    drifted = [w for w in result.windows if "data_drift" in w.flagged]
    assert [w.start for w in drifted] == [T0 + 2 * HOUR]
    assert drifted[0].evidence["data_drift"]["drifted_columns"] == ["x0"]
    # the changed concept: accuracy far below the validation accuracy, interval included
    history = my.monitoring.history("churn", check="performance", metric="accuracy")
    accuracy = history.set_index(history["window_start"].map(lambda t: t.value // 10**6))
    shifted = accuracy.loc[T0 + 2 * HOUR]
    assert shifted["upper"] < 0.8 < accuracy.loc[T0]["lower"]
    assert bool(shifted["flagged"]) and not bool(accuracy.loc[T0]["flagged"])
    # firing at the shifted window, resolved at the next one, each delivered
    assert [(e.state, e.window_start) for e in result.events] == [
        ("firing", T0 + 2 * HOUR),
        ("resolved", T0 + 3 * HOUR),
    ]
    assert [h["state"] for h in heard] == ["firing", "resolved"]
    # every window is judged once
    assert my.monitoring.run_monitor("churn", now=T0 + 20 * HOUR).windows == []
    share = my.monitoring.history("churn", check="data_drift", metric="drift_share", column="")
    assert list(share["value"] > 0.2) == [False, False, True, False]


def test_time_windows_wait_for_their_end_and_the_label_delay(model: LogisticRegression) -> None:
    frame = features(300, seed=5)
    serve(model, frame, T0, step_ms=12_000)  # one hour of traffic
    my.monitoring.create_monitor(
        "churn", version=1, window="30m", label_delay="10m", checks=["data_drift", "latency"]
    )
    assert my.monitoring.run_monitor("churn", now=T0 + 35 * 60_000).windows == []
    first = my.monitoring.run_monitor("churn", now=T0 + 41 * 60_000).windows
    assert [(w.start, w.end, w.rows) for w in first] == [(T0, T0 + 30 * 60_000, 150)]
    second = my.monitoring.run_monitor("churn", now=T0 + 2 * HOUR).windows
    assert [(w.start, w.rows) for w in second] == [(T0 + 30 * 60_000, 150)]
    assert second[0].flagged == []
    latency = my.monitoring.history("churn", check="latency", metric="p99_ms")
    assert len(latency) == 2 and (latency["value"] <= 8.0).all()


def test_a_window_of_the_log_can_be_the_reference(model: LogisticRegression) -> None:
    serve(model, features(400, seed=6), T0, step_ms=1000)
    serve(model, features(400, seed=7, shift=1.0), T0 + HOUR, step_ms=1000)
    my.monitoring.create_monitor(
        "churn",
        window="1h",
        reference={"since": T0, "until": T0 + HOUR},
        checks=["data_drift"],
    )
    windows = my.monitoring.run_monitor("churn", now=T0 + 3 * HOUR).windows
    assert [bool(w.flagged) for w in windows] == [False, True]


def test_checks_without_labels_or_reference_say_so(home: Path) -> None:
    train = features(500, seed=1)
    fitted = LogisticRegression().fit(train, concept(train))
    with my.start_run("monitors") as run:
        my.log_model(fitted, "churn", run=run, input_example=train.head())
    serve(fitted, features(200, seed=3), T0, step_ms=1000)
    my.monitoring.create_monitor("churn", rows=200, checks=["data_drift", "performance"])
    (window,) = my.monitoring.run_monitor("churn", now=T0 + HOUR).windows
    assert "training reference" in window.evidence["data_drift"]["error"]
    assert window.evidence["performance"]["note"] == "no labels yet"
    assert window.flagged == []


def test_bad_monitors_are_refused_and_change_nothing(model: LogisticRegression) -> None:
    my.monitoring.create_monitor("churn", alias="champion")
    with pytest.raises(AlreadyExists):
        my.monitoring.create_monitor("churn")
    bad: list[dict[str, Any]] = [
        {"window": "1h", "rows": 100},
        {"alias": "champion", "version": 1},
        {"window": "an hour"},
        {"rows": 1},
        {"checks": ["nonsense"]},
        {"checks": [{"check": "data_drift", "bins": 3}]},
        {"checks": [{"check": "fairness"}]},
        {"checks": ["latency", "latency"]},
        {"reference": "yesterday"},
        {"reference": {"since": T0 + HOUR, "until": T0}},
        {"schedule": "0s"},
    ]
    for kwargs in bad:
        with pytest.raises(InvalidInput):
            my.monitoring.create_monitor("churn", name="other", **kwargs)
    with pytest.raises(NotFound):
        my.monitoring.create_monitor("churn", name="other", alias="nobody")
    with pytest.raises(NotFound):
        my.monitoring.create_monitor("no-such-model")
    assert [m.name for m in my.monitoring.list_monitors()] == ["churn"]
    with pytest.raises(NotFound):
        my.monitoring.run_monitor("other")


def test_deleting_a_monitor_removes_its_history_and_rules(model: LogisticRegression) -> None:
    traffic(model)
    my.monitoring.create_monitor("churn", rows=500, checks=["latency"])
    my.monitoring.create_alert("slow", monitor="churn", condition="latency.p99_ms > 50")
    my.monitoring.run_monitor("churn", now=T0 + 10 * HOUR)
    assert len(my.monitoring.history("churn")) > 0
    my.monitoring.delete_monitor("churn")
    assert my.monitoring.list_alerts() == []
    with pytest.raises(NotFound):
        my.monitoring.history("churn")


def test_scheduled_monitors_run_when_due(model: LogisticRegression) -> None:
    from modelyard.monitoring._default import default_monitors
    from modelyard.monitoring._scheduler import run_due

    traffic(model)
    my.monitoring.create_monitor("churn", rows=500, schedule="1h", checks=["latency"])
    my.monitoring.create_monitor("churn", name="manual", rows=500, checks=["latency"])
    monitors = default_monitors()
    assert [name for name, _ in run_due(monitors, now=T0 + 10 * HOUR)] == ["churn"]
    assert run_due(monitors, now=T0 + 10 * HOUR + 60_000) == []
    ((name, outcome),) = run_due(monitors, now=T0 + 11 * HOUR)
    assert name == "churn" and outcome.startswith("0 window(s)")


def test_concurrent_runs_judge_each_window_once(model: LogisticRegression) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from modelyard.errors import Conflict
    from modelyard.monitoring._default import default_monitors

    traffic(model)
    my.monitoring.create_monitor("churn", rows=500, checks=["latency", "data_drift"])
    monitors = [default_monitors(), default_monitors()]

    def run(index: int) -> int:
        try:
            return len(monitors[index].run("churn", now=T0 + 10 * HOUR).windows)
        except Conflict:
            return -1

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(run, [0, 1]))
    windows = my.monitoring.monitor_windows("churn")
    assert sorted(w.start for w in windows) == [T0 + i * HOUR for i in range(4)]
    assert sum(max(n, 0) for n in outcomes) == 4
