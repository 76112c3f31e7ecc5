"""The background log writer: never blocks serving, writes every accepted row exactly once,
masks personal columns, and survives a log that fails."""

from __future__ import annotations

import dataclasses
import random
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelyard.serving import (
    LoggedBatch,
    LogWriter,
    ParquetPredictionLog,
    PredictionRow,
    SqlPredictionLog,
    new_ids,
)
from modelyard.store import MetadataStore

T0 = 1_714_563_000_000


@pytest.fixture
def log(tmp_path: Path) -> Iterator[SqlPredictionLog]:
    made = SqlPredictionLog(MetadataStore(f"sqlite:///{tmp_path / 'm.db'}"), owns_metadata=True)
    yield made
    made.close()


class GatedLog:
    """A real log whose writes wait until the gate opens: a log that cannot keep up."""

    write_interval_s = SqlPredictionLog.write_interval_s

    def __init__(self, log: SqlPredictionLog) -> None:
        self.log = log
        self.gate = threading.Event()
        self.writing = threading.Event()

    def write(self, rows: Sequence[PredictionRow], *, encoded: bool = False) -> None:
        self.writing.set()
        self.gate.wait()
        self.log.write(rows, encoded=encoded)

    def read(self, model: str, **query: int | None) -> pd.DataFrame:
        return self.log.read(model, **query)

    def find(self, ids: Sequence[str]) -> dict[str, tuple[str, int]]:
        return self.log.find(ids)

    def count(self, model: str | None = None, version: int | None = None) -> int:
        return self.log.count(model, version)

    def close(self) -> None:
        self.log.close()


def batch(rows: int, *, model: str = "churn", at_ms: int = T0) -> LoggedBatch:
    """A tensor batch of `rows` predictions."""
    inputs = np.arange(rows * 2, dtype="float64").reshape(rows, 2)
    return LoggedBatch(
        model=model,
        version=1,
        ids=new_ids(rows, at_ms),
        at_ms=at_ms,
        latency_ms=2.5,
        inputs=inputs,
        outputs={"predict": np.arange(rows) % 2},
    )


def in_submission_order(log: SqlPredictionLog, model: str, ids: Sequence[str]) -> pd.DataFrame:
    """The stored rows of `ids` (made in the same millisecond, so their order is random)."""
    return log.read(model).set_index("prediction_id").loc[list(ids)]


def test_submit_drops_what_does_not_fit_and_counts_it_exactly(log: SqlPredictionLog) -> None:
    # flush_rows above capacity and a long interval: nothing is written before close
    writer = LogWriter(log, capacity=100, flush_rows=1_000, flush_interval_s=60)
    assert [writer.submit(batch(30)) for _ in range(4)] == [True, True, True, False]
    assert writer.submit(batch(10))  # exactly fills the capacity
    assert not writer.submit(batch(1))
    assert (writer.pending_rows, writer.dropped_rows) == (100, 31)
    writer.close()
    assert (writer.written_rows, writer.failed_rows, writer.pending_rows) == (100, 0, 0)
    assert log.count("churn") == 100


def test_submit_returns_at_once_while_the_log_is_stuck(log: SqlPredictionLog) -> None:
    gated = GatedLog(log)
    writer = LogWriter(gated, capacity=1_000, flush_rows=10, flush_interval_s=0.01)
    writer.submit(batch(10))
    assert gated.writing.wait(5)  # the thread is inside a write that does not return
    started = time.perf_counter()
    results = [writer.submit(batch(10)) for _ in range(200)]
    elapsed = time.perf_counter() - started
    assert results.count(True) == 99 and writer.dropped_rows == 1_010
    assert elapsed < 0.5, f"200 submits took {elapsed:.3f} s"
    assert not writer.flush(timeout=0.2)
    gated.gate.set()
    assert writer.flush(timeout=10)
    assert writer.written_rows == 1_000 == log.count("churn")
    writer.close()


class Watched(list[list[float]]):
    """Inputs that note when the writer encodes them."""

    def __init__(self, rows: list[list[float]]) -> None:
        super().__init__(rows)
        self.encoded = threading.Event()

    def __iter__(self) -> Iterator[list[float]]:
        self.encoded.set()
        return super().__iter__()


def test_batches_are_encoded_while_a_write_is_stuck(log: SqlPredictionLog) -> None:
    # a stalled write (an fsync, a checkpoint) must not leave a backlog to encode at once
    gated = GatedLog(log)
    writer = LogWriter(gated, flush_rows=10, flush_interval_s=0.01)
    writer.submit(batch(10))
    assert gated.writing.wait(5)
    inputs = Watched([[1.0, 2.0], [3.0, 4.0]])
    writer.submit(dataclasses.replace(batch(2, at_ms=T0 + 1), inputs=inputs))
    assert inputs.encoded.wait(5)  # while the first write still waits
    assert writer.written_rows == 0
    gated.gate.set()
    assert writer.flush(timeout=10)
    assert writer.written_rows == 12 == log.count("churn")
    writer.close()


