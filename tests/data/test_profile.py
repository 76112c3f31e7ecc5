"""Data profiles: compact per-column summaries that merge, serialize and stay small."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.data import ColumnProfile, Profile, profile, profile_parquet
from modelyard.data._sketch import QuantileSketch
from modelyard.errors import InvalidInput

WORDS = ["red", "green", "blue", "cyan", "magenta", "yellow", "black", "white"]
EPOCH_2024 = 1_704_067_200_000_000_000


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(st.integers(0, 150))
    number = st.one_of(
        st.floats(-1e6, 1e6), st.just(math.nan), st.just(math.inf), st.just(-math.inf)
    )
    words = st.one_of(st.sampled_from(WORDS), st.none())
    stamps = st.one_of(st.integers(EPOCH_2024, EPOCH_2024 + 10**15), st.none())
    return pd.DataFrame(
        {
            "x": pd.Series(draw(st.lists(number, min_size=rows, max_size=rows)), dtype=float),
            "n": pd.Series(draw(st.lists(st.integers(-50, 50), min_size=rows, max_size=rows))),
            "b": pd.Series(draw(st.lists(st.booleans(), min_size=rows, max_size=rows)), dtype=bool),
            "c": pd.Series(draw(st.lists(words, min_size=rows, max_size=rows)), dtype=object),
            "t": pd.to_datetime(
                pd.Series(draw(st.lists(stamps, min_size=rows, max_size=rows)), dtype="Int64"),
                unit="ns",
            ),
        }
    )


options = st.fixed_dictionaries(
    {
        "top_k": st.integers(1, 10),
        "sample_size": st.integers(0, 20),
        "sketch_k": st.sampled_from([2, 5, 16, 200]),
    }
)


def numbers(series: pd.Series) -> npt.NDArray[np.float64]:
    """The values a numeric or datetime profile summarises: finite floats."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        stamps = series.dropna().to_numpy(dtype="datetime64[ns]")
        return np.asarray(stamps.view(np.int64), dtype=np.float64)
    raw = np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    return raw[np.isfinite(raw)]


def assert_sketch_within_bound(sketch: QuantileSketch, values: npt.NDArray[np.float64]) -> None:
    """Ranks and quantiles are within the guaranteed (worst-case) bound of the truth."""
    data = np.sort(values)
    assert sketch.n == len(data)
    if not len(data):
        return
    eps = sketch.error_bound(confidence=1.0) + 1e-12
    true_ranks = np.searchsorted(data, data, side="right") / len(data)
    assert np.abs(sketch.cdf(data) - true_ranks).max() <= eps
    qs = np.linspace(0, 1, 21)
    for q, v in zip(qs, sketch.quantiles(qs), strict=True):
        assert np.searchsorted(data, v, side="left") / len(data) <= q + eps
        assert np.searchsorted(data, v, side="right") / len(data) >= q - eps


def assert_close(a: float | None, b: float | None, scale: float) -> None:
    assert (a is None) == (b is None)
    if a is not None and b is not None:
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12 * scale)


