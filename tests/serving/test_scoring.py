"""Batch scoring: files in, predictions and rejects out, bounded memory, in process or on Dask."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from typer.testing import CliRunner

import modelyard as my
from modelyard.cli._app import app
from modelyard.errors import InvalidInput, NotFound
from modelyard.models._conform import (
    conform_table,
    conform_tensor,
    row_problems,
    tensor_row_problems,
)
from modelyard.models._signature import ColumnSpec, TensorSpec
from modelyard.serving import _scoring

ROWS = 400
# row → the column whose value is bad in it
BAD = {5: "plan", 17: "monthly", 23: "tenure", 31: "tenure", 40: "autopay"}
GOOD = [i for i in range(ROWS) if i not in BAD]
on_sqlite = pytest.mark.parametrize("sdk", ["local-sqlite"], indirect=True)


@pytest.fixture(scope="module")
def customers() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, ROWS),
            "monthly": rng.normal(60, 15, ROWS).round(2),
            "plan": rng.choice(["basic", "pro", "team"], ROWS),
            "autopay": rng.integers(0, 2, ROWS).astype(bool),
        }
    )
    target = (frame["monthly"] + rng.normal(0, 10, ROWS) > 62).to_numpy().astype(int)
    return frame, target


@pytest.fixture(scope="module")
def pipeline(customers: tuple[pd.DataFrame, np.ndarray]) -> Any:
    frame, target = customers
    columns = ColumnTransformer(
        [
            ("num", StandardScaler(), ["tenure", "monthly", "autopay"]),
            ("cat", OneHotEncoder(), ["plan"]),
        ]
    )
    return make_pipeline(columns, LogisticRegression(max_iter=500)).fit(frame, target)


@pytest.fixture
def churn(sdk: ModuleType, pipeline: Any, customers: tuple[pd.DataFrame, np.ndarray]) -> str:
    """A logged pipeline with a categorical column, as `<name>@champion`."""
    name = f"churn-{uuid.uuid4().hex[:8]}"
    with sdk.start_run():
        sdk.log_model(pipeline, name, training_data=customers)
    sdk.registry.set_alias(name, "champion", 1)
    return name


def with_bad_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` as a file would hold it, numbers as text in one column, and the `BAD` rows."""
    raw = frame.astype({"tenure": "float64", "autopay": "int64"})
    raw["monthly"] = [repr(float(v)) for v in frame["monthly"]]
    raw.loc[5, "plan"] = "platinum"
    raw.loc[17, "monthly"] = "lots"
    raw.loc[23, "tenure"] = 2.5
    raw.loc[31, "tenure"] = np.nan
    raw.loc[40, "autopay"] = 3
    return raw


def read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("sdk", ["local-sqlite", "remote"], indirect=True)
def test_every_row_is_scored_or_rejected_with_the_column_named(
    sdk: ModuleType,
    churn: str,
    pipeline: Any,
    customers: tuple[pd.DataFrame, np.ndarray],
    tmp_path: Path,
) -> None:
    frame, _ = customers
    source, destination = tmp_path / "in.parquet", tmp_path / "out.parquet"
    with_bad_rows(frame).to_parquet(source, index=False)
    report = my.serving.score(f"{churn}@champion", source, destination, chunk_rows=37)
    assert (report.rows_in, report.rows_scored, report.rows_rejected) == (ROWS, 395, 5)
    assert (report.version, report.runtime, report.executor) == (1, "native", "in-process")
    assert report.model == f"models:/{churn}/1"
    assert report.rejects == tmp_path / "out.rejects.parquet"
    out = pd.read_parquet(destination)
    assert list(out.columns) == ["row_id", "prediction", "proba_0", "proba_1", "model_version"]
    assert out["row_id"].tolist() == GOOD
    good = frame.iloc[GOOD]
    np.testing.assert_array_equal(out["prediction"], pipeline.predict(good))
    proba = pipeline.predict_proba(good)
    np.testing.assert_allclose(out[["proba_0", "proba_1"]], proba, rtol=0, atol=1e-12)
    assert (out["model_version"] == 1).all()
    rejects = pd.read_parquet(report.rejects)
    assert list(rejects.columns) == ["row_id", "reason", "tenure", "monthly", "plan", "autopay"]
    assert rejects["row_id"].tolist() == sorted(BAD)
    for row, reason in zip(rejects["row_id"], rejects["reason"], strict=True):
        assert f"column {BAD[row]!r}" in reason
    assert rejects.set_index("row_id").loc[5, "plan"] == "platinum"
    assert "unknown category 'platinum'" in rejects["reason"].iloc[0]
    assert leftovers(tmp_path) == []


