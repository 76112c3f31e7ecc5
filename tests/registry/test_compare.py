"""Comparing two versions; registering a version checks its manifest, and reading it back
from the artifact store verifies it."""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text

from modelyard.errors import IntegrityError, InvalidInput, NotFound
from modelyard.models import ColumnSpec
from modelyard.registry import MetricDifference

if TYPE_CHECKING:
    from tests.registry.conftest import Stores


def test_manifest_is_read_back_verified_and_none_without_one(stores: Stores) -> None:
    run_id = stores.run()
    written = stores.manifest(run_id)
    stores.register("churn", run_id, written)
    stores.register("churn", run_id, None)
    assert stores.registry.get_manifest("churn", 1) == written
    assert stores.registry.get_manifest("churn", 2) is None
    with pytest.raises(NotFound, match=r"versions run 1\.\.2"):
        stores.registry.get_manifest("churn", 3)


def test_registering_a_digest_with_no_stored_blob_is_not_found(stores: Stores) -> None:
    digest = hashlib.sha256(b"never stored").hexdigest()
    with pytest.raises(NotFound, match=f"no stored manifest with digest {digest}"):
        stores.registry.create_version("churn", created_by="ana", manifest_digest=digest)
    with pytest.raises(InvalidInput, match="not a SHA-256 digest"):
        stores.registry.create_version("churn", created_by="ana", manifest_digest="abc")
    with pytest.raises(NotFound):
        stores.registry.get_model("churn")


@pytest.mark.parametrize(
    "blob",
    [b"not json", b'{"format": 99}', b'{"format": 1, "flavor": "sklearn"}', b"[1, 2]"],
)
def test_registering_a_blob_that_is_not_a_manifest_is_refused(stores: Stores, blob: bytes) -> None:
    digest = stores.registry.artifacts.put_bytes(blob).digest
    with pytest.raises(InvalidInput, match=f"{digest} is not a model manifest"):
        stores.registry.create_version("churn", created_by="ana", manifest_digest=digest)
    with pytest.raises(NotFound):
        stores.registry.get_model("churn")


def test_registering_a_manifest_under_another_run_is_refused(stores: Stores) -> None:
    mine, other = stores.run(), stores.run()
    digest = stores.registry.artifacts.put_bytes(stores.manifest(mine).to_bytes()).digest
    with pytest.raises(InvalidInput, match=f"belongs to run {mine}, not {other}"):
        stores.registry.create_version(
            "churn", created_by="ana", run_id=other, manifest_digest=digest
        )
    for run_id in (mine, None):
        stores.registry.create_version(
            "churn", created_by="ana", run_id=run_id, manifest_digest=digest
        )
    assert [v.run_id for v in stores.registry.list_versions("churn")] == [mine, None]


def test_a_manifest_digest_changed_behind_the_registry_is_an_integrity_error(
    stores: Stores,
) -> None:
    run_id = stores.run()
    stores.register("churn", run_id, stores.manifest(run_id))
    stores.register("churn", run_id, stores.manifest(run_id))
    for version, blob in ((1, b'{"format": 99}'), (2, b'{"format": 1, "flavor": "sklearn"}')):
        digest = stores.registry.artifacts.put_bytes(blob).digest
        with stores.registry.metadata.engine.begin() as conn:
            conn.execute(
                text("UPDATE model_versions SET manifest_digest = :d WHERE version = :v"),
                {"d": digest, "v": version},
            )
    with pytest.raises(IntegrityError, match="format 99"):
        stores.registry.get_manifest("churn", 1)
    with pytest.raises(IntegrityError, match=r"version 2 of 'churn'.* is not a valid manifest"):
        stores.registry.get_manifest("churn", 2)


def test_compare_shows_metrics_side_by_side_and_what_differs(stores: Stores) -> None:
    run_a = stores.run(
        params={"penalty": "l2", "C": "1.0", "seed": "1"}, metrics={"auc": 0.81, "f1": 0.5}
    )
    run_b = stores.run(
        params={"penalty": "l2", "C": "0.1", "max_iter": "500"},
        metrics={"auc": 0.86, "latency_ms": 3.0, "f1": math.nan},
    )
    stores.register("churn", run_a, stores.manifest(run_a))
    wider = [
        ColumnSpec(name="age", dtype="float64", nullable=True),
        ColumnSpec(name="plan", dtype="string", categories=["basic", "pro", "team"]),
        ColumnSpec(name="email", dtype="string", pii=True),
    ]
    stores.register(
        "churn",
        run_b,
        stores.manifest(
            run_b,
            columns=wider,
            python="3.12.4",
            requirements={"scikit-learn": "1.6.1", "numpy": "2.0.0", "scipy": "1.14.0"},
        ),
    )
    comparison = stores.registry.compare_versions("churn", 1, 2)
    assert (comparison.a.version, comparison.b.version) == (1, 2)
    metrics = {m.key: m for m in comparison.metrics}
    assert list(metrics) == ["auc", "f1", "latency_ms"]
    assert metrics["auc"].a == 0.81 and metrics["auc"].b == 0.86
    assert metrics["auc"].difference == pytest.approx(0.05)
    assert metrics["latency_ms"] == MetricDifference("latency_ms", None, 3.0, None)
    assert metrics["f1"].b is not None and math.isnan(metrics["f1"].b)
    assert comparison.params == {
        "C": ("1.0", "0.1"),
        "max_iter": (None, "500"),
        "seed": ("1", None),
    }
    assert comparison.signature == (
        "column 'email' added (string)",
        "column 'age': int64 → float64",
        "column 'age': now accepts missing values",
        "column 'plan': categories added 'team'",
    )
    assert comparison.python == ("3.11.9", "3.12.4")
    assert comparison.flavor == ("sklearn", "sklearn")
    assert comparison.requirements == {
        "scikit-learn": ("1.5.0", "1.6.1"),
        "scipy": (None, "1.14.0"),
    }


def test_compare_versions_without_runs_or_manifests(stores: Stores) -> None:
    run_id = stores.run(metrics={"auc": 0.7})
    stores.register("churn", None, stores.manifest(run_id, metrics={"auc": 0.9}))
    stores.register("churn", None, None)
    comparison = stores.registry.compare_versions("churn", 1, 2)
    assert comparison.metrics == (MetricDifference("auc", 0.9, None, None),)
    assert comparison.params == {}
    assert comparison.signature == ("version 2 records no signature",)
    assert comparison.flavor == ("sklearn", None)
    assert comparison.requirements == {"numpy": ("2.0.0", None), "scikit-learn": ("1.5.0", None)}


def test_comparing_a_missing_version_is_not_found(stores: Stores) -> None:
    stores.registry.create_version("churn", created_by="ana")
    with pytest.raises(NotFound, match=r"no version 7; versions run 1\.\.1"):
        stores.registry.compare_versions("churn", 1, 7)
