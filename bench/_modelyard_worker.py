"""One tracking workload on modelyard, run by `bench/tracking.py` with the project's interpreter.

Argument: a JSON spec (workload, folder, db_url, sizes). Prints one JSON object on stdout.
The store and the experiment are created before the clock starts.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import modelyard as my
from modelyard.tracking import Metric


def run_single_metrics(spec: dict[str, Any]) -> dict[str, Any]:
    """(a) `calls` single log_metric calls in one run."""
    calls = spec["calls"]
    my.create_experiment("bench")
    with my.start_run(experiment="bench") as run:
        start = time.perf_counter()
        for i in range(calls):
            run.log_metric("m", float(i), step=i)
        seconds = time.perf_counter() - start
    assert len(my.get_metric_history(run.id, "m")) == calls
    return {"seconds": seconds}


def run_batch_metrics(spec: dict[str, Any]) -> dict[str, Any]:
    """(b) keys x steps metric points through log_batch, `chunk` points per call."""
    keys, steps, chunk = spec["keys"], spec["steps"], spec["chunk"]
    names = [f"k{k}" for k in range(keys)]
    my.create_experiment("bench")
    with my.start_run(experiment="bench") as run:
        timestamp = int(time.time() * 1000)
        start = time.perf_counter()
        for first in range(0, keys * steps, chunk):
            metrics = [
                Metric(names[p % keys], float(p // keys), p // keys, timestamp)
                for p in range(first, first + chunk)
            ]
            run.log_batch(metrics=metrics)
        seconds = time.perf_counter() - start
    assert len(my.get_metric_history(run.id, names[-1])) == steps
    return {"seconds": seconds}


def run_many_runs_and_search(spec: dict[str, Any]) -> dict[str, Any]:
    """(c) `runs` runs with params and metrics, then (d) a metric-filtered search."""
    runs, width = spec["runs"], spec["width"]
    my.create_experiment("bench-c")
    start = time.perf_counter()
    for i in range(runs):
        with my.start_run(experiment="bench-c") as run:
            run.log_params({f"p{j}": i * width + j for j in range(width)})
            run.log_metrics({f"m{j}": float(i + j) for j in range(width)})
    create_seconds = time.perf_counter() - start

    search_filter = f"metrics.m3 > {spec['threshold']}"
    best, found = float("inf"), -1
    for _ in range(spec["search_repeats"]):
        start = time.perf_counter()
        found = len(my.search_runs(experiment="bench-c", filter=search_filter))
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
    settings: dict[str, Any] = {"home": spec["folder"]}
    if spec.get("db_url"):
        settings["db_url"] = spec["db_url"]
    my.configure(**settings)
    result = WORKLOADS[spec["workload"]](spec)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
