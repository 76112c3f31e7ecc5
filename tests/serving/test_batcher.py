"""The micro-batcher's timeouts: a job past its deadline fails with TimeoutError whether it
waits or computes, without holding up the jobs around it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from modelyard.serving._batcher import Batcher


class Gated:
    """`compute` that doubles its payloads once the gate opens, and records every call."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.calls: list[list[Any]] = []

    def __call__(self, key: str, payloads: Sequence[Any]) -> list[Any]:
        self.calls.append(list(payloads))
        self.gate.wait(10)
        return [p * 2 for p in payloads]


def test_a_job_fails_at_its_deadline_while_its_batch_computes() -> None:
    compute = Gated()

    async def scenario() -> tuple[Any, float, Any]:
        batcher: Batcher[str] = Batcher(compute, max_wait_s=0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        timed = asyncio.ensure_future(batcher.submit("m", 1, 1, timeout_s=0.05))
        patient = asyncio.ensure_future(batcher.submit("m", 2, 1))
        failure = await asyncio.gather(timed, return_exceptions=True)
        waited = loop.time() - started
        compute.gate.set()  # the computation was never cut short: it finishes for the other
        answer = await patient
        await batcher.close()
        return failure[0], waited, answer

    failure, waited, answer = asyncio.run(scenario())
    assert isinstance(failure, TimeoutError)
    assert waited < 5  # the deadline, not the gate's 10 s
    assert answer == 4


def test_a_job_that_times_out_while_queued_is_never_computed() -> None:
    compute = Gated()

    async def scenario() -> list[Any]:
        batcher: Batcher[str] = Batcher(compute, max_wait_s=0)
        first = asyncio.ensure_future(batcher.submit("m", 1, 1))
        while not compute.calls:  # the first job holds the worker thread
            await asyncio.sleep(0.001)
        late = asyncio.ensure_future(batcher.submit("m", 2, 1, timeout_s=0.02))
        kept = asyncio.ensure_future(batcher.submit("m", 3, 1, timeout_s=30))
        results = await asyncio.gather(late, return_exceptions=True)
        compute.gate.set()
        results += await asyncio.gather(first, kept)
        await batcher.close()
        return results

    late, first, kept = asyncio.run(scenario())
    assert isinstance(late, TimeoutError)
    assert (first, kept) == (2, 6)
    assert compute.calls == [[1], [3]]


def test_jobs_in_time_get_their_results() -> None:
    compute = Gated()
    compute.gate.set()

    async def scenario() -> list[Any]:
        batcher: Batcher[str] = Batcher(compute)
        results = await asyncio.gather(
            *(batcher.submit("m", k, 1, timeout_s=5 + k / 1000) for k in range(20))
        )
        await batcher.close()
        return list(results)

    assert asyncio.run(scenario()) == [2 * k for k in range(20)]
