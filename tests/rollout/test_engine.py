"""Deciding real deployments on SQLite and PostgreSQL: predictions written into the real
prediction log (with their deployment, variant and parent id), labels into the feedback
store, and every decision acted on through `Deployments` — visible in its history with
the evidence — or only recommended under a manual policy."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import modelyard as my
from _deployed import log_versions
from _monitored import configured
from _traffic import Traffic, simulate
from modelyard.rollout._engine import decision_thread, evaluate, run_due
from modelyard.rollout._spec import Deployment
from modelyard.rollout._store import Deployments
from modelyard.serving._feedback import FeedbackStore
from modelyard.serving._log import PredictionLog

CHAMPION = "churn@champion"
QUICK = {"min_samples": 100, "max_error_rate_increase": 0.05, "max_metric_drop": 0.1}


@dataclass
class Yard:
    deployments: Deployments
    log: PredictionLog
    feedback: FeedbackStore

    def create(self, name: str, strategy: str, candidates: list[str], **policy: Any) -> Deployment:
        return self.deployments.create(
            name, strategy=strategy, model=CHAMPION, candidates=candidates, policy=policy,
            actor="ana",
        )  # fmt: skip

    def serve(self, deployment: Deployment, requests: int, seed: int, **how: Any) -> Traffic:
        """`requests` answered by `deployment` as it is split now, all at the current step's
        first millisecond (so a later step starts after them), labelled as `how` says."""
        current = self.deployments.get(deployment.name)
        traffic = simulate(
            current, requests, seed=seed, start_ms=current.step_started_at, spacing_ms=0, **how
        )
        for start in range(0, len(traffic.rows), 2000):
            self.log.write(traffic.rows[start : start + 2000])
        if traffic.labels:
            self.feedback.record(traffic.labels)
        return traffic

    def decide(self, name: str, **options: Any) -> Any:
        return evaluate(self.deployments, self.log, self.feedback, name, act=True, **options)

    def kinds(self, name: str) -> list[str]:
        return [event.kind for event in self.deployments.history(name)]


@pytest.fixture
def yard(db_url: str, tmp_path: Path) -> Iterator[Yard]:
    """Fresh stores with `churn` versions 1..3 (champion 1, challenger 2)."""
    from modelyard._sdk import (
        _local_metadata,
        default_feedback,
        default_prediction_log,
        default_registry,
    )

    with configured(tmp_path / "home", db_url):
        log_versions()
        metadata = _local_metadata()
        assert metadata is not None
        yield Yard(
            Deployments(metadata, default_registry()), default_prediction_log(), default_feedback()
        )


def test_a_worse_canary_is_rolled_back_with_its_evidence_in_the_history(yard: Yard) -> None:
    yard.create("bird", "canary", ["churn/2"], **QUICK)
    yard.serve(yard.deployments.get("bird"), 2000, seed=1, errors={"candidate": 0.3})
    decision = yard.decide("bird")
    assert decision.action == "rollback"
    bird = yard.deployments.get("bird")
    assert (bird.status, bird.split) == ("rolled_back", {"primary": 1.0})
    event = yard.deployments.history("bird")[-1]
    assert (event.kind, event.actor, event.reason) == ("rollback", "modelyard", decision.reason)
    guardrail = event.evidence["guardrails"][0]
    assert (guardrail["name"], guardrail["verdict"]) == ("error_rate_increase", "fail")
    assert guardrail["interval"][0] > guardrail["limit"]
    assert event.evidence["variants"]["candidate"]["errors"] > 0
    assert my.registry.get_model("churn").aliases["champion"] == 1


def test_a_sound_canary_steps_up_until_the_registry_moves_the_alias(yard: Yard) -> None:
    yard.create("bird", "canary", ["churn/2"], steps=[0.2, 0.5, 1.0], **QUICK)
    for step, requests in enumerate((2000, 1000, 500)):
        yard.serve(yard.deployments.get("bird"), requests, seed=10 + step)
        decision = yard.decide("bird")
        assert decision.action == ("step" if step < 2 else "promote"), decision.reason
    assert yard.kinds("bird") == ["created", "step", "step", "promote"]
    history = yard.deployments.history("bird")
    assert [e.split for e in history[1:3]] == [
        {"primary": 0.5, "candidate": 0.5},
        {"primary": 0.0, "candidate": 1.0},
    ]
    last = history[-1].evidence
    assert last["step"] == 2 and last["winner"]["version"] == 2
    # at 100 % the primary's answers of the earlier steps were the base of comparison
    assert last["variants"]["primary"]["requests"] > 1000
    assert my.registry.get_model("churn").aliases["champion"] == 2


def test_an_ab_test_is_decided_and_its_evidence_recorded(yard: Yard) -> None:
    yard.create("test", "ab", ["churn/2"], min_samples=100, mde=0.05)
    yard.serve(yard.deployments.get("test"), 1000, seed=20, accuracy={"candidate": 0.92})
    decision = yard.decide("test")
    assert decision.action == "promote", decision.reason
    event = yard.deployments.history("test")[-1]
    assert event.kind == "promote" and event.evidence["winner"]["version"] == 2
    assert event.evidence["sample_ratio"]["mismatch"] is False
    sequential = event.evidence["sequential"]
    assert sequential["p_value"] <= 0.05 and sequential["low"] > 0
    assert event.evidence["carry"]["p_value"] == sequential["p_value"]
    assert my.registry.get_model("churn").aliases["champion"] == 2


def test_a_sample_ratio_mismatch_is_recorded_and_pauses_the_test(yard: Yard) -> None:
    yard.create("test", "ab", ["churn/2"])
    yard.serve(yard.deployments.get("test"), 0, seed=21,
               counts={"primary": 5200, "candidate": 4800}, labelled=0.0)  # fmt: skip
    decision = yard.decide("test")
    assert (decision.action, decision.pause) == ("wait", True)
    assert yard.kinds("test") == ["created", "decision", "pause"]
    evidence = yard.deployments.history("test")[1].evidence
    assert evidence["sample_ratio"]["counts"] == [5200, 4800]
    assert evidence["sample_ratio"]["mismatch"] is True
    assert yard.deployments.get("test").status == "paused"
    # a paused deployment is not decided, nor recorded
    assert yard.decide("test").action == "wait"
    assert yard.kinds("test") == ["created", "decision", "pause"]


def test_under_a_manual_policy_a_change_is_only_recommended(yard: Yard) -> None:
    yard.create("bird", "canary", ["churn/2"], auto=False, **QUICK)
    yard.serve(yard.deployments.get("bird"), 2000, seed=30, errors={"candidate": 0.3})
    decision = yard.decide("bird", quiet_s=60)
    assert decision.action == "rollback"
    bird = yard.deployments.get("bird")
    assert (bird.status, bird.split) == ("running", {"primary": 0.95, "candidate": 0.05})
    event = yard.deployments.history("bird")[-1]
    assert event.kind == "recommendation" and event.evidence["applied"] is False
    assert event.reason.startswith("recommended rollback (manual policy)")
    yard.decide("bird", quiet_s=60)  # the same recommendation again, within a minute
    assert yard.kinds("bird") == ["created", "recommendation"]


def test_champion_challenger_promotes_the_winner_and_archives_the_loser(yard: Yard) -> None:
    yard.create("duel", "champion_challenger", ["churn/2", "churn/3"], min_samples=500)
    accuracy = {"primary": 0.75, "challenger-1": 0.88, "challenger-2": 0.75}
    yard.serve(yard.deployments.get("duel"), 800, seed=40, accuracy=accuracy)
    decision = yard.decide("duel")
    assert (decision.action, decision.winner) == ("promote", "challenger-1"), decision.reason
    assert yard.kinds("duel") == ["created", "promote", "archive"]
    archive = yard.deployments.history("duel")[-1].evidence
    assert archive["archived"] == [{"variant": "challenger-2", "version": 3}]
    assert my.registry.get_model("churn").aliases["champion"] == 2
    assert my.registry.get_version("churn", 3).status == "archived"


def test_blue_green_smoke_tests_the_candidate_switches_and_releases_the_old(
    yard: Yard,
) -> None:
    yard.create("switch", "blue_green", ["churn/2"], smoke_requests=20, grace_s=30.0,
                min_samples=50)  # fmt: skip
    yard.serve(yard.deployments.get("switch"), 100, seed=50)
    decision = yard.decide("switch", replay=my.load_model)
    assert decision.action == "step", decision.reason
    switched = yard.deployments.get("switch")
    assert switched.split == {"primary": 0.0, "candidate": 1.0}
    smoke = yard.deployments.history("switch")[-1].evidence["smoke_test"]
    assert (smoke["verdict"], smoke["replayed"], smoke["failures"]) == ("pass", 20, 0)
    yard.serve(switched, 60, seed=51)
    assert yard.decide("switch").action == "continue"  # within the grace period
    released = yard.decide("switch", now=switched.step_started_at + 31_000)
    assert released.action == "promote", released.reason
    assert my.registry.get_model("churn").aliases["champion"] == 2


def test_a_smoke_test_failing_on_recorded_requests_rolls_back(yard: Yard) -> None:
    yard.create("switch", "blue_green", ["churn/2"], smoke_requests=5)
    switch = yard.deployments.get("switch")
    traffic = simulate(switch, 10, seed=52, start_ms=switch.step_started_at, spacing_ms=0)
    # requests the candidate cannot read: a column is missing
    yard.log.write([dataclasses.replace(row, inputs='{"tenure": 1.0}') for row in traffic.rows])
    decision = yard.decide("switch", replay=my.load_model)
    assert decision.action == "rollback"
    smoke = yard.deployments.history("switch")[-1].evidence["smoke_test"]
    assert smoke["failures"] == 5 and "spend" in smoke["messages"][0]


def test_run_due_decides_every_running_deployment_and_records_repeats_once(yard: Yard) -> None:
    yard.create("bird", "canary", ["churn/2"], **QUICK)
    yard.create("mirror", "shadow", ["churn/2"], min_samples=50)
    yard.create("one", "single", [])
    yard.serve(yard.deployments.get("bird"), 2000, seed=60, errors={"candidate": 0.3})
    yard.serve(yard.deployments.get("mirror"), 100, seed=61)
    outcomes = dict(run_due(yard.deployments, yard.log, yard.feedback, quiet_s=60))
    assert set(outcomes) == {"bird", "mirror"}
    assert outcomes["bird"].action == "rollback"  # type: ignore[union-attr]
    assert outcomes["mirror"].action == "continue"  # type: ignore[union-attr]
    again = dict(run_due(yard.deployments, yard.log, yard.feedback, quiet_s=60))
    assert set(again) == {"mirror"}  # bird is rolled back: finished
    assert yard.kinds("mirror") == ["created", "decision"]  # the repeat was not recorded
    evidence = yard.deployments.history("mirror")[-1].evidence
    assert evidence["effect"]["name"] == "agreement with the primary"


def test_the_decision_thread_rolls_back_a_failing_canary_in_the_background(
    yard: Yard,
) -> None:
    yard.create("bird", "canary", ["churn/2"], **QUICK)
    with decision_thread(my.get_settings(), tick=0.05):
        yard.serve(yard.deployments.get("bird"), 2000, seed=70, errors={"candidate": 0.3})
        deadline = time.monotonic() + 20
        while yard.deployments.get("bird").status == "running":
            assert time.monotonic() < deadline, yard.kinds("bird")
            time.sleep(0.05)
    assert yard.deployments.get("bird").status == "rolled_back"
    assert yard.kinds("bird")[-1] == "rollback"
