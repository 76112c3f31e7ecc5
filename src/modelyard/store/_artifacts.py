"""Content-addressed artifact store: SHA-256 blobs behind fsspec, published atomically.

Layout under the root::

    blobs/sha256/<first 2 hex>/<64 hex>   published blobs, immutable
    tmp/<uuid4 hex>                       writes in progress (or left by crashed writers)

A write streams into a temp key while hashing and then publishes it under its digest, so
a reader never sees a partial blob at a final key. Every read verifies the hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import fsspec.core

from modelyard.errors import (
    IntegrityError,
    InvalidInput,
    NotFound,
    StoreUnavailable,
)

CHUNK_SIZE = 1 << 20
"""Bytes read and written at a time when streaming."""

_DIGEST = re.compile(r"[0-9a-f]{64}")
_TEMP_NAME = re.compile(r"[0-9A-Za-z_.-]+")
_LOCAL_PROTOCOLS = frozenset({"file", "local"})
_SUPPORTED = "file:// (or a plain local path), memory://, s3://"


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What a write stored: the blob's digest (lowercase hex SHA-256) and size in bytes."""

    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """A published blob as listed: digest, size in bytes, last modification (unix seconds)."""

    digest: str
    size: int
    modified: float


@dataclass(frozen=True, slots=True)
class TempFile:
    """A temp object under `tmp/`: a write in progress or the leftover of a crashed writer."""

    key: str
    size: int
    modified: float


def parse_digest(value: str) -> str:
    """Return `value` if it is a lowercase hex SHA-256 digest, else raise InvalidInput."""
    if not isinstance(value, str) or _DIGEST.fullmatch(value) is None:
        raise InvalidInput(
            f"{value!r} is not a SHA-256 digest; expected 64 lowercase hex characters"
        )
    return value


