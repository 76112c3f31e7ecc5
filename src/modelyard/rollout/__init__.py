"""Rollout: deployments of model versions with a strategy (single, shadow, canary, A/B,
blue-green, champion–challenger, bandit), the router that splits traffic between them, and
the decisions, made with statistics that stay valid at any look, to promote or roll back.

Names load on first use, so `import modelyard.rollout` opens no database and imports
neither SQLAlchemy nor the registry until a call needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.rollout._default import (
        decide,
        delete_deployment,
        deploy,
        deployment_history,
        deployment_status,
        deployments_of_backend,
        get_deployment,
        list_deployments,
        open_deployments,
        pause,
        promote,
        resume,
        rollback,
        set_split,
    )
    from modelyard.rollout._spec import (
        POLICY_DEFAULTS,
        STRATEGIES,
        STRATEGY_HELP,
        Deployment,
        DeploymentEvent,
        Variant,
    )
    from modelyard.rollout._status import DeploymentStatus
    from modelyard.rollout._store import Deployments

_HOMES = {
    "decide": "_default",
    "delete_deployment": "_default",
    "deploy": "_default",
    "deployment_history": "_default",
    "deployment_status": "_default",
    "deployments_of_backend": "_default",
    "get_deployment": "_default",
    "list_deployments": "_default",
    "open_deployments": "_default",
    "pause": "_default",
    "promote": "_default",
    "resume": "_default",
    "rollback": "_default",
    "set_split": "_default",
    "POLICY_DEFAULTS": "_spec",
    "STRATEGIES": "_spec",
    "STRATEGY_HELP": "_spec",
    "Deployment": "_spec",
    "DeploymentEvent": "_spec",
    "Variant": "_spec",
    "DeploymentStatus": "_status",
    "Deployments": "_store",
}
__all__ = [
    "POLICY_DEFAULTS",
    "STRATEGIES",
    "STRATEGY_HELP",
    "Deployment",
    "DeploymentEvent",
    "DeploymentStatus",
    "Deployments",
    "Variant",
    "decide",
    "delete_deployment",
    "deploy",
    "deployment_history",
    "deployment_status",
    "deployments_of_backend",
    "get_deployment",
    "list_deployments",
    "open_deployments",
    "pause",
    "promote",
    "resume",
    "rollback",
    "set_split",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'modelyard.rollout' has no attribute {name!r}")
    return getattr(importlib.import_module(f"modelyard.rollout.{home}"), name)


def __dir__() -> list[str]:
    return list(__all__)
