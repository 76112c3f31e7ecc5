"""The tracking SDK, one suite run three ways: local SQLite, local PostgreSQL, remote server."""

from __future__ import annotations

import asyncio
import math
import sys
import threading
import uuid
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from modelyard.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    NoActiveRun,
    NotFound,
)
from modelyard.tracking import Metric, RunStatus


@pytest.fixture
def exp() -> str:
    return f"exp-{uuid.uuid4().hex[:10]}"


def test_run_records_params_metrics_tags_and_status(sdk: ModuleType, exp: str) -> None:
    with sdk.start_run(experiment=exp, run_name="lr-baseline", tags={"team": "risk"}) as run:
        run.log_params({"C": 1.0, "penalty": "l2"})
        run.log_metric("auc", 0.91, step=1)
        run.log_metrics({"loss": 0.3, "f1": 0.8}, step=1)
        assert sdk.active_run() is run
    assert sdk.active_run() is None
    stored = sdk.get_run(run.id)
    assert stored.name == "lr-baseline"
    assert stored.experiment_name == exp
    assert stored.status is RunStatus.FINISHED
    assert stored.end_time is not None and stored.end_time >= stored.start_time
    assert stored.params == {"C": "1.0", "penalty": "l2"}
    assert stored.tags == {"team": "risk"}
    assert {k: m.value for k, m in stored.metrics.items()} == {"auc": 0.91, "loss": 0.3, "f1": 0.8}


def test_module_level_calls_log_to_the_active_run(sdk: ModuleType, exp: str) -> None:
    with sdk.start_run(experiment=exp) as run:
        sdk.log_param("alpha", 0.5)
        sdk.log_metric("rmse", 1.5)
        sdk.set_tag("stage", "dev")
    stored = sdk.get_run(run.id)
    assert stored.params == {"alpha": "0.5"}
    assert stored.metrics["rmse"].value == 1.5
    assert stored.tags == {"stage": "dev"}


def test_logging_without_an_active_run_says_how_to_start_one(sdk: ModuleType) -> None:
    with pytest.raises(NoActiveRun, match="start_run"):
        sdk.log_metric("auc", 0.5)


def test_run_whose_block_raises_is_failed(sdk: ModuleType, exp: str) -> None:
    with pytest.raises(ZeroDivisionError), sdk.start_run(experiment=exp) as run:
        run.log_metric("before", 1.0)
        _ = 1 / 0
    stored = sdk.get_run(run.id)
    assert stored.status is RunStatus.FAILED
    assert stored.metrics["before"].value == 1.0


def test_run_interrupted_by_keyboard_is_killed(sdk: ModuleType, exp: str) -> None:
    with pytest.raises(KeyboardInterrupt), sdk.start_run(experiment=exp) as run:
        raise KeyboardInterrupt
    assert sdk.get_run(run.id).status is RunStatus.KILLED


def test_changing_a_param_is_a_conflict_naming_both_values(sdk: ModuleType, exp: str) -> None:
    with sdk.start_run(experiment=exp) as run:
        run.log_param("C", 1.0)
        run.log_param("C", 1.0)  # the same value again is fine
        with pytest.raises(Conflict, match=r"'1\.0'.*'2\.0'"):
            run.log_param("C", 2.0)
        with pytest.raises(Conflict):  # all or nothing: "new" is not stored either
            run.log_params({"new": 1, "C": 3})
    assert sdk.get_run(run.id).params == {"C": "1.0"}


def test_metric_history_keeps_every_point_in_step_order(sdk: ModuleType, exp: str) -> None:
    with sdk.start_run(experiment=exp) as run:
        for step in (2, 0, 1):
            run.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=1000 + step)
        run.log_metric("loss", math.nan, step=3, timestamp=2000)
        run.log_metric("loss", math.inf, step=3, timestamp=2001)
    history = sdk.get_metric_history(run.id, "loss")
    assert [m.step for m in history] == [0, 1, 2, 3, 3]
    assert history[0].value == 1.0 and history[0].timestamp == 1000
    assert math.isnan(history[3].value) and history[4].value == math.inf
    assert sdk.get_run(run.id).metrics["loss"].value == math.inf  # highest step, latest time
    assert sdk.get_metric_history(run.id, "absent") == []


