"""Register the serving benchmark's model on MLflow, run by `bench/serving.py` in MLflow's venv.

The mirror of `_serving_worker.py`'s `log`: the same model, fitted the same way, logged
with `mlflow.sklearn.log_model` and registered as `bc` with the alias `champion`, so that
`mlflow models serve -m models:/bc@champion` serves it. Like modelyard's `/invocations`,
it answers with MLflow's default, `predict` (the label).
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn

MODEL = "bc"
# The distributions modelyard records for a scikit-learn model, pinned the same way; this
# also spares MLflow inferring them by loading the model in a subprocess.
PACKAGES = ("scikit-learn", "skops", "numpy", "scipy", "pandas")


def fitted_model() -> tuple[Any, Any, Any]:
    """The breast-cancer logistic regression, fitted on the 30 named columns, and its data."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    return LogisticRegression(max_iter=5000).fit(features, target), features, target


def main() -> None:
    spec = json.loads(sys.argv[1])
    folder = Path(spec["folder"])
    mlflow.set_tracking_uri(spec["db_url"])
    mlflow.create_experiment("bench", artifact_location=(folder / "artifacts").as_uri())
    mlflow.set_experiment("bench")
    model, features, _ = fitted_model()
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name=MODEL,
            registered_model_name=MODEL,
            input_example=features[:5],
            pip_requirements=[f"{name}=={version(name)}" for name in PACKAGES],
        )
    registered = info.registered_model_version
    mlflow.MlflowClient().set_registered_model_alias(MODEL, "champion", str(registered))
    print(json.dumps({"version": int(registered)}), flush=True)


if __name__ == "__main__":
    main()
