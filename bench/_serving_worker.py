"""One serving-benchmark step with the project's interpreter, run by `bench/serving.py`.

Argument: a JSON spec (`workload` and its inputs). Prints one JSON object on stdout.
`log` registers the model in a fresh modelyard home; `rows` writes the batch input file;
`pandas` and `score` time the batch workloads. The model is fitted the same way
everywhere (`fitted_model`), so every server and every batch side predicts alike.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

MODEL = "bc"
BATCH_ROWS = 65_536  # pyarrow's default record batch size, given explicitly


def fitted_model() -> tuple[Any, Any, Any]:
    """The breast-cancer logistic regression, fitted on the 30 named columns, and its data."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    return LogisticRegression(max_iter=5000).fit(features, target), features, target


def request_row(model: Any, features: Any) -> int:
    """The row every request sends: one the model is unsure about (P(1) near 0.7), so a
    wrong model cannot give the expected answer by luck."""
    return int(abs(model.predict_proba(features)[:, 1] - 0.7).argmin())


def run_log(spec: dict[str, Any]) -> dict[str, Any]:
    """Register the model (with its ONNX export) in a fresh home; point `champion` at it."""
    import modelyard as my

    my.configure(home=spec["home"])
    model, features, target = fitted_model()
    with my.start_run("bench"):
        version = my.log_model(model, MODEL, training_data=(features, target), onnx=True)
    my.registry.set_alias(MODEL, "champion", version.version)
    return {"version": version.version}


def run_rows(spec: dict[str, Any]) -> dict[str, Any]:
    """`rows` breast-cancer rows resampled with 1 % noise, 30 float columns, as Parquet."""
    import numpy as np
    import pandas as pd

    _, features, _ = fitted_model()
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(features), spec["rows"])
    values = features.to_numpy()[picks] * rng.normal(1.0, 0.01, (spec["rows"], features.shape[1]))
    frame = pd.DataFrame(values, columns=features.columns)
    frame.to_parquet(spec["path"], index=False)
    return {"rows": len(frame)}


def run_pandas(spec: dict[str, Any]) -> dict[str, Any]:
    """The floor: read the file batch by batch, `model.predict`, write the predictions."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    model, _, _ = fitted_model()
    start = time.perf_counter()
    rows = 0
    with pq.ParquetWriter(spec["out"], pa.schema([("prediction", pa.int64())])) as writer:
        for batch in pq.ParquetFile(spec["path"]).iter_batches(batch_size=BATCH_ROWS):
            predictions = model.predict(batch.to_pandas()).astype("int64")
            writer.write_table(pa.table({"prediction": predictions}))
            rows += len(predictions)
    return {"seconds": time.perf_counter() - start, "rows_scored": rows}


def run_score(spec: dict[str, Any]) -> dict[str, Any]:
    """modelyard's batch scoring of the champion, in-process or on a local Dask cluster."""
    import modelyard as my

    my.configure(home=spec["home"])
    from modelyard.serving import score

    start = time.perf_counter()
    report = score(f"{MODEL}@champion", spec["path"], spec["out"], dask=spec["dask"])
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "runtime": report.runtime,
        "rows_scored": report.rows_scored,
        "rows_rejected": report.rows_rejected,
    }


WORKLOADS = {"log": run_log, "rows": run_rows, "pandas": run_pandas, "score": run_score}


def main() -> None:
    spec = json.loads(sys.argv[1])
    Path(spec.get("home") or ".").mkdir(parents=True, exist_ok=True)
    result = WORKLOADS[spec["workload"]](spec)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
