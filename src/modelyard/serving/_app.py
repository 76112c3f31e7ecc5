"""The model server: an ASGI app speaking OIP v2, /v1 JSON and MLflow's /invocations.

`create_app` loads the models, opens the prediction log and returns a FastAPI app; the
`serve` command runs it under uvicorn. The prediction routes read the raw body with orjson
(no pydantic on the hot path), validate it against the signature, run it through the
model's micro-batcher, answer, and hand the record to the log writer without waiting.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from modelyard._version import __version__
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
from modelyard.serving._ids import new_ids
from modelyard.serving._inputs import Batch
from modelyard.serving._metrics import CONTENT_TYPE, ServerMetrics
from modelyard.serving._records import LoggedBatch
from modelyard.serving._served import Loaded, ModelRef, ServedModel

if TYPE_CHECKING:
    from modelyard.config import Settings
    from modelyard.models import LoadedModel
    from modelyard.registry import Registry
    from modelyard.serving._feedback import FeedbackStore
    from modelyard.serving._writer import LogWriter
    from modelyard.tracking import Tracker

Protocol = Literal["v2", "v1", "invocations"]
_log = logging.getLogger("modelyard.serving")
_FEEDBACK_WAIT_S = 5.0
# FastAPI from 0.16x asks OpenTelemetry on every request whether anyone listens; the model
# server reports through /metrics instead and skips that cost where FastAPI lets it.
_NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


class ServeOptions(BaseModel):
    """How a model server batches, loads, logs and limits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_batch_rows: int = Field(default=128, ge=1, description="Rows per call of the model.")
    max_wait_ms: float = Field(
        default=2.0, ge=0, description="Longest wait to fill a batch while more requests arrive."
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


class _Server:
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
        self.batchers: dict[str, Batcher[Loaded]] = {
            name: Batcher(
                _compute,
                max_rows=options.max_batch_rows,
                max_wait_s=options.max_wait_ms / 1000,
                on_batch=self._observe_batch,
                thread_name=f"modelyard-{name}",
            )
            for name in served
        }

    def close(self) -> None:
        """Write out the prediction log and close the stores (batchers close in the loop)."""
        if self.writer is not None:
            self.writer.close()
        self.close_stores()

    def model(self, name: str) -> ServedModel:
        served = self.served.get(name)
        if served is None:
            raise NotFound(
                f"no model named {name!r} is served here; served: {', '.join(self.served)}"
            )
        return served

    def _observe_batch(self, loaded: Loaded, rows: int) -> None:
        self.metrics.batch_rows.labels(_model_name(loaded), _label(loaded.version)).observe(rows)

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
    ) -> Response:
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
                batch, outputs_wanted, request_id = await self._decode(request, protocol, loaded)
            finally:
                batcher.arriving -= 1
            served.last_batch = batch
            try:
                outputs: dict[str, Any] = await batcher.submit(loaded, batch, batch.rows)
            except ModelyardError:
                raise
            except Exception as exc:
                _log.warning(
                    "%s version %s raised on a request", name, loaded.version, exc_info=exc
                )
                raise PredictionFailed(
                    f"the model could not predict this input: {type(exc).__name__}: {exc}"
                ) from None
            if outputs_wanted is not None:
                outputs = _pick(outputs, outputs_wanted, loaded)
            ids = new_ids(batch.rows)
            body = self._encode(protocol, name, loaded, request_id, outputs, ids)
            elapsed = time.perf_counter() - started
            self._record(loaded, batch, outputs, ids, elapsed)
            self._count(name, loaded, protocol, 200, elapsed, batch.rows)
            return Response(
                body,
                media_type="application/json",
                headers={"x-model-name": name, "x-model-version": _label(loaded.version)},
            )
        except ModelyardError as exc:
            known = name in self.served
            version_label = _label(loaded.version) if loaded is not None else ""
            self.metrics.requests.labels(
                name if known else "", version_label, protocol, str(exc.status_code)
            ).inc()
            return error_response(protocol, exc.message, exc.status_code)

    async def _decode(
        self, request: Request, protocol: Protocol, loaded: Loaded
    ) -> tuple[Batch, list[str] | None, str | None]:
        body = await read_body(request, self.options.max_body_bytes)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if protocol == "invocations" and media == "text/csv":
            return wire.decode_csv(body, loaded.reader), None, None
        if media and media != "application/json" and not media.endswith("+json"):
            raise UnsupportedMediaType(
                f"cannot read a {media} body; send JSON with Content-Type: application/json"
                + (" (or text/csv)" if protocol == "invocations" else "")
            )
        payload = wire.parse_json(body)
        if protocol == "v2":
            return wire.decode_v2(payload, loaded.reader)
        if protocol == "v1":
            return wire.decode_v1(payload, loaded.reader), None, None
        return wire.decode_invocations(payload, loaded.reader), None, None

    def _encode(
        self,
        protocol: Protocol,
        name: str,
        loaded: Loaded,
        request_id: str | None,
        outputs: dict[str, Any],
        ids: list[str],
    ) -> bytes:
        if protocol == "v2":
            return wire.encode_v2(name, loaded.version, request_id or ids[0], outputs, ids)
        return wire.encode_predictions(
            name, loaded.version, outputs, ids, mlflow=protocol == "invocations"
        )

    def _record(
        self,
        loaded: Loaded,
        batch: Batch,
        outputs: dict[str, Any],
        ids: list[str],
        elapsed: float,
    ) -> None:
        if self.writer is None:
            return
        record = LoggedBatch(
            model=_model_name(loaded),
            version=loaded.version or 0,
            ids=ids,
            at_ms=time.time_ns() // 1_000_000,
            latency_ms=elapsed * 1000,
            inputs=batch.data,
            outputs=outputs,
            pii=loaded.pii,
            columns=tuple(loaded.reader.names) if loaded.reader.is_table else None,
        )
        if not self.writer.submit(record):
            model, version = _model_name(loaded), _label(loaded.version)
            self.metrics.log_dropped.labels(model, version).inc(batch.rows)

    def _count(
        self, name: str, loaded: Loaded, protocol: str, code: int, elapsed: float, rows: int
    ) -> None:
        version = _label(loaded.version)
        self.metrics.requests.labels(name, version, protocol, str(code)).inc()
        self.metrics.latency.labels(name, version).observe(elapsed)
        self.metrics.predictions.labels(name, version).inc(rows)


