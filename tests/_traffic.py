"""Simulated traffic of a deployment, seeded: the rows the serving side logs for it (served,
mirrored, failed and fallback rows, as the log contract says) and the labels sent back, as
`PredictionRow`s for a real log or as the frames `PredictionLog.read` and
`FeedbackStore.read` answer, for the pure tests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd

from modelyard.rollout._evaluate import deployment_rows
from modelyard.rollout._spec import (
    CANDIDATE_ROLE,
    MIRRORED_ROLES,
    Deployment,
    Variant,
    check_policy,
    initial_split,
)
from modelyard.serving._ids import new_ids
from modelyard.serving._records import PredictionRow

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
FEATURES = ("tenure", "spend", "calls")


def deployment_of(
    strategy: str, candidates: int = 1, *, name: str = "rollout", **policy: Any
) -> Deployment:
    """A running deployment of `churn` versions 1.. as the store makes it, without a store."""
    role = CANDIDATE_ROLE.get(strategy, "candidate")
    label = {"challenger": "challenger", "arm": "arm"}.get(role, role)
    variants = [Variant("primary", "primary", "churn@champion", 1)]
    for index in range(1, candidates + 1):
        variant = f"{label}-{index}" if candidates > 1 else label
        variants.append(Variant(variant, role, f"churn/{index + 1}", index + 1))
    checked = check_policy(strategy, policy)  # type: ignore[arg-type]
    return Deployment(
        name=name,
        model="churn",
        strategy=strategy,  # type: ignore[arg-type]
        alias="champion",
        variants=tuple(variants),
        split=initial_split(strategy, variants, checked),  # type: ignore[arg-type]
        policy=checked,
        status="running",
        step=0,
        step_started_at=T0,
        revision=1,
        created_by="test",
        created_at=T0,
        updated_at=T0,
        id=1,
    )


@dataclass
class Traffic:
    rows: list[PredictionRow] = field(default_factory=list)
    labels: list[tuple[str, Any]] = field(default_factory=list)

    def __iadd__(self, other: Traffic) -> Traffic:
        self.rows += other.rows
        self.labels += other.labels
        return self

    @property
    def last_ms(self) -> int:
        return max(r.at_ms for r in self.rows)


def simulate(
    deployment: Deployment,
    requests: int,
    *,
    seed: int,
    start_ms: int = T0,
    accuracy: Mapping[str, float] | None = None,
    errors: Mapping[str, float] | None = None,
    latency_ms: Mapping[str, float] | None = None,
    shares: Mapping[str, float] | None = None,
    counts: Mapping[str, int] | None = None,
    labelled: float = 1.0,
    rewards: Mapping[str, float] | None = None,
    positive: Mapping[str, float] | None = None,
    spacing_ms: int = 10,
) -> Traffic:
    """`requests` requests `spacing_ms` apart, assigned at random by `shares` (default: the
    deployment's split) or exactly by `counts`; each live variant answers, each mirrored one
    scores a copy. Per variant: `accuracy` (0.8), `errors` (failure rate, 0), median
    `latency_ms` (10), `positive` (share of predicted 1s when wrong answers are drawn at
    random; default: the wrong answer is the other class). With `rewards`, labels are normal
    rewards with that mean instead of classes. A `labelled` share of requests gets a label."""
    rng = np.random.default_rng(seed)
    live = [v for v in deployment.variants if v.role not in MIRRORED_ROLES]
    mirrored = [v for v in deployment.variants if v.role in MIRRORED_ROLES]
    if counts is not None:
        order = np.repeat([v.name for v in live], [counts.get(v.name, 0) for v in live])
        assigned = list(rng.permutation(order))
        requests = len(assigned)
    else:
        split = shares or deployment.split
        weights = np.asarray([split.get(v.name, 0.0) for v in live], dtype=float)
        picks = rng.choice(len(live), size=requests, p=weights / weights.sum())
        assigned = [live[i].name for i in picks]
    traffic = Traffic()
    primary = deployment.primary.name
    for i, variant in enumerate(assigned):
        at = start_ms + spacing_ms * i
        truth = int(rng.random() < 0.5)
        inputs = {name: float(x) for name, x in zip(FEATURES, rng.normal(size=3), strict=True)}
        client_id = new_ids(1, at)[0]
        failed = rng.random() < (errors or {}).get(variant, 0.0)
        if failed:  # the variant failed: a failure row, and the primary answers the client
            traffic.rows.append(
                _row(deployment, variant, at, rng, latency_ms, inputs, {"error": "boom"}, client_id)
            )
            answered_by = primary
        else:
            answered_by = variant
        answer = _answer(answered_by, truth, rng, accuracy, positive)
        traffic.rows.append(
            _row(deployment, answered_by, at, rng, latency_ms, inputs, answer, None, client_id)
        )
        for shadow in mirrored:
            copy = _answer(shadow.name, truth, rng, accuracy, positive)
            traffic.rows.append(
                _row(deployment, shadow.name, at, rng, latency_ms, inputs, copy, client_id)
            )
        if rng.random() < labelled:
            if rewards is not None:
                label: Any = float(rng.normal(rewards.get(answered_by, 0.0), 1.0))
            else:
                label = truth
            traffic.labels.append((client_id, label))
    return traffic


def _answer(
    variant: str,
    truth: int,
    rng: np.random.Generator,
    accuracy: Mapping[str, float] | None,
    positive: Mapping[str, float] | None,
) -> dict[str, Any]:
    right = rng.random() < (accuracy or {}).get(variant, 0.8)
    if right:
        return {"predict": truth}
    if positive is not None and variant in positive:
        return {"predict": int(rng.random() < positive[variant])}
    return {"predict": 1 - truth}


def _row(
    deployment: Deployment,
    variant: str,
    at: int,
    rng: np.random.Generator,
    latency_ms: Mapping[str, float] | None,
    inputs: dict[str, float],
    outputs: dict[str, Any],
    parent_id: str | None,
    row_id: str | None = None,
) -> PredictionRow:
    median = (latency_ms or {}).get(variant, 10.0)
    return PredictionRow(
        id=row_id or new_ids(1, at)[0],
        model=deployment.model,
        version=deployment.variant(variant).version,
        at_ms=at,
        latency_ms=float(median * rng.lognormal(0.0, 0.3)),
        inputs=orjson.dumps(inputs).decode(),
        outputs=orjson.dumps(outputs).decode(),
        deployment=deployment.name,
        variant=variant,
        parent_id=parent_id,
    )


def frames(traffic: Traffic) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The frames `PredictionLog.read` and `FeedbackStore.read` would answer."""
    rows = traffic.rows
    predictions = pd.DataFrame(
        {
            "prediction_id": pd.Series([r.id for r in rows], dtype="str"),
            "model": pd.Series([r.model for r in rows], dtype="str"),
            "version": pd.Series([r.version for r in rows], dtype="int64"),
            "at": _times([r.at_ms for r in rows]),
            "latency_ms": pd.Series([r.latency_ms for r in rows], dtype="float64"),
            "inputs": pd.Series([orjson.loads(r.inputs) for r in rows], dtype=object),
            "outputs": pd.Series([orjson.loads(r.outputs) for r in rows], dtype=object),
            "deployment": pd.Series([r.deployment for r in rows], dtype=object),
            "variant": pd.Series([r.variant for r in rows], dtype=object),
            "parent_id": pd.Series([r.parent_id for r in rows], dtype=object),
        }
    )
    at = max((r.at_ms for r in rows), default=T0) + 1
    feedback = pd.DataFrame(
        {
            "prediction_id": pd.Series([i for i, _ in traffic.labels], dtype="str"),
            "model": pd.Series(["churn"] * len(traffic.labels), dtype="str"),
            "version": pd.Series([1] * len(traffic.labels), dtype="int64"),
            "at": _times([at] * len(traffic.labels)),
            "label": pd.Series([label for _, label in traffic.labels], dtype=object),
        }
    )
    return predictions, feedback


def rows_of(deployment: Deployment, traffic: Traffic) -> pd.DataFrame:
    """`deployment_rows` of `traffic`."""
    predictions, feedback = frames(traffic)
    return deployment_rows(predictions, feedback, deployment)


def _times(at_ms: list[int]) -> pd.Series:
    stamps = np.asarray(at_ms, dtype="int64").view("datetime64[ms]")
    return pd.Series(stamps).dt.tz_localize("UTC")
