"""The manifest: everything known about a stored model, in one JSON file beside its files.

Its SHA-256 is the version's `manifest_digest`, and it lists the SHA-256 of every file,
so one digest in the registry pins every byte of a version.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from modelyard.errors import IntegrityError
from modelyard.models._signature import Signature

MANIFEST_FILE = "manifest.json"
FORMAT = 1


class FileEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    sha256: str
    size: int


class DatasetRef(BaseModel):
    """A dataset the run used (lineage): name, role and content digest."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: str
    digest: str
    num_rows: int | None = None
    num_columns: int | None = None
    source: str | None = None


class OnnxExport(BaseModel):
    """An ONNX copy stored beside the native model, checked to agree with it."""

    model_config = ConfigDict(frozen=True, ser_json_inf_nan="strings")

    path: str
    max_abs_diff: float
    tolerance: float
    opset: int | None = None


class FeatureBinding(BaseModel):
    """The features a version reads from the feature store: a service's `view:feature`
    references, the entity keys a request carries instead, and the view versions in force
    when it was logged (lineage)."""

    model_config = ConfigDict(frozen=True)

    service: str
    refs: list[str]
    join_keys: list[str]
    views: dict[str, int] = Field(default_factory=dict)
    full_feature_names: bool = False

    @property
    def columns(self) -> list[str]:
        """The model's input columns, in the order of `refs`."""
        names = []
        for ref in self.refs:
            view, feature = ref.split(":")
            names.append(f"{view}__{feature}" if self.full_feature_names else feature)
        return names


class ReferenceFiles(BaseModel):
    """The training data as monitoring compares against it: three of the version's files.

    `profile` is the profile of all `rows` training rows; `sample` holds `sample_rows` of
    them, drawn uniformly, and `outputs` the model's prediction, score and label on each.
    """

    model_config = ConfigDict(frozen=True)

    profile: str
    sample: str
    outputs: str
    rows: int
    sample_rows: int


class Manifest(BaseModel):
    # NaN and infinite metrics are written "NaN", "Infinity": JSON has no such numbers.
    model_config = ConfigDict(frozen=True, ser_json_inf_nan="strings")

    format: int = FORMAT
    name: str | None = None
    flavor: str
    flavor_options: dict[str, Any] = Field(default_factory=dict)
    model_class: str
    files: list[FileEntry]
    signature: Signature | None = None
    python: str
    requirements: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    run_id: str
    artifact_path: str
    datasets: list[DatasetRef] = Field(default_factory=list)
    git_commit: str | None = None
    onnx: OnnxExport | None = None
    reference: ReferenceFiles | None = None
    features: FeatureBinding | None = None
    created_at: int
    created_by: str

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            orjson.loads(self.model_dump_json()),
            option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        try:
            raw = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise IntegrityError(f"the model manifest is not valid JSON: {exc}") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            found = raw.get("format") if isinstance(raw, dict) else None
            raise IntegrityError(
                f"the model manifest has format {found!r}; this modelyard reads format {FORMAT}"
            )
        return cls.model_validate(raw)

    def model_files(self) -> list[FileEntry]:
        """The files loading the model needs: all but the training reference's."""
        reference = self.reference
        skip = (
            set() if reference is None else {reference.profile, reference.sample, reference.outputs}
        )
        return [entry for entry in self.files if entry.path not in skip]

    def file(self, path: str) -> FileEntry:
        for entry in self.files:
            if entry.path == path:
                return entry
        raise IntegrityError(f"the manifest lists no file {path!r}")
