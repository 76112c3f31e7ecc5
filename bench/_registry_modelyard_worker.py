"""One registry workload on modelyard, run by `bench/registry.py` with the project's interpreter.

Argument: a JSON spec (workload, folder, sizes). Prints one JSON object on stdout.
The mirror of `_registry_mlflow_worker.py`; only the `cold` workload is timed from outside.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import modelyard as my

MODEL = "lr"
URI = f"models:/{MODEL}@champion"
# The same model logged once more with its ONNX export, for the onnx=True load figures.
ONNX_MODEL = "lr_onnx"
PACKAGES = ("scikit-learn", "skops", "numpy", "scipy")  # checked in the stored manifest


def fitted_model() -> tuple[Any, Any]:
    """The logistic regression every workload uses, and its data."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    features, target = load_breast_cancer(return_X_y=True)
    return LogisticRegression(max_iter=10_000).fit(features, target), features


def installed_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in PACKAGES}


def run_register(spec: dict[str, Any]) -> dict[str, Any]:
    """(r1) `versions` x log_model + register in one run, then point `champion` at the last."""
    model, features = fitted_model()
    example = features[:5]
    my.create_experiment("bench")
    with my.start_run(experiment="bench"):
        calls = []
        for i in range(spec["versions"]):
            start = time.perf_counter()
            version = my.log_model(
                model, MODEL, artifact_path=f"{MODEL}-{i:03d}", input_example=example
            )
            calls.append(time.perf_counter() - start)
    assert version.version == spec["versions"], f"registered {version.version} versions"
    my.registry.set_alias(MODEL, "champion", version.version)
    with my.start_run(experiment="bench"):
        exported = my.log_model(model, ONNX_MODEL, input_example=example, onnx=True)
    my.registry.set_alias(ONNX_MODEL, "champion", exported.version)
    loaded = my.load_model(URI)
    expected = model.predict(features)
    if not (loaded.predict(features) == expected).all():
        raise SystemExit("the model loaded by alias predicts differently from the original")
    return {
        "versions": len(calls),
        "seconds": sum(calls),
        "first_seconds": calls[0],
        "rest_median_seconds": statistics.median(calls[1:] or calls),
        "requirements": recorded_requirements(MODEL, 1, Path(spec["folder"])),
        "installed": installed_versions(),
        "predictions": digest(expected),
        "row": features[:1].tolist(),
        "row_prediction": expected[:1].tolist(),
    }


def digest(predictions: Any) -> str:
    return hashlib.sha256(predictions.astype("int64").tobytes()).hexdigest()


def recorded_requirements(name: str, version: int, folder: Path) -> dict[str, str]:
    """The `requirements` of the version's stored manifest.json, read from the file itself."""
    stored = my.registry.get_version(name, version)
    assert stored.run_id is not None
    path = my.download_artifact(stored.run_id, f"{name}-{version - 1:03d}/manifest.json", folder)
    requirements: dict[str, str] = json.loads(path.read_bytes())["requirements"]
    return requirements


def load_champion(spec: dict[str, Any]) -> Any:
    """The champion, on its native runtime or (loader `onnx`) its ONNX copy on ONNX Runtime."""
    if spec["loader"] == "onnx":
        return my.load_model(f"models:/{ONNX_MODEL}@champion", onnx=True)
    return my.load_model(URI)


def run_warm(spec: dict[str, Any]) -> dict[str, Any]:
    """(r2) resolve `champion`, load and predict one row, `loads` times after one warm-up."""
    import numpy as np

    row = np.asarray(spec["row"])
    samples = []
    for _ in range(spec["loads"] + 1):
        start = time.perf_counter()
        prediction = load_champion(spec).predict(row)
        samples.append(time.perf_counter() - start)
    return {"seconds": statistics.median(samples[1:]), "prediction": prediction.tolist()}


def run_cold(spec: dict[str, Any]) -> dict[str, Any]:
    """(r3) the first prediction of a fresh process; the parent times it from spawn."""
    import numpy as np

    return {"prediction": load_champion(spec).predict(np.asarray(spec["row"])).tolist()}


WORKLOADS = {"register": run_register, "warm": run_warm, "cold": run_cold}


def main() -> None:
    spec = json.loads(sys.argv[1])
    os.chdir(spec["folder"])
    my.configure(home=spec["folder"])
    result = WORKLOADS[spec["workload"]](spec)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
