"""The ArtifactStore contract, run against a local folder, memory:// and S3 (moto)."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import modelyard
from modelyard.errors import IntegrityError, InvalidInput, NotFound, StoreUnavailable
from modelyard.store._artifacts import CHUNK_SIZE, ArtifactStore, BlobInfo
from modelyard.store._gc import collect_garbage

if TYPE_CHECKING:
    from tests.store.conftest import Backend


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class RecordingStream(io.BytesIO):
    """A stream that remembers how much each read asked for."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.requested: list[int | None] = []

    def read(self, size: int | None = -1) -> bytes:
        self.requested.append(size)
        return super().read(size)


# -- round trips -------------------------------------------------------------------------


def test_put_bytes_returns_sha256_and_size_and_reads_back(artifacts: Backend) -> None:
    info = artifacts.store.put_bytes(b"weights")

    assert info == BlobInfo(digest=sha256(b"weights"), size=7)
    assert artifacts.store.read_bytes(info.digest) == b"weights"
    assert artifacts.store.exists(info.digest)
    assert artifacts.store.size(info.digest) == 7


def test_empty_blob_round_trips(artifacts: Backend) -> None:
    info = artifacts.store.put_bytes(b"")

    assert info == BlobInfo(digest=sha256(b""), size=0)
    assert artifacts.store.read_bytes(info.digest) == b""
    assert list(artifacts.store.iter_chunks(info.digest)) == []


def test_multi_chunk_blob_streams_back_in_chunks(artifacts: Backend) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 123)

    info = artifacts.store.put_stream(io.BytesIO(data))
    chunks = list(artifacts.store.iter_chunks(info.digest))

    assert info == BlobInfo(digest=sha256(data), size=len(data))
    assert b"".join(chunks) == data
    assert len(chunks) == 3
    assert all(len(chunk) <= CHUNK_SIZE for chunk in chunks)


def test_put_stream_reads_in_bounded_chunks(artifacts: Backend) -> None:
    data = os.urandom(3 * CHUNK_SIZE)
    stream = RecordingStream(data)

    artifacts.store.put_stream(stream)

    assert stream.requested
    assert all(size is not None and 0 < size <= CHUNK_SIZE for size in stream.requested)


def test_put_file_round_trips(artifacts: Backend, tmp_path: Path) -> None:
    source = tmp_path / "model.onnx"
    source.write_bytes(b"\x08\x07onnx" * 1000)

    info = artifacts.store.put_file(source)

    assert info == BlobInfo(digest=sha256(source.read_bytes()), size=source.stat().st_size)
    assert artifacts.store.read_bytes(info.digest) == source.read_bytes()


def test_put_file_of_missing_path_raises_not_found(artifacts: Backend, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no such file"):
        artifacts.store.put_file(tmp_path / "absent.bin")


def test_iter_chunks_honours_chunk_size(artifacts: Backend) -> None:
    info = artifacts.store.put_bytes(b"0123456789")

    assert list(artifacts.store.iter_chunks(info.digest, chunk_size=4)) == [b"0123", b"4567", b"89"]


def test_iter_chunks_rejects_non_positive_chunk_size(artifacts: Backend) -> None:
    info = artifacts.store.put_bytes(b"x")

    with pytest.raises(InvalidInput, match="chunk_size"):
        artifacts.store.iter_chunks(info.digest, chunk_size=0)


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(max_size=4096))
def test_read_bytes_returns_what_put_bytes_stored(fast_artifacts: Backend, data: bytes) -> None:
    info = fast_artifacts.store.put_bytes(data)

    assert info.digest == sha256(data)
    assert fast_artifacts.store.read_bytes(info.digest) == data


# -- layout, dedup, listing ---------------------------------------------------------------


def test_blob_is_stored_under_its_digest_in_sharded_layout(artifacts: Backend) -> None:
    info = artifacts.store.put_bytes(b"layout")

    assert artifacts.fs.cat_file(artifacts.blob_path(info.digest)) == b"layout"


def test_same_content_stored_twice_is_one_blob(artifacts: Backend) -> None:
    first = artifacts.store.put_bytes(b"same")
    second = artifacts.store.put_stream(io.BytesIO(b"same"))

    assert first == second
    assert [blob.digest for blob in artifacts.store.list_blobs()] == [first.digest]