def assert_same_up_to_sketch(merged: Profile, whole: Profile, frame: pd.DataFrame) -> None:
    """Exact fields equal, moments to rounding, sketches and samples true to the data."""
    assert merged.rows == whole.rows == len(frame)
    assert list(merged.columns) == list(whole.columns)
    for name, got in merged.columns.items():
        want = whole.columns[name]
        assert (got.kind, got.count, got.missing, got.infinite) == (
            want.kind,
            want.count,
            want.missing,
            want.infinite,
        )
        assert (got.min, got.max) == (want.min, want.max)
        if got.kind in ("numeric", "datetime"):
            values = numbers(frame[name])
            scale = float(np.abs(values).max(initial=1.0))
            assert_close(got.mean, want.mean, scale)
            assert_close(got.variance, want.variance, scale * scale)
            assert got.quantiles is not None
            assert_sketch_within_bound(got.quantiles, values)
            population = Counter(values.tolist())
        else:
            truth = Counter(frame[name].dropna().astype(str))
            assert sum(got.counts.values()) + got.other == got.count - got.missing
            if len(truth) <= got.top_k:
                assert got.counts == want.counts == dict(truth.most_common())
                assert got.other == 0 and got.distinct_estimate == len(truth)
            for key, listed in got.counts.items():
                assert listed <= truth[key] <= listed + got.count_error
            population = Counter(frame[name].dropna().astype(str).tolist())
        assert len(got.sample) == min(got.sample_size, got.valid)
        assert not Counter(got.sample) - population  # a sample of the column's values


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames(), cut=st.floats(0, 1), opts=options, seed=st.integers(0, 2**32))
def test_merged_profiles_equal_the_profile_of_the_union(
    frame: pd.DataFrame, cut: float, opts: dict[str, Any], seed: int
) -> None:
    at = int(cut * len(frame))
    head, tail = frame.iloc[:at], frame.iloc[at:]
    merged = profile(head, seed=seed, **opts).merge(profile(tail, seed=seed + 1, **opts))
    assert_same_up_to_sketch(merged, profile(frame, seed=seed, **opts), frame)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames(), cuts=st.tuples(st.floats(0, 1), st.floats(0, 1)), opts=options)
def test_merge_is_associative_within_the_bound(
    frame: pd.DataFrame, cuts: tuple[float, float], opts: dict[str, Any]
) -> None:
    first, second = sorted(int(c * len(frame)) for c in cuts)
    a, b, c = (
        profile(part, seed=i, **opts)
        for i, part in enumerate([frame[:first], frame[first:second], frame[second:]])
    )
    left, right = a.merge(b).merge(c), a.merge(b.merge(c))
    whole = profile(frame, seed=0, **opts)
    assert_same_up_to_sketch(left, whole, frame)
    assert_same_up_to_sketch(right, whole, frame)
    for name, column in left.columns.items():
        if not column.other:  # exact; truncated counts are bounds, checked above
            assert column.counts == right.columns[name].counts


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.floats(-1e9, 1e9), max_size=400),
    parts=st.integers(1, 6),
    k=st.integers(2, 40),
)
def test_sketch_ranks_stay_within_the_worst_case_bound(
    values: list[float], parts: int, k: int
) -> None:
    chunks = np.array_split(np.array(values, dtype=np.float64), parts)
    sketch = QuantileSketch.empty(k)
    for i, chunk in enumerate(chunks):
        sketch = sketch.merge(QuantileSketch.from_values(chunk, k=k, seed=i))
    assert_sketch_within_bound(sketch, np.array(values))
    assert sketch.retained <= 3 * k + 2 * len(sketch.levels)


def test_sketch_is_exact_while_it_holds_every_value() -> None:
    values = np.random.default_rng(1).normal(size=200)
    sketch = QuantileSketch.from_values(values, k=200)
    ordered = np.sort(values)
    assert sketch.error_bound() == 0.0
    assert sketch.retained == 200
    np.testing.assert_array_equal(sketch.quantiles(np.arange(1, 201) / 200), ordered)
    np.testing.assert_array_equal(sketch.cdf(ordered), np.arange(1, 201) / 200)


@pytest.mark.parametrize("windows", [1, 10, 400])
def test_sketch_error_is_within_the_stated_99_percent_bound(windows: int) -> None:
    rng = np.random.default_rng(windows)
    values = rng.lognormal(size=200_000)
    sketch = QuantileSketch.empty(200)
    for i, window in enumerate(np.array_split(values, windows)):
        sketch = sketch.merge(QuantileSketch.from_values(window, k=200, seed=i))
    data = np.sort(values)
    points = np.quantile(data, np.linspace(0.005, 0.995, 199))
    error = np.abs(sketch.cdf(points) - np.searchsorted(data, points, "right") / len(data))
    bound = sketch.error_bound(0.99)
    assert error.max() <= bound
    assert bound <= 4 / 200  # measured: 0.5-0.8 % for one profile, 1.9 % after 400 merges
    assert sketch.retained <= 3 * 200


