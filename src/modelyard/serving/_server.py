"""The request path of the model server: decode, validate, batch, predict, answer, log.

`ModelServer` holds what every route shares (the served models, their micro-batchers, the
log writer, the metrics). It reads the raw body with orjson (no pydantic on the hot path),
validates it against the signature (or reads the features of the entity keys it carries:
`decode_request`, which deployments share), runs it through the model's batcher, answers,
and hands the record to the log writer without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from modelyard.errors import (
    InvalidInput,
    ModelyardError,
    NotFound,
    PayloadTooLarge,
    PredictionFailed,
    UnsupportedMediaType,
)
from modelyard.serving import _protocols as wire
from modelyard.serving._batcher import Batcher
from modelyard.serving._features import entities_of
from modelyard.serving._ids import new_ids
from modelyard.serving._inputs import Batch, Reader
from modelyard.serving._metrics import ServerMetrics
from modelyard.serving._records import LoggedBatch
from modelyard.serving._served import Loaded, ServedModel

if TYPE_CHECKING:
    from modelyard.monitoring._exposition import MonitorExposition
    from modelyard.serving._deployed import ServedDeployments
    from modelyard.serving._features import FeatureLookup
    from modelyard.serving._feedback import FeedbackStore
    from modelyard.serving._writer import LogWriter

Protocol = Literal["v2", "v1", "invocations"]
_log = logging.getLogger("modelyard.serving")


class ServeOptions(BaseModel):
    """How a model server batches, loads, logs and limits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_batch_rows: int = Field(default=128, ge=1, description="Rows per call of the model.")
    max_wait_ms: float = Field(
        default=2.0, ge=0, description="Longest wait to fill a batch while more requests arrive."
    )
    inline_below_ms: float = Field(
        default=1.0,
        ge=0,
        description="A model whose calls take less than this on average runs on the event "
        "loop, not a worker thread; 0 keeps every model on its thread.",
    )
    refresh_s: float = Field(default=10.0, gt=0, description="How often aliases are re-resolved.")
    runtime: Literal["auto", "native", "onnx"] = Field(
        default="auto", description="auto: ONNX Runtime when the version has an ONNX export."
    )
    max_body_bytes: int = Field(default=10 << 20, ge=1)
    log_predictions: bool = True
    log_capacity: int = Field(default=100_000, ge=1, description="Rows the log queue holds.")
    allow_pickle: bool = False
    trusted: tuple[str, ...] = ()
    run_monitors: bool = Field(
        default=False, description="Run scheduled monitors on a background thread."
    )
    candidate_timeout_ms: float = Field(
        default=1000.0,
        gt=0,
        description="Longest a deployment's candidate or mirrored variant may take; a "
        "candidate that takes longer is answered for by the primary.",
    )
    mirror_capacity: int = Field(
        default=1000,
        ge=1,
        description="Mirrored requests in flight at once; more are dropped and counted.",
    )
    decide_every_s: float = Field(
        default=10.0,
        ge=0,
        description="How often the served deployments' decisions are made on a background "
        "thread (0: never; decide with `modelyard deploy` instead).",
    )