def test_writes_leave_no_temp_files(artifacts: Backend) -> None:
    artifacts.store.put_bytes(b"a")
    artifacts.store.put_bytes(b"a")
    artifacts.store.put_stream(io.BytesIO(b"b" * (CHUNK_SIZE + 1)))

    assert list(artifacts.store.list_temp()) == []


def test_list_blobs_lists_every_blob_with_size_and_time(artifacts: Backend) -> None:
    before = time.time()
    a = artifacts.store.put_bytes(b"a")
    b = artifacts.store.put_bytes(b"bb")
    after = time.time()

    blobs = sorted(artifacts.store.list_blobs(), key=lambda blob: blob.size)

    assert [(blob.digest, blob.size) for blob in blobs] == [(a.digest, 1), (b.digest, 2)]
    # S3 keeps whole seconds
    assert all(before - 2 <= blob.modified <= after + 2 for blob in blobs)


def test_list_blobs_skips_files_not_named_by_their_digest(artifacts: Backend) -> None:
    info = artifacts.store.put_bytes(b"real")
    artifacts.write(f"{artifacts.root}/blobs/sha256/zz/not-a-digest", b"x")
    artifacts.write(f"{artifacts.root}/blobs/sha256/00/{sha256(b'elsewhere')}", b"x")

    assert [blob.digest for blob in artifacts.store.list_blobs()] == [info.digest]


def test_empty_store_lists_nothing(artifacts: Backend) -> None:
    assert list(artifacts.store.list_blobs()) == []
    assert list(artifacts.store.list_temp()) == []


def test_reopened_store_sees_stored_blobs(artifacts: Backend) -> None:
    info = artifacts.store.put_bytes(b"persisted")

    reopened = ArtifactStore(artifacts.store.url, storage_options=artifacts.storage_options)

    assert reopened.url == artifacts.store.url
    assert reopened.read_bytes(info.digest) == b"persisted"


def test_delete_removes_the_blob(artifacts: Backend) -> None:
    info = artifacts.store.put_bytes(b"gone")

    artifacts.store.delete(info.digest)

    assert not artifacts.store.exists(info.digest)
    assert list(artifacts.store.list_blobs()) == []


def test_concurrent_writers_of_same_content_all_succeed(artifacts: Backend) -> None:
    data = os.urandom(256 * 1024)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: artifacts.store.put_bytes(data), range(8)))

    assert set(results) == {BlobInfo(digest=sha256(data), size=len(data))}
    assert [blob.digest for blob in artifacts.store.list_blobs()] == [sha256(data)]
    assert list(artifacts.store.list_temp()) == []
    assert artifacts.store.read_bytes(sha256(data)) == data


