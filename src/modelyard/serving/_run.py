"""Running a model server under uvicorn: one process, or several workers on one port."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from modelyard.serving._app import create_app
from modelyard.serving._metrics import MULTIPROCESS_ENV
from modelyard.serving._server import ServeOptions

if TYPE_CHECKING:
    from fastapi import FastAPI

    from modelyard.config import Settings

# What a worker process needs to build its app: models, deployments, settings and options.
SPEC_ENV = "MODELYARD_SERVE_SPEC"


def serve(
    models: Sequence[str] = (),
    *,
    deployments: Sequence[str] = (),
    settings: Settings,
    options: ServeOptions | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
) -> None:
    """Serve `models` and `deployments` until interrupted; SIGTERM drains requests and
    flushes the log first."""
    import uvicorn

    _log_to_stderr()
    # The event loop shares the interpreter with the log writer and batcher threads; a
    # shorter switch interval hands it back sooner, which trims the latency tail.
    sys.setswitchinterval(0.0005)
    options = options or ServeOptions()
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "access_log": False,
    }
    deciding = bool(deployments) and options.decide_every_s > 0
    with _monitor_thread(settings, options.run_monitors), _decisions(settings, deciding, options):
        if workers == 1:
            app = create_app(models, deployments=deployments, settings=settings, options=options)
            _settle()
            uvicorn.run(app, **common)
            return
        # load once here, so a wrong name fails before any worker starts
        create_app(
            models, deployments=deployments, settings=settings, options=options
        ).state.modelyard.close()
        metrics_dir = tempfile.mkdtemp(prefix="modelyard-metrics-")
        os.environ[SPEC_ENV] = _spec(models, deployments, settings, options)
        os.environ[MULTIPROCESS_ENV] = metrics_dir
        try:
            uvicorn.run(f"{__name__}:app_from_environment", factory=True, workers=workers, **common)
        finally:
            shutil.rmtree(metrics_dir, ignore_errors=True)


@contextmanager
def _monitor_thread(settings: Settings, enabled: bool) -> Iterator[None]:
    """Scheduled monitors on one thread of this (parent) process, whatever the workers."""
    if not enabled:
        yield
        return
    from modelyard.monitoring._default import open_monitors
    from modelyard.monitoring._scheduler import MonitorThread

    with open_monitors(settings) as monitors:
        thread = MonitorThread(monitors, tick=1.0)  # schedules may be as short as 1s
        thread.start()
        try:
            yield
        finally:
            thread.stop()


@contextmanager
def _decisions(settings: Settings, enabled: bool, options: ServeOptions) -> Iterator[None]:
    """Deployment decisions on one thread of this (parent) process, whatever the workers."""
    if not enabled:
        yield
        return
    from modelyard.rollout._engine import decision_thread

    with decision_thread(settings, tick=options.decide_every_s):
        yield


def _log_to_stderr() -> None:
    """Show what the server does (version swaps, failed refreshes) on stderr."""
    logger = logging.getLogger("modelyard")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def app_from_environment() -> FastAPI:
    """The app of one worker, from the spec its parent left in the environment."""
    import orjson

    from modelyard.config import Settings

    _log_to_stderr()
    sys.setswitchinterval(0.0005)
    spec = orjson.loads(os.environ[SPEC_ENV])
    app = create_app(
        spec["models"],
        deployments=spec.get("deployments", []),
        settings=Settings(**spec["settings"]),
        options=ServeOptions(**spec["options"]),
    )
    _settle()
    return app


def _settle() -> None:
    """Keep the garbage collector off what the server holds for good.

    Imports and loaded models leave over a hundred thousand objects behind; every full
    collection walked them all, pausing the event loop for tens of milliseconds (most of a
    busy server's p99). Frozen, they are never scanned again; what requests allocate is
    still collected.
    """
    import gc

    gc.collect()
    gc.freeze()


def _spec(
    models: Sequence[str], deployments: Sequence[str], settings: Settings, options: ServeOptions
) -> str:
    import orjson

    return orjson.dumps(
        {
            "models": list(models),
            "deployments": list(deployments),
            "settings": settings.model_dump(mode="json", exclude_unset=True),
            "options": options.model_dump(mode="json"),
        }
    ).decode()
