"""`load_model`: fetch a version's files, verify every byte, rebuild the model safely."""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modelyard.errors import (
    IntegrityError,
    InvalidInput,
    MissingDependency,
    NotFound,
    PermissionDenied,
)
from modelyard.models._flavor import LoadOptions, Predictor, get_flavor
from modelyard.models._manifest import MANIFEST_FILE, Manifest
from modelyard.tracking import _validate as v
from modelyard.tracking._environment import installed_packages

if TYPE_CHECKING:
    from modelyard.models._signature import Signature
    from modelyard.registry import ModelVersion, Registry
    from modelyard.tracking import Tracker

_RUNS_URI = re.compile(r"^runs:/(?P<run>[^/]+)/(?P<path>.+)$")


class PackageVersionWarning(UserWarning):
    """An installed library's major.minor version differs from the one the model was saved with."""


class LoadedModel:
    """A stored model ready to predict; inputs are checked against its signature first."""

    def __init__(
        self,
        predictor: Predictor,
        manifest: Manifest,
        *,
        uri: str,
        version: ModelVersion | None = None,
        runtime: str = "native",
        folder: Path | None = None,
    ) -> None:
        self._predictor = predictor
        self.manifest = manifest
        self.uri = uri
        self.version = version
        self.runtime = runtime
        self.folder = folder  # the verified local copy of the files, where there is one

    @property
    def signature(self) -> Signature | None:
        return self.manifest.signature

    @property
    def flavor(self) -> str:
        return self.manifest.flavor

    @property
    def native(self) -> Any:
        """The underlying library object (estimator, booster, module, ONNX session)."""
        return self._predictor.native

    @property
    def has_proba(self) -> bool:
        return self._predictor.has_proba

    @property
    def takes_array(self) -> bool:
        """Whether `outputs` takes a table as one 2-D array in the signature's column order."""
        return bool(getattr(self._predictor, "takes_array", False))

    def predict(self, data: Any) -> Any:
        import numpy as np

        return np.asarray(self._predictor.predict(self._check(data)))

    def predict_proba(self, data: Any) -> Any:
        import numpy as np

        if not self.has_proba:
            raise InvalidInput(f"{self.uri} ({self.flavor}) has no predict_proba; use predict")
        return np.asarray(self._predictor.predict_proba(self._check(data)))

    def outputs(self, conformed: Any) -> dict[str, Any]:
        """`predict`, and `predict_proba` where the model has it, as arrays, on input already
        conformed to the signature (`signature.validate_input`): the serving hot path checks
        each request once and runs many together."""
        import numpy as np

        together = getattr(self._predictor, "outputs", None)
        if together is not None:  # ONNX Runtime computes both in one run of the graph
            results: dict[str, Any] = together(conformed)
            return {name: np.asarray(values) for name, values in results.items()}
        outputs = {"predict": np.asarray(self._predictor.predict(conformed))}
        if self.has_proba:
            outputs["predict_proba"] = np.asarray(self._predictor.predict_proba(conformed))
        return outputs

    def _check(self, data: Any) -> Any:
        signature = self.manifest.signature
        return data if signature is None else signature.validate_input(data)

    def __repr__(self) -> str:
        return f"<LoadedModel {self.uri} flavor={self.flavor} runtime={self.runtime}>"


