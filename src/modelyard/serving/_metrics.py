"""Prometheus metrics of a model server, labelled by model and version.

With several workers (`serve --workers N`) each worker process writes its metrics to files
in `PROMETHEUS_MULTIPROC_DIR`, which the `serve` command sets for them, and `/metrics` adds
them up, whichever worker answers the scrape.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class ServerMetrics:
    """The counters, histograms and gauges one server keeps."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("model", "version")
        self.requests = Counter(
            "modelyard_requests",
            "Prediction requests answered, by protocol and HTTP status code.",
            (*labels, "protocol", "code"),
            registry=self.registry,
        )
        self.predictions = Counter(
            "modelyard_predictions", "Rows predicted.", labels, registry=self.registry
        )
        self.latency = Histogram(
            "modelyard_request_latency_seconds",
            "Time from a request's arrival to its answer, for answered predictions.",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "modelyard_batch_rows",
            "Rows per call of the model, after micro-batching.",
            labels,
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.log_queue = Gauge(
            "modelyard_prediction_log_queue_rows",
            "Prediction log rows waiting to be written.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.log_dropped = Counter(
            "modelyard_prediction_log_dropped_rows",
            "Prediction log rows dropped because the log queue was full.",
            labels,
            registry=self.registry,
        )
        self.log_failed = Gauge(
            "modelyard_prediction_log_failed_rows",
            "Prediction log rows whose write kept failing.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.swaps = Counter(
            "modelyard_model_swaps",
            "Times a served name switched to another version.",
            ("model",),
            registry=self.registry,
        )
        # deployments: which variant answered, what fell back or was mirrored
        self.variant_requests = Counter(
            "modelyard_deployment_requests",
            "Requests to a deployment answered, by the variant and version that answered.",
            ("deployment", "variant", "version"),
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "modelyard_candidate_fallbacks",
            "Requests routed to a candidate that failed (error, timeout) and that the primary "
            "answered instead.",
            ("deployment", "variant", "reason"),
            registry=self.registry,
        )
        self.mirrored = Counter(
            "modelyard_mirrored_requests",
            "Requests mirrored to a shadow or challenger, by outcome (ok, error, timeout).",
            ("deployment", "variant", "outcome"),
            registry=self.registry,
        )
        self.mirror_dropped = Counter(
            "modelyard_mirrored_requests_dropped",
            "Mirrored requests dropped because too many were in flight (--mirror-capacity).",
            ("deployment", "variant"),
            registry=self.registry,
        )
        self.deployment_updates = Counter(
            "modelyard_deployment_updates",
            "Times a served deployment's routing changed (split, status, variants) or it was "
            "deleted.",
            ("deployment",),
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The text Prometheus scrapes: this process's metrics, or every worker's."""
        from prometheus_client import generate_latest

        directory = os.environ.get(MULTIPROCESS_ENV)
        if not directory:
            return generate_latest(self.registry)
        return generate_latest(_multiprocess_registry(directory))


def _multiprocess_registry(directory: str) -> CollectorRegistry:
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry
