"""The router: sticky placement by a hash of the key, monotone in a candidate's share, random
without a key, the configured split observed, and mirrored variants chosen per request."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.errors import InvalidInput
from modelyard.rollout._router import (
    assign,
    key_fraction,
    key_text,
    mirrors,
    ranges,
    request_key,
)
from modelyard.rollout._spec import Deployment, Variant

PRIMARY = Variant("primary", "primary", "churn@champion", 1)
CANDIDATE = Variant("candidate", "candidate", "churn@challenger", 2)


def deployment(
    split: dict[str, float],
    *,
    variants: tuple[Variant, ...] = (PRIMARY, CANDIDATE),
    strategy: Any = "canary",
    status: Any = "running",
    policy: dict[str, Any] | None = None,
    name: str = "churn-rollout",
) -> Deployment:
    return Deployment(
        name=name,
        model="churn",
        strategy=strategy,
        alias="champion",
        variants=variants,
        split=split,
        policy=policy or {},
        status=status,
        step=0,
        step_started_at=0,
        revision=1,
        created_by="test",
        created_at=0,
        updated_at=0,
    )


def canary(share: float, **kwargs: Any) -> Deployment:
    return deployment({"primary": 1.0 - share, "candidate": share}, **kwargs)


ARMS = tuple(Variant(f"arm-{i}", "arm", f"churn/{i + 2}", i + 2) for i in range(3))
keys = st.text(min_size=1, max_size=30)
shares = st.floats(0.0, 1.0, allow_nan=False)
RNG = random.Random(0)


@given(key=keys, share=shares, name=st.text(min_size=1, max_size=20))
def test_a_key_always_gets_the_same_variant(key: str, share: float, name: str) -> None:
    made = canary(share, name=name)
    first = assign(made, key, random.Random(1))
    assert all(assign(made, key, random.Random(seed)) == first for seed in range(5))


def test_the_hash_is_fixed_so_keys_stay_put_across_processes_and_releases() -> None:
    # SHA-256 of "churn-rollout\0user-42": a change here moves every sticky user
    assert key_fraction("churn-rollout", "user-42") == pytest.approx(0.62037725656, abs=1e-9)
    assert key_fraction("churn-rollout", "user-42") != key_fraction("other", "user-42")


@settings(max_examples=300)
@given(key=keys, low=shares, high=shares)
def test_raising_the_candidate_share_never_moves_a_key_away_from_it(
    key: str, low: float, high: float
) -> None:
    low, high = sorted((low, high))
    before = assign(canary(low), key, RNG)
    after = assign(canary(high), key, RNG)
    if before == "candidate":
        assert after == "candidate"
    if after == "primary":
        assert before == "primary"


@settings(max_examples=200)
@given(key=keys, others=st.lists(st.floats(0.0, 0.3), min_size=3, max_size=3),
       arm=st.integers(0, 2), extra=st.floats(0.0, 0.1))  # fmt: skip
def test_an_arm_whose_share_grows_at_the_primarys_expense_keeps_its_keys(
    key: str, others: list[float], arm: int, extra: float
) -> None:
    split = {f"arm-{i}": share for i, share in enumerate(others)}
    split["primary"] = 1.0 - sum(others)
    grown = {
        **split,
        f"arm-{arm}": split[f"arm-{arm}"] + extra,
        "primary": split["primary"] - extra,
    }
    variants = (PRIMARY, *ARMS)
    before = assign(deployment(split, variants=variants, strategy="bandit"), key, RNG)
    after = assign(deployment(grown, variants=variants, strategy="bandit"), key, RNG)
    if before == f"arm-{arm}":
        assert after == before


def test_with_two_live_variants_the_candidate_holds_the_bottom_of_the_range() -> None:
    assert ranges(canary(0.25)) == [("candidate", 0.25), ("primary", 1.0)]
    assert ranges(canary(0.0)) == [("primary", 1.0)]
    assert ranges(deployment({"candidate": 1.0}, strategy="blue_green")) == [("candidate", 1.0)]


@pytest.mark.parametrize("share", [0.05, 0.25, 0.5, 0.9])
def test_over_many_keys_the_observed_share_is_the_split(share: float) -> None:
    made = canary(share)
    picks = [assign(made, f"user-{i}", RNG) for i in range(20_000)]
    observed = picks.count("candidate") / len(picks)
    assert abs(observed - share) < 4 * (share * (1 - share) / len(picks)) ** 0.5 + 1e-9


def test_without_a_key_the_split_is_random_and_follows_the_shares() -> None:
    made = deployment(
        {"primary": 0.4, "arm-0": 0.3, "arm-1": 0.2, "arm-2": 0.1},
        variants=(PRIMARY, *ARMS),
        strategy="bandit",
    )
    rng = random.Random(7)
    picks = [assign(made, None, rng) for _ in range(20_000)]
    for name, share in made.split.items():
        assert abs(picks.count(name) / len(picks) - share) < 0.015, name


@given(key=keys, share=shares)
def test_a_paused_deployment_keeps_its_split(key: str, share: float) -> None:
    running = canary(share)
    assert assign(replace(running, status="paused"), key, RNG) == assign(running, key, RNG)


@given(key=st.none() | keys)
def test_a_finished_deployment_sends_everything_to_the_variant_holding_the_split(
    key: str | None,
) -> None:
    promoted = deployment({"candidate": 1.0}, status="promoted")
    rolled_back = deployment({"primary": 1.0}, status="rolled_back")
    assert assign(promoted, key, RNG) == "candidate"
    assert assign(rolled_back, key, RNG) == "primary"


def test_mirrored_variants_never_answer_and_shadows_get_their_fraction() -> None:
    shadow = Variant("shadow", "shadow", "churn@challenger", 2)
    made = deployment(
        {"primary": 1.0}, variants=(PRIMARY, shadow), strategy="shadow", policy={"fraction": 0.3}
    )
    rng = random.Random(3)
    assert {assign(made, None, rng) for _ in range(200)} == {"primary"}
    mirrored = sum(mirrors(made, rng) == ["shadow"] for _ in range(10_000))
    assert abs(mirrored / 10_000 - 0.3) < 0.03
    challengers = tuple(Variant(f"challenger-{i}", "challenger", f"c/{i}", i + 2) for i in (1, 2))
    contest = deployment(
        {"primary": 1.0}, variants=(PRIMARY, *challengers), strategy="champion_challenger"
    )
    assert mirrors(contest, rng) == ["challenger-1", "challenger-2"]
    assert mirrors(replace(contest, status="paused"), rng) == ["challenger-1", "challenger-2"]
    assert mirrors(replace(contest, status="promoted"), rng) == []


def test_the_key_comes_from_the_field_or_header_the_policy_names() -> None:
    headers = {"x-user": "u-1"}
    assert request_key(None, {"user": 1}, headers) is None
    assert request_key("field:user", {"user": 7}, headers) == "7"
    assert request_key("field:user", {}, headers) is None
    assert request_key("header:X-User", {}, headers) == "u-1"
    assert request_key("header:x-missing", {}, headers) is None
    with pytest.raises(InvalidInput, match="sticky"):
        request_key("cookie:x", {}, headers)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (42, "42"),
        (42.0, "42"),
        (np.float64(42.0), "42"),
        (np.int64(42), "42"),
        (0.5, "0.5"),
        ("abc", "abc"),
        ("", None),
        (None, None),
        (float("nan"), None),
        (True, "true"),
        ({"b": 1, "a": 2}, '{"a":2,"b":1}'),
    ],
)
def test_a_key_reads_the_same_whichever_way_the_value_arrived(value: Any, text: str) -> None:
    assert key_text(value) == text