@pytest.mark.parametrize("flush_rows", [1, 7, 2_000])
def test_flush_writes_every_submitted_row_exactly_once(
    log: SqlPredictionLog, flush_rows: int
) -> None:
    writer = LogWriter(log, flush_rows=flush_rows, flush_interval_s=60)
    rng = random.Random(7)
    submitted: list[str] = []
    for _ in range(60):
        b = batch(rng.randint(0, 40))
        assert writer.submit(b)
        submitted += b.ids
    assert writer.flush(timeout=30)
    assert writer.written_rows == len(submitted) and writer.pending_rows == 0
    assert sorted(log.read("churn")["prediction_id"]) == sorted(submitted)
    writer.close()
    assert log.count() == len(submitted)


def test_rows_are_written_within_the_flush_interval(log: SqlPredictionLog) -> None:
    writer = LogWriter(log, flush_rows=1_000, flush_interval_s=0.05)
    writer.submit(batch(3))
    deadline = time.monotonic() + 5
    while log.count("churn") < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert log.count("churn") == 3
    writer.close()


def test_the_interval_defaults_to_the_logs_own(log: SqlPredictionLog, tmp_path: Path) -> None:
    # a database takes small writes often; files are made seldom
    parquet = ParquetPredictionLog(str(tmp_path / "parquet"))
    assert log.write_interval_s < parquet.write_interval_s
    for target in (log, parquet):
        writer = LogWriter(target)
        assert writer.flush_interval_s == target.write_interval_s
        writer.close()


def test_close_writes_what_is_queued_and_later_submits_are_dropped(
    log: SqlPredictionLog,
) -> None:
    writer = LogWriter(log, flush_rows=1_000, flush_interval_s=60)
    for _ in range(5):
        writer.submit(batch(20))
    writer.close()
    assert log.count("churn") == 100
    assert not writer.submit(batch(4))
    assert writer.dropped_rows == 4
    writer.close()  # again: nothing happens
    assert writer.written_rows == 100


def test_personal_columns_are_masked_and_values_become_json(log: SqlPredictionLog) -> None:
    frame = pd.DataFrame(
        {
            "email": ["ana@example.com", "bo@example.com"],
            "age": [31, 47],
            "score": [0.5, np.nan],
            "seen": pd.to_datetime(["2024-05-01 10:00", None]),
            "city": pd.Series(["Lyon", "Nantes"], dtype="category"),
        }
    )
    ids = new_ids(2, T0)
    writer = LogWriter(log)
    writer.submit(
        LoggedBatch(
            model="churn",
            version=3,
            ids=ids,
            at_ms=T0,
            latency_ms=4.0,
            inputs=frame,
            outputs={
                "predict": np.array([1, 0]),
                "predict_proba": np.array([[0.2, 0.8], [0.9, 0.1]], dtype="float32"),
            },
            pii=frozenset({"email", "not-a-column"}),
        )
    )
    writer.close()
    stored = log.read("churn")
    assert list(stored["prediction_id"]) == sorted(ids)
    by_id = dict(zip(stored["prediction_id"], stored.itertuples(), strict=True))
    first, second = by_id[ids[0]], by_id[ids[1]]
    assert first.inputs == {
        "email": "***",
        "age": 31,
        "score": 0.5,
        "seen": "2024-05-01T10:00:00",
        "city": "Lyon",
    }
    assert second.inputs["email"] == "***"
    assert second.inputs["score"] is None and second.inputs["seen"] is None
    assert first.outputs == {"predict": 1, "predict_proba": [0.2, 0.8]}
    assert first.version == 3 and first.latency_ms == 4.0


def test_tensor_inputs_are_stored_as_nested_lists(log: SqlPredictionLog) -> None:
    ids = new_ids(2, T0)
    tensor = np.arange(8, dtype="int64").reshape(2, 2, 2)
    writer = LogWriter(log)
    writer.submit(LoggedBatch("digits", 1, ids, T0, 1.0, tensor, {"predict": np.array([3, 5])}))
    writer.close()
    stored = in_submission_order(log, "digits", ids)
    assert list(stored["inputs"]) == [[[0, 1], [2, 3]], [[4, 5], [6, 7]]]
    assert list(stored["outputs"]) == [{"predict": 3}, {"predict": 5}]


def test_a_fast_path_array_with_column_names_is_stored_as_records(log: SqlPredictionLog) -> None:
    ids = new_ids(2, T0)
    data = np.array([[31.0, 1.5], [47.0, np.nan]])
    writer = LogWriter(log)
    writer.submit(
        LoggedBatch(
            "churn",
            1,
            ids,
            T0,
            1.0,
            data,
            {"predict": np.array([0.1, 0.2])},
            pii=frozenset({"age"}),
            columns=("age", "spend"),
        )
    )
    writer.close()
    assert list(in_submission_order(log, "churn", ids)["inputs"]) == [
        {"age": "***", "spend": 1.5},
        {"age": "***", "spend": None},
    ]


