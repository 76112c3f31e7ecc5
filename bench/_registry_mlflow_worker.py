"""One registry workload on MLflow, run by `bench/registry.py` with the MLflow venv's interpreter.

The mirror of `_registry_modelyard_worker.py`: the same spec in, the same JSON out, the
same calls as MLflow spells them. Only the `cold` workload is timed from outside.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# MLflow refuses to deserialize any model, skops included, unless this is set.
os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"

import mlflow

MODEL = "lr"
URI = f"models:/{MODEL}@champion"
# The distributions modelyard records for a scikit-learn model, pinned the same way.
PACKAGES = ("scikit-learn", "skops", "numpy", "scipy")


def fitted_model() -> tuple[Any, Any]:
    """The logistic regression every workload uses, and its data."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    features, target = load_breast_cancer(return_X_y=True)
    return LogisticRegression(max_iter=10_000).fit(features, target), features


def import_serializer() -> None:
    """Both tools store scikit-learn models with skops, whose import scans every scikit-learn
    module (seconds, more with torch installed): a cost of the library and of what else the
    venv holds, not of either tool, so it is paid before the clock. (r3) includes it."""
    import skops.io  # noqa: F401


def installed_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in PACKAGES}


def run_register(spec: dict[str, Any]) -> dict[str, Any]:
    """(r1) `versions` x log_model + register in one run, then point `champion` at the last."""
    import mlflow.sklearn

    model, features = fitted_model()
    example = features[:5]
    import_serializer()
    installed = installed_versions()
    pins = [f"{name}=={v}" for name, v in installed.items()] if spec["pin"] else None
    folder = Path(spec["folder"])
    mlflow.create_experiment("bench", artifact_location=(folder / "artifacts").as_uri())
    mlflow.set_experiment("bench")
    client = mlflow.MlflowClient()
    with mlflow.start_run():
        calls = []
        for i in range(spec["versions"]):
            start = time.perf_counter()
            mlflow.sklearn.log_model(
                model,
                name=f"{MODEL}-{i:03d}",
                registered_model_name=MODEL,
                input_example=example,
                pip_requirements=pins,
            )
            calls.append(time.perf_counter() - start)
    last = max(int(v.version) for v in client.search_model_versions(f"name='{MODEL}'"))
    assert last == spec["versions"], f"registered {last} versions"
    client.set_registered_model_alias(MODEL, "champion", str(last))
    loaded = mlflow.pyfunc.load_model(URI)
    expected = model.predict(features)
    if not (loaded.predict(features) == expected).all():
        raise SystemExit("the model loaded by alias predicts differently from the original")
    return {
        "versions": len(calls),
        "seconds": sum(calls),
        "first_seconds": calls[0],
        "rest_median_seconds": statistics.median(calls[1:] or calls),
        "requirements": recorded_requirements(f"models:/{MODEL}/1"),
        "installed": installed,
        "predictions": digest(expected),
        "row": features[:1].tolist(),
        "row_prediction": expected[:1].tolist(),
    }


def digest(predictions: Any) -> str:
    return hashlib.sha256(predictions.astype("int64").tobytes()).hexdigest()


def recorded_requirements(uri: str) -> dict[str, str]:
    """`name: version` for each `name==version` line of the version's stored requirements.txt."""
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    lines = (folder / "requirements.txt").read_text().splitlines()
    pins = [line.split("==", 1) for line in lines if "==" in line]
    return {name.strip(): version.strip() for name, version in pins}


def loader(name: str) -> Callable[[str], Any]:
    """`pyfunc` checks inputs against the signature, as modelyard does; `sklearn` does not."""
    load: Callable[[str], Any] = importlib.import_module(f"mlflow.{name}").load_model
    return load


def run_warm(spec: dict[str, Any]) -> dict[str, Any]:
    """(r2) resolve `champion`, load and predict one row, `loads` times after one warm-up."""
    import numpy as np

    load, row = loader(spec["loader"]), np.asarray(spec["row"])
    samples = []
    for _ in range(spec["loads"] + 1):
        start = time.perf_counter()
        prediction = load(URI).predict(row)
        samples.append(time.perf_counter() - start)
    return {"seconds": statistics.median(samples[1:]), "prediction": prediction.tolist()}


def run_cold(spec: dict[str, Any]) -> dict[str, Any]:
    """(r3) the first prediction of a fresh process; the parent times it from spawn."""
    import numpy as np

    return {"prediction": loader(spec["loader"])(URI).predict(np.asarray(spec["row"])).tolist()}


WORKLOADS = {"register": run_register, "warm": run_warm, "cold": run_cold}


def main() -> None:
    spec = json.loads(sys.argv[1])
    os.chdir(spec["folder"])
    mlflow.set_tracking_uri(spec["db_url"])
    result = WORKLOADS[spec["workload"]](spec)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
