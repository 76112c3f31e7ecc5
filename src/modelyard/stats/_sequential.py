"""Always-valid inference: tests a rollout may look at after every batch, and stop on.

A fixed-horizon test looked at repeatedly and stopped at the first p < alpha rejects a true
null far more often than alpha. The mixture sequential probability ratio test (mSPRT) of
Johari, Pekelis and Walsh ("Always Valid Inference: Continuous Monitoring of A/B Tests",
Operations Research 70(3), 2022; arXiv:1512.04922) does not: its p-value is valid at
whichever look one stops, however the looks were chosen.

The effect estimate d (B minus A) with variance V is compared with the likelihood of "no
effect" against a normal mixture of effects N(0, tau^2):

    Lambda = sqrt(V / (V + tau^2)) * exp(d^2 tau^2 / (2 V (V + tau^2)))

Under no effect Lambda is a nonnegative martingale with mean 1, so by Ville's inequality it
exceeds 1/alpha at any look with probability at most alpha. The always-valid p-value is
min(previous p-value, 1/Lambda); the confidence sequence holds the effects not rejected the
same way, intersected with the previous interval. Pass the previous look's p-value and
interval in, and `decided` (p <= alpha) is exactly "the interval excludes 0".

The variance is estimated from the data at each look (a normal approximation, as in the
paper), so the guarantee is asymptotic: look after a few hundred observations per arm, not
after five.

tau, the mixing standard deviation, is in the effect's units. Set it to the effect you
plan to detect (the `mde` given to `sample_size`): at the planned sample size V is about
mde^2 / 7.85 (80% power, alpha 0.05), and tau^2 = mde^2 is close to the tau minimizing the
threshold there. When it is not given, tau is a tenth of the outcome's standard deviation
(pooled over both arms), a standardized effect of 0.1.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from modelyard.errors import InvalidInput
from modelyard.stats._checks import (
    as_observations,
    as_rate_counts,
    check_positive,
    check_probability,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

_DEFAULT_STANDARDIZED_TAU = 0.1


@dataclass(frozen=True)
class SequentialResult:
    """One look of an always-valid test: the effect (B minus A), p-value and interval."""

    effect: float
    p_value: float
    low: float
    high: float
    alpha: float
    decided: bool
    n_a: int
    n_b: int
    tau: float
    likelihood_ratio: float
    method: str

    @property
    def n(self) -> int:
        """Observations so far, both arms together."""
        return self.n_a + self.n_b

    def to_dict(self) -> dict[str, float | int | str | bool]:
        """The fields and `n` as plain Python values."""
        return {**dataclasses.asdict(self), "n": self.n}


def sequential_mean_test(
    a: ArrayLike,
    b: ArrayLike,
    *,
    tau: float | None = None,
    alpha: float = 0.05,
    previous_p_value: float = 1.0,
    previous_interval: tuple[float, float] | None = None,
) -> SequentialResult:
    """Always-valid test of mean(B) - mean(A), on all the observations so far.

    V = var(a)/n_a + var(b)/n_b (sample variances). Pass the previous look's `p_value`
    and `(low, high)` so that the p-value only falls and the interval only narrows.
    """
    x = as_observations(a, "a", minimum=2)
    y = as_observations(b, "b", minimum=2)
    var_a, var_b = float(x.var(ddof=1)), float(y.var(ddof=1))
    if tau is not None:
        tau = check_positive(tau, "tau")
    else:
        pooled = ((x.size - 1) * var_a + (y.size - 1) * var_b) / (x.size + y.size - 2)
        tau = _DEFAULT_STANDARDIZED_TAU * math.sqrt(pooled)
    return _look(
        float(y.mean() - x.mean()),
        var_a / x.size + var_b / y.size,
        tau,
        alpha,
        previous_p_value,
        previous_interval,
        (x.size, y.size),
        "mSPRT (normal mixture), difference in means",
    )


def sequential_proportion_test(
    successes_a: int,
    n_a: int,
    successes_b: int,
    n_b: int,
    *,
    tau: float | None = None,
    alpha: float = 0.05,
    previous_p_value: float = 1.0,
    previous_interval: tuple[float, float] | None = None,
) -> SequentialResult:
    """Always-valid test of rate(B) - rate(A), from the counts so far.

    V = p_a(1 - p_a)/n_a + p_b(1 - p_b)/n_b, with each rate in V shrunk by half a success
    and half a failure, (k + 0.5)/(n + 1), so that 0 of n (or n of n) still has a variance.
    The interval is clipped to [-1, 1].
    """
    xa, na = as_rate_counts(successes_a, n_a, "a")
    xb, nb = as_rate_counts(successes_b, n_b, "b")
    ra, rb = (xa + 0.5) / (na + 1.0), (xb + 0.5) / (nb + 1.0)
    if tau is not None:
        tau = check_positive(tau, "tau")
    else:
        pooled = (xa + xb + 0.5) / (na + nb + 1.0)
        tau = _DEFAULT_STANDARDIZED_TAU * math.sqrt(pooled * (1.0 - pooled))
    result = _look(
        xb / nb - xa / na,
        ra * (1.0 - ra) / na + rb * (1.0 - rb) / nb,
        tau,
        alpha,
        previous_p_value,
        previous_interval,
        (na, nb),
        "mSPRT (normal mixture), difference in rates",
    )
    return dataclasses.replace(result, low=max(result.low, -1.0), high=min(result.high, 1.0))


def _look(
    effect: float,
    variance: float,
    tau: float,
    alpha: float,
    previous_p_value: float,
    previous_interval: tuple[float, float] | None,
    sizes: tuple[int, int],
    method: str,
) -> SequentialResult:
    level = check_probability(alpha, "alpha")
    previous = _check_previous_p_value(previous_p_value)
    before = _check_previous_interval(previous_interval)
    if variance == 0.0:
        # no spread at all: the effect is known exactly
        log_ratio = math.inf if effect != 0.0 else -math.inf
        low = high = effect
    else:
        mixing = tau**2
        total = variance + mixing
        log_ratio = 0.5 * math.log(variance / total) + effect**2 * mixing / (2.0 * variance * total)
        half = math.sqrt(
            variance * total / mixing * (2.0 * math.log(1.0 / level) + math.log(total / variance))
        )
        low, high = effect - half, effect + half
    p_value = min(previous, math.exp(-log_ratio) if log_ratio > -700.0 else 1.0, 1.0)
    # an empty intersection (the sequence missed, probability <= alpha) keeps this look's
    if before is not None and max(low, before[0]) <= min(high, before[1]):
        low, high = max(low, before[0]), min(high, before[1])
    ratio = math.exp(log_ratio) if log_ratio < 700.0 else math.inf
    return SequentialResult(
        effect=effect,
        p_value=p_value,
        low=low,
        high=high,
        alpha=level,
        decided=p_value <= level,
        n_a=sizes[0],
        n_b=sizes[1],
        tau=float(tau),
        likelihood_ratio=ratio,
        method=method,
    )


def _check_previous_p_value(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise InvalidInput(f"previous_p_value must be a number in [0, 1]; got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise InvalidInput(
            f"previous_p_value must lie in [0, 1] (1.0 at the first look); got {value}"
        )
    return float(value)


def _check_previous_interval(interval: tuple[float, float] | None) -> tuple[float, float] | None:
    if interval is None:
        return None
    try:
        low, high = (float(bound) for bound in interval)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"previous_interval must be the previous look's (low, high); got {interval!r}"
        ) from None
    if math.isnan(low) or math.isnan(high) or low > high:
        raise InvalidInput(f"previous_interval must have low <= high; got {interval!r}")
    return low, high