def _compute(loaded: Loaded, batches: Sequence[Batch]) -> list[dict[str, Any]]:
    """One model call for several requests; if it raises, each request runs alone, so one
    bad request does not fail the others batched with it."""
    try:
        return loaded.compute(batches)
    except Exception:
        if len(batches) == 1:
            raise
    return [_alone(loaded, batch) for batch in batches]


def _alone(loaded: Loaded, batch: Batch) -> Any:
    try:
        return loaded.compute([batch])[0]
    except Exception as exc:
        return exc


def _pick(outputs: dict[str, Any], wanted: list[str], loaded: Loaded) -> dict[str, Any]:
    if unknown := [w for w in wanted if w not in outputs]:
        raise InvalidInput(
            f"unknown output(s) {', '.join(map(repr, unknown))}; the model has: "
            f"{', '.join(loaded.output_names)}"
        )
    return {name: outputs[name] for name in wanted}


def _model_name(loaded: Loaded) -> str:
    version = loaded.model.version
    return version.name if version is not None else loaded.model.uri


def _label(version: int | None) -> str:
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


def create_app(
    models: Sequence[str],
    *,
    settings: Settings | None = None,
    options: ServeOptions | None = None,
) -> FastAPI:
    """A model server for `models` (`churn@champion`, `churn/3`, `name=churn@challenger`).

    The models are loaded now, so a wrong name fails here rather than at the first request.
    `settings` default to what `my.configure` names; the app closes what it opened on shutdown.
    """
    from modelyard.registry._default import registry_of
    from modelyard.serving._feedback import open_feedback
    from modelyard.serving._log import open_prediction_log
    from modelyard.serving._writer import LogWriter
    from modelyard.tracking import open_tracker

    if settings is None:
        from modelyard._sdk import get_settings

        settings = get_settings()
    options = options or ServeOptions()
    refs = [ModelRef.parse(m) for m in models]
    if not refs:
        raise InvalidInput("name at least one model to serve, such as churn@champion")
    names = [r.served_name for r in refs]
    if duplicates := sorted({n for n in names if names.count(n) > 1}):
        raise InvalidInput(
            f"two models would be served as {', '.join(duplicates)}; name one of them: "
            "other=churn@challenger"
        )
    tracker = open_tracker(settings)
    closers: list[Callable[[], None]] = [tracker.close]
    try:
        registry = registry_of(tracker)
        closers.insert(0, registry.close)
        load = _loader(settings, tracker, registry, options)
        served = {r.served_name: ServedModel(r, load, _resolver(registry)) for r in refs}
        metadata = getattr(tracker.backend, "metadata", None)
        log = open_prediction_log(settings, metadata)
        closers.insert(0, log.close)
        feedback = open_feedback(settings, log, metadata)
        writer = LogWriter(log, capacity=options.log_capacity) if options.log_predictions else None
    except BaseException:
        for close in closers:
            close()
        raise

    def close_stores() -> None:
        for close in closers:
            try:
                close()
            except Exception:
                _log.exception("could not close a store")

    server = _Server(served, options, writer, feedback, close_stores)
    return _build_app(server)


