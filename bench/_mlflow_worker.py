"""One tracking workload on MLflow, run by `bench/tracking.py` with the MLflow venv's interpreter.

The mirror of `_modelyard_worker.py`: the same spec in, the same JSON out, the same calls
as MLflow spells them. The store and the experiment are created before the clock starts.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient


def run_single_metrics(spec: dict[str, Any]) -> dict[str, Any]:
    """(a) `calls` single log_metric calls in one run."""
    calls = spec["calls"]
    mlflow.set_experiment("bench")
    with mlflow.start_run() as run:
        start = time.perf_counter()
        for i in range(calls):
            mlflow.log_metric("m", float(i), step=i)
        seconds = time.perf_counter() - start
    assert len(MlflowClient().get_metric_history(run.info.run_id, "m")) == calls
    return {"seconds": seconds}


def run_batch_metrics(spec: dict[str, Any]) -> dict[str, Any]:
    """(b) keys x steps metric points through log_batch, `chunk` points per call."""
    keys, steps, chunk = spec["keys"], spec["steps"], spec["chunk"]
    names = [f"k{k}" for k in range(keys)]
    mlflow.set_experiment("bench")
    client = MlflowClient()
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        timestamp = int(time.time() * 1000)
        start = time.perf_counter()
        for first in range(0, keys * steps, chunk):
            metrics = [
                Metric(names[p % keys], float(p // keys), timestamp, p // keys)
                for p in range(first, first + chunk)
            ]
            client.log_batch(run_id, metrics=metrics)
        seconds = time.perf_counter() - start
    assert len(client.get_metric_history(run_id, names[-1])) == steps
    return {"seconds": seconds}


def run_many_runs_and_search(spec: dict[str, Any]) -> dict[str, Any]:
    """(c) `runs` runs with params and metrics, then (d) a metric-filtered search."""
    runs, width = spec["runs"], spec["width"]
    mlflow.set_experiment("bench-c")
    start = time.perf_counter()
    for i in range(runs):
        with mlflow.start_run():
            mlflow.log_params({f"p{j}": i * width + j for j in range(width)})
            mlflow.log_metrics({f"m{j}": float(i + j) for j in range(width)})
    create_seconds = time.perf_counter() - start

    search_filter = f"metrics.m3 > {spec['threshold']}"
    best, found = float("inf"), -1
    for _ in range(spec["search_repeats"]):
        start = time.perf_counter()
        found = len(
            mlflow.search_runs(
                experiment_names=["bench-c"], filter_string=search_filter, output_format="list"
            )
        )
        best = min(best, time.perf_counter() - start)
    return {"seconds": create_seconds, "search_seconds": best, "search_count": found}


WORKLOADS = {
    "single": run_single_metrics,
    "batch": run_batch_metrics,
    "runs": run_many_runs_and_search,
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    os.chdir(spec["folder"])
    mlflow.set_tracking_uri(spec["db_url"])
    result = WORKLOADS[spec["workload"]](spec)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
