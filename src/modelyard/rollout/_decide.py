"""Decision rules: one pure function per strategy, from what the variants did to what to do.

Every rule has the same contract, `rule(deployment, look) -> Decision`: it reads the
variants' numbers in `look` (and what the previous look handed on in `look.carry`) and
returns an action with its reason, the headline effect with its interval, and the evidence
(counts, statistics, p-values, confidence sequences, guardrail values and limits). Rules do
no I/O; `modelyard.rollout._engine` reads the stores, calls them and applies the decision.

Verdicts follow one discipline: decide on enough samples, not on elapsed time; missing data
is inconclusive, never a pass; an inconclusive verdict never promotes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from modelyard.rollout import _guardrails as g
from modelyard.rollout._spec import MIRRORED_ROLES
from modelyard.stats import (
    holm,
    mcnemar_test,
    paired_bootstrap_test,
    proportion_interval,
    sample_size,
    sequential_mean_test,
    sequential_proportion_test,
    srm_test,
    thompson_beta,
    thompson_gaussian,
    two_proportion_test,
    welch_t_test,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from modelyard.rollout._evaluate import VariantStats
    from modelyard.rollout._spec import Deployment, Variant
    from modelyard.stats import Comparison, SequentialResult

Action = Literal["continue", "wait", "step", "split", "promote", "rollback"]
CHANGES: frozenset[str] = frozenset({"step", "split", "promote", "rollback"})
_BOOTSTRAP_RESAMPLES = 2000
_THOMPSON_DRAWS = 10_000


@dataclass(frozen=True)
class Effect:
    """The headline number of a decision: what, its estimate and its interval."""

    name: str
    value: float | None
    low: float | None = None
    high: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "interval": [self.low, self.high]}


@dataclass(frozen=True)
class SmokeTest:
    """Recorded requests of the primary replayed through a blue-green candidate."""

    wanted: int
    available: int  # recorded requests that can be replayed
    replayed: int = 0
    failures: int = 0
    messages: tuple[str, ...] = ()

    @property
    def verdict(self) -> Literal["pass", "fail", "inconclusive"]:
        if self.failures:
            return "fail"
        return "pass" if self.replayed >= self.wanted else "inconclusive"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "wanted": self.wanted,
            "available": self.available,
            "replayed": self.replayed,
            "failures": self.failures,
            "messages": list(self.messages),
        }


@dataclass(frozen=True)
class Look:
    """What a rule sees: each variant over the strategy's window, how many of the
    deployment's predictions have labels, what the previous look handed on, and for a
    blue-green deployment before its switch, the smoke test."""

    at_ms: int
    variants: Mapping[str, VariantStats]
    labels_seen: int = 0
    carry: Mapping[str, Any] = field(default_factory=dict)
    smoke: SmokeTest | None = None


@dataclass(frozen=True)
class Decision:
    """What to do, why, and on what evidence. `split` and `step` for a step or split,
    `winner` for a promotion, `archive` the variants whose versions lost; `pause` asks to
    freeze the deployment for a person; `carry` is handed to the next look."""

    action: Action
    reason: str
    effect: Effect | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    split: dict[str, float] | None = None
    step: int | None = None
    winner: str | None = None
    archive: tuple[str, ...] = ()
    pause: bool = False
    carry: dict[str, Any] = field(default_factory=dict)

    @property
    def changes(self) -> bool:
        """True when acting on it changes the deployment."""
        return self.action in CHANGES

    def to_dict(self) -> dict[str, Any]:
        """The decision as JSON-ready evidence: infinities and NaN become None."""
        record: dict[str, Any] = {
            "action": self.action,
            "reason": self.reason,
            "effect": None if self.effect is None else self.effect.to_dict(),
            **self.evidence,
        }
        extras = {
            "next_split": self.split,
            "next_step": self.step,
            "winner": self.winner,
            "archive": list(self.archive) or None,
            "pause": self.pause or None,
            "carry": self.carry or None,
        }
        record.update({k: v for k, v in extras.items() if v is not None})
        cleaned: dict[str, Any] = plain(record)
        return cleaned


Rule = Callable[["Deployment", Look], Decision]


def decide(deployment: Deployment, look: Look) -> Decision:
    """The decision of `deployment`'s strategy at `look`."""
    return RULES[deployment.strategy](deployment, look)