class ArtifactStore:
    """Content-addressed blobs in a local folder, in memory, or in an S3 bucket."""

    def __init__(self, url: str, *, storage_options: dict[str, Any] | None = None) -> None:
        protocol, _ = fsspec.core.split_protocol(url)
        options = dict(storage_options or {})
        self._transport_errors: tuple[type[Exception], ...] = ()
        if protocol in ("s3", "s3a"):
            self._transport_errors = _s3_transport_errors()
            # Other processes write and collect blobs; a listing cache would go stale.
            options.setdefault("use_listings_cache", False)
        elif protocol is not None and protocol not in _LOCAL_PROTOCOLS | {"memory"}:
            raise InvalidInput(
                f"artifact store URL {url!r} uses unsupported protocol {protocol!r}; "
                f"supported: {_SUPPORTED}"
            )
        self._fs, root = fsspec.core.url_to_fs(url, **options)
        self._protocol = "s3" if protocol == "s3a" else (protocol or "file")
        self._local = self._protocol in _LOCAL_PROTOCOLS
        self._memory = self._protocol == "memory"
        self._root: str = root.rstrip("/")
        if self._protocol == "s3" and not self._root:
            raise InvalidInput(
                f"artifact store URL {url!r} names no bucket; use s3://bucket/prefix"
            )
        if self._local:
            self._make_local_folders()

    @property
    def url(self) -> str:
        """The store's root as an absolute URL."""
        if self._memory:
            return "memory://" + self._root.lstrip("/")
        return f"{self._protocol}://{self._root}"

    def __repr__(self) -> str:
        return f"ArtifactStore({self.url!r})"

    # -- writing ---------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> BlobInfo:
        """Store `data`; storing the same content again gives the same digest, one blob."""
        view = memoryview(data)
        return self._put(view[i : i + CHUNK_SIZE] for i in range(0, len(view), CHUNK_SIZE))

    def put_file(self, path: str | os.PathLike[str]) -> BlobInfo:
        """Store the content of a local file."""
        try:
            with open(path, "rb") as stream:
                return self.put_stream(stream)
        except FileNotFoundError as exc:
            raise NotFound(f"cannot store {os.fspath(path)!r}: no such file") from exc

    def put_stream(self, stream: BinaryIO) -> BlobInfo:
        """Store everything read from `stream`, reading it in chunks."""
        return self._put(iter(lambda: stream.read(CHUNK_SIZE), b""))

    def _put(self, chunks: Iterator[bytes | memoryview]) -> BlobInfo:
        temp = self._path(f"tmp/{uuid.uuid4().hex}")
        with self._reaching(), _bucket_required(self.url):
            digest, size = self._write(temp, chunks)
        try:
            with self._reaching():
                if self._local:
                    self._publish_local(temp, digest)
                else:
                    self._publish_remote(temp, digest)
        except BaseException:
            self._discard(temp)
            raise
        return BlobInfo(digest=digest, size=size)

    def _write(self, temp: str, chunks: Iterator[bytes | memoryview]) -> tuple[str, int]:
        """Stream `chunks` into the temp key while hashing them; return digest and size."""
        hasher, size = hashlib.sha256(), 0
        try:
            with open(temp, "xb") if self._local else self._fs.open(temp, "wb") as out:
                for chunk in chunks:
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                if self._local:  # durable before it is renamed into place
                    out.flush()
                    os.fsync(out.fileno())
        except BaseException:
            self._discard(temp)
            raise
        return hasher.hexdigest(), size

    def _publish_local(self, temp: str, digest: str) -> None:
        final = self._blob_path(digest)
        folder = os.path.dirname(final)
        os.makedirs(folder, exist_ok=True)
        try:
            # Same content already published: keep it, but mark it freshly written so a
            # garbage collector honours the grace period until the caller records it.
            os.utime(final)
        except FileNotFoundError:
            os.replace(temp, final)
            _fsync_folder(folder)
        else:
            os.remove(temp)

    def _publish_remote(self, temp: str, digest: str) -> None:
        # Object stores have no rename: a server-side copy makes the final object appear
        # whole. Copying over an existing blob (same bytes) also refreshes its modified
        # time, which the garbage collector's grace period relies on.
        self._fs.cp_file(temp, self._blob_path(digest))
        self._fs.rm_file(temp)

    def _discard(self, temp: str) -> None:
        # Best effort: a leftover temp file is collected as garbage later.
        with contextlib.suppress(Exception):
            self._fs.rm_file(temp)

    # -- reading ---------------------------------------------------------------------------

    def exists(self, digest: str) -> bool:
        """Whether a blob with this digest is published."""
        try:
            self._info(digest)
        except NotFound:
            return False
        return True

    def size(self, digest: str) -> int:
        """Size in bytes of a published blob."""
        return self.stat(digest).size

    def stat(self, digest: str) -> StoredBlob:
        """Size and modification time of a published blob."""
        info = self._info(digest)
        return StoredBlob(
            digest=digest,
            size=int(info["size"]),
            modified=self._modified(self._blob_path(digest), info),
        )

    def read_bytes(self, digest: str) -> bytes:
        """The blob's content, verified against its digest."""
        path = self._blob_path(digest)
        try:
            with self._reaching():
                data: bytes = self._fs.cat_file(path)
        except FileNotFoundError as exc:
            raise self._not_found(digest) from exc
        self._verify(digest, hashlib.sha256(data).hexdigest())
        return data

    def iter_chunks(self, digest: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Stream the blob's content; raises IntegrityError after the last chunk if corrupt.

        A consumer must not trust the bytes before the iterator is exhausted without error.
        """
        if chunk_size <= 0:
            raise InvalidInput(f"chunk_size must be positive, got {chunk_size}")
        path = self._blob_path(digest)
        self._info(digest)  # NotFound now, not at the first next()
        return self._verified_chunks(digest, path, chunk_size)

    def _verified_chunks(self, digest: str, path: str, chunk_size: int) -> Iterator[bytes]:
        hasher = hashlib.sha256()
        try:
            with self._reaching():
                for chunk in self._raw_chunks(path, chunk_size):
                    hasher.update(chunk)
                    yield chunk
        except FileNotFoundError as exc:
            raise self._not_found(digest) from exc
        self._verify(digest, hasher.hexdigest())

    def _raw_chunks(self, path: str, chunk_size: int) -> Iterator[bytes]:
        if self._memory:
            # A memory file object is shared by all its readers (one position), so read
            # by ranges to keep concurrent readers independent.
            offset = 0
            while chunk := self._fs.cat_file(path, offset, offset + chunk_size):
                offset += len(chunk)
                yield chunk
            return
        with self._fs.open(path, "rb") as stream:
            while chunk := stream.read(chunk_size):
                yield chunk

    def download(self, digest: str, dest: str | os.PathLike[str]) -> None:
        """Write the blob to the local file `dest`, replacing it only if the content verifies."""
        target = Path(dest)
        chunks = self.iter_chunks(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
        try:
            with open(partial, "xb") as out:
                for chunk in chunks:
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    # -- listing and deleting --------------------------------------------------------------

    def list_blobs(self) -> Iterator[StoredBlob]:
        """Every published blob (files under blobs/ that are not named by a digest are skipped)."""
        for path, info in self._find(self._path("blobs/sha256")).items():
            shard, _, name = path.rstrip("/").rpartition("/")
            if _DIGEST.fullmatch(name) and shard.endswith("/" + name[:2]):
                yield StoredBlob(
                    digest=name, size=int(info["size"]), modified=self._modified(path, info)
                )

    def list_temp(self) -> Iterator[TempFile]:
        """Every temp object: writes in progress and leftovers of crashed writers."""
        for path, info in self._find(self._path("tmp"), maxdepth=1).items():
            name = path.rstrip("/").rpartition("/")[2]
            yield TempFile(
                key=f"tmp/{name}", size=int(info["size"]), modified=self._modified(path, info)
            )

    def delete(self, digest: str) -> None:
        """Remove a published blob."""
        self._info(digest)  # S3 deletes absent keys silently; say NotFound everywhere
        try:
            with self._reaching():
                self._fs.rm_file(self._blob_path(digest))
        except FileNotFoundError as exc:
            raise self._not_found(digest) from exc

    def delete_temp(self, key: str) -> None:
        """Remove a temp object, by the key `list_temp` gave."""
        folder, _, name = key.partition("/")
        if folder != "tmp" or _TEMP_NAME.fullmatch(name) is None or name in (".", ".."):
            raise InvalidInput(f"{key!r} is not a temp key; expected 'tmp/<name>' from list_temp")
        path = self._path(key)
        try:
            with self._reaching():
                self._fs.info(path)
                self._fs.rm_file(path)
        except FileNotFoundError as exc:
            raise NotFound(f"temp object {key!r} does not exist in {self.url}") from exc

    # -- internals -------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        return f"{self._root}/{key}"

    def _blob_path(self, digest: str) -> str:
        parse_digest(digest)
        return self._path(f"blobs/sha256/{digest[:2]}/{digest}")

    def _info(self, digest: str) -> dict[str, Any]:
        try:
            with self._reaching():
                info: dict[str, Any] = self._fs.info(self._blob_path(digest))
        except FileNotFoundError as exc:
            raise self._not_found(digest) from exc
        if info.get("type") != "file":
            raise self._not_found(digest)
        return info

    def _find(self, path: str, maxdepth: int | None = None) -> dict[str, dict[str, Any]]:
        try:
            with self._reaching():
                found: dict[str, dict[str, Any]] = self._fs.find(
                    path, maxdepth=maxdepth, detail=True
                )
        except FileNotFoundError:
            return {}
        return {p: info for p, info in found.items() if info.get("type") == "file"}

    def _modified(self, path: str, info: dict[str, Any]) -> float:
        # Each filesystem names it differently: local "mtime", s3 "LastModified",
        # memory "created" (a memory file is never modified after it is published).
        for field in ("mtime", "LastModified", "created"):
            value = info.get(field)
            if isinstance(value, datetime):
                return value.timestamp()
            if isinstance(value, int | float):
                return float(value)
        stamp: datetime = self._fs.modified(path)
        return stamp.timestamp()

    @contextlib.contextmanager
    def _reaching(self) -> Iterator[None]:
        try:
            yield
        except self._transport_errors as exc:
            raise StoreUnavailable(f"artifact store {self.url} cannot be reached: {exc}") from exc

    def _verify(self, digest: str, actual: str) -> None:
        if actual != digest:
            raise IntegrityError(
                f"blob {digest} in {self.url} is corrupt: its content hashes to {actual}; "
                "delete it and store the artifact again"
            )

    def _not_found(self, digest: str) -> NotFound:
        return NotFound(f"no blob {digest} in artifact store {self.url}")

    def _make_local_folders(self) -> None:
        for key in ("blobs/sha256", "tmp"):
            try:
                os.makedirs(self._path(key), exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(
                    f"cannot create artifact store folder {self._path(key)!r}: {exc}"
                ) from exc


def _s3_transport_errors() -> tuple[type[Exception], ...]:
    """Check that s3fs is installed; return the errors meaning the endpoint is unreachable."""
    try:
        importlib.import_module("s3fs")
        botocore_errors = importlib.import_module("botocore.exceptions")
    except ImportError as exc:
        raise StoreUnavailable(
            "an s3:// artifact store needs s3fs: pip install 'modelyard[s3]'"
        ) from exc
    return (botocore_errors.BotoCoreError,)


@contextlib.contextmanager
def _bucket_required(url: str) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError as exc:  # s3fs says so when the bucket does not exist
        raise StoreUnavailable(f"cannot write to {url}: {exc}; create the bucket first") from exc


def _fsync_folder(folder: str) -> None:
    """Make a rename durable (POSIX only; Windows cannot open folders)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
