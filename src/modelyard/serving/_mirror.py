"""Mirrored requests (shadows, challengers) scored on a thread of their own, in batches.

The event loop only appends a request to the queue of its variant's `Mirror`: no task, no
timer, no hand-off per request. The mirror's thread takes whatever has queued, decodes what
reads the request otherwise than the primary, runs each version once over the batch and
logs every row with its latency (from the moment the request was mirrored). A row that
waited or computed longer than the timeout is logged as a timeout, as a candidate's would
be. A mirror is one variant's, so a slow one only ever holds up itself.

How a variant's failure is logged (`record_failure`) is here too: a candidate's, on the
request path, and a mirror's, here, are logged alike.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.errors import ModelyardError
from modelyard.serving._ids import new_ids
from modelyard.serving._server import compute, decode_input, logged_batch

if TYPE_CHECKING:
    from modelyard.serving._deployed import Routes
    from modelyard.serving._server import Decoded, ModelServer, Payload

_log = logging.getLogger("modelyard.serving")


@dataclass(slots=True)
class Mirrored:
    """One request as mirrored to one variant: what the primary read, and what the variant
    takes as it is (`own`: None when it reads the request otherwise)."""

    routes: Routes
    variant: str
    payload: Payload
    primary: Decoded
    own: Decoded | None
    parents: Sequence[str]
    started: float


class Mirror:
    """The mirrored requests of one variant of one deployment, scored on a daemon thread."""

    def __init__(self, server: ModelServer, name: str, timeout_s: float) -> None:
        self.server = server
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: deque[Mirrored] = deque()
        self._busy = 0  # taken off the queue, not yet logged
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"modelyard-mirror-{name}")
        self._thread.daemon = True
        self._thread.start()

    @property
    def pending(self) -> int:
        """Requests queued or being scored."""
        return len(self._queue) + self._busy

    def submit(self, job: Mirrored) -> None:
        with self._lock:
            self._queue.append(job)
            self._wake.notify()

    def close(self, timeout_s: float) -> bool:
        """Score what is queued (for at most `timeout_s`), then stop; whether all was done."""
        with self._lock:
            self._closing = True
            self._wake.notify()
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closing:
                    self._wake.wait()
                if not self._queue:
                    return
                jobs = list(self._queue)
                self._queue.clear()
                self._busy = len(jobs)
            try:
                self._score(jobs)
            except Exception:  # never let the thread die: the next requests are scored
                _log.exception("could not score %d mirrored requests", len(jobs))
            finally:
                with self._lock:
                    self._busy = 0

    def _score(self, jobs: list[Mirrored]) -> None:
        ready: list[tuple[Mirrored, Decoded]] = []
        for job in jobs:
            if job.own is not None:
                ready.append((job, job.own))
                continue
            loaded = job.routes.loaded[job.variant]
            try:
                ready.append((job, decode_input(job.payload, loaded, self.server.features)))
            except Exception as exc:
                self._failed(job, None, exc)
        groups: dict[int, list[tuple[Mirrored, Decoded]]] = {}
        for job, own in ready:  # a version swapped meanwhile runs on its own
            groups.setdefault(id(job.routes.loaded[job.variant]), []).append((job, own))
        for group in groups.values():
            self._compute(group)

    def _compute(self, group: list[tuple[Mirrored, Decoded]]) -> None:
        first = group[0][0]
        loaded = first.routes.loaded[first.variant]
        late = time.perf_counter() - self.timeout_s
        live = [(job, own) for job, own in group if job.started >= late]
        for job, own in group:
            if job.started < late:  # waited past its time: not worth scoring
                self._failed(job, own, TimeoutError())
        if not live:
            return
        results: Sequence[dict[str, Any] | Exception]
        try:
            results = compute(loaded, [own.batch for _, own in live])
        except Exception as exc:  # one request alone raises rather than returning its error
            results = [exc] * len(live)
        done = time.perf_counter()
        for (job, own), outputs in zip(live, results, strict=True):
            if isinstance(outputs, BaseException):
                self._failed(job, own, outputs)
            elif done - job.started > self.timeout_s:
                self._failed(job, own, TimeoutError())
            else:
                self._logged(job, own, outputs, done - job.started)

    def _logged(self, job: Mirrored, own: Decoded, outputs: dict[str, Any], took: float) -> None:
        name, variant = job.routes.deployment.name, job.variant
        self.server.metrics.mirrored.labels(name, variant, "ok").inc()
        self.server.record(
            logged_batch(
                job.routes.loaded[variant],
                own.logged,
                outputs,
                new_ids(own.logged.rows),
                took,
                deployment=name,
                variant=variant,
                parent_ids=job.parents,
            )
        )

    def _failed(self, job: Mirrored, own: Decoded | None, exc: BaseException) -> None:
        failure = failure_of(exc)
        name = job.routes.deployment.name
        self.server.metrics.mirrored.labels(name, job.variant, outcome_of(failure)).inc()
        record_failure(
            self.server, job.routes, job.variant, own, job.primary, failure, job.parents,
            job.started,
        )  # fmt: skip


def failure_of(exc: BaseException) -> str:
    """What a variant's failure is logged as: "timeout", or the exception and its message."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    message = exc.message if isinstance(exc, ModelyardError) else str(exc)
    return f"{type(exc).__name__}: {message}"


def outcome_of(failure: str) -> str:
    return "timeout" if failure == "timeout" else "error"


def record_failure(
    server: ModelServer,
    routes: Routes,
    variant: str,
    own: Decoded | None,
    primary: Decoded,
    failure: str,
    parents: Sequence[str],
    started: float,
) -> None:
    """A row per input row for `variant`'s failure, under ids of its own."""
    loaded = routes.loaded[variant]
    # an input the variant could not read is logged as the primary read it
    read_by = loaded if own is not None else routes.loaded[routes.primary]
    rows = primary.batch.rows
    server.record(
        logged_batch(
            loaded,
            (own or primary).logged,
            {"error": [failure] * rows},
            new_ids(rows),
            time.perf_counter() - started,
            read_by=read_by,
            deployment=routes.deployment.name,
            variant=variant,
            parent_ids=parents,
        )
    )
