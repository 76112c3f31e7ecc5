"""Real versions to deploy for the rollout tests (store, CLI, REST): three tiny logistic
regressions logged as versions 1..3 of `churn`, `champion` on 1 and `challenger` on 2, and a
snapshot of every table a deployment change may touch, to check a refusal changed nothing.
Every function works on the SDK as `_monitored.configured` sets it."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sqlalchemy import text

import modelyard as my
from modelyard.serving._ids import new_ids
from modelyard.serving._records import PredictionRow
from modelyard.store import MetadataStore
from modelyard.tracking._entities import now_ms

TABLES = {  # table: the columns it is ordered by
    "deployments": "id",
    "deployment_events": "id",
    "registered_models": "id",
    "model_aliases": "model_id, alias",
    "model_alias_events": "id",
    "model_approvals": "id",
}


def log_versions(name: str = "churn", count: int = 3) -> list[int]:
    """Versions 1..`count` of `name`, `champion` on 1 and `challenger` on 2."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(60, 3)), columns=["tenure", "spend", "calls"])
    label = (frame["tenure"] - frame["calls"] > 0).astype(int)
    versions = []
    for c in range(count):
        fitted = LogisticRegression(C=0.5 + c).fit(frame, label)
        with my.start_run(f"{name}-training") as run:
            versions.append(my.log_model(fitted, name, run=run, input_example=frame.head(5)))
    my.registry.set_alias(name, "champion", 1)
    my.registry.set_alias(name, "challenger", 2)
    return [v.version for v in versions]


def stored(metadata: MetadataStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the deployment and alias tables, in a stable order."""
    with metadata.read() as conn:
        return {
            t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY {order}"))]
            for t, order in TABLES.items()
        }


def serve_traffic(deployment: str, versions: dict[str, int], per_variant: int) -> None:
    """`per_variant` labelled answers of each variant of `deployment` (alternating, made
    now), as a server writes them: the primary right half the time, every other variant
    always right."""
    at = now_ms()
    count = per_variant * len(versions)
    rows, labels = [], []
    for i, prediction_id in enumerate(new_ids(count, at)):
        variant = list(versions)[i % len(versions)]
        predicted = i % 3 == 0
        rows.append(
            PredictionRow(
                id=prediction_id,
                model="churn",
                version=versions[variant],
                at_ms=at,
                latency_ms=3.0 + i % 5,
                inputs=orjson.dumps({"tenure": 0.1, "spend": 0.2, "calls": 0.3}).decode(),
                outputs=orjson.dumps({"predict": int(predicted)}).decode(),
                deployment=deployment,
                variant=variant,
            )
        )
        right = variant != "primary" or (i // len(versions)) % 2 == 0
        labels.append((prediction_id, int(predicted) if right else 1 - int(predicted)))
    from modelyard._sdk import default_prediction_log

    default_prediction_log().write(rows)
    my.serving.record_feedback(labels)
