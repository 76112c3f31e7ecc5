"""Adaptive micro-batching: concurrent requests to one model run as one call of the model.

A request never waits for company when it is alone: the consumer takes whatever is queued
the moment the model is free. Requests that arrive while the model computes pile up and run
together next, up to `max_rows`. Only when other requests are already being read (so more
input is certainly coming) does the consumer wait, at most `max_wait_s`, to fill a batch.

A job may have a timeout: its caller gets TimeoutError once it passes, whether the job still
waits or its batch is computing (the computation itself runs on). One timer per batcher,
not one per job, watches the deadlines, so a timeout costs a request next to nothing.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

K = TypeVar("K")  # what a job runs on: one model version; a batch never mixes two
_TICK_S = 0.005  # the deadline timer fires at most this often: a timeout is at most this late


@dataclass(slots=True)
class _Job(Generic[K]):
    key: K
    payload: Any
    rows: int
    future: asyncio.Future[Any]


class Batcher(Generic[K]):
    """Runs `compute(key, payloads)` in a worker thread on batches of concurrent jobs.

    `compute` returns one result per payload, in order; an exception among the results
    fails only its own job. Jobs of different keys (versions of
    a model during an alias swap) are never mixed in one call.
    """

    def __init__(
        self,
        compute: Callable[[K, Sequence[Any]], Sequence[Any]],
        *,
        max_rows: int = 128,
        max_wait_s: float = 0.002,
        on_batch: Callable[[K, int], None] | None = None,
        thread_name: str = "modelyard-batcher",
    ) -> None:
        self._compute = compute
        self.max_rows = max_rows
        self.max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._queue: collections.deque[_Job[K]] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self.arriving = 0  # requests being read that will submit soon
        # (deadline, tie-breaker, the job's future) of jobs submitted with a timeout
        self._deadlines: list[tuple[float, int, asyncio.Future[Any]]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None

    async def submit(
        self, key: K, payload: Any, rows: int, *, timeout_s: float | None = None
    ) -> Any:
        """The result of `compute` for `payload`; TimeoutError after `timeout_s`, if given."""
        loop = asyncio.get_running_loop()
        if self._consumer is None or self._consumer.done():
            self._wakeup = asyncio.Event()
            self._consumer = loop.create_task(self._consume(), name="modelyard-batcher")
        future: asyncio.Future[Any] = loop.create_future()
        if timeout_s is not None:
            self._watch(loop, loop.time() + timeout_s, future)
        self._queue.append(_Job(key, payload, rows, future))
        assert self._wakeup is not None
        self._wakeup.set()
        return await future

    def _watch(
        self, loop: asyncio.AbstractEventLoop, deadline: float, future: asyncio.Future[Any]
    ) -> None:
        heapq.heappush(self._deadlines, (deadline, next(self._order), future))
        if self._timer is None or deadline < self._timer.when():
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(deadline, self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fail the jobs whose deadline has passed; look again at the next deadline."""
        self._timer = None
        now = loop.time()
        while self._deadlines and self._deadlines[0][0] <= now:
            future = heapq.heappop(self._deadlines)[2]
            if not future.done():
                future.set_exception(TimeoutError())
        if self._deadlines:
            at = max(self._deadlines[0][0], now + _TICK_S)
            self._timer = loop.call_at(at, self._expire, loop)

    async def close(self) -> None:
        """Finish the queued jobs, then stop."""
        while self._queue:
            await asyncio.sleep(0.001)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._consumer is not None:
            self._consumer.cancel()
            await asyncio.gather(self._consumer, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def _consume(self) -> None:
        assert self._wakeup is not None
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._run(await self._gather())

    async def _gather(self) -> list[_Job[K]]:
        """The next batch: the first job, everything queued behind it, and maybe a short wait."""
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        first = self._queue.popleft()
        jobs, rows = [first], first.rows
        deadline = loop.time() + self.max_wait_s
        while rows < self.max_rows:
            if not self._queue:
                remaining = deadline - loop.time()
                if self.arriving <= 0 or remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except TimeoutError:
                    break
                continue
            if rows + self._queue[0].rows > self.max_rows:
                break
            job = self._queue.popleft()
            jobs.append(job)
            rows += job.rows
        return jobs

    async def _run(self, jobs: list[_Job[K]]) -> None:
        loop = asyncio.get_running_loop()
        groups: dict[int, list[_Job[K]]] = {}
        for job in jobs:
            if job.future.done():  # cancelled while it waited (a timeout, a client gone)
                continue
            groups.setdefault(id(job.key), []).append(job)
        for group in groups.values():
            key = group[0].key
            if self._on_batch is not None:
                self._on_batch(key, sum(j.rows for j in group))
            try:
                results = await loop.run_in_executor(
                    self._executor, self._compute, key, [j.payload for j in group]
                )
            except Exception as exc:
                for job in group:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            for job, result in zip(group, results, strict=True):
                if job.future.done():
                    continue  # the client went away
                if isinstance(result, BaseException):  # this job failed on its own
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)
