"""What a deployment is: a named endpoint over versions of one model, a strategy, its
options (the policy), and its live state — validated, so a bad deployment is refused when
it is created, never discovered by a request.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from modelyard.errors import InvalidInput

Strategy = Literal[
    "single", "shadow", "canary", "ab", "blue_green", "champion_challenger", "bandit"
]
Role = Literal["primary", "candidate", "shadow", "challenger", "arm"]
Status = Literal["running", "paused", "promoted", "rolled_back"]
STRATEGIES: tuple[str, ...] = (
    "single", "shadow", "canary", "ab", "blue_green", "champion_challenger", "bandit"
)  # fmt: skip
STRATEGY_HELP = {
    "single": "one version answers every request",
    "shadow": "the candidate gets mirrored requests off the request path; clients only see "
    "the primary; agreement, latency, errors and prediction shift are recorded",
    "canary": "the candidate's share grows in steps (5, 25, 50, 100 %) while its guardrails "
    "pass with enough evidence; a failing guardrail rolls back at once",
    "ab": "a fixed split, sticky by a request key or random, decided by a sequential test on "
    "a metric from feedback that is valid at any look, with a sample-ratio check",
    "blue_green": "the candidate is loaded, warmed and smoke-tested on recorded requests, then "
    "takes all traffic at once; the primary stays warm for an instant rollback",
    "champion_challenger": "challengers score the same requests as the champion; once labels "
    "arrive, paired tests with Holm correction pick a winner, losers are archived",
    "bandit": "Thompson sampling over several versions on a reward from feedback",
}
# Roles of the variants after the primary, by strategy: who answers clients, who is mirrored.
CANDIDATE_ROLE: dict[str, Role] = {
    "shadow": "shadow",
    "canary": "candidate",
    "ab": "candidate",
    "blue_green": "candidate",
    "champion_challenger": "challenger",
    "bandit": "arm",
}
MIRRORED_ROLES: frozenset[str] = frozenset({"shadow", "challenger"})

# Every option a strategy takes, with its default. Shared options first.
_COMMON: dict[str, Any] = {
    "auto": True,  # decide and act automatically; False: decisions wait for a person
    "sticky": None,  # "field:NAME" or "header:NAME": hash this request key; None: random
    "metric": "accuracy",  # from feedback: accuracy (label == prediction) or reward (label)
    "alpha": 0.05,
    "min_samples": 200,  # per variant, before any verdict
}
POLICY_DEFAULTS: dict[str, dict[str, Any]] = {
    "single": {},
    "shadow": {"fraction": 1.0},
    "canary": {
        "steps": [0.05, 0.25, 0.5, 1.0],
        "max_error_rate_increase": 0.01,  # candidate minus primary, on the upper bound
        "max_p99_ratio": 1.2,  # candidate p99 / primary p99
        "max_prediction_shift": 0.1,  # Jensen–Shannon distance between predicted classes
        "max_metric_drop": 0.02,  # primary minus candidate, once labels exist
    },
    "ab": {"split": 0.5, "mde": 0.02, "power": 0.8, "max_samples": None},
    "blue_green": {"grace_s": 300.0, "smoke_requests": 50},
    "champion_challenger": {"test": "mcnemar"},
    "bandit": {"update_every": 100},
}


@dataclass(frozen=True)
class Variant:
    """One version in a deployment: its name (primary, candidate, challenger-1, …), role,
    what the user named (`churn@challenger`) and the version that named then."""

    name: str
    role: Role
    ref: str
    version: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "ref": self.ref, "version": self.version}


class Revision(NamedTuple):
    """Which deployment a name held at which revision. A name deleted and created again is
    another deployment, from revision 1 again: its id and creation time tell it apart."""

    id: int
    created_at: int
    revision: int


@dataclass(frozen=True)
class Deployment:
    """A deployment and its live state. `split` maps the variants that answer clients to
    their share of live traffic (summing to 1); mirrored variants are not in it."""

    name: str
    model: str
    strategy: Strategy
    alias: str
    variants: tuple[Variant, ...]
    split: dict[str, float]
    policy: dict[str, Any]
    status: Status
    step: int
    step_started_at: int
    revision: int
    created_by: str
    created_at: int
    updated_at: int
    id: int = 0

    def variant(self, name: str) -> Variant:
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise InvalidInput(
            f"deployment {self.name!r} has no variant {name!r}; its variants: "
            f"{', '.join(v.name for v in self.variants)}"
        )

    @property
    def primary(self) -> Variant:
        return self.variants[0]

    @property
    def stamp(self) -> Revision:
        return Revision(self.id, self.created_at, self.revision)

    @property
    def mirrored(self) -> tuple[Variant, ...]:
        return tuple(v for v in self.variants if v.role in MIRRORED_ROLES)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "strategy": self.strategy,
            "alias": self.alias,
            "variants": [v.to_dict() for v in self.variants],
            "split": self.split,
            "policy": self.policy,
            "status": self.status,
            "step": self.step,
            "step_started_at": self.step_started_at,
            "revision": self.revision,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class DeploymentEvent:
    """A change or decision, with who made it, why, the split after it and the evidence."""

    id: int
    deployment: str
    kind: str
    actor: str
    reason: str
    split: dict[str, float]
    evidence: dict[str, Any] = field(default_factory=dict)
    at: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "deployment": self.deployment,
            "kind": self.kind,
            "actor": self.actor,
            "reason": self.reason,
            "split": self.split,
            "evidence": self.evidence,
            "at": self.at,
        }


def check_strategy(strategy: str) -> Strategy:
    if strategy not in STRATEGIES:
        raise InvalidInput(
            f"unknown strategy {strategy!r}; the strategies: {', '.join(STRATEGIES)}"
        )
    return strategy  # type: ignore[return-value]


def check_policy(strategy: Strategy, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """`given` over the strategy's defaults; unknown options and bad values refused."""
    defaults = {**_COMMON, **POLICY_DEFAULTS[strategy]}
    given = dict(given or {})
    if unknown := sorted(set(given) - set(defaults)):
        raise InvalidInput(
            f"strategy {strategy!r} has no option(s) {', '.join(unknown)}; its options: "
            f"{', '.join(sorted(defaults))}"
        )
    policy = {**defaults, **given}
    _check_values(strategy, policy)
    return policy


