"""Guardrails: is the candidate no worse than the primary by more than a limit, with evidence?

Each guardrail gives a verdict of pass, fail, inconclusive or skipped, with its value, the
interval of that value where one exists, and the limit. The rule for a verdict:

- fail: the evidence puts the value beyond the limit: the interval's lower end is above it.
  A fail needs no minimum sample, since the interval already says how sure it is: a
  candidate failing every request is rolled back after a handful of them.
- pass: at least `min_samples` on each side, and the value within the limit — the upper end
  of the interval for rates and metrics, the estimate itself for the p99 ratio and the shift.
- inconclusive: anything else, including no data. An inconclusive guardrail never passes.
- skipped: only the metric guardrail, while no prediction of the deployment has a label
  ("the label metric once feedback exists").

The intervals are fixed-horizon ones at confidence 1 - alpha (Newcombe for rates, Welch for
rewards, order statistics for the p99, a seeded bootstrap for the shift), looked at on every
evaluation, so repeated looks make a false verdict somewhat likelier than alpha.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from modelyard.stats import chi2_test, jensen_shannon, two_proportion_test, welch_t_test

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from modelyard.rollout._evaluate import VariantStats

Verdict = Literal["pass", "fail", "inconclusive", "skipped"]
_SHIFT_RESAMPLES = 500


@dataclass(frozen=True)
class Guardrail:
    """One guardrail's verdict at one look, with what it was judged on."""

    name: str
    verdict: Verdict
    value: float | None
    low: float | None
    high: float | None
    limit: float
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict,
            "value": self.value,
            "interval": [self.low, self.high],
            "limit": self.limit,
            "reason": self.reason,
            **self.details,
        }


def error_rate_guardrail(
    primary: VariantStats, candidate: VariantStats, limit: float, alpha: float, min_samples: int
) -> Guardrail:
    """The candidate's error rate minus the primary's, against `limit`."""
    name = "error_rate_increase"
    if not primary.requests or not candidate.requests:
        return _nothing(name, limit, _counts(primary, candidate, "requests"), "requests")
    test = two_proportion_test(
        primary.errors, primary.requests, candidate.errors, candidate.requests,
        confidence=1.0 - alpha,
    )  # fmt: skip
    details = {
        "p_value": test.p_value,
        "errors": [primary.errors, candidate.errors],
        "requests": [primary.requests, candidate.requests],
    }
    text = (
        f"error rate {_pct(candidate.error_rate)} vs {_pct(primary.error_rate)}, "
        f"increase {_pct(test.effect)} [{_pct(test.low)}, {_pct(test.high)}], limit {_pct(limit)}"
    )
    counts = (primary.requests, candidate.requests)
    return _judge(name, test.effect, test.low, test.high, limit, text, counts, min_samples, details)


def metric_guardrail(
    primary: VariantStats,
    candidate: VariantStats,
    limit: float,
    alpha: float,
    min_samples: int,
    labels_seen: int,
) -> Guardrail:
    """The primary's metric minus the candidate's (a drop), against `limit`."""
    name = f"{primary.metric}_drop"
    if labels_seen == 0:
        return Guardrail(
            name, "skipped", None, None, None, limit,
            "no prediction of this deployment has a label yet; judged once feedback exists",
        )  # fmt: skip
    if primary.labelled < 2 or candidate.labelled < 2:
        return _nothing(name, limit, _counts(primary, candidate, "labelled"), "labelled answers")
    a, b = primary.outcomes, candidate.outcomes
    if primary.metric == "accuracy":
        test = two_proportion_test(
            int(a.sum()), a.size, int(b.sum()), b.size, confidence=1.0 - alpha
        )
    else:
        test = welch_t_test(a, b, confidence=1.0 - alpha)
    drop, low, high = -test.effect, -test.high, -test.low
    details = {"p_value": test.p_value, "labelled": [a.size, b.size], "method": test.method}
    text = (
        f"{primary.metric} {_num(candidate.metric_value)} vs {_num(primary.metric_value)}, "
        f"drop {_num(drop)} [{_num(low)}, {_num(high)}], limit {_num(limit)}"
    )
    counts = (a.size, b.size)
    return _judge(name, drop, low, high, limit, text, counts, min_samples, details)


def latency_guardrail(
    primary: VariantStats, candidate: VariantStats, limit: float, alpha: float, min_samples: int
) -> Guardrail:
    """The candidate's p99 latency over the primary's, against `limit`."""
    name = "p99_latency_ratio"
    x, y = primary.latencies, candidate.latencies
    if not x.size or not y.size:
        return _nothing(name, limit, {primary.name: x.size, candidate.name: y.size}, "answers")
    # each p99 at 1 - alpha/2, so the ratio's interval holds at 1 - alpha at least
    low_x, high_x = quantile_interval(x, 0.99, 1.0 - alpha / 2.0)
    low_y, high_y = quantile_interval(y, 0.99, 1.0 - alpha / 2.0)
    p99_x, p99_y = float(np.quantile(x, 0.99)), float(np.quantile(y, 0.99))
    ratio = _ratio(p99_y, p99_x)
    low, high = _ratio(low_y, high_x), _ratio(high_y, low_x)
    details = {
        "p99_ms": [p99_x, p99_y],
        "p99_intervals_ms": [[low_x, high_x], [low_y, high_y]],
        "answers": [x.size, y.size],
    }
    text = (
        f"p99 {p99_y:.4g} ms vs {p99_x:.4g} ms, ratio {ratio:.3g} "
        f"[{low:.3g}, {high:.3g}], limit {limit:g}"
    )
    if low > limit:
        return Guardrail(name, "fail", ratio, low, high, limit, text, details)
    if min(x.size, y.size) < min_samples:
        return _few(name, ratio, low, high, limit, text, (x.size, y.size), min_samples, details)
    verdict: Verdict = "pass" if ratio <= limit else "inconclusive"
    return Guardrail(name, verdict, ratio, low, high, limit, text, details)