class ModelServer:
    """What the routes share: served models, their batchers, the log writer, metrics."""

    def __init__(
        self,
        served: dict[str, ServedModel],
        options: ServeOptions,
        writer: LogWriter | None,
        feedback: FeedbackStore | None,
        close: Callable[[], None],
    ) -> None:
        self.served = served
        self.options = options
        self.writer = writer
        self.feedback = feedback
        self.close_stores = close
        self.metrics = ServerMetrics()
        # the series `count` adds to, by (name, version, protocol, status code)
        self._series: dict[tuple[str, int | None, str, int], tuple[Any, Any, Any]] = {}
        self.monitor_metrics: MonitorExposition | None = None
        self.deployments: ServedDeployments | None = None
        self.features: FeatureLookup | None = None
        self.batchers = {name: self.new_batcher(f"modelyard-{name}") for name in served}

    def close(self) -> None:
        """Write out the prediction log and close the stores (batchers close in the loop)."""
        if self.writer is not None:
            self.writer.close()
        self.close_stores()

    @property
    def names(self) -> list[str]:
        """Every name served: the models, then the deployments."""
        deployed = list(self.deployments.served) if self.deployments is not None else []
        return [*self.served, *deployed]

    @property
    def default_name(self) -> str:
        """What /invocations answers with: the first model given, else the first deployment."""
        if self.served:
            return next(iter(self.served))
        return self.deployments.wanted[0] if self.deployments is not None else ""

    def model(self, name: str) -> ServedModel:
        served = self.served.get(name)
        if served is None:
            raise NotFound(
                f"no model named {name!r} is served here; served: {', '.join(self.names)}"
            )
        return served

    def new_batcher(self, thread_name: str) -> Batcher[Loaded]:
        """A micro-batcher of model versions, with this server's options."""
        options = self.options
        return Batcher(
            compute,
            max_rows=options.max_batch_rows,
            max_wait_s=options.max_wait_ms / 1000,
            on_batch=self.observe_batch,
            thread_name=thread_name,
            inline_below_s=options.inline_below_ms / 1000,
        )

    def observe_batch(self, loaded: Loaded, rows: int) -> None:
        self.metrics.batch_rows.labels(model_name(loaded), label(loaded.version)).observe(rows)

    def refresh(self, name: str) -> bool:
        served = self.model(name)
        swapped = served.refresh()
        if swapped:
            self.metrics.swaps.labels(name).inc()
        return swapped

    async def refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.options.refresh_s)
            for name in self.served:
                try:
                    await run_in_threadpool(self.refresh, name)
                except Exception:  # keep serving the loaded version; the next round retries
                    _log.exception("could not refresh %s", name)
            self.update_log_gauges()

    def update_log_gauges(self) -> None:
        if self.writer is not None:
            self.metrics.log_queue.set(self.writer.pending_rows)
            self.metrics.log_failed.set(self.writer.failed_rows)

    async def predict(
        self,
        request: Request,
        name: str,
        protocol: Protocol,
        version: str | None = None,
        *,
        deployment: bool = False,
    ) -> Response:
        """Answer a prediction request for the model or deployment `name` (`deployment`:
        only a deployment, as /v1/deployments/{name}:predict asks)."""
        deployments = self.deployments
        if deployments is not None and (deployment or name in deployments.served):
            return await deployments.predict(request, name, protocol, version)
        if deployment:
            self.metrics.requests.labels("", "", protocol, "404").inc()
            message = f"no deployment named {name!r} is served here: this server serves models"
            return error_response(protocol, message, 404)
        started = time.perf_counter()
        loaded: Loaded | None = None
        try:
            served = self.model(name)
            loaded = served.current
            if version is not None and version != str(loaded.version):
                raise NotFound(
                    f"model {name!r} serves version {loaded.version}, not {version}; "
                    f"use /v2/models/{name}/infer for whichever version is current"
                )
            batcher = self.batchers[name]
            batcher.arriving += 1
            try:
                payload = await read_payload(request, protocol, self.options.max_body_bytes)
                decoded = await decode_request(payload, loaded, self.features)
            finally:
                batcher.arriving -= 1
            batch = decoded.batch
            served.last_batch = batch
            try:
                outputs: dict[str, Any] = await batcher.submit(loaded, batch, batch.rows)
            except Exception as exc:
                raise model_error(name, loaded, exc) from None
            if decoded.wanted is not None:
                outputs = pick(outputs, decoded.wanted, loaded)
            ids = new_ids(batch.rows)
            body = encode_answer(protocol, name, loaded.version, decoded.request_id, outputs, ids)
            elapsed = time.perf_counter() - started
            self.record(logged_batch(loaded, decoded.logged, outputs, ids, elapsed))
            self.count(name, loaded, protocol, 200, elapsed, batch.rows)
            return Response(
                body,
                media_type="application/json",
                headers={"x-model-name": name, "x-model-version": label(loaded.version)},
            )
        except ModelyardError as exc:
            known = name in self.served
            version_label = label(loaded.version) if loaded is not None else ""
            self.metrics.requests.labels(
                name if known else "", version_label, protocol, str(exc.status_code)
            ).inc()
            return error_response(protocol, exc.message, exc.status_code)

    def record(self, record: LoggedBatch) -> None:
        """Hand `record` to the prediction log without waiting; count it if dropped."""
        if self.writer is None:
            return
        if not self.writer.submit(record):
            version = label(record.version)
            self.metrics.log_dropped.labels(record.model, version).inc(len(record.ids))

    def count(
        self, name: str, loaded: Loaded, protocol: str, code: int, elapsed: float, rows: int
    ) -> None:
        key = (name, loaded.version, protocol, code)
        series = self._series.get(key)
        if series is None:  # `labels` costs more than the counting: look it up once
            version = label(loaded.version)
            series = self._series[key] = (
                self.metrics.requests.labels(name, version, protocol, str(code)),
                self.metrics.latency.labels(name, version),
                self.metrics.predictions.labels(name, version),
            )
        requests, latency, predictions = series
        requests.inc()
        latency.observe(elapsed)
        predictions.inc(rows)


