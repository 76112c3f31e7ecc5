"""Registry fixtures: a registry and a tracking backend sharing real stores."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelyard.models import ColumnSpec, Manifest, OutputSpec, Signature
from modelyard.registry import ModelVersion, SqlRegistry
from modelyard.store import ArtifactStore, MetadataStore
from modelyard.tracking import Metric, RunSpec, RunStatus
from modelyard.tracking._datasets import describe_dataset
from modelyard.tracking._entities import DatasetInput, now_ms
from modelyard.tracking._sql import SqlTracking

GIT = {"commit": "a" * 40, "branch": "main", "dirty": True, "remote": "git@host:org/churn.git"}


@dataclass
class Stores:
    tracking: SqlTracking
    registry: SqlRegistry

    def run(
        self,
        *,
        name: str = "train",
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        datasets: tuple[DatasetInput, ...] = (),
        git: Mapping[str, Any] | None = GIT,
        experiment: str = "churn",
    ) -> str:
        """A finished run with these params, final metrics and datasets; returns its id."""
        experiment_id = self.tracking.get_experiment(experiment, create=True).id
        environment = {"schema": 1, "git": dict(git) if git else None, "packages": {}}
        run = self.tracking.create_run(
            RunSpec(experiment_id, name, "ana", now_ms(), environment=environment)
        )
        points = [Metric(k, value, 0, now_ms()) for k, value in (metrics or {}).items()]
        self.tracking.log_batch(run.id, params=params, metrics=points)
        for dataset in datasets:
            self.tracking.log_dataset(run.id, dataset)
        self.tracking.finish_run(run.id, RunStatus.FINISHED)
        return run.id

    def register(
        self, name: str, run_id: str | None, manifest: Manifest | None, **details: Any
    ) -> ModelVersion:
        """A version of `name` whose manifest blob is in the artifact store."""
        digest = (
            None
            if manifest is None
            else self.registry.artifacts.put_bytes(manifest.to_bytes()).digest
        )
        flavor = None if manifest is None else manifest.flavor
        return self.registry.create_version(
            name, created_by="ana", run_id=run_id, manifest_digest=digest, flavor=flavor, **details
        )

    @staticmethod
    def manifest(run_id: str, **options: Any) -> Manifest:
        """A manifest as `log_model` writes it (see `build_manifest`)."""
        return build_manifest(run_id, **options)

    @staticmethod
    def dataset(seed: int, *, name: str = "customers", role: str = "training") -> DatasetInput:
        """A described random frame: the same seed gives the same digest."""
        rng = np.random.default_rng(seed)
        data = pd.DataFrame({"age": rng.integers(18, 90, 20), "spend": rng.random(20)})
        return describe_dataset(data, name=name, role=role, source=f"s3://data/{seed}.parquet")


@pytest.fixture
def stores(db_url: str, tmp_path: Path) -> Iterator[Stores]:
    metadata = MetadataStore(db_url)
    artifacts = ArtifactStore(str(tmp_path / "artifacts"))
    yield Stores(SqlTracking(metadata, artifacts), SqlRegistry(metadata, artifacts))
    metadata.close()


def build_manifest(
    run_id: str,
    *,
    columns: list[ColumnSpec] | None = None,
    requirements: Mapping[str, str] | None = None,
    flavor: str = "sklearn",
    python: str = "3.11.9",
    metrics: Mapping[str, float] | None = None,
) -> Manifest:
    """A manifest as `log_model` writes it, with a table signature."""
    signature = Signature(
        columns=columns
        or [
            ColumnSpec(name="age", dtype="int64"),
            ColumnSpec(name="plan", dtype="string", categories=["basic", "pro"]),
        ],
        outputs=[OutputSpec(name="predict", dtype="int64", shape=[-1])],
    )
    return Manifest(
        flavor=flavor,
        model_class="sklearn.linear_model._logistic:LogisticRegression",
        files=[],
        signature=signature,
        python=python,
        requirements=dict(requirements or {"scikit-learn": "1.5.0", "numpy": "2.0.0"}),
        metrics=dict(metrics or {}),
        run_id=run_id,
        artifact_path="model",
        created_at=now_ms(),
        created_by="ana",
    )
