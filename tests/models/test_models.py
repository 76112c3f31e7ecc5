"""log_model and load_model end to end: real models, real stores, every byte verified."""

from __future__ import annotations

import io
import math
import pickle
import uuid
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from _payloads import PickleBomb, TouchOnSetstate
from modelyard.config import Settings
from modelyard.errors import Conflict, IntegrityError, InvalidInput, NotFound, PermissionDenied
from modelyard.models import Manifest, PackageVersionWarning
from modelyard.store import MetadataStore


@pytest.fixture
def stores(sdk: ModuleType, request: pytest.FixtureRequest) -> Settings:
    """Settings naming the stores behind `sdk`: its own, or those of the live server."""
    if sdk.get_settings().tracking_uri:
        return Settings(home=request.getfixturevalue("live_server_home"))
    settings: Settings = sdk.get_settings()
    return settings


@pytest.fixture
def name() -> str:
    return f"churn-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    data = load_breast_cancer(as_frame=True)
    return data.data, data.target


@pytest.fixture(scope="module")
def customers() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(7)
    n = 400
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, n),
            "monthly": rng.normal(60, 15, n).round(2),
            "plan": rng.choice(["basic", "pro", "team"], n),
            "email": [f"user{i}@example.com" for i in range(n)],
        }
    )
    target = (frame["monthly"] + rng.normal(0, 10, n) > 62).to_numpy().astype(int)
    return frame, target


def _scaled_lr(c: float) -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(C=c))


def _pipeline(frame: pd.DataFrame, target: np.ndarray) -> object:
    columns = ColumnTransformer(
        [("num", StandardScaler(), ["tenure", "monthly"]), ("cat", OneHotEncoder(), ["plan"])]
    )
    return make_pipeline(columns, LogisticRegression(max_iter=500)).fit(frame, target)


def test_logged_pipeline_loads_by_alias_and_predicts_the_same(
    sdk: ModuleType, name: str, customers: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, target = customers
    features = frame.drop(columns="email")
    model = _pipeline(frame, target)
    with sdk.start_run(experiment="models") as run:
        run.log_metric("auc", 0.87)
        version = sdk.log_model(model, name, training_data=(features, target))
    assert (version.name, version.version, version.flavor) == (name, 1, "sklearn")
    sdk.registry.set_alias(name, "champion", 1)
    loaded = sdk.load_model(f"models:/{name}@champion")
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))  # type: ignore[attr-defined]
    np.testing.assert_array_equal(
        loaded.predict_proba(features),
        model.predict_proba(features),  # type: ignore[attr-defined]
    )
    manifest = loaded.manifest
    assert manifest.run_id == run.id and manifest.metrics == {"auc": 0.87}
    assert manifest.requirements["scikit-learn"] and manifest.requirements["skops"]
    assert [d.role for d in manifest.datasets] == ["training"]
    assert loaded.signature is not None
    plan = next(c for c in loaded.signature.columns or [] if c.name == "plan")
    assert plan.categories == ["basic", "pro", "team"]
    assert [o.name for o in loaded.signature.outputs] == ["predict", "predict_proba"]


