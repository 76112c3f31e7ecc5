"""Deployments in the metadata store, on SQLite and PostgreSQL, over real logged versions:
every strategy's variants and first split, bad input refused with nothing changed,
promotions through the registry (protected aliases included), pause, resume, rollback,
the recorded history, revisions, and concurrent changes of which exactly one wins."""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import modelyard as my
from _deployed import log_versions, serve_traffic, stored
from _monitored import configured
from modelyard.config import Settings
from modelyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound, PermissionDenied
from modelyard.rollout import Deployment, Deployments, open_deployments
from modelyard.rollout._default import default_deployments

CHAMPION, CHALLENGER = "churn@champion", "churn@challenger"
COMMON = {"auto": True, "sticky": None, "metric": "accuracy", "alpha": 0.05, "min_samples": 200}


@pytest.fixture
def yard(db_url: str, tmp_path: Path) -> Iterator[Deployments]:
    """The deployments of fresh stores holding `churn` versions 1..3 (champion 1,
    challenger 2), with the SDK configured on them."""
    with configured(tmp_path / "home", db_url):
        log_versions()
        yield default_deployments()


def shape(deployment: Deployment) -> list[tuple[str, str, str, int]]:
    return [(v.name, v.role, v.ref, v.version) for v in deployment.variants]


def alias_of(alias: str = "champion") -> int:
    return my.registry.get_model("churn").aliases[alias]


def test_every_strategy_gets_its_variants_roles_and_first_split(yard: Deployments) -> None:
    created = {
        "single": my.rollout.deploy("one", strategy="single", model=CHAMPION),
        "shadow": my.rollout.deploy("mirror", strategy="shadow", model=CHAMPION,
                                    candidates=[CHALLENGER]),
        "canary": my.rollout.deploy("bird", strategy="canary", model=CHAMPION,
                                    candidates=CHALLENGER),  # one candidate, as a string
        "ab": my.rollout.deploy("test", strategy="ab", model=CHAMPION, candidates=["churn/3"],
                                policy={"split": 0.2, "sticky": "field:customer"}),
        "blue_green": my.rollout.deploy("switch", strategy="blue_green", model="churn/1",
                                        candidates=["churn/2"], alias="prod"),
        "champion_challenger": my.rollout.deploy(
            "duel", strategy="champion_challenger", model=CHAMPION,
            candidates=[CHALLENGER, "churn/3"]),
        "bandit": my.rollout.deploy("arms", strategy="bandit", model=CHAMPION,
                                    candidates=["churn/2", "churn/3"]),
    }  # fmt: skip
    assert sorted(created) == sorted(my.rollout.STRATEGIES)
    one, two, three = "churn/1", "churn/2", "churn/3"
    assert shape(created["single"]) == [("primary", "primary", CHAMPION, 1)]
    assert shape(created["shadow"])[1] == ("shadow", "shadow", CHALLENGER, 2)
    assert shape(created["canary"])[1] == ("candidate", "candidate", CHALLENGER, 2)
    assert shape(created["ab"])[1] == ("candidate", "candidate", three, 3)
    assert shape(created["blue_green"]) == [
        ("primary", "primary", one, 1),
        ("candidate", "candidate", two, 2),
    ]
    assert shape(created["champion_challenger"])[1:] == [
        ("challenger-1", "challenger", CHALLENGER, 2),
        ("challenger-2", "challenger", three, 3),
    ]
    assert shape(created["bandit"])[1:] == [("arm-1", "arm", two, 2), ("arm-2", "arm", three, 3)]

    splits = {strategy: d.split for strategy, d in created.items()}
    assert splits["canary"] == {"primary": 0.95, "candidate": 0.05}
    assert splits["ab"] == {"primary": 0.8, "candidate": 0.2}
    assert splits["bandit"] == pytest.approx({"primary": 1 / 3, "arm-1": 1 / 3, "arm-2": 1 / 3})
    for strategy in ("single", "shadow", "blue_green", "champion_challenger"):
        assert splits[strategy] == {"primary": 1.0}, strategy
    assert [v.name for v in created["shadow"].mirrored] == ["shadow"]
    assert len(created["champion_challenger"].mirrored) == 2

    for strategy, deployment in created.items():
        assert (deployment.model, deployment.strategy) == ("churn", strategy)
        assert (deployment.status, deployment.step, deployment.revision) == ("running", 0, 1)
        assert deployment.alias == ("prod" if strategy == "blue_green" else "champion")
        given = {"split": 0.2, "sticky": "field:customer"} if strategy == "ab" else {}
        assert deployment.policy == {**COMMON, **my.rollout.POLICY_DEFAULTS[strategy], **given}
        (event,) = my.rollout.deployment_history(deployment.name)
        assert (event.kind, event.split, event.evidence) == (
            "created",
            deployment.split,
            {"policy": deployment.policy},
        )
        assert event.reason.startswith(f"{strategy} of ")
    assert [d.name for d in my.rollout.list_deployments()] == sorted(
        d.name for d in created.values()
    )
    assert my.rollout.get_deployment("bird") == created["canary"]
    assert alias_of() == 1  # creating moves nothing


