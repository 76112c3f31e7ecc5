"""`my.rollout.*` on the default stores: deployments, their changes and their history.

Who acts is the current OS user unless `actor=` says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    from pathlib import Path

    from modelyard.config import Settings
    from modelyard.models import LoadedModel
    from modelyard.rollout._decide import Decision
    from modelyard.rollout._spec import Deployment, DeploymentEvent
    from modelyard.rollout._status import DeploymentStatus
    from modelyard.rollout._store import Deployments
    from modelyard.serving._feedback import FeedbackStore
    from modelyard.serving._log import PredictionLog
    from modelyard.store import MetadataStore
    from modelyard.tracking._sql import SqlTracking

_REMOTE = (
    "deployments live where the metadata database is: with tracking_uri set, use the server's "
    "REST API (/api/v1/deployments), or point modelyard at the database itself"
)
# The reasons recorded for changes made by hand when none is given.
PROMOTED_BY_HAND = "promoted by hand"
ROLLED_BACK_BY_HAND = "rolled back by hand"
SPLIT_BY_HAND = "split set by hand"


def deployments_of_backend(backend: SqlTracking) -> Deployments:
    """The deployments in a local tracking backend's database, promoted through its registry."""
    from modelyard.registry import SqlRegistry
    from modelyard.rollout._store import Deployments

    return Deployments(backend.metadata, SqlRegistry(backend.metadata, backend.artifacts))


@contextmanager
def open_deployments(settings: Settings) -> Iterator[Deployments]:
    """The deployments on the stores `settings` name (not a server: see its REST API)."""
    from modelyard.tracking import open_local_backend

    if settings.tracking_uri:
        raise InvalidInput(_REMOTE)
    backend = open_local_backend(settings)
    try:
        yield deployments_of_backend(backend)
    finally:
        backend.close()


@contextmanager
def open_traffic(
    settings: Settings, metadata: MetadataStore
) -> Iterator[tuple[PredictionLog, FeedbackStore]]:
    """The prediction log and feedback of the stores `settings` name: what a live look at a
    deployment reads (`metadata` is the database `open_deployments` opened)."""
    from modelyard.serving._feedback import SqlFeedback
    from modelyard.serving._log import open_prediction_log

    log = open_prediction_log(settings.model_copy(update={"tracking_uri": None}), metadata)
    try:
        yield log, SqlFeedback(metadata, log)
    finally:
        log.close()


def model_loader(backend: SqlTracking, cache_dir: Path) -> Callable[[str], LoadedModel]:
    """Loads a model URI from a local backend (no pickles): what a blue-green smoke test
    replays recorded requests through."""
    from modelyard.models._load import load_model
    from modelyard.registry import SqlRegistry
    from modelyard.tracking import Tracker

    return partial(
        load_model,
        tracker=Tracker(backend),
        registry=SqlRegistry(backend.metadata, backend.artifacts),
        cache_dir=cache_dir,
    )


@contextmanager
def open_rollout(settings: Settings) -> Iterator[Rollout]:
    """Everything a decision needs, on the stores `settings` name."""
    from modelyard.tracking import open_local_backend

    if settings.tracking_uri:
        raise InvalidInput(_REMOTE)
    backend = open_local_backend(settings)
    try:
        deployments = deployments_of_backend(backend)
        with open_traffic(settings, backend.metadata) as (log, feedback):
            yield Rollout(
                deployments,
                log,
                feedback,
                model_loader(backend, settings.home / "cache" / "models"),
            )
    finally:
        backend.close()


@dataclass(frozen=True)
class Rollout:
    """The deployments of one database with the traffic they are decided on."""

    deployments: Deployments
    log: PredictionLog
    feedback: FeedbackStore
    replay: Callable[[str], LoadedModel]

    def decide(self, name: str, *, actor: str) -> Decision:
        """Decide deployment `name` now and act on it (as its policy allows), recorded."""
        from modelyard.rollout._engine import evaluate

        return evaluate(
            self.deployments,
            self.log,
            self.feedback,
            name,
            act=True,
            replay=self.replay,
            actor=actor,
        )


