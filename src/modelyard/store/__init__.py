"""Foundations of storage: the metadata database and the content-addressed artifact store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.store._artifacts import ArtifactStore, BlobInfo, StoredBlob, TempFile
from modelyard.store._gc import GcReport, collect_garbage
from modelyard.store._metadata import HEAD, REVISIONS, MetadataStore

if TYPE_CHECKING:
    from modelyard.config import Settings


def open_stores(settings: Settings) -> tuple[MetadataStore, ArtifactStore]:
    """The metadata database and the artifact store `settings` name."""
    metadata = MetadataStore(
        settings.resolved_db_url, busy_timeout_s=settings.sqlite_busy_timeout_s
    )
    try:
        return metadata, ArtifactStore(settings.resolved_artifacts_url)
    except BaseException:
        metadata.close()
        raise


__all__ = [
    "HEAD",
    "REVISIONS",
    "ArtifactStore",
    "BlobInfo",
    "GcReport",
    "MetadataStore",
    "StoredBlob",
    "TempFile",
    "collect_garbage",
    "open_stores",
]
