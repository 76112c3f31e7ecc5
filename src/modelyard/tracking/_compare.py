"""Runs side by side: every param and final metric, with the keys that differ marked."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelyard.tracking._entities import Run

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class RunComparison:
    """Values per key, one per run in `runs` order (None where a run lacks the key)."""

    runs: tuple[Run, ...]
    params: dict[str, tuple[str | None, ...]]
    metrics: dict[str, tuple[float | None, ...]]

    @property
    def differing_params(self) -> frozenset[str]:
        return frozenset(k for k, values in self.params.items() if not _same(values))

    @property
    def differing_metrics(self) -> frozenset[str]:
        return frozenset(k for k, values in self.metrics.items() if not _same(values))

    def to_pandas(self) -> pd.DataFrame:
        """Rows `(section, key)`, one column per run (by name), and a boolean `differs`."""
        import pandas as pd

        columns = _column_names(self.runs)
        rows: list[dict[str, object]] = []
        index: list[tuple[str, str]] = []
        for section, table, differing in (
            ("params", self.params, self.differing_params),
            ("metrics", self.metrics, self.differing_metrics),
        ):
            for key, values in table.items():
                index.append((section, key))
                rows.append(
                    {**dict(zip(columns, values, strict=True)), "differs": key in differing}
                )
        frame = pd.DataFrame(rows, columns=[*columns, "differs"])
        frame.index = pd.MultiIndex.from_tuples(index, names=["section", "key"])
        return frame


def compare(runs: Sequence[Run]) -> RunComparison:
    param_keys = sorted({k for run in runs for k in run.params})
    metric_keys = sorted({k for run in runs for k in run.metrics})
    return RunComparison(
        runs=tuple(runs),
        params={k: tuple(run.params.get(k) for run in runs) for k in param_keys},
        metrics={
            k: tuple(run.metrics[k].value if k in run.metrics else None for run in runs)
            for k in metric_keys
        },
    )


def _same(values: Sequence[object]) -> bool:
    first = values[0]
    for value in values[1:]:
        both_nan = (
            isinstance(first, float)
            and isinstance(value, float)
            and math.isnan(first)
            and math.isnan(value)
        )
        if value != first and not both_nan:
            return False
    return True


def _column_names(runs: Sequence[Run]) -> list[str]:
    names = [run.name for run in runs]
    if len(set(names)) == len(names):
        return names
    return [f"{run.name} ({run.id[:8]})" for run in runs]
