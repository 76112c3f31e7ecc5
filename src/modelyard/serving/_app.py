"""The model server as an ASGI app: OIP v2, /v1 JSON and MLflow's /invocations, feedback,
metrics. `create_app` loads the models and deployments and opens the prediction log; `serve`
runs it under uvicorn. The request path itself is `ModelServer`, in `_server` (through a
deployment: `_routed`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from modelyard._version import __version__
from modelyard.errors import InvalidInput, ModelyardError, NotFound
from modelyard.serving import _protocols as wire
from modelyard.serving._deployed import ServedDeployments
from modelyard.serving._metrics import CONTENT_TYPE
from modelyard.serving._served import Loaded, ModelRef, ServedModel
from modelyard.serving._server import (
    ModelServer,
    Protocol,
    ServeOptions,
    error_response,
    label,
    model_name,
    read_body,
)

if TYPE_CHECKING:
    from modelyard.config import Settings
    from modelyard.models import LoadedModel
    from modelyard.registry import Registry
    from modelyard.rollout._store import Deployments
    from modelyard.store import MetadataStore
    from modelyard.tracking import Tracker

_log = logging.getLogger("modelyard.serving")
_FEEDBACK_WAIT_S = 5.0
# FastAPI from 0.16x asks OpenTelemetry on every request whether anyone listens; the model
# server reports through /metrics instead and skips that cost where FastAPI lets it.
_NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


def create_app(
    models: Sequence[str] = (),
    *,
    deployments: Sequence[str] = (),
    settings: Settings | None = None,
    options: ServeOptions | None = None,
) -> FastAPI:
    """A model server for `models` (`churn@champion`, `churn/3`, `name=churn@challenger`)
    and `deployments` (names of deployments in the metadata store, `modelyard deploy`).

    The models and every variant of the deployments are loaded now, so a wrong name fails
    here rather than at the first request. `settings` default to what `my.configure` names;
    the app closes what it opened on shutdown.
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
    refs = _references(models, deployments)
    tracker = open_tracker(settings)
    closers: list[Callable[[], None]] = [tracker.close]
    try:
        registry = registry_of(tracker)
        closers.insert(0, registry.close)
        load = _loader(settings, tracker, registry, options)
        metadata = getattr(tracker.backend, "metadata", None)
        source = _deployment_source(metadata, registry) if deployments else None
        served = {r.served_name: _served(r, load, registry, source) for r in refs}
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

    server = ModelServer(served, options, writer, feedback, close_stores)
    watched_models = {r.model for r in refs}
    if source is not None:
        try:
            server.deployments = ServedDeployments(server, source, load, deployments)
        except BaseException:
            server.close()
            raise
        watched_models |= {r.deployment.model for r in server.deployments.served.values()}
    _attach_features(server, settings, metadata, closers)
    if metadata is not None:
        from modelyard.monitoring._default import monitors_on
        from modelyard.monitoring._exposition import MonitorExposition

        watched = monitors_on(metadata, registry, tracker.read_artifact, log, feedback)
        server.monitor_metrics = MonitorExposition(watched, watched_models)
    return _build_app(server)


def _references(models: Sequence[str], deployments: Sequence[str]) -> list[ModelRef]:
    refs = [ModelRef.parse(m) for m in models]
    if not refs and not deployments:
        raise InvalidInput(
            "name at least one model to serve, such as churn@champion, or a deployment "
            "(--deployment NAME)"
        )
    names = [r.served_name for r in refs] + list(deployments)
    if duplicates := sorted({n for n in names if names.count(n) > 1}):
        raise InvalidInput(
            f"two models or deployments would be served as {', '.join(duplicates)}; name "
            "one of them: other=churn@challenger"
        )
    return refs


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


def _attach_features(
    server: ModelServer,
    settings: Settings,
    metadata: MetadataStore | None,
    closers: list[Callable[[], None]],
) -> None:
    """Online features for the versions logged with a feature service: the store is opened
    now if a version served now reads one, else at the first read (an alias move or a
    deployment change may bring such a version in later)."""
    from modelyard.features._default import feature_store_of
    from modelyard.serving._features import FeatureLookup

    reads_features = any(x.model.manifest.features is not None for x in _versions(server))
    try:
        if metadata is None:
            if reads_features:
                raise InvalidInput(
                    "a model that reads a feature service is served where the metadata "
                    "database is (db_url), not against a tracking server"
                )
            return
        lookup = FeatureLookup(lambda: feature_store_of(metadata, settings))
        closers.insert(0, lookup.close)
        server.features = lookup
        if reads_features:
            lookup.open()  # a store that cannot be opened fails here, not at a request
    except BaseException:
        server.close()
        raise


