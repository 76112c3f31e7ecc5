"""What `deploy status` shows: a deployment with its split and variants, the latest decision
recorded for it (who, why, on what evidence), and a live look at what its variants did so
far — the decision rule applied now without acting on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.rollout._spec import Deployment, DeploymentEvent

if TYPE_CHECKING:
    from modelyard.rollout._store import Deployments
    from modelyard.serving._feedback import FeedbackStore
    from modelyard.serving._log import PredictionLog


@dataclass(frozen=True)
class DeploymentStatus:
    """A deployment now; its latest decision (None until something follows its creation:
    a look of the engine, a step, a pause, a promotion, a rollback); and `live`, the decision
    its rule would make now with the per-variant statistics it rests on (`Decision.to_dict`;
    None when no prediction log was at hand)."""

    deployment: Deployment
    decision: DeploymentEvent | None
    events: int
    live: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment.to_dict(),
            "decision": None if self.decision is None else self.decision.to_dict(),
            "events": self.events,
            "live": self.live,
        }


def status_of(
    deployments: Deployments,
    name: str,
    *,
    log: PredictionLog | None = None,
    feedback: FeedbackStore | None = None,
) -> DeploymentStatus:
    """Deployment `name` with the latest of its recorded decisions and, given the prediction
    log and feedback, a live look (`evaluate(..., act=False)`: nothing is changed or recorded)."""
    deployment = deployments.get(name)
    history = deployments.history(name)
    decisions = [event for event in history if event.kind != "created"]
    live = None
    if log is not None and feedback is not None:
        from modelyard.rollout._engine import evaluate

        live = evaluate(deployments, log, feedback, name, act=False).to_dict()
    return DeploymentStatus(deployment, decisions[-1] if decisions else None, len(history), live)
