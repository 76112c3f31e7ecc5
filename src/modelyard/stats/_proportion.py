"""Confidence intervals for a rate: label coverage, error rates, fairness rates per group."""

from __future__ import annotations

import math

from modelyard.errors import InvalidInput
from modelyard.stats._checks import check_probability


def proportion_interval(
    successes: float, trials: float, confidence: float = 0.95
) -> tuple[float, float]:
    """Wilson score interval for the rate `successes / trials`.

    Unlike the normal (Wald) interval it stays inside [0, 1] and keeps its coverage for
    rates near 0 or 1 and for small groups; 0 successes give a lower bound of exactly 0,
    all successes an upper bound of exactly 1. Equals
    `scipy.stats.binomtest(successes, trials).proportion_ci(confidence, method="wilson")`.
    """
    from scipy.special import ndtri

    level = check_probability(confidence, "confidence")
    k = _count(successes, "successes")
    n = _count(trials, "trials")
    if n == 0.0:
        raise InvalidInput("trials is 0; a rate needs at least one trial")
    if k > n:
        raise InvalidInput(f"successes ({successes}) exceed trials ({trials})")
    p = k / n
    z = float(ndtri(0.5 + 0.5 * level))
    denominator = 2.0 * (n + z**2)
    center = (2.0 * n * p + z**2) / denominator
    delta = z / denominator * math.sqrt(4.0 * n * p * (1.0 - p) + z**2)
    low = 0.0 if k == 0.0 else max(center - delta, 0.0)
    high = 1.0 if k == n else min(center + delta, 1.0)
    return low, high


def _count(value: float, name: str) -> float:
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be a number of trials or successes; got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number; got {value!r}") from None
    if not math.isfinite(number) or number < 0.0:
        raise InvalidInput(f"{name} must be a finite count >= 0; got {value}")
    return number
