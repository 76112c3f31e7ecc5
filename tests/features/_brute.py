"""The point-in-time join written literally, one label row at a time: the tests' reference."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import pandas as pd

from modelyard.features._definitions import (
    DataFrameSource,
    FeatureView,
    FileSource,
    group_refs,
)
from modelyard.features._offline import PANDAS_DTYPES


def source_rows(view: FeatureView) -> pd.DataFrame:
    """All of a view's source rows, in source order, transformed."""
    source = view.source
    if isinstance(source, DataFrameSource):
        rows = source.frame
    elif isinstance(source, FileSource):
        rows = pd.read_parquet(source.path)
    else:
        rows = duckdb.sql(source.query).df()
    rows = rows.reset_index(drop=True)
    return view.transform(rows) if view.transform is not None else rows


def utc_nanos(value: Any) -> int | None:
    """A timestamp as nanoseconds since the epoch (UTC if aware), None if missing."""
    if value is None or pd.isna(value):
        return None
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return int(stamp.as_unit("ns")._value)


def pick(view: FeatureView, rows: pd.DataFrame, label: pd.Series[Any], ts: int) -> int | None:
    """The position of the row a label sees, or None."""
    best: tuple[int, float, int] | None = None
    found = None
    for position in range(len(rows)):
        row = rows.iloc[position]
        if any(pd.isna(label[k]) or pd.isna(row[k]) or row[k] != label[k] for k in view.join_keys):
            continue
        event = utc_nanos(row[view.timestamp_field])
        if event is None or event > ts:
            continue
        if view.ttl is not None and event < ts - view.ttl // pd.Timedelta(1, "ns"):
            continue
        created_field = view.created_timestamp_field
        created = utc_nanos(row[created_field]) if created_field else None
        rank = (event, float("-inf") if created is None else float(created), position)
        if best is None or rank >= best:
            best, found = rank, position
    return found


def see(view: FeatureView, rows: pd.DataFrame, label: pd.Series[Any], column: str) -> int | None:
    ts = utc_nanos(label[column])
    return None if ts is None else pick(view, rows, label, ts)


def brute_training_frame(
    labels: pd.DataFrame,
    views: Mapping[str, FeatureView],
    refs: Sequence[str],
    *,
    timestamp_column: str = "event_timestamp",
    full_feature_names: bool = False,
) -> pd.DataFrame:
    out = labels.reset_index(drop=True).copy()
    for name, features in group_refs(refs).items():
        view = views[name]
        rows = source_rows(view)
        chosen = [see(view, rows, label, timestamp_column) for _, label in out.iterrows()]
        for feature in features:
            values = [None if c is None else rows[feature].iloc[c] for c in chosen]
            dtype = PANDAS_DTYPES.get(view.field(feature).dtype)
            column = pd.Series(values, dtype=dtype) if dtype else pd.Series(values)
            out[f"{name}__{feature}" if full_feature_names else feature] = column
    return out
