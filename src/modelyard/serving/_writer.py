"""The background writer that takes predictions off the hot path into the prediction log.

`submit` only appends to a bounded queue under a lock. One daemon thread turns batches into
`PredictionRow`s (JSON, personal columns masked), another writes them to the log in chunks.
Encoding holds the interpreter lock, a write mostly waits on the disk: apart, a write that
stalls (an fsync, a checkpoint) never leaves a backlog to encode all at once, which would
hold the lock for milliseconds while requests wait for it. When the log cannot keep up the
queue fills and new batches are dropped and counted, so serving never waits for the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from modelyard.serving._records import LoggedBatch, PredictionRow

if TYPE_CHECKING:
    from modelyard.serving._log import PredictionLog

MASK = "***"
_RETRY_DELAYS_S = (0.05, 0.2, 0.5)
_JSON = orjson.OPT_SERIALIZE_NUMPY
_NUMBERS = frozenset("biuf")  # NumPy kinds orjson writes itself

logger = logging.getLogger("modelyard.serving.log")


class LogWriter:
    """Writes submitted batches to `log`: one daemon thread encodes them at the latest
    `flush_interval_s` (default: the log's `write_interval_s`) after they came, another
    writes the rows in chunks of at most `flush_rows`.

    At most `capacity` rows wait at a time; a batch that does not fit is dropped
    (`dropped_rows`). A chunk whose write keeps failing after a few retries is logged and
    counted in `failed_rows`; the thread carries on. The writer does not close `log`.
    """

    def __init__(
        self,
        log: PredictionLog,
        *,
        capacity: int = 100_000,
        flush_rows: int = 2_000,
        flush_interval_s: float | None = None,
    ) -> None:
        if flush_interval_s is None:
            flush_interval_s = log.write_interval_s
        if capacity < 1 or flush_rows < 1 or flush_interval_s <= 0:
            raise ValueError("capacity and flush_rows must be positive, flush_interval_s > 0")
        self.log = log
        self.capacity = capacity
        self.flush_rows = flush_rows
        self.flush_interval_s = flush_interval_s
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the encoder waits for batches
        self._encoded_ready = threading.Condition(self._lock)  # the writer waits for rows
        self._progress = threading.Condition(self._lock)  # flushers wait for the threads
        self._queue: deque[LoggedBatch] = deque()
        self._encoded: deque[PredictionRow] = deque()  # encoded, not yet handed to the log
        self._encoding_over = False  # the encoder has stopped: nothing more will come
        self._pending = 0
        self._accepted = 0
        self._finished = 0  # written or failed, in submission order
        self._dropped = 0
        self._written = 0
        self._failed = 0
        self._flushers = 0
        self._closing = False
        self._encoder = threading.Thread(
            target=self._run, name="modelyard-log-encoder", daemon=True
        )
        self._writer = threading.Thread(
            target=self._store, name="modelyard-log-writer", daemon=True
        )
        self._encoder.start()
        self._writer.start()

    def submit(self, batch: LoggedBatch) -> bool:
        """Queue `batch` for the log without waiting; False if it was dropped."""
        rows = len(batch.ids)
        with self._lock:
            if self._closing or self._pending + rows > self.capacity:
                self._dropped += rows
                return False
            self._queue.append(batch)
            self._pending += rows
            self._accepted += rows
            if self._pending >= self.flush_rows:
                self._wake.notify()
            return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row submitted before this call is written (or failed); False if
        `timeout` seconds passed first."""
        with self._lock:
            target = self._accepted
            self._flushers += 1
            self._wake.notify()
            try:
                return self._progress.wait_for(lambda: self._finished >= target, timeout)
            finally:
                self._flushers -= 1

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued and stop the threads; later submits are dropped."""
        with self._lock:
            self._closing = True
            self._wake.notify()
        deadline = time.monotonic() + timeout
        self._encoder.join(timeout)
        self._writer.join(max(0.0, deadline - time.monotonic()))
        if self._writer.is_alive():
            logger.warning(
                "prediction log writer: %d rows still unwritten after %.1f s at close",
                self.pending_rows,
                timeout,
            )

    @property
    def pending_rows(self) -> int:
        """Rows submitted and not yet written or failed."""
        with self._lock:
            return self._pending

    @property
    def dropped_rows(self) -> int:
        with self._lock:
            return self._dropped

    @property
    def written_rows(self) -> int:
        with self._lock:
            return self._written

    @property
    def failed_rows(self) -> int:
        with self._lock:
            return self._failed

    # the threads

    def _run(self) -> None:
        """The encoder: batches in, rows out to the writer; at close, tells it it is over."""
        try:
            self._encode_forever()
        finally:
            with self._lock:
                self._encoding_over = True
                self._encoded_ready.notify()

    def _encode_forever(self) -> None:
        while True:
            with self._lock:
                deadline = time.monotonic() + self.flush_interval_s
                while not self._closing:
                    if self._queue and (self._flushers or self._pending >= self.flush_rows):
                        break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        if self._queue:
                            break
                        deadline, remaining = (
                            deadline + self.flush_interval_s,
                            self.flush_interval_s,
                        )
                    self._wake.wait(remaining)
                batches = list(self._queue)
                self._queue.clear()
                stop = self._closing and not batches
            if stop:
                return
            for group in _alike(batches):
                for rows in self._encoded_rows(group):
                    with self._lock:
                        self._encoded.extend(rows)
                        self._encoded_ready.notify()

    def _store(self) -> None:
        """The writer: encoded rows to the log, in chunks of at most `flush_rows`, as soon as
        they come (the encoder already waited to gather them)."""
        while True:
            with self._lock:
                while not self._encoded and not self._encoding_over:
                    self._encoded_ready.wait()
                if not self._encoded:
                    return
                take = min(len(self._encoded), self.flush_rows)
                chunk = [self._encoded.popleft() for _ in range(take)]
            self._write_chunk(chunk)

    def _encoded_rows(self, group: list[LoggedBatch]) -> Iterator[list[PredictionRow]]:
        """The rows of `group`, encoded together; if that fails, batch by batch, so only the
        batch that cannot be encoded is lost (logged and counted)."""
        if len(group) > 1:
            try:
                yield prediction_rows(*group)
                return
            except Exception:  # the culprit is found and reported batch by batch below
                pass
        for batch in group:
            try:
                yield prediction_rows(batch)
            except Exception:
                logger.exception(
                    "prediction log writer: cannot encode %d predictions of %s version %s",
                    len(batch.ids),
                    batch.model,
                    batch.version,
                )
                self._done(len(batch.ids), written=False)

    def _write_chunk(self, rows: list[PredictionRow]) -> None:
        for attempt, delay in enumerate((*_RETRY_DELAYS_S, None)):
            try:
                self.log.write(rows, encoded=True)
            except Exception:
                if delay is None:
                    logger.exception(
                        "prediction log writer: %d predictions lost after %d attempts",
                        len(rows),
                        attempt + 1,
                    )
                    self._done(len(rows), written=False)
                    return
                time.sleep(delay)
            else:
                self._done(len(rows), written=True)
                return

    def _done(self, rows: int, *, written: bool) -> None:
        with self._lock:
            self._pending -= rows
            self._finished += rows
            if written:
                self._written += rows
            else:
                self._failed += rows
            self._progress.notify_all()


# -- encoding --------------------------------------------------------------------------


def prediction_rows(*batches: LoggedBatch) -> list[PredictionRow]:
    """The rows the log stores for `batches`: inputs and outputs as JSON, `pii` masked.

    Several batches must be alike (`_alike`): they are encoded as one, which spares the
    per-batch work that dominates when every request is one row.
    """
    merged = batches[0] if len(batches) == 1 else _merged(batches)
    count = len(merged.ids)
    inputs = [_json(row) for row in _input_rows(merged, count)]
    outputs = [_json(row) for row in _output_rows(merged.outputs, count)]
    if len(inputs) != count or len(outputs) != count:
        raise ValueError(f"{count} ids but {len(inputs)} input rows and {len(outputs)} output rows")
    rows: list[PredictionRow] = []
    start = 0
    for batch in batches:
        size = len(batch.ids)
        end = start + size
        parents = batch.parent_ids if batch.parent_ids is not None else [None] * size
        if len(parents) != size:
            raise ValueError(f"{size} ids but {len(parents)} parent ids")
        model, version, at_ms, latency = batch.model, batch.version, batch.at_ms, batch.latency_ms
        deployment, variant = batch.deployment, batch.variant
        rows += [
            PredictionRow(i, model, version, at_ms, float(latency), x, y, deployment, variant,
                          parent)
            for i, x, y, parent in zip(batch.ids, inputs[start:end], outputs[start:end], parents,
                                       strict=True)
        ]  # fmt: skip
        start = end
    return rows


def _alike(batches: Sequence[LoggedBatch]) -> Iterator[list[LoggedBatch]]:
    """`batches` in order, consecutive ones grouped when they encode as one: tables read on
    the fast path (one array) with the same columns, masking, dtypes and outputs."""
    group: list[LoggedBatch] = []
    shape: tuple[Any, ...] | None = None
    for batch in batches:
        mine = _shape(batch)
        if group and (mine is None or mine != shape):
            yield group
            group = []
        group.append(batch)
        shape = mine
    if group:
        yield group


def _shape(batch: LoggedBatch) -> tuple[Any, ...] | None:
    data = batch.inputs
    if batch.columns is None or not isinstance(data, np.ndarray) or data.ndim != 2:
        return None
    outputs = []
    for name, values in batch.outputs.items():
        if not isinstance(values, np.ndarray) or len(values) != len(data):
            return None
        outputs.append((name, values.dtype, values.shape[1:]))
    return batch.columns, batch.pii, data.dtype, data.shape[1], tuple(outputs)


def _merged(batches: Sequence[LoggedBatch]) -> LoggedBatch:
    """One batch with the inputs, outputs and ids of alike `batches` (their other fields are
    the first's: `prediction_rows` takes those from each batch)."""
    first = batches[0]
    return LoggedBatch(
        model=first.model,
        version=first.version,
        ids=[i for batch in batches for i in batch.ids],
        at_ms=first.at_ms,
        latency_ms=first.latency_ms,
        inputs=np.concatenate([batch.inputs for batch in batches]),
        outputs={
            name: np.concatenate([batch.outputs[name] for batch in batches])
            for name in first.outputs
        },
        pii=first.pii,
        columns=first.columns,
    )


def _input_rows(batch: LoggedBatch, count: int) -> Iterator[Any]:
    data = batch.inputs
    columns: dict[str, list[Any]] | None = None
    if hasattr(data, "columns") and hasattr(data, "iloc"):  # a DataFrame
        columns = {str(name): _values(data[name]) for name in data.columns}
    elif isinstance(data, Mapping):
        columns = {str(name): _values(values) for name, values in data.items()}
    elif batch.columns is not None and getattr(data, "ndim", 0) == 2:
        # A table read on the fast path: one array, columns in the signature's order.
        names = list(batch.columns)
        if len(data) != count or data.shape[1] != len(names):
            raise ValueError(f"{count} ids but an input of shape {data.shape} for {names}")
        masked = [k for k, name in enumerate(names) if name in batch.pii]
        if not masked:
            yield from (dict(zip(names, row, strict=True)) for row in data.tolist())
            return
        for row in data.tolist():
            for k in masked:
                row[k] = MASK
            yield dict(zip(names, row, strict=True))
        return
    if columns is None:
        yield from _values(data)
        return
    for name in batch.pii & columns.keys():
        columns[name] = [MASK] * count
    yield from _records(columns, count)


def _output_rows(outputs: Mapping[str, Any], count: int) -> Iterator[dict[str, Any]]:
    return _records({str(name): _values(values) for name, values in outputs.items()}, count)


def _records(columns: Mapping[str, Sequence[Any]], count: int) -> Iterator[dict[str, Any]]:
    """Columns of `count` values each, as one dict per row."""
    if any(len(values) != count for values in columns.values()):
        lengths = {name: len(values) for name, values in columns.items()}
        raise ValueError(f"{count} ids but columns of lengths {lengths}")
    if not columns:
        return ({} for _ in range(count))
    names = list(columns)
    return (dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True))


def _values(column: Any) -> list[Any]:
    """A column or array as a list with one value per row.

    Numbers stay NumPy scalars (or sub-arrays), which orjson writes in their own precision
    (a float32 0.2 as 0.2); anything else becomes plain Python values.
    """
    if isinstance(column, np.ndarray):
        return list(column) if column.dtype.kind in _NUMBERS else column.tolist()
    if hasattr(column, "to_numpy") and hasattr(column, "dtype"):  # a pandas Series
        if column.dtype.kind in _NUMBERS:
            return list(column.to_numpy())
        return list(column.tolist())
    return list(column)


def _json(value: Any) -> str:
    return orjson.dumps(value, default=_plain, option=_JSON).decode()


def _plain(value: Any) -> Any:
    """What orjson cannot write itself: pandas and NumPy scalars, missing values, others."""
    import pandas as pd

    if value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "tolist"):  # NumPy arrays and scalars
        return value.tolist()
    if hasattr(value, "isoformat"):  # pandas Timestamps and Timedeltas
        return value.isoformat()
    return str(value)
