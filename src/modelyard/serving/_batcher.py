"""Adaptive micro-batching: concurrent requests to one model run as one call of the model.

A request never waits for company when it is alone: the consumer takes whatever is queued
the moment the model is free. Requests that arrive while the model computes pile up and run
together next, up to `max_rows`. Only when other requests are already being read (so more
input is certainly coming) does the consumer wait, at most `max_wait_s`, to fill a batch.

A model that answers fast is called right on the event loop: handing a call to the worker
thread and back costs more than a small model takes, and with the loop and the thread
taking turns at the interpreter lock it also stretches everyone's latency. How long a
model takes is learnt from its calls (a moving average per key); a key runs inline while
its average stays under `inline_below_s`, on the worker thread until its first call has
been timed and whenever the average is above. A call slower than that limit becomes the
average outright, so one slow call is enough to move the key off the loop.

A job may have a timeout: its caller gets TimeoutError once it passes, whether the job still
waits or its batch is computing on the worker thread (the computation itself runs on); a
call on the loop cannot be cut short, so its late jobs fail as it returns. One timer per batcher,
not one per job, watches the deadlines, so a timeout costs a request next to nothing.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

K = TypeVar("K")  # what a job runs on: one model version; a batch never mixes two
_TICK_S = 0.005  # the deadline timer fires at most this often: a timeout is at most this late
_WEIGHT = 0.2  # of the newest call in a key's moving average of call times
_KEPT_TIMES = 256  # keys timed before the oldest are forgotten (versions swapped out)


@dataclass(slots=True)
class _Job(Generic[K]):
    key: K
    payload: Any
    rows: int
    future: asyncio.Future[Any]
    deadline: float | None


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
        inline_below_s: float = 0.0,
    ) -> None:
        self._compute = compute
        self.max_rows = max_rows
        self.max_wait_s = max_wait_s
        self.inline_below_s = inline_below_s
        # id of a key: the moving average of its calls' seconds
        self._call_s: dict[int, float] = {}
        self._on_batch = on_batch
        self._queue: collections.deque[_Job[K]] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self.arriving = 0  # requests being read that will submit soon
        # timeout: (deadline, the job's future) of the jobs submitted with it, oldest first;
        # jobs of one timeout come due in the order they came, so no heap is needed
        self._deadlines: dict[float, collections.deque[tuple[float, asyncio.Future[Any]]]] = {}
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
        deadline = None
        if timeout_s is not None:
            deadline = loop.time() + timeout_s
            self._watch(loop, timeout_s, deadline, future)
        self._queue.append(_Job(key, payload, rows, future, deadline))
        assert self._wakeup is not None
        self._wakeup.set()
        return await future

    def _watch(
        self,
        loop: asyncio.AbstractEventLoop,
        timeout_s: float,
        deadline: float,
        future: asyncio.Future[Any],
    ) -> None:
        due = self._deadlines.get(timeout_s)
        if due is None:
            due = self._deadlines[timeout_s] = collections.deque()
        due.append((deadline, future))
        if self._timer is None or deadline < self._timer.when():
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(deadline, self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fail the jobs whose deadline has passed; look again at the next deadline."""
        self._timer = None
        now = loop.time()
        following = None
        for timeout_s, due in list(self._deadlines.items()):
            while due and due[0][0] <= now:
                future = due.popleft()[1]
                if not future.done():
                    future.set_exception(TimeoutError())
            if not due:
                del self._deadlines[timeout_s]
            elif following is None or due[0][0] < following:
                following = due[0][0]
        if following is not None:
            self._timer = loop.call_at(max(following, now + _TICK_S), self._expire, loop)

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
            payloads = [j.payload for j in group]
            try:
                if self._inline(key):
                    results = self._timed(key, payloads)
                else:
                    results = await loop.run_in_executor(self._executor, self._timed, key, payloads)
            except Exception as exc:
                for job in group:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            now = loop.time()
            for job, result in zip(group, results, strict=True):
                if job.future.done():
                    continue  # the client went away, or the timer failed it
                if job.deadline is not None and now > job.deadline:
                    job.future.set_exception(TimeoutError())  # late, though the timer was not
                elif isinstance(result, BaseException):  # this job failed on its own
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)

    def _inline(self, key: K) -> bool:
        """Whether `key`'s calls are fast enough to make on the event loop."""
        average = self._call_s.get(id(key))
        return average is not None and average < self.inline_below_s

    def _timed(self, key: K, payloads: list[Any]) -> Sequence[Any]:
        """`compute`, its time added to the key's moving average (a failed call's too)."""
        started = time.perf_counter()
        try:
            return self._compute(key, payloads)
        finally:
            took = time.perf_counter() - started
            average = self._call_s.get(id(key))
            if average is None and len(self._call_s) >= _KEPT_TIMES:
                self._call_s.clear()
            if average is None or took >= self.inline_below_s:
                average = took  # one slow call is enough to move the key off the loop
            else:
                average += _WEIGHT * (took - average)
            self._call_s[id(key)] = average
