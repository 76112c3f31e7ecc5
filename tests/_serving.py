"""Real models in a real home, and `modelyard serve` subprocesses over them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from conftest import free_port

CITIES = ["oslo", "rome", "lima"]


def breast_cancer() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_breast_cancer

    features, label = load_breast_cancer(return_X_y=True, as_frame=True)
    return features, label


def mixed_frame(rows: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """A table with a number, a nullable number, a categorical text column and an email
    address (personal data, by its name; the model does not read it)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 90, rows),
            "income": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(50, 10, rows)),
            "city": rng.choice(CITIES, rows),
            "email": [f"user{i}@example.org" for i in rng.integers(0, 10**9, rows)],
        }
    )
    label = (frame["age"] > 50).astype(int)
    return frame, label


def log_models(home: Path) -> None:
    """`bc` versions 1 and 2 (2 with an ONNX export), champion on 1; `mixed` version 1."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    import modelyard as my

    my.configure(home=home)
    try:
        features, label_bc = breast_cancer()
        frame, label = mixed_frame()
        with my.start_run("serving-tests") as run:
            first = LogisticRegression(max_iter=5000).fit(features, label_bc)
            my.log_model(first, "bc", run=run, training_data=(features, label_bc))
            second = LogisticRegression(max_iter=5000, C=0.5).fit(features, label_bc)
            data = (features, label_bc)
            my.log_model(second, "bc", run=run, artifact_path="bc-2", training_data=data, onnx=True)
            encode = ColumnTransformer(
                [
                    ("city", OneHotEncoder(), ["city"]),
                    ("numbers", SimpleImputer(), ["age", "income"]),
                ]
            )
            mixed = make_pipeline(encode, LogisticRegression(max_iter=1000)).fit(frame, label)
            my.log_model(mixed, "mixed", run=run, training_data=(frame, label))
        my.registry.set_alias("bc", "champion", 1)
    finally:
        my.configure(home=home / "unused")


def start_model_server(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`modelyard serve ARGS` on 127.0.0.1, ready to answer."""
    port = free_port()
    environment = {**os.environ, **(env or {})}
    environment.pop("MODELYARD_TRACKING_URI", None)
    log = home / f"serve-{port}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelyard", "--home", str(home), "serve", *args,
             "--port", str(port)],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"modelyard serve exited early: {log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"modelyard serve was not ready in 60 s: {log.read_text()}")


def stop_gracefully(process: subprocess.Popen[bytes], timeout: float = 30) -> bool:
    """SIGTERM, as an orchestrator stops a server; whether it exited cleanly.

    uvicorn drains, shuts the app down, then re-raises the signal, so a clean stop ends
    "killed by SIGTERM" rather than with 0.
    """
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout) in (0, -signal.SIGTERM)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def rows_of(frame: pd.DataFrame, start: int, count: int) -> list[list[Any]]:
    return frame.iloc[start : start + count].to_numpy().tolist()
