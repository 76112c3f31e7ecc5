"""Metric points grouped by key and packed into arrays: how history is stored.

Each logging call stores one chunk per metric key (steps, timestamps and values as
little-endian int64/int64/float64 arrays) plus the key's latest point for search.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

from modelyard.errors import InvalidInput
from modelyard.tracking import _validate as v
from modelyard.tracking._entities import Metric

_SWAP = sys.byteorder != "little"


def pack_metrics(
    run_id: str, metrics: Sequence[Metric]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Chunk rows and latest-point rows for `metrics`, validated."""
    groups: dict[str, tuple[list[int], list[int], list[float]]] = {}
    for metric in metrics:
        key, value, step, timestamp = metric.key, metric.value, metric.step, metric.timestamp
        group = groups.get(key)
        if group is None:
            group = groups[v.check_key("metric", key)] = ([], [], [])
        if type(value) is not float:
            value = v.metric_value(key, value)
        if type(step) is not int:
            step = v.check_step(step)
        if type(timestamp) is not int or timestamp < 0:
            timestamp = v.check_timestamp(timestamp)
        group[0].append(step)
        group[1].append(timestamp)
        group[2].append(value)
    chunks, latest = [], []
    for key, (steps, timestamps, values) in groups.items():
        last = 0  # highest (step, timestamp); among ties the one logged last, as in the store
        for i in range(1, len(steps)):
            if (steps[i], timestamps[i]) >= (steps[last], timestamps[last]):
                last = i
        value = values[last]
        latest.append(
            {
                "run_id": run_id,
                "key": key,
                "step": steps[last],
                "timestamp": timestamps[last],
                "value": None if math.isnan(value) else value,
            }
        )
        chunks.append(
            {
                "run_id": run_id,
                "key": key,
                "count": len(steps),
                "steps": _pack("q", steps, key),
                "timestamps": _pack("q", timestamps, key),
                "values": _pack("d", values, key),
            }
        )
    return chunks, latest


def unpack_history(key: str, chunks: Iterable[tuple[bytes, bytes, bytes]]) -> list[Metric]:
    """Every point of one metric, ordered by step, then timestamp, then logging order."""
    points: list[Metric] = []
    for steps, timestamps, values in chunks:
        s, t, x = _unpack("q", steps), _unpack("q", timestamps), _unpack("d", values)
        points.extend(Metric(key, val, step, ts) for step, ts, val in zip(s, t, x, strict=True))
    points.sort(key=lambda m: (m.step, m.timestamp))  # stable: ties keep logging order
    return points


def _pack(typecode: str, items: list[Any], key: str) -> bytes:
    try:
        packed = array(typecode, items)
    except OverflowError:
        raise InvalidInput(f"metric {key!r}: step or timestamp out of the int64 range") from None
    if _SWAP:
        packed.byteswap()
    return packed.tobytes()


def _unpack(typecode: str, data: bytes) -> array[Any]:
    unpacked = array(typecode)
    unpacked.frombytes(data)
    if _SWAP:
        unpacked.byteswap()
    return unpacked