def load_model(
    uri: str,
    *,
    tracker: Tracker,
    registry: Registry,
    cache_dir: Path,
    allow_pickle: bool = False,
    trusted: Sequence[str] = (),
    onnx: bool | Literal["auto"] = False,
) -> LoadedModel:
    """Load `models:/name/3`, `models:/name@alias` or `runs:/RUN_ID/path`.

    `onnx=True` runs the ONNX export, `"auto"` runs it when the version has one.
    """
    version, manifest, digest = _manifest(uri, tracker, registry)
    if onnx == "auto":
        onnx = manifest.onnx is not None
    if manifest.flavor == "pickle" and not allow_pickle and not onnx:
        raise PermissionDenied(
            f"{uri} is a pickle, and loading a pickle can run any code it contains; "
            "pass allow_pickle=True only if you trust whoever wrote it"
        )
    if onnx and manifest.onnx is None:
        raise NotFound(f"{uri} has no ONNX export; log it with onnx=True")
    folder = _fetch(manifest, digest, tracker, cache_dir)
    _warn_on_version_drift(manifest)
    flavor = get_flavor("onnx" if onnx else manifest.flavor)
    options = {} if onnx else manifest.flavor_options
    try:
        predictor = flavor.load(folder, options, LoadOptions(allow_pickle, tuple(trusted)))
    except ImportError as exc:
        raise MissingDependency(
            f"{uri} needs {flavor.name} libraries that are not installed ({exc}); it was "
            f"saved with {_pins(manifest)}"
        ) from None
    runtime = "onnx" if onnx else "native"
    return LoadedModel(
        predictor, manifest, uri=uri, version=version, runtime=runtime, folder=folder
    )


def _manifest(
    uri: str, tracker: Tracker, registry: Registry
) -> tuple[ModelVersion | None, Manifest, str]:
    if not isinstance(uri, str):
        raise InvalidInput(f"a model URI is a string, not {type(uri).__name__}")
    if uri.startswith("models:/"):
        version = registry.resolve(uri)
        manifest = registry.get_manifest(version.name, version.version)
        if manifest is None or version.manifest_digest is None:
            raise NotFound(
                f"{uri} (version {version.version}) has no stored model: it was registered "
                "without log_model"
            )
        return version, manifest, version.manifest_digest
    match = _RUNS_URI.match(uri)
    if match is None:
        raise InvalidInput(
            f"not a model URI: {uri!r}; use models:/name/3, models:/name@alias or runs:/RUN_ID/path"
        )
    path = v.artifact_path(match["path"].rstrip("/"))
    data = tracker.read_artifact(v.run_id(match["run"]), f"{path}/{MANIFEST_FILE}")
    return None, Manifest.from_bytes(data), hashlib.sha256(data).hexdigest()


def _fetch(manifest: Manifest, digest: str, tracker: Tracker, cache_dir: Path) -> Path:
    """The version's model files (not its training reference) in a local folder named by the
    manifest digest, all verified."""
    folder = cache_dir / digest
    if folder.is_dir() and _intact(manifest, folder):
        return folder
    temp = cache_dir / f".tmp-{uuid.uuid4().hex}"
    temp.mkdir(parents=True)
    try:
        for entry in manifest.model_files():
            data = tracker.read_artifact(manifest.run_id, f"{manifest.artifact_path}/{entry.path}")
            if hashlib.sha256(data).hexdigest() != entry.sha256:
                raise IntegrityError(
                    f"model file {entry.path!r} of run {manifest.run_id} does not match the "
                    "SHA-256 in its manifest; the stored model was altered"
                )
            target = temp / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        if folder.exists():  # stale or altered cache, or another process got there first
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(temp, folder)
        except OSError:
            if not (folder.is_dir() and _intact(manifest, folder)):
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return folder


def _intact(manifest: Manifest, folder: Path) -> bool:
    for entry in manifest.model_files():
        path = folder / entry.path
        try:
            with path.open("rb") as handle:
                actual = hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError:
            return False
        if actual != entry.sha256:
            return False
    return True


def _warn_on_version_drift(manifest: Manifest) -> None:
    installed = installed_packages()
    drift = [
        f"{name} {recorded} (installed: {installed[name]})"
        for name, recorded in manifest.requirements.items()
        if name in installed and _major_minor(installed[name]) != _major_minor(recorded)
    ]
    if _major_minor(platform.python_version()) != _major_minor(manifest.python):
        drift.append(f"Python {manifest.python} (running: {platform.python_version()})")
    if drift:
        warnings.warn(
            f"model saved with {', '.join(drift)}; predictions may differ",
            PackageVersionWarning,
            stacklevel=3,
        )


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def _pins(manifest: Manifest) -> str:
    return " ".join(f"{name}=={version}" for name, version in manifest.requirements.items()) or (
        "no recorded packages"
    )
