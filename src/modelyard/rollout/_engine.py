"""Deciding deployments: read what the variants did, apply the strategy's rule, act on it and
record it — for one deployment on demand (`evaluate`), for every running one (`run_due`), or
on a background thread of `modelyard serve` (`decision_thread`), never on the request path.

Acting means: a change (step, split, promote, rollback) goes through `Deployments` with the
decision as its evidence when the policy is automatic; under a manual policy the change is
recorded as a "recommendation" for a person. A look that changes nothing is recorded as a
"decision" event; repeated identical looks within `quiet_s` are not recorded again, so a
tick of a second does not flood the history. A paused or finished deployment is not decided.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard._periodic import PeriodicThread
from modelyard.errors import ModelyardError
from modelyard.rollout._decide import Decision, Look, SmokeTest, decide
from modelyard.rollout._evaluate import read_rows, variant_stats
from modelyard.tracking._entities import now_ms

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.config import Settings
    from modelyard.models._load import LoadedModel
    from modelyard.rollout._spec import Deployment, DeploymentEvent
    from modelyard.rollout._store import Deployments
    from modelyard.serving._feedback import FeedbackStore
    from modelyard.serving._log import PredictionLog

logger = logging.getLogger("modelyard.rollout")

ACTOR = "modelyard"
_MASK = "***"  # what the prediction log writes in place of a personal value
_SHOWN_FAILURES = 5
Loader = Callable[[str], "LoadedModel"]


def evaluate(
    deployments: Deployments,
    log: PredictionLog,
    feedback: FeedbackStore,
    name: str,
    *,
    act: bool,
    now: int | None = None,
    replay: Loader | None = None,
    actor: str = ACTOR,
    quiet_s: float = 0.0,
) -> Decision:
    """Decide deployment `name` now (`now` in Unix ms; default the clock); with `act`,
    apply and record the decision. `replay` loads a model URI for the blue-green smoke test.
    """
    deployment = deployments.get(name)
    if deployment.status != "running":
        status = deployment.status.replace("_", " ")
        return Decision("wait", f"deployment {name!r} is {status}: nothing is decided")
    at = now_ms() if now is None else int(now)
    history = deployments.history(name)
    rows = read_rows(log, feedback, deployment, until_ms=at + 1)
    smoke = None
    if _before_switch(deployment) and replay is not None:
        smoke = smoke_test(deployment, rows, replay)
    decision = decide(deployment, look_at(deployment, rows, at, carried(history), smoke))
    if act:
        decision = apply(deployments, deployment, decision, history, actor=actor, quiet_s=quiet_s)
    return decision


def look_at(
    deployment: Deployment,
    rows: pd.DataFrame,
    at_ms: int,
    carry: Mapping[str, Any] | None = None,
    smoke: SmokeTest | None = None,
) -> Look:
    """The look a rule decides on. Canary and blue-green judge a variant that has a share of
    traffic on its rows since the current step began, and one without (the primary at 100 %)
    on the whole deployment; the other strategies judge the whole deployment."""
    confidence = 1.0 - float(deployment.policy.get("alpha", 0.05))
    whole = variant_stats(rows, deployment, confidence=confidence)
    variants = whole
    if deployment.strategy in ("canary", "blue_green"):
        step = variant_stats(
            rows, deployment, since_ms=deployment.step_started_at, confidence=confidence
        )
        variants = {
            name: step[name] if deployment.split.get(name, 0.0) > 0.0 else stats
            for name, stats in whole.items()
        }
    seen = int((rows["labelled"] & ~rows["failed"]).sum()) if len(rows) else 0
    return Look(at_ms, variants, seen, dict(carry or {}), smoke)


def carried(history: Sequence[DeploymentEvent]) -> dict[str, Any]:
    """What the latest recorded look handed on to the next (`Decision.carry`)."""
    for event in reversed(history):
        carry = event.evidence.get("carry")
        if isinstance(carry, dict):
            return carry
    return {}


def apply(
    deployments: Deployments,
    deployment: Deployment,
    decision: Decision,
    history: Sequence[DeploymentEvent],
    *,
    actor: str = ACTOR,
    quiet_s: float = 0.0,
) -> Decision:
    """Act on `decision` as the policy allows and record it; the decision as applied (a
    change the stores refused comes back as "wait", with the refusal recorded)."""
    name = deployment.name
    evidence = decision.to_dict()
    if not decision.changes:
        if not _repeated(history, "decision", decision.action, quiet_s):
            deployments.record(
                name, "decision", actor=actor, reason=decision.reason, evidence=evidence
            )
        if decision.pause and deployment.policy.get("auto", True):
            deployments.pause(name, actor=actor, reason=decision.reason)
        return decision
    if not deployment.policy.get("auto", True):
        if not _repeated(history, "recommendation", decision.action, quiet_s):
            deployments.record(
                name, "recommendation", actor=actor,
                reason=f"recommended {decision.action} (manual policy): {decision.reason}",
                evidence={**evidence, "applied": False},
            )  # fmt: skip
        return decision
    try:
        if decision.action in ("step", "split"):
            assert decision.split is not None
            deployments.set_split(
                name, decision.split, actor=actor, reason=decision.reason,
                kind=decision.action, step=decision.step, evidence=evidence,
            )  # fmt: skip
        elif decision.action == "promote":
            deployments.promote(
                name, actor=actor, reason=decision.reason, variant=decision.winner,
                evidence=evidence,
            )  # fmt: skip
            if decision.archive:
                _archive(deployments, deployment, decision.archive, actor)
        else:
            deployments.rollback(name, actor=actor, reason=decision.reason, evidence=evidence)
    except ModelyardError as exc:
        blocked = Decision(
            "wait",
            f"{decision.action} not applied: {exc}",
            decision.effect,
            {**decision.evidence, "blocked": decision.action, "error": str(exc)},
            carry=decision.carry,
        )
        if not _repeated(history, "decision", "wait", quiet_s):
            deployments.record(
                name, "decision", actor=actor, reason=blocked.reason, evidence=blocked.to_dict()
            )
        return blocked
    return decision


def smoke_test(deployment: Deployment, rows: pd.DataFrame, load: Loader) -> SmokeTest:
    """The latest `smoke_requests` answers of the primary replayed through the candidate:
    any error, or an answer of another shape than the primary's, fails it. Requests with
    masked personal values cannot be replayed and are skipped."""
    wanted = int(deployment.policy.get("smoke_requests", 0))
    if wanted == 0:
        return SmokeTest(0, 0)
    mine = rows[(rows["variant"] == deployment.primary.name) & ~rows["failed"] & ~rows["mirrored"]]
    usable = [
        (inputs, answer)
        for inputs, answer in zip(mine["inputs"], mine["prediction"], strict=True)
        if not _masked(inputs)
    ]
    recorded = usable[-wanted:]
    if len(recorded) < wanted:
        return SmokeTest(wanted, len(usable))
    candidate = deployment.variants[1]
    uri = f"models:/{deployment.model}/{candidate.version}"
    try:
        model = load(uri)
    except Exception as exc:  # whatever stops the candidate from loading fails it
        return SmokeTest(wanted, len(usable), 0, 1, (f"{uri} did not load: {exc}",))
    failures, messages = 0, []
    for inputs, answer in recorded:
        try:
            output = np.asarray(model.predict(_batch(inputs)))
            expected = np.shape(answer)
            if output.ndim == 0 or output.shape[0] != 1 or output.shape[1:] != expected:
                raise ValueError(
                    f"answered one row with shape {output.shape}; the primary's answer has "
                    f"shape {expected} per row"
                )
        except Exception as exc:  # a failing replay is the verdict, not a crash
            failures += 1
            messages.append(f"{type(exc).__name__}: {exc}"[:300])
    return SmokeTest(
        wanted, len(usable), len(recorded), failures, tuple(messages[:_SHOWN_FAILURES])
    )


def run_due(
    deployments: Deployments,
    log: PredictionLog,
    feedback: FeedbackStore,
    *,
    now: int | None = None,
    replay: Loader | None = None,
    actor: str = ACTOR,
    quiet_s: float = 60.0,
) -> list[tuple[str, Decision | str]]:
    """Decide every running deployment once and act; a failing one is reported (as text),
    the others are still decided."""
    outcomes: list[tuple[str, Decision | str]] = []
    for deployment in deployments.all(include_finished=False):
        if deployment.status != "running" or deployment.strategy == "single":
            continue
        name = deployment.name
        try:
            decision = evaluate(
                deployments, log, feedback, name, act=True, now=now, replay=replay,
                actor=actor, quiet_s=quiet_s,
            )  # fmt: skip
        except ModelyardError as exc:  # deleted or changed meanwhile: tried again next tick
            logger.warning("deployment %s: not decided: %s", name, exc)
            outcomes.append((name, f"failed: {exc}"))
            continue
        except Exception as exc:  # a bug in one deployment must not starve the others
            logger.exception("deployment %s: deciding failed", name)
            outcomes.append((name, f"failed: {type(exc).__name__}: {exc}"))
            continue
        outcomes.append((name, decision))
    return outcomes


class DecisionThread(PeriodicThread):
    """A daemon thread deciding the running deployments every `tick` seconds until `stop()`."""

    def __init__(
        self,
        deployments: Deployments,
        log: PredictionLog,
        feedback: FeedbackStore,
        *,
        tick: float = 1.0,
        replay: Loader | None = None,
        quiet_s: float = 60.0,
    ) -> None:
        super().__init__(
            tick=tick,
            name="modelyard-rollout",
            logger=logger,
            failure="deciding the deployments failed",
        )
        self.deployments = deployments
        self.log = log
        self.feedback = feedback
        self.replay = replay
        self.quiet_s = quiet_s

    def look(self) -> None:
        for name, outcome in run_due(
            self.deployments, self.log, self.feedback, replay=self.replay, quiet_s=self.quiet_s
        ):
            if isinstance(outcome, Decision) and outcome.changes:
                logger.info("deployment %s: %s: %s", name, outcome.action, outcome.reason)


@contextmanager
def decision_thread(
    settings: Settings,
    *,
    tick: float = 1.0,
    replay: Loader | None = None,
    quiet_s: float = 60.0,
) -> Iterator[DecisionThread]:
    """Decide the running deployments of the stores `settings` name every `tick` seconds on
    a daemon thread, while the block runs. `replay` loads the blue-green candidates for their
    smoke tests (default: `load_model` on these stores, no pickles)."""
    from modelyard.rollout._default import open_rollout

    with open_rollout(settings) as rollout:
        thread = DecisionThread(
            rollout.deployments,
            rollout.log,
            rollout.feedback,
            tick=tick,
            replay=replay or rollout.replay,
            quiet_s=quiet_s,
        )
        thread.start()
        try:
            yield thread
        finally:
            thread.stop()


# -- helpers -------------------------------------------------------------------------------


def _before_switch(deployment: Deployment) -> bool:
    if deployment.strategy != "blue_green":
        return False
    return deployment.split.get(deployment.variants[1].name, 0.0) < 1.0


def _repeated(history: Sequence[DeploymentEvent], kind: str, action: str, quiet_s: float) -> bool:
    """True when the latest event records the same action within the last `quiet_s`."""
    if quiet_s <= 0 or not history:
        return False
    last = history[-1]
    return (
        last.kind == kind
        and last.evidence.get("action") == action
        and now_ms() - last.at < quiet_s * 1000.0
    )


def _archive(
    deployments: Deployments, deployment: Deployment, names: Sequence[str], actor: str
) -> None:
    """Archive the losers' versions; one that still holds an alias is kept, and said."""
    archived, kept = [], []
    for name in names:
        variant = deployment.variant(name)
        try:
            deployments.registry.set_version_status(deployment.model, variant.version, "archived")
        except ModelyardError as exc:
            kept.append({"variant": name, "version": variant.version, "error": str(exc)})
        else:
            archived.append({"variant": name, "version": variant.version})
    versions = ", ".join(str(x["version"]) for x in archived) or "none"
    reason = f"lost to the winner: version(s) {versions} archived"
    if kept:
        reason += "; kept: " + "; ".join(f"version {x['version']}: {x['error']}" for x in kept)
    deployments.record(
        deployment.name, "archive", actor=actor, reason=reason,
        evidence={"archived": archived, "not_archived": kept},
    )  # fmt: skip


def _masked(inputs: Any) -> bool:
    if isinstance(inputs, Mapping):
        return any(value == _MASK for value in inputs.values())
    if isinstance(inputs, list):
        return any(value == _MASK for value in inputs)
    return bool(inputs == _MASK)


def _batch(inputs: Any) -> Any:
    """One recorded request as a one-row model input: a table row or a tensor row."""
    if isinstance(inputs, Mapping):
        import pandas as pd

        return pd.DataFrame([dict(inputs)])
    return np.asarray([inputs])