@on_sqlite
def test_csv_in_and_out_gives_the_rows_parquet_gives(
    sdk: ModuleType, churn: str, customers: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    raw = with_bad_rows(customers[0])
    raw.to_parquet(tmp_path / "in.parquet", index=False)
    raw.to_csv(tmp_path / "in.csv", index=False)
    reports = [
        my.serving.score(churn, tmp_path / source, tmp_path / destination, chunk_rows=64)
        for source, destination in [
            ("in.parquet", "p.parquet"),
            ("in.csv", "c.csv"),
            ("in.parquet", "pc.csv"),
        ]
    ]
    assert [(r.rows_scored, r.rows_rejected) for r in reports] == [(395, 5)] * 3
    expected = pd.read_parquet(tmp_path / "p.parquet")
    for name in ("c.csv", "pc.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / name), expected)
    rejects = pd.read_csv(tmp_path / "c.rejects.csv")
    assert rejects["row_id"].tolist() == sorted(BAD)
    for row, reason in zip(rejects["row_id"], rejects["reason"], strict=True):
        assert f"column {BAD[row]!r}" in reason
    assert rejects.set_index("row_id").loc[17, "monthly"] == "lots"


@on_sqlite
def test_ids_versions_and_uris_name_what_was_scored(
    sdk: ModuleType,
    churn: str,
    pipeline: Any,
    customers: tuple[pd.DataFrame, np.ndarray],
    tmp_path: Path,
) -> None:
    frame, _ = customers
    source = tmp_path / "in.parquet"
    frame.assign(customer=[f"c{i}" for i in range(ROWS)]).to_parquet(source, index=False)
    by_id = my.serving.score(churn, source, tmp_path / "ids.parquet", id_column="customer")
    assert by_id.model == f"models:/{churn}/1"
    ids = pd.read_parquet(tmp_path / "ids.parquet")
    assert ids["row_id"].tolist() == [f"c{i}" for i in range(ROWS)]
    assert by_id.rejects is None and not (tmp_path / "ids.rejects.parquet").exists()
    run_id = sdk.registry.get_version(churn, 1).run_id
    by_run = my.serving.score(
        f"runs:/{run_id}/{churn}", source, tmp_path / "run.csv", id_column="customer"
    )
    assert by_run.version is None
    assert read(tmp_path / "run.csv")["model_version"].isna().all()
    frame.iloc[::2].to_parquet(tmp_path / "half.parquet")  # pandas stores its index as a column
    half = my.serving.score(churn, tmp_path / "half.parquet", tmp_path / "half.csv")
    assert (half.rows_scored, half.rows_rejected) == (ROWS // 2, 0)
    sdk.registry.create_model("empty")
    with pytest.raises(NotFound, match="no versions"):
        my.serving.score("empty", source, tmp_path / "never.parquet")
    assert not (tmp_path / "never.parquet").exists()


@on_sqlite
def test_dask_writes_the_same_files_as_in_process(
    sdk: ModuleType, churn: str, customers: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    source = tmp_path / "in.parquet"
    with_bad_rows(customers[0]).to_parquet(source, index=False)
    local = my.serving.score(churn, source, tmp_path / "local.parquet", chunk_rows=53)
    remote = my.serving.score(churn, source, tmp_path / "dask.parquet", chunk_rows=53, dask="local")
    assert remote.executor.startswith("tcp://127.0.0.1:")
    assert (remote.rows_scored, remote.rows_rejected) == (local.rows_scored, local.rows_rejected)
    for name in ("{}.parquet", "{}.rejects.parquet"):
        ours = pq.read_table(tmp_path / name.format("local"))
        theirs = pq.read_table(tmp_path / name.format("dask"))
        assert theirs.equals(ours), name


@on_sqlite
def test_a_file_larger_than_the_memory_cap_is_scored(sdk: ModuleType, tmp_path: Path) -> None:
    """The cap is on address space (RLIMIT_AS): what the process maps once warmed up, plus
    64 MB. The file decodes to ~300 MB, and reading it whole under the same cap fails, so the
    cap binds. Arrow's own allocator and glibc's per-thread arenas reserve address space they
    do not use, so the subprocess runs on the system allocator with two arenas, which makes
    the cap mean memory. The peak growth of heap memory while scoring is checked as well."""
    x, y = load_breast_cancer(as_frame=True, return_X_y=True)
    with sdk.start_run():
        model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
        sdk.log_model(model, "cancer", input_example=x[:5])
    block = pa.Table.from_pandas(pd.concat([x] * 100, ignore_index=True), preserve_index=False)
    source, rows = tmp_path / "big.parquet", 0
    with pq.ParquetWriter(source, block.schema) as writer:
        while rows < 1_300_000:
            writer.write_table(block)
            rows += block.num_rows
    decoded = rows * x.shape[1] * 8
    pq.write_table(block.slice(0, 1000), tmp_path / "small.parquet")
    env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system", "MALLOC_ARENA_MAX": "2"}
    env |= {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    script = Path(__file__).with_name("_memory_cap.py")
    home = str(sdk.get_settings().home)
    args = [home, "cancer", *(str(tmp_path / f) for f in ("small.parquet", source.name))]
    args += [str(tmp_path / "out.parquet"), "64"]
    done = subprocess.run(
        [sys.executable, str(script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout.splitlines()[-1])
    assert outcome.get("rows_scored") == rows, outcome
    assert outcome.get("read") == "MemoryError", outcome  # the cap does bind
    assert outcome["growth"] < decoded / 2, outcome
    assert pq.ParquetFile(tmp_path / "out.parquet").metadata.num_rows == rows


@on_sqlite
def test_the_command_line_scores_and_reports(
    sdk: ModuleType, churn: str, customers: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    with_bad_rows(customers[0]).to_csv(tmp_path / "in.csv", index=False)
    home = str(sdk.get_settings().home)
    runner = CliRunner(env={"COLUMNS": "250"})
    args = ["--home", home, "score", f"{churn}@champion", str(tmp_path / "in.csv")]
    result = runner.invoke(app, [*args, str(tmp_path / "out.parquet"), "--chunk-rows", "100"])
    assert result.exit_code == 0, result.output
    assert "scored 395 of 400 rows with version 1" in result.stdout
    assert "5 rejected" in result.stdout
    result = runner.invoke(
        app, [*args, str(tmp_path / "out.csv"), "--json", "--rejects", str(tmp_path / "bad.csv")]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["rows_scored"], report["rows_rejected"]) == (395, 5)
    assert report["rejects"] == str(tmp_path / "bad.csv")
    assert len(pd.read_csv(tmp_path / "bad.csv")) == 5


@on_sqlite
def test_bad_jobs_fail_up_front_and_leave_no_output(
    sdk: ModuleType,
    churn: str,
    customers: tuple[pd.DataFrame, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frame, _ = customers
    source = tmp_path / "in.parquet"
    frame.to_parquet(source, index=False)
    destination = tmp_path / "out.parquet"
    with pytest.raises(InvalidInput, match=r"\.parquet, \.pq or \.csv"):
        my.serving.score(churn, tmp_path / "in.json", destination)
    with pytest.raises(InvalidInput, match=r"\.parquet, \.pq or \.csv"):
        my.serving.score(churn, source, tmp_path / "out.xlsx")
    with pytest.raises(InvalidInput, match="no such input file"):
        my.serving.score(churn, tmp_path / "missing.csv", destination)
    frame.drop(columns="plan").to_csv(tmp_path / "partial.csv", index=False)
    with pytest.raises(InvalidInput, match=r"missing column\(s\) 'plan'"):
        my.serving.score(churn, tmp_path / "partial.csv", destination)
    destination.write_bytes(b"an earlier run")
    calls = []

    def failing(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the model broke")
        return real(*args)

    real = _scoring.score_chunk
    monkeypatch.setattr(_scoring, "score_chunk", failing)
    with pytest.raises(RuntimeError, match="the model broke"):
        my.serving.score(churn, source, destination, chunk_rows=50)
    assert destination.read_bytes() == b"an earlier run"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "home",
        "in.parquet",
        "out.parquet",
        "partial.csv",
    ]


@on_sqlite
def test_an_empty_file_gives_an_empty_output(
    sdk: ModuleType, churn: str, customers: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    customers[0].iloc[:0].to_csv(tmp_path / "empty.csv", index=False)
    report = my.serving.score(churn, tmp_path / "empty.csv", tmp_path / "out.parquet")
    assert (report.rows_in, report.rows_scored, report.rejects) == (0, 0, None)
    assert pd.read_parquet(tmp_path / "out.parquet").columns[0] == "row_id"


@on_sqlite
def test_the_onnx_export_runs_when_the_version_has_one(sdk: ModuleType, tmp_path: Path) -> None:
    x, y = load_breast_cancer(as_frame=True, return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    with sdk.start_run():
        sdk.log_model(model, "cancer", input_example=x[:20], onnx=True)
    x.to_parquet(tmp_path / "in.parquet", index=False)
    fast = my.serving.score(
        "cancer", tmp_path / "in.parquet", tmp_path / "onnx.parquet", chunk_rows=200
    )
    slow = my.serving.score(
        "cancer/1", tmp_path / "in.parquet", tmp_path / "sk.parquet", runtime="native"
    )
    assert (fast.runtime, slow.runtime) == ("onnx", "native")
    onnx, native = (
        pd.read_parquet(tmp_path / "onnx.parquet"),
        pd.read_parquet(tmp_path / "sk.parquet"),
    )
    assert list(onnx.columns) == list(native.columns)
    np.testing.assert_array_equal(onnx["prediction"], model.predict(x))
    np.testing.assert_allclose(
        onnx[["proba_0", "proba_1"]], native[["proba_0", "proba_1"]], atol=1e-4
    )


# -- per-row checks: the same verdicts as conform_table, row by row --------------------------

SPECS = [
    ColumnSpec(name="count", dtype="int64"),
    ColumnSpec(name="amount", dtype="float64", nullable=True),
    ColumnSpec(name="plan", dtype="string", categories=["a", "b"]),
    ColumnSpec(name="flag", dtype="bool"),
]
ANY_VALUE = st.one_of(
    st.integers(-1000, 1000),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 1)),
    st.sampled_from(["a", "b", "c", "3", "2.5", "true", "x", "", "inf"]),
    st.booleans(),
    st.none(),
)
FITTING = {
    "count": st.one_of(st.integers(-1000, 1000), st.sampled_from([2.0, "7"])),
    "amount": st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.none(), st.just("2.5")),
    "plan": st.sampled_from(["a", "b"]),
    "flag": st.one_of(st.booleans(), st.sampled_from([0, 1])),
}


@st.composite
def frames(draw: st.DrawFn, rows: int = 12) -> pd.DataFrame:
    """Frames whose values mostly fit their column, some not; object columns or inferred."""
    columns = {}
    for spec in SPECS:
        fitting = FITTING[spec.name]
        value = st.integers(0, 5).flatmap(lambda k, f=fitting: ANY_VALUE if k == 0 else f)
        values = draw(st.lists(value, min_size=rows, max_size=rows))
        columns[spec.name] = pd.Series(values, dtype=object if draw(st.booleans()) else None)
    return pd.DataFrame(columns)


@settings(max_examples=150, deadline=None)
@given(frames())
def test_row_problems_keeps_what_conform_table_accepts_and_names_each_bad_row(
    frame: pd.DataFrame,
) -> None:
    reasons = row_problems(SPECS, frame)
    good = [i for i, r in enumerate(reasons) if r is None]
    conform_table(SPECS, frame.iloc[good])
    for row in (i for i, r in enumerate(reasons) if r is not None):
        with pytest.raises(InvalidInput):
            conform_table(SPECS, frame.iloc[[row]])
        named = [s.name for s in SPECS if f"column {s.name!r}" in reasons.iloc[row]]
        assert named, reasons.iloc[row]


def test_row_problems_refuses_missing_columns_for_the_whole_file() -> None:
    frame = pd.DataFrame({"count": [1], "plan": ["a"], "flag": [True], "extra": [0]})
    with pytest.raises(InvalidInput, match=r"missing column\(s\) 'amount'.*unexpected.*'extra'"):
        row_problems(SPECS, frame)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["float32", "int64", "string"]),
    st.booleans(),
    st.lists(st.lists(ANY_VALUE, min_size=3, max_size=3), min_size=1, max_size=8),
)
def test_tensor_row_problems_agree_with_conform_tensor(
    dtype: str, nullable: bool, rows: list[list[Any]]
) -> None:
    spec = TensorSpec(dtype=dtype, shape=[-1, 3], nullable=nullable)
    data = np.array(rows, dtype=object)
    reasons = tensor_row_problems(spec, data)
    conform_tensor(spec, data[[i for i, r in enumerate(reasons) if r is None]])
    for row in (i for i, r in enumerate(reasons) if r is not None):
        with pytest.raises(InvalidInput):
            conform_tensor(spec, data[[row]])
