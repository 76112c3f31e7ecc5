"""Mergeable summaries that stay small whatever the row count.

`QuantileSketch` is a KLL sketch (Karnin, Lang, Liberty 2016): level h holds values of
weight 2**h, sorted; a level over its capacity is compacted by keeping every other value
(odd or even positions, by a seeded coin) and promoting them one level up. A compaction at
level h moves the estimated rank of any point by 0 or ±2**h, so the sketch records how many
compactions each level had and states its own error from that history (`error_bound`).

The HyperLogLog registers and the reservoir merge serve the category counts and samples of
a column profile.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    import numpy.typing as npt

    Floats = npt.NDArray[np.float64]

T = TypeVar("T")

_SHRINK = 2 / 3  # capacity ratio between a level and the one above it (KLL's c)
_MIN_CAPACITY = 2
_MASK64 = (1 << 64) - 1
HLL_BITS = 10  # 1,024 registers: about 3.3 % standard error on the distinct count
_HLL_REGISTERS = 1 << HLL_BITS


@dataclass(frozen=True)
class QuantileSketch:
    """A KLL quantile sketch of `n` numbers; exact while `n <= k`.

    `levels[h]` holds sorted retained values of weight 2**h; `compactions[h]` counts the
    compactions level h has had, which is what `error_bound` is computed from.
    """

    k: int
    n: int
    levels: tuple[tuple[float, ...], ...]
    compactions: tuple[int, ...]
    seed: int

    @classmethod
    def empty(cls, k: int = 200, *, seed: int = 0) -> QuantileSketch:
        if k < _MIN_CAPACITY:
            raise InvalidInput(f"sketch k must be at least {_MIN_CAPACITY}, got {k}")
        return cls(k=k, n=0, levels=((),), compactions=(0,), seed=seed & _MASK64)

    @classmethod
    def from_values(cls, values: Any, *, k: int = 200, seed: int = 0) -> QuantileSketch:
        """Sketch an array of numbers in one pass (sorted once, then compacted in bulk)."""
        array = np.asarray(values, dtype=np.float64).ravel()
        if np.isnan(array).any():
            raise InvalidInput("a quantile sketch takes numbers only: drop NaN values first")
        empty = cls.empty(k, seed=seed)
        return _build(k, empty.seed, [np.sort(array)], [0])

    @property
    def retained(self) -> int:
        """How many values the sketch keeps (about k, at most about 3k)."""
        return sum(len(level) for level in self.levels)

    def update(self, values: Any) -> QuantileSketch:
        """The sketch of these values and the ones already sketched."""
        return self.merge(QuantileSketch.from_values(values, k=self.k, seed=_mix(self.seed, 1)))

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """The sketch of both inputs: levels are combined, then compacted to capacity."""
        height = max(len(self.levels), len(other.levels))
        levels: list[Floats] = []
        compactions: list[int] = []
        for h in range(height):
            mine = self.levels[h] if h < len(self.levels) else ()
            theirs = other.levels[h] if h < len(other.levels) else ()
            levels.append(np.sort(np.array(mine + theirs, dtype=np.float64)))
            compactions.append(_at(self.compactions, h) + _at(other.compactions, h))
        return _build(
            min(self.k, other.k),
            _mix(self.seed, other.seed),
            levels,
            compactions,
            n=self.n + other.n,
        )

    def rank(self, x: float) -> float:
        """Estimated fraction of the values that are <= x (NaN for an empty sketch)."""
        return float(self.cdf([x])[0])

    def cdf(self, xs: Any) -> Floats:
        """`rank` of each of `xs`, vectorised."""
        points = np.asarray(xs, dtype=np.float64)
        if self.n == 0:
            return np.full(points.shape, np.nan)
        weight = np.zeros(points.shape, dtype=np.float64)
        for h, level in enumerate(self.levels):
            if level:
                found = np.searchsorted(np.asarray(level), points, side="right")
                weight += found * float(1 << h)
        return weight / self.n

    def quantile(self, q: float) -> float:
        """A value v with fraction(< v) <= q + eps and fraction(<= v) >= q - eps."""
        return float(self.quantiles([q])[0])

    def quantiles(self, qs: Any) -> Floats:
        """`quantile` of each of `qs`, vectorised."""
        probabilities = np.asarray(qs, dtype=np.float64)
        if np.isnan(probabilities).any() or (probabilities < 0).any() or (probabilities > 1).any():
            raise InvalidInput("quantile levels must be between 0 and 1")
        if self.n == 0:
            return np.full(probabilities.shape, np.nan)
        values, weights = self.weighted()
        cumulative = np.cumsum(weights)
        # q * n carries rounding error: 0.3 * 10 is 3.0000000000000004, which must mean 3.
        target = np.ceil(probabilities * self.n * (1 - 1e-12))
        index = np.searchsorted(cumulative, target, side="left")
        return values[np.minimum(index, len(values) - 1)]

    def weighted(self) -> tuple[Floats, npt.NDArray[np.int64]]:
        """The retained values, sorted, and their weights (which sum to n)."""
        values = np.concatenate([np.asarray(level, dtype=np.float64) for level in self.levels])
        weights = np.concatenate(
            [np.full(len(level), 1 << h, dtype=np.int64) for h, level in enumerate(self.levels)]
        )
        order = np.argsort(values, kind="stable")
        return values[order], weights[order]

    def error_bound(self, confidence: float = 0.99) -> float:
        """The normalized rank error of one `rank` query, at this confidence.

        Each compaction at level h shifts a rank by 0 or ±2**h with a fair coin, so the
        error is at most D = sum(c_h * 2**h) / n (always: `confidence=1.0`) and, by
        Hoeffding's inequality, at most sqrt(2 ln(2 / (1 - confidence)) sum(c_h 4**h)) / n
        with that probability. The smaller of the two is returned; 0.0 while exact. The
        probabilistic bound assumes merged sketches were built with different seeds.
        """
        if not 0 < confidence <= 1:
            raise InvalidInput(f"confidence must be in (0, 1], got {confidence}")
        if self.n == 0:
            return 0.0
        worst = sum(c << h for h, c in enumerate(self.compactions)) / self.n
        if confidence >= 1:
            return worst
        variance = sum(c << (2 * h) for h, c in enumerate(self.compactions))
        likely = math.sqrt(2 * math.log(2 / (1 - confidence)) * variance) / self.n
        return min(worst, likely)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: each level is base64 of little-endian float64 (exact, ~11 chars each)."""
        return {
            "k": self.k,
            "n": self.n,
            "seed": self.seed,
            "levels": [pack_floats(level) for level in self.levels],
            "compactions": list(self.compactions),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuantileSketch:
        return cls(
            k=int(data["k"]),
            n=int(data["n"]),
            seed=int(data["seed"]),
            levels=tuple(unpack_floats(level) for level in data["levels"]),
            compactions=tuple(int(c) for c in data["compactions"]),
        )


def _build(
    k: int, seed: int, levels: list[Floats], compactions: list[int], n: int | None = None
) -> QuantileSketch:
    total = sum(len(level) for level in levels) if n is None else n
    _compress(levels, compactions, k, seed)
    return QuantileSketch(
        k=k,
        n=total,
        levels=tuple(tuple(level.tolist()) for level in levels),
        compactions=tuple(compactions),
        seed=seed,
    )


def _capacity(h: int, height: int, k: int) -> int:
    return max(_MIN_CAPACITY, math.ceil(k * _SHRINK ** (height - 1 - h)))


def _compress(levels: list[Floats], compactions: list[int], k: int, seed: int) -> None:
    """Compact the lowest over-full level until every level fits its capacity."""
    while True:
        height = len(levels)
        full = [h for h in range(height) if len(levels[h]) > _capacity(h, height, k)]
        if not full:
            return
        h = full[0]
        if h + 1 == height:
            levels.append(np.empty(0, dtype=np.float64))
            compactions.append(0)
        level = levels[h]
        even = len(level) - len(level) % 2
        promoted = level[_coin(seed, h, compactions[h]) : even : 2]
        levels[h] = level[even:]  # the largest value waits here when the count is odd
        above = levels[h + 1]
        levels[h + 1] = promoted if not len(above) else np.sort(np.concatenate([above, promoted]))
        compactions[h] += 1


def _at(values: tuple[int, ...], index: int) -> int:
    return values[index] if index < len(values) else 0


def _splitmix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _mix(*parts: int) -> int:
    """A 64-bit seed derived from integers; used for coins and child seeds."""
    x = 0
    for part in parts:
        x = _splitmix(x ^ (part & _MASK64))
    return x


def _coin(seed: int, level: int, count: int) -> int:
    return _mix(seed, level, count) & 1


def derive_seed(seed: int, *parts: int) -> int:
    """A seed for a part (a column, a chunk) derived from the profile's seed."""
    return _mix(seed, *parts) >> 1  # 63 bits: fits numpy seeds and JSON integers


def pack_floats(values: Sequence[float]) -> str:
    return base64.b64encode(np.asarray(values, dtype="<f8").tobytes()).decode("ascii")


def unpack_floats(text: str) -> tuple[float, ...]:
    return tuple(np.frombuffer(base64.b64decode(text), dtype="<f8").tolist())


def hll_registers(keys: Iterable[str]) -> bytes:
    """HyperLogLog registers of distinct text values (pandas' 64-bit hash of the UTF-8)."""
    import pandas as pd

    registers = np.zeros(_HLL_REGISTERS, dtype=np.uint8)
    texts = keys if isinstance(keys, pd.Index) else pd.Index(list(keys), dtype=object)
    if not len(texts):
        return registers.tobytes()
    hashes = pd.util.hash_pandas_object(texts, index=False).to_numpy().astype(np.uint64)
    index = (hashes >> np.uint64(64 - HLL_BITS)).astype(np.intp)
    rest = hashes & np.uint64((1 << (64 - HLL_BITS)) - 1)
    rho = (64 - HLL_BITS) - _bit_length(rest) + 1
    np.maximum.at(registers, index, rho.astype(np.uint8))
    return registers.tobytes()


def _bit_length(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    length = np.zeros(values.shape, dtype=np.int64)
    rest = values.copy()
    for shift in (32, 16, 8, 4, 2, 1):
        big = rest >= np.uint64(1 << shift)
        length[big] += shift
        rest[big] >>= np.uint64(shift)
    return length + (rest > 0)


def hll_union(a: bytes, b: bytes) -> bytes:
    return np.maximum(np.frombuffer(a, np.uint8), np.frombuffer(b, np.uint8)).tobytes()


def hll_estimate(registers: bytes) -> float:
    """The HyperLogLog estimate with linear counting for small counts."""
    values = np.frombuffer(registers, dtype=np.uint8).astype(np.float64)
    m = float(len(values))
    alpha = 0.7213 / (1 + 1.079 / m)
    raw = alpha * m * m / float(np.sum(2.0**-values))
    zeros = int(np.count_nonzero(values == 0))
    if raw <= 2.5 * m and zeros:
        return m * math.log(m / zeros)
    return raw


def merge_samples(
    a: Sequence[T],
    a_population: int,
    b: Sequence[T],
    b_population: int,
    size: int,
    rng: np.random.Generator,
) -> list[T]:
    """A uniform sample (without replacement) of the union, from uniform samples of each.

    How many come from `a` follows the hypergeometric law of drawing `size` from the
    union; a uniform subset of a uniform sample is again uniform.
    """
    total = a_population + b_population
    wanted = min(size, total)
    if wanted == 0:
        return []
    if total < 10**9:
        from_a = int(rng.hypergeometric(a_population, b_population, wanted))
    else:  # numpy's hypergeometric stops at 10**9; the binomial is its limit
        from_a = int(rng.binomial(wanted, a_population / total))
    from_a = min(max(from_a, wanted - len(b)), len(a))
    picked_a = rng.choice(len(a), size=from_a, replace=False).tolist() if from_a else []
    picked_b = (
        rng.choice(len(b), size=wanted - from_a, replace=False).tolist() if wanted > from_a else []
    )
    return [a[i] for i in picked_a] + [b[i] for i in picked_b]