def _versions(server: ModelServer) -> list[Loaded]:
    """Every version the server serves now: its models', and its deployments' variants."""
    deployed = server.deployments.served.values() if server.deployments is not None else []
    return [m.current for m in server.served.values()] + [
        x for routes in deployed for x in routes.loaded.values()
    ]


def _deployment_source(metadata: MetadataStore | None, registry: Registry) -> Deployments:
    from modelyard.rollout._store import Deployments

    if metadata is None:
        raise InvalidInput(
            "serving deployments reads them from the metadata database: run `serve` where "
            "the stores are (db_url), not against a tracking server (tracking_uri)"
        )
    return Deployments(metadata, registry)


def _served(
    ref: ModelRef,
    load: Callable[[str], LoadedModel],
    registry: Registry,
    deployments: Deployments | None,
) -> ServedModel:
    """The model `ref` names, loaded; a deployment named as a model says how to serve it."""
    try:
        return ServedModel(ref, load, _resolver(registry))
    except NotFound:
        bare = ref.served_name == ref.model and ref.alias is None and ref.version is None
        if bare and deployments is not None and ref.model in deployments.revisions():
            raise InvalidInput(
                f"{ref.model!r} is a deployment, not a model: serve it with "
                f"--deployment {ref.model} (create_app(deployments=[...]))"
            ) from None
        raise


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


def _build_app(server: ModelServer) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        deployments = server.deployments
        refreshers = [asyncio.create_task(server.refresh_forever(), name="modelyard-refresh")]
        if deployments is not None:
            follow = deployments.refresh_forever()
            refreshers.append(asyncio.create_task(follow, name="modelyard-deployments"))
        try:
            yield
        finally:
            for refresher in refreshers:
                refresher.cancel()
            await asyncio.gather(*refreshers, return_exceptions=True)
            if deployments is not None:
                await deployments.close()
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
    app.add_middleware(_PredictionShortcut, server=server)
    return app


# (path, protocol, whether only a deployment answers there)
_PREDICTION_PATHS: list[tuple[re.Pattern[str], Protocol, bool]] = [
    (
        re.compile(r"^/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer$"),
        "v2",
        False,
    ),
    (re.compile(r"^/v1/models/(?P<name>[^/]+):predict$"), "v1", False),
    (re.compile(r"^/v1/deployments/(?P<name>[^/]+):predict$"), "v1", True),
    (re.compile(r"^/invocations$"), "invocations", False),
]