# -- single and shadow ---------------------------------------------------------------------


def decide_single(deployment: Deployment, look: Look) -> Decision:
    return Decision("continue", "one version answers every request: nothing to decide")


def decide_shadow(deployment: Deployment, look: Look) -> Decision:
    """A report of the shadow against the primary; promotion stays a person's call."""
    primary, shadow = look.variants[deployment.primary.name], _others(deployment, look)[0]
    alpha, least = _alpha(deployment), _least(deployment)
    pairing = shadow.pairing
    pairs = 0 if pairing is None else pairing.pairs
    report = {  # measured as a canary's guardrails are, but judged by no limit
        "error_rate_increase": _measured(g.error_rate_guardrail(primary, shadow, 1, alpha, least)),
        "p99_latency_ratio": _measured(g.latency_guardrail(primary, shadow, 1, alpha, least)),
        "prediction_shift": _measured(g.shift_guardrail(primary, shadow, 1, alpha, least)),
    }
    evidence: dict[str, Any] = {"report": report, "variants": _stats(look)}
    if pairing is not None and pairing.labelled >= 2:
        test = mcnemar_test(*pairing.correctness(), confidence=1.0 - alpha)
        evidence["paired_accuracy"] = test.to_dict()
    agreement = Effect(
        "agreement with the primary",
        None if pairing is None else pairing.agreement,
        None if pairing is None else pairing.agreement_low,
        None if pairing is None else pairing.agreement_high,
    )
    if pairs < least:
        return Decision(
            "continue", f"{pairs} of {least} mirrored requests scored so far", agreement, evidence
        )
    assert pairing is not None and pairing.agreement is not None
    reason = (
        f"shadow report: agreement {_pct(pairing.agreement)} over {pairs} requests; errors "
        f"{_pct(shadow.error_rate)} vs {_pct(primary.error_rate)}; p99 "
        f"{_ms(shadow.latency_p99_ms)} vs {_ms(primary.latency_p99_ms)}; prediction shift "
        f"{_num(report['prediction_shift']['value'])} — a shadow is never promoted automatically"
    )
    return Decision("continue", reason, agreement, evidence)


# -- canary --------------------------------------------------------------------------------


def decide_canary(deployment: Deployment, look: Look) -> Decision:
    """Step up while every guardrail passes, roll back at the first failing one."""
    policy = deployment.policy
    primary, candidate = look.variants[deployment.primary.name], _others(deployment, look)[0]
    alpha, least = _alpha(deployment), _least(deployment)
    guardrails = [
        g.error_rate_guardrail(primary, candidate, policy["max_error_rate_increase"], alpha, least),
        g.latency_guardrail(primary, candidate, policy["max_p99_ratio"], alpha, least),
        g.shift_guardrail(primary, candidate, policy["max_prediction_shift"], alpha, least),
        g.metric_guardrail(
            primary, candidate, policy["max_metric_drop"], alpha, least, look.labels_seen
        ),
    ]
    steps = [float(s) for s in policy["steps"]]
    index = min(deployment.step, len(steps) - 1)
    share = deployment.split.get(candidate.name, 0.0)
    evidence: dict[str, Any] = {
        "step": index,
        "share": share,
        "guardrails": [x.to_dict() for x in guardrails],
        "sample_ratio": _sample_ratio(deployment, primary, candidate),  # reported, not judged
        "variants": _stats(look),
    }
    failing = [x for x in guardrails if x.verdict == "fail"]
    if failing:
        reason = "; ".join(f"{x.name} failed: {x.reason}" for x in failing)
        return Decision("rollback", reason, _guardrail_effect(failing[0]), evidence)
    open_ = [x for x in guardrails if x.verdict == "inconclusive"]
    if open_:
        reason = f"at {_pct(share)}: " + "; ".join(f"{x.name}: {x.reason}" for x in open_)
        return Decision("continue", reason, _guardrail_effect(open_[0]), evidence)
    passed = "every guardrail passed (" + ", ".join(
        f"{x.name} {_num(x.value)}" for x in guardrails if x.verdict == "pass"
    ) + ")"  # fmt: skip
    effect = _guardrail_effect(guardrails[0])
    if index + 1 >= len(steps):
        return Decision(
            "promote", f"{passed} at {_pct(share)}", effect, evidence, winner=candidate.name
        )
    following = steps[index + 1]
    split = {deployment.primary.name: 1.0 - following, candidate.name: following}
    reason = f"{passed} at {_pct(share)}: step up to {_pct(following)}"
    return Decision("step", reason, effect, evidence, split=split, step=index + 1)


# -- A/B -----------------------------------------------------------------------------------


def decide_ab(deployment: Deployment, look: Look) -> Decision:
    """A sequential test on the metric, valid at any look, behind a sample-ratio check."""
    primary, candidate = look.variants[deployment.primary.name], _others(deployment, look)[0]
    least = _least(deployment)
    ratio = _sample_ratio(deployment, primary, candidate)
    evidence: dict[str, Any] = {"sample_ratio": ratio, "variants": _stats(look)}
    carry = dict(look.carry)
    if ratio.get("mismatch"):
        return _mismatch(candidate, ratio, evidence, carry)
    if min(primary.labelled, candidate.labelled) < max(least, 2):
        reason = (
            f"{primary.labelled} and {candidate.labelled} labelled answers of {least} needed "
            "per variant before the first test"
        )
        return Decision("continue", reason, None, evidence, carry=carry)
    planned = carry.get("planned_total") or _planned_total(deployment, primary, candidate)
    test = _sequential(deployment, primary, candidate, carry)
    carry = {"p_value": test.p_value, "low": test.low, "high": test.high}
    if planned:
        carry["planned_total"] = int(planned)
    evidence |= {"sequential": test.to_dict(), "planned_total": planned}
    effect = Effect(
        f"{primary.metric} difference ({candidate.name} minus {primary.name})",
        test.effect, test.low, test.high,
    )  # fmt: skip
    shown = (
        f"{primary.metric} {_num(candidate.metric_value)} vs {_num(primary.metric_value)}, "
        f"difference {_num(test.effect)} [{_num(test.low)}, {_num(test.high)}], always-valid "
        f"p {test.p_value:.3g}"
    )
    # with the previous look's interval passed in, decided means the interval excludes 0
    if test.decided and test.low > 0:
        return Decision(
            "promote", f"{candidate.name} is better: {shown}", effect, evidence,
            winner=candidate.name, carry=carry,
        )  # fmt: skip
    if test.decided and test.high < 0:
        return Decision(
            "rollback", f"{candidate.name} is worse: {shown}", effect, evidence, carry=carry
        )
    seen = test.n_a + test.n_b
    if planned and seen >= planned:
        reason = (
            f"no difference found by the planned maximum of {planned} labelled answers "
            f"({shown}): the primary stays"
        )
        return Decision("rollback", reason, effect, evidence, carry=carry)
    left = f"of {planned} planned" if planned else "(no planned maximum yet)"
    return Decision("continue", f"{shown}; {seen} labelled {left}", effect, evidence, carry=carry)


# -- blue-green ----------------------------------------------------------------------------


def decide_blue_green(deployment: Deployment, look: Look) -> Decision:
    """Smoke-test, switch at once, then release the old version after the grace period."""
    primary, candidate = look.variants[deployment.primary.name], _others(deployment, look)[0]
    evidence: dict[str, Any] = {"variants": _stats(look)}
    if deployment.split.get(candidate.name, 0.0) < 1.0:
        smoke = look.smoke
        if smoke is None:
            reason = "the smoke test has not run: evaluate with a model loader to replay requests"
            return Decision("wait", reason, None, evidence)
        evidence["smoke_test"] = smoke.to_dict()
        effect = _smoke_effect(smoke, _alpha(deployment))
        if smoke.verdict == "fail":
            reason = f"smoke test failed on {smoke.failures} of {smoke.replayed} replayed requests"
            if smoke.messages:
                reason += f": {smoke.messages[0]}"
            return Decision("rollback", reason, effect, evidence)
        if smoke.verdict == "inconclusive":
            reason = (
                f"smoke test waits for recorded requests: {smoke.available} of "
                f"{smoke.wanted} available"
            )
            return Decision("continue", reason, effect, evidence)
        split = {deployment.primary.name: 0.0, candidate.name: 1.0}
        reason = (
            f"smoke test passed on {smoke.replayed} replayed requests: switch all traffic to "
            f"{candidate.name}; {deployment.primary.name} stays warm for an instant rollback"
        )
        return Decision("step", reason, effect, evidence, split=split, step=deployment.step + 1)
    alpha, least = _alpha(deployment), _least(deployment)
    errors = g.error_rate_guardrail(primary, candidate, 0.0, alpha, least)
    evidence["errors"] = errors.to_dict()
    effect = _guardrail_effect(errors)
    if errors.verdict == "fail":
        return Decision(
            "rollback", f"errors rose after the switch: {errors.reason}", effect, evidence
        )
    grace_ms = float(deployment.policy["grace_s"]) * 1000.0
    elapsed = look.at_ms - deployment.step_started_at
    if elapsed < grace_ms:
        left = (grace_ms - elapsed) / 1000.0
        reason = f"grace period: {left:.0f} s left with {deployment.primary.name} warm"
        return Decision("continue", reason, effect, evidence)
    if candidate.requests < least:
        reason = (
            f"grace period over, but {candidate.name} answered {candidate.requests} of {least} "
            "requests needed since the switch"
        )
        return Decision("continue", reason, effect, evidence)
    reason = (
        f"{candidate.name} answered {candidate.requests} requests through the grace period "
        f"without a significant rise in errors: release {deployment.primary.name}"
    )
    return Decision("promote", reason, effect, evidence, winner=candidate.name)


# -- champion–challenger -------------------------------------------------------------------


def decide_champion_challenger(deployment: Deployment, look: Look) -> Decision:
    """Paired tests of each challenger against the champion, Holm-corrected, decided once
    every challenger has `min_samples` labelled requests in common with the champion."""
    alpha, least = _alpha(deployment), _least(deployment)
    challengers = _others(deployment, look)
    evidence: dict[str, Any] = {"variants": _stats(look)}
    if deployment.policy.get("metric") == "reward":
        reason = (
            "champion–challenger compares correctness on the same requests, and a reward "
            "belongs to the champion's answer only: set metric 'accuracy'"
        )
        return Decision("wait", reason, None, evidence)
    labelled = {c.name: 0 if c.pairing is None else c.pairing.labelled for c in challengers}
    if min(labelled.values()) < least:
        shown = ", ".join(f"{name} {n}" for name, n in labelled.items())
        reason = f"labelled requests shared with the champion: {shown}; {least} needed each"
        return Decision("continue", reason, None, evidence)
    tests = [_paired_test(deployment, c, alpha) for c in challengers]
    adjusted = holm([t.p_value for t in tests])
    results = [
        {
            "variant": c.name,
            "version": c.version,
            "test": t.to_dict(),
            "holm_p_value": float(p),
            "significant": bool(p <= alpha),
        }
        for c, t, p in zip(challengers, tests, adjusted, strict=True)
    ]
    evidence["comparisons"] = results
    shown = "; ".join(
        f"{c.name} {_signed(t.effect)} [{_num(t.low)}, {_num(t.high)}], p {t.p_value:.3g}, "
        f"Holm p {p:.3g}"
        for c, t, p in zip(challengers, tests, adjusted, strict=True)
    )
    winners = [
        i
        for i, (t, p) in enumerate(zip(tests, adjusted, strict=True))
        if p <= alpha and t.effect > 0
    ]
    if not winners:
        reason = (
            f"no challenger beat the champion after Holm correction ({shown}); the champion "
            "stays — raise min_samples to compare on more requests"
        )
        best = int(np.argmax([t.effect for t in tests]))
        return Decision(
            "rollback", reason, _comparison_effect(challengers[best], tests[best]), evidence
        )
    best = max(winners, key=lambda i: tests[i].effect)
    winner = challengers[best]
    losers = tuple(c.name for c in challengers if c.name != winner.name)
    reason = f"{winner.name} beats the champion ({shown})"
    effect = _comparison_effect(winner, tests[best])
    return Decision("promote", reason, effect, evidence, winner=winner.name, archive=losers)


# -- bandit --------------------------------------------------------------------------------


def decide_bandit(deployment: Deployment, look: Look) -> Decision:
    """Thompson sampling: each arm's share is its probability of being best; ends once one
    arm is best with probability 1 - alpha on `min_samples` rewards of its own."""
    alpha, least = _alpha(deployment), _least(deployment)
    arms = [look.variants[v.name] for v in _live(deployment)]
    counts = np.asarray([a.labelled for a in arms], dtype="float64")
    total, before = int(counts.sum()), int(look.carry.get("labelled", 0))
    evidence: dict[str, Any] = {"variants": _stats(look)}
    every = int(deployment.policy["update_every"])
    if total - before < every:
        reason = (
            f"{total - before} new rewards since the last update; the split moves every {every}"
        )
        return Decision("continue", reason, None, evidence, carry=dict(look.carry))
    means, choice = _thompson(deployment, arms, total)
    best = int(np.argmax(choice.probabilities))
    gaps = float(means.max()) - means
    regret = {
        "estimated": float(np.sum(counts * gaps)),
        "per_reward": float(np.sum(counts * gaps) / total) if total else None,
        "per_arm": {a.name: float(n * gap) for a, n, gap in zip(arms, counts, gaps, strict=True)},
    }
    evidence["bandit"] = {
        "method": choice.method,
        "probability_best": dict(zip([a.name for a in arms], choice.probabilities, strict=True)),
        "posterior_means": dict(zip([a.name for a in arms], means.tolist(), strict=True)),
        "rewards": total,
        "regret": regret,
    }
    leader = arms[best]
    effect = _lead(leader, [a for a in arms if a.name != leader.name], alpha)
    carry = {"labelled": total}
    if choice.probabilities[best] >= 1.0 - alpha and leader.labelled >= least:
        reason = (
            f"{leader.name} is best with probability {choice.probabilities[best]:.3f} on "
            f"{leader.labelled} rewards (estimated regret so far {regret['estimated']:.4g})"
        )
        if leader.name == deployment.primary.name:
            return Decision(
                "rollback", reason + ": the primary stays", effect, evidence, carry=carry
            )
        return Decision("promote", reason, effect, evidence, winner=leader.name, carry=carry)
    split = _shares([a.name for a in arms], choice.probabilities)
    reason = "new split by probability of being best: " + ", ".join(
        f"{name} {_pct(share)}" for name, share in split.items()
    ) + f" (estimated regret so far {regret['estimated']:.4g})"  # fmt: skip
    return Decision("split", reason, effect, evidence, split=split, carry=carry)


RULES: dict[str, Rule] = {
    "single": decide_single,
    "shadow": decide_shadow,
    "canary": decide_canary,
    "ab": decide_ab,
    "blue_green": decide_blue_green,
    "champion_challenger": decide_champion_challenger,
    "bandit": decide_bandit,
}


# -- helpers -------------------------------------------------------------------------------


def _alpha(deployment: Deployment) -> float:
    return float(deployment.policy.get("alpha", 0.05))


def _least(deployment: Deployment) -> int:
    return int(deployment.policy.get("min_samples", 200))


def _live(deployment: Deployment) -> list[Variant]:
    return [v for v in deployment.variants if v.role not in MIRRORED_ROLES]


def _others(deployment: Deployment, look: Look) -> list[VariantStats]:
    return [look.variants[v.name] for v in deployment.variants[1:]]


def _stats(look: Look) -> dict[str, Any]:
    return {name: s.to_dict() for name, s in look.variants.items()}


def _sample_ratio(
    deployment: Deployment, primary: VariantStats, candidate: VariantStats
) -> dict[str, Any]:
    """The observed split of assignment units (sticky keys where known, else requests)
    against the configured one."""
    by_units = primary.units is not None and candidate.units is not None
    counts = (
        [primary.units, candidate.units] if by_units else [primary.requests, candidate.requests]
    )
    observed = [int(c or 0) for c in counts]
    share = float(deployment.split.get(candidate.name, 0.0))
    unit = "sticky keys" if by_units else "requests"
    if sum(observed) == 0 or not 0.0 < share < 1.0:
        return {"unit": unit, "counts": observed, "expected_share": share, "mismatch": None}
    test = srm_test(observed, [1.0 - share, share])
    low, high = proportion_interval(observed[1], sum(observed))
    return {
        "unit": unit,
        "counts": observed,
        "expected_share": share,
        "observed_share": observed[1] / sum(observed),
        "observed_low": low,
        "observed_high": high,
        "statistic": test.statistic,
        "p_value": test.p_value,
        "threshold": test.threshold,
        "mismatch": test.mismatch,
    }


