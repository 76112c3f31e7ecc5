"""Lineage: version → run → datasets and code commit; dataset → the versions trained on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from modelyard.errors import InvalidInput, NotFound
from modelyard.tracking import RunSpec
from modelyard.tracking._entities import now_ms

if TYPE_CHECKING:
    from tests.registry.conftest import Stores


def test_lineage_names_the_run_its_commit_and_its_datasets(stores: Stores) -> None:
    train, valid = stores.dataset(1), stores.dataset(2, name="holdout", role="validation")
    run_id = stores.run(name="lr-sweep-3", datasets=(train, valid))
    stores.registry.create_version("churn", created_by="ana", run_id=run_id)
    lineage = stores.registry.lineage("churn", 1)
    assert lineage.version == stores.registry.get_version("churn", 1)
    assert (lineage.run_id, lineage.run_name, lineage.experiment_name, lineage.run_status) == (
        run_id,
        "lr-sweep-3",
        "churn",
        "finished",
    )
    assert (lineage.git_commit, lineage.git_branch, lineage.git_dirty, lineage.git_remote) == (
        "a" * 40,
        "main",
        True,
        "git@host:org/churn.git",
    )
    assert [(d.name, d.role, d.digest, d.num_rows) for d in lineage.datasets] == [
        ("customers", "training", train.digest, 20),
        ("holdout", "validation", valid.digest, 20),
    ]
    assert lineage.datasets[0].source == "s3://data/1.parquet"


def test_lineage_of_a_child_run_names_its_parent(stores: Stores) -> None:
    parent = stores.run(name="sweep")
    experiment = stores.tracking.get_experiment("churn")
    child = stores.tracking.create_run(
        RunSpec(experiment.id, "trial-1", "ana", now_ms(), parent_id=parent)
    )
    stores.registry.create_version("churn", created_by="ana", run_id=child.id)
    lineage = stores.registry.lineage("churn", 1)
    assert (lineage.parent_run_id, lineage.run_status, lineage.git_commit) == (
        parent,
        "running",
        None,
    )


def test_a_version_without_a_run_has_an_empty_lineage(stores: Stores) -> None:
    stores.registry.create_version("churn", created_by="ana")
    lineage = stores.registry.lineage("churn", 1)
    assert lineage.run_id is None and lineage.git_commit is None and lineage.datasets == ()
    assert lineage.version.version == 1


def test_versions_trained_on_a_dataset_by_digest_or_name(stores: Stores) -> None:
    may, june = stores.dataset(1), stores.dataset(2)
    registry = stores.registry
    registry.create_version("fraud", created_by="ana", run_id=stores.run(datasets=(june,)))
    registry.create_version("churn", created_by="ana", run_id=stores.run(datasets=(may,)))
    registry.create_version("churn", created_by="ana", run_id=stores.run())
    validated_on_may = stores.dataset(1, name="customers", role="validation")
    registry.create_version(
        "churn", created_by="ana", run_id=stores.run(datasets=(june, validated_on_may))
    )
    registry.create_version("churn", created_by="ana")

    def found(dataset: str) -> list[tuple[str, int]]:
        return [(v.name, v.version) for v in registry.versions_trained_on(dataset)]

    assert found(may.digest) == [("churn", 1), ("churn", 3)]
    assert found(june.digest) == [("churn", 3), ("fraud", 1)]
    assert found("customers") == [("churn", 1), ("churn", 3), ("fraud", 1)]


def test_an_unknown_dataset_is_not_found(stores: Stores) -> None:
    stores.registry.create_version("churn", created_by="ana", run_id=stores.run())
    with pytest.raises(NotFound, match="no run logged a dataset named or hashed 'nope'"):
        stores.registry.versions_trained_on("nope")
    with pytest.raises(NotFound):
        stores.registry.versions_trained_on("0" * 64)
    with pytest.raises(InvalidInput):
        stores.registry.versions_trained_on("")
    unused = stores.dataset(9)
    stores.tracking.log_dataset(stores.run(), unused)  # logged, but no version used it
    assert stores.registry.versions_trained_on(unused.digest) == []


def test_lineage_of_a_missing_version_is_not_found(stores: Stores) -> None:
    stores.registry.create_version("churn", created_by="ana")
    with pytest.raises(NotFound, match=r"versions run 1\.\.1"):
        stores.registry.lineage("churn", 2)
    with pytest.raises(NotFound, match=r"no version 3000000000"):  # beyond a 32-bit column
        stores.registry.lineage("churn", 3_000_000_000)
    with pytest.raises(NotFound, match="'nope'"):
        stores.registry.lineage("nope", 1)