def decide(name: str, *, actor: str | None = None) -> Decision:
    """Decide deployment `name` now on the default stores, as `modelyard serve` does on its
    background thread: step, promote, roll back or wait, recorded with the evidence."""
    from modelyard._sdk import get_settings

    with open_rollout(get_settings()) as rollout:
        return rollout.decide(name, actor=_user(actor))


def default_deployments() -> Deployments:
    """The deployments of the default stores (what `my.configure` names)."""
    from modelyard._sdk import _local_metadata, default_registry
    from modelyard.rollout._store import Deployments

    metadata = _local_metadata()
    if metadata is None:
        raise InvalidInput(_REMOTE)
    return Deployments(metadata, default_registry())


def _user(given: str | None) -> str:
    from modelyard.tracking._environment import current_user

    return given or current_user()


def deploy(
    name: str,
    *,
    strategy: str,
    model: str,
    candidates: Sequence[str] = (),
    policy: Mapping[str, Any] | None = None,
    alias: str = "champion",
    actor: str | None = None,
) -> Deployment:
    """Create deployment `name`: `model` (`churn@champion`, `churn/3`) as the primary and
    `candidates` (`churn@challenger`, …) under `strategy`; `policy` overrides the strategy's
    options (see `STRATEGY_HELP`, `POLICY_DEFAULTS`); a promotion moves `alias`."""
    return default_deployments().create(
        name,
        strategy=strategy,
        model=model,
        candidates=candidates,
        policy=policy,
        alias=alias,
        actor=_user(actor),
    )


def get_deployment(name: str) -> Deployment:
    return default_deployments().get(name)


def list_deployments(*, include_finished: bool = True) -> list[Deployment]:
    """Every deployment by name; without the promoted and rolled back ones on request."""
    return default_deployments().all(include_finished=include_finished)


def deployment_history(name: str) -> list[DeploymentEvent]:
    """Every change and decision of deployment `name`, oldest first, with its evidence."""
    return default_deployments().history(name)


def deployment_status(name: str) -> DeploymentStatus:
    """Deployment `name` with its split and variants, its latest recorded decision, and a
    live look: per-variant counts, metrics with intervals, the test and the decision its
    rule would make now (nothing is changed or recorded)."""
    from modelyard._sdk import default_feedback, default_prediction_log
    from modelyard.rollout._status import status_of

    deployments = default_deployments()
    return status_of(deployments, name, log=default_prediction_log(), feedback=default_feedback())


def promote(
    name: str,
    variant: str | None = None,
    *,
    reason: str = PROMOTED_BY_HAND,
    actor: str | None = None,
) -> Deployment:
    """Move the deployment's alias to `variant` (default: its one candidate) and end it."""
    return default_deployments().promote(name, variant=variant, reason=reason, actor=_user(actor))


def rollback(
    name: str, *, reason: str = ROLLED_BACK_BY_HAND, actor: str | None = None
) -> Deployment:
    """All traffic back to the primary at once; the deployment ends rolled back."""
    return default_deployments().rollback(name, reason=reason, actor=_user(actor))


def pause(name: str, *, reason: str = "", actor: str | None = None) -> Deployment:
    """Freeze the split and the decisions; traffic keeps flowing as split."""
    return default_deployments().pause(name, reason=reason, actor=_user(actor))


def resume(name: str, *, reason: str = "", actor: str | None = None) -> Deployment:
    return default_deployments().resume(name, reason=reason, actor=_user(actor))


def set_split(
    name: str,
    split: Mapping[str, float],
    *,
    reason: str = SPLIT_BY_HAND,
    actor: str | None = None,
) -> Deployment:
    """Set the shares of live traffic by hand, e.g. `{"primary": 0.9, "candidate": 0.1}`."""
    return default_deployments().set_split(name, split, reason=reason, actor=_user(actor))


def delete_deployment(name: str, *, actor: str | None = None) -> None:
    """Delete deployment `name` and its history."""
    default_deployments().delete(name, actor=_user(actor))
