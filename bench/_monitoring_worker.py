"""One monitoring-benchmark measurement on modelyard, run by `bench/monitoring.py`.

Argument: a JSON spec (`workload` and its inputs). Prints one JSON object on stdout.
`drift` compares two Parquet files with `drift_report`; `profile` profiles one with
`profile_parquet`. `load_frames` and `measured` hold the clock and the memory reading, and
`_evidently_worker.py` imports them from here, so both sides are measured by the same code.
Nothing at the top imports modelyard: Evidently's interpreter does not have it.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

WARMUP_ROWS = 5_000  # enough rows that Evidently picks the same tests as on the full data
_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def load_frames(spec: dict[str, Any]) -> tuple[Any, Any]:
    """Reference and current as pandas DataFrames, read with pyarrow's defaults."""
    import pyarrow.parquet as pq

    return (
        pq.read_table(spec["reference"]).to_pandas(),
        pq.read_table(spec["current"]).to_pandas(),
    )


def _status_kb(field: str) -> int | None:
    if not _STATUS.exists():
        return None
    for line in _STATUS.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def _peak_kb() -> int:
    """The process's peak resident set size so far (since the last reset), in KiB."""
    return _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measured(
    compute: Callable[[Any, Any], list[str]], reference: Any, current: Any
) -> dict[str, Any]:
    """Run `compute` (returning the flagged columns) once on the first rows as a warm-up,
    which loads whatever the tool imports lazily, then once on everything under the clock.

    Memory: the peak RSS of the whole process, and how far the run raised it above the RSS
    it started from. On Linux the kernel's peak is reset just before the run
    (`/proc/self/clear_refs`), so a transient peak while loading the data cannot hide it.
    """
    compute(reference.head(WARMUP_ROWS), current.head(WARMUP_ROWS))
    gc.collect()
    peak_before_kb = _peak_kb()
    reset = _CLEAR_REFS.exists()
    if reset:
        _CLEAR_REFS.write_text("5")
    start_kb = _status_kb("VmRSS") or peak_before_kb
    start = time.perf_counter()
    flagged = compute(reference, current)
    seconds = time.perf_counter() - start
    peak_kb = _peak_kb()
    return {
        "seconds": seconds,
        "flagged": flagged,
        "rows": [len(reference), len(current)],
        "start_mb": start_kb / 1024,
        "peak_mb": max(peak_kb, peak_before_kb) / 1024,
        "increase_mb": (peak_kb - start_kb) / 1024 if reset else None,
    }


def run_drift(spec: dict[str, Any]) -> dict[str, Any]:
    """`drift_report` on the two files; the clock covers the report and its drifted columns."""
    import modelyard as my

    reference, current = load_frames(spec)
    last: dict[str, Any] = {}

    def compute(ref: Any, cur: Any) -> list[str]:
        report = my.monitoring.drift_report(ref, cur, multivariate=spec["multivariate"])
        last["multivariate"] = report.multivariate
        return list(report.drifted_columns)

    result = measured(compute, reference, current)
    if last["multivariate"] is not None:
        result["multivariate_drifted"] = bool(last["multivariate"].drifted)
    return {"version": my.__version__, **result}


def run_profile(spec: dict[str, Any]) -> dict[str, Any]:
    """`profile_parquet` on one file; starting the local Dask cluster is inside the clock."""
    import modelyard as my

    start = time.perf_counter()
    profile = my.monitoring.profile_parquet(spec["path"], dask=spec["dask"])
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": profile.rows, "columns": len(profile.columns)}


WORKLOADS = {"drift": run_drift, "profile": run_profile}


def main() -> None:
    spec = json.loads(sys.argv[1])
    print(json.dumps(WORKLOADS[spec["workload"]](spec)))


if __name__ == "__main__":
    main()