def _mismatch(
    candidate: VariantStats, ratio: dict[str, Any], evidence: dict[str, Any], carry: dict[str, Any]
) -> Decision:
    """A sample-ratio mismatch: the comparison is biased, so nothing is decided."""
    reason = (
        f"sample-ratio mismatch: {candidate.name} got {_pct(ratio['observed_share'])} of "
        f"the {ratio['unit']} for a configured {_pct(ratio['expected_share'])} (chi-squared "
        f"p {ratio['p_value']:.2g}); the comparison is biased, so nothing is decided — "
        "paused for a person to find why assignment is off"
    )
    expected = ratio["expected_share"]
    effect = Effect(
        f"{candidate.name}'s observed share minus its configured share",
        ratio["observed_share"] - expected,
        ratio["observed_low"] - expected,
        ratio["observed_high"] - expected,
    )
    return Decision("wait", reason, effect, evidence, pause=True, carry=carry)


def _sequential(
    deployment: Deployment,
    primary: VariantStats,
    candidate: VariantStats,
    carry: Mapping[str, Any],
) -> SequentialResult:
    """This look of the always-valid test, continuing the previous look's p and interval."""
    previous_interval = None
    if "low" in carry:
        previous_interval = (_bound(carry["low"], -math.inf), _bound(carry["high"], math.inf))
    previous_p = float(carry.get("p_value", 1.0))
    mde, alpha = float(deployment.policy["mde"]), _alpha(deployment)
    if primary.metric == "accuracy":
        return sequential_proportion_test(
            int(primary.outcomes.sum()), primary.outcomes.size,
            int(candidate.outcomes.sum()), candidate.outcomes.size,
            tau=mde, alpha=alpha, previous_p_value=previous_p,
            previous_interval=previous_interval,
        )  # fmt: skip
    return sequential_mean_test(
        primary.outcomes, candidate.outcomes, tau=mde, alpha=alpha,
        previous_p_value=previous_p, previous_interval=previous_interval,
    )  # fmt: skip


def _planned_total(
    deployment: Deployment, primary: VariantStats, candidate: VariantStats
) -> int | None:
    """The most labelled answers (both arms) the test may take: `max_samples`, else twice
    the fixed-horizon sample size for `mde` at `power` (None while it cannot be planned)."""
    from modelyard.errors import InvalidInput

    policy = deployment.policy
    if policy.get("max_samples"):
        return int(policy["max_samples"])
    share = float(deployment.split.get(candidate.name, 0.5))
    ratio, mde = share / (1.0 - share), float(policy["mde"])
    try:
        if primary.metric == "accuracy":
            base = min(max(float(primary.metric_value or 0.5), 0.01), 0.99 - mde)
            n_a = sample_size(
                mde, baseline_rate=base, alpha=_alpha(deployment), power=policy["power"],
                ratio=ratio,
            )  # fmt: skip
        else:
            pooled = np.concatenate([primary.outcomes, candidate.outcomes])
            n_a = sample_size(
                mde, sd=float(pooled.std(ddof=1)), alpha=_alpha(deployment),
                power=policy["power"], ratio=ratio,
            )  # fmt: skip
    except InvalidInput:
        return None
    return 2 * (n_a + math.ceil(ratio * n_a))


def _paired_test(deployment: Deployment, challenger: VariantStats, alpha: float) -> Comparison:
    assert challenger.pairing is not None
    champion, mine = challenger.pairing.correctness()
    if deployment.policy.get("test") == "bootstrap":
        return paired_bootstrap_test(
            _accuracy, np.ones_like(champion), champion, mine, confidence=1.0 - alpha,
            n_resamples=_BOOTSTRAP_RESAMPLES, seed=deployment.id,
        )  # fmt: skip
    return mcnemar_test(champion, mine, confidence=1.0 - alpha)


