"""Tracking over HTTP: the same calls as local mode, sent to a `modelyard server`."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from modelyard._http import ServerApi, raise_for, seg
from modelyard.errors import IntegrityError, StoreUnavailable
from modelyard.tracking import _validate as v
from modelyard.tracking._entities import (
    Artifact,
    DatasetInput,
    Experiment,
    LogBatch,
    Metric,
    Run,
    RunPage,
    RunQuery,
    RunSpec,
    RunStatus,
    View,
)
from modelyard.tracking._wire import dump, load


class RestTracking:
    """A `TrackingBackend` that talks to the REST API of a modelyard server."""

    def __init__(self, base_url: str, *, timeout_s: float = 60.0) -> None:
        self._api = ServerApi(base_url, timeout_s=timeout_s)
        self.base_url = self._api.base_url

    def create_experiment(
        self, name: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> Experiment:
        body = {"name": name, "description": description, "tags": dict(tags or {})}
        return load(self._api.call("POST", "/experiments", json=body).content, Experiment)

    def get_experiment(self, ref: str | int, *, create: bool = False) -> Experiment:
        response = self._api.call("GET", f"/experiments/{seg(str(ref))}", params={"create": create})
        return load(response.content, Experiment)

    def list_experiments(self, view: View = "active") -> list[Experiment]:
        return load(
            self._api.call("GET", "/experiments", params={"view": view}).content, list[Experiment]
        )

    def set_experiment_deleted(self, experiment_id: int, deleted: bool) -> None:
        if deleted:
            self._api.call("DELETE", f"/experiments/{experiment_id}")
        else:
            self._api.call("POST", f"/experiments/{experiment_id}/restore")

    def create_run(self, spec: RunSpec) -> Run:
        return load(self._api.call("POST", "/runs", content=dump(spec, RunSpec)).content, Run)

    def get_run(self, run_id: str) -> Run:
        return load(self._api.call("GET", f"/runs/{seg(run_id)}").content, Run)

    def finish_run(self, run_id: str, status: RunStatus, end_time: int | None = None) -> None:
        self._api.call(
            "POST",
            f"/runs/{seg(run_id)}/finish",
            json={"status": RunStatus(status).value, "end_time": end_time},
        )

    def update_run(self, run_id: str, *, name: str | None = None, note: str | None = None) -> None:
        self._api.call("PATCH", f"/runs/{seg(run_id)}", json={"name": name, "note": note})

    def set_run_deleted(self, run_id: str, deleted: bool) -> None:
        if deleted:
            self._api.call("DELETE", f"/runs/{seg(run_id)}")
        else:
            self._api.call("POST", f"/runs/{seg(run_id)}/restore")

    def log_batch(
        self,
        run_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Sequence[Metric] = (),
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        batch = LogBatch(
            v.string_map("param", params),
            tuple(v.metric_point(m) for m in metrics),
            v.string_map("tag", tags),
        )
        self._api.call("POST", f"/runs/{seg(run_id)}/log-batch", content=dump(batch, LogBatch))

    def delete_tag(self, run_id: str, key: str) -> None:
        self._api.call("DELETE", f"/runs/{seg(run_id)}/tags/{quote(key)}")

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        response = self._api.call("GET", f"/runs/{seg(run_id)}/metric-history", params={"key": key})
        return load(response.content, list[Metric])

    def search_runs(self, query: RunQuery) -> RunPage:
        return load(
            self._api.call("POST", "/runs/search", content=dump(query, RunQuery)).content, RunPage
        )

    def log_artifact(self, run_id: str, path: str, source: BinaryIO) -> Artifact:
        path = v.artifact_path(path)
        response = self._api.call(
            "PUT",
            f"/runs/{seg(run_id)}/artifacts/{quote(path)}",
            content=_chunks(source),
            headers={"Content-Type": "application/octet-stream"},
        )
        return load(response.content, Artifact)

    def list_artifacts(self, run_id: str) -> list[Artifact]:
        return load(self._api.call("GET", f"/runs/{seg(run_id)}/artifacts").content, list[Artifact])

    def read_artifact(self, run_id: str, path: str) -> bytes:
        with tempfile.SpooledTemporaryFile(max_size=64 << 20) as spool:
            self._stream_artifact(run_id, path, spool)
            spool.seek(0)
            return spool.read()

    def download_artifact(self, run_id: str, path: str, dest: str) -> None:
        folder = os.path.dirname(os.path.abspath(dest))
        fd, partial = tempfile.mkstemp(dir=folder, prefix=".modelyard-download-")
        try:
            with os.fdopen(fd, "wb") as handle:
                self._stream_artifact(run_id, path, handle)
            os.replace(partial, dest)
        except BaseException:
            os.unlink(partial)
            raise

    def log_dataset(self, run_id: str, dataset: DatasetInput) -> None:
        self._api.call("POST", f"/runs/{seg(run_id)}/datasets", content=dump(dataset, DatasetInput))

    def info(self) -> dict[str, Any]:
        server = self._api.call("GET", "/info").json()
        return {"mode": "remote", "tracking_uri": self.base_url, "server": server}

    def close(self) -> None:
        self._api.close()

    def _stream_artifact(self, run_id: str, path: str, out: Any) -> None:
        path = v.artifact_path(path)
        url = f"/runs/{seg(run_id)}/artifacts/{quote(path)}"
        digest = hashlib.sha256()
        try:
            with self._api.http.stream("GET", url) as response:
                if response.status_code >= 400:
                    response.read()
                    raise_for(response)
                expected = response.headers.get("X-Modelyard-Digest", "")
                for chunk in response.iter_bytes():
                    digest.update(chunk)
                    out.write(chunk)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"artifact download from {self.base_url} failed: {exc}") from exc
        if digest.hexdigest() != expected:
            raise IntegrityError(
                f"artifact {path!r} of run {run_id} arrived with sha256 {digest.hexdigest()}, "
                f"expected {expected}: the blob is corrupt or the transfer was cut"
            )


def _chunks(source: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := source.read(size):
        yield chunk