def initial_split(
    strategy: Strategy, variants: Sequence[Variant], policy: Mapping[str, Any]
) -> dict[str, float]:
    """The split a new deployment starts with."""
    primary = variants[0].name
    live = [v.name for v in variants if v.role not in MIRRORED_ROLES]
    if strategy == "canary":
        share = float(policy["steps"][0])
        return {primary: 1.0 - share, live[1]: share}
    if strategy == "ab":
        share = float(policy["split"])
        return {primary: 1.0 - share, live[1]: share}
    if strategy == "bandit":
        return {name: 1.0 / len(live) for name in live}
    return {primary: 1.0}  # single, shadow, champion_challenger; blue_green before its switch


def check_split(split: Mapping[str, float], variants: Sequence[Variant]) -> dict[str, float]:
    """Shares of live variants, each in [0, 1], summing to 1 (to 1e-9)."""
    names = {v.name for v in variants if v.role not in MIRRORED_ROLES}
    if unknown := sorted(set(split) - names):
        raise InvalidInput(
            f"the split names variant(s) {', '.join(unknown)} that do not answer clients; "
            f"those are {', '.join(sorted(names))}"
        )
    shares = {}
    for name, share in split.items():
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise InvalidInput(f"the share of {name!r} must be between 0 and 1, got {share!r}")
        shares[name] = float(share)
    if not math.isclose(sum(shares.values()), 1.0, abs_tol=1e-9):
        raise InvalidInput(
            f"the split must sum to 100 %, it sums to {100 * sum(shares.values()):.4g} %"
        )
    return shares


def _check_values(strategy: Strategy, policy: Mapping[str, Any]) -> None:
    if not isinstance(policy["auto"], bool):
        raise InvalidInput("policy option auto must be true or false")
    sticky = policy["sticky"]
    if sticky is not None and not (
        isinstance(sticky, str)
        and sticky.partition(":")[0] in ("field", "header")
        and sticky.partition(":")[2]
    ):
        raise InvalidInput(
            f"sticky must be 'field:NAME' or 'header:NAME' (or None for random), got {sticky!r}"
        )
    if policy["metric"] not in ("accuracy", "reward"):
        raise InvalidInput(
            f"metric must be 'accuracy' (label equals prediction) or 'reward' (the label is the "
            f"reward), got {policy['metric']!r}"
        )
    _fraction("alpha", policy["alpha"], open_ends=True)
    _whole("min_samples", policy["min_samples"], 1)
    if strategy == "shadow":
        _fraction("fraction", policy["fraction"], open_ends=False, zero=False)
    if strategy == "canary":
        steps = policy["steps"]
        if not isinstance(steps, list) or not steps or steps[-1] != 1.0:
            raise InvalidInput(f"steps must be a list of shares ending at 1.0, got {steps!r}")
        for share in steps:
            _fraction("a step", share, open_ends=False, zero=False)
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise InvalidInput(f"steps must increase, got {steps!r}")
        for key in ("max_error_rate_increase", "max_prediction_shift", "max_metric_drop"):
            _fraction(key, policy[key], open_ends=False)
        if not _number(policy["max_p99_ratio"]) or policy["max_p99_ratio"] < 1:
            raise InvalidInput(f"max_p99_ratio must be at least 1, got {policy['max_p99_ratio']!r}")
    if strategy == "ab":
        _fraction("split", policy["split"], open_ends=True)
        mde = policy["mde"]
        if not _number(mde) or mde <= 0:
            raise InvalidInput(f"mde (the smallest effect worth finding) must be > 0, got {mde!r}")
        _fraction("power", policy["power"], open_ends=True)
        if policy["max_samples"] is not None:
            _whole("max_samples", policy["max_samples"], 2)
    if strategy == "blue_green":
        _whole("smoke_requests", policy["smoke_requests"], 0)
        if not _number(policy["grace_s"]) or policy["grace_s"] < 0:
            raise InvalidInput(f"grace_s must be 0 or more seconds, got {policy['grace_s']!r}")
    if strategy == "champion_challenger" and policy["test"] not in ("mcnemar", "bootstrap"):
        raise InvalidInput(f"test must be 'mcnemar' or 'bootstrap', got {policy['test']!r}")
    if strategy == "bandit":
        _whole("update_every", policy["update_every"], 1)


def _number(value: Any) -> bool:
    """A real number: an int or a float, not a bool (JSON `true` is no ratio), not NaN."""
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)


def _fraction(name: str, value: Any, *, open_ends: bool, zero: bool = True) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    low_ok = ok and (value > 0 if open_ends or not zero else value >= 0)
    high_ok = ok and (value < 1 if open_ends else value <= 1)
    if not (low_ok and high_ok):
        bounds = "strictly between 0 and 1" if open_ends else "between 0 and 1"
        raise InvalidInput(f"{name} must be {bounds}, got {value!r}")


def _whole(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput(f"{name} must be a whole number of at least {minimum}, got {value!r}")
