"""Several processes logging into one database at once lose nothing."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

import modelyard as my
from modelyard.tracking import RunStatus

from _workers import log_runs

WORKERS, RUNS = 8, 200


@pytest.mark.slow
def test_eight_processes_logging_at_once_lose_nothing(db_url: str, tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    with multiprocessing.get_context("spawn").Pool(WORKERS) as pool:
        results = pool.starmap(log_runs, [(home, db_url, w, RUNS) for w in range(WORKERS)])
    my.configure(home=home, db_url=db_url)
    try:
        expected = {run_id: (w, i) for w, ids in enumerate(results) for i, run_id in enumerate(ids)}
        assert len(expected) == WORKERS * RUNS
        found = my.search_runs("concurrent", max_results=WORKERS * RUNS + 1)
        assert {run.id for run in found} == set(expected)
        for run in found:
            worker, i = expected[run.id]
            assert run.status is RunStatus.FINISHED
            assert run.name == f"w{worker}-r{i}"
            assert run.params == {"worker": str(worker), "i": str(i), "lr": str(0.01 * (i + 1))}
            assert run.tags == {"worker": str(worker)}
            assert run.metrics["auc"].value == worker + i / 1000
            assert run.metrics["f1"].value == float(i)
            assert run.metrics["loss"].step == 2
        for run_id in list(expected)[:: WORKERS * RUNS // 50]:
            assert len(my.get_metric_history(run_id, "loss")) == 3
    finally:
        my.configure(home=str(tmp_path / "unused"))
