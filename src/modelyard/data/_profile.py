"""Data profiles: a compact, mergeable, JSON-serializable summary of every column.

A profile is a few KB per column whatever the row count, and `a.merge(b)` is the profile
of the rows of both (exactly for counts, missing, min and max; to rounding for mean and
variance; within the sketch's stated rank error for quantiles), so windows of the
prediction log and partitions of a Dask job combine.

Kinds: numbers (ints, floats and bools as 0/1) are "numeric"; datetimes are "datetime",
summarised as float epoch nanoseconds (UTC); text, object and category columns, and any
column named in `categorical=`, are "categorical", their values compared as text (`str`,
so a mixed object column is categorical and 1 and "1" are one value); anything else
(timedelta, complex, period, ...) is "other": counted, sampled as text, not summarised.
An empty frame gives an empty profile (rows=0), the identity of `merge`.
"""

from __future__ import annotations

import base64
import heapq
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import orjson

from modelyard.data._sketch import (
    QuantileSketch,
    derive_seed,
    hll_estimate,
    hll_registers,
    hll_union,
    merge_samples,
    pack_floats,
    unpack_floats,
)
from modelyard.errors import InvalidInput

if TYPE_CHECKING:
    import os

    import numpy.typing as npt
    import pandas as pd

Kind = Literal["numeric", "categorical", "datetime", "other"]
FORMAT = 1
_OPTIONS = frozenset({"columns", "categorical", "top_k", "sample_size", "sketch_k", "seed"})