def table_batch(rows: int, model: str, at_ms: int, **fields: object) -> LoggedBatch:
    """`rows` predictions of a table read on the fast path (one array, named columns)."""
    inputs = np.arange(rows * 2, dtype="float64").reshape(rows, 2) + at_ms % 100
    outputs = {"predict": np.arange(rows) % 2, "predict_proba": np.full((rows, 2), 0.5)}
    made = LoggedBatch(model, 1, new_ids(rows, at_ms), at_ms, 1.0, inputs, outputs,
                       columns=("age", "spend"))  # fmt: skip
    return dataclasses.replace(made, **fields)  # type: ignore[arg-type]


def test_alike_batches_are_encoded_together_and_keep_their_own_fields(
    log: SqlPredictionLog,
) -> None:
    parent = new_ids(1, T0)[0]
    batches = [
        table_batch(2, "churn", T0, deployment="d", variant="primary"),
        table_batch(1, "churn", T0 + 7, latency_ms=9.0, variant="shadow", parent_ids=[parent]),
        table_batch(3, "fraud", T0 + 9, version=4),
        table_batch(1, "churn", T0 + 11, pii=frozenset({"age"})),  # masked: not alike
    ]
    writer = LogWriter(log)
    for made in batches:
        assert writer.submit(made)
    writer.close()
    for made in batches:
        stored = in_submission_order(log, made.model, made.ids)
        rows = len(made.ids)
        masked = "age" in made.pii
        expected_inputs = [
            {"age": "***" if masked else float(a), "spend": float(s)} for a, s in made.inputs
        ]
        assert list(stored["inputs"]) == expected_inputs
        assert list(stored["outputs"]) == [
            {"predict": k % 2, "predict_proba": [0.5, 0.5]} for k in range(rows)
        ]
        assert set(stored["version"]) == {made.version}
        assert set(stored["at"]) == {pd.Timestamp(made.at_ms, unit="ms", tz="UTC")}
        assert set(stored["latency_ms"]) == {made.latency_ms}
        assert list(stored["parent_id"]) == list(made.parent_ids or [None] * rows)
        assert set(stored["variant"]) == {made.variant}


def test_a_broken_batch_among_alike_ones_fails_alone(log: SqlPredictionLog) -> None:
    writer = LogWriter(log, flush_interval_s=60)
    good = [table_batch(2, "churn", T0), table_batch(2, "churn", T0 + 1)]
    broken = table_batch(2, "churn", T0 + 2, parent_ids=new_ids(1, T0))  # one parent, two rows
    for made in (good[0], broken, good[1]):
        writer.submit(made)
    assert writer.flush(timeout=30)
    assert (writer.failed_rows, writer.written_rows) == (2, 4)
    assert log.count("churn") == 4
    writer.close()


def test_a_failing_log_counts_failed_rows_and_the_thread_carries_on(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    log = ParquetPredictionLog(str(folder))
    shutil.rmtree(folder / "_tmp")
    (folder / "_tmp").write_text("a file where the writer needs a folder")
    writer = LogWriter(log, flush_interval_s=0.01)
    writer.submit(batch(10))
    assert writer.flush(timeout=30)
    assert (writer.failed_rows, writer.written_rows) == (10, 0)
    (folder / "_tmp").unlink()
    (folder / "_tmp").mkdir()
    writer.submit(batch(5))
    assert writer.flush(timeout=30)
    assert (writer.failed_rows, writer.written_rows) == (10, 5)
    assert log.count("churn") == 5
    writer.close()


def test_a_batch_that_cannot_be_encoded_fails_alone(log: SqlPredictionLog) -> None:
    writer = LogWriter(log)
    broken = LoggedBatch("churn", 1, new_ids(3, T0), T0, 1.0, np.zeros((2, 1)), {})
    writer.submit(broken)
    writer.submit(batch(4))
    assert writer.flush(timeout=30)
    assert (writer.failed_rows, writer.written_rows) == (3, 4)
    writer.close()


def test_submits_from_many_threads_are_all_written_or_counted_as_dropped(
    log: SqlPredictionLog,
) -> None:
    writer = LogWriter(log, capacity=3_000, flush_rows=500, flush_interval_s=0.01)
    accepted: list[int] = []
    lock = threading.Lock()

    def serve(seed: int) -> None:
        rng = random.Random(seed)
        mine = 0
        for _ in range(300):
            size = rng.randint(1, 10)
            if writer.submit(batch(size)):
                mine += size
        with lock:
            accepted.append(mine)

    threads = [threading.Thread(target=serve, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    assert writer.written_rows == sum(accepted) == log.count("churn")
    assert writer.failed_rows == 0 and writer.pending_rows == 0
