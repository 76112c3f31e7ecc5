"""Score a file under a memory cap: run as a script in a subprocess by `test_scoring.py`.

`python _memory_cap.py HOME MODEL WARMUP SOURCE DESTINATION MARGIN_MB` warms up on the small
WARMUP file (imports, model load, Arrow's thread pools), caps the address space (RLIMIT_AS)
at what the process has mapped now plus MARGIN_MB, scores SOURCE, then tries to read SOURCE
whole with pandas under the same cap. It prints what happened as JSON, with the peak growth
of the process's anonymous memory (heap, not code) while scoring, sampled every 2 ms.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
from pathlib import Path


def status_bytes(field: str) -> int:
    """A size from /proc/self/status (VmSize: mapped address space; RssAnon: heap in RAM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


class PeakAnon:
    """The highest RssAnon seen by a sampling thread while the `with` block runs."""

    def __init__(self) -> None:
        self.peak = status_bytes("RssAnon")
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.002):
            self.peak = max(self.peak, status_bytes("RssAnon"))

    def __enter__(self) -> PeakAnon:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def main(home: str, model: str, warmup: str, source: str, destination: str, margin: str) -> None:
    import pandas as pd

    import modelyard as my
    from modelyard.serving._scoring import score

    my.configure(home=home)
    score(model, warmup, Path(destination).with_name("warmup.parquet"), chunk_rows=5_000)
    limit = status_bytes("VmSize") + int(margin) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    outcome: dict[str, object] = {}
    start = status_bytes("RssAnon")
    with PeakAnon() as anon:
        try:
            report = score(model, source, destination, chunk_rows=10_000)
            outcome["rows_scored"] = report.rows_scored
            outcome["rows_per_s"] = report.rows_per_s
        except MemoryError:
            outcome["score"] = "MemoryError"
    outcome["growth"] = anon.peak - start
    try:
        outcome["read_rows"] = len(pd.read_parquet(source))
    except MemoryError:
        outcome["read"] = "MemoryError"
    print(json.dumps(outcome))


if __name__ == "__main__":
    main(*sys.argv[1:])