def bad_creations() -> list[tuple[dict[str, Any], type[Exception], str]]:
    canary = {"strategy": "canary", "model": CHAMPION, "candidates": [CHALLENGER]}
    ab = {"strategy": "ab", "model": CHAMPION, "candidates": [CHALLENGER]}
    return [
        ({**canary, "model": "churn/9"}, NotFound, "no version 9"),
        ({**canary, "candidates": ["churn@nope"]}, NotFound, "no alias 'nope'"),
        ({**canary, "model": "gone@champion"}, NotFound, "model 'gone' does not exist"),
        ({**canary, "model": "churn"}, InvalidInput, "name a version: churn@ALIAS or churn/"),
        ({**canary, "candidates": ["other/1"]}, InvalidInput, "one model; got churn, other"),
        ({**canary, "candidates": ["churn/1"]}, InvalidInput, "version(s) 1 named twice"),
        ({"strategy": "single", "model": CHAMPION, "candidates": [CHALLENGER]}, InvalidInput,
         "strategy 'single' takes 0 candidate(s), got 1"),
        ({**canary, "candidates": []}, InvalidInput, "'canary' takes 1 candidate(s), got 0"),
        ({**canary, "candidates": [CHALLENGER, "churn/3"]}, InvalidInput, "got 2"),
        ({"strategy": "bandit", "model": CHAMPION}, InvalidInput, "takes 1 to 10 candidate(s)"),
        ({**canary, "strategy": "rainbow"}, InvalidInput, "unknown strategy 'rainbow'"),
        ({**canary, "policy": {"colour": "red"}}, InvalidInput, "has no option(s) colour"),
        ({**canary, "policy": {"steps": [0.5, 0.25, 1.0]}}, InvalidInput, "steps must increase"),
        ({**canary, "policy": {"steps": [0.1, 0.5]}}, InvalidInput, "ending at 1.0"),
        ({**canary, "policy": {"max_p99_ratio": True}}, InvalidInput, "max_p99_ratio must be at"),
        ({**ab, "policy": {"split": 1.0}}, InvalidInput, "split must be strictly between 0 and 1"),
        ({**ab, "policy": {"mde": math.nan}}, InvalidInput, "mde (the smallest effect"),
        ({**ab, "policy": {"alpha": 0}}, InvalidInput, "alpha must be strictly between"),
        ({**ab, "policy": {"min_samples": 0}}, InvalidInput, "min_samples must be a whole"),
        ({**ab, "policy": {"sticky": "cookie:id"}}, InvalidInput, "sticky must be 'field:NAME'"),
        ({**ab, "policy": {"metric": "auc"}}, InvalidInput, "metric must be 'accuracy'"),
        ({**ab, "policy": {"auto": "yes"}}, InvalidInput, "auto must be true or false"),
        ({**canary, "alias": "3"}, InvalidInput, "invalid alias '3'"),
    ]  # fmt: skip


def test_bad_input_is_refused_with_a_clear_error_and_changes_nothing(yard: Deployments) -> None:
    my.registry.create_version("other", created_by="ana")
    my.rollout.deploy("taken", strategy="single", model=CHAMPION)
    before = stored(yard.metadata)
    for given, error, message in bad_creations():
        with pytest.raises(error) as raised:
            yard.create("fresh", actor="ana", **given)
        assert message in raised.value.message, (given, raised.value.message)
    refusals: list[tuple[Callable[[], object], type[Exception], str]] = [
        (lambda: yard.create("taken", strategy="single", model=CHAMPION, actor="ana"),
         AlreadyExists, "a deployment named 'taken' exists"),
        (lambda: yard.create("churn", strategy="single", model=CHAMPION, actor="ana"),
         InvalidInput, "'churn' names a registered model"),
        (lambda: yard.create("a/b", strategy="single", model=CHAMPION, actor="ana"),
         InvalidInput, "invalid deployment name 'a/b'"),
        (lambda: yard.create("", strategy="single", model=CHAMPION, actor="ana"),
         InvalidInput, "invalid deployment name"),
        (lambda: yard.get("nope"), NotFound, "no deployment named 'nope'"),
        (lambda: yard.promote("nope", actor="ana", reason=""), NotFound, "no deployment"),
        (lambda: yard.promote("taken", actor="ana", reason=""), InvalidInput,
         "has no candidate to promote"),
        (lambda: yard.set_split("taken", {"primary": 0.5}, actor="ana", reason=""),
         InvalidInput, "the split must sum to 100 %, it sums to 50 %"),
        (lambda: yard.delete("nope", actor="ana"), NotFound, "no deployment named 'nope'"),
    ]  # fmt: skip
    for call, error, message in refusals:
        with pytest.raises(error) as raised:
            call()
        assert message in raised.value.message, raised.value.message
    assert stored(yard.metadata) == before


