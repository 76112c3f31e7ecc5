"""The modelyard server: one FastAPI app over the stores named by `Settings`."""

from __future__ import annotations

import ipaddress
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from modelyard._version import __version__
from modelyard.config import Settings
from modelyard.errors import PermissionDenied
from modelyard.features._online import open_online_store
from modelyard.features._registry import FeatureRegistry
from modelyard.features._store import FeatureStore
from modelyard.monitoring._default import monitors_of_backend
from modelyard.registry import SqlRegistry
from modelyard.rollout._default import deployments_of_backend, model_loader
from modelyard.server._data import data_router
from modelyard.server._deployments import deployments_router
from modelyard.server._errors import install_error_handlers, json_response
from modelyard.server._features import features_router
from modelyard.server._monitoring import monitoring_router
from modelyard.server._monitors import monitors_router
from modelyard.server._predictions import predictions_router
from modelyard.server._registry import registry_router
from modelyard.server._tracking import tracking_router
from modelyard.serving._feedback import SqlFeedback
from modelyard.serving._log import PredictionLog, SqlPredictionLog, open_prediction_log
from modelyard.tracking._sql import SqlTracking


def create_app(
    backend: SqlTracking,
    *,
    prediction_log: PredictionLog | None = None,
    cache_dir: Path | None = None,
    online_url: str | None = None,
) -> FastAPI:
    """The REST API (OpenAPI docs at /docs) serving `backend` and `prediction_log` (default:
    the `predictions` table of the backend's database); closes them on shutdown. Models a
    decision loads (a blue-green smoke test) are cached in `cache_dir` (default: a temporary
    folder). Online feature values live at `online_url` (default: SQLite in `cache_dir`)."""
    log = prediction_log if prediction_log is not None else SqlPredictionLog(backend.metadata)
    cache = cache_dir or Path(tempfile.mkdtemp(prefix="modelyard-"))
    features = FeatureStore(FeatureRegistry(backend.metadata), open_online_store(online_url, cache))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        features.close()
        log.close()
        backend.close()

    app = FastAPI(
        title="modelyard",
        version=__version__,
        summary="Tracking, registry, serving, rollout and monitoring of ML models.",
        lifespan=lifespan,
    )
    install_error_handlers(app)

    @app.get("/health", tags=["health"])
    def health() -> object:
        return json_response({"status": "ok", "version": __version__})

    app.include_router(tracking_router(backend))
    registry = SqlRegistry(backend.metadata, backend.artifacts)
    app.include_router(registry_router(registry))
    feedback = SqlFeedback(backend.metadata, log)
    app.include_router(predictions_router(log, feedback))
    app.include_router(monitoring_router(registry, backend.read_artifact))
    app.include_router(monitors_router(monitors_of_backend(backend, log)))
    deployments = deployments_of_backend(backend)
    replay = model_loader(backend, cache)
    app.include_router(deployments_router(deployments, log, feedback, replay))
    app.include_router(features_router(features, log, registry))
    app.include_router(data_router(backend.metadata, registry))
    return app


def check_bind_address(host: str) -> None:
    """Refuse any address but loopback: authentication does not exist yet."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise PermissionDenied(
            f"refusing to bind {host!r}: modelyard has no authentication yet, so the server "
            "only listens on loopback (127.0.0.1, ::1, localhost); put an authenticating "
            "reverse proxy in front of it to share it"
        )


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 5005) -> None:
    """Run the server in this process until interrupted."""
    import uvicorn

    from modelyard.tracking import open_local_backend

    check_bind_address(host)
    backend = open_local_backend(settings)
    # the server keeps the log itself (Parquet or its database), never another server's
    local = settings.model_copy(update={"tracking_uri": None})
    app = create_app(
        backend,
        prediction_log=open_prediction_log(local, backend.metadata),
        cache_dir=settings.home / "cache" / "models",
        online_url=settings.online_url
        or settings.redis_url
        or f"sqlite:///{settings.home / 'online.db'}",
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
