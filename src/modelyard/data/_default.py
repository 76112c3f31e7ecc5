"""`my.data.*` on the default stores: dataset versions in the metadata database that
`my.configure` names (not a server: use its REST API, /api/v1/data)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    from modelyard.config import Settings
    from modelyard.data._lineage import LineageGraph
    from modelyard.data._validate import ValidationReport
    from modelyard.data._versions import DatasetComparison, DatasetVersion, DatasetVersions
    from modelyard.models._signature import Signature

LINEAGE_ATTR = "modelyard_lineage"  # what a training frame records in DataFrame.attrs
_REMOTE = (
    "dataset versions live where the metadata database is: with tracking_uri set, use the "
    "server's REST API (/api/v1/data), or point modelyard at the database itself"
)


def default_dataset_versions() -> DatasetVersions:
    """The dataset versions of the default metadata database."""
    from modelyard._sdk import _local_metadata
    from modelyard.data._versions import DatasetVersions

    metadata = _local_metadata()
    if metadata is None:
        raise InvalidInput(_REMOTE)
    return DatasetVersions(metadata)


@contextmanager
def open_dataset_versions(settings: Settings) -> Iterator[DatasetVersions]:
    """The dataset versions on the stores `settings` name (for the CLI)."""
    from modelyard.data._versions import DatasetVersions
    from modelyard.tracking import open_local_backend

    if settings.tracking_uri:
        raise InvalidInput(_REMOTE)
    backend = open_local_backend(settings)
    try:
        yield DatasetVersions(backend.metadata)
    finally:
        backend.close()


def log_dataset(
    data: Any,
    *,
    name: str,
    description: str = "",
    tags: Mapping[str, Any] | None = None,
    lineage: Mapping[str, Any] | None = None,
) -> DatasetVersion:
    """Store a DataFrame, Parquet/CSV file or Parquet folder as the next version of `name`
    (or return the version that has this content). `lineage` is a JSON object of what it was
    derived from: {"feature_views": [{"name": "trips", "version": 2}], "labels": "churn@1"};
    a training frame from `my.features.get_training_frame` carries its own."""
    from modelyard.tracking._environment import current_user

    if lineage is None:
        lineage = getattr(data, "attrs", {}).get(LINEAGE_ATTR)
    return default_dataset_versions().log(
        data, name=name, description=description, tags=tags, lineage=lineage, actor=current_user()
    )


def get_dataset(name: str, version: int | None = None) -> DatasetVersion:
    """Version `version` of dataset `name`, or its latest."""
    return default_dataset_versions().get(name, version)


def list_datasets(name: str | None = None) -> list[DatasetVersion]:
    """Every version of `name`, oldest first; without a name, each dataset's latest version."""
    return default_dataset_versions().all(name)


def compare_datasets(name: str, v1: int, v2: int) -> DatasetComparison:
    """Schema changes, range changes, row counts and profile drift from `v1` to `v2`."""
    from modelyard.data._versions import compare_versions

    versions = default_dataset_versions()
    return compare_versions(versions.get(name, v1), versions.get(name, v2))


def validate(data: Any, schema: Signature | DatasetVersion | str) -> ValidationReport:
    """Every violation of `schema` in `data`: a Signature, a DatasetVersion, or the name of a
    stored version ("churn" for the latest, "churn@3")."""
    from modelyard.data._validate import validate as check

    if isinstance(schema, str):
        return check(data, default_dataset_versions().resolve(schema))
    return check(data, schema)


def lineage(model: str, version: int) -> LineageGraph:
    """Model version → the feature service and views it reads; → run → datasets → feature
    views and labels; and → deployments."""
    from modelyard._sdk import default_registry
    from modelyard.data._lineage import feature_binding, model_lineage

    binding = feature_binding(default_registry(), model, version)
    return model_lineage(default_dataset_versions().metadata, model, version, binding)


def lineage_of_dataset(name: str, version: int | None = None) -> LineageGraph:
    """Dataset version → what it was derived from; and → runs → model versions → deployments."""
    from modelyard.data._lineage import dataset_lineage

    return dataset_lineage(default_dataset_versions().metadata, name, version)
