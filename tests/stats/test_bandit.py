"""Thompson sampling: each arm's chance of being best, and picks that follow it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from modelyard.errors import InvalidInput
from modelyard.stats import ArmChoice, thompson_beta, thompson_gaussian

DRAWS = 20_000
MONTE_CARLO = 4 * 0.5 / math.sqrt(DRAWS)  # four standard errors at worst


def beta_better(a: tuple[float, float], b: tuple[float, float]) -> float:
    """P(X_b > X_a) for independent Beta variables, by numerical integration."""
    value, _ = integrate.quad(lambda x: stats.beta.pdf(x, *b) * stats.beta.cdf(x, *a), 0, 1)
    return float(value)


def test_beta_probabilities_of_being_best_match_the_integral() -> None:
    choice = thompson_beta([12, 18], [88, 82], rng=np.random.default_rng(0), draws=DRAWS)
    expected = beta_better((13, 89), (19, 83))
    assert choice.probabilities[1] == pytest.approx(expected, abs=MONTE_CARLO)
    assert sum(choice.probabilities) == pytest.approx(1.0)
    assert choice.method == "Thompson, Beta"


def test_beta_prior_is_added_to_the_counts() -> None:
    choice = thompson_beta(
        [0, 0], [0, 0], rng=np.random.default_rng(1), draws=DRAWS, prior=(2.0, 8.0)
    )
    assert choice.probabilities == pytest.approx((0.5, 0.5), abs=MONTE_CARLO)
    tilted = thompson_beta(
        [3, 5], [7, 5], rng=np.random.default_rng(1), draws=DRAWS, prior=(0.5, 0.5)
    )
    assert tilted.probabilities[1] == pytest.approx(
        beta_better((3.5, 7.5), (5.5, 5.5)), abs=MONTE_CARLO
    )


def test_gaussian_probabilities_of_being_best_match_the_normal_closed_form() -> None:
    means, variances, counts = [1.0, 1.1], [4.0, 9.0], [400, 900]
    choice = thompson_gaussian(means, variances, counts, rng=np.random.default_rng(2), draws=DRAWS)
    expected = stats.norm.cdf(0.1 / math.sqrt(4.0 / 400 + 9.0 / 900))
    assert choice.probabilities[1] == pytest.approx(expected, abs=MONTE_CARLO)


def test_gaussian_prior_shrinks_each_arm_toward_its_mean() -> None:
    # prior N(0, 1), 4 rewards of variance 4 averaging 2: posterior N(1, 0.5)
    choice = thompson_gaussian(
        [2.0, 0.5], [4.0, 1e-12], [4, 1], rng=np.random.default_rng(3), draws=DRAWS,
        prior=(0.0, 1.0),
    )  # fmt: skip
    expected = stats.norm.sf(0.5, loc=1.0, scale=math.sqrt(0.5))
    assert choice.probabilities[0] == pytest.approx(expected, abs=MONTE_CARLO)


def test_an_arm_without_rewards_draws_from_the_prior() -> None:
    choice = thompson_gaussian(
        [0.0, 0.0], [1.0, 1.0], [0, 10_000], rng=np.random.default_rng(4), draws=DRAWS,
        prior=(1.0, 1.0),
    )  # fmt: skip
    assert choice.probabilities[0] == pytest.approx(stats.norm.sf(0.0, 1.0, 1.0), abs=0.02)


def test_arms_without_spread_are_known_exactly() -> None:
    choice = thompson_gaussian(
        [1.0, 3.0, 2.0], [0.0, 0.0, 0.0], [5, 5, 5], rng=np.random.default_rng(5)
    )
    assert (choice.arm, choice.probabilities) == (1, (0.0, 1.0, 0.0))


def test_each_arm_is_chosen_as_often_as_it_is_likely_the_best() -> None:
    successes, failures = [30, 36, 25], [70, 64, 75]
    generator = np.random.default_rng(6)
    picks = [thompson_beta(successes, failures, rng=generator, draws=1).arm for _ in range(4_000)]
    frequencies = np.bincount(picks, minlength=3) / 4_000
    expected = thompson_beta(successes, failures, rng=np.random.default_rng(7), draws=200_000)
    assert frequencies == pytest.approx(expected.probabilities, abs=4 * 0.5 / math.sqrt(4_000))


def test_a_seed_replays_the_same_choice() -> None:
    first = thompson_beta([5, 6, 7], [5, 4, 3], rng=np.random.default_rng(42))
    assert thompson_beta([5, 6, 7], [5, 4, 3], rng=np.random.default_rng(42)) == first
    assert isinstance(first, ArmChoice)
    assert first.to_dict()["arm"] == first.arm


def test_many_arms_and_draws_are_drawn_in_bounded_batches() -> None:
    choice = thompson_beta(
        np.arange(300), np.full(300, 300), rng=np.random.default_rng(8), draws=10_000
    )
    assert len(choice.probabilities) == 300
    assert sum(choice.probabilities) == pytest.approx(1.0)
    assert int(np.argmax(choice.probabilities)) == 299


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=6),
    st.integers(0, 2**32 - 1),
)
def test_probabilities_form_a_distribution_and_the_chosen_arm_can_win(
    arms: list[tuple[int, int]], seed: int
) -> None:
    successes = [arm[0] for arm in arms]
    failures = [arm[1] for arm in arms]
    choice = thompson_beta(successes, failures, rng=np.random.default_rng(seed), draws=500)
    assert len(choice.probabilities) == len(arms)
    assert all(0.0 <= p <= 1.0 for p in choice.probabilities)
    assert sum(choice.probabilities) == pytest.approx(1.0)
    assert choice.probabilities[choice.arm] > 0.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda rng: thompson_beta([1, 2], [1], rng=rng), "failures has 1 arms"),
        (lambda rng: thompson_beta([1, -2], [1, 1], rng=rng), "successes must be >= 0"),
        (lambda rng: thompson_beta([1, np.nan], [1, 1], rng=rng), "NaN or infinite"),
        (lambda rng: thompson_beta([], [], rng=rng), "successes is empty"),
        (lambda rng: thompson_beta([1], [1], rng=42), "numpy.random.Generator"),
        (lambda rng: thompson_beta([1], [1], rng=rng, draws=0), "draws must be"),
        (lambda rng: thompson_beta([1], [1], rng=rng, prior=(0.0, 1.0)), "prior alpha"),
        (lambda rng: thompson_beta([1], [1], rng=rng, prior=(1.0,)), "prior must be"),
        (lambda rng: thompson_gaussian([1.0], [1.0], [0], rng=rng), "no rewards yet"),
        (lambda rng: thompson_gaussian([1.0], [-1.0], [3], rng=rng), "variances must be >= 0"),
        (lambda rng: thompson_gaussian([1.0, 2.0], [1.0], [3, 3], rng=rng), "variances has 1"),
        (lambda rng: thompson_gaussian([1.0], [1.0], [3], rng=rng, prior=(0.0, 0.0)), "prior"),
    ],
)
def test_thompson_sampling_refuses_bad_input(call: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        call(np.random.default_rng(0))
