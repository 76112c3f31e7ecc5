"""Always-valid tests: the mSPRT's closed form, monotone p-values, and peeking that is safe.

Run with `-s` to see the simulated error rates printed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy import stats

from modelyard.errors import InvalidInput
from modelyard.stats import (
    SequentialResult,
    sample_size,
    sequential_mean_test,
    sequential_proportion_test,
)

ALPHA = 0.05


def standardized(values: NDArray[np.float64], mean: float, sd: float) -> NDArray[np.float64]:
    """`values` moved and scaled to have exactly this mean and sample standard deviation."""
    z = (values - values.mean()) / values.std(ddof=1)
    return np.asarray(mean + sd * z, dtype=np.float64)


@pytest.mark.parametrize(
    ("n", "effect", "sigma", "tau"), [(50, 0.3, 1.0, 0.2), (1_000, 0.05, 2.0, 0.1)]
)
def test_mixture_likelihood_ratio_is_johari_pekelis_walshs_closed_form(
    n: int, effect: float, sigma: float, tau: float
) -> None:
    generator = np.random.default_rng(n)
    a = standardized(generator.normal(size=n), 1.0, sigma)
    b = standardized(generator.normal(size=n), 1.0 + effect, sigma)
    # Johari, Pekelis & Walsh (2022), two streams of n observations with variance sigma^2
    expected = math.sqrt(2 * sigma**2 / (2 * sigma**2 + n * tau**2)) * math.exp(
        n**2 * tau**2 * effect**2 / (4 * sigma**2 * (2 * sigma**2 + n * tau**2))
    )
    result = sequential_mean_test(a, b, tau=tau)
    assert result.likelihood_ratio == pytest.approx(expected, rel=1e-9)
    assert result.p_value == pytest.approx(min(1.0, 1.0 / expected), rel=1e-9)
    assert result.effect == pytest.approx(effect, rel=1e-9)
    assert (result.n_a, result.n_b, result.n) == (n, n, 2 * n)


def test_confidence_sequence_holds_the_effects_the_mixture_does_not_reject() -> None:
    generator = np.random.default_rng(1)
    a, b = generator.normal(0.0, 1.0, 400), generator.normal(0.3, 1.0, 400)
    result = sequential_mean_test(a, b, tau=0.2)
    variance = a.var(ddof=1) / 400 + b.var(ddof=1) / 400

    def likelihood_ratio(theta: float) -> float:
        total = variance + 0.04
        d = result.effect - theta
        return math.sqrt(variance / total) * math.exp(d**2 * 0.04 / (2 * variance * total))

    # the ends are where the likelihood ratio against that effect reaches 1 / alpha
    assert likelihood_ratio(result.low) == pytest.approx(1 / ALPHA, rel=1e-9)
    assert likelihood_ratio(result.high) == pytest.approx(1 / ALPHA, rel=1e-9)


def test_proportion_test_uses_rates_shrunk_by_half_an_event_in_its_variance() -> None:
    result = sequential_proportion_test(100, 1_000, 135, 1_000, tau=0.02)
    ra, rb = 100.5 / 1_001, 135.5 / 1_001
    variance = ra * (1 - ra) / 1_000 + rb * (1 - rb) / 1_000
    total = variance + 0.02**2
    log_ratio = 0.5 * math.log(variance / total) + 0.035**2 * 0.02**2 / (2 * variance * total)
    assert result.effect == pytest.approx(0.035, rel=1e-12)
    assert result.likelihood_ratio == pytest.approx(math.exp(log_ratio), rel=1e-9)


def test_proportion_test_with_no_successes_yet_stays_inconclusive() -> None:
    result = sequential_proportion_test(0, 100, 0, 100)
    assert (result.effect, result.decided) == (0.0, False)
    assert -1.0 <= result.low < 0.0 < result.high <= 1.0
    assert result.tau == pytest.approx(0.1 * math.sqrt(0.5 / 201 * (1 - 0.5 / 201)))


def test_default_tau_is_a_tenth_of_the_pooled_standard_deviation() -> None:
    a = standardized(np.arange(10.0), 0.0, 2.0)
    b = standardized(np.arange(30.0), 1.0, 4.0)
    pooled = math.sqrt((9 * 4.0 + 29 * 16.0) / 38)
    assert sequential_mean_test(a, b).tau == pytest.approx(0.1 * pooled)


def test_constant_samples_are_known_exactly() -> None:
    same = sequential_mean_test([2.0, 2.0, 2.0], [2.0, 2.0])
    assert (same.p_value, same.low, same.high, same.decided) == (1.0, 0.0, 0.0, False)
    apart = sequential_mean_test([2.0, 2.0, 2.0], [3.0, 3.0])
    assert (apart.p_value, apart.low, apart.high, apart.decided) == (0.0, 1.0, 1.0, True)


def test_result_to_dict_holds_every_field_and_n() -> None:
    result = sequential_proportion_test(10, 100, 20, 100)
    data = result.to_dict()
    assert data["n"] == 200
    assert SequentialResult(**{k: v for k, v in data.items() if k != "n"}) == result  # type: ignore[arg-type]


samples = st.lists(st.integers(-20, 20).map(lambda v: v / 4.0), min_size=2, max_size=60)


@settings(max_examples=80, deadline=None)
@given(samples, samples, st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.05, 2.0))
def test_always_valid_p_value_never_increases_with_the_previous_one(
    a: list[float], b: list[float], first: float, second: float, tau: float
) -> None:
    lower, higher = sorted((first, second))
    at_lower = sequential_mean_test(a, b, tau=tau, previous_p_value=lower)
    at_higher = sequential_mean_test(a, b, tau=tau, previous_p_value=higher)
    assert at_lower.p_value <= at_higher.p_value
    assert at_lower.p_value <= lower
    assert 0.0 <= at_lower.p_value <= 1.0


@settings(max_examples=80, deadline=None)
@given(samples, samples, st.floats(0.05, 2.0), st.floats(0.01, 0.2))
def test_first_look_interval_holds_the_effect_and_excludes_0_exactly_when_decided(
    a: list[float], b: list[float], tau: float, alpha: float
) -> None:
    result = sequential_mean_test(a, b, tau=tau, alpha=alpha)
    assert result.low <= result.effect <= result.high
    excludes_zero = not result.low < 0.0 < result.high
    if result.low != result.high:  # a point interval is known exactly, 0 or not
        assert result.decided == excludes_zero
    reversed_ = sequential_mean_test(b, a, tau=tau, alpha=alpha)
    assert reversed_.effect == pytest.approx(-result.effect, abs=1e-12)
    assert reversed_.p_value == pytest.approx(result.p_value, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=1, max_size=8))
def test_chained_looks_narrow_the_interval_and_lower_the_p_value(
    increments: list[tuple[int, int]],
) -> None:
    successes_a = successes_b = 0
    n = 0
    previous: SequentialResult | None = None
    for more_a, more_b in increments:
        n += 40
        successes_a += more_a
        successes_b += more_b
        result = sequential_proportion_test(
            successes_a, n, successes_b, n, tau=0.05,
            previous_p_value=previous.p_value if previous else 1.0,
            previous_interval=(previous.low, previous.high) if previous else None,
        )  # fmt: skip
        if previous is not None:
            assert result.p_value <= previous.p_value
            alone = sequential_proportion_test(successes_a, n, successes_b, n, tau=0.05)
            if max(alone.low, previous.low) <= min(alone.high, previous.high):
                assert previous.low <= result.low <= result.high <= previous.high
            else:  # the sequence missed (probability <= alpha): this look's interval
                assert (result.low, result.high) == (alone.low, alone.high)
        assert result.decided == (result.p_value <= ALPHA)
        previous = result


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sequential_mean_test([1.0], [1.0, 2.0]), "a has 1 value"),
        (lambda: sequential_mean_test([1.0, np.nan], [1.0, 2.0]), "a has NaN"),
        (lambda: sequential_mean_test([1.0, 2.0], [1.0, 2.0], tau=0.0), "tau must be"),
        (lambda: sequential_mean_test([1.0, 2.0], [1.0, 2.0], alpha=1.0), "alpha must be"),
        (lambda: sequential_mean_test([1.0, 2.0], [1.0, 3.0], previous_p_value=1.5), "previous_p"),
        (lambda: sequential_mean_test([1.0, 2.0], [1.0, 3.0], previous_interval=(1.0, 0.0)),
         "low <= high"),
        (lambda: sequential_proportion_test(5, 3, 1, 3), "successes_a \\(5\\) exceed n_a"),
        (lambda: sequential_proportion_test(1, 3, -1, 3), "successes_b must be a whole"),
        (lambda: sequential_proportion_test(0, 0, 1, 3), "n_a is 0"),
    ],
)  # fmt: skip
def test_sequential_tests_refuse_bad_input(call: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        call()


# The "done when": 2,000 seeded A/A experiments looked at every 100 observations per
# arm, 20 looks. The mSPRT keeps its false-positive rate under alpha; a fixed-horizon t-test
# looked at the same way does not. With the planned effect the power reaches the plan.
EXPERIMENTS = 2_000
LOOK = 100
LOOKS = 20
PLANNED_EFFECT = 0.125  # in standard deviations


def monte_carlo_margin(rate: float) -> float:
    """Three standard errors of a rate estimated from EXPERIMENTS runs."""
    return 3.0 * math.sqrt(rate * (1.0 - rate) / EXPERIMENTS)


def sequential_stops(
    a: NDArray[np.float64], b: NDArray[np.float64], tau: float
) -> NDArray[np.int64]:
    """Per experiment, the observations per arm at the first look that decided (0: never)."""
    stops = np.zeros(len(a), dtype=np.int64)
    for experiment, (row_a, row_b) in enumerate(zip(a, b, strict=True)):
        p_value, interval = 1.0, None
        for n in range(LOOK, LOOK * LOOKS + 1, LOOK):
            result = sequential_mean_test(
                row_a[:n], row_b[:n], tau=tau, alpha=ALPHA,
                previous_p_value=p_value, previous_interval=interval,
            )  # fmt: skip
            p_value, interval = result.p_value, (result.low, result.high)
            if result.decided:
                stops[experiment] = n
                break
    return stops


def peeking_t_test_rejects(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Whether a fixed-horizon Welch test rejected at any of the looks (vectorized SciPy)."""
    rejected = np.zeros(len(a), dtype=bool)
    for n in range(LOOK, LOOK * LOOKS + 1, LOOK):
        result = stats.ttest_ind(b[:, :n], a[:, :n], axis=1, equal_var=False)
        rejected |= result.pvalue < ALPHA
    return rejected


