"""Deduplication against a brute force: no duplicate keys remain, the kept rows are a
subsequence of the input, the counts add up, and first/last (after an optional stable sort)
pick the right row of each group."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.data import deduplicate
from modelyard.errors import InvalidInput

frames = st.lists(
    st.tuples(st.integers(0, 4), st.sampled_from(["a", "b", None]), st.integers(0, 3)),
    max_size=40,
).map(lambda rows: pd.DataFrame(rows, columns=["k", "g", "t"]))
keys = st.sampled_from([None, ["k"], ["k", "g"], "g"])
orders = st.sampled_from([None, "t", ["t", "k"]])


def brute_force(
    frame: pd.DataFrame, subset: list[str], keep: str, order_by: list[str] | None
) -> list[int]:
    """Input positions kept: per key, the first/last by (order_by values, position)."""
    chosen: dict[tuple[object, ...], int] = {}
    for position in range(len(frame)):
        row = frame.iloc[position]
        key = tuple("<NA>" if pd.isna(row[c]) else row[c] for c in subset)
        rank = (tuple(row[c] for c in order_by or []), position)
        if key not in chosen:
            chosen[key] = position
            continue
        current = frame.iloc[chosen[key]]
        current_rank = (tuple(current[c] for c in order_by or []), chosen[key])
        if (rank > current_rank) == (keep == "last"):
            chosen[key] = position
    return sorted(chosen.values())


@settings(max_examples=150, deadline=None)
@given(frames, keys, st.sampled_from(["first", "last"]), orders)
def test_deduplication_matches_a_brute_force(
    frame: pd.DataFrame, key: list[str] | str | None, keep: str, order: list[str] | str | None
) -> None:
    out, report = deduplicate(frame, key, keep=keep, order_by=order)  # type: ignore[arg-type]
    subset = list(frame.columns) if key is None else ([key] if isinstance(key, str) else key)
    order_by = None if order is None else ([order] if isinstance(order, str) else order)
    assert list(out.index) == brute_force(frame, subset, keep, order_by)
    assert not out.duplicated(subset=subset).any()
    assert list(out.index) == sorted(out.index)  # a subsequence, input order kept
    assert out.equals(frame.loc[out.index])
    assert report.rows_in == len(frame) and report.rows_out == len(out)
    assert report.rows_in - report.rows_dropped == report.rows_out
    assert report.duplicate_groups == int(
        frame[frame.duplicated(subset=subset, keep=False)].drop_duplicates(subset=subset).shape[0]
    )
    assert report.duplicate_groups <= report.rows_dropped


def test_latest_update_per_key_is_kept_in_input_order() -> None:
    frame = pd.DataFrame(
        {"id": [1, 2, 1, 3, 2], "updated": [5, 1, 3, 2, 9], "v": ["a", "b", "c", "d", "e"]},
        index=[10, 11, 12, 13, 14],
    )
    out, report = deduplicate(frame, "id", keep="last", order_by="updated")
    assert list(out["v"]) == ["a", "d", "e"] and list(out.index) == [10, 13, 14]
    assert report.to_dict() == {
        "rows_in": 5,
        "rows_out": 3,
        "duplicate_groups": 2,
        "rows_dropped": 2,
        "keys": ["id"],
        "keep": "last",
        "order_by": ["updated"],
    }


def test_exact_duplicates_compare_every_column() -> None:
    frame = pd.DataFrame({"a": [1, 1, 1], "b": [2, 2, 3]})
    out, report = deduplicate(frame, keep="first")
    assert list(out.index) == [0, 2] and report.keys is None


def test_unknown_columns_and_bad_keep_are_refused() -> None:
    frame = pd.DataFrame({"a": [1]})
    with pytest.raises(InvalidInput, match="keys names unknown column"):
        deduplicate(frame, "b")
    with pytest.raises(InvalidInput, match="keep must be"):
        deduplicate(frame, keep="middle")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="order_by names unknown"):
        deduplicate(frame, order_by=["z"])
