"""A real model and its served traffic for the monitor interface tests (CLI, REST, model
server): a model logged with its training reference and validation accuracy, predictions
written straight into the prediction log as `tests/monitoring/test_monitors.py` does, and
labels recorded as feedback. Every function works on the SDK as `configured` sets it."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sklearn.linear_model import LogisticRegression

import modelyard as my
from modelyard.serving._ids import new_ids
from modelyard.serving._records import PredictionRow

COLUMNS = ["x0", "x1", "x2", "x3"]
HOUR = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
ROWS = 200  # predictions per phase, one a second
# normal, shifted (x0 + 1 sd and the label rule turned), normal again
PHASES = (False, True, False)
TABLES = (
    "monitors",
    "monitor_windows",
    "monitor_results",
    "alert_rules",
    "alert_events",
    "alert_deliveries",
)


@contextmanager
def configured(home: Path, db_url: str | None = None) -> Iterator[Path]:
    """The SDK on the stores of `home` (SQLite unless `db_url`), moved away afterwards; runs
    started meanwhile capture the git state of `home`'s folder, not of this repository."""
    home.parent.mkdir(parents=True, exist_ok=True)
    working = Path.cwd()
    os.chdir(home.parent)
    my.configure(home=home, db_url=db_url)
    try:
        yield home
    finally:
        my.configure(home=home.parent / "unused")
        os.chdir(working)


def features(rows: int, seed: int, shifted: bool = False) -> pd.DataFrame:
    frame = pd.DataFrame(np.random.default_rng(seed).normal(size=(rows, 4)), columns=COLUMNS)
    frame["x0"] += 1.0 if shifted else 0.0
    return frame


def truth(frame: pd.DataFrame, shifted: bool = False) -> list[int]:
    """The true label: which side of a line a row lies; the line turns when shifted."""
    score = frame["x0"] - frame["x1"] if shifted else frame["x0"] + frame["x1"]
    return [int(v) for v in score > 0]


def log_model(name: str = "churn", alias: str = "champion", seed: int = 1) -> LogisticRegression:
    """`name` version 1 behind `alias`, with its training reference and accuracy."""
    train = features(2000, seed=seed)
    fitted = LogisticRegression().fit(train, truth(train))
    valid = features(1000, seed=seed + 1)
    with my.start_run(f"{name}-training") as run:
        my.log_metric("accuracy", float((fitted.predict(valid) == truth(valid)).mean()))
        my.log_model(fitted, name, run=run, training_data=(train, pd.Series(truth(train))))
    my.registry.set_alias(name, alias, 1)
    return fitted


def write_predictions(
    fitted: LogisticRegression, frame: pd.DataFrame, ats: Sequence[int], model: str = "churn"
) -> list[str]:
    """Log `fitted`'s answers to `frame` as predictions of version 1 made at `ats` (Unix ms)."""
    from modelyard._sdk import default_prediction_log

    predicted = fitted.predict(frame)
    proba = fitted.predict_proba(frame)
    ids = [new_ids(1, at)[0] for at in ats]
    rows = [
        PredictionRow(
            id=ids[i],
            model=model,
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


def log_phases(fitted: LogisticRegression, start: int = T0) -> None:
    """`PHASES`: `ROWS` labelled predictions each, one a second, the phases an hour apart."""
    for index, shifted in enumerate(PHASES):
        frame = features(ROWS, seed=11 + index, shifted=shifted)
        first = start + index * HOUR
        ids = write_predictions(fitted, frame, [first + i * 1000 for i in range(ROWS)])
        my.serving.record_feedback(list(zip(ids, truth(frame, shifted), strict=True)))


def stored(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the monitor and alert tables of `home`'s SQLite database."""
    with sqlite3.connect(home / "modelyard.db") as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in TABLES}