def test_a_split_is_checked_against_the_variants_that_answer_clients(yard: Deployments) -> None:
    my.rollout.deploy("bird", strategy="canary", model=CHAMPION, candidates=[CHALLENGER])
    my.rollout.deploy("mirror", strategy="shadow", model=CHAMPION, candidates=[CHALLENGER])
    before = stored(yard.metadata)
    for name, split, message in [
        ("bird", {"primary": 0.9, "candidate": 0.2}, "it sums to 110 %"),
        ("bird", {"primary": 0.9}, "it sums to 90 %"),
        ("bird", {"primary": 1.5, "candidate": -0.5}, "the share of 'primary' must be between"),
        ("bird", {"primary": math.nan, "candidate": 0.5}, "the share of 'primary'"),
        ("bird", {"primary": "all"}, "the share of 'primary' must be between 0 and 1"),
        ("bird", {"primary": 0.5, "ghost": 0.5}, "variant(s) ghost that do not answer clients"),
        ("mirror", {"primary": 0.5, "shadow": 0.5}, "variant(s) shadow that do not answer"),
    ]:
        with pytest.raises(InvalidInput) as raised:
            my.rollout.set_split(name, split)
        assert message in raised.value.message, raised.value.message
    assert stored(yard.metadata) == before
    moved = my.rollout.set_split("bird", {"primary": 0.75, "candidate": 0.25}, reason="step up")
    assert (moved.split, moved.revision) == ({"primary": 0.75, "candidate": 0.25}, 2)
    assert my.rollout.set_split("bird", {"candidate": 1.0}).split == {"candidate": 1.0}


def test_promotion_moves_the_alias_through_the_registry_and_ends_the_deployment(
    yard: Deployments,
) -> None:
    my.rollout.deploy("bird", strategy="canary", model=CHAMPION, candidates=[CHALLENGER])
    promoted = my.rollout.promote("bird", reason="guardrails held", actor="ana")
    assert (promoted.status, promoted.split, promoted.revision) == (
        "promoted",
        {"candidate": 1.0},
        2,
    )
    assert alias_of() == 2
    move = my.registry.history("churn")[-1]
    assert (move.kind, move.alias, move.from_version, move.to_version) == ("move", "champion", 1, 2)
    assert (move.actor, move.reason) == ("ana", "guardrails held")
    event = my.rollout.deployment_history("bird")[-1]
    assert (event.kind, event.actor, event.reason) == ("promote", "ana", "guardrails held")
    assert event.evidence == {
        "winner": {"name": "candidate", "role": "candidate", "ref": CHALLENGER, "version": 2}
    }
    before = stored(yard.metadata)
    with pytest.raises(Conflict, match="cannot promote deployment 'bird': it is promoted"):
        my.rollout.promote("bird")
    assert stored(yard.metadata) == before

    my.rollout.deploy("duel", strategy="champion_challenger", model="churn/2",
                      candidates=["churn/1", "churn/3"])  # fmt: skip
    with pytest.raises(InvalidInput, match="has 2 candidates: name the one to promote"):
        my.rollout.promote("duel")
    with pytest.raises(InvalidInput, match="has no variant 'challenger-9'"):
        my.rollout.promote("duel", "challenger-9")
    assert my.rollout.promote("duel", "challenger-2").status == "promoted"
    assert alias_of() == 3


def test_a_protected_alias_needs_an_approval_and_a_refusal_changes_nothing(
    yard: Deployments,
) -> None:
    my.rollout.deploy("bird", strategy="canary", model=CHAMPION, candidates=[CHALLENGER])
    my.registry.protect("churn", ["champion"])
    before = stored(yard.metadata)
    with pytest.raises(PermissionDenied, match="version 2 has no approval; approve it first"):
        my.rollout.promote("bird")
    assert stored(yard.metadata) == before
    assert my.rollout.get_deployment("bird").status == "running"
    my.registry.approve("churn", 2, approver="lead")
    assert my.rollout.promote("bird").status == "promoted"
    assert alias_of() == 2