def _accuracy(y: NDArray[np.float64], predicted: NDArray[np.float64]) -> float:
    return float(np.mean(y == predicted))


def _thompson(deployment: Deployment, arms: list[VariantStats], total: int) -> tuple[Any, Any]:
    """Posterior means and the Thompson choice; the draws are seeded by the deployment and
    the number of rewards, so the same data gives the same split."""
    rng = np.random.default_rng([deployment.id, total])
    if deployment.policy.get("metric") == "accuracy":
        wins = np.asarray([a.outcomes.sum() for a in arms], dtype="float64")
        losses = np.asarray([a.outcomes.size for a in arms], dtype="float64") - wins
        choice = thompson_beta(wins, losses, rng=rng, draws=_THOMPSON_DRAWS)
        return (1.0 + wins) / (2.0 + wins + losses), choice
    everything = np.concatenate([a.outcomes for a in arms])
    spread = float(everything.var(ddof=1)) if everything.size > 1 else 1.0
    spread = max(spread, 1e-12)
    means = np.asarray([a.outcomes.mean() if a.outcomes.size else everything.mean() for a in arms])
    variances = np.asarray(
        [a.outcomes.var(ddof=1) if a.outcomes.size > 1 else spread for a in arms]
    )
    counts = np.asarray([a.outcomes.size for a in arms], dtype="float64")
    # an empirical prior (the pooled mean, 100 rewards' worth of spread) lets arms without
    # rewards draw, and barely moves arms with some
    prior = (float(everything.mean()), 100.0 * spread)
    choice = thompson_gaussian(
        means, variances, counts, rng=rng, draws=_THOMPSON_DRAWS, prior=prior
    )
    return means, choice


def _lead(leader: VariantStats, others: list[VariantStats], alpha: float) -> Effect | None:
    """The leader's metric minus the runner-up's, with its interval."""
    measured = [o for o in others if o.labelled >= 2]
    if leader.labelled < 2 or not measured:
        return None
    runner = max(measured, key=lambda o: float(o.outcomes.mean()))
    a, b = runner.outcomes, leader.outcomes
    if leader.metric == "accuracy":
        test = two_proportion_test(
            int(a.sum()), a.size, int(b.sum()), b.size, confidence=1.0 - alpha
        )
    else:
        test = welch_t_test(a, b, confidence=1.0 - alpha)
    name = f"{leader.metric} difference ({leader.name} minus the runner-up {runner.name})"
    return Effect(name, test.effect, test.low, test.high)


def _shares(names: list[str], probabilities: tuple[float, ...]) -> dict[str, float]:
    """Probabilities as a split summing to exactly 1."""
    values = np.clip(np.asarray(probabilities, dtype="float64"), 0.0, None)
    values = values / values.sum()
    shares = {name: float(v) for name, v in zip(names, values, strict=True)}
    largest = max(shares, key=lambda name: shares[name])
    shares[largest] = 0.0
    shares[largest] = 1.0 - math.fsum(shares.values())
    return shares


def _measured(guardrail: g.Guardrail) -> dict[str, Any]:
    kept = guardrail.to_dict()
    for key in ("verdict", "limit", "reason"):
        kept.pop(key)
    return kept


def _smoke_effect(smoke: SmokeTest, alpha: float) -> Effect:
    if not smoke.replayed:
        return Effect("smoke-test failure rate", None)
    low, high = proportion_interval(smoke.failures, smoke.replayed, 1.0 - alpha)
    return Effect("smoke-test failure rate", smoke.failures / smoke.replayed, low, high)


def _guardrail_effect(guardrail: g.Guardrail) -> Effect:
    return Effect(guardrail.name, guardrail.value, guardrail.low, guardrail.high)


def _comparison_effect(challenger: VariantStats, test: Comparison) -> Effect:
    return Effect(
        f"accuracy difference ({challenger.name} minus the champion) on the same requests",
        test.effect, test.low, test.high,
    )  # fmt: skip


def _bound(value: Any, default: float) -> float:
    return default if value is None else float(value)


def plain(value: Any) -> Any:
    """`value` as plain JSON: NumPy scalars as Python numbers, infinities and NaN as None."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100.0 * value:.3g} %"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _signed(value: float) -> str:
    return f"{value:+.4g}"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g} ms"
