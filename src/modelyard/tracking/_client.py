"""The tracking SDK: start runs, log to them, find and compare them.

The active run lives in a context variable, so each thread and each asyncio task
has its own: runs started in parallel threads never receive each other's metrics.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar, Token
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from modelyard.errors import Conflict, InvalidInput, NoActiveRun
from modelyard.tracking._backend import TrackingBackend
from modelyard.tracking._compare import RunComparison, compare
from modelyard.tracking._datasets import describe_dataset
from modelyard.tracking._entities import (
    Artifact,
    DatasetInput,
    Experiment,
    Metric,
    Run,
    RunQuery,
    RunSpec,
    RunStatus,
    View,
    now_ms,
)
from modelyard.tracking._environment import capture_environment, current_user

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_EXPERIMENT = "default"

_active: ContextVar[ActiveRun | None] = ContextVar("modelyard_active_run", default=None)


class ActiveRun:
    """A run being logged to; use it as a context manager to end it with the right status."""

    def __init__(self, tracker: Tracker, run: Run) -> None:
        self.tracker = tracker
        self.id = run.id
        self.name = run.name
        self.experiment_id = run.experiment_id
        self._backend = tracker.backend
        self._token: Token[ActiveRun | None] | None = None
        self._ended = False

    @property
    def info(self) -> Run:
        """A fresh snapshot of the run as stored."""
        return self._backend.get_run(self.id)

    def log_param(self, key: str, value: Any) -> None:
        self._backend.log_batch(self.id, params={key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._backend.log_batch(self.id, params=params)

    def log_metric(
        self, key: str, value: float, step: int = 0, timestamp: int | None = None
    ) -> None:
        self._backend.log_batch(
            self.id,
            metrics=[Metric(key, value, step, now_ms() if timestamp is None else timestamp)],
        )

    def log_metrics(
        self, metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None
    ) -> None:
        ts = now_ms() if timestamp is None else timestamp
        self._backend.log_batch(
            self.id, metrics=[Metric(k, v, step, ts) for k, v in metrics.items()]
        )

    def log_batch(
        self,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Sequence[Metric] = (),
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Many params, metric points and tags in one call: all stored, or none."""
        self._backend.log_batch(self.id, params=params, metrics=metrics, tags=tags)

    def set_tag(self, key: str, value: Any) -> None:
        self._backend.log_batch(self.id, tags={key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._backend.log_batch(self.id, tags=tags)

    def delete_tag(self, key: str) -> None:
        self._backend.delete_tag(self.id, key)

    def set_note(self, note: str) -> None:
        self._backend.update_run(self.id, note=note)

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> Artifact:
        """Store a file under `artifact_path` (default: its file name) in this run."""
        path = Path(local_path)
        if not path.is_file():
            raise InvalidInput(f"log_artifact: {str(path)!r} is not a file")
        target = f"{artifact_path.rstrip('/')}/{path.name}" if artifact_path else path.name
        with path.open("rb") as source:
            return self._backend.log_artifact(self.id, target, source)

    def log_artifacts(
        self, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[Artifact]:
        """Store every file below `local_dir`, keeping the relative layout."""
        root = Path(local_dir)
        if not root.is_dir():
            raise InvalidInput(f"log_artifacts: {str(root)!r} is not a folder")
        stored = []
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = file.relative_to(root).as_posix()
            target = f"{artifact_path.rstrip('/')}/{relative}" if artifact_path else relative
            with file.open("rb") as source:
                stored.append(self._backend.log_artifact(self.id, target, source))
        return stored

    def log_text(self, text: str, artifact_path: str) -> Artifact:
        return self._backend.log_artifact(self.id, artifact_path, io.BytesIO(text.encode()))

    def log_dict(self, data: Mapping[str, Any], artifact_path: str) -> Artifact:
        payload = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
        return self._backend.log_artifact(self.id, artifact_path, io.BytesIO(payload))

    def log_dataset(
        self, data: Any, name: str, role: str = "training", source: str | None = None
    ) -> DatasetInput:
        """Record which data this run used: content hash, schema, size, for lineage."""
        return self.tracker.log_dataset(self.id, data, name, role, source)

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """Finish the run (idempotent) and make its parent, if any, active again."""
        if self._ended:
            return
        self._ended = True
        try:
            self._backend.finish_run(self.id, RunStatus(status))
        finally:
            if self._token is not None:
                # Ended from another context: leave that context alone.
                with contextlib.suppress(ValueError):
                    _active.reset(self._token)
                self._token = None

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end(RunStatus.FINISHED)
        elif issubclass(exc_type, Exception):
            self.end(RunStatus.FAILED)
        else:  # KeyboardInterrupt, SystemExit, cancellation
            self.end(RunStatus.KILLED)

    def __repr__(self) -> str:
        return f"ActiveRun(id={self.id!r}, name={self.name!r})"


class RunList(list[Run]):
    """Runs from a search, with the token of the next page and a DataFrame view."""

    def __init__(self, runs: Iterable[Run], next_page_token: str | None = None) -> None:
        super().__init__(runs)
        self.next_page_token = next_page_token

    def to_pandas(self) -> pd.DataFrame:
        """One row per run: attributes, then `metrics.*`, `params.*`, `tags.*` columns."""
        import pandas as pd

        rows = []
        for run in self:
            row: dict[str, Any] = {
                "run_id": run.id,
                "run_name": run.name,
                "experiment": run.experiment_name,
                "status": run.status.value,
                "user": run.user,
                "start_time": pd.to_datetime(run.start_time, unit="ms", utc=True),
                "end_time": pd.to_datetime(run.end_time, unit="ms", utc=True)
                if run.end_time is not None
                else pd.NaT,
                "parent_id": run.parent_id,
            }
            row.update({f"metrics.{k}": m.value for k, m in sorted(run.metrics.items())})
            row.update({f"params.{k}": val for k, val in sorted(run.params.items())})
            row.update({f"tags.{k}": val for k, val in sorted(run.tags.items())})
            rows.append(row)
        return pd.DataFrame(rows)


class Tracker:
    """Tracking calls over one backend (local stores or a remote server)."""

    def __init__(self, backend: TrackingBackend) -> None:
        self.backend = backend
        # Experiments are never renamed nor hard-deleted, so a name keeps its id.
        self._experiment_ids: dict[str | int, int] = {}

    def start_run(
        self,
        experiment: str | int = DEFAULT_EXPERIMENT,
        run_name: str | None = None,
        *,
        tags: Mapping[str, Any] | None = None,
        nested: bool = False,
        parent_run_id: str | None = None,
        note: str | None = None,
        capture_env: bool = True,
    ) -> ActiveRun:
        """Start a run and make it the active one in this thread or task.

        Inside another active run, pass `nested=True` to start a child run of it.
        """
        current = _active.get()
        if current is not None and not nested and parent_run_id is None:
            raise Conflict(
                f"run {current.id} ({current.name}) is already active here; end it first, "
                "or pass nested=True to start a child run"
            )
        parent = parent_run_id or (current.id if nested and current is not None else None)
        experiment_id = self._experiment_ids.get(experiment)
        if experiment_id is None:
            experiment_id = self.backend.get_experiment(experiment, create=True).id
            self._experiment_ids[experiment] = experiment_id
        spec = RunSpec(
            experiment_id=experiment_id,
            name=run_name or _random_name(),
            user=current_user(),
            start_time=now_ms(),
            tags=dict(tags or {}),
            parent_id=parent,
            environment=capture_environment() if capture_env else None,
        )
        active = ActiveRun(self, self.backend.create_run(spec))
        if note:
            active.set_note(note)
        active._token = _active.set(active)
        return active

    def get_run(self, run_id: str) -> Run:
        return self.backend.get_run(run_id)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        return self.backend.get_metric_history(run_id, key)

    def search_runs(
        self,
        experiment: str | int | Sequence[str | int] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        view: View = "active",
    ) -> RunList:
        """Runs matching `filter` (e.g. "metrics.auc > 0.9 and params.penalty = 'l2'")."""
        ids: tuple[int, ...] | None = None
        if experiment is not None:
            refs = [experiment] if isinstance(experiment, str | int) else list(experiment)
            ids = tuple(self.backend.get_experiment(ref).id for ref in refs)
        if isinstance(order_by, str):
            order_by = [order_by]
        page = self.backend.search_runs(
            RunQuery(
                experiment_ids=ids,
                filter=filter,
                order_by=tuple(order_by or ()),
                max_results=max_results,
                page_token=page_token,
                view=view,
            )
        )
        return RunList(page.runs, page.next_page_token)

    def compare_runs(self, run_ids: Sequence[str]) -> RunComparison:
        """Params and final metrics of several runs side by side, differences marked."""
        if len(run_ids) < 2:
            raise InvalidInput("compare_runs needs at least two run ids")
        return compare([self.backend.get_run(run_id) for run_id in run_ids])

    def create_experiment(
        self, name: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> Experiment:
        return self.backend.create_experiment(name, description=description, tags=tags)

    def get_experiment(self, ref: str | int) -> Experiment:
        return self.backend.get_experiment(ref)

    def list_experiments(self, view: View = "active") -> list[Experiment]:
        return self.backend.list_experiments(view)

    def delete_experiment(self, ref: str | int) -> None:
        self.backend.set_experiment_deleted(self.backend.get_experiment(ref).id, True)

    def restore_experiment(self, ref: str | int) -> None:
        self.backend.set_experiment_deleted(self.backend.get_experiment(ref).id, False)

    def delete_run(self, run_id: str) -> None:
        self.backend.set_run_deleted(run_id, True)

    def restore_run(self, run_id: str) -> None:
        self.backend.set_run_deleted(run_id, False)

    def list_artifacts(self, run_id: str) -> list[Artifact]:
        return self.backend.list_artifacts(run_id)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        return self.backend.read_artifact(run_id, path)

    def store_artifact(self, run_id: str, path: str, source: BinaryIO) -> Artifact:
        """Store the bytes of `source` at `path` in run `run_id` (artifacts are immutable)."""
        return self.backend.log_artifact(run_id, path, source)

    def log_dataset(
        self, run_id: str, data: Any, name: str, role: str = "training", source: str | None = None
    ) -> DatasetInput:
        """Record that run `run_id` used `data`: content hash, schema, size, for lineage."""
        dataset = describe_dataset(data, name=name, role=role, source=source)
        self.backend.log_dataset(run_id, dataset)
        return dataset

    def download_artifact(self, run_id: str, path: str, dest: str | os.PathLike[str]) -> Path:
        """Copy an artifact to `dest` (a file, or a folder to put it in), hash verified."""
        target = Path(dest)
        if target.is_dir():
            target = target / Path(path).name
        self.backend.download_artifact(run_id, path, str(target))
        return target

    def info(self) -> dict[str, Any]:
        return self.backend.info()

    def close(self) -> None:
        self.backend.close()


def active_run() -> ActiveRun | None:
    """The run active in this thread or task, if any."""
    return _active.get()


def require_active_run() -> ActiveRun:
    run = _active.get()
    if run is None:
        raise NoActiveRun("no active run here: start one with `with my.start_run(...) as run:`")
    return run


_ADJECTIVES = (
    "amber",
    "bold",
    "calm",
    "deft",
    "eager",
    "fair",
    "glad",
    "keen",
    "lucid",
    "merry",
    "noble",
    "proud",
    "quick",
    "rapid",
    "sly",
    "tidy",
    "vivid",
    "wise",
)
_NOUNS = (
    "otter",
    "heron",
    "lynx",
    "finch",
    "bison",
    "crane",
    "gecko",
    "ibis",
    "koala",
    "lemur",
    "marten",
    "newt",
    "orca",
    "panda",
    "quail",
    "raven",
    "stoat",
    "wren",
)


def _random_name() -> str:
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(1, 999)}"
