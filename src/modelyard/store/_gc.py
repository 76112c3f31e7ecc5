"""Garbage collection of an artifact store: unreferenced blobs and crashed writers' temp files.

A blob is written before the metadata that references it is recorded, so a blob nothing
references yet may belong to a writer still in flight. Only blobs and temp files older than
a grace period are collected; the grace period must exceed the longest time a writer takes
between storing a blob and recording its reference (and any clock skew with the store).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from modelyard.errors import InvalidInput, NotFound
from modelyard.store._artifacts import ArtifactStore, StoredBlob, TempFile, parse_digest


@dataclass(frozen=True, slots=True)
class GcReport:
    """What a garbage collection found and, when applied, removed."""

    unreferenced: tuple[StoredBlob, ...]
    """Published blobs nothing references, older than the grace period."""
    stale_temp: tuple[TempFile, ...]
    """Temp files older than the grace period (left by crashed writers)."""
    missing: tuple[str, ...]
    """Digests referenced but absent from the store (dangling references)."""
    young: int
    """Unreferenced blobs and temp files skipped because newer than the grace period."""
    applied: bool
    freed_bytes: int
    """Bytes removed (0 when not applied)."""


def collect_garbage(
    store: ArtifactStore,
    referenced: Iterable[str],
    *,
    grace_s: float,
    apply: bool = False,
    now: float | None = None,
) -> GcReport:
    """List (and with `apply=True` remove) blobs nothing references and stale temp files.

    `referenced` is read after the store is listed, so a reference recorded while the
    listing runs is still seen. A dry run (the default) removes nothing.
    """
    if grace_s < 0:
        raise InvalidInput(f"grace_s must be zero or positive, got {grace_s}")
    cutoff = (time.time() if now is None else now) - grace_s
    blobs = list(store.list_blobs())
    temps = list(store.list_temp())
    report = plan_collection(blobs, temps, {parse_digest(d) for d in referenced}, cutoff)
    if not apply:
        return report
    return _apply(store, report, cutoff)


def plan_collection(
    blobs: Sequence[StoredBlob],
    temps: Sequence[TempFile],
    referenced: set[str],
    cutoff: float,
) -> GcReport:
    """Decide from listings alone (no I/O): collect what is unreferenced and not after `cutoff`."""
    unreferenced = [b for b in blobs if b.digest not in referenced]
    old_blobs = tuple(sorted((b for b in unreferenced if b.modified <= cutoff), key=_digest))
    old_temps = tuple(sorted((t for t in temps if t.modified <= cutoff), key=_key))
    young = len(unreferenced) - len(old_blobs) + len(temps) - len(old_temps)
    present = {b.digest for b in blobs}
    return GcReport(
        unreferenced=old_blobs,
        stale_temp=old_temps,
        missing=tuple(sorted(referenced - present)),
        young=young,
        applied=False,
        freed_bytes=0,
    )


def _apply(store: ArtifactStore, plan: GcReport, cutoff: float) -> GcReport:
    removed: list[StoredBlob] = []
    refreshed = 0
    for blob in plan.unreferenced:
        try:
            # A writer storing the same content again refreshes the blob's modified time
            # (see ArtifactStore); it is young again and not ours to take.
            if store.stat(blob.digest).modified > cutoff:
                refreshed += 1
                continue
            store.delete(blob.digest)
        except NotFound:  # removed meanwhile (another collector)
            continue
        removed.append(blob)
    removed_temp: list[TempFile] = []
    for temp in plan.stale_temp:
        try:
            store.delete_temp(temp.key)
        except NotFound:
            continue
        removed_temp.append(temp)
    freed = sum(b.size for b in removed) + sum(t.size for t in removed_temp)
    return replace(
        plan,
        unreferenced=tuple(removed),
        stale_temp=tuple(removed_temp),
        young=plan.young + refreshed,
        applied=True,
        freed_bytes=freed,
    )


def _digest(blob: StoredBlob) -> str:
    return blob.digest


def _key(temp: TempFile) -> str:
    return temp.key
