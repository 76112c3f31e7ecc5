"""Artifact stores on every backend: a local folder, memory://, and S3 on a moto server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec.core
import pytest

from modelyard.store._artifacts import ArtifactStore

BACKENDS = ("local", "memory", "s3")
BUCKET = "modelyard-tests"


@dataclass
class Backend:
    """A store plus a second handle on the same filesystem, to look behind its back."""

    name: str
    url: str
    storage_options: dict[str, Any]
    store: ArtifactStore
    fs: Any
    root: str

    def blob_path(self, digest: str) -> str:
        """Where the layout puts a blob: blobs/sha256/<first 2 hex>/<digest>."""
        return f"{self.root}/blobs/sha256/{digest[:2]}/{digest}"

    def write(self, path: str, data: bytes) -> None:
        """Write a file behind the store's back (creating folders where the filesystem has them)."""
        self.fs.makedirs(self.fs._parent(path), exist_ok=True)
        self.fs.pipe_file(path, data)

    def reopen(self) -> ArtifactStore:
        return ArtifactStore(self.url, storage_options=self.storage_options)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_listening(proc: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server in a subprocess, bound to 127.0.0.1, killed when the session ends."""
    for _attempt in range(3):  # the free port can be taken before moto binds it
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            if _wait_until_listening(proc, port, timeout=20):
                yield f"http://127.0.0.1:{port}"
                return
        finally:
            proc.kill()
            proc.wait()
    pytest.fail("moto S3 server did not start")


@pytest.fixture(scope="session")
def s3_options(s3_endpoint: str) -> dict[str, Any]:
    """storage_options for the moto server, with its test bucket created."""
    import s3fs

    options: dict[str, Any] = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": s3_endpoint},
        "use_listings_cache": False,
    }
    s3fs.S3FileSystem(**options).mkdir(BUCKET)
    return options


@pytest.fixture(scope="session")
def s3_bucket(s3_options: dict[str, Any]) -> str:
    """The bucket on the moto server that S3 stores live in."""
    return BUCKET


def _url_and_options(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[str, dict[str, Any]]:
    unique = uuid.uuid4().hex
    if name == "local":
        return (tmp_path / "artifacts").as_uri(), {}
    if name == "memory":
        return f"memory://modelyard-tests/{unique}", {}
    options: dict[str, Any] = request.getfixturevalue("s3_options")
    return f"s3://{BUCKET}/{unique}", dict(options)


def _make_backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    url, options = _url_and_options(name, request, tmp_path)
    store = ArtifactStore(url, storage_options=options)
    fs, root = fsspec.core.url_to_fs(url, **options)
    yield Backend(name, url, options, store, fs, root.rstrip("/"))
    if name == "memory" and fs.exists(root):
        fs.rm(root, recursive=True)


@pytest.fixture(params=BACKENDS)
def artifacts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """One fresh, empty artifact store on each backend."""
    yield from _make_backend(request.param, request, tmp_path)


@pytest.fixture(params=("local", "memory"))
def fast_artifacts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A fresh store on the backends without a server (for property tests)."""
    yield from _make_backend(request.param, request, tmp_path)


@pytest.fixture
def local_artifacts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A fresh store in a local folder (for tests that touch files or processes)."""
    yield from _make_backend("local", request, tmp_path)