def test_pause_resume_and_rollback_and_what_each_state_allows(yard: Deployments) -> None:
    my.rollout.deploy("bird", strategy="canary", model=CHAMPION, candidates=[CHALLENGER])
    assert my.rollout.pause("bird", reason="holiday").status == "paused"
    before = stored(yard.metadata)
    for refused, message in [
        (lambda: my.rollout.promote("bird"), "cannot promote deployment 'bird': it is paused"),
        (lambda: my.rollout.pause("bird"), "cannot pause deployment 'bird': it is paused"),
        (lambda: my.rollout.set_split("bird", {"primary": 1.0}), "cannot change the split of"),
    ]:
        with pytest.raises(Conflict) as raised:
            refused()
        assert message in raised.value.message
    assert stored(yard.metadata) == before
    resumed = my.rollout.resume("bird")
    assert (resumed.status, resumed.split) == ("running", {"primary": 0.95, "candidate": 0.05})
    my.rollout.set_split("bird", {"primary": 0.5, "candidate": 0.5})
    my.rollout.pause("bird")
    rolled = my.rollout.rollback("bird", reason="p99 doubled")  # from paused, too
    assert (rolled.status, rolled.split) == ("rolled_back", {"primary": 1.0})
    assert alias_of() == 1
    before = stored(yard.metadata)
    for refused, message in [
        (lambda: my.rollout.promote("bird"), "cannot promote deployment 'bird': it is rolled back"),
        (lambda: my.rollout.rollback("bird"), "cannot roll back deployment 'bird'"),
        (lambda: my.rollout.resume("bird"), "cannot resume deployment 'bird': it is rolled back"),
    ]:
        with pytest.raises(Conflict) as raised:
            refused()
        assert message in raised.value.message
    assert stored(yard.metadata) == before
    assert [d.name for d in my.rollout.list_deployments(include_finished=False)] == []
    assert [d.name for d in my.rollout.list_deployments()] == ["bird"]


def test_history_records_every_change_and_each_bumps_the_revision(yard: Deployments) -> None:
    my.rollout.deploy("bird", strategy="canary", model=CHAMPION, candidates=[CHALLENGER],
                      actor="ana")  # fmt: skip
    revisions = [yard.revisions()["bird"].revision]
    my.rollout.set_split("bird", {"primary": 0.75, "candidate": 0.25}, actor="bo")
    revisions.append(yard.revisions()["bird"].revision)
    my.rollout.pause("bird", reason="freeze", actor="bo")
    revisions.append(yard.revisions()["bird"].revision)
    my.rollout.resume("bird", actor="bo")
    revisions.append(yard.revisions()["bird"].revision)
    look = {"samples": {"primary": 150, "candidate": 50}, "verdict": "inconclusive"}
    yard.record("bird", "continue", actor="engine", reason="not enough samples", evidence=look)
    revisions.append(yard.revisions()["bird"].revision)  # a look changes nothing
    my.rollout.promote("bird", reason="won", actor="cy")
    revisions.append(yard.revisions()["bird"].revision)
    assert revisions == [1, 2, 3, 4, 4, 5]

    events = my.rollout.deployment_history("bird")
    assert [(e.kind, e.actor, e.reason) for e in events] == [
        ("created", "ana", "canary of churn@champion, churn@challenger"),
        ("split", "bo", "split set by hand"),
        ("pause", "bo", "freeze"),
        ("resume", "bo", ""),
        ("continue", "engine", "not enough samples"),
        ("promote", "cy", "won"),
    ]
    assert [e.split for e in events] == [
        {"primary": 0.95, "candidate": 0.05},
        {"primary": 0.75, "candidate": 0.25},
        {"primary": 0.75, "candidate": 0.25},
        {"primary": 0.75, "candidate": 0.25},
        {"primary": 0.75, "candidate": 0.25},
        {"candidate": 1.0},
    ]
    assert events[4].evidence == look
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert all(e.deployment == "bird" and e.at > 0 for e in events)

    status = my.rollout.deployment_status("bird")
    assert status.deployment == my.rollout.get_deployment("bird")
    assert status.decision == events[-1] and status.events == 6
    assert status.to_dict()["decision"]["kind"] == "promote"