def test_histogram_counts_are_within_twice_the_bound_per_bin() -> None:
    values = np.random.default_rng(2).integers(0, 1000, 50_000)
    column = profile(pd.DataFrame({"v": values}), seed=0).columns["v"]
    edges = [-np.inf, 100, 250, 500, 900, np.inf]
    counts = column.histogram(edges)
    truth = np.histogram(values, bins=[-1, 99.5, 249.5, 499.5, 899.5, 1001])[0]
    assert counts.sum() == len(values)
    assert column.quantiles is not None
    assert np.abs(counts - truth).max() <= 2 * column.quantiles.error_bound(1.0) * len(values)
    small = profile(pd.DataFrame({"v": [1, 2, 2, 3, 10]})).columns["v"]
    assert small.histogram([1, 2, 3, 10]).tolist() == [1, 2, 2]  # last bin closed


def test_json_round_trip_is_exactly_equal() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=5_000),
            "id": [f"user-{i}" for i in rng.integers(0, 2_000, 5_000)],
            "t": pd.date_range("2024-01-01", periods=5_000, freq="min", tz="UTC"),
            "d": pd.to_timedelta(rng.integers(0, 100, 5_000), unit="s"),
        }
    )
    merged = profile(frame[:3_000], top_k=20, seed=1).merge(profile(frame[3_000:], top_k=20))
    for original in (profile(frame, top_k=20), merged):
        assert Profile.from_json(original.to_json()) == original
        assert original.columns["id"].distinct_registers is not None


def test_a_million_rows_stay_under_8_kb_per_column() -> None:
    rng = np.random.default_rng(4)
    rows = 1_000_000
    frame = pd.DataFrame(
        {
            "amount": rng.lognormal(size=rows),
            "count": rng.integers(0, 10_000, rows),
            "when": pd.to_datetime(rng.integers(0, 10**17, rows) + EPOCH_2024),
            "country": rng.choice([f"country-{i:03d}" for i in range(300)], rows),
            "id": pd.Series(np.arange(rows)).map("order-{:07d}".format),
        }
    )
    result = profile(frame, seed=0)
    assert len(result.to_json()) < 8_000 * len(frame.columns)
    assert all(len(Profile(rows, {n: c}).to_json()) < 8_000 for n, c in result.columns.items())
    assert result.columns["id"].distinct_estimate == rows
    windows = [profile(frame[i : i + 20_000], seed=i) for i in range(0, 200_000, 20_000)]
    merged = windows[0]
    for window in windows[1:]:
        merged = merged.merge(window)
    assert len(merged.to_json()) < 8_000 * len(frame.columns)
    assert abs(merged.columns["id"].distinct_estimate - 200_000) < 0.1 * 200_000  # type: ignore[operator]


def test_all_missing_columns_have_counts_and_no_statistics() -> None:
    frame = pd.DataFrame({"x": [np.nan] * 4, "c": pd.Series([None] * 4, dtype=object)})
    result = profile(frame)
    x, c = result.columns["x"], result.columns["c"]
    assert (x.kind, x.count, x.missing, x.min, x.mean, x.variance) == (
        "numeric",
        4,
        4,
        None,
        None,
        None,
    )
    assert x.quantiles is not None and x.quantiles.n == 0 and x.sample == ()
    assert (c.kind, c.missing, c.counts, c.distinct_estimate, c.frequency("a")) == (
        "categorical",
        4,
        {},
        0,
        0.0,
    )
    filled = profile(pd.DataFrame({"x": [1.0, 3.0], "c": ["a", "a"]}))
    merged = result.merge(filled)
    assert (merged.columns["x"].mean, merged.columns["x"].missing) == (2.0, 4)
    assert merged.columns["c"].frequency("a") == 1.0