def shift_guardrail(
    primary: VariantStats, candidate: VariantStats, limit: float, alpha: float, min_samples: int
) -> Guardrail:
    """Jensen–Shannon distance between the predicted classes, against `limit`."""
    name = "prediction_shift"
    classes = sorted(set(primary.predicted) | set(candidate.predicted))
    a = np.asarray([primary.predicted.get(c, 0) for c in classes], dtype="float64")
    b = np.asarray([candidate.predicted.get(c, 0) for c in classes], dtype="float64")
    if a.sum() == 0 or b.sum() == 0:
        seen = {primary.name: int(a.sum()), candidate.name: int(b.sum())}
        return _nothing(name, limit, seen, "answers")
    distance = jensen_shannon(a, b)
    low, high = shift_interval(a, b, 1.0 - alpha)
    p_value = chi2_test(a, b).p_value
    details = {"chi2_p_value": p_value, "answers": [int(a.sum()), int(b.sum())]}
    text = f"Jensen–Shannon distance {distance:.3g} [{low:.3g}, {high:.3g}], limit {limit:g}"
    if low > limit:
        return Guardrail(name, "fail", distance, low, high, limit, text, details)
    counts = (int(a.sum()), int(b.sum()))
    if min(counts) < min_samples:
        return _few(name, distance, low, high, limit, text, counts, min_samples, details)
    verdict: Verdict = "pass" if distance <= limit else "inconclusive"
    return Guardrail(name, verdict, distance, low, high, limit, text, details)


def shift_interval(
    a: NDArray[np.float64], b: NDArray[np.float64], confidence: float
) -> tuple[float, float]:
    """Percentile bootstrap interval of the Jensen–Shannon distance between two count
    vectors, each resampled from its own frequencies; seeded, so the same counts give the
    same interval."""
    rng = np.random.default_rng(0)
    n_a, n_b = int(a.sum()), int(b.sum())
    draws_a = rng.multinomial(n_a, a / n_a, size=_SHIFT_RESAMPLES)
    draws_b = rng.multinomial(n_b, b / n_b, size=_SHIFT_RESAMPLES)
    distances = [jensen_shannon(x, y) for x, y in zip(draws_a, draws_b, strict=True)]
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(distances, [tail, 1.0 - tail])
    return float(low), float(high)


def quantile_interval(
    values: NDArray[np.float64], q: float, confidence: float
) -> tuple[float, float]:
    """Distribution-free interval of the `q` quantile from order statistics (infinite ends
    where the sample is too small for the confidence)."""
    from scipy.stats import binom

    ordered = np.sort(values)
    n = ordered.size
    tail = (1.0 - confidence) / 2.0
    lower_rank = int(binom.ppf(tail, n, q))  # P(Bin(n, q) < rank) <= tail
    upper_rank = int(binom.ppf(1.0 - tail, n, q)) + 1
    low = float(ordered[lower_rank - 1]) if lower_rank >= 1 else -math.inf
    high = float(ordered[upper_rank - 1]) if upper_rank <= n else math.inf
    return low, high


def _judge(
    name: str,
    value: float,
    low: float,
    high: float,
    limit: float,
    text: str,
    counts: tuple[int, int],
    min_samples: int,
    details: dict[str, Any],
) -> Guardrail:
    if low > limit:
        return Guardrail(name, "fail", value, low, high, limit, text, details)
    if min(counts) < min_samples:
        return _few(name, value, low, high, limit, text, counts, min_samples, details)
    if high <= limit:
        return Guardrail(name, "pass", value, low, high, limit, text, details)
    return Guardrail(
        name, "inconclusive", value, low, high, limit, f"{text}: the interval holds the limit",
        details,
    )  # fmt: skip


def _few(
    name: str,
    value: float,
    low: float | None,
    high: float | None,
    limit: float,
    text: str,
    counts: tuple[int, int],
    min_samples: int,
    details: dict[str, Any],
) -> Guardrail:
    return Guardrail(
        name, "inconclusive", value, low, high, limit,
        f"{text}: {counts[0]} and {counts[1]} samples, {min_samples} needed per variant",
        details,
    )  # fmt: skip


def _nothing(name: str, limit: float, counts: dict[str, int], what: str) -> Guardrail:
    shown = ", ".join(f"{variant} {n}" for variant, n in counts.items())
    return Guardrail(
        name, "inconclusive", None, None, None, limit, f"not enough {what} yet ({shown})"
    )


def _counts(primary: VariantStats, candidate: VariantStats, attribute: str) -> dict[str, int]:
    return {
        primary.name: getattr(primary, attribute),
        candidate.name: getattr(candidate, attribute),
    }


def _ratio(a: float, b: float) -> float:
    if b <= 0.0 or math.isinf(b):
        return math.inf if a > 0.0 and b <= 0.0 else (1.0 if a == b == 0.0 else 0.0)
    return a / b


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100.0 * value:.3g} %"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
