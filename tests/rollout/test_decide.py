"""Decision rules on seeded, simulated traffic: every rule keeps one contract (no traffic
changes nothing; evidence is plain JSON; a change carries an effect and a reason), each
canary guardrail rolls back on its own, too few samples continue, an inconclusive verdict
never promotes; A/B checks the split at every look and decides with an always-valid test;
champion–challenger promotes only a challenger better after Holm correction; a bandit moves
traffic to the best arm."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import pytest

from _traffic import T0, Traffic, deployment_of, rows_of, simulate
from modelyard.rollout._decide import RULES, Decision, Look, SmokeTest, decide
from modelyard.rollout._engine import look_at
from modelyard.rollout._evaluate import Pairing, VariantStats
from modelyard.rollout._spec import STRATEGIES, Deployment

CANDIDATES = {"champion_challenger": 3, "bandit": 2, "single": 0}


def decided(deployment: Deployment, traffic: Traffic, carry: dict[str, Any] | None = None,
            smoke: SmokeTest | None = None) -> Decision:  # fmt: skip
    at = traffic.last_ms + 1 if traffic.rows else T0
    return decide(deployment, look_at(deployment, rows_of(deployment, traffic), at, carry, smoke))


def at_step(deployment: Deployment, index: int, started_ms: int = T0) -> Deployment:
    share = deployment.policy["steps"][index]
    split = {"primary": 1.0 - share, "candidate": share}
    return dataclasses.replace(deployment, split=split, step=index, step_started_at=started_ms)


def json_ready(decision: Decision) -> dict[str, Any]:
    record = decision.to_dict()
    assert json.loads(json.dumps(record, allow_nan=False)) == record
    return record


def verdicts(decision: Decision) -> dict[str, str]:
    return {g["name"]: g["verdict"] for g in decision.evidence["guardrails"]}


# -- the contract every rule keeps ---------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_no_traffic_changes_nothing(strategy: str) -> None:
    deployment = deployment_of(strategy, CANDIDATES.get(strategy, 1))
    decision = decided(deployment, Traffic(), smoke=SmokeTest(50, 0))
    assert decision.action in ("continue", "wait")
    assert decision.reason
    json_ready(decision)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_decision_on_traffic_is_plain_json_and_a_change_carries_its_effect(
    strategy: str,
) -> None:
    deployment = deployment_of(strategy, CANDIDATES.get(strategy, 1), min_samples=100)
    traffic = simulate(deployment, 3000, seed=1, accuracy={"primary": 0.7})
    decision = decided(deployment, traffic, smoke=SmokeTest(50, 60, 50))
    record = json_ready(decision)
    assert decision.reason and record["action"] == decision.action
    if decision.changes:
        assert decision.effect is not None and decision.effect.value is not None
        assert decision.effect.low is not None and decision.effect.high is not None
        assert decision.effect.low <= decision.effect.value <= decision.effect.high
    assert set(RULES) == set(STRATEGIES)


# -- canary --------------------------------------------------------------------------------


def test_a_canary_failing_requests_is_rolled_back_at_once_before_min_samples() -> None:
    canary = deployment_of("canary")
    traffic = simulate(canary, 2000, seed=2, errors={"candidate": 0.3})
    decision = decided(canary, traffic)
    assert decision.action == "rollback"
    assert verdicts(decision)["error_rate_increase"] == "fail"
    assert decision.evidence["variants"]["candidate"]["requests"] < 200  # no minimum to fail
    assert decision.effect is not None and decision.effect.low is not None
    assert decision.effect.low > 0.01  # the increase is surely above the limit


def test_a_slower_canary_is_rolled_back_on_its_p99_latency() -> None:
    canary = at_step(deployment_of("canary"), 2)
    traffic = simulate(canary, 1000, seed=3, latency_ms={"candidate": 30.0}, labelled=0.0)
    decision = decided(canary, traffic)
    assert decision.action == "rollback"
    assert verdicts(decision) == {
        "error_rate_increase": "pass",
        "p99_latency_ratio": "fail",
        "prediction_shift": "pass",
        "accuracy_drop": "skipped",
    }


def test_a_canary_predicting_other_classes_is_rolled_back_on_prediction_shift() -> None:
    canary = at_step(deployment_of("canary"), 2)
    traffic = simulate(
        canary, 1000, seed=4, accuracy={"candidate": 0.5}, positive={"candidate": 0.95},
        labelled=0.0,
    )  # fmt: skip
    decision = decided(canary, traffic)
    assert decision.action == "rollback"
    assert verdicts(decision)["prediction_shift"] == "fail"
    assert verdicts(decision)["accuracy_drop"] == "skipped"  # no feedback: not judged yet


def test_a_less_accurate_canary_is_rolled_back_once_labels_arrive() -> None:
    canary = at_step(deployment_of("canary"), 2)
    traffic = simulate(canary, 2000, seed=5, accuracy={"candidate": 0.6})
    decision = decided(canary, traffic)
    assert decision.action == "rollback"
    assert verdicts(decision) == {
        "error_rate_increase": "pass",
        "p99_latency_ratio": "pass",
        "prediction_shift": "pass",
        "accuracy_drop": "fail",
    }
    assert decision.effect is not None and decision.effect.value == pytest.approx(0.2, abs=0.05)


def test_a_canary_with_too_few_samples_continues_and_says_how_many_it_needs() -> None:
    canary = deployment_of("canary")
    decision = decided(canary, simulate(canary, 300, seed=6))
    assert decision.action == "continue"
    assert "200 needed per variant" in decision.reason


def test_a_sound_canary_steps_up_to_the_next_share() -> None:
    canary = deployment_of("canary")
    decision = decided(canary, simulate(canary, 8000, seed=7, labelled=0.0))
    assert decision.action == "step", decision.reason
    assert (decision.step, decision.split) == (1, {"primary": 0.75, "candidate": 0.25})
    assert set(verdicts(decision).values()) == {"pass", "skipped"}


def test_at_the_last_step_the_candidate_is_judged_against_the_primary_before_it() -> None:
    """At 100 % the primary answers nothing in the step: its earlier answers are the base."""
    steps_ms = T0 + 10 * 3000
    canary = at_step(deployment_of("canary", max_metric_drop=0.1), 3, started_ms=steps_ms)
    before = simulate(canary, 3000, seed=8, shares={"primary": 1.0})
    after = simulate(canary, 1500, seed=9, start_ms=steps_ms)
    before += after
    decision = decided(canary, before)
    assert decision.action == "promote", decision.reason
    assert decision.winner == "candidate"
    assert decision.evidence["variants"]["primary"]["requests"] == 3000


def test_an_inconclusive_guardrail_never_promotes() -> None:
    steps_ms = T0 + 10 * 3000
    canary = at_step(deployment_of("canary"), 3, started_ms=steps_ms)  # max_metric_drop 0.02
    open_ = 0
    for seed in range(20):
        traffic = simulate(canary, 3000, seed=100 + seed, shares={"primary": 1.0})
        traffic += simulate(canary, 400, seed=200 + seed, start_ms=steps_ms)
        decision = decided(canary, traffic)
        if "inconclusive" in verdicts(decision).values():
            open_ += 1
            assert decision.action == "continue"
        else:
            assert decision.action == "promote"
    assert open_ >= 15  # 400 labels rarely bound a drop within 2 points


# -- A/B -----------------------------------------------------------------------------------


def test_a_50_50_test_forced_to_52_48_over_10000_requests_is_flagged_and_paused() -> None:
    ab = deployment_of("ab")
    traffic = simulate(ab, 0, seed=10, counts={"primary": 5200, "candidate": 4800})
    decision = decided(ab, traffic)
    ratio = decision.evidence["sample_ratio"]
    print(f"\nSRM 5200/4800: chi2 {ratio['statistic']:.2f}, p {ratio['p_value']:.3g}")
    assert ratio["mismatch"] is True and ratio["p_value"] < 1e-3
    assert (decision.action, decision.pause) == ("wait", True)
    assert "sample-ratio mismatch" in decision.reason
    assert "sequential" not in decision.evidence  # a biased comparison is not tested
    fair = decided(ab, simulate(ab, 0, seed=10, counts={"primary": 5000, "candidate": 5000}))
    assert fair.evidence["sample_ratio"]["mismatch"] is False and not fair.pause


def test_the_sample_ratio_is_checked_on_sticky_keys_when_assignment_is_by_key() -> None:
    """Heavy users make requests lopsided while keys split as configured."""
    ab = deployment_of("ab", sticky="field:customer")
    stats = {
        "primary": VariantStats("primary", "primary", 1, "accuracy", requests=6000, units=500),
        "candidate": VariantStats("candidate", "candidate", 2, "accuracy", requests=4000,
                                  units=500),
    }  # fmt: skip
    decision = decide(ab, Look(T0, stats))
    assert decision.evidence["sample_ratio"]["unit"] == "sticky keys"
    assert decision.evidence["sample_ratio"]["mismatch"] is False


def test_a_better_candidate_is_promoted_and_a_worse_one_rolled_back() -> None:
    ab = deployment_of("ab", mde=0.05)
    better = decided(ab, simulate(ab, 3000, seed=11, accuracy={"candidate": 0.86}))
    assert better.action == "promote" and better.winner == "candidate"
    sequential = better.evidence["sequential"]
    assert sequential["p_value"] <= 0.05 and sequential["low"] > 0
    assert better.carry["p_value"] == sequential["p_value"]
    worse = decided(ab, simulate(ab, 3000, seed=12, accuracy={"candidate": 0.72}))
    assert worse.action == "rollback" and worse.evidence["sequential"]["high"] < 0


def test_looks_carry_the_p_value_down_and_stop_at_the_planned_maximum() -> None:
    ab = deployment_of("ab", max_samples=4000)
    traffic, carry, seen = Traffic(), {}, []
    decision = None
    for look in range(5):
        traffic += simulate(ab, 1000, seed=20 + look, start_ms=T0 + 10_000 * look)
        decision = decided(ab, traffic, carry)
        carry = decision.carry
        seen.append(decision.evidence["sequential"]["p_value"])
        if decision.action != "continue":
            break
    assert seen == sorted(seen, reverse=True)  # an always-valid p-value never rises
    assert decision is not None and decision.action == "rollback"
    assert "no difference found by the planned maximum of 4000" in decision.reason


def test_an_ab_test_on_rewards_uses_the_sequential_test_of_means() -> None:
    ab = deployment_of("ab", metric="reward", mde=0.2)
    traffic = simulate(ab, 2000, seed=13, rewards={"primary": 1.0, "candidate": 1.3})
    decision = decided(ab, traffic)
    assert decision.action == "promote"
    assert "difference in means" in decision.evidence["sequential"]["method"]
    assert decision.evidence["planned_total"] > 0


def test_an_ab_test_without_enough_labels_continues() -> None:
    ab = deployment_of("ab")
    decision = decided(ab, simulate(ab, 3000, seed=14, labelled=0.1))
    assert decision.action == "continue" and "labelled answers" in decision.reason


# -- blue-green ----------------------------------------------------------------------------


def test_blue_green_switches_only_after_a_passing_smoke_test() -> None:
    switch = deployment_of("blue_green")
    traffic = simulate(switch, 300, seed=15)
    assert decided(switch, traffic).action == "wait"  # not run
    waiting = decided(switch, traffic, smoke=SmokeTest(50, 20))
    assert waiting.action == "continue" and "20 of 50" in waiting.reason
    failed = decided(switch, traffic, smoke=SmokeTest(50, 300, 50, 3, ("ValueError: shape",)))
    assert failed.action == "rollback" and "ValueError" in failed.reason
    passed = decided(switch, traffic, smoke=SmokeTest(50, 300, 50))
    assert passed.action == "step"
    assert passed.split == {"primary": 0.0, "candidate": 1.0}
    assert passed.evidence["smoke_test"]["verdict"] == "pass"


def test_blue_green_releases_the_old_version_after_grace_and_enough_requests() -> None:
    switched_ms = T0 + 10 * 1000
    switch = dataclasses.replace(
        deployment_of("blue_green", grace_s=60.0),
        split={"primary": 0.0, "candidate": 1.0}, step=1, step_started_at=switched_ms,
    )  # fmt: skip
    traffic = simulate(switch, 1000, seed=16, shares={"primary": 1.0})
    traffic += simulate(switch, 300, seed=17, start_ms=switched_ms, spacing_ms=100)
    rows = rows_of(switch, traffic)
    in_grace = decide(switch, look_at(switch, rows, switched_ms + 20_000))
    assert in_grace.action == "continue" and "grace period" in in_grace.reason
    over = decide(switch, look_at(switch, rows, switched_ms + 61_000))
    assert over.action == "promote" and over.winner == "candidate"
    failing = simulate(switch, 1000, seed=16, shares={"primary": 1.0})
    failing += simulate(switch, 300, seed=18, start_ms=switched_ms, errors={"candidate": 0.1})
    rolled = decide(switch, look_at(switch, rows_of(switch, failing), switched_ms + 1000))
    assert rolled.action == "rollback" and "errors rose after the switch" in rolled.reason


# -- champion–challenger -------------------------------------------------------------------


def challengers(accuracies: list[float], seed: int, **policy: Any) -> Decision:
    duel = deployment_of("champion_challenger", 3, min_samples=2000, **policy)
    accuracy = {"primary": 0.8} | {f"challenger-{i + 1}": a for i, a in enumerate(accuracies)}
    decision = decided(duel, simulate(duel, 2000, seed=seed, accuracy=accuracy))
    for result in decision.evidence["comparisons"]:
        print(
            f"\n{result['variant']}: effect {result['test']['effect']:+.4f}, "
            f"p {result['test']['p_value']:.3g}, Holm p {result['holm_p_value']:.3g}",
            end="",
        )
    return decision


def test_the_truly_better_of_three_challengers_is_promoted_after_holm() -> None:
    decision = challengers([0.8, 0.85, 0.8], seed=30)
    assert decision.action == "promote" and decision.winner == "challenger-2"
    assert decision.archive == ("challenger-1", "challenger-3")
    results = {r["variant"]: r for r in decision.evidence["comparisons"]}
    assert [r["significant"] for r in results.values()] == [False, True, False]
    assert results["challenger-2"]["holm_p_value"] >= results["challenger-2"]["test"]["p_value"]


def test_with_no_true_difference_no_challenger_is_promoted() -> None:
    decision = challengers([0.8, 0.8, 0.8], seed=31)
    assert decision.action == "rollback" and decision.winner is None
    assert decision.archive == ()
    assert not any(r["significant"] for r in decision.evidence["comparisons"])


def test_the_paired_bootstrap_test_picks_the_same_winner() -> None:
    decision = challengers([0.8, 0.85, 0.8], seed=30, test="bootstrap")
    assert decision.action == "promote" and decision.winner == "challenger-2"
    assert "bootstrap" in decision.evidence["comparisons"][0]["test"]["method"]


def test_holm_keeps_false_promotions_among_three_equal_challengers_below_alpha() -> None:
    """400 seeded null experiments, at the level of the paired counts."""
    duel = deployment_of("champion_challenger", 3, min_samples=1000)
    rng = np.random.default_rng(32)
    promoted = 0
    for _ in range(400):
        variants = {"primary": VariantStats("primary", "primary", 1, "accuracy")}
        for i in range(1, 4):
            champion, mine = rng.random(1000) < 0.8, rng.random(1000) < 0.8
            counts = [int(np.sum(champion & mine)), int(np.sum(~champion & mine)),
                      int(np.sum(champion & ~mine)), int(np.sum(~champion & ~mine))]  # fmt: skip
            pairing = Pairing(1000, 0, None, None, None, 1000, *counts)
            variants[f"challenger-{i}"] = VariantStats(
                f"challenger-{i}", "challenger", i + 1, "accuracy", pairing=pairing
            )
        promoted += decide(duel, Look(T0, variants)).action == "promote"
    print(f"\nfalse promotions: {promoted} of 400")
    assert promoted / 400 <= 0.05


def test_champion_challenger_waits_for_enough_labelled_pairs() -> None:
    duel = deployment_of("champion_challenger", 3)
    decision = decided(duel, simulate(duel, 1000, seed=33, labelled=0.1))
    assert decision.action == "continue" and "200 needed each" in decision.reason


# -- bandit and shadow ---------------------------------------------------------------------


def test_a_bandit_moves_traffic_to_the_best_arm_and_tracks_regret() -> None:
    bandit = deployment_of("bandit", 2, update_every=100, min_samples=10_000)
    accuracy = {"primary": 0.7, "arm-1": 0.75, "arm-2": 0.8}
    traffic, carry, shares = Traffic(), {}, []
    for round_ in range(6):
        traffic += simulate(bandit, 400, seed=40 + round_, accuracy=accuracy,
                            start_ms=T0 + 10_000 * round_)  # fmt: skip
        decision = decided(bandit, traffic, carry)
        assert decision.action == "split" and decision.split is not None
        assert sum(decision.split.values()) == 1.0
        bandit, carry = dataclasses.replace(bandit, split=decision.split), decision.carry
        shares.append(decision.split["arm-2"])
        regret = decision.evidence["bandit"]["regret"]
    print(f"\narm-2 share by round: {[round(s, 3) for s in shares]}; regret {regret}")
    assert shares[-1] > 0.8
    assert max(decision.split, key=lambda arm: decision.split[arm]) == "arm-2"
    assert regret["estimated"] > 0 and regret["per_arm"]["arm-2"] == 0.0


def test_a_bandit_waits_for_update_every_new_rewards_then_ends_on_a_clear_winner() -> None:
    bandit = deployment_of("bandit", 2, update_every=500)
    traffic = simulate(bandit, 300, seed=41)
    assert decided(bandit, traffic).action == "continue"
    traffic += simulate(bandit, 3000, seed=42, accuracy={"arm-1": 0.95}, start_ms=T0 + 10_000)
    decision = decided(bandit, traffic)
    assert decision.action == "promote" and decision.winner == "arm-1"
    assert decision.effect is not None and decision.effect.low is not None


def test_a_reward_bandit_prefers_the_arm_with_the_higher_mean_reward() -> None:
    bandit = deployment_of("bandit", 2, metric="reward", update_every=100, min_samples=10_000)
    rewards = {"primary": 1.0, "arm-1": 1.0, "arm-2": 1.4}
    decision = decided(bandit, simulate(bandit, 900, seed=43, rewards=rewards))
    assert decision.action == "split" and decision.split is not None
    assert max(decision.split, key=lambda arm: decision.split[arm]) == "arm-2"


def test_a_shadow_is_reported_against_the_primary_but_never_promoted() -> None:
    shadow = deployment_of("shadow")
    traffic = simulate(shadow, 2000, seed=44, accuracy={"shadow": 0.95})
    decision = decided(shadow, traffic)
    assert decision.action == "continue"
    assert "never promoted automatically" in decision.reason
    assert decision.effect is not None and decision.effect.name == "agreement with the primary"
    assert decision.evidence["paired_accuracy"]["effect"] > 0.1
    assert set(decision.evidence["report"]) == {
        "error_rate_increase", "p99_latency_ratio", "prediction_shift"
    }  # fmt: skip
