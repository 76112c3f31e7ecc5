"""The Wilson score interval for a rate."""

from __future__ import annotations

from typing import Any

import pytest
from scipy import stats

from modelyard.errors import InvalidInput
from modelyard.stats import proportion_interval


def test_proportion_interval_matches_a_known_wilson_interval() -> None:
    # 81 of 263 at 95%: (0.2553, 0.3662), Newcombe (1998) / Wikipedia
    low, high = proportion_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


@pytest.mark.parametrize(
    ("successes", "trials", "confidence"),
    [(0, 10, 0.95), (10, 10, 0.95), (1, 2, 0.9), (37, 1_000, 0.99), (500, 1_000, 0.5)],
)
def test_proportion_interval_matches_scipy_binomtest(
    successes: int, trials: int, confidence: float
) -> None:
    expected = stats.binomtest(successes, trials).proportion_ci(confidence, method="wilson")
    assert proportion_interval(successes, trials, confidence) == pytest.approx(
        (expected.low, expected.high), rel=1e-12
    )


def test_proportion_interval_stays_in_the_unit_interval_at_the_extremes() -> None:
    assert proportion_interval(0, 10)[0] == 0.0
    assert proportion_interval(10, 10)[1] == 1.0
    assert proportion_interval(0, 10)[1] == pytest.approx(0.27753279986288926, rel=1e-12)


@pytest.mark.parametrize(
    ("successes", "trials", "confidence", "message"),
    [
        (1, 0, 0.95, "trials is 0"),
        (5, 3, 0.95, "successes \\(5\\) exceed trials \\(3\\)"),
        (-1, 3, 0.95, "successes must be a finite count"),
        (1, 3, 1.0, "confidence must be strictly between 0 and 1"),
        ("one", 3, 0.95, "successes must be a number"),
    ],
)
def test_proportion_interval_refuses_impossible_counts(
    successes: Any, trials: Any, confidence: float, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        proportion_interval(successes, trials, confidence)