def test_a_constant_column_has_zero_variance_and_one_quantile() -> None:
    frame = pd.DataFrame({"x": np.full(10_000, 7.5)})
    merged = profile(frame[:3_000]).merge(profile(frame[3_000:]))
    x = merged.columns["x"]
    assert (x.min, x.max, x.mean, x.variance) == (7.5, 7.5, 7.5, 0.0)
    assert x.quantiles is not None
    assert set(x.quantiles.quantiles([0, 0.3, 1]).tolist()) == {7.5}


def test_an_empty_frame_gives_an_empty_profile_that_merges_as_identity() -> None:
    frame = pd.DataFrame({"x": [1.5, 2.5, np.nan], "c": ["a", "b", "a"]})
    empty = profile(frame.iloc[:0])
    assert empty.rows == 0
    assert {c.count for c in empty.columns.values()} == {0}
    full = profile(frame, seed=5)
    for merged in (full.merge(empty), empty.merge(full)):
        for name, column in merged.columns.items():
            want = full.columns[name]
            assert (column.count, column.missing, column.mean, column.variance) == (
                want.count,
                want.missing,
                want.mean,
                want.variance,
            )
            assert column.counts == want.counts and sorted(column.sample) == sorted(want.sample)
    assert profile(pd.DataFrame()).columns == {}


def test_a_mixed_object_column_is_categorical_over_text() -> None:
    column = profile(pd.DataFrame({"m": [1, "1", 2.5, None, "a", (3,)]})).columns["m"]
    assert column.kind == "categorical"
    assert column.counts == {"1": 2, "(3,)": 1, "2.5": 1, "a": 1}
    assert (column.missing, column.frequency(1), column.frequency("zzz")) == (1, 0.4, 0.0)


def test_bools_are_numbers_and_listed_columns_are_categories() -> None:
    frame = pd.DataFrame(
        {
            "flag": [True, False, True, True],
            "maybe": pd.array([True, None, False, True], dtype="boolean"),
            "code": [3, 3, 7, 3],
        }
    )
    result = profile(frame, categorical=["code"])
    flag, maybe, code = (result.columns[n] for n in ("flag", "maybe", "code"))
    assert (flag.kind, flag.mean, flag.min, flag.max) == ("numeric", 0.75, 0.0, 1.0)
    assert (maybe.missing, maybe.mean) == (1, 2 / 3)
    assert (code.kind, code.counts) == ("categorical", {"3": 3, "7": 1})
    assert code.frequency(3) == 0.75


def test_datetimes_are_summarised_as_utc_epoch_nanoseconds() -> None:
    stamps = pd.Series(
        pd.to_datetime(pd.Series(["2024-03-01 12:00", None, "2024-03-02 00:00"])).dt.tz_localize(
            "Europe/Paris"
        )
    )
    column = profile(pd.DataFrame({"t": stamps})).columns["t"]
    assert (column.kind, column.missing) == ("datetime", 1)
    assert column.min == float(pd.Timestamp("2024-03-01 11:00", tz="UTC").value)
    assert column.max == float(pd.Timestamp("2024-03-01 23:00", tz="UTC").value)
    assert column.dtype.startswith("datetime64")


def test_other_columns_are_counted_and_sampled_as_text() -> None:
    column = profile(pd.DataFrame({"d": pd.to_timedelta([1, None, 3], unit="s")})).columns["d"]
    assert (column.kind, column.count, column.missing, column.quantiles) == ("other", 3, 1, None)
    assert len(column.sample) == 2 and all(isinstance(v, str) for v in column.sample)


