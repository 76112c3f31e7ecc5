"""Metric history packing: whatever is logged comes back, in step order."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard.errors import InvalidInput
from modelyard.tracking import Metric
from modelyard.tracking._packing import pack_metrics, unpack_history

RUN = "a" * 32
points = st.builds(
    Metric,
    key=st.sampled_from(["loss", "auc", "val/f1"]),
    value=st.floats(allow_nan=True, allow_infinity=True),
    step=st.integers(-(2**63), 2**63 - 1),
    timestamp=st.integers(0, 2**63 - 1),
)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@given(st.lists(points, max_size=200))
def test_packed_points_unpack_to_the_same_history(metrics: list[Metric]) -> None:
    chunks, latest = pack_metrics(RUN, metrics)
    for key in {m.key for m in metrics}:
        stored = [(c["steps"], c["timestamps"], c["values"]) for c in chunks if c["key"] == key]
        history = unpack_history(key, stored)
        expected = sorted((m for m in metrics if m.key == key), key=lambda m: (m.step, m.timestamp))
        assert [(m.step, m.timestamp) for m in history] == [(m.step, m.timestamp) for m in expected]
        assert all(_same(a.value, b.value) for a, b in zip(history, expected, strict=True))
        final = next(row for row in latest if row["key"] == key)
        assert (final["step"], final["timestamp"]) == (expected[-1].step, expected[-1].timestamp)
        value = expected[-1].value
        assert final["value"] is None if math.isnan(value) else final["value"] == value


def test_out_of_range_steps_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="int64"):
        pack_metrics(RUN, [Metric("loss", 1.0, 2**63, 0)])