# -- download ------------------------------------------------------------------------------


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    """An empty folder to download into (the local store lives elsewhere in tmp_path)."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    return folder


def test_download_writes_the_blob_creating_folders(artifacts: Backend, downloads: Path) -> None:
    info = artifacts.store.put_bytes(b"model bytes")
    dest = downloads / "out" / "nested" / "model.bin"

    artifacts.store.download(info.digest, dest)

    assert dest.read_bytes() == b"model bytes"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model.bin"]


def test_download_replaces_an_existing_file(artifacts: Backend, downloads: Path) -> None:
    info = artifacts.store.put_bytes(b"new")
    dest = downloads / "model.bin"
    dest.write_bytes(b"old content")

    artifacts.store.download(info.digest, str(dest))

    assert dest.read_bytes() == b"new"


# -- tampering ----------------------------------------------------------------------------


def tamper(artifacts: Backend, original: bytes, replacement: bytes) -> str:
    digest = artifacts.store.put_bytes(original).digest
    artifacts.write(artifacts.blob_path(digest), replacement)
    return digest


def test_tampered_blob_raises_integrity_error(artifacts: Backend) -> None:
    digest = tamper(artifacts, b"trusted", b"evil")

    with pytest.raises(IntegrityError, match=rf"blob {digest} .* is corrupt"):
        artifacts.store.read_bytes(digest)


def test_tampered_blob_fails_iter_chunks_once_exhausted(artifacts: Backend) -> None:
    digest = tamper(artifacts, b"trusted bytes", b"evil  bytes!!")
    received: list[bytes] = []

    with pytest.raises(IntegrityError, match=digest):
        for chunk in artifacts.store.iter_chunks(digest, chunk_size=4):
            received.append(chunk)

    assert b"".join(received) == b"evil  bytes!!"


def test_download_of_tampered_blob_creates_no_file(artifacts: Backend, downloads: Path) -> None:
    digest = tamper(artifacts, b"trusted", b"evil")
    dest = downloads / "model.bin"

    with pytest.raises(IntegrityError, match="corrupt"):
        artifacts.store.download(digest, dest)

    assert list(downloads.iterdir()) == []


def test_download_of_tampered_blob_keeps_existing_file(artifacts: Backend, downloads: Path) -> None:
    digest = tamper(artifacts, b"trusted", b"evil")
    dest = downloads / "model.bin"
    dest.write_bytes(b"previous")

    with pytest.raises(IntegrityError):
        artifacts.store.download(digest, dest)

    assert dest.read_bytes() == b"previous"
    assert list(downloads.iterdir()) == [dest]


# -- bad and absent digests ----------------------------------------------------------------

BAD_DIGESTS = [
    "",
    "abc",
    "A" * 64,
    "g" * 64,
    "a" * 65,
    "a" * 64 + "\n",
    "../" + "a" * 61,
    "aa/" + "a" * 61,
]


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_invalid_digest_raises_invalid_input(
    artifacts: Backend, digest: str, tmp_path: Path
) -> None:
    store = artifacts.store
    calls: list[Any] = [
        store.exists,
        store.size,
        store.read_bytes,
        store.iter_chunks,
        store.delete,
        lambda d: store.download(d, tmp_path / "out.bin"),
    ]
    for call in calls:
        with pytest.raises(InvalidInput, match="64 lowercase hex"):
            call(digest)
    assert not (tmp_path / "out.bin").exists()


def test_absent_digest_raises_not_found(artifacts: Backend, downloads: Path) -> None:
    store = artifacts.store
    digest = sha256(b"never stored")

    assert not store.exists(digest)
    for call in (store.size, store.read_bytes, store.iter_chunks, store.delete):
        with pytest.raises(NotFound, match=digest):
            call(digest)
    with pytest.raises(NotFound):
        store.download(digest, downloads / "out" / "model.bin")
    assert list(downloads.iterdir()) == []


@pytest.mark.parametrize("key", ["blobs/sha256/aa/x", "tmp/../blobs", "tmp/a/b", "tmp/", "x"])
def test_delete_temp_rejects_keys_outside_tmp(artifacts: Backend, key: str) -> None:
    with pytest.raises(InvalidInput, match="not a temp key"):
        artifacts.store.delete_temp(key)


def test_delete_temp_of_absent_key_raises_not_found(artifacts: Backend) -> None:
    with pytest.raises(NotFound):
        artifacts.store.delete_temp(f"tmp/{uuid.uuid4().hex}")


# -- opening stores ------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["foo://bucket/x", "gcs://bucket/x", "http://example.com/x"])
def test_unsupported_protocol_raises_invalid_input_naming_supported_ones(url: str) -> None:
    with pytest.raises(InvalidInput, match=r"unsupported protocol.*memory://.*s3://"):
        ArtifactStore(url)


def test_s3_without_s3fs_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)

    with pytest.raises(StoreUnavailable, match=r"pip install 'modelyard\[s3\]'"):
        ArtifactStore("s3://bucket/prefix")


def test_s3_url_without_bucket_raises_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="bucket"):
        ArtifactStore("s3://", storage_options={"anon": True})


def test_unreachable_s3_raises_store_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    store = ArtifactStore(
        "s3://bucket/prefix",
        storage_options={
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}"},
            "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1},
        },
    )

    with pytest.raises(StoreUnavailable, match="cannot be reached"):
        store.put_bytes(b"x")
    with pytest.raises(StoreUnavailable, match="cannot be reached"):
        list(store.list_blobs())


def test_s3_bucket_that_does_not_exist_raises_store_unavailable(
    s3_options: dict[str, Any],
) -> None:
    store = ArtifactStore(
        f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/x", storage_options=s3_options
    )

    with pytest.raises(StoreUnavailable, match="create the bucket"):
        store.put_bytes(b"x")


def test_s3_store_url_names_bucket_and_prefix(s3_options: dict[str, Any], s3_bucket: str) -> None:
    store = ArtifactStore(f"s3://{s3_bucket}/a/b/", storage_options=s3_options)

    assert store.url == f"s3://{s3_bucket}/a/b"


def test_memory_store_url_round_trips() -> None:
    assert ArtifactStore("memory://modelyard-tests/url").url == "memory://modelyard-tests/url"


@pytest.mark.parametrize("as_url", [False, True])
def test_local_store_creates_its_folders(tmp_path: Path, as_url: bool) -> None:
    root = tmp_path / "a" / "b"

    store = ArtifactStore(root.as_uri() if as_url else str(root))

    assert (root / "blobs" / "sha256").is_dir()
    assert (root / "tmp").is_dir()
    assert store.url.startswith("file://")
    assert ArtifactStore(store.url).url == store.url


def test_local_store_on_a_file_raises_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")

    with pytest.raises(StoreUnavailable, match="cannot create"):
        ArtifactStore(str(tmp_path / "file"))


def test_storing_existing_content_again_refreshes_its_time(local_artifacts: Backend) -> None:
    info = local_artifacts.store.put_bytes(b"old model")
    two_hours_ago = time.time() - 7200
    os.utime(local_artifacts.blob_path(info.digest), (two_hours_ago, two_hours_ago))

    local_artifacts.store.put_bytes(b"old model")

    assert local_artifacts.store.stat(info.digest).modified > time.time() - 60


# -- crash safety --------------------------------------------------------------------------

SLOW_WRITER = """
import sys, time
from pathlib import Path
from modelyard.store._artifacts import ArtifactStore