def test_a_deployment_without_decisions_has_none_and_deleting_forgets_it(
    yard: Deployments,
) -> None:
    my.rollout.deploy("one", strategy="single", model=CHAMPION)
    status = my.rollout.deployment_status("one")
    assert (status.decision, status.events) == (None, 1)
    my.rollout.delete_deployment("one")
    with pytest.raises(NotFound):
        my.rollout.get_deployment("one")
    with pytest.raises(NotFound):
        my.rollout.deployment_history("one")
    assert "one" not in yard.revisions()
    again = my.rollout.deploy("one", strategy="single", model="churn/3")  # the name is free
    assert [e.kind for e in my.rollout.deployment_history("one")] == ["created"]
    assert again.variants[0].version == 3


def race(*calls: Callable[[], Deployment]) -> list[str]:
    """Run `calls` at once in threads; what each did: its status, or the error's class."""
    start = threading.Barrier(len(calls))
    outcomes = [""] * len(calls)

    def run(index: int) -> None:
        start.wait()
        try:
            outcomes[index] = calls[index]().status
        except Conflict:
            outcomes[index] = "Conflict"

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_of_concurrent_promotions_and_rollbacks_exactly_one_wins(yard: Deployments) -> None:
    for round_ in range(4):
        name = f"race-{round_}"
        yard.create(name, strategy="canary", model="churn/1", candidates=["churn/2"], actor="a")
        my.registry.set_alias("churn", "champion", 1)
        moves = len(my.registry.history("churn"))
        promote = functools.partial(yard.promote, name, actor="a", reason="won")
        rollback = functools.partial(yard.rollback, name, actor="b", reason="lost")
        outcomes = race(promote, rollback) if round_ % 2 else race(rollback, promote)
        assert sorted(outcomes) == sorted(["Conflict", yard.get(name).status]), outcomes
        promoted = yard.get(name).status == "promoted"
        assert alias_of() == (2 if promoted else 1)  # the alias moved only if promotion won
        assert len(my.registry.history("churn")) == moves + promoted
        assert [e.kind for e in yard.history(name)][1:] == ["promote" if promoted else "rollback"]

    yard.create("pair", strategy="canary", model="churn/1", candidates=["churn/2"], actor="a")
    my.registry.set_alias("churn", "champion", 1)
    moves = len(my.registry.history("churn"))
    outcomes = race(*[lambda: yard.promote("pair", actor="a", reason="won")] * 2)
    assert sorted(outcomes) == ["Conflict", "promoted"]
    assert len(my.registry.history("churn")) == moves + 1
    assert [e.kind for e in yard.history("pair")] == ["created", "promote"]
    assert yard.get("pair").revision == 2


def test_the_sdk_points_to_the_rest_api_when_it_talks_to_a_server(tmp_path: Path) -> None:
    remote = Settings(home=tmp_path, tracking_uri="http://127.0.0.1:9")
    with (
        pytest.raises(InvalidInput, match=r"REST API \(/api/v1/deployments\)"),
        open_deployments(remote),
    ):
        pass
    my.configure(home=tmp_path / "home", tracking_uri="http://127.0.0.1:9")
    try:
        with pytest.raises(InvalidInput, match="/api/v1/deployments"):
            my.rollout.deploy("x", strategy="single", model=CHAMPION)
    finally:
        my.configure(home=tmp_path / "unused")


def test_status_takes_a_live_look_at_the_traffic_and_records_nothing(yard: Deployments) -> None:
    my.rollout.deploy("ab", strategy="ab", model=CHAMPION, candidates=["churn/3"],
                      policy={"min_samples": 20})  # fmt: skip
    quiet = my.rollout.deployment_status("ab").live
    assert quiet is not None and quiet["action"] == "continue"
    assert [s["requests"] for s in quiet["variants"].values()] == [0, 0]
    assert quiet["variants"]["primary"]["metric"]["value"] is None  # nothing yet is no 0

    serve_traffic("ab", {"primary": 1, "candidate": 3}, per_variant=60)
    before = stored(yard.metadata)
    status = my.rollout.deployment_status("ab")
    assert stored(yard.metadata) == before  # a look acts on nothing and records nothing
    live = status.live
    assert live is not None and live["action"] in ("continue", "promote")
    assert live["reason"] and "accuracy" in live["effect"]["name"]
    primary, candidate = live["variants"]["primary"], live["variants"]["candidate"]
    assert (primary["version"], candidate["version"]) == (1, 3)
    assert [(s["requests"], s["labelled"], s["errors"]) for s in (primary, candidate)] == [
        (60, 60, 0),
        (60, 60, 0),
    ]
    assert (primary["metric"]["value"], candidate["metric"]["value"]) == (0.5, 1.0)
    for stats in (primary, candidate):
        low, high = stats["metric"]["interval"]
        assert low <= stats["metric"]["value"] <= high
    assert 0 <= live["sequential"]["p_value"] <= 1
    assert status.to_dict()["live"] == live
