"""Sample-ratio mismatch: SciPy's goodness-of-fit test, flagging only real mismatches."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats

from modelyard.errors import InvalidInput
from modelyard.stats import SampleRatioResult, TestResult, srm_test

EXACT = 1e-12


@pytest.mark.parametrize(
    ("observed", "shares"),
    [
        ([5_050, 4_950], [50, 50]),
        ([9_120, 880], [0.9, 0.1]),
        ([3_400, 3_300, 3_300], [1, 1, 1]),
        ([700, 150, 150], [0.8, 0.1, 0.1]),
        ([12, 3], [0.5, 0.5]),
    ],
)
def test_srm_test_equals_scipy_chisquare_against_the_configured_shares(
    observed: list[int], shares: list[float]
) -> None:
    expected_counts = np.sum(observed) * np.asarray(shares) / np.sum(shares)
    expected = stats.chisquare(observed, expected_counts)
    result = srm_test(observed, shares)
    assert isinstance(result, TestResult)
    assert result.statistic == pytest.approx(expected.statistic, rel=EXACT)
    assert result.p_value == pytest.approx(expected.pvalue, rel=EXACT)
    assert result.mismatch == (expected.pvalue < 0.001)
    assert result.threshold == 0.001


def test_shares_are_weights_in_any_unit() -> None:
    assert srm_test([510, 490], [50, 50]) == srm_test([510, 490], [0.5, 0.5])


def test_a_52_48_split_of_10000_requests_is_a_mismatch_and_a_50_50_split_is_not() -> None:
    generator = np.random.default_rng(52)
    forced = generator.permutation(np.repeat([0, 1], [5_200, 4_800]))
    skewed = srm_test(np.bincount(forced, minlength=2), [50, 50])
    assert skewed.mismatch
    assert skewed.statistic == pytest.approx(16.0)
    assert skewed.p_value == pytest.approx(6.334e-5, rel=1e-3)

    fair = generator.integers(0, 2, 10_000)
    assert not srm_test(np.bincount(fair, minlength=2), [50, 50]).mismatch


def test_fair_splits_are_flagged_about_as_rarely_as_the_threshold_says() -> None:
    generator = np.random.default_rng(0)
    first = generator.binomial(10_000, 0.5, 2_000)
    flagged = [srm_test([k, 10_000 - k], [1, 1]).mismatch for k in first]
    assert np.mean(flagged) <= 0.001 + 3 * np.sqrt(0.001 * 0.999 / 2_000)


def test_traffic_to_a_variant_with_share_0_is_a_mismatch() -> None:
    result = srm_test([500, 480, 3], [1, 1, 0])
    assert result == SampleRatioResult(np.inf, 0.0, True, 0.001)


def test_a_variant_with_share_0_and_no_traffic_is_left_out() -> None:
    expected = stats.chisquare([500, 470], [485, 485])
    result = srm_test([500, 470, 0], [1, 1, 0])
    assert result.p_value == pytest.approx(expected.pvalue, rel=EXACT)
    assert srm_test([500, 0], [1, 0]) == SampleRatioResult(0.0, 1.0, False, 0.001)


def test_threshold_can_be_loosened() -> None:
    result = srm_test([5_100, 4_900], [1, 1], threshold=0.05)
    assert result.mismatch  # p = 0.046
    assert not srm_test([5_100, 4_900], [1, 1]).mismatch


@pytest.mark.parametrize(
    ("observed", "shares", "kwargs", "message"),
    [
        ([10, 20], [1, 1, 1], {}, "2 variants but expected_shares has 3"),
        ([10, -2], [1, 1], {}, "negative counts"),
        ([10, np.nan], [1, 1], {}, "NaN or infinite"),
        ([0, 0], [1, 1], {}, "sum to 0"),
        ([10, 20], [1, -1], {}, "expected_shares must be finite"),
        ([10, 20], [0, 0], {}, "not all 0"),
        ([10, 20], [1, 1], {"threshold": 0.0}, "threshold must be strictly between"),
    ],
)
def test_srm_test_refuses_bad_input(
    observed: Any, shares: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        srm_test(observed, shares, **kwargs)
