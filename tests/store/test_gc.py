"""Garbage collection of artifact stores: what is kept, what is listed, what is removed."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.errors import InvalidInput
from modelyard.store._artifacts import ArtifactStore, StoredBlob, TempFile
from modelyard.store._gc import collect_garbage, plan_collection

if TYPE_CHECKING:
    from tests.store.conftest import Backend

HOUR = 3600.0


def later() -> float:
    """A clock an hour ahead: everything stored so far is older than a minute's grace."""
    return time.time() + HOUR


def put_temp(artifacts: Backend, data: bytes) -> str:
    """Leave a temp file the way a crashed writer would."""
    key = f"tmp/{uuid.uuid4().hex}"
    artifacts.write(f"{artifacts.root}/{key}", data)
    return key


def age(artifacts: Backend, digest: str, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(artifacts.blob_path(digest), (then, then))


def test_dry_run_lists_old_unreferenced_blobs_and_removes_nothing(artifacts: Backend) -> None:
    kept = artifacts.store.put_bytes(b"kept")
    orphan = artifacts.store.put_bytes(b"orphan")

    report = collect_garbage(artifacts.store, [kept.digest], grace_s=60, now=later())

    assert [blob.digest for blob in report.unreferenced] == [orphan.digest]
    assert report.unreferenced[0].size == orphan.size
    assert not report.applied
    assert report.freed_bytes == 0
    assert artifacts.store.exists(orphan.digest)


def test_referenced_blobs_are_kept(artifacts: Backend) -> None:
    a = artifacts.store.put_bytes(b"a")
    b = artifacts.store.put_bytes(b"b")

    report = collect_garbage(
        artifacts.store, [a.digest, b.digest], grace_s=60, apply=True, now=later()
    )

    assert report.unreferenced == ()
    assert report.freed_bytes == 0
    assert artifacts.store.exists(a.digest)
    assert artifacts.store.exists(b.digest)


def test_apply_removes_unreferenced_blobs_and_reports_freed_bytes(artifacts: Backend) -> None:
    kept = artifacts.store.put_bytes(b"kept")
    small = artifacts.store.put_bytes(b"x" * 10)
    large = artifacts.store.put_bytes(b"y" * 20)

    report = collect_garbage(artifacts.store, [kept.digest], grace_s=60, apply=True, now=later())

    assert report.applied
    assert {blob.digest for blob in report.unreferenced} == {small.digest, large.digest}
    assert report.freed_bytes == 30
    assert [blob.digest for blob in artifacts.store.list_blobs()] == [kept.digest]


def test_young_unreferenced_blobs_are_counted_not_removed(artifacts: Backend) -> None:
    blob = artifacts.store.put_bytes(b"just written, reference not yet recorded")
    put_temp(artifacts, b"partial")

    report = collect_garbage(artifacts.store, [], grace_s=HOUR, apply=True)

    assert report.young == 2
    assert report.unreferenced == ()
    assert report.stale_temp == ()
    assert report.freed_bytes == 0
    assert artifacts.store.exists(blob.digest)
    assert len(list(artifacts.store.list_temp())) == 1


def test_missing_referenced_digests_are_reported(artifacts: Backend) -> None:
    present = artifacts.store.put_bytes(b"present")
    absent = hashlib.sha256(b"lost").hexdigest()

    report = collect_garbage(artifacts.store, [present.digest, absent, absent], grace_s=60)

    assert report.missing == (absent,)
    assert report.unreferenced == ()


def test_stale_temp_files_are_listed_then_removed(artifacts: Backend) -> None:
    key = put_temp(artifacts, b"half a model")

    dry = collect_garbage(artifacts.store, [], grace_s=60, now=later())
    applied = collect_garbage(artifacts.store, [], grace_s=60, apply=True, now=later())

    assert [temp.key for temp in dry.stale_temp] == [key]
    assert dry.stale_temp[0].size == 12
    assert [temp.key for temp in applied.stale_temp] == [key]
    assert applied.freed_bytes == 12
    assert list(artifacts.store.list_temp()) == []


def test_grace_period_separates_old_from_young(local_artifacts: Backend) -> None:
    old = local_artifacts.store.put_bytes(b"old")
    young = local_artifacts.store.put_bytes(b"young")
    age(local_artifacts, old.digest, 2 * HOUR)

    report = collect_garbage(local_artifacts.store, [], grace_s=HOUR, apply=True)

    assert [blob.digest for blob in report.unreferenced] == [old.digest]
    assert report.young == 1
    assert [blob.digest for blob in local_artifacts.store.list_blobs()] == [young.digest]


class RacingStore(ArtifactStore):
    """Runs `race` right after the collector lists the blobs."""

    def __init__(self, url: str, race: list[bytes]) -> None:
        super().__init__(url)
        self.race = race

    def list_blobs(self) -> Iterator[StoredBlob]:
        listed = list(super().list_blobs())
        for data in self.race:
            self.put_bytes(data)
        return iter(listed)


def test_blob_stored_again_during_collection_is_kept(local_artifacts: Backend) -> None:
    info = local_artifacts.store.put_bytes(b"model")
    age(local_artifacts, info.digest, 2 * HOUR)
    store = RacingStore(local_artifacts.url, race=[b"model"])

    report = collect_garbage(store, [], grace_s=HOUR, apply=True)

    assert report.unreferenced == ()
    assert report.young == 1
    assert store.exists(info.digest)


def test_blob_already_removed_by_another_collector_is_skipped(local_artifacts: Backend) -> None:
    gone = local_artifacts.store.put_bytes(b"gone")
    there = local_artifacts.store.put_bytes(b"there")
    plan = collect_garbage(local_artifacts.store, [], grace_s=60, now=later())
    local_artifacts.store.delete(gone.digest)

    report = collect_garbage(local_artifacts.store, [], grace_s=60, apply=True, now=later())

    assert len(plan.unreferenced) == 2
    assert [blob.digest for blob in report.unreferenced] == [there.digest]
    assert report.freed_bytes == there.size


def test_invalid_referenced_digest_raises_invalid_input(artifacts: Backend) -> None:
    with pytest.raises(InvalidInput, match="SHA-256"):
        collect_garbage(artifacts.store, ["not-a-digest"], grace_s=60)


def test_negative_grace_raises_invalid_input(artifacts: Backend) -> None:
    with pytest.raises(InvalidInput, match="grace_s"):
        collect_garbage(artifacts.store, [], grace_s=-1)


digests = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
stamps = st.floats(min_value=0, max_value=100)


@settings(max_examples=50, deadline=None)
@given(
    blobs=st.dictionaries(digests, stamps, max_size=8),
    temps=st.lists(stamps, max_size=4),
    referenced=st.sets(digests, max_size=4),
    cutoff=stamps,
)
def test_plan_puts_every_unreferenced_item_in_exactly_one_bucket(
    blobs: dict[str, float], temps: list[float], referenced: set[str], cutoff: float
) -> None:
    listed = [StoredBlob(digest=d, size=1, modified=m) for d, m in blobs.items()]
    temp_files = [TempFile(key=f"tmp/{i}", size=1, modified=m) for i, m in enumerate(temps)]
    referenced |= set(list(blobs)[:2])

    report = plan_collection(listed, temp_files, referenced, cutoff)

    collected = {blob.digest for blob in report.unreferenced}
    assert not collected & referenced
    assert all(blob.modified <= cutoff for blob in report.unreferenced)
    assert all(temp.modified <= cutoff for temp in report.stale_temp)
    unreferenced = [d for d in blobs if d not in referenced]
    assert len(collected) + len(report.stale_temp) + report.young == len(unreferenced) + len(temps)
    assert set(report.missing) == referenced - set(blobs)
