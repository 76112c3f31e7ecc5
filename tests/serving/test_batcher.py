"""The micro-batcher: a job past its deadline fails with TimeoutError whether it waits or
computes, without holding up the jobs around it; a fast model runs on the event loop, a
slow one on the worker thread."""

from __future__ import annotations

import asyncio
import threading
import time
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


class Timed:
    """`compute` that takes `seconds[k]` on its k-th call (0 past the end) and records the
    thread of every call."""

    def __init__(self, *seconds: float) -> None:
        self.seconds = list(seconds)
        self.threads: list[str] = []

    def __call__(self, key: str, payloads: Sequence[Any]) -> list[Any]:
        call = len(self.threads)
        self.threads.append(threading.current_thread().name)
        if call < len(self.seconds):
            time.sleep(self.seconds[call])
        return [p * 2 for p in payloads]


def run_one_at_a_time(compute: Timed, calls: int, **options: Any) -> list[str]:
    """Submit `calls` jobs one after another; where each call of `compute` ran ("loop" or
    "thread")."""

    async def scenario() -> str:
        batcher: Batcher[str] = Batcher(compute, thread_name="worker", **options)
        for k in range(calls):
            assert await batcher.submit("m", k, 1) == 2 * k
        await batcher.close()
        return threading.current_thread().name

    loop_thread = asyncio.run(scenario())
    assert len(compute.threads) == calls
    return ["loop" if name == loop_thread else "thread" for name in compute.threads]


def test_a_fast_model_runs_on_the_event_loop_once_its_first_call_is_timed() -> None:
    where = run_one_at_a_time(Timed(), 4, inline_below_s=0.05)
    assert where == ["thread", "loop", "loop", "loop"]


def test_one_slow_call_moves_a_model_back_to_the_worker_thread() -> None:
    # the third call (on the loop) takes 0.1 s, twice the limit: the next ones run off the loop
    # until their average comes back under it, which fast calls bring about within a few
    where = run_one_at_a_time(Timed(0, 0, 0.1), 12, inline_below_s=0.05)
    assert where[:4] == ["thread", "loop", "loop", "thread"]
    assert "loop" in where[4:]


def test_a_slow_model_stays_on_the_worker_thread() -> None:
    where = run_one_at_a_time(Timed(0.06, 0.06, 0.06), 3, inline_below_s=0.05)
    assert where == ["thread"] * 3


def test_no_limit_keeps_every_call_on_the_worker_thread() -> None:
    assert run_one_at_a_time(Timed(), 3) == ["thread"] * 3


def test_a_job_whose_call_on_the_loop_ends_past_its_deadline_fails() -> None:
    compute = Timed(0, 0.1)  # the first call is timed fast; the second, inline, overruns

    async def scenario() -> list[Any]:
        batcher: Batcher[str] = Batcher(compute, thread_name="worker", inline_below_s=0.05)
        first = await batcher.submit("m", 1, 1, timeout_s=5)
        late = await asyncio.gather(
            batcher.submit("m", 2, 1, timeout_s=0.03), return_exceptions=True
        )
        await batcher.close()
        return [first, *late]

    first, late = asyncio.run(scenario())
    assert first == 2
    assert isinstance(late, TimeoutError)
    assert compute.threads[1] == "MainThread"