@dataclass(frozen=True, slots=True)
class Payload:
    """A request body read and parsed once: JSON, or the raw bytes of a CSV body."""

    protocol: Protocol
    parsed: Any
    csv: bytes | None = None


async def read_payload(request: Request, protocol: Protocol, limit: int) -> Payload:
    """The body of a prediction request, parsed (415 for a type the protocol cannot read)."""
    body = await read_body(request, limit)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if protocol == "invocations" and media == "text/csv":
        return Payload(protocol, None, body)
    if media and media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(
            f"cannot read a {media} body; send JSON with Content-Type: application/json"
            + (" (or text/csv)" if protocol == "invocations" else "")
        )
    return Payload(protocol, wire.parse_json(body))


def decode_payload(payload: Payload, reader: Reader) -> tuple[Batch, list[str] | None, str | None]:
    """The validated input for one model version, the outputs asked for, the request id."""
    if payload.csv is not None:
        return wire.decode_csv(payload.csv, reader), None, None
    if payload.protocol == "v2":
        return wire.decode_v2(payload.parsed, reader)
    if payload.protocol == "v1":
        return wire.decode_v1(payload.parsed, reader), None, None
    return wire.decode_invocations(payload.parsed, reader), None, None


@dataclass(frozen=True, slots=True)
class Decoded:
    """A request as one version reads it: the model's input, the outputs asked for, the
    request id, and what the log keeps of the input (from entity keys: the keys and the
    features served)."""

    batch: Batch
    wanted: list[str] | None
    request_id: str | None
    logged: Batch


def decode_input(payload: Payload, loaded: Loaded, features: FeatureLookup | None) -> Decoded:
    """`payload` as the version `loaded` reads it, whether served by name or through a
    deployment. From entity keys (a version logged with a feature service) its features are
    read from the online store: this blocks."""
    binding = loaded.model.manifest.features
    entities = entities_of(payload) if binding is not None else None
    if binding is None or entities is None:
        try:
            batch, wanted, request_id = decode_payload(payload, loaded.reader)
        except InvalidInput:
            if binding is not None or entities_of(payload) is None:
                raise
            raise InvalidInput(
                f"{model_name(loaded)} version {label(loaded.version)} was not logged with a "
                "feature service, so it reads no entity keys: send its inputs"
            ) from None
        return Decoded(batch, wanted, request_id, batch)
    if features is None:
        raise InvalidInput(
            "this server has no feature store to read entity features from: serve where the "
            "metadata database is (db_url), not against a tracking server"
        )
    frame = features.read(binding, entities)
    names = loaded.reader.names or binding.columns
    records: list[dict[str, Any]] = frame[names].to_dict("records")  # type: ignore[assignment]
    body = payload.parsed
    request_id = body.get("id") if payload.protocol == "v2" and isinstance(body, dict) else None
    return Decoded(loaded.reader.records(records), None, request_id, Batch(frame, len(frame)))