def test_final_metric_is_the_highest_step_not_the_last_logged(sdk: ModuleType, exp: str) -> None:
    with sdk.start_run(experiment=exp) as run:
        run.log_metric("acc", 0.9, step=10)
        run.log_metric("acc", 0.1, step=5)
    final = sdk.get_run(run.id).metrics["acc"]
    assert (final.value, final.step) == (0.9, 10)


def test_batch_logging_is_all_or_nothing(sdk: ModuleType, exp: str) -> None:
    with sdk.start_run(experiment=exp) as run:
        points = [Metric(f"k{i % 3}", float(i), i, 1000 + i) for i in range(3000)]
        run.log_batch(params={"p": 1}, metrics=points, tags={"t": "x"})
        with pytest.raises(InvalidInput, match="'bad'"):
            run.log_batch(metrics=[Metric("ok", 1.0, 0, 0), Metric("bad", "text", 0, 0)])  # type: ignore[arg-type]
    stored = sdk.get_run(run.id)
    assert "ok" not in stored.metrics
    assert len(sdk.get_metric_history(run.id, "k1")) == 1000
    assert stored.metrics["k2"].value == 2999.0


@pytest.mark.parametrize("bad", ["", "a" * 300, "semi;colon", " padded"])
def test_invalid_metric_names_are_rejected(sdk: ModuleType, exp: str, bad: str) -> None:
    with sdk.start_run(experiment=exp) as run, pytest.raises(InvalidInput, match="metric name"):
        run.log_metric(bad, 1.0)


def test_metric_values_must_be_numbers(sdk: ModuleType, exp: str) -> None:
    with sdk.start_run(experiment=exp) as run:
        run.log_metric("np", np.float32(0.5))
        with pytest.raises(InvalidInput, match="'flag'"):
            run.log_metric("flag", True)
    assert sdk.get_run(run.id).metrics["np"].value == 0.5


def test_nested_runs_record_their_parent(sdk: ModuleType, exp: str) -> None:
    with sdk.start_run(experiment=exp, run_name="parent") as parent:
        with pytest.raises(Conflict, match="nested=True"):
            sdk.start_run(experiment=exp)
        with sdk.start_run(experiment=exp, run_name="child", nested=True) as child:
            assert sdk.active_run() is child
        assert sdk.active_run() is parent
    assert sdk.get_run(child.id).parent_id == parent.id
    children = sdk.search_runs(exp, filter=f"attributes.parent_id = '{parent.id}'")
    assert [r.id for r in children] == [child.id]


def test_parallel_threads_keep_their_own_active_run(sdk: ModuleType, exp: str) -> None:
    ids: dict[int, str] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def work(worker: int) -> None:
        try:
            with sdk.start_run(experiment=exp, run_name=f"w{worker}") as run:
                ids[worker] = run.id
                barrier.wait(timeout=30)
                for step in range(20):
                    sdk.log_metric("worker", float(worker), step=step)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for worker, run_id in ids.items():
        history = sdk.get_metric_history(run_id, "worker")
        assert len(history) == 20 and {m.value for m in history} == {float(worker)}


def test_asyncio_tasks_keep_their_own_active_run(sdk: ModuleType, exp: str) -> None:
    async def task(name: str) -> str:
        with sdk.start_run(experiment=exp, run_name=name) as run:
            await asyncio.sleep(0.01)
            assert sdk.active_run() is run
            return str(run.id)

    async def main() -> list[str]:
        return list(await asyncio.gather(task("a"), task("b")))

    first, second = asyncio.run(main())
    assert first != second


def test_search_filters_orders_and_pages(sdk: ModuleType, exp: str) -> None:
    for i in range(7):
        with sdk.start_run(experiment=exp, run_name=f"r{i}") as run:
            run.log_params({"penalty": "l2" if i % 2 == 0 else "l1", "i": i})
            run.log_metric("auc", 0.85 + i * 0.02)
    found = sdk.search_runs(
        experiment=exp,
        filter="metrics.auc > 0.9 and params.penalty = 'l2'",
        order_by=["metrics.auc desc"],
    )
    assert [r.name for r in found] == ["r6", "r4"]
    either = sdk.search_runs(
        exp,
        filter="params.i = '0' or attributes.run_name like 'r5%'",
        order_by=["attributes.run_name"],
    )
    assert [r.name for r in either] == ["r0", "r5"]
    pages, token = [], None
    while True:
        page = sdk.search_runs(exp, order_by=["metrics.auc asc"], max_results=3, page_token=token)
        pages.append([r.name for r in page])
        token = page.next_page_token
        if token is None:
            break
    assert pages == [["r0", "r1", "r2"], ["r3", "r4", "r5"], ["r6"]]


