"""`log_model`: write a model with its flavor, describe it in a manifest, register it.

The files go into the run's artifacts under `artifact_path`; the manifest lists each
file's SHA-256 and is itself stored last, so a version is registered only once every
byte it names is in the store.
"""

from __future__ import annotations

import functools
import hashlib
import io
import platform
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.errors import Conflict, InvalidInput
from modelyard.models._flavor import Flavor, LoadOptions, SaveOptions, detect_flavor, get_flavor
from modelyard.models._manifest import (
    MANIFEST_FILE,
    DatasetRef,
    FeatureBinding,
    FileEntry,
    Manifest,
    OnnxExport,
)
from modelyard.models._reference import write_reference
from modelyard.models._signature import Signature, infer_output, infer_signature
from modelyard.tracking import _validate as v
from modelyard.tracking._datasets import describe_dataset
from modelyard.tracking._entities import DatasetInput, now_ms
from modelyard.tracking._environment import current_user, installed_packages

if TYPE_CHECKING:
    from modelyard.registry import ModelVersion, Registry
    from modelyard.tracking import Tracker

ONNX_FILE = "model.onnx"
EXAMPLE_ROWS = 5
# Distributions published under more than one name (CPU-only wheels).
_DISTRIBUTION_NAMES = {"xgboost": ("xgboost", "xgboost-cpu")}


@dataclass(frozen=True)
class ModelSpec:
    """What the user asked `log_model` for, beyond the model object."""

    name: str
    artifact_path: str
    input_example: Any = None
    training_data: Any = None
    signature: Signature | None = None
    pii: Sequence[str] | None = None
    flavor: str | None = None
    allow_pickle: bool = False
    trusted: tuple[str, ...] = ()
    init_args: Mapping[str, Any] | None = None
    onnx: bool = False
    onnx_tolerance: float = 1e-4
    description: str | None = None
    tags: Mapping[str, Any] | None = None
    features: FeatureBinding | None = None


def _check_binding(binding: FeatureBinding | None, signature: Signature | None) -> None:
    """A model that reads a feature service takes nothing but its features."""
    if binding is None or signature is None or signature.columns is None:
        return
    if unknown := [c.name for c in signature.columns if c.name not in binding.columns]:
        raise InvalidInput(
            f"the model's input has columns {unknown} that feature service "
            f"{binding.service!r} does not give (it gives {binding.columns})"
        )


def log_model(
    model: Any, spec: ModelSpec, *, run_id: str, tracker: Tracker, registry: Registry
) -> ModelVersion:
    """Store `model` in run `run_id` and register it as the next version of `spec.name`."""
    v.check_name("model", spec.name)
    artifact_path = v.artifact_path(spec.artifact_path)
    flavor = get_flavor(spec.flavor) if spec.flavor else detect_flavor(model)
    features = _features(spec.training_data)
    example = _example(spec.input_example, features)
    signature = spec.signature or infer_signature(
        features if features is not None else example, pii=spec.pii
    )
    _check_binding(spec.features, signature)
    if any(a.path.startswith(f"{artifact_path}/") for a in tracker.list_artifacts(run_id)):
        raise Conflict(
            f"run {run_id} already holds a model at {artifact_path!r}; pass another artifact_path"
        )
    with tempfile.TemporaryDirectory(prefix="modelyard-model-") as tmp:
        folder = Path(tmp)
        options = flavor.save(model, folder, _save_options(spec))
        checked = signature.validate_input(example)
        loaded = flavor.load(folder, options, LoadOptions(allow_pickle=spec.allow_pickle))
        signature = signature.with_outputs(_outputs(loaded, checked))
        labels = _labels(spec.training_data)
        reference = write_reference(folder, features, labels, signature, loaded)
        onnx = _export_onnx(model, checked, folder, spec) if spec.onnx else None
        if features is not None:
            tracker.backend.log_dataset(run_id, _training_dataset(spec.training_data, spec.name))
        files = _store_files(folder, artifact_path, run_id, tracker)
    run = tracker.get_run(run_id)
    git = (run.environment or {}).get("git") or {}
    manifest = Manifest(
        name=spec.name,
        flavor=flavor.name,
        flavor_options=options,
        model_class=f"{type(model).__module__}.{type(model).__qualname__}",
        files=files,
        signature=signature,
        python=platform.python_version(),
        requirements=requirements(flavor),
        metrics={key: metric.value for key, metric in run.metrics.items()},
        run_id=run_id,
        artifact_path=artifact_path,
        datasets=[
            DatasetRef(
                name=d.name,
                role=d.role,
                digest=d.digest,
                num_rows=d.num_rows,
                num_columns=d.num_columns,
                source=d.source,
            )
            for d in run.datasets
        ],
        git_commit=git.get("commit"),
        onnx=onnx,
        reference=reference,
        features=spec.features,
        created_at=now_ms(),
        created_by=current_user(),
    )
    stored = tracker.store_artifact(
        run_id, f"{artifact_path}/{MANIFEST_FILE}", io.BytesIO(manifest.to_bytes())
    )
    return registry.create_version(
        spec.name,
        created_by=manifest.created_by,
        run_id=run_id,
        manifest_digest=stored.digest,
        flavor=flavor.name,
        description=spec.description,
        tags=spec.tags,
    )


