"""Lineage: a version's run, code commit and datasets; and the versions a dataset trained."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, select

from modelyard.errors import NotFound
from modelyard.registry._entities import Lineage, ModelVersion
from modelyard.registry._load import Key
from modelyard.store._tables import (
    DatasetRow,
    ModelVersionRow,
    RegisteredModelRow,
    RunDatasetRow,
    table_of,
)
from modelyard.tracking._entities import Run

M = table_of(RegisteredModelRow)
V = table_of(ModelVersionRow)
D = table_of(DatasetRow)
RD = table_of(RunDatasetRow)

_DIGEST = re.compile(r"[0-9a-f]{64}")


def lineage_of(version: ModelVersion, run: Run | None) -> Lineage:
    """What `run` (the version's, or None) says about where the version came from."""
    if run is None:
        return Lineage(version)
    git: dict[str, Any] = (run.environment or {}).get("git") or {}
    dirty = git.get("dirty")
    return Lineage(
        version,
        run_id=run.id,
        run_name=run.name,
        experiment_name=run.experiment_name,
        run_status=str(run.status),
        parent_run_id=run.parent_id,
        git_commit=git.get("commit"),
        git_branch=git.get("branch"),
        git_dirty=dirty if isinstance(dirty, bool) else None,
        git_remote=git.get("remote"),
        datasets=run.datasets,
    )


def dataset_digests(conn: Connection, dataset: str) -> list[str]:
    """The digests `dataset` names: itself if it is a known digest, else every digest
    logged under that dataset name."""
    known = select(D.c.digest).where(D.c.digest == dataset)
    if _DIGEST.fullmatch(dataset) and conn.execute(known).first() is not None:
        return [dataset]
    digests = list(
        conn.scalars(
            select(RD.c.dataset_digest)
            .where(RD.c.name == dataset)
            .distinct()
            .order_by(RD.c.dataset_digest)
        )
    )
    if not digests:
        raise NotFound(
            f"no run logged a dataset named or hashed {dataset!r}; give a dataset name as "
            "logged with log_dataset, or its 64-hex digest"
        )
    return digests


def keys_trained_on(conn: Connection, digests: list[str]) -> list[Key]:
    """(model id, version) of every version whose run used one of `digests` (any role),
    ordered by model name and version."""
    rows = conn.execute(
        select(V.c.model_id, V.c.version, M.c.name)
        .join(M, M.c.id == V.c.model_id)
        .join(RD, RD.c.run_id == V.c.run_id)
        .where(RD.c.dataset_digest.in_(digests))
        .distinct()
        .order_by(M.c.name, V.c.version)
    )
    return [(int(r.model_id), int(r.version)) for r in rows]
