"""Two versions side by side: pure, over the versions, their runs and their manifests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from modelyard.registry._entities import MetricDifference, ModelVersion, VersionComparison
from modelyard.tracking._entities import Run

if TYPE_CHECKING:
    from modelyard.models import Manifest

Pair = tuple[str | None, str | None]


def compare(
    versions: tuple[ModelVersion, ModelVersion],
    runs: tuple[Run | None, Run | None],
    manifests: tuple[Manifest | None, Manifest | None],
) -> VersionComparison:
    """What differs from version a to version b (pairs are (a, b))."""
    a, b = versions
    metrics_a, metrics_b = (metrics_of(run, m) for run, m in zip(runs, manifests, strict=True))
    params_a, params_b = ({} if run is None else run.params for run in runs)
    manifest_a, manifest_b = manifests
    return VersionComparison(
        a=a,
        b=b,
        metrics=tuple(
            MetricDifference(k, metrics_a.get(k), metrics_b.get(k), _minus(metrics_b, metrics_a, k))
            for k in sorted(set(metrics_a) | set(metrics_b))
        ),
        params=_differing(params_a, params_b),
        signature=_signature_differences(a, b, manifest_a, manifest_b),
        flavor=(a.flavor or _get(manifest_a, "flavor"), b.flavor or _get(manifest_b, "flavor")),
        model_class=(_get(manifest_a, "model_class"), _get(manifest_b, "model_class")),
        python=(_get(manifest_a, "python"), _get(manifest_b, "python")),
        requirements=_differing(
            {} if manifest_a is None else manifest_a.requirements,
            {} if manifest_b is None else manifest_b.requirements,
        ),
    )


def metrics_of(run: Run | None, manifest: Manifest | None) -> dict[str, float]:
    """The final metric values of the version's run; the manifest's for keys the run lacks."""
    metrics = dict(manifest.metrics) if manifest is not None else {}
    if run is not None:
        metrics.update((key, metric.value) for key, metric in run.metrics.items())
    return metrics


def _minus(b: Mapping[str, float], a: Mapping[str, float], key: str) -> float | None:
    return b[key] - a[key] if key in a and key in b else None


def _differing(a: Mapping[str, str], b: Mapping[str, str]) -> dict[str, Pair]:
    return {
        key: (a.get(key), b.get(key)) for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)
    }


def _get(manifest: Manifest | None, field: str) -> str | None:
    return None if manifest is None else str(getattr(manifest, field))


def _signature_differences(
    a: ModelVersion, b: ModelVersion, manifest_a: Manifest | None, manifest_b: Manifest | None
) -> tuple[str, ...]:
    signature_a = None if manifest_a is None else manifest_a.signature
    signature_b = None if manifest_b is None else manifest_b.signature
    if signature_a is not None and signature_b is not None:
        return tuple(signature_a.diff(signature_b))
    if signature_a is None and signature_b is None:
        return ()
    without = a if signature_a is None else b
    return (f"version {without.version} records no signature",)
