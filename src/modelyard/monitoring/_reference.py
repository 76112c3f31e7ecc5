"""A version's training reference, read back: what production data is compared against.

`log_model(..., training_data=X or (X, y))` stores it with the version (see
`modelyard.models._reference`); every file is checked against the SHA-256 its manifest
lists before it is parsed.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.errors import IntegrityError, NotFound

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.data import Profile
    from modelyard.models import Manifest
    from modelyard.registry import Registry


@dataclass(frozen=True, eq=False)
class TrainingReference:
    """The training data of version `version` of `model`, as monitoring compares against it.

    `profile` summarises all `rows` training rows; `sample` is a uniform sample of them (at
    most 10,000, in training order); `outputs` holds, row for row with `sample`, the model's
    `prediction`, its `score` (a binary classifier's probability of its second class, NaN
    otherwise) and the `label` when the model was logged with `training_data=(X, y)`: the
    columns `join_feedback` gives served predictions.
    """

    model: str
    version: int
    rows: int
    profile: Profile
    sample: pd.DataFrame
    outputs: pd.DataFrame

    @property
    def sample_rows(self) -> int:
        return len(self.sample)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: the profile, without the sample and outputs."""
        return {
            "model": self.model,
            "version": self.version,
            "rows": self.rows,
            "sample_rows": self.sample_rows,
            "profile": self.profile.to_dict(),
        }


def training_reference(model: str, version: int) -> TrainingReference:
    """The training reference of a version, from the default registry and stores.

    Raises `NotFound` for an unknown model or version, or a version logged without
    `training_data=`.
    """
    from modelyard._sdk import default_registry, tracker

    return read_reference(default_registry(), tracker().read_artifact, model, version)


def read_reference(
    registry: Registry, read_artifact: Callable[[str, str], bytes], model: str, version: int
) -> TrainingReference:
    """`training_reference` on a given registry and artifact reader (`read_artifact(run_id,
    path)`, e.g. a tracker's)."""
    manifest = registry.get_manifest(model, version)
    if manifest is None:
        raise NotFound(
            f"version {version} of model {model!r} has no stored model (it was registered "
            "without log_model), so no training reference; log the model with "
            "training_data=X or (X, y)"
        )
    return reference_of(model, version, manifest, lambda path: read_artifact(manifest.run_id, path))


def reference_of(
    model: str, version: int, manifest: Manifest, read: Callable[[str], bytes]
) -> TrainingReference:
    """The training reference `manifest` (of version `version` of `model`) lists.

    `read(path)` returns an artifact of the manifest's run by its path in the run (the
    manifest's `artifact_path`, a slash, the file's path in the manifest). Each file must
    match the SHA-256 the manifest lists.
    """
    import pandas as pd

    from modelyard.data import Profile

    files = manifest.reference
    if files is None:
        raise NotFound(
            f"version {version} of model {model!r} has no training reference; log the model "
            "with training_data=X or (X, y) (a DataFrame or a 2-D array) to store one"
        )

    def verified(path: str) -> bytes:
        data = read(f"{manifest.artifact_path}/{path}")
        if hashlib.sha256(data).hexdigest() != manifest.file(path).sha256:
            raise IntegrityError(
                f"reference file {path!r} of version {version} of model {model!r} does not "
                "match the SHA-256 in its manifest; the stored model was altered"
            )
        return data

    return TrainingReference(
        model=model,
        version=version,
        rows=files.rows,
        profile=Profile.from_json(verified(files.profile)),
        sample=pd.read_parquet(io.BytesIO(verified(files.sample))),
        outputs=pd.read_parquet(io.BytesIO(verified(files.outputs))),
    )