def test_search_runs_without_a_metric_sort_last(sdk: ModuleType, exp: str) -> None:
    with sdk.start_run(experiment=exp, run_name="none"):
        pass
    with sdk.start_run(experiment=exp, run_name="some") as run:
        run.log_metric("auc", 0.5)
    for direction in ("asc", "desc"):
        names = [r.name for r in sdk.search_runs(exp, order_by=[f"metrics.auc {direction}"])]
        assert names == ["some", "none"]


def test_malformed_filter_points_at_the_offending_token(sdk: ModuleType, exp: str) -> None:
    sdk.create_experiment(exp)
    with pytest.raises(InvalidInput, match=r"position 12") as info:
        sdk.search_runs(exp, filter="metrics.auc 0.9")
    assert "^" in str(info.value)


def test_search_results_as_a_dataframe(sdk: ModuleType, exp: str) -> None:
    with sdk.start_run(experiment=exp, run_name="only") as run:
        run.log_params({"C": 1})
        run.log_metric("auc", 0.7)
    frame = sdk.search_runs(exp).to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert frame.loc[0, "run_name"] == "only"
    assert frame.loc[0, "metrics.auc"] == 0.7
    assert frame.loc[0, "params.C"] == "1"


def test_compare_runs_marks_differences(sdk: ModuleType, exp: str) -> None:
    ids = []
    for c, auc in ((1.0, 0.9), (2.0, 0.9)):
        with sdk.start_run(experiment=exp) as run:
            run.log_params({"C": c, "penalty": "l2"})
            run.log_metrics({"auc": auc, "loss": c / 10})
            ids.append(run.id)
    comparison = sdk.compare_runs(ids)
    assert comparison.params == {"C": ("1.0", "2.0"), "penalty": ("l2", "l2")}
    assert comparison.differing_params == {"C"}
    assert comparison.differing_metrics == {"loss"}
    frame = comparison.to_pandas()
    assert bool(frame.loc[("params", "C"), "differs"]) is True
    assert bool(frame.loc[("metrics", "auc"), "differs"]) is False


def test_deleted_runs_are_hidden_and_restorable(sdk: ModuleType, exp: str) -> None:
    with sdk.start_run(experiment=exp) as run:
        run.log_metric("auc", 0.5)
    sdk.delete_run(run.id)
    assert sdk.search_runs(exp) == []
    assert [r.id for r in sdk.search_runs(exp, view="deleted")] == [run.id]
    assert sdk.get_run(run.id).lifecycle == "deleted"
    with pytest.raises(Conflict, match="deleted"):
        run.log_metric("auc", 0.6)
    sdk.restore_run(run.id)
    assert [r.id for r in sdk.search_runs(exp)] == [run.id]


def test_deleted_experiments_hide_their_runs_until_restored(sdk: ModuleType, exp: str) -> None:
    with sdk.start_run(experiment=exp):
        pass
    sdk.delete_experiment(exp)
    assert exp not in {e.name for e in sdk.list_experiments()}
    assert exp in {e.name for e in sdk.list_experiments(view="deleted")}
    assert sdk.search_runs() == [] or all(r.experiment_name != exp for r in sdk.search_runs())
    with pytest.raises(Conflict, match="restore"):
        sdk.start_run(experiment=exp)
    sdk.restore_experiment(exp)
    assert len(sdk.search_runs(exp)) == 1