def test_merged_reservoir_is_a_uniform_sample_of_the_union() -> None:
    small = profile(pd.DataFrame({"v": np.zeros(1_000)}), sample_size=50, seed=0)
    large = profile(pd.DataFrame({"v": np.ones(3_000)}), sample_size=50, seed=1)
    shares = []
    for seed in range(300):
        merged = Profile(small.rows, small.columns, seed=seed).merge(large)
        sample = merged.columns["v"].sample
        assert len(sample) == 50
        shares.append(1 - float(np.mean(np.asarray(sample, dtype=np.float64))))
    assert abs(np.mean(shares) - 0.25) < 0.01  # hypergeometric mean: 50 * 1000 / 4000


def test_same_seed_same_profile() -> None:
    frame = pd.DataFrame({"x": np.arange(5_000.0), "c": np.arange(5_000) % 70})
    assert profile(frame, seed=9, categorical=["c"]) == profile(frame, seed=9, categorical=["c"])


def test_merging_profiles_of_different_columns_names_them() -> None:
    a = profile(pd.DataFrame({"x": [1.0], "y": [2.0]}))
    with pytest.raises(InvalidInput, match=r"only in this one: y; only in the other: z"):
        a.merge(profile(pd.DataFrame({"x": [1.0], "z": [2.0]})))
    with pytest.raises(InvalidInput, match=r"y \(numeric vs categorical\)"):
        a.merge(profile(pd.DataFrame({"x": [1.0], "y": ["2"]})))


def test_misuse_is_refused_with_what_to_do() -> None:
    numeric = profile(pd.DataFrame({"x": [1.0, 2.0]})).columns["x"]
    with pytest.raises(InvalidInput, match=r"categorical=\['x'\]"):
        numeric.frequency(1.0)
    text = profile(pd.DataFrame({"c": ["a"]})).columns["c"]
    with pytest.raises(InvalidInput, match="numeric or datetime"):
        text.histogram([0, 1])
    with pytest.raises(InvalidInput, match="its columns: x"):
        profile(pd.DataFrame({"x": [1]}), columns=["nope"])
    with pytest.raises(InvalidInput, match="top_k >= 1"):
        profile(pd.DataFrame({"x": [1]}), top_k=0)
    with pytest.raises(InvalidInput, match=r"Profile\.to_json"):
        Profile.from_json('{"rows": 1}')
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        numeric.quantiles.quantile(1.5)  # type: ignore[union-attr]
    assert isinstance(numeric, ColumnProfile)


@pytest.fixture(scope="module")
def parquet_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    rng = np.random.default_rng(6)
    rows = 30_000
    frame = pd.DataFrame(
        {
            "amount": rng.normal(100, 15, rows),
            "items": rng.integers(0, 20, rows),
            "store": rng.choice(WORDS, rows),
            "when": pd.date_range("2024-01-01", periods=rows, freq="s"),
        }
    )
    frame.loc[::13, "amount"] = np.nan
    path = tmp_path_factory.mktemp("parquet") / "sales.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=7_000)
    return path, frame


def test_a_parquet_file_is_profiled_chunk_by_chunk(
    parquet_file: tuple[Path, pd.DataFrame],
) -> None:
    path, frame = parquet_file
    streamed = profile_parquet(path, chunk_rows=4_000, seed=0, sketch_k=64)
    assert_same_up_to_sketch(streamed, profile(frame, seed=0, sketch_k=64), frame)
    subset = profile_parquet(path, columns=["store"], top_k=3)
    assert list(subset.columns) == ["store"] and subset.columns["store"].other > 0
    with pytest.raises(InvalidInput, match="unknown option"):
        profile_parquet(path, bins=10)


@pytest.mark.slow
def test_row_groups_profiled_on_a_local_dask_cluster_agree(
    parquet_file: tuple[Path, pd.DataFrame],
) -> None:
    pytest.importorskip("distributed")
    path, frame = parquet_file
    on_dask = profile_parquet(path, chunk_rows=4_000, dask="local", seed=0, sketch_k=64)
    assert_same_up_to_sketch(on_dask, profile(frame, seed=0, sketch_k=64), frame)
