"""Thompson sampling: route the next request to each arm as often as it is likely the best.

Each arm's mean reward gets a posterior distribution; one draw per arm picks the arm (which
chooses every arm with exactly its probability of being best), and many draws estimate
those probabilities, which a rollout reports as evidence and can stop on (one arm above
0.95, say). Draws come from the caller's `numpy.random.Generator`, so a seed replays them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from modelyard.errors import InvalidInput
from modelyard.stats._checks import (
    as_float_array,
    check_generator,
    check_positive,
    check_positive_int,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

_BATCH_VALUES = 1_000_000  # posterior draws held at once (8 MB)


@dataclass(frozen=True)
class ArmChoice:
    """The arm chosen for the next request and each arm's probability of being best."""

    arm: int
    probabilities: tuple[float, ...]
    method: str

    def to_dict(self) -> dict[str, object]:
        """The fields as plain Python values."""
        return dataclasses.asdict(self)


def thompson_beta(
    successes: ArrayLike,
    failures: ArrayLike,
    *,
    rng: np.random.Generator,
    draws: int = 10_000,
    prior: tuple[float, float] = (1.0, 1.0),
) -> ArmChoice:
    """Thompson sampling for rates (clicks, conversions, correct predictions).

    Arm i's rate has the posterior Beta(prior[0] + successes[i], prior[1] + failures[i]);
    the default prior Beta(1, 1) is uniform. Counts may be fractional (discounted).
    Probabilities of being best are Monte Carlo estimates from `draws` joint draws (their
    standard error is at most 0.5 / sqrt(draws)); ties go to the lower arm.
    """
    wins = _as_arm_values(successes, "successes", minimum=0.0)
    losses = _as_arm_values(failures, "failures", minimum=0.0)
    _same_arms(wins, losses, "failures")
    a0, b0 = _beta_prior(prior)
    generator = check_generator(rng)

    def sample(rows: int) -> NDArray[np.float64]:
        return generator.beta(a0 + wins, b0 + losses, size=(rows, wins.size))

    return _choose(sample, wins.size, check_positive_int(draws, "draws"), "Thompson, Beta")


def thompson_gaussian(
    means: ArrayLike,
    variances: ArrayLike,
    counts: ArrayLike,
    *,
    rng: np.random.Generator,
    draws: int = 10_000,
    prior: tuple[float, float] = (0.0, math.inf),
) -> ArmChoice:
    """Thompson sampling for continuous rewards (revenue, negative latency, a score).

    Per arm: the mean reward, the variance of one reward and the number of rewards. Arm
    i's mean has a normal posterior: with the prior N(m0, v0) on it, precision
    1/v0 + n_i / variance_i and mean (m0/v0 + n_i mean_i / variance_i) / precision. The
    default prior is flat (v0 = inf), which needs at least one reward per arm; an arm with
    variance 0 is known exactly. Ties go to the lower arm.
    """
    centers = _as_arm_values(means, "means")
    spreads = _as_arm_values(variances, "variances", minimum=0.0)
    sizes = _as_arm_values(counts, "counts", minimum=0.0)
    _same_arms(centers, spreads, "variances")
    _same_arms(centers, sizes, "counts")
    loc, scale = _normal_posterior(centers, spreads, sizes, prior)
    generator = check_generator(rng)

    def sample(rows: int) -> NDArray[np.float64]:
        return generator.normal(loc, scale, size=(rows, loc.size))

    return _choose(sample, loc.size, check_positive_int(draws, "draws"), "Thompson, normal")


def _choose(
    sample: Callable[[int], NDArray[np.float64]], arms: int, draws: int, method: str
) -> ArmChoice:
    wins = np.zeros(arms, dtype=np.int64)
    batch = max(1, _BATCH_VALUES // arms)
    chosen = -1
    for start in range(0, draws, batch):
        values = sample(min(batch, draws - start))
        best = np.argmax(values, axis=1)
        if chosen < 0:
            chosen = int(best[0])  # the Thompson draw: the first joint draw
        wins += np.bincount(best, minlength=arms)
    probabilities = tuple(float(w) / draws for w in wins)
    return ArmChoice(chosen, probabilities, method)


def _normal_posterior(
    means: NDArray[np.float64],
    variances: NDArray[np.float64],
    counts: NDArray[np.float64],
    prior: tuple[float, float],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    try:
        m0, v0 = (float(value) for value in prior)
    except (TypeError, ValueError):
        raise InvalidInput(f"prior must be (mean, variance); got {prior!r}") from None
    if not math.isfinite(m0) or math.isnan(v0) or v0 <= 0.0:
        raise InvalidInput(
            f"prior must be (finite mean, variance > 0, inf for a flat prior); got {prior!r}"
        )
    empty = np.flatnonzero(counts == 0)
    if empty.size and math.isinf(v0):
        raise InvalidInput(
            f"arms {empty[:5].tolist()} have no rewards yet; a flat prior cannot draw for "
            "them: pass prior=(mean, variance) with a finite variance"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        data_precision = np.where(counts > 0, counts / variances, 0.0)  # inf when variance 0
        precision = data_precision + (0.0 if math.isinf(v0) else 1.0 / v0)
        prior_term = 0.0 if math.isinf(v0) else m0 / v0
        loc = np.where(
            np.isinf(data_precision), means, (prior_term + data_precision * means) / precision
        )
        scale = np.where(np.isinf(precision), 0.0, 1.0 / np.sqrt(precision))
    return loc, scale


def _beta_prior(prior: tuple[float, float]) -> tuple[float, float]:
    try:
        a0, b0 = (float(value) for value in prior)
    except (TypeError, ValueError):
        raise InvalidInput(f"prior must be (alpha, beta), such as (1, 1); got {prior!r}") from None
    return check_positive(a0, "prior alpha"), check_positive(b0, "prior beta")


def _as_arm_values(
    values: ArrayLike, name: str, *, minimum: float | None = None
) -> NDArray[np.float64]:
    array = as_float_array(values, name)
    if array.size == 0:
        raise InvalidInput(f"{name} is empty; pass one value per arm")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise InvalidInput(f"{name} has NaN or infinite values at arms {bad[:5].tolist()}")
    if minimum is not None and bool(np.any(array < minimum)):
        raise InvalidInput(f"{name} must be >= {minimum:g}; got {array.tolist()[:10]}")
    return array


def _same_arms(first: NDArray[np.float64], other: NDArray[np.float64], name: str) -> None:
    if first.size != other.size:
        raise InvalidInput(
            f"{name} has {other.size} arms but the first argument has {first.size}; pass one "
            "value per arm"
        )
