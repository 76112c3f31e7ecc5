"""Planning: sample sizes from the textbook closed forms, and power that simulation confirms."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from modelyard.errors import InvalidInput
from modelyard.stats import power, sample_size, two_proportion_test


def z(p: float) -> float:
    return float(stats.norm.ppf(p))


def test_sample_size_for_means_is_the_normal_closed_form() -> None:
    # 0.1 standard deviations, alpha 0.05 two-sided, 80% power: the classic 1,570 per arm
    assert sample_size(0.1, sd=1.0) == 1_570
    n = 2 * (z(0.975) + z(0.9)) ** 2 * 3.0**2 / 0.5**2
    assert sample_size(-0.5, sd=3.0, power=0.9) == math.ceil(n)


def test_sample_size_for_rates_is_the_pooled_closed_form() -> None:
    # R: power.prop.test(p1 = .50, p2 = .75, power = .90) gives n = 76.65
    assert sample_size(0.25, baseline_rate=0.5, power=0.9) == 77
    p1, p2 = 0.1, 0.11
    pooled = (p1 + p2) / 2
    n = (
        z(0.975) * math.sqrt(2 * pooled * (1 - pooled))
        + z(0.8) * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    ) ** 2 / 0.01**2
    assert sample_size(0.01, baseline_rate=0.1) == math.ceil(n)


def test_one_sided_plans_use_the_one_sided_quantile() -> None:
    n = 2 * (z(0.95) + z(0.8)) ** 2 / 0.2**2
    assert sample_size(0.2, sd=1.0, alternative="greater") == math.ceil(n)
    assert sample_size(-0.2, sd=1.0, alternative="less") == math.ceil(n)


def test_unequal_arms_size_arm_a_for_b_getting_ratio_times_as_many() -> None:
    n = (z(0.975) + z(0.8)) ** 2 * (1 + 1 / 3) / 0.1**2
    assert sample_size(0.1, sd=1.0, ratio=3.0) == math.ceil(n)
    p1, p2, r = 0.2, 0.25, 2.0
    pooled = (p1 + r * p2) / (1 + r)
    n = (
        z(0.975) * math.sqrt(pooled * (1 - pooled) * (1 + 1 / r))
        + z(0.8) * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2) / r)
    ) ** 2 / 0.05**2
    assert sample_size(0.05, baseline_rate=0.2, ratio=r) == math.ceil(n)


plans = st.one_of(
    st.tuples(st.floats(0.01, 2.0), st.just(None), st.floats(0.1, 10.0)),
    st.tuples(st.floats(0.005, 0.3), st.floats(0.01, 0.6), st.just(None)),
)


@settings(max_examples=150, deadline=None)
@given(
    plans,
    st.floats(0.001, 0.2),
    st.floats(0.5, 0.99),
    st.floats(0.2, 5.0),
    st.sampled_from(["two-sided", "greater"]),
)
def test_power_is_the_inverse_of_sample_size(
    plan: tuple[float, float | None, float | None],
    alpha: float,
    target: float,
    ratio: float,
    alternative: Any,
) -> None:
    mde, baseline_rate, sd = plan
    options: dict[str, Any] = {
        "baseline_rate": baseline_rate, "sd": sd, "alpha": alpha, "ratio": ratio,
        "alternative": alternative,
    }  # fmt: skip
    n = sample_size(mde, power=target, **options)
    assert power(n, mde, **options) >= target - 1e-9
    if n > 1:
        assert power(n - 1, mde, **options) < target
    assert 0.0 <= power(max(1, n // 2), mde, **options) <= 1.0


def test_power_grows_with_the_sample_and_the_effect() -> None:
    assert power(100, 0.2, sd=1.0) < power(400, 0.2, sd=1.0) < power(400, 0.3, sd=1.0)


def test_planned_rates_reach_their_power_in_simulation() -> None:
    generator = np.random.default_rng(8)
    n = sample_size(0.05, baseline_rate=0.2)
    experiments = 2_000
    successes_a = generator.binomial(n, 0.2, experiments)
    successes_b = generator.binomial(n, 0.25, experiments)
    rejected = [
        two_proportion_test(int(a), n, int(b), n).p_value < 0.05
        for a, b in zip(successes_a, successes_b, strict=True)
    ]
    margin = 3 * math.sqrt(0.8 * 0.2 / experiments)
    assert abs(np.mean(rejected) - 0.8) <= margin


def test_planned_means_reach_their_power_in_simulation() -> None:
    generator = np.random.default_rng(9)
    n = sample_size(0.5, sd=2.0, ratio=2.0, power=0.9)
    experiments = 2_000
    a = generator.normal(10.0, 2.0, (experiments, n))
    b = generator.normal(10.5, 2.0, (experiments, math.ceil(2.0 * n)))
    rejected = stats.ttest_ind(b, a, axis=1, equal_var=False).pvalue < 0.05
    margin = 3 * math.sqrt(0.9 * 0.1 / experiments)
    assert abs(np.mean(rejected) - 0.9) <= margin


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mde": 0.1}, "either baseline_rate"),
        ({"mde": 0.1, "sd": 1.0, "baseline_rate": 0.1}, "not both"),
        ({"mde": 0.0, "sd": 1.0}, "nonzero"),
        ({"mde": float("nan"), "sd": 1.0}, "finite"),
        ({"mde": 0.1, "sd": 0.0}, "sd must be a finite number > 0"),
        ({"mde": 0.1, "baseline_rate": 1.0}, "baseline_rate must be strictly between"),
        ({"mde": 0.2, "baseline_rate": 0.9}, "is not a rate"),
        ({"mde": 0.1, "sd": 1.0, "alpha": 0.0}, "alpha must be strictly between"),
        ({"mde": 0.1, "sd": 1.0, "power": 1.0}, "power must be strictly between"),
        ({"mde": 0.1, "sd": 1.0, "ratio": -1.0}, "ratio must be"),
        ({"mde": -0.1, "sd": 1.0, "alternative": "greater"}, "mde must be > 0"),
        ({"mde": 0.1, "sd": 1.0, "alternative": "less"}, "mde must be < 0"),
        ({"mde": 0.1, "sd": 1.0, "alternative": "both"}, "'two-sided'"),
    ],
)
def test_sample_size_refuses_impossible_plans(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        sample_size(**kwargs)


def test_power_refuses_a_sample_of_nothing() -> None:
    with pytest.raises(InvalidInput, match="n_per_arm must be a positive integer"):
        power(0, 0.1, sd=1.0)
