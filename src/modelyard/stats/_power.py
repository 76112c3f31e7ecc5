"""Planning a comparison: how many observations per arm detect an effect, and with what power.

Normal approximations of the two-sample z-test, for a difference in rates (give
`baseline_rate`) or in means (give `sd`). `mde`, the minimum detectable effect, is B minus
A on the natural scale (0.01 is one percentage point of rate). Arm B gets `ratio` times as
many observations as arm A. Two-sided plans ignore the far tail (rejecting in the wrong
direction, under Phi(-z_{alpha/2}) in probability), as most calculators do, which keeps
`sample_size` and `power` exact inverses.
"""

from __future__ import annotations

import math

import numpy as np

from modelyard.errors import InvalidInput
from modelyard.stats._checks import (
    check_alternative,
    check_positive,
    check_positive_int,
    check_probability,
)
from modelyard.stats._comparison import Alternative


def sample_size(
    mde: float,
    *,
    baseline_rate: float | None = None,
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    alternative: Alternative = "two-sided",
) -> int:
    """Observations needed in arm A (B needs `ratio` times as many, rounded up).

    For rates, the pooled-variance z-test (Fleiss):
    n = (z_a sqrt(p(1 - p)(1 + 1/r)) + z_b sqrt(p_a(1 - p_a) + p_b(1 - p_b)/r))^2 / mde^2
    with p_b = p_a + mde and p = (p_a + r p_b)/(1 + r). For means,
    n = (z_a + z_b)^2 sd^2 (1 + 1/r) / mde^2. Here z_a = z_{1-alpha/2} (two-sided) or
    z_{1-alpha} and z_b = z_{power}.
    """
    from scipy.special import ndtri

    target = check_probability(power, "power")
    plan = _Plan(mde, baseline_rate, sd, alpha, ratio, alternative)
    z_b = float(ndtri(target))
    root = (plan.z_alpha * plan.null_sd + z_b * plan.alternative_sd) / abs(plan.mde)
    # rounding errors must not add an observation to an exact result
    return max(1, math.ceil(root**2 * (1.0 - 1e-12)))


def power(
    n_per_arm: int,
    mde: float,
    *,
    baseline_rate: float | None = None,
    sd: float | None = None,
    alpha: float = 0.05,
    ratio: float = 1.0,
    alternative: Alternative = "two-sided",
) -> float:
    """The probability of detecting `mde` with `n_per_arm` observations in arm A.

    The inverse of `sample_size`: Phi((|mde| sqrt(n) - z_a sd_0) / sd_1), where sd_0 and
    sd_1 are the standard deviations of sqrt(n) times the difference under "no effect"
    and under the effect.
    """
    from scipy.special import ndtr

    n = check_positive_int(n_per_arm, "n_per_arm")
    plan = _Plan(mde, baseline_rate, sd, alpha, ratio, alternative)
    z = (abs(plan.mde) * math.sqrt(n) - plan.z_alpha * plan.null_sd) / plan.alternative_sd
    return float(ndtr(z))


class _Plan:
    """The validated inputs of a plan, as the standard deviations both formulas share."""

    def __init__(
        self,
        mde: float,
        baseline_rate: float | None,
        sd: float | None,
        alpha: float,
        ratio: float,
        alternative: str,
    ) -> None:
        from scipy.special import ndtri

        side = check_alternative(alternative)
        level = check_probability(alpha, "alpha")
        self.mde = _check_mde(mde, side)
        r = check_positive(ratio, "ratio")
        self.z_alpha = float(ndtri(1.0 - level / 2.0 if side == "two-sided" else 1.0 - level))
        if sd is not None and baseline_rate is None:
            spread = check_positive(sd, "sd")
            self.null_sd = self.alternative_sd = spread * math.sqrt(1.0 + 1.0 / r)
            return
        if baseline_rate is None or sd is not None:
            raise InvalidInput(
                "pass either baseline_rate (for a difference in rates) or sd (for a "
                "difference in means), not both and not neither"
            )
        p_a = check_probability(baseline_rate, "baseline_rate")
        p_b = p_a + self.mde
        if not 0.0 <= p_b <= 1.0:
            raise InvalidInput(
                f"baseline_rate + mde = {p_b:g} is not a rate; mde is the absolute change "
                "in rate (0.01 for one percentage point)"
            )
        pooled = (p_a + r * p_b) / (1.0 + r)
        self.null_sd = math.sqrt(pooled * (1.0 - pooled) * (1.0 + 1.0 / r))
        self.alternative_sd = math.sqrt(p_a * (1.0 - p_a) + p_b * (1.0 - p_b) / r)


def _check_mde(mde: float, alternative: str) -> float:
    if isinstance(mde, bool) or not isinstance(mde, int | float | np.integer | np.floating):
        raise InvalidInput(f"mde must be a number (B minus A); got {mde!r}")
    value = float(mde)
    if not math.isfinite(value) or value == 0.0:
        raise InvalidInput(f"mde must be a finite, nonzero effect (B minus A); got {mde}")
    if alternative == "greater" and value < 0.0:
        raise InvalidInput(f"alternative='greater' detects an increase: mde must be > 0; got {mde}")
    if alternative == "less" and value > 0.0:
        raise InvalidInput(f"alternative='less' detects a decrease: mde must be < 0; got {mde}")
    return value