def _loader(
    settings: Settings, tracker: Tracker, registry: Registry, options: ServeOptions
) -> Callable[[str], LoadedModel]:
    from modelyard.models._load import load_model

    choices: dict[str, bool | Literal["auto"]] = {"auto": "auto", "onnx": True, "native": False}
    onnx = choices[options.runtime]

    def load(uri: str) -> LoadedModel:
        return load_model(
            uri,
            tracker=tracker,
            registry=registry,
            cache_dir=settings.home / "cache" / "models",
            allow_pickle=options.allow_pickle,
            trusted=options.trusted,
            onnx=onnx,
        )

    return load


def _resolver(registry: Registry) -> Callable[[ModelRef], int]:
    def resolve(ref: ModelRef) -> int:
        if ref.version is not None:
            return ref.version
        if ref.alias is not None:
            return registry.resolve(ref.uri).version
        latest = registry.get_model(ref.model).latest_version
        if not latest:
            raise NotFound(f"model {ref.model!r} has no versions yet")
        return latest

    return resolve


def _build_app(server: _Server) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        refresher = asyncio.create_task(server.refresh_forever(), name="modelyard-refresh")
        try:
            yield
        finally:
            refresher.cancel()
            await asyncio.gather(refresher, return_exceptions=True)
            for batcher in server.batchers.values():
                await batcher.close()
            await run_in_threadpool(server.close)

    app = FastAPI(
        title="modelyard model server",
        version=__version__,
        summary="Predictions over OIP v2, /v1 JSON and MLflow /invocations; feedback; metrics.",
        lifespan=lifespan,
        **_NO_TELEMETRY,
    )
    app.state.modelyard = server
    _install_error_handlers(app)
    _routes(app, server)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    from starlette.exceptions import HTTPException

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> Response:
        return error_response("v2", str(exc.detail), exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> Response:
        _log.error("unexpected error", exc_info=exc)
        return error_response("v2", f"internal error: {type(exc).__name__}", 500)


def _routes(app: FastAPI, server: _Server) -> None:
    json = "application/json"

    def ok(body: Any, status_code: int = 200) -> Response:
        return Response(wire.dumps(body), status_code=status_code, media_type=json)

    def guarded(protocol: Protocol, work: Callable[[], Any]) -> Response:
        try:
            return ok(work())
        except ModelyardError as exc:
            return error_response(protocol, exc.message, exc.status_code)

    # -- Open Inference Protocol v2 ------------------------------------------------------

    @app.get("/v2/health/live", tags=["v2"])
    def live() -> Response:
        return ok({"live": True})

    @app.get("/v2/health/ready", tags=["v2"])
    def ready() -> Response:
        return ok({"ready": True})

    @app.get("/v2", tags=["v2"])
    def server_metadata() -> Response:
        return ok({"name": "modelyard", "version": __version__, "extensions": ["model_repository"]})

    @app.get("/v2/models/{name}", tags=["v2"])
    @app.get("/v2/models/{name}/versions/{version}", tags=["v2"])
    def model_metadata(name: str, version: str | None = None) -> Response:
        return guarded("v2", lambda: _metadata(server, name, version))

    @app.get("/v2/models/{name}/ready", tags=["v2"])
    @app.get("/v2/models/{name}/versions/{version}/ready", tags=["v2"])
    def model_ready(name: str, version: str | None = None) -> Response:
        def answer() -> Any:
            loaded = server.model(name).current
            if version is not None and version != str(loaded.version):
                raise NotFound(f"model {name!r} serves version {loaded.version}, not {version}")
            return {"name": name, "ready": True}

        return guarded("v2", answer)

    @app.post("/v2/models/{name}/infer", tags=["v2"])
    async def infer(name: str, request: Request) -> Response:
        return await server.predict(request, name, "v2")

    @app.post("/v2/models/{name}/versions/{version}/infer", tags=["v2"])
    async def infer_version(name: str, version: str, request: Request) -> Response:
        return await server.predict(request, name, "v2", version)

    @app.post("/v2/repository/index", tags=["v2"])
    def repository_index() -> Response:
        return ok(
            [
                {"name": name, "version": _label(s.current.version), "state": "READY"}
                for name, s in server.served.items()
            ]
        )

    @app.post("/v2/repository/models/{name}/load", tags=["v2"])
    async def repository_load(name: str) -> Response:
        try:
            swapped = await run_in_threadpool(server.refresh, name)
        except ModelyardError as exc:
            return error_response("v2", exc.message, exc.status_code)
        current = server.served[name].current
        return ok({"name": name, "version": _label(current.version), "swapped": swapped})

    # -- /v1 and MLflow ------------------------------------------------------------------

    @app.post("/v1/models/{name}:predict", tags=["v1"])
    async def predict(name: str, request: Request) -> Response:
        return await server.predict(request, name, "v1")

    @app.get("/v1/models/{name}", tags=["v1"])
    def v1_status(name: str) -> Response:
        return guarded("v1", lambda: _metadata(server, name, None))

    @app.post("/invocations", tags=["mlflow"])
    async def invocations(request: Request) -> Response:
        return await server.predict(request, next(iter(server.served)), "invocations")

    @app.get("/ping", tags=["mlflow"])
    @app.get("/health", tags=["mlflow"])
    def ping() -> Response:
        return ok({"status": "ok"})

    # -- feedback and metrics ------------------------------------------------------------

    @app.post("/v1/feedback", tags=["feedback"])
    async def feedback(request: Request) -> Response:
        try:
            items = _feedback_items(wire.parse_json(await read_body(request, 1 << 20)))
            records = await run_in_threadpool(_record_feedback, server, items)
        except ModelyardError as exc:
            return error_response("v1", exc.message, exc.status_code)
        return ok({"feedback": [_feedback_json(r) for r in records]}, 201)

    @app.get("/metrics", tags=["metrics"])
    def metrics() -> Response:
        server.update_log_gauges()
        return Response(server.metrics.exposition(), media_type=CONTENT_TYPE)


def _metadata(server: _Server, name: str, version: str | None) -> dict[str, Any]:
    served = server.model(name)
    loaded = served.current
    if version is not None and version != str(loaded.version):
        raise NotFound(f"model {name!r} serves version {loaded.version}, not {version}")
    signature = loaded.model.signature
    if signature is None:
        inputs: list[dict[str, Any]] = []
    elif signature.columns is not None:
        inputs = [
            {"name": c.name, "datatype": wire.oip_datatype(c.dtype), "shape": [-1]}
            for c in signature.columns
        ]
    else:
        assert signature.tensor is not None
        inputs = [
            {
                "name": "input",
                "datatype": wire.oip_datatype(signature.tensor.dtype),
                "shape": signature.tensor.shape,
            }
        ]
    outputs = [
        {"name": o.name, "datatype": wire.oip_datatype(o.dtype), "shape": o.shape}
        for o in (signature.outputs if signature is not None else [])
    ]
    return {
        "name": name,
        "versions": [_label(loaded.version)],
        "platform": loaded.model.flavor,
        "inputs": inputs,
        "outputs": outputs,
        "parameters": {
            "model": _model_name(loaded),
            "reference": str(served.ref),
            "runtime": loaded.model.runtime,
            "loaded_at": served.loaded_at,
        },
    }


def _feedback_items(body: Any) -> list[tuple[str, Any]]:
    entries = body.get("feedback") if isinstance(body, dict) and "feedback" in body else [body]
    if not isinstance(entries, list) or not entries:
        raise InvalidInput('send {"prediction_id": ..., "label": ...} or {"feedback": [...]}')
    items = []
    for entry in entries:
        if not isinstance(entry, dict) or not {"prediction_id", "label"} <= entry.keys():
            raise InvalidInput('each feedback needs "prediction_id" and "label"')
        items.append((entry["prediction_id"], entry["label"]))
    return items


def _record_feedback(server: _Server, items: list[tuple[str, Any]]) -> list[Any]:
    if server.feedback is None:
        raise InvalidInput("this server records no feedback")
    try:
        return server.feedback.record(items)
    except NotFound:
        # the prediction may still sit in the log queue: write it out, then look again
        if server.writer is None or not server.writer.flush(timeout=_FEEDBACK_WAIT_S):
            raise
        return server.feedback.record(items)


def _feedback_json(record: Any) -> dict[str, Any]:
    return {
        "prediction_id": record.prediction_id,
        "label": record.label,
        "model": record.model,
        "version": record.version,
        "at_ms": record.at_ms,
    }
