"""Batch scoring: a Parquet or CSV file in, predictions out, in chunks of bounded memory.

Rows that fail the model's signature go to a rejects file with the reason, never dropped.
In process or on a Dask cluster, the same chunks are read, scored by the same
`score_chunk` and written in input order, so both executors write the same files. The
model reaches Dask workers as its verified files, rebuilt there by its flavor: the
model object itself is never pickled.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modelyard._dask import dask_client
from modelyard.errors import (
    IntegrityError,
    InvalidInput,
    ModelyardError,
    NotFound,
)
from modelyard.serving._scoring_files import Sink, Source, format_of, open_source

if TYPE_CHECKING:
    import numpy.typing as npt
    import pandas as pd
    import pyarrow as pa

    from modelyard.models import LoadedModel, Signature
    from modelyard.registry import Registry
    from modelyard.tracking import Tracker

Runtime = Literal["auto", "native", "onnx"]
_BOOL_TEXT = {"true": True, "false": False, "1": True, "0": False}


@dataclass(frozen=True)
class ScoreReport:
    """What a batch scoring job did; `rows_in == rows_scored + rows_rejected` always."""

    model: str  # the URI scored, pinned to a version: models:/churn/3 or runs:/…
    version: int | None  # None for a runs:/ URI
    rows_in: int
    rows_scored: int
    rows_rejected: int
    destination: Path
    rejects: Path | None  # None when no row was rejected: no rejects file is written
    seconds: float
    rows_per_s: float
    runtime: str  # "native" or "onnx"
    executor: str  # "in-process" or the Dask scheduler's address

    def summary(self) -> str:
        version = f"version {self.version}" if self.version is not None else self.model
        see = f" (see {self.rejects})" if self.rejects else ""
        return (
            f"scored {self.rows_scored} of {self.rows_in} rows with {version} ({self.runtime}, "
            f"{self.executor}): {self.rows_rejected} rejected{see}; "
            f"{self.rows_per_s:,.0f} rows/s → {self.destination}"
        )


@dataclass(frozen=True)
class ScoreJob:
    """A batch scoring request, as the SDK and the CLI receive it."""

    model: str
    source: Path
    destination: Path
    rejects: Path | None = None
    chunk_rows: int = 50_000
    id_column: str | None = None
    dask: str | None = None
    progress: bool = False
    runtime: Runtime = "auto"
    allow_pickle: bool = False
    trusted: tuple[str, ...] = ()


def score(
    model: str,
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    rejects: str | os.PathLike[str] | None = None,
    chunk_rows: int = 50_000,
    id_column: str | None = None,
    dask: str | None = None,
    progress: bool = False,
    runtime: Runtime = "auto",
    allow_pickle: bool = False,
    trusted: Sequence[str] = (),
) -> ScoreReport:
    """Score every row of `source` with `model`, writing predictions to `destination`.

    `model` is "churn@champion", "churn/3", "churn" (its latest version) or a models:/ or
    runs:/ URI. Files are Parquet (.parquet, .pq) or CSV (.csv), by suffix. Output rows
    carry `row_id` (the 0-based input position, or `id_column`'s value), `prediction`,
    `proba_<class>` for classifiers and `model_version`. Rows failing the signature go to
    `rejects` (default `<destination stem>.rejects<suffix>`) with `row_id` and `reason`.
    `dask` is a scheduler address, or "local" for a cluster on this machine. `runtime`
    "auto" runs the version's ONNX export when it has one. Runs on the default stores.
    """
    from modelyard import _sdk

    job = ScoreJob(
        model=model,
        source=Path(source),
        destination=Path(destination),
        rejects=None if rejects is None else Path(rejects),
        chunk_rows=chunk_rows,
        id_column=id_column,
        dask=dask,
        progress=progress,
        runtime=runtime,
        allow_pickle=allow_pickle,
        trusted=tuple(trusted),
    )
    return run_job(
        job,
        tracker=_sdk.tracker(),
        registry=_sdk.default_registry(),
        cache_dir=_sdk.get_settings().home / "cache" / "models",
    )


def run_job(job: ScoreJob, *, tracker: Tracker, registry: Registry, cache_dir: Path) -> ScoreReport:
    """Run `job` on the given stores (what `score` and `modelyard score` call)."""
    started = time.perf_counter()
    rejects_path = _check_job(job)
    model, folder = _load(job, tracker, registry, cache_dir)
    source = open_source(job, model.signature)
    plan = _Plan(
        version=model.version.version if model.version else None,
        id_column=job.id_column,
        features=source.features,
        labels=_class_labels(model, folder),
    )
    sink = Sink(job.destination, rejects_path, source)
    try:
        with _progress(job.progress, source.total_rows, job.source.name) as advance:

            def emit(result: ChunkResult) -> None:
                sink.write(result)
                advance(result.rows)

            if job.dask is None:
                executor = _run_in_process(source, model, plan, emit)
            else:
                files = ModelFiles.of(model, folder, job)
                executor = _run_on_dask(job.dask, source, files, plan, emit)
        if source.rows_read != sink.rows_scored + sink.rows_rejected:
            raise ModelyardError(
                f"read {source.rows_read} rows but wrote {sink.rows_scored} scored and "
                f"{sink.rows_rejected} rejected; nothing was kept (this is a bug, please report)"
            )
        sink.commit()
    except BaseException:
        sink.abort()
        raise
    seconds = time.perf_counter() - started
    return ScoreReport(
        model=model.uri,
        version=plan.version,
        rows_in=source.rows_read,
        rows_scored=sink.rows_scored,
        rows_rejected=sink.rows_rejected,
        destination=job.destination,
        rejects=rejects_path if sink.rows_rejected else None,
        seconds=seconds,
        rows_per_s=source.rows_read / seconds if seconds > 0 else 0.0,
        runtime=model.runtime,
        executor=executor,
    )


def _check_job(job: ScoreJob) -> Path:
    """The rejects path; refuses unknown formats and paths that cannot work."""
    if job.chunk_rows < 1:
        raise InvalidInput(f"chunk_rows must be at least 1, got {job.chunk_rows}")
    if job.runtime not in ("auto", "native", "onnx"):
        raise InvalidInput(f"runtime is 'auto', 'native' or 'onnx', not {job.runtime!r}")
    rejects = job.rejects or job.destination.with_name(
        f"{job.destination.stem}.rejects{job.destination.suffix}"
    )
    for path in (job.source, job.destination, rejects):
        format_of(path)
    if not job.source.is_file():
        raise InvalidInput(f"no such input file: {job.source}")
    for path in (job.destination, rejects):
        if not path.parent.is_dir():
            raise InvalidInput(f"cannot write {path}: folder {path.parent} does not exist")
    paths = {p.resolve() for p in (job.source, job.destination, rejects)}
    if len(paths) < 3:
        raise InvalidInput("the input, output and rejects files must be three different files")
    return rejects


# -- the model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFiles:
    """A loaded model's verified files, to rebuild it on a Dask worker by its flavor."""

    uri: str
    digest: str  # of the manifest: names the model in each worker's cache
    manifest: bytes
    files: dict[str, bytes] = field(repr=False)
    runtime: str
    allow_pickle: bool
    trusted: tuple[str, ...]

    @classmethod
    def of(cls, model: LoadedModel, folder: Path, job: ScoreJob) -> ModelFiles:
        """The files of `model`, loaded from `folder` (each worker checks them again)."""
        return cls(
            uri=model.uri,
            digest=folder.name,
            manifest=model.manifest.to_bytes(),
            files={e.path: (folder / e.path).read_bytes() for e in model.manifest.model_files()},
            runtime=model.runtime,
            allow_pickle=job.allow_pickle,
            trusted=job.trusted,
        )


def model_uri(model: str, registry: Registry) -> str:
    """The URI `model` names: churn@champion, churn/3, churn (its latest version) or a URI."""
    if model.startswith(("models:/", "runs:/")):
        return model
    if "@" in model or "/" in model:
        return f"models:/{model}"
    latest = registry.get_model(model).latest_version
    if not latest:
        raise NotFound(f"model {model!r} has no versions yet; log one with my.log_model")
    return f"models:/{model}/{latest}"


def _load(
    job: ScoreJob, tracker: Tracker, registry: Registry, cache_dir: Path
) -> tuple[LoadedModel, Path]:
    """The model, pinned to one version for the whole job, and the folder of its files."""
    from modelyard.models._load import load_model

    uri = model_uri(job.model, registry)
    if uri.startswith("models:/"):
        uri = registry.resolve(uri).uri  # an alias could move while the job runs
    model = load_model(
        uri,
        tracker=tracker,
        registry=registry,
        cache_dir=cache_dir,
        allow_pickle=job.allow_pickle,
        trusted=job.trusted,
        onnx="auto" if job.runtime == "auto" else job.runtime == "onnx",
    )
    assert model.folder is not None  # load_model always verifies into a local folder
    return model, model.folder


def _class_labels(model: LoadedModel, folder: Path) -> tuple[Any, ...] | None:
    """Class labels for the probability columns: the estimator's `classes_`, else the ONNX
    graph's, else None (then 0…k-1)."""
    import numpy as np

    classes = getattr(model.native, "classes_", None)
    if classes is not None:
        return tuple(c.item() if isinstance(c, np.generic) else c for c in classes)
    onnx = model.manifest.onnx
    if model.runtime != "onnx" or onnx is None:
        return None
    try:
        import onnx as onnx_lib
    except ImportError:
        return None
    graph = onnx_lib.load(str(folder / onnx.path)).graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.name in ("classlabels_ints", "classlabels_int64s"):
                return tuple(attribute.ints)
            if attribute.name == "classlabels_strings":
                return tuple(s.decode() for s in attribute.strings)
    return None


_worker_models: dict[tuple[str, str], tuple[LoadedModel, Any]] = {}
_worker_lock = threading.Lock()


def _rebuilt(files: ModelFiles) -> LoadedModel:
    """The model `files` holds, rebuilt once per process by its flavor loader."""
    key = (files.digest, files.runtime)
    with _worker_lock:
        if key not in _worker_models:
            _worker_models[key] = _rebuild(files)
        return _worker_models[key][0]


def _rebuild(files: ModelFiles) -> tuple[LoadedModel, Any]:
    from modelyard.models import LoadedModel, Manifest
    from modelyard.models._flavor import LoadOptions, get_flavor

    manifest = Manifest.from_bytes(files.manifest)
    # kept for the life of the process: a model may read its folder after loading
    folder = tempfile.TemporaryDirectory(prefix="modelyard-model-")
    for entry in manifest.model_files():
        data = files.files[entry.path]
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise IntegrityError(
                f"model file {entry.path!r} does not match the SHA-256 in its manifest; run again"
            )
        target = Path(folder.name) / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    onnx = files.runtime == "onnx"
    flavor = get_flavor("onnx" if onnx else manifest.flavor)
    predictor = flavor.load(
        Path(folder.name),
        {} if onnx else manifest.flavor_options,
        LoadOptions(files.allow_pickle, files.trusted),
    )
    return LoadedModel(predictor, manifest, uri=files.uri, runtime=files.runtime), folder


# -- scoring one chunk ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """What every chunk is scored with, the same on every executor."""

    version: int | None
    id_column: str | None
    features: tuple[str, ...]  # the input columns the model reads
    labels: tuple[Any, ...] | None


@dataclass(frozen=True)
class ChunkResult:
    """One chunk's scored rows and rejected rows (either may be None when empty)."""

    rows: int
    scored: pa.Table | None
    rejects: pa.Table | None


def score_chunk(model: LoadedModel, chunk: pa.Table, first_row: int, plan: _Plan) -> ChunkResult:
    """Score the rows of `chunk` that pass the signature; set the others aside with why."""
    import numpy as np
    import pyarrow as pa

    rows = chunk.num_rows
    ids = (
        chunk.column(plan.id_column).combine_chunks()
        if plan.id_column
        else pa.array(np.arange(first_row, first_row + rows, dtype=np.int64))
    )
    features = _frame(chunk.select(list(plan.features)), model.signature)
    reasons = _problems(model.signature, features)
    conformed, reasons = _conformed(model.signature, features, reasons)
    bad = np.array([r is not None for r in reasons], dtype=bool)
    good = np.flatnonzero(~bad)
    scored = None
    if len(good):
        scored = _predictions(model, conformed, ids.take(pa.array(good)), plan)
    rejects = None
    if bad.any():
        where = pa.array(np.flatnonzero(bad))
        kept = [n for n in chunk.column_names if n != plan.id_column]  # its values are row_id
        rejects = chunk.select(kept).take(where)
        rejects = rejects.add_column(0, "reason", pa.array([reasons[i] for i in where.to_pylist()]))
        rejects = rejects.add_column(0, "row_id", ids.take(where))
    return ChunkResult(rows=rows, scored=scored, rejects=rejects)


def _score_on_worker(
    files: ModelFiles, chunk: pa.Table, first_row: int, plan: _Plan
) -> ChunkResult:
    return score_chunk(_rebuilt(files), chunk, first_row, plan)


def _frame(table: pa.Table, signature: Signature | None) -> pd.DataFrame:
    """The chunk as a frame, with numbers and booleans written as text (CSV) parsed."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = table.replace_schema_metadata(None)  # pandas' metadata describes the whole file
    text_booleans = []
    for spec in signature.columns or [] if signature is not None else []:
        position = table.schema.get_field_index(spec.name)
        kind = table.schema.field(position).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            continue
        for target in _parse_as(spec.dtype):
            try:
                parsed = pc.cast(table.column(position), target)
            except pa.ArrowInvalid:  # a value that is not a number: the checks name its row
                continue
            table = table.set_column(position, spec.name, parsed)
            break
        else:
            if spec.dtype == "bool":  # one value is not a boolean
                text_booleans.append(spec.name)
    frame: pd.DataFrame = table.to_pandas()
    for name in text_booleans:  # the values that read as booleans, the others left as text
        lowered = frame[name].str.lower().map(_BOOL_TEXT)
        frame[name] = lowered.astype(object).where(lowered.notna(), frame[name].astype(object))
    return frame


def _parse_as(dtype: str) -> list[pa.DataType]:
    """The Arrow types to try, in order, for text in a column the model reads as `dtype`."""
    import pyarrow as pa

    if dtype == "bool":
        return [pa.bool_()]
    if dtype in ("float16", "float32", "float64"):
        return [pa.float64()]
    if dtype.removeprefix("u") in ("int8", "int16", "int32", "int64"):
        return [pa.int64(), pa.float64()]  # "2.0" is a whole number too
    return []


def _problems(signature: Signature | None, features: pd.DataFrame) -> list[str | None]:
    from modelyard.models._conform import row_problems, tensor_row_problems

    if signature is None:
        return [None] * len(features)
    if signature.columns is not None:
        return row_problems(signature.columns, features).tolist()
    assert signature.tensor is not None
    return tensor_row_problems(signature.tensor, features.to_numpy())


def _conformed(
    signature: Signature | None, features: pd.DataFrame, reasons: list[str | None]
) -> tuple[Any, list[str | None]]:
    """The rows without problems, checked and cast together as the model will see them.

    Rows that pass alone can still fail together (dates written two ways); then each row is
    checked alone, and if the rest still fail together, they are rejected with the reason.
    """
    if signature is None:
        return features, reasons
    table = signature.columns is not None
    data: Any = features if table else features.to_numpy()

    def rows(positions: list[int]) -> Any:
        if len(positions) == len(data):  # every row: no copy by position
            return data
        return data.iloc[positions] if table else data[positions]

    good = [i for i, r in enumerate(reasons) if r is None]
    try:
        return signature.validate_input(rows(good)), reasons
    except InvalidInput:
        pass
    reasons = list(reasons)
    for row in good:
        try:
            signature.validate_input(rows([row]))
        except InvalidInput as exc:
            reasons[row] = exc.message
    good = [i for i, r in enumerate(reasons) if r is None]
    try:
        return signature.validate_input(rows(good)), reasons
    except InvalidInput as exc:
        for row in good:
            reasons[row] = f"fails together with the other rows of its chunk: {exc.message}"
        return rows([]), reasons


def _predictions(model: LoadedModel, data: Any, ids: pa.Array, plan: _Plan) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    outputs = model.outputs(data)  # `data` is conformed already: no second check
    columns: dict[str, pa.Array] = {"row_id": ids}
    columns |= _output_columns("prediction", outputs["predict"], None)
    if "predict_proba" in outputs:
        proba = np.asarray(outputs["predict_proba"], dtype=np.float64)
        columns |= _output_columns("proba", proba, plan.labels)
    rows = len(ids)
    columns["model_version"] = pa.array([plan.version] * rows, pa.int64())
    return pa.table(columns)


def _output_columns(
    name: str, values: npt.NDArray[Any], labels: tuple[Any, ...] | None
) -> dict[str, pa.Array]:
    """One column, or one per output (`<name>_<label>`) when each row has several."""
    import pyarrow as pa

    if values.ndim == 1:
        return {name: pa.array(values)}
    values = values.reshape(len(values), -1)
    width = values.shape[1]
    if width == 1 and labels is None:
        return {name: pa.array(values[:, 0])}
    names = labels if labels is not None and len(labels) == width else range(width)
    return {f"{name}_{label}": pa.array(values[:, i]) for i, label in enumerate(names)}


# -- executors -----------------------------------------------------------------------------


def _run_in_process(
    source: Source, model: LoadedModel, plan: _Plan, emit: Callable[[ChunkResult], None]
) -> str:
    for first_row, chunk in source.chunks():
        emit(score_chunk(model, chunk, first_row, plan))
    return "in-process"


def _run_on_dask(
    address: str,
    source: Source,
    files: ModelFiles,
    plan: _Plan,
    emit: Callable[[ChunkResult], None],
) -> str:
    """Score chunks on a Dask cluster, a bounded number in flight, results kept in order."""
    with dask_client(address, "scoring") as client:
        model = client.scatter(files, broadcast=True, hash=False)
        in_flight: deque[tuple[Any, Any]] = deque()
        limit = 2 * max(1, len(client.scheduler_info()["workers"]))
        for first_row, chunk in source.chunks():
            data = client.scatter(chunk, hash=False)
            task = client.submit(_score_on_worker, model, data, first_row, plan, pure=False)
            in_flight.append((task, data))
            if len(in_flight) >= limit:
                emit(in_flight.popleft()[0].result())
        while in_flight:
            emit(in_flight.popleft()[0].result())
        return str(client.scheduler.address)


@contextmanager
def _progress(enabled: bool, total: int | None, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar of rows done (on stderr, so stdout stays clean for --json)."""
    if not enabled:
        yield lambda rows: None
        return
    from rich import progress as rp
    from rich.console import Console

    columns = [rp.TextColumn("scoring {task.description}"), rp.BarColumn()]
    columns += [rp.MofNCompleteColumn(), rp.TextColumn("rows"), rp.TimeElapsedColumn()]
    with rp.Progress(*columns, rp.TimeRemainingColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total)
        yield lambda rows: bar.advance(task, rows)