def test_experiments_are_created_once(sdk: ModuleType, exp: str) -> None:
    created = sdk.create_experiment(exp, description="churn models", tags={"owner": "risk"})
    with pytest.raises(AlreadyExists):
        sdk.create_experiment(exp)
    fetched = sdk.get_experiment(exp)
    assert fetched == sdk.get_experiment(created.id)
    assert fetched.tags == {"owner": "risk"} and fetched.description == "churn models"
    with pytest.raises(NotFound):
        sdk.get_experiment(f"{exp}-missing")
    with pytest.raises(InvalidInput, match="read as an id"):
        sdk.create_experiment("2024")


def test_missing_run_is_not_found(sdk: ModuleType) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        sdk.get_run(uuid.uuid4().hex)


def test_artifacts_round_trip_with_hash_check(sdk: ModuleType, exp: str, tmp_path: Path) -> None:
    report = tmp_path / "confusion.png"
    report.write_bytes(bytes(range(256)) * 1000)
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    with sdk.start_run(experiment=exp) as run:
        stored = run.log_artifact(report)
        run.log_artifacts(folder, artifact_path="plots")
        run.log_text("hello", "notes/readme.txt")
        run.log_dict({"auc": 0.9}, "eval/result.json")
        run.log_artifact(report)  # identical content at the same path: accepted
        other = tmp_path / "other" / "confusion.png"
        other.parent.mkdir()
        other.write_bytes(b"different")
        with pytest.raises(Conflict, match="immutable"):
            run.log_artifact(other)
    paths = [a.path for a in sdk.list_artifacts(run.id)]
    assert paths == [
        "confusion.png",
        "eval/result.json",
        "notes/readme.txt",
        "plots/a.txt",
        "plots/sub/b.txt",
    ]
    out = sdk.download_artifact(run.id, "confusion.png", tmp_path / "out.png")
    assert out.read_bytes() == report.read_bytes()
    assert stored.size == 256_000
    assert sdk.tracker().read_artifact(run.id, "notes/readme.txt") == b"hello"
    with pytest.raises(NotFound):
        sdk.download_artifact(run.id, "absent.txt", tmp_path)
    with pytest.raises(InvalidInput, match=r"\.\."):
        run.log_text("x", "../escape.txt")


def test_datasets_are_recorded_by_content_hash(sdk: ModuleType, exp: str) -> None:
    frame = pd.DataFrame({"age": [30, 40], "plan": ["a", "b"]})
    with sdk.start_run(experiment=exp) as run:
        first = run.log_dataset(frame, name="train", role="training")
        run.log_dataset(frame.copy(), name="train", role="training")  # same content: fine
        run.log_dataset(np.arange(6.0).reshape(3, 2), name="holdout", role="evaluation")
        with pytest.raises(Conflict):
            run.log_dataset(frame.assign(age=[31, 40]), name="train", role="training")
    stored = sdk.get_run(run.id)
    assert [(d.name, d.role) for d in stored.datasets] == [
        ("train", "training"),
        ("holdout", "evaluation"),
    ]
    train = stored.datasets[0]
    assert train.digest == first.digest and len(train.digest) == 64
    assert train.schema == {"age": "int64", "plan": frame["plan"].dtype.name}
    assert (train.num_rows, train.num_columns) == (2, 2)


def test_runs_capture_their_environment(sdk: ModuleType, exp: str) -> None:
    with sdk.start_run(experiment=exp) as run:
        pass
    environment = sdk.get_run(run.id).environment
    assert environment is not None
    assert environment["python"]["version"] == ".".join(map(str, sys.version_info[:3]))
    assert "pytest" in environment["packages"]
    assert environment["command"]["argv"] == sys.argv


def test_notes_and_tags_can_change(sdk: ModuleType, exp: str) -> None:
    with sdk.start_run(experiment=exp, note="first try") as run:
        run.set_tags({"a": "1", "b": "2"})
        run.set_tag("a", "3")
        run.delete_tag("b")
        with pytest.raises(NotFound):
            run.delete_tag("b")
    assert sdk.get_run(run.id).note == "first try"
    run.set_note("second thoughts")
    stored = sdk.get_run(run.id)
    assert stored.note == "second thoughts" and stored.tags == {"a": "3"}


def test_logging_to_a_missing_run_is_not_found(sdk: ModuleType) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        sdk.tracker().backend.log_batch(uuid.uuid4().hex, metrics=[Metric("m", 1.0, 0, 0)])
