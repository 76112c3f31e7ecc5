"""The point-in-time join on a Dask cluster, for sources larger than one machine's memory.

The label rows are split by a hash of their entity keys into partitions; each partition is
joined on a worker by the same `training_frame`, with the view sources narrowed to that
partition's entities (a semi-join DuckDB runs while it scans), so a worker holds only its
entities' feature rows. Every label row lands in exactly one partition, and the parts are put
back in the input's order: the result is the one the in-process join gives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidInput
from modelyard.features._definitions import FeatureView, group_refs

if TYPE_CHECKING:
    import pandas as pd


def distributed_training_frame(
    labels: pd.DataFrame,
    views: Mapping[str, FeatureView],
    refs: Sequence[str],
    *,
    dask: str,
    partitions: int | None = None,
    timestamp_column: str = "event_timestamp",
    full_feature_names: bool = False,
) -> pd.DataFrame:
    """`training_frame` on the Dask cluster at `dask` ("local": a new one on this machine),
    in `partitions` parts by entity (default: two per worker)."""
    import pandas as pd

    from modelyard._dask import dask_client

    if partitions is not None and partitions < 1:
        raise InvalidInput("partitions must be at least 1")
    wanted = group_refs(refs)
    keys: list[str] = []
    for name in wanted:
        if name in views:
            keys += [k for k in views[name].join_keys if k not in keys]
    if missing := [k for k in keys if k not in labels.columns]:
        raise InvalidInput(f"the labels have no columns {missing}, which the features need")
    chosen = {name: views[name] for name in wanted if name in views}
    with dask_client(dask, "a training frame") as client:
        count = partitions or max(1, 2 * len(client.scheduler_info()["workers"]))
        buckets = _buckets(labels, keys, count)
        positions = [buckets.index[buckets == i].to_numpy() for i in range(count)]
        parts = [labels.iloc[p] for p in positions if len(p)]
        futures = client.map(
            _join_part,
            parts,
            views=chosen,
            refs=list(refs),
            timestamp_column=timestamp_column,
            full_feature_names=full_feature_names,
            pure=False,
        )
        results = client.gather(futures)
    if not results:  # no label rows: the in-process join gives the empty frame's columns
        return _join_part(labels, chosen, list(refs), timestamp_column, full_feature_names)
    order = [p for p in positions if len(p)]
    joined: pd.DataFrame = pd.concat(
        [r.set_axis(p, axis=0) for r, p in zip(results, order, strict=True)]
    ).sort_index()
    return joined.reset_index(drop=True)


def _buckets(labels: pd.DataFrame, keys: list[str], count: int) -> pd.Series[Any]:
    """The partition of each label row (by position): a hash of its entity keys."""
    import pandas as pd

    hashed = pd.util.hash_pandas_object(labels[keys], index=False).to_numpy()
    return pd.Series(hashed % count, index=range(len(labels)))


def _join_part(
    labels: pd.DataFrame,
    views: Mapping[str, FeatureView],
    refs: list[str],
    timestamp_column: str,
    full_feature_names: bool,
) -> pd.DataFrame:
    """One partition's join, on a worker, the sources narrowed to its entities."""
    from modelyard.features._offline import training_frame

    return training_frame(
        labels,
        views,
        refs,
        timestamp_column=timestamp_column,
        full_feature_names=full_feature_names,
        only_label_entities=True,
    )
