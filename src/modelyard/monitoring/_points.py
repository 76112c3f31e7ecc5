"""The numbers a monitor stores per window: one `ResultPoint` per check, column and metric.

They are the time series of `history`, what alert rules are evaluated on, and what the
model server exports on `/metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ResultPoint:
    """One metric of one check on one column ("" for the whole window).

    `value` is None when the check could not give a number (insufficient data, no labels
    yet): such a point never fires or resolves an alert. `lower`/`upper` bound `value`'s
    confidence interval where the check has one; `flagged` is the check's own verdict.
    """

    check: str
    column: str
    metric: str
    value: float | None
    lower: float | None = None
    upper: float | None = None
    flagged: bool | None = None
    status: str = "ok"


@dataclass(frozen=True, slots=True)
class WindowRef:
    """The stored window a set of points belongs to (Unix ms, `start` inclusive)."""

    id: int
    monitor_id: int
    start: int
    end: int