async def decode_request(
    payload: Payload, loaded: Loaded, features: FeatureLookup | None
) -> Decoded:
    """`decode_input` on the event loop, or on a worker thread when it reads the online store."""
    if loaded.model.manifest.features is not None and entities_of(payload) is not None:
        return await run_in_threadpool(decode_input, payload, loaded, features)
    return decode_input(payload, loaded, features)


def encode_answer(
    protocol: Protocol,
    name: str,
    version: int | None,
    request_id: str | None,
    outputs: dict[str, Any],
    ids: list[str],
    variant: str | None = None,
) -> bytes:
    """The response body in the form of `protocol` (`variant`: a deployment answered)."""
    if protocol == "v2":
        return wire.encode_v2(name, version, request_id or ids[0], outputs, ids, variant)
    return wire.encode_predictions(
        name, version, outputs, ids, mlflow=protocol == "invocations", variant=variant
    )


def logged_batch(
    loaded: Loaded,
    batch: Batch,
    outputs: dict[str, Any],
    ids: Sequence[str],
    elapsed: float,
    *,
    read_by: Loaded | None = None,
    deployment: str | None = None,
    variant: str | None = None,
    parent_ids: Sequence[str] | None = None,
) -> LoggedBatch:
    """What the log keeps of `loaded`'s predictions on `batch`, which `read_by` (default:
    `loaded`) read: its columns name the input, and both versions' personal columns are
    masked."""
    reader = (read_by or loaded).reader
    return LoggedBatch(
        model=model_name(loaded),
        version=loaded.version or 0,
        ids=ids,
        at_ms=time.time_ns() // 1_000_000,
        latency_ms=elapsed * 1000,
        inputs=batch.data,
        outputs=outputs,
        pii=loaded.pii if read_by is None else loaded.pii | read_by.pii,
        columns=tuple(reader.names) if reader.is_table else None,
        deployment=deployment,
        variant=variant,
        parent_ids=parent_ids,
    )


def model_error(name: str, loaded: Loaded, exc: Exception) -> ModelyardError:
    """A model's exception as the 422 its client gets (an error of ours passes as it is)."""
    if isinstance(exc, ModelyardError):
        return exc
    _log.warning("%s version %s raised on a request", name, loaded.version, exc_info=exc)
    return PredictionFailed(f"the model could not predict this input: {type(exc).__name__}: {exc}")


def compute(loaded: Loaded, batches: Sequence[Batch]) -> Sequence[dict[str, Any] | Exception]:
    """One model call for several requests; if it raises, each request runs alone, so one
    bad request does not fail the others batched with it (its place holds its exception)."""
    try:
        return loaded.compute(batches)
    except Exception:
        if len(batches) == 1:
            raise
    return [_alone(loaded, batch) for batch in batches]


def _alone(loaded: Loaded, batch: Batch) -> dict[str, Any] | Exception:
    try:
        return loaded.compute([batch])[0]
    except Exception as exc:
        return exc


def pick(outputs: dict[str, Any], wanted: list[str], loaded: Loaded) -> dict[str, Any]:
    if unknown := [w for w in wanted if w not in outputs]:
        raise InvalidInput(
            f"unknown output(s) {', '.join(map(repr, unknown))}; the model has: "
            f"{', '.join(loaded.output_names)}"
        )
    return {name: outputs[name] for name in wanted}


def model_name(loaded: Loaded) -> str:
    version = loaded.model.version
    return version.name if version is not None else loaded.model.uri


def label(version: int | None) -> str:
    return "" if version is None else str(version)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidInput(f"Content-Length must be a number of bytes, not {declared!r}")
        if int(declared) > limit:
            raise PayloadTooLarge(f"the body has {declared} bytes; this server takes {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than the {limit} bytes this server takes")
        chunks.append(chunk)
    return b"".join(chunks)


def error_response(protocol: Protocol, message: str, status_code: int) -> Response:
    """An error in the form each protocol's clients read."""
    if protocol == "invocations":
        code = "BAD_REQUEST" if status_code < 500 else "INTERNAL_ERROR"
        body: dict[str, Any] = {"error_code": code, "message": message}
    else:
        body = {"error": message}
    return Response(wire.dumps(body), status_code=status_code, media_type="application/json")