def test_peeking_at_the_sequential_test_keeps_its_error_rate_and_reaches_the_planned_power() -> (
    None
):
    generator = np.random.default_rng(20240611)
    a = generator.normal(0.0, 1.0, (EXPERIMENTS, LOOK * LOOKS))
    b = generator.normal(0.0, 1.0, (EXPERIMENTS, LOOK * LOOKS))
    tau = PLANNED_EFFECT  # the mixing sd set to the effect the experiment is planned for

    false_positives = float(np.mean(sequential_stops(a, b, tau) > 0))
    peeking = float(np.mean(peeking_t_test_rejects(a, b)))
    limit = ALPHA + monte_carlo_margin(ALPHA)
    print(
        f"\nA/A, {EXPERIMENTS} experiments, a look every {LOOK} per arm up to "
        f"{LOOK * LOOKS}: false-positive rate of the sequential test {false_positives:.4f}, "
        f"of a fixed-horizon t-test looked at each time {peeking:.4f} "
        f"(alpha {ALPHA}, alpha + Monte Carlo margin {limit:.4f})"
    )
    assert false_positives <= limit
    assert peeking > limit

    planned = sample_size(PLANNED_EFFECT, sd=1.0, alpha=ALPHA, power=0.8)
    shifted = b + PLANNED_EFFECT
    # SciPy's Welch test, vectorized over the experiments (`welch_t_test` equals it)
    fixed = stats.ttest_ind(shifted[:, :planned], a[:, :planned], axis=1, equal_var=False)
    fixed_power = float(np.mean(fixed.pvalue < ALPHA))
    stops = sequential_stops(a, shifted, tau)
    sequential_power = float(np.mean(stops > 0))
    by_planned = float(np.mean((stops > 0) & (stops <= planned)))
    floor = 0.8 - monte_carlo_margin(0.8)
    print(
        f"effect {PLANNED_EFFECT} sd, planned n {planned} per arm for 80% power: fixed t-test "
        f"at the planned n {fixed_power:.4f}; sequential test by {LOOK * LOOKS} per arm "
        f"{sequential_power:.4f} (by the planned n {by_planned:.4f}, median stop at "
        f"{int(np.median(stops[stops > 0]))} per arm); floor 0.8 - margin = {floor:.4f}"
    )
    assert fixed_power >= floor
    assert sequential_power >= floor


def test_peeking_at_the_sequential_proportion_test_keeps_its_error_rate() -> None:
    generator = np.random.default_rng(7)
    # A/A conversions at 5%: cumulative successes per arm at each of the 20 looks
    successes_a = generator.binomial(LOOK, 0.05, (EXPERIMENTS, LOOKS)).cumsum(axis=1)
    successes_b = generator.binomial(LOOK, 0.05, (EXPERIMENTS, LOOKS)).cumsum(axis=1)
    decided = np.zeros(EXPERIMENTS, dtype=bool)
    for experiment in range(EXPERIMENTS):
        p_value, interval = 1.0, None
        for look in range(LOOKS):
            n = LOOK * (look + 1)
            result = sequential_proportion_test(
                int(successes_a[experiment, look]), n, int(successes_b[experiment, look]), n,
                tau=0.02, previous_p_value=p_value, previous_interval=interval,
            )  # fmt: skip
            p_value, interval = result.p_value, (result.low, result.high)
        decided[experiment] = result.decided
    rate = float(decided.mean())
    print(f"\nA/A conversions at 5%, same looks: false-positive rate {rate:.4f}")
    assert rate <= ALPHA + monte_carlo_margin(ALPHA)