def requirements(flavor: Flavor) -> dict[str, str]:
    """Exact installed versions of the distributions `flavor` needs, by name."""
    found: dict[str, str] = {}
    for package in flavor.packages:
        resolved = _distribution(package)
        if resolved is not None:
            found[resolved[0]] = resolved[1]
    return found


@functools.cache
def _distribution(package: str) -> tuple[str, str] | None:
    """The installed (name, version) of `package`, read once per process: the flavor's
    library is already imported by then, and an upgrade on disk does not change it."""
    installed = installed_packages()
    for name in _DISTRIBUTION_NAMES.get(package, (package,)):
        if name in installed:
            return name, installed[name]
    return None


def _save_options(spec: ModelSpec) -> SaveOptions:
    return SaveOptions(
        allow_pickle=spec.allow_pickle,
        trusted=tuple(spec.trusted),
        init_args=dict(spec.init_args or {}),
    )


def _features(training_data: Any) -> Any:
    """The feature part of `training_data`: `X` of an `(X, y)` pair, or the data itself."""
    if training_data is None:
        return None
    if isinstance(training_data, tuple):
        if len(training_data) != 2:
            raise InvalidInput("training_data is X or a pair (X, y)")
        return training_data[0]
    return training_data


def _labels(training_data: Any) -> Any:
    """The `y` of an `(X, y)` pair; None when `training_data` is only `X`."""
    return training_data[1] if isinstance(training_data, tuple) else None


def _training_dataset(training_data: Any, name: str) -> DatasetInput:
    """The lineage record of `training_data`; an `(X, y)` pair is hashed as one dataset."""
    dataset_name = f"{name}.training"
    if not isinstance(training_data, tuple):
        return describe_dataset(training_data, name=dataset_name, role="training")
    features, target = (
        describe_dataset(part, name=dataset_name, role="training") for part in training_data
    )
    digest = hashlib.sha256(f"{features.digest}{target.digest}".encode()).hexdigest()
    schema = {**features.schema, **{f"target.{k}": val for k, val in target.schema.items()}}
    columns = (features.num_columns or 0) + (target.num_columns or 1)
    return DatasetInput(dataset_name, "training", digest, schema, features.num_rows, columns)


def _example(input_example: Any, features: Any) -> Any:
    if input_example is not None:
        return input_example
    if features is None:
        raise InvalidInput(
            "log_model needs input_example= or training_data=: the inputs the model accepts "
            "are described from them, and the stored model is tried on them before it is "
            "registered"
        )
    return features[:EXAMPLE_ROWS]


def _outputs(loaded: Any, checked: Any) -> list[Any]:
    outputs = [infer_output("predict", loaded.predict(checked))]
    if loaded.has_proba:
        outputs.append(infer_output("predict_proba", loaded.predict_proba(checked)))
    return outputs


def _export_onnx(model: Any, checked: Any, folder: Path, spec: ModelSpec) -> OnnxExport:
    from modelyard.models._onnx import to_onnx

    data, diff = to_onnx(model, checked, tolerance=spec.onnx_tolerance)
    (folder / ONNX_FILE).write_bytes(data)
    return OnnxExport(path=ONNX_FILE, max_abs_diff=diff, tolerance=spec.onnx_tolerance)


def _store_files(
    folder: Path, artifact_path: str, run_id: str, tracker: Tracker
) -> list[FileEntry]:
    """Store every file of `folder`; the store's digest is the SHA-256 of the content."""
    entries = []
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = file.relative_to(folder).as_posix()
        with file.open("rb") as source:
            stored = tracker.store_artifact(run_id, f"{artifact_path}/{relative}", source)
        entries.append(FileEntry(path=relative, sha256=stored.digest, size=stored.size))
    return entries