@dataclass(frozen=True)
class ColumnProfile:
    """One column: counts for every kind, moments and a quantile sketch for numbers and
    datetimes, top-k value counts for categories, and a uniform sample of values.

    `count` is the rows seen and `missing` the null ones; `infinite` counts ±inf, kept out of
    min/max/mean/variance/quantiles. `variance` is the population variance (ddof=0).
    `counts` lists the `top_k` most frequent values; `other` counts the rest. Counts are
    exact while the profile lists every value (`other == 0`); after merging truncated
    profiles a listed count may fall short by at most `count_error`, and an unlisted value
    occurs at most `count_error` times. `distinct_estimate` is exact from one `profile` call
    and while every value is listed, else a HyperLogLog estimate (about 3 % standard error)
    never below the number listed. `sample` is a uniform sample without replacement of the
    non-missing values (finite ones for numbers), at most `sample_size`.
    """

    name: str
    kind: Kind
    dtype: str
    count: int
    missing: int
    infinite: int = 0
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    variance: float | None = None
    quantiles: QuantileSketch | None = None
    counts: dict[str, int] = field(default_factory=dict)
    other: int = 0
    count_error: int = 0
    distinct_estimate: int | None = None
    distinct_registers: bytes | None = None
    top_k: int = 50
    sample: tuple[float, ...] | tuple[str, ...] = ()
    sample_size: int = 256

    @property
    def valid(self) -> int:
        """Rows holding a value the summaries describe (not missing, not infinite)."""
        return self.count - self.missing - self.infinite

    def frequency(self, value: object) -> float:
        """Share of the non-missing values equal to `value` (as text); 0.0 if not listed."""
        if self.kind != "categorical":
            raise InvalidInput(
                f"column {self.name!r} is {self.kind}: frequency() needs a categorical column; "
                f"profile it with categorical=[{self.name!r}]"
            )
        present = self.count - self.missing
        return self.counts.get(str(value), 0) / present if present else 0.0

    def histogram(self, edges: Sequence[float] | npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Approximate counts per bin [e0, e1), ..., [e_{m-1}, e_m] from the sketch.

        Each bin's count is within 2 * quantiles.error_bound() * valid of the truth.
        """
        if self.quantiles is None:
            raise InvalidInput(
                f"column {self.name!r} is {self.kind}: histogram() needs a numeric or "
                "datetime column"
            )
        bins = np.asarray(edges, dtype=np.float64)
        if bins.ndim != 1 or len(bins) < 2 or np.isnan(bins).any() or (np.diff(bins) < 0).any():
            raise InvalidInput("histogram edges must be at least two increasing numbers")
        values, weights = self.quantiles.weighted()
        index = np.searchsorted(bins, values, side="right") - 1
        index[values == bins[-1]] = len(bins) - 2  # the last bin is closed on the right
        inside = (index >= 0) & (index < len(bins) - 1)
        counts = np.bincount(index[inside], weights=weights[inside], minlength=len(bins) - 1)
        return counts.astype(np.int64)

    def merge(self, other: ColumnProfile, *, seed: int = 0) -> ColumnProfile:
        """This column's profile over the rows of both; `seed` drives the sample merge."""
        if other.name != self.name or other.kind != self.kind:
            raise InvalidInput(
                f"cannot merge column {self.name!r} ({self.kind}) with column "
                f"{other.name!r} ({other.kind}); profile both with the same categorical="
            )
        rng = np.random.default_rng(seed)
        size = min(self.sample_size, other.sample_size)
        mine: Sequence[Any] = self.sample
        sample = merge_samples(mine, self.valid, other.sample, other.valid, size, rng)
        merged = replace(
            self,
            dtype=_common_dtype(self.dtype, other.dtype),
            count=self.count + other.count,
            missing=self.missing + other.missing,
            infinite=self.infinite + other.infinite,
            sample=tuple(sample),
            sample_size=size,
        )
        if self.kind in ("numeric", "datetime"):
            return _merge_numbers(merged, self, other)
        if self.kind == "categorical":
            return _merge_categories(merged, self, other)
        return merged

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; numeric samples and sketch levels are base64 of float64 (exact)."""
        text = self.kind in ("categorical", "other")
        registers = self.distinct_registers
        return {
            "name": self.name,
            "kind": self.kind,
            "dtype": self.dtype,
            "count": self.count,
            "missing": self.missing,
            "infinite": self.infinite,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "variance": self.variance,
            "quantiles": None if self.quantiles is None else self.quantiles.to_dict(),
            "counts": self.counts,
            "other": self.other,
            "count_error": self.count_error,
            "distinct_estimate": self.distinct_estimate,
            "distinct_registers": None
            if registers is None
            else base64.b64encode(registers).decode(),
            "top_k": self.top_k,
            "sample": list(self.sample) if text else pack_floats(self.sample),  # type: ignore[arg-type]
            "sample_size": self.sample_size,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnProfile:
        text = data["kind"] in ("categorical", "other")
        sketch, registers = data["quantiles"], data["distinct_registers"]
        return cls(
            name=data["name"],
            kind=data["kind"],
            dtype=data["dtype"],
            count=data["count"],
            missing=data["missing"],
            infinite=data["infinite"],
            min=data["min"],
            max=data["max"],
            mean=data["mean"],
            variance=data["variance"],
            quantiles=None if sketch is None else QuantileSketch.from_dict(sketch),
            counts={str(k): int(v) for k, v in data["counts"].items()},
            other=data["other"],
            count_error=data["count_error"],
            distinct_estimate=data["distinct_estimate"],
            distinct_registers=None if registers is None else base64.b64decode(registers),
            top_k=data["top_k"],
            sample=tuple(data["sample"]) if text else unpack_floats(data["sample"]),
            sample_size=data["sample_size"],
        )


@dataclass(frozen=True)
class Profile:
    """Per-column profiles of `rows` rows; `seed` makes merges reproducible."""

    rows: int
    columns: dict[str, ColumnProfile]
    seed: int = 0

    def merge(self, other: Profile) -> Profile:
        """The profile of the rows of both: same columns and kinds, or `InvalidInput`."""
        if set(self.columns) != set(other.columns):
            mine = sorted(set(self.columns) - set(other.columns))
            theirs = sorted(set(other.columns) - set(self.columns))
            raise InvalidInput(
                "cannot merge profiles of different columns: only in this one: "
                f"{', '.join(mine) or '-'}; only in the other: {', '.join(theirs) or '-'}; "
                "profile both with the same columns="
            )
        if clash := [
            f"{name} ({column.kind} vs {other.columns[name].kind})"
            for name, column in self.columns.items()
            if column.kind != other.columns[name].kind
        ]:
            raise InvalidInput(
                f"cannot merge profiles whose columns differ in kind: {', '.join(clash)}; "
                "profile both with the same categorical="
            )
        seed = derive_seed(self.seed, other.seed)
        return Profile(
            rows=self.rows + other.rows,
            columns={
                name: column.merge(other.columns[name], seed=derive_seed(seed, _hash(name)))
                for name, column in self.columns.items()
            },
            seed=seed,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "rows": self.rows,
            "seed": self.seed,
            "columns": [column.to_dict() for column in self.columns.values()],
        }

    def to_json(self) -> str:
        return orjson.dumps(self.to_dict()).decode()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        try:
            if data["format"] != FORMAT:
                raise InvalidInput(
                    f"profile format {data['format']} is not {FORMAT}: profile the data again "
                    "with this version of modelyard"
                )
            columns = [ColumnProfile.from_dict(column) for column in data["columns"]]
            return cls(rows=data["rows"], columns={c.name: c for c in columns}, seed=data["seed"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput(
                f"not a modelyard profile ({type(exc).__name__}: {exc}); pass the text "
                "Profile.to_json() wrote"
            ) from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> Profile:
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"not JSON ({exc}); pass the text Profile.to_json() wrote") from exc
        if not isinstance(data, dict):
            raise InvalidInput("not a modelyard profile; pass the text Profile.to_json() wrote")
        return cls.from_dict(data)


def profile(
    data: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    top_k: int = 50,
    sample_size: int = 256,
    sketch_k: int = 200,
    seed: int | None = None,
) -> Profile:
    """Profile the columns of a DataFrame (all, or those named in `columns`)."""
    import pandas as pd

    if not isinstance(data, pd.DataFrame):
        raise InvalidInput(f"profile() takes a pandas DataFrame, not {type(data).__name__}")
    if top_k < 1 or sample_size < 0 or sketch_k < 2:
        raise InvalidInput(
            f"need top_k >= 1, sample_size >= 0 and sketch_k >= 2; got top_k={top_k}, "
            f"sample_size={sample_size}, sketch_k={sketch_k}"
        )
    names = [str(c) for c in data.columns]
    if duplicated := sorted({n for n in names if names.count(n) > 1}):
        raise InvalidInput(f"duplicate column names {', '.join(duplicated)}: rename them first")
    chosen = names if columns is None else [str(c) for c in columns]
    if absent := [c for c in [*chosen, *categorical] if c not in names]:
        raise InvalidInput(
            f"no column(s) {', '.join(absent)} in the frame; its columns: {', '.join(names)}"
        )
    base = _fresh_seed() if seed is None else seed
    frame = data.set_axis(names, axis=1)
    options = {"top_k": top_k, "sample_size": sample_size, "sketch_k": sketch_k}
    return Profile(
        rows=len(frame),
        columns={
            name: _profile_column(
                name,
                frame[name],
                name in categorical,
                np.random.default_rng(derive_seed(base, _hash(name))),
                **options,
            )
            for name in chosen
        },
        seed=base,
    )


def profile_parquet(
    path: str | os.PathLike[str],
    *,
    chunk_rows: int = 100_000,
    dask: str | None = None,
    **options: Any,
) -> Profile:
    """Profile a Parquet file chunk by chunk, merging chunk profiles; `options` as `profile`.

    With `dask="local"` (a LocalCluster of processes) or a scheduler address, each row group
    is profiled on a worker, which must be able to read `path`; the result equals the
    streamed one within the sketch bounds.
    """
    if unknown := sorted(set(options) - _OPTIONS):
        raise InvalidInput(
            f"unknown option(s) {', '.join(unknown)}; the options are {', '.join(sorted(_OPTIONS))}"
        )
    if chunk_rows < 1:
        raise InvalidInput(f"chunk_rows must be at least 1, got {chunk_rows}")
    seed = options.pop("seed", None)
    seed = _fresh_seed() if seed is None else int(seed)
    if dask is None:
        return _profile_row_groups(str(path), None, chunk_rows, seed, options)
    return _profile_on_dask(str(path), dask, chunk_rows, seed, options)


def _profile_row_groups(
    path: str, row_groups: list[int] | None, chunk_rows: int, seed: int, options: dict[str, Any]
) -> Profile:
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as parquet:
        batches = parquet.iter_batches(
            batch_size=chunk_rows, row_groups=row_groups, columns=options.get("columns")
        )
        parts = (
            profile(batch.to_pandas(), seed=derive_seed(seed, i), **options)
            for i, batch in enumerate(batches)
        )
        merged = _merge_all(parts)
        if merged is None:
            schema = parquet.schema_arrow
            empty = schema.empty_table().to_pandas()
            return profile(empty, seed=seed, **options)
        return merged


def _profile_on_dask(
    path: str, address: str, chunk_rows: int, seed: int, options: dict[str, Any]
) -> Profile:
    import pyarrow.parquet as pq
    from distributed import Client, LocalCluster

    with pq.ParquetFile(path) as parquet:
        groups = parquet.num_row_groups
    if groups == 0:
        return _profile_row_groups(path, None, chunk_rows, seed, options)
    cluster = None
    if address == "local":
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
    try:
        with Client(cluster if cluster is not None else address) as client:  # type: ignore[no-untyped-call]
            futures = [
                client.submit(
                    _profile_text, path, i, chunk_rows, derive_seed(seed, i), options, pure=False
                )
                for i in range(groups)
            ]
            texts = client.gather(futures)
    finally:
        if cluster is not None:
            cluster.close()
    merged = _merge_all(Profile.from_json(text) for text in texts)
    assert merged is not None  # at least one row group
    return merged


def _profile_text(
    path: str, group: int, chunk_rows: int, seed: int, options: dict[str, Any]
) -> str:
    """A row group's profile as JSON: what a Dask worker sends back."""
    return _profile_row_groups(path, [group], chunk_rows, seed, options).to_json()


def _merge_all(parts: Iterable[Profile]) -> Profile | None:
    merged: Profile | None = None
    for part in parts:
        merged = part if merged is None else merged.merge(part)
    return merged


def _profile_column(
    name: str,
    series: pd.Series,
    categorical: bool,
    rng: np.random.Generator,
    *,
    top_k: int,
    sample_size: int,
    sketch_k: int,
) -> ColumnProfile:
    kind = _kind(series, categorical)
    base = ColumnProfile(
        name=name,
        kind=kind,
        dtype=str(series.dtype),
        count=len(series),
        missing=0,
        top_k=top_k,
        sample_size=sample_size,
    )
    if kind in ("numeric", "datetime"):
        return _numbers(base, series, rng, sketch_k)
    if kind == "categorical":
        return _categories(base, series, rng)
    present = series.notna().to_numpy()
    return replace(
        base,
        missing=len(series) - int(present.sum()),
        sample=_texts(series, present, rng, sample_size),
    )


def _kind(series: pd.Series, categorical: bool) -> Kind:
    from pandas.api import types

    dtype = series.dtype
    if categorical:
        return "categorical"
    if types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if types.is_bool_dtype(dtype) or (
        types.is_numeric_dtype(dtype) and not types.is_complex_dtype(dtype)
    ):
        return "numeric"
    if types.is_string_dtype(dtype) or types.is_object_dtype(dtype) or dtype == "category":
        return "categorical"
    return "other"


def _numbers(
    base: ColumnProfile, series: pd.Series, rng: np.random.Generator, sketch_k: int
) -> ColumnProfile:
    if base.kind == "datetime":
        stamps = series.to_numpy(dtype="datetime64[ns]")
        missing = np.isnat(stamps)
        raw = np.where(missing, np.nan, stamps.view(np.int64).astype(np.float64))
    else:
        raw = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(raw)
    nan_count = int(np.isnan(raw).sum())
    values = raw if finite.all() else raw[finite]
    sketch = QuantileSketch.from_values(values, k=sketch_k, seed=int(rng.integers(2**63)))
    stats: dict[str, float | None] = {"min": None, "max": None, "mean": None, "variance": None}
    if len(values):
        mean = float(values.mean())
        deviations = values - mean
        stats = {
            "min": float(values.min()),
            "max": float(values.max()),
            "mean": mean,
            "variance": float(deviations @ deviations) / len(values),
        }
    chosen = rng.choice(len(values), size=min(base.sample_size, len(values)), replace=False)
    return replace(
        base,
        missing=nan_count,
        infinite=len(raw) - nan_count - len(values),
        quantiles=sketch,
        sample=tuple(values[chosen].tolist()),
        **stats,  # type: ignore[arg-type]
    )


def _categories(base: ColumnProfile, series: pd.Series, rng: np.random.Generator) -> ColumnProfile:
    from pandas.api.types import infer_dtype

    present = series.notna().to_numpy()
    counted = series.value_counts(dropna=True, sort=False)
    counted = counted[counted.to_numpy() > 0]  # unobserved categories of a category dtype
    if infer_dtype(counted.index, skipna=False) != "string":  # 1 and "1" are one value
        counted = counted.groupby(counted.index.astype(str).to_numpy()).sum()
    keys = counted.index
    top = _top(keys.to_numpy(dtype=object), np.asarray(counted, dtype=np.int64), base.top_k)
    return replace(
        base,
        missing=len(series) - int(present.sum()),
        counts=top.listed,
        other=top.dropped,
        count_error=top.largest_dropped,
        distinct_estimate=len(keys),
        distinct_registers=hll_registers(keys) if top.dropped else None,
        sample=_texts(series, present, rng, base.sample_size),
    )


def _texts(
    series: pd.Series, present: npt.NDArray[np.bool_], rng: np.random.Generator, size: int
) -> tuple[str, ...]:
    positions = np.flatnonzero(present)
    chosen = rng.choice(len(positions), size=min(size, len(positions)), replace=False)
    return tuple(series.iloc[positions[chosen]].astype(str).tolist())


@dataclass(frozen=True)
class _Top:
    listed: dict[str, int]
    dropped: int  # occurrences of the values left out
    largest_dropped: int


def _top(keys: npt.NDArray[np.object_], counts: npt.NDArray[np.int64], k: int) -> _Top:
    """The k most frequent distinct `keys` (ties: smaller text first) and what is left out."""
    if len(counts) <= k:
        order = sorted(range(len(keys)), key=lambda i: (-counts[i], keys[i]))
        return _Top({str(keys[i]): int(counts[i]) for i in order}, 0, 0)
    threshold = int(np.partition(counts, len(counts) - k)[len(counts) - k])
    above = np.flatnonzero(counts > threshold)
    tied = counts == threshold
    ties = heapq.nsmallest(k - len(above), keys[tied].tolist())
    order = sorted(above.tolist(), key=lambda i: (-counts[i], keys[i]))
    listed = {str(keys[i]): int(counts[i]) for i in order}
    listed.update((str(key), threshold) for key in ties)
    below = counts[counts < threshold]
    largest = threshold if int(tied.sum()) > len(ties) else int(below.max(initial=0))
    return _Top(listed, int(counts.sum()) - sum(listed.values()), largest)


def _merge_numbers(merged: ColumnProfile, a: ColumnProfile, b: ColumnProfile) -> ColumnProfile:
    assert a.quantiles is not None and b.quantiles is not None
    sketch = a.quantiles.merge(b.quantiles)
    if not b.valid or not a.valid:
        source = a if a.valid else b
        return replace(
            merged,
            min=source.min,
            max=source.max,
            mean=source.mean,
            variance=source.variance,
            quantiles=sketch,
        )
    assert a.mean is not None and b.mean is not None
    assert a.variance is not None and b.variance is not None
    n = a.valid + b.valid
    delta = b.mean - a.mean
    # Chan et al.'s parallel update of the sum of squared deviations.
    m2 = a.variance * a.valid + b.variance * b.valid + delta * delta * a.valid * b.valid / n
    return replace(
        merged,
        min=min(a.min, b.min),  # type: ignore[type-var]
        max=max(a.max, b.max),  # type: ignore[type-var]
        mean=a.mean + delta * b.valid / n,
        variance=m2 / n,
        quantiles=sketch,
    )


def _merge_categories(merged: ColumnProfile, a: ColumnProfile, b: ColumnProfile) -> ColumnProfile:
    every = dict(a.counts)
    for key, count in b.counts.items():
        every[key] = every.get(key, 0) + count
    top_k = min(a.top_k, b.top_k)
    keys = np.array(list(every), dtype=object)
    top = _top(keys, np.fromiter(every.values(), np.int64, len(every)), top_k)
    if not top.dropped and not a.other and not b.other:
        return replace(
            merged,
            counts=top.listed,
            other=0,
            count_error=0,
            distinct_estimate=len(every),
            distinct_registers=None,
            top_k=top_k,
        )
    registers = hll_union(_registers(a), _registers(b))
    return replace(
        merged,
        counts=top.listed,
        other=a.other + b.other + top.dropped,
        count_error=a.count_error + b.count_error + top.largest_dropped,
        distinct_estimate=max(round(hll_estimate(registers)), len(every)),
        distinct_registers=registers,
        top_k=top_k,
    )


def _registers(column: ColumnProfile) -> bytes:
    if column.distinct_registers is not None:
        return column.distinct_registers
    return hll_registers(list(column.counts))


def _common_dtype(a: str, b: str) -> str:
    if a == b:
        return a
    try:
        return str(np.result_type(np.dtype(a), np.dtype(b)))
    except TypeError:
        return "|".join(sorted({*a.split("|"), *b.split("|")}))


def _hash(name: str) -> int:
    return zlib.crc32(name.encode())


def _fresh_seed() -> int:
    return int(np.random.default_rng().integers(2**63))