def test_versions_are_numbered_and_load_by_number_and_run_uri(
    sdk: ModuleType, name: str, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    x, y = cancer
    models = [_scaled_lr(c).fit(x, y) for c in (0.1, 1.0)]
    with sdk.start_run() as run:
        first = sdk.log_model(models[0], name, input_example=x[:5], artifact_path="a")
        second = sdk.log_model(models[1], name, input_example=x[:5], artifact_path="b")
    assert (first.version, second.version) == (1, 2)
    for uri, model in [
        (f"models:/{name}/1", models[0]),
        (f"models:/{name}/2", models[1]),
        (f"runs:/{run.id}/b", models[1]),
    ]:
        np.testing.assert_array_equal(sdk.load_model(uri).predict_proba(x), model.predict_proba(x))


def test_predict_checks_inputs_against_the_signature_naming_the_column(
    sdk: ModuleType, name: str, customers: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, target = customers
    features = frame.drop(columns="email")
    with sdk.start_run():
        sdk.log_model(_pipeline(frame, target), name, training_data=features)
    loaded = sdk.load_model(f"models:/{name}/1")
    with pytest.raises(InvalidInput, match="tenure"):
        loaded.predict(features.drop(columns="tenure"))
    with pytest.raises(InvalidInput, match=r"plan.*platinum"):
        loaded.predict(features.assign(plan="platinum"))
    with pytest.raises(InvalidInput, match="monthly"):
        loaded.predict(features.assign(monthly="lots"))
    rows = features[:3].to_dict(orient="records")
    assert loaded.predict(rows).shape == (3,)


def test_pii_columns_are_flagged_by_name_or_as_told(
    sdk: ModuleType, name: str, customers: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, target = customers
    model = _pipeline(frame, target)
    with sdk.start_run():
        guessed = sdk.log_model(model, name, input_example=frame[:5], flavor="sklearn")
        told = sdk.log_model(
            model, name, input_example=frame[:5], pii=["tenure"], artifact_path="told"
        )
    pii_of = {
        v.version: sdk.registry.get_manifest(name, v.version).signature.pii_columns
        for v in (guessed, told)
    }
    assert pii_of == {1: ["email"], 2: ["tenure"]}


def test_a_pickle_in_the_store_does_not_run_on_load_by_default(
    sdk: ModuleType, name: str, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    _register_crafted(sdk, name, "pickle", "model.pkl", pickle.dumps(PickleBomb(marker)), {})
    with pytest.raises(PermissionDenied, match="allow_pickle=True"):
        sdk.load_model(f"models:/{name}/1")
    assert not marker.exists()
    sdk.load_model(f"models:/{name}/1", allow_pickle=True)
    assert marker.exists()  # the test can fail: the same file does run code when allowed


def test_a_crafted_skops_file_with_untrusted_types_is_refused(
    sdk: ModuleType, name: str, tmp_path: Path
) -> None:
    import skops.io as sio

    marker = tmp_path / "pwned"
    data = sio.dumps(TouchOnSetstate(str(marker)))
    _register_crafted(sdk, name, "sklearn", "model.skops", data, {"trusted": []})
    with pytest.raises(IntegrityError, match="TouchOnSetstate"):
        sdk.load_model(f"models:/{name}/1")
    assert not marker.exists()
    sdk.load_model(f"models:/{name}/1", trusted=["_payloads.TouchOnSetstate"])
    assert marker.exists()


def test_a_model_file_altered_in_the_store_is_refused(
    sdk: ModuleType, stores: Settings, name: str, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    x, y = cancer
    with sdk.start_run():
        sdk.log_model(_scaled_lr(1.0).fit(x, y), name, input_example=x[:5])
    digest = sdk.registry.get_manifest(name, 1).file("model.skops").sha256
    root = Path(stores.resolved_artifacts_url.removeprefix("file://"))
    blob = root / "blobs" / "sha256" / digest[:2] / digest
    original, mode = blob.read_bytes(), blob.stat().st_mode
    blob.chmod(0o644)
    blob.write_bytes(b"tampered")
    try:
        with pytest.raises(IntegrityError):
            sdk.load_model(f"models:/{name}/1")
    finally:  # blobs are shared by content: the server's store outlives this test
        blob.write_bytes(original)
        blob.chmod(mode)


def test_a_model_file_swapped_for_another_blob_is_refused(
    sdk: ModuleType, stores: Settings, name: str, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    from sqlalchemy import text

    x, y = cancer
    with sdk.start_run() as run:
        sdk.log_model(_scaled_lr(1.0).fit(x, y), name, input_example=x[:5])
        other = sdk.tracker().store_artifact(run.id, "other.bin", io.BytesIO(b"other bytes"))
    metadata = MetadataStore(stores.resolved_db_url)
    try:
        with metadata.engine.begin() as conn:
            conn.execute(
                text("UPDATE artifacts SET digest = :d, size = :s WHERE run_id = :r AND path = :p"),
                {"d": other.digest, "s": other.size, "r": run.id, "p": f"{name}/model.skops"},
            )
    finally:
        metadata.close()
    with pytest.raises(IntegrityError, match="SHA-256 in its manifest"):
        sdk.load_model(f"models:/{name}/1")


def test_an_altered_cached_copy_is_fetched_again(
    sdk: ModuleType, name: str, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    x, y = cancer
    model = _scaled_lr(1.0).fit(x, y)
    with sdk.start_run():
        version = sdk.log_model(model, name, input_example=x[:5])
    sdk.load_model(version.uri)
    cached = sdk.get_settings().home / "cache" / "models" / version.manifest_digest
    (cached / "model.skops").write_bytes(b"not a model")
    np.testing.assert_array_equal(sdk.load_model(version.uri).predict(x), model.predict(x))


def test_a_nan_metric_is_kept_in_the_manifest_and_the_model_loads(
    sdk: ModuleType, name: str, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    x, y = cancer
    with sdk.start_run() as run:
        run.log_metrics({"auc": 0.9, "f1": float("nan")})
        version = sdk.log_model(_scaled_lr(1.0).fit(x, y), name, input_example=x[:5])
    metrics = sdk.load_model(version.uri).manifest.metrics
    assert metrics["auc"] == 0.9 and math.isnan(metrics["f1"])
    assert math.isnan(sdk.registry.get_manifest(name, 1).metrics["f1"])


def test_a_different_major_minor_version_warns_on_load(
    sdk: ModuleType, name: str, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    x, y = cancer
    model = _scaled_lr(1.0).fit(x, y)
    with sdk.start_run() as run:
        sdk.log_model(model, name, input_example=x[:5])
        real = sdk.registry.get_manifest(name, 1)
        old = real.model_copy(update={"requirements": {**real.requirements, "numpy": "1.0.0"}})
        digest = sdk.tracker().store_artifact(
            run.id, "old/manifest.json", io.BytesIO(old.to_bytes())
        )
    sdk.registry.create_version(
        name, created_by="test", run_id=run.id, manifest_digest=digest.digest, flavor="sklearn"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sdk.load_model(f"models:/{name}/1")
    with pytest.warns(PackageVersionWarning, match=r"numpy 1\.0\.0"):
        sdk.load_model(f"models:/{name}/2")


def test_log_model_refuses_what_it_cannot_describe(
    sdk: ModuleType, name: str, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    x, y = cancer
    model = _scaled_lr(1.0).fit(x, y)
    with sdk.start_run():
        with pytest.raises(InvalidInput, match="input_example"):
            sdk.log_model(model, name)
        with pytest.raises(InvalidInput, match="flavor"):
            sdk.log_model(object(), name, input_example=x[:5])
        with pytest.raises(InvalidInput, match="unknown flavor"):
            sdk.log_model(model, name, input_example=x[:5], flavor="keras")
        with pytest.raises(PermissionDenied, match="allow_pickle"):
            sdk.log_model(model, name, input_example=x[:5], flavor="pickle")
        sdk.log_model(model, name, input_example=x[:5])
        with pytest.raises(Conflict, match="artifact_path"):
            sdk.log_model(model, name, input_example=x[:5])
    with pytest.raises(NotFound):
        sdk.load_model(f"models:/{name}/7")
    with pytest.raises(InvalidInput, match="models:/name"):
        sdk.load_model("s3://bucket/model")


def _register_crafted(
    sdk: ModuleType, name: str, flavor: str, file: str, data: bytes, options: dict[str, object]
) -> None:
    """Store `data` as a model file with a manifest that matches it, as an attacker with
    write access to the stores could."""
    import hashlib

    with sdk.start_run() as run:
        sdk.tracker().store_artifact(run.id, f"m/{file}", io.BytesIO(data))
        manifest = Manifest(
            flavor=flavor,
            flavor_options=options,
            model_class="crafted",
            files=[{"path": file, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}],
            python="3.11.0",
            run_id=run.id,
            artifact_path="m",
            created_at=0,
            created_by="mallory",
        )
        stored = sdk.tracker().store_artifact(
            run.id, "m/manifest.json", io.BytesIO(manifest.to_bytes())
        )
    sdk.registry.create_version(
        name, created_by="mallory", run_id=run.id, manifest_digest=stored.digest, flavor=flavor
    )


def test_onnx_export_is_stored_beside_the_native_model_and_agrees_with_it(
    sdk: ModuleType, name: str, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    x, y = cancer
    model = _scaled_lr(1.0).fit(x, y)
    with sdk.start_run():
        version = sdk.log_model(model, name, input_example=x[:20], onnx=True)
    manifest = sdk.registry.get_manifest(name, version.version)
    assert manifest.onnx is not None and manifest.onnx.path in {f.path for f in manifest.files}
    assert 0 <= manifest.onnx.max_abs_diff <= manifest.onnx.tolerance
    fast = sdk.load_model(version.uri, onnx=True)
    assert fast.runtime == "onnx"
    np.testing.assert_array_equal(fast.predict(x), model.predict(x))
    np.testing.assert_allclose(fast.predict_proba(x), model.predict_proba(x), atol=1e-4)


def test_onnx_export_refuses_outputs_that_disagree_beyond_the_tolerance(
    sdk: ModuleType, name: str, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    x, y = cancer
    model = _scaled_lr(1.0).fit(x, y)
    with sdk.start_run(), pytest.raises(InvalidInput, match=r"tolerance|differ"):
        sdk.log_model(model, name, input_example=x[:50], onnx=True, onnx_tolerance=0.0)
    with pytest.raises(NotFound):
        sdk.registry.get_model(name)
    data, diff = sdk.models.to_onnx(model, x[:50])
    assert data[:2] and diff < 1e-4