class _PredictionShortcut:
    """Answers prediction requests before FastAPI's routing and per-route machinery.

    The same handlers serve them as the documented routes, which stay in the OpenAPI
    schema; this only skips the layers a prediction does not use, on the hot path.
    """

    def __init__(self, app: ASGIApp, server: ModelServer) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            for pattern, protocol, deployment in _PREDICTION_PATHS:
                if (match := pattern.match(path)) is not None:
                    name = match.groupdict().get("name") or self.server.default_name
                    version = match.groupdict().get("version")
                    request = Request(scope, receive)
                    response = await self.server.predict(
                        request, name, protocol, version, deployment=deployment
                    )
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _install_error_handlers(app: FastAPI) -> None:
    from starlette.exceptions import HTTPException

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> Response:
        return error_response("v2", str(exc.detail), exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> Response:
        _log.error("unexpected error", exc_info=exc)
        return error_response("v2", f"internal error: {type(exc).__name__}", 500)


def _routes(app: FastAPI, server: ModelServer) -> None:
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
            _metadata(server, name, version)  # 404 for what is not served
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
        deployed = server.deployments.served if server.deployments is not None else {}
        return ok(
            [
                {"name": name, "version": label(s.current.version), "state": "READY"}
                for name, s in server.served.items()
            ]
            + [
                {"name": name, "version": label(r.loaded[r.primary].version), "state": "READY"}
                for name, r in deployed.items()
            ]
        )

    @app.post("/v2/repository/models/{name}/load", tags=["v2"])
    async def repository_load(name: str) -> Response:
        deployments = server.deployments
        if deployments is not None and name in deployments.wanted:
            try:  # a deployment: look at the store now
                changed = await deployments.refresh()
                routes = deployments.find(name)
            except ModelyardError as exc:
                return error_response("v2", exc.message, exc.status_code)
            version = label(routes.loaded[routes.primary].version)
            return ok({"name": name, "version": version, "swapped": name in changed})
        try:
            swapped = await run_in_threadpool(server.refresh, name)
        except ModelyardError as exc:
            return error_response("v2", exc.message, exc.status_code)
        current = server.served[name].current
        return ok({"name": name, "version": label(current.version), "swapped": swapped})

    # -- /v1 and MLflow ------------------------------------------------------------------

    @app.post("/v1/models/{name}:predict", tags=["v1"])
    async def predict(name: str, request: Request) -> Response:
        return await server.predict(request, name, "v1")

    @app.get("/v1/models/{name}", tags=["v1"])
    def v1_status(name: str) -> Response:
        return guarded("v1", lambda: _metadata(server, name, None))

    @app.post("/v1/deployments/{name}:predict", tags=["v1"])
    async def predict_deployment(name: str, request: Request) -> Response:
        return await server.predict(request, name, "v1", deployment=True)

    @app.get("/v1/deployments/{name}", tags=["v1"])
    def deployment_status(name: str) -> Response:
        def answer() -> Any:
            if server.deployments is None:
                raise NotFound("this server serves no deployments")
            return server.deployments.describe(name)

        return guarded("v1", answer)

    @app.post("/invocations", tags=["mlflow"])
    async def invocations(request: Request) -> Response:
        return await server.predict(request, server.default_name, "invocations")

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
        return ok({"feedback": records}, 201)  # orjson writes the dataclasses' fields

    @app.get("/metrics", tags=["metrics"])
    def metrics() -> Response:
        server.update_log_gauges()
        text = server.metrics.exposition()
        if server.monitor_metrics is not None:
            text += server.monitor_metrics.text()
        return Response(text, media_type=CONTENT_TYPE)


def _metadata(server: ModelServer, name: str, version: str | None) -> dict[str, Any]:
    deployments = server.deployments
    if deployments is not None and name in deployments.served:
        routes = deployments.served[name]
        loaded = routes.loaded[routes.primary]
        versions = sorted({label(x.version) for x in routes.loaded.values()})
        if version is not None and version not in versions:
            raise NotFound(
                f"deployment {name!r} serves version(s) {', '.join(versions)}, not {version}"
            )
        parameters: dict[str, Any] = {
            "model": model_name(loaded),
            "deployment": deployments.describe(name),
            "runtime": loaded.model.runtime,
        }
        return {**_signature_metadata(name, loaded), "versions": versions, "parameters": parameters}
    served = server.model(name)
    loaded = served.current
    if version is not None and version != str(loaded.version):
        raise NotFound(f"model {name!r} serves version {loaded.version}, not {version}")
    parameters = {
        "model": model_name(loaded),
        "reference": str(served.ref),
        "runtime": loaded.model.runtime,
        "loaded_at": served.loaded_at,
    }
    return {
        **_signature_metadata(name, loaded),
        "versions": [label(loaded.version)],
        "parameters": parameters,
    }


def _signature_metadata(name: str, loaded: Loaded) -> dict[str, Any]:
    """The OIP metadata a version's signature gives: platform, inputs, outputs."""
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
    return {"name": name, "platform": loaded.model.flavor, "inputs": inputs, "outputs": outputs}


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


def _record_feedback(server: ModelServer, items: list[tuple[str, Any]]) -> list[Any]:
    if server.feedback is None:
        raise InvalidInput("this server records no feedback")
    try:
        return server.feedback.record(items)
    except NotFound:
        # the prediction may still sit in the log queue: write it out, then look again
        if server.writer is None or not server.writer.flush(timeout=_FEEDBACK_WAIT_S):
            raise
        return server.feedback.record(items)