root, ready = sys.argv[1], Path(sys.argv[2])

def chunks():
    for i in range(200):  # 200 MiB over ~10 s, unless killed first
        if i == 3:
            ready.write_text("3 chunks written")
        yield bytes([i]) * (1 << 20)
        time.sleep(0.05)

class GeneratorStream:
    def __init__(self, it):
        self._it = it

    def read(self, size=-1):
        return next(self._it, b"")

ArtifactStore(root).put_stream(GeneratorStream(chunks()))
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_writer_killed_mid_write_leaves_only_a_collectable_temp_file(
    local_artifacts: Backend, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    src = str(Path(modelyard.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    writer = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, local_artifacts.url, str(ready)], env=env
    )
    try:
        deadline = time.monotonic() + 15
        while not ready.exists():
            assert writer.poll() is None, "the writer exited before it was killed"
            assert time.monotonic() < deadline, "the writer never signalled"
            time.sleep(0.02)
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait(timeout=10)
    assert writer.returncode == -signal.SIGKILL

    store = local_artifacts.reopen()
    temps = list(store.list_temp())

    assert list(store.list_blobs()) == []
    assert len(temps) == 1
    assert temps[0].size >= 3 * CHUNK_SIZE

    report = collect_garbage(store, [], grace_s=0)
    assert report.unreferenced == ()
    assert report.missing == ()
    assert report.stale_temp == tuple(temps)
    assert list(store.list_temp()) == temps  # a dry run removes nothing

    applied = collect_garbage(store, [], grace_s=0, apply=True)
    assert applied.stale_temp == tuple(temps)
    assert applied.freed_bytes == temps[0].size
    assert list(store.list_temp()) == []


def test_failed_stream_leaves_no_temp_file(artifacts: Backend) -> None:
    class BrokenStream:
        def __init__(self) -> None:
            self.reads = 0

        def read(self, size: int = -1) -> bytes:
            self.reads += 1
            if self.reads > 2:
                raise ConnectionResetError("upstream went away")
            return b"x" * 1000

    with pytest.raises(ConnectionResetError):
        artifacts.store.put_stream(BrokenStream())  # type: ignore[arg-type]

    assert list(artifacts.store.list_temp()) == []
    assert list(artifacts.store.list_blobs()) == []


def test_readers_never_see_a_partial_blob_while_writing(artifacts: Backend) -> None:
    data = os.urandom(2 * CHUNK_SIZE)
    digest = sha256(data)
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if artifacts.store.exists(digest):
                seen.append(artifacts.store.size(digest))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        artifacts.store.put_bytes(data)
    finally:
        done.set()
        watcher.join()

    assert set(seen) <= {len(data)}
