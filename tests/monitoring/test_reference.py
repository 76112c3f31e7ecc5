"""The training reference a version stores at log_model, read back from the SDK, the CLI
and the REST API."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from typer.testing import CliRunner

import modelyard as my
from modelyard.cli._app import app
from modelyard.errors import IntegrityError, InvalidInput, NotFound
from modelyard.models import Manifest
from modelyard.monitoring._reference import reference_of

ROWS = 12_000
runner = CliRunner(env={"COLUMNS": "250"})


@pytest.fixture(scope="module")
def training() -> tuple[pd.DataFrame, pd.Series]:
    """Numeric columns and a category coded as a number, on a shuffled index, with labels."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, ROWS),
            "monthly": rng.normal(60, 15, ROWS),
            "plan": rng.integers(0, 4, ROWS),
        },
        index=rng.permutation(ROWS) + 1_000,
    )
    noise = rng.normal(0, 10, ROWS)
    labels = pd.Series((frame["monthly"] + 5 * frame["plan"] + noise > 68).astype(int))
    return frame, labels.set_axis(frame.index)


@pytest.fixture(scope="module")
def model(training: tuple[pd.DataFrame, pd.Series]) -> Pipeline:
    frame, labels = training
    columns = ColumnTransformer(
        [
            ("num", StandardScaler(), ["tenure", "monthly"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    return make_pipeline(columns, LogisticRegression(max_iter=500)).fit(frame, labels)


@pytest.fixture
def name() -> str:
    return f"churn-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """`modelyard` on a fresh local home (SQLite), which the CLI can open too."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "home"
    my.configure(home=path)
    yield path
    my.configure(home=tmp_path / "unused")


def positions_in(frame: pd.DataFrame, sample: pd.DataFrame) -> np.ndarray:
    """Where each sample row occurs in `frame` (rows are told apart by `monthly`)."""
    where = pd.Series(np.arange(len(frame)), index=frame["monthly"].to_numpy())
    found = where.reindex(sample["monthly"].to_numpy())
    assert not found.isna().any(), "a sample row is not a training row"
    return found.to_numpy(dtype=np.int64)


def test_a_version_keeps_the_profile_sample_and_outputs_of_its_training_data(
    sdk: ModuleType, name: str, training: tuple[pd.DataFrame, pd.Series], model: Pipeline
) -> None:
    frame, labels = training
    with sdk.start_run():
        version = sdk.log_model(model, name, training_data=(frame, labels))
    reference = sdk.monitoring.training_reference(name, version.version)
    assert (reference.model, reference.version) == (name, version.version)
    assert reference.rows == reference.profile.rows == ROWS
    assert list(reference.profile.columns) == ["tenure", "monthly", "plan"]
    assert reference.profile.columns["plan"].max == 3
    assert reference.sample_rows == len(reference.outputs) == 10_000
    assert list(reference.sample.index) == list(range(10_000))  # the index is dropped
    at = positions_in(frame, reference.sample)
    assert (np.diff(at) > 0).all()  # training order kept
    pd.testing.assert_frame_equal(
        reference.sample, frame.iloc[at].reset_index(drop=True), check_dtype=False
    )
    assert list(reference.outputs.columns) == ["prediction", "score", "label"]
    rows = frame.iloc[at]
    np.testing.assert_array_equal(reference.outputs["prediction"], model.predict(rows))
    np.testing.assert_allclose(reference.outputs["score"], model.predict_proba(rows)[:, 1])
    np.testing.assert_array_equal(reference.outputs["label"], labels.iloc[at])
    manifest = sdk.registry.get_manifest(name, version.version)
    assert manifest.reference is not None and manifest.reference.sample_rows == 10_000
    listed = {entry.path for entry in manifest.files}
    assert {manifest.reference.profile, manifest.reference.sample} <= listed
    assert manifest.reference.outputs in listed
    # loading the model fetches only what the model needs
    loaded = sdk.load_model(f"models:/{name}/{version.version}")
    assert not (loaded.folder / "reference").exists()
    assert (loaded.predict(frame.head(3)) == model.predict(frame.head(3))).all()


def test_the_sample_is_the_same_every_time_and_whole_when_small(
    home: Path, training: tuple[pd.DataFrame, pd.Series], model: Pipeline
) -> None:
    frame, labels = training
    small = frame.iloc[:500]
    with my.start_run():
        for path in ("a", "b"):
            my.log_model(model, "same", artifact_path=path, training_data=(frame, labels))
        my.log_model(model, "small", training_data=small)
    first, second = (my.monitoring.training_reference("same", v) for v in (1, 2))
    pd.testing.assert_frame_equal(first.sample, second.sample)
    assert first.profile.to_json() == second.profile.to_json()
    whole = my.monitoring.training_reference("small", 1)
    pd.testing.assert_frame_equal(whole.sample, small.reset_index(drop=True), check_dtype=False)
    assert list(whole.outputs.columns) == ["prediction", "score"]  # no labels given


def test_a_numpy_training_array_gets_columns_named_by_position(
    home: Path, training: tuple[pd.DataFrame, pd.Series]
) -> None:
    frame, labels = training
    x, y = frame.to_numpy(dtype=np.float64), labels.to_numpy()
    model = LogisticRegression(max_iter=500).fit(x, y)
    with my.start_run():
        my.log_model(model, "array", training_data=(x, y))
    reference = my.monitoring.training_reference("array", 1)
    assert list(reference.sample.columns) == ["0", "1", "2"]
    assert list(reference.profile.columns) == ["0", "1", "2"] and reference.rows == ROWS
    sample = reference.sample.to_numpy()
    np.testing.assert_array_equal(reference.outputs["prediction"], model.predict(sample))
    at = positions_in(frame, reference.sample.set_axis(list(frame.columns), axis=1))
    np.testing.assert_array_equal(reference.outputs["label"], y[at])


def test_a_version_logged_with_only_an_input_example_has_no_reference(
    home: Path, training: tuple[pd.DataFrame, pd.Series], model: Pipeline
) -> None:
    frame, _ = training
    with my.start_run():
        my.log_model(model, "bare", input_example=frame[:5])
    assert my.registry.get_manifest("bare", 1).reference is None
    with pytest.raises(NotFound, match=r"no training reference.*training_data="):
        my.monitoring.training_reference("bare", 1)
    with pytest.raises(NotFound, match="nope"):
        my.monitoring.training_reference("nope", 1)
    with pytest.raises(NotFound):
        my.monitoring.training_reference("bare", 2)


def test_non_tabular_training_data_logs_without_a_reference(home: Path) -> None:
    from _model_classes import ScaleModel

    images = np.random.default_rng(0).random((50, 4, 4))
    with my.start_run():
        version = my.log_model(ScaleModel(), "images", training_data=images)
    assert version.version == 1
    assert my.registry.get_manifest("images", 1).reference is None


def test_training_data_the_signature_refuses_logs_with_a_warning_and_no_reference(
    home: Path, training: tuple[pd.DataFrame, pd.Series], model: Pipeline
) -> None:
    frame, labels = training
    signature = my.models.infer_signature(frame)
    with my.start_run(), pytest.warns(UserWarning, match="no training reference"):
        my.log_model(
            model,
            "extra",
            training_data=(frame.assign(note="x"), labels),
            input_example=frame[:5],
            signature=signature,
        )
    assert my.registry.get_manifest("extra", 1).reference is None


def test_labels_that_do_not_line_up_with_the_rows_are_refused(
    home: Path, training: tuple[pd.DataFrame, pd.Series], model: Pipeline
) -> None:
    frame, labels = training
    with my.start_run(), pytest.raises(InvalidInput, match="one label per row"):
        my.log_model(model, "short", training_data=(frame, labels[:10]))


def test_a_reference_file_that_differs_from_its_manifest_is_refused(
    home: Path, training: tuple[pd.DataFrame, pd.Series], model: Pipeline
) -> None:
    frame, labels = training
    with my.start_run():
        my.log_model(model, "guarded", training_data=(frame[:200], labels[:200]))
    manifest = my.registry.get_manifest("guarded", 1)
    with pytest.raises(IntegrityError, match=r"reference/profile\.json"):
        reference_of("guarded", 1, manifest, lambda path: b"{}")


def test_manifests_written_before_references_still_load() -> None:
    old = {
        "format": 1,
        "flavor": "sklearn",
        "model_class": "sklearn.linear_model.LogisticRegression",
        "files": [],
        "python": "3.11.9",
        "run_id": "r1",
        "artifact_path": "model",
        "created_at": 1,
        "created_by": "ana",
    }
    assert Manifest.from_bytes(json.dumps(old).encode()).reference is None


def test_the_cli_prints_the_reference_profile(
    home: Path, training: tuple[pd.DataFrame, pd.Series], model: Pipeline
) -> None:
    frame, labels = training
    with my.start_run():
        my.log_model(model, "churn", training_data=(frame.assign(region="north"), labels))
    result = runner.invoke(app, ["--home", str(home), "monitor", "reference", "churn", "1"])
    assert result.exit_code == 0, result.output
    assert "12000 rows, 10000 sampled" in result.stdout
    assert "monthly" in result.stdout and "numeric" in result.stdout
    assert "north 100%" in result.stdout
    as_json = runner.invoke(
        app, ["--home", str(home), "monitor", "reference", "churn", "1", "--json"]
    )
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.stdout)
    assert (body["model"], body["version"], body["rows"], body["sample_rows"]) == (
        "churn",
        1,
        ROWS,
        10_000,
    )
    assert [c["name"] for c in body["profile"]["columns"]] == [
        "tenure",
        "monthly",
        "plan",
        "region",
    ]
    missing = runner.invoke(app, ["--home", str(home), "monitor", "reference", "churn", "7"])
    assert missing.exit_code != 0


def test_the_rest_api_answers_the_reference_profile(
    live_server: str,
    tmp_path: Path,
    name: str,
    training: tuple[pd.DataFrame, pd.Series],
    model: Pipeline,
) -> None:
    frame, labels = training
    my.configure(home=tmp_path / "home", tracking_uri=live_server)
    try:
        with my.start_run():
            my.log_model(model, name, training_data=(frame, labels))
            my.log_model(model, name, input_example=frame[:5], artifact_path="bare")
    finally:
        my.configure(home=tmp_path / "unused")
    url = f"{live_server}/api/v1/monitoring/reference/{name}"
    answer = httpx.get(f"{url}/1", timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert {k: body[k] for k in ("model", "version", "rows", "sample_rows")} == {
        "model": name,
        "version": 1,
        "rows": ROWS,
        "sample_rows": 10_000,
    }
    assert body["profile"]["rows"] == ROWS
    assert [c["name"] for c in body["profile"]["columns"]] == ["tenure", "monthly", "plan"]
    bare = httpx.get(f"{url}/2", timeout=60)
    assert bare.status_code == 404 and "training_data=" in bare.json()["error"]["message"]
    assert httpx.get(f"{url}/9", timeout=60).status_code == 404
