"""Foundations of storage: the metadata database and the content-addressed artifact store."""

from modelyard.store._artifacts import ArtifactStore, BlobInfo, StoredBlob, TempFile
from modelyard.store._gc import GcReport, collect_garbage
from modelyard.store._metadata import HEAD, REVISIONS, MetadataStore

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
]
