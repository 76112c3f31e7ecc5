"""Cutting a prediction log into a monitor's windows, and what a judged window holds."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelyard.monitoring._points import ResultPoint

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.monitoring._spec import Monitor


@dataclass(frozen=True)
class WindowResult:
    """One judged window: its span, size, evidence per check and stored points."""

    id: int
    start: int
    end: int
    version: int | None
    rows: int
    labels: int
    evidence: dict[str, Any]
    points: list[ResultPoint] = field(default_factory=list)

    @property
    def flagged(self) -> list[str]:
        """The checks that flagged this window."""
        return sorted({p.check for p in self.points if p.flagged and p.column == ""})

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "start": self.start,
            "end": self.end,
            "version": self.version,
            "rows": self.rows,
            "labels": self.labels,
            "flagged": self.flagged,
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class MonitorRun:
    """What one run judged, and the alert events it raised."""

    monitor: str
    windows: list[WindowResult]
    events: list[Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "windows": [w.to_dict() for w in self.windows],
            "events": [e.to_dict() for e in self.events],
        }


def windows(
    monitor: Monitor, frame: pd.DataFrame, cursor: Mapping[str, Any], horizon: int
) -> Iterator[tuple[int, int, pd.DataFrame, dict[str, Any]]]:
    """(start, end, predictions, cursor after) of each complete, settled window, in order;
    `frame` is sorted and holds only predictions after the cursor and before `horizon`."""
    at = frame["at_ms"]
    if monitor.window_rows is not None:
        size = monitor.window_rows
        for first in range(0, len(frame) - size + 1, size):
            part = frame.iloc[first : first + size]
            last = part.iloc[-1]
            after = {"at": int(last["at_ms"]), "id": str(last["prediction_id"])}
            yield int(part["at_ms"].iloc[0]), int(last["at_ms"]) + 1, part, after
        return
    length = monitor.window_ms
    assert length is not None
    start = cursor.get("next_start")
    while len(frame):
        aligned = (int(at.iloc[0]) // length) * length  # the window of the next prediction
        start = aligned if start is None else max(int(start), aligned)
        end = start + length
        if end > horizon:
            return
        inside = at < end
        yield start, end, frame[inside], {"next_start": end}
        frame, at = frame[~inside], at[~inside]
        start = end


def with_ms(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with `at_ms`, its prediction times in Unix milliseconds."""
    import pandas as pd

    epoch = pd.Timestamp(0, tz="UTC")
    return frame.assign(at_ms=(frame["at"] - epoch) // pd.Timedelta(milliseconds=1))


def served_version(part: pd.DataFrame) -> int | None:
    counts = part["version"].value_counts()
    return int(counts.index[0]) if len(counts) else None
